/*
 * result.h - what a strategy answers.
 *
 * A result is a plain struct the caller owns (usually on its stack). The hot
 * path fills fixed fields (success, class, code, provider, latency,
 * attempts) without allocating; JSON data, the message and extra metadata
 * are allocated only when a strategy has something to say.
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

typedef struct pv_result {
	bool success;
	pv_error_class error_class;
	char error_code[PV_RESULT_CODE_MAX]; /* "" on success */
	char provider[PV_RESULT_NAME_MAX];   /* strategy that answered (leaf) */
	uint64_t latency_ns;                 /* measured by whoever ran it */
	uint32_t attempts;                   /* calls made to produce it, >= 1 */
	json_t *data;     /* owned; NULL when there is none */
	char *message;    /* owned; NULL when there is none */
	json_t *metadata; /* owned; extra metadata (object) or NULL */
} pv_result;

/* A zeroed result: not successful, no data. Use before handing it out. */
#define PV_RESULT_INIT {0}
void pv_result_init(pv_result *r);

/* Frees what the result owns and zeroes it. Safe on a zeroed result. */
void pv_result_clear(pv_result *r);

/* Moves `src` into `dst` (clearing dst first); src is left zeroed. */
void pv_result_move(pv_result *dst, pv_result *src);

/* Success; takes ownership of `data` (may be NULL). */
void pv_result_ok(pv_result *r, json_t *data);

/*
 * Failure with a code, class and printf message. Keeps nothing from a
 * previous failure but clears data. `code` is copied (truncated to fit).
 */
void pv_result_fail(pv_result *r, const char *code, pv_error_class cls,
		    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* Sets the answering strategy's name (copied, truncated to fit). */
void pv_result_set_provider(pv_result *r, const char *name);

/* Adds (or replaces) one key of the extra metadata; takes `value`. */
void pv_result_meta_set(pv_result *r, const char *key, json_t *value);

/*
 * The metadata the spec shows: the extra metadata plus "provider",
 * "latency_ms" and "attempts". New reference, caller owns it.
 */
json_t *pv_result_metadata(const pv_result *r);

/* The whole result as JSON: success, data, error_code, error_class,
 * message, metadata. New reference. */
json_t *pv_result_to_json(const pv_result *r);

#ifdef __cplusplus
}
#endif
#endif
