/*
 * result.h - what a strategy answers.
 *
 * A result is a plain struct the caller owns (usually on its stack). The hot
 * path fills fixed fields (success, class, code, provider, latency,
 * attempts) without allocating; JSON data is allocated only when a strategy
 * has something to say.
 *
 * The message and the extra metadata are often never read (a fallback that
 * answered from its second strategy explains why in its metadata; most
 * callers only look at the data). So both may be deferred: a failure keeps
 * its printf format and a copy of the arguments, and a wrapper may attach
 * metadata as a part that is built into JSON only when somebody reads it.
 * Read them with pv_result_message() and pv_result_meta(); what they return
 * is the same whether or not it was deferred.
 *
 * Error codes are stable strings (see docs/errors.md); the class drives the
 * retry decisions of the fallback strategy.
 */
#ifndef PROVISIO_RESULT_H
#define PROVISIO_RESULT_H

#include <stdbool.h>
#include <stdint.h>
#include <jansson.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum pv_error_class {
	PV_CLASS_NONE = 0,  /* success */
	PV_CLASS_TRANSIENT, /* may work if tried again (network, 5xx, timeout) */
	PV_CLASS_THROTTLED, /* the provider asked us to slow down */
	PV_CLASS_CAPACITY,  /* the provider has no room for what was asked */
	PV_CLASS_PERMANENT, /* will fail again the same way (bad input, auth) */
	PV_CLASS_INTERNAL,  /* a bug or a broken invariant in provisio */
} pv_error_class;

/* "none", "transient", ...; static. */
const char *pv_error_class_name(pv_error_class c);
/* Parses a class name. 0 or PV_EINVAL naming the valid values. */
int pv_error_class_parse(const char *name, pv_error_class *out);
/* Retrying can help: transient and throttled. */
bool pv_error_class_retryable(pv_error_class c);

/* The stable error codes of the kernel. */
#define PV_ERR_NO_STRATEGY_AVAILABLE "NO_STRATEGY_AVAILABLE"
#define PV_ERR_STRATEGY_NOT_FOUND "STRATEGY_NOT_FOUND"
#define PV_ERR_OPERATION_NOT_SUPPORTED "OPERATION_NOT_SUPPORTED"
#define PV_ERR_NOT_INITIALIZED "NOT_INITIALIZED"
#define PV_ERR_EXECUTION_ERROR "EXECUTION_ERROR"
#define PV_ERR_TIMEOUT "TIMEOUT"
#define PV_ERR_THROTTLED "THROTTLED"
#define PV_ERR_CAPACITY "CAPACITY"
#define PV_ERR_INVALID_PARAMETERS "INVALID_PARAMETERS"
#define PV_ERR_ALL_STRATEGIES_FAILED "ALL_STRATEGIES_FAILED"
#define PV_ERR_NOT_FOUND "NOT_FOUND"
#define PV_ERR_INTERNAL "INTERNAL_ERROR"

/* The class a kernel code implies (INVALID_PARAMETERS -> permanent, ...);
 * PV_CLASS_PERMANENT for codes it does not know. */
pv_error_class pv_error_code_class(const char *code);

#define PV_RESULT_CODE_MAX 48
#define PV_RESULT_NAME_MAX 64
/* Room for the copied arguments of a message not formatted yet; a message
 * whose arguments do not fit is formatted at once. */
#define PV_RESULT_ARGS_MAX 120

typedef struct pv_result pv_result;
typedef struct pv_result_later pv_result_later;

/*
 * Metadata deferred by a strategy: one part, built into the result's
 * metadata object when somebody reads it (pv_result_meta,
 * pv_result_metadata, pv_result_to_json) and released unbuilt when nobody
 * does. Embed it first in your own struct.
 */
struct pv_result_later {
	/* Adds this part's keys to `meta`, an object already holding the
	 * metadata that was set before the part was attached. `r` is the result
	 * it belongs to, as it is when read. Must leave `self` unchanged: a
	 * const reader builds into a copy, so a part may be built more than once. */
	void (*build)(const pv_result_later *self, const pv_result *r, json_t *meta);
	/* Frees the part and what it holds. */
	void (*release)(pv_result_later *self);
	pv_result_later *next; /* the result's: the part attached before this one */
};

struct pv_result {
	bool success;
	pv_error_class error_class;
	char error_code[PV_RESULT_CODE_MAX]; /* "" on success */
	char provider[PV_RESULT_NAME_MAX];   /* strategy that answered (leaf) */
	uint64_t latency_ns;                 /* measured by whoever ran it */
	uint32_t attempts;                   /* calls made to produce it, >= 1 */
	json_t *data;     /* owned; NULL when there is none */

	/* Private: read with pv_result_message() and pv_result_meta(). */
	struct pv_result_private {
		char *text;              /* the formatted message (owned), or NULL */
		const char *fmt;         /* the message's format until it is formatted */
		json_t *meta;            /* extra metadata built so far (object), or NULL */
		pv_result_later *later;  /* deferred parts, the last attached first */
		unsigned char args[PV_RESULT_ARGS_MAX]; /* copies of fmt's arguments */
	} priv;
};

/* An empty result: not successful, no data. Use before handing it out. */
#define PV_RESULT_INIT {0}
void pv_result_init(pv_result *r);

/* Frees what the result owns and empties it (pv_result_init). Safe on an
 * empty result. */
void pv_result_clear(pv_result *r);

/* Moves `src` into `dst` (clearing dst first); src is left zeroed. */
void pv_result_move(pv_result *dst, pv_result *src);

/* Success; takes ownership of `data` (may be NULL). Drops the message. */
void pv_result_ok(pv_result *r, json_t *data);

/*
 * Failure with a code, class and printf message. Keeps nothing from a
 * previous failure but clears data. `code` is copied (truncated to fit).
 *
 * The message is formatted when first read, not here: `fmt` is kept (so it
 * must outlive the result: a string literal) with a copy of its arguments
 * (strings are copied, so they need not). Conversions: d i u x X o c s p
 * f F e E g G with flags, width, precision and the hh h l ll z j t length
 * modifiers; a format with anything else (`*`, `%n`, long double) or with
 * arguments too long to keep is formatted at once. NULL: no message.
 */
void pv_result_fail(pv_result *r, const char *code, pv_error_class cls,
		    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/*
 * The message, formatted on first read (then kept: later reads return the
 * same text); NULL when there is none. Owned by the result, valid until it
 * is changed or cleared. Safe from several threads at once.
 */
const char *pv_result_message(const pv_result *r);

/* Sets the answering strategy's name (copied, truncated to fit). */
void pv_result_set_provider(pv_result *r, const char *name);

/* Adds (or replaces) one key of the extra metadata; takes `value`. Deferred
 * parts are built first, so keys keep the order they were given in. */
void pv_result_meta_set(pv_result *r, const char *key, json_t *value);

/* Adds the keys of the object `meta` (taken) to the extra metadata; when
 * the result has none yet, `meta` itself becomes it, uncopied. */
void pv_result_meta_merge(pv_result *r, json_t *meta);

/* Attaches a deferred metadata part (taken over; see pv_result_later). */
void pv_result_meta_later(pv_result *r, pv_result_later *part);

/* Whether the result carries extra metadata, built or deferred. */
static inline bool pv_result_has_meta(const pv_result *r)
{
	return r->priv.meta || r->priv.later;
}

/*
 * The extra metadata object, building deferred parts into it first;
 * NULL when there is none. Borrowed: owned by the result, which the caller
 * may change through it.
 */
json_t *pv_result_meta(pv_result *r);

/*
 * The metadata the spec shows: the extra metadata plus "provider",
 * "latency_ms" and "attempts". New reference, caller owns it. Builds
 * deferred parts into the copy, leaving `r` as it is.
 */
json_t *pv_result_metadata(const pv_result *r);

/* The whole result as JSON: success, data, error_code, error_class,
 * message, metadata. New reference. */
json_t *pv_result_to_json(const pv_result *r);

#ifdef __cplusplus
}
#endif
#endif
