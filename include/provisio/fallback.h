/*
 * fallback.h - the fallback strategy: a primary, ordered fallbacks, retries,
 * circuit breakers, a retry budget and graceful degradation.
 *
 * The spec's FallbackProviderStrategy. It wraps a primary strategy and an
 * ordered list of fallbacks (each any strategy: a provider, a balancer,
 * another fallback) and is itself a strategy of type "fallback", so it nests.
 *
 * Modes (the spec's FallbackMode):
 *   immediate            primary once, then each fallback once; first success wins.
 *   retry_then_fallback  the primary up to 1 + max_retries times (exponential
 *                        backoff, equal jitter by default: see retry_jitter;
 *                        only for transient and throttled failures, within
 *                        the retry budget and the deadline), then each
 *                        fallback once.
 *   circuit_breaker      one breaker per wrapped strategy; an open breaker
 *                        skips its strategy without calling it.
 *   health_based         skips strategies whose cached health says unhealthy.
 *
 * Everything is thread-safe. No lock is held while a wrapped strategy runs.
 * See docs/fallback.md for every field, the JSON shapes and the design.
 */
#ifndef PROVISIO_FALLBACK_H
#define PROVISIO_FALLBACK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>
#include "clock.h"
#include "strategy.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Error codes of strategies the fallback skipped without calling them. */
#define PV_ERR_CIRCUIT_OPEN "CIRCUIT_OPEN"
#define PV_ERR_UNHEALTHY "UNHEALTHY"

typedef enum pv_fallback_mode {
	PV_FALLBACK_IMMEDIATE = 0,
	PV_FALLBACK_RETRY_THEN_FALLBACK,
	PV_FALLBACK_CIRCUIT_BREAKER,
	PV_FALLBACK_HEALTH_BASED,
	PV_FALLBACK_MODE_COUNT
} pv_fallback_mode;

/* How random the wait before a retry is, of the backoff ceiling
 * c = min(retry_max_delay_seconds, retry_delay_seconds * 2^n) for retry n:
 *   equal  uniform in [c/2, c]: never less than half the configured delay,
 *          yet retries of clients that failed together still spread (default)
 *   full   uniform in [0, c]: spreads most, but may wait next to nothing
 *   none   exactly c */
typedef enum pv_retry_jitter {
	PV_JITTER_EQUAL = 0,
	PV_JITTER_FULL,
	PV_JITTER_NONE,
	PV_JITTER_COUNT
} pv_retry_jitter;

/* "equal", "full", "none"; "unknown" out of range. Static. */
const char *pv_retry_jitter_name(pv_retry_jitter j);

/* "immediate", "retry_then_fallback", "circuit_breaker", "health_based";
 * "unknown" out of range. Static. */
const char *pv_fallback_mode_name(pv_fallback_mode mode);
/* Parses a mode name (any case). 0 or PV_EINVAL listing the valid names. */
int pv_fallback_mode_parse(const char *name, pv_fallback_mode *out);

/* The spec's FallbackConfig. Field names are the JSON keys. Times are
 * seconds. Defaults and ranges are in docs/fallback.md and
 * pv_fallback_config_default. */
typedef struct pv_fallback_config {
	pv_fallback_mode mode;

	/* retry_then_fallback */
	unsigned max_retries;           /* retries of the primary after its first call */
	double retry_delay_seconds;     /* backoff base */
	double retry_max_delay_seconds; /* backoff cap */
	pv_retry_jitter retry_jitter;   /* "retry_jitter": equal (default), full, none */

	/* circuit_breaker */
	unsigned circuit_breaker_threshold;            /* consecutive failures that trip */
	double circuit_breaker_timeout_seconds;        /* first open period */
	double circuit_breaker_max_timeout_seconds;    /* cap of the growing open period */
	double circuit_breaker_jitter;                 /* 0..1: open period shortened by up to this fraction */
	unsigned circuit_breaker_window_size;          /* calls in the sliding failure-rate window */
	unsigned circuit_breaker_min_calls;            /* calls in the window before the rate counts */
	double circuit_breaker_failure_rate_threshold; /* percent of failures in the window that trips */
	double circuit_breaker_slow_call_seconds;      /* slower successes count as failures; 0 = off */
	unsigned circuit_breaker_half_open_probes;     /* calls admitted while half-open */

	/* health_based */
	double health_check_interval_seconds;

	/* all modes */
	bool enable_graceful_degradation;

	/* the retry budget (retry_then_fallback) */
	double retry_budget_ratio;                  /* retries per first call allowed, 0..1 */
	double retry_budget_min_retries_per_second; /* floor, allowed even without traffic */
	double retry_budget_window_seconds;         /* how far back calls count */

	uint64_t seed; /* jitter random numbers; 0 = seeded from the time */
} pv_fallback_config;

/* Fills `cfg` with the defaults. */
void pv_fallback_config_default(pv_fallback_config *cfg);

/* 0, or PV_EINVAL with a message naming the field and its valid range. */
int pv_fallback_config_validate(const pv_fallback_config *cfg);

/*
 * Defaults overridden by the keys of `obj` (a JSON object with the field
 * names above; "mode" is a mode name). The structural keys "primary",
 * "fallbacks", "type" and "name" of the spec's configuration block are
 * accepted and ignored (the config builder reads them). Any other key, a
 * wrong JSON type or an invalid value is PV_EINVAL naming the key. `cfg` is
 * written only on success.
 */
int pv_fallback_config_from_json(const json_t *obj, pv_fallback_config *cfg);

/* The configuration as a JSON object (the same keys). New reference. */
json_t *pv_fallback_config_to_json(const pv_fallback_config *cfg);

/*
 * New fallback strategy of type "fallback" named `name`, holding a reference
 * on `primary` and on each of the `n_fallbacks` strategies of `fallbacks`
 * (may be NULL when n_fallbacks is 0). `cfg` NULL = defaults; it is copied.
 * `clock` NULL = system; it must outlive the strategy. *out receives one
 * reference (the caller's; release with pv_strategy_unref). 0, PV_EINVAL
 * (bad config, NULL primary, a child twice, duplicate names) or PV_ENOMEM.
 * Its init initializes every child and succeeds when at least one did.
 */
int pv_fallback_new(pv_strategy **out, const char *name, pv_strategy *primary,
		    pv_strategy *const *fallbacks, size_t n_fallbacks,
		    const pv_fallback_config *cfg, const pv_clock *clock);

/* True when `s` is a fallback strategy made by pv_fallback_new. */
bool pv_fallback_is(const pv_strategy *s);

/*
 * The spec's circuit_metrics: the primary's breaker at the top level
 * ("state", "failure_count", "failure_rate", "total_requests",
 * "successful_requests", "last_failure_time", "last_success_time",
 * "next_attempt_time", "times_opened", "transitions": {"closed_to_open",
 * "open_to_half_open", "half_open_to_closed", "half_open_to_open": counts},
 * ...) and every wrapped strategy's under "strategies": {name: {...}}. New reference owned by the caller;
 * NULL when `s` is not a fallback strategy.
 */
json_t *pv_fallback_circuit_metrics(pv_strategy *s);

#ifdef __cplusplus
}
#endif
#endif
