/*
 * composite.h - one strategy that runs an operation on several children.
 *
 * The spec's CompositeProviderStrategy. A composite holds child strategies
 * (providers or other wrappers) and runs each operation on the children
 * that support it, in one of three modes, then turns their answers into one
 * result by an aggregation policy after a gate:
 *
 *   mode        parallel   all children at once on a bounded worker pool
 *               sequential children in order (first_success stops early)
 *               redundant  every child gets the identical request, at once;
 *                          the policy decides (typically majority_wins)
 *   gate        failure_threshold, min_success_count, require_all_success
 *   policy      merge_all, first_success, best_performance, majority_wins
 *
 * Creating machines is not a read, so create_instances never multiplies the
 * requested count: parallel splits it across children by weight and
 * reported capacity, sequential spills over (ask the next child for what
 * the previous could not make), and a hedged create (parallel first_success,
 * redundant) keeps one child's machines and terminates the surplus through
 * the child that made it. See docs/composite.md for the full table.
 *
 * Thread safety: execute, add, remove and set_weight may be called from any
 * thread at any time. No lock is held while a child runs.
 */
#ifndef PROVISIO_COMPOSITE_H
#define PROVISIO_COMPOSITE_H

#include <stdbool.h>
#include <stddef.h>
#include <jansson.h>
#include "clock.h"
#include "strategy.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The type string of composite strategies. */
#define PV_COMPOSITE_TYPE "composite"

/* Error codes a composite adds to the kernel's. */
#define PV_ERR_FAILURE_THRESHOLD_EXCEEDED "FAILURE_THRESHOLD_EXCEEDED"
#define PV_ERR_INSUFFICIENT_SUCCESS "INSUFFICIENT_SUCCESS"
#define PV_ERR_NOT_ALL_SUCCEEDED "NOT_ALL_SUCCEEDED"
#define PV_ERR_NO_MAJORITY "NO_MAJORITY"

typedef enum pv_composite_mode {
	PV_COMPOSITE_PARALLEL = 0,
	PV_COMPOSITE_SEQUENTIAL,
	PV_COMPOSITE_REDUNDANT,
	PV_COMPOSITE_MODE_COUNT
} pv_composite_mode;

/* "parallel", "sequential", "redundant"; "unknown" otherwise. Static. */
const char *pv_composite_mode_name(pv_composite_mode m);
/* Case-insensitive. 0 or PV_EINVAL listing the valid values. */
int pv_composite_mode_parse(const char *name, pv_composite_mode *out);

typedef enum pv_aggregation {
	PV_AGG_MERGE_ALL = 0,
	PV_AGG_FIRST_SUCCESS,
	PV_AGG_BEST_PERFORMANCE,
	PV_AGG_MAJORITY_WINS,
	PV_AGG_COUNT
} pv_aggregation;

/* "merge_all", "first_success", "best_performance", "majority_wins". */
const char *pv_aggregation_name(pv_aggregation a);
/* Case-insensitive. 0 or PV_EINVAL listing the valid values. */
int pv_aggregation_parse(const char *name, pv_aggregation *out);

typedef struct pv_composite_config {
	pv_composite_mode mode;             /* default parallel */
	pv_aggregation aggregation_policy;  /* default merge_all */
	unsigned max_concurrent_operations; /* pool threads, 1..1024; default 10 */
	double timeout_seconds;             /* per call, > 0 and <= 86400; default 30 */
	double failure_threshold;           /* 0..1: fail when failed/ran > this; default 1 (off) */
	unsigned min_success_count;         /* 1..1024; default 1 */
	bool require_all_success;           /* default false */
	double healthy_fraction;            /* 0..1; default 0.5 */
	/* Owned (pv_composite_config_clear frees them); NULL = none/default. */
	json_t *weights;         /* {child name: weight > 0} */
	json_t *volatile_fields; /* [key names majority_wins ignores]; NULL = the defaults */
} pv_composite_config;

/* The defaults above. */
void pv_composite_config_default(pv_composite_config *cfg);

/*
 * Reads a config object (every key optional): mode, aggregation_policy,
 * max_concurrent_operations, timeout_seconds, failure_threshold,
 * min_success_count, require_all_success, healthy_fraction, weights,
 * volatile_fields. Starts from the defaults. Unknown keys and bad values are
 * PV_EINVAL with a message naming the field and its valid range; on error
 * `cfg` holds the defaults and owns nothing. Clear it with
 * pv_composite_config_clear.
 */
int pv_composite_config_from_json(const json_t *json, pv_composite_config *cfg);

/* Frees what the config owns and resets it to the defaults. */
void pv_composite_config_clear(pv_composite_config *cfg);

/* The config as JSON (the shape from_json reads). New reference. */
json_t *pv_composite_config_to_json(const pv_composite_config *cfg);

/*
 * New composite (one reference) over `children` (n may be 0; each gets a
 * reference; names must be unique). `weights` (may be NULL) gives each
 * child's weight (> 0); when NULL, cfg->weights by child name, else 1.
 * `cfg` NULL = defaults; it is copied. `clock` NULL = system; it must
 * outlive the composite. 0, PV_EINVAL (message names the field), PV_EEXISTS
 * (duplicate child name) or PV_ENOMEM.
 */
int pv_composite_new(pv_strategy **out, const char *name, pv_strategy *const *children,
		     const double *weights, size_t n, const pv_composite_config *cfg,
		     const pv_clock *clock);

/* True when `s` is a composite. */
bool pv_strategy_is_composite(const pv_strategy *s);

/*
 * Adds a child at the end (takes a reference; the caller keeps its own).
 * Calls already running keep the children they started with. 0, PV_EINVAL
 * (not a composite, weight <= 0 or not finite, child is the composite
 * itself), PV_EEXISTS (name taken) or PV_ENOMEM.
 */
int pv_composite_add(pv_strategy *composite, pv_strategy *child, double weight);

/* Removes a child by name; a call using it keeps it alive until it returns.
 * 0, PV_EINVAL (not a composite) or PV_ENOTFOUND. */
int pv_composite_remove(pv_strategy *composite, const char *name);

/* 0, PV_EINVAL (not a composite, weight <= 0 or not finite) or PV_ENOTFOUND. */
int pv_composite_set_weight(pv_strategy *composite, const char *name, double weight);

/* Number of children now (0 when `composite` is not one). */
size_t pv_composite_count(pv_strategy *composite);

/* Child names in order with their weights: new array
 * [{"name": .., "weight": ..}], caller owns it; NULL when not a composite. */
json_t *pv_composite_children(pv_strategy *composite);

#ifdef __cplusplus
}
#endif
#endif
