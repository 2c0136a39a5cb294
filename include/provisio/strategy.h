/*
 * strategy.h - the interface every provider and every wrapper implements.
 *
 * Modelled on SQLite's sqlite3_vfs: a versioned table of methods and an
 * object whose first member is the pv_strategy base. Providers (aws, sim,
 * ...) and wrappers (fallback, balancer, composite) are all strategies, so
 * wrappers nest. Strategies are reference counted: a context, a wrapper and
 * an in-flight call each hold a reference, so nothing is freed under a call.
 *
 * Implementing one:
 *
 *     struct my_strategy { pv_strategy base; ...my state... };
 *     static const pv_strategy_methods my_methods = {
 *             .version = PV_STRATEGY_METHODS_VERSION,
 *             .execute = my_execute, .capabilities = my_caps, ...
 *     };
 *     struct my_strategy *m = pv_strategy_alloc(sizeof *m, &my_methods, "name", "type");
 *     if (!m)
 *             return pv_error_last_code();
 *
 * (or calloc it and call pv_strategy_setup). The object must come from
 * malloc/calloc: the last pv_strategy_unref calls
 * methods->destroy (free your state, not the object), then frees the base
 * strings and the object.
 */
#ifndef PROVISIO_STRATEGY_H
#define PROVISIO_STRATEGY_H

#include <stdatomic.h>
#include <stdbool.h>
#include <jansson.h>
#include "capabilities.h"
#include "clock.h"
#include "operation.h"
#include "result.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct pv_strategy pv_strategy;

#define PV_STRATEGY_METHODS_VERSION 1

typedef struct pv_strategy_methods {
	int version; /* PV_STRATEGY_METHODS_VERSION */

	/* Connects, loads credentials, ... Returns 0 or PV_E* with
	 * pv_error_set. Optional: NULL means nothing to do. Called once by
	 * pv_strategy_initialize. */
	int (*init)(pv_strategy *s);

	/* Runs one operation. Must fill `out` (already zeroed): success or a
	 * failure with code and class. Returns 0 whenever `out` says what
	 * happened; a negative return is an internal error the caller turns
	 * into an INTERNAL_ERROR result. Must be thread-safe. Required. */
	int (*execute)(pv_strategy *s, const pv_operation *op, pv_result *out);

	/* Fills `out` (zeroed). Required. */
	int (*capabilities)(pv_strategy *s, pv_capabilities *out);

	/* Checks health now and fills `out` (zeroed). Required. */
	int (*health)(pv_strategy *s, pv_health *out);

	/* Frees the implementation's state (not the object). Optional. */
	void (*destroy)(pv_strategy *s);

	/* Optional: runtime statistics as a new JSON object (balancer
	 * strategy_stats, breaker circuit_metrics, ...). */
	json_t *(*stats)(pv_strategy *s);

	/* Optional: state that must outlive the process (breakers, balancer
	 * positions), as a new JSON object, and its restore (0 or PV_E*). */
	json_t *(*state_save)(pv_strategy *s);
	int (*state_load)(pv_strategy *s, const json_t *state);

	/* PV_STRATEGY_* flags; 0 for a provider. */
	unsigned flags;
} pv_strategy_methods;

/* execute fills the latency of its result itself: the child's when it
 * returns one child's answer (a balancer, a fallback, a sequential
 * first_success composite), its own measure otherwise. The kernel then
 * reads the clock around it only to check a deadline: one or two clock
 * reads (~30 ns each) less per operation and layer. A result it fails
 * without calling a child may have latency 0. */
#define PV_STRATEGY_TIMED_BY_CHILD 1u

struct pv_strategy {
	const pv_strategy_methods *methods;
	char *name; /* unique instance name, e.g. "aws-east" */
	char *type; /* kind, e.g. "aws", "fallback" */
	atomic_uint refs;
	atomic_int initialized; /* 1 once init succeeded */
};

/* Fills the base: one reference, copies of name and type. 0, PV_EINVAL
 * (NULL/empty name or type, missing required methods) or PV_ENOMEM. */
int pv_strategy_setup(pv_strategy *s, const pv_strategy_methods *methods,
		      const char *name, const char *type);

/* A zeroed object of `size` bytes (a struct whose first member is the
 * pv_strategy base) with the base set up by pv_strategy_setup. NULL with
 * pv_error set (pv_error_last_code: PV_EINVAL or PV_ENOMEM). The last
 * pv_strategy_unref frees it. */
void *pv_strategy_alloc(size_t size, const pv_strategy_methods *methods, const char *name,
			const char *type);

/* Takes a reference; returns `s`. */
pv_strategy *pv_strategy_ref(pv_strategy *s);

/* Drops a reference; the last one destroys the strategy. NULL is fine. */
void pv_strategy_unref(pv_strategy *s);

static inline const char *pv_strategy_name(const pv_strategy *s) { return s->name; }
static inline const char *pv_strategy_type(const pv_strategy *s) { return s->type; }
static inline bool pv_strategy_is_initialized(pv_strategy *s)
{
	return atomic_load_explicit(&s->initialized, memory_order_acquire) != 0;
}

/* Runs init once (later calls return 0 without calling it again). */
int pv_strategy_initialize(pv_strategy *s);

/*
 * Runs an operation directly, the way wrappers call their children: zeroes
 * `out`, checks that the strategy is initialized (NOT_INITIALIZED) and that
 * the deadline has not passed (TIMEOUT), calls execute, turns a negative
 * return into INTERNAL_ERROR, and fills provider (if the strategy left it
 * empty), attempts (>= 1) and latency_ns (when the strategy left it 0: the
 * duration of this call, measured on `clock`, NULL = system). Always returns
 * with `out` describing the outcome. (The context always records the
 * duration it measured itself.)
 */
void pv_strategy_execute(pv_strategy *s, const pv_operation *op,
			 pv_result *out, const struct pv_clock *clock);

/* Capabilities / health / stats / state, with a sane answer when the
 * optional method is missing (stats, state_save: NULL; state_load:
 * PV_EUNSUPPORTED). */
int pv_strategy_capabilities(pv_strategy *s, pv_capabilities *out);
int pv_strategy_health(pv_strategy *s, pv_health *out);
json_t *pv_strategy_stats(pv_strategy *s);
json_t *pv_strategy_state_save(pv_strategy *s);
int pv_strategy_state_load(pv_strategy *s, const json_t *state);

#ifdef __cplusplus
}
#endif
#endif
