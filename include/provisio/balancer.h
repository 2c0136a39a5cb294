/*
 * balancer.h - the load-balancing strategy (the spec's
 * LoadBalancingProviderStrategy).
 *
 * A balancer is a strategy that spreads operations over child strategies
 * with one of eight algorithms, ejects children that fail (passively from
 * results, actively from health checks, or both) and brings them back, caps
 * the operations in flight per child, and lets weights and children change
 * at run time from any thread. See docs/balancer.md for the algorithms, the
 * JSON of its configuration, stats and state, and the benchmark.
 *
 *     pv_balancer_config cfg;
 *     pv_balancer_config_default(&cfg);
 *     cfg.algorithm = PV_LB_WEIGHTED_ROUND_ROBIN;
 *     pv_strategy *kids[] = {aws_east, aws_west}; double w[] = {3, 1};
 *     pv_strategy *lb;
 *     pv_balancer_new(&lb, "lb", kids, w, 2, &cfg, NULL);
 *     pv_strategy_execute(lb, &op, &res, NULL);
 *     ...
 *     pv_strategy_unref(lb);
 *
 * Thread safety: every function may be called from any thread at any time.
 * No lock is held while a child runs.
 */
#ifndef PROVISIO_BALANCER_H
#define PROVISIO_BALANCER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>
#include "clock.h"
#include "strategy.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The type string of balancer strategies. */
#define PV_BALANCER_TYPE "balancer"

/* The most children one balancer holds. */
#define PV_BALANCER_MAX_STRATEGIES 256

typedef enum pv_lb_algorithm {
	PV_LB_ROUND_ROBIN = 0,
	PV_LB_WEIGHTED_ROUND_ROBIN, /* smooth (nginx): exact shares every cycle */
	PV_LB_LEAST_CONNECTIONS,    /* fewest in flight; ties by two random choices */
	PV_LB_LEAST_RESPONSE_TIME,  /* lowest EWMA latency; unmeasured first */
	PV_LB_RANDOM,
	PV_LB_WEIGHTED_RANDOM,
	PV_LB_HASH_BASED,           /* Maglev consistent hashing on the routing key */
	PV_LB_ADAPTIVE,             /* weights follow latency and success rate */
	PV_LB_ALGORITHM_COUNT
} pv_lb_algorithm;

/* "round_robin", ...; "unknown" out of range. Static. */
const char *pv_lb_algorithm_name(pv_lb_algorithm a);
/* Parses a name (any case). 0 or PV_EINVAL listing the valid names. */
int pv_lb_algorithm_parse(const char *name, pv_lb_algorithm *out);

typedef enum pv_lb_health_mode {
	PV_LB_HEALTH_DISABLED = 0, /* never eject */
	PV_LB_HEALTH_PASSIVE,      /* eject from results, re-admit by probe traffic */
	PV_LB_HEALTH_ACTIVE,       /* a background thread checks every interval */
	PV_LB_HEALTH_HYBRID,       /* eject from results and checks; checks re-admit */
	PV_LB_HEALTH_MODE_COUNT
} pv_lb_health_mode;

/* "disabled", "passive", "active", "hybrid"; static. */
const char *pv_lb_health_mode_name(pv_lb_health_mode m);
/* 0 or PV_EINVAL listing the valid names. */
int pv_lb_health_mode_parse(const char *name, pv_lb_health_mode *out);

typedef struct pv_balancer_config {
	pv_lb_algorithm algorithm;             /* round_robin */
	pv_lb_health_mode health_check_mode;   /* passive */
	unsigned max_connections_per_strategy; /* 100; 0 = no cap; <= 1000000 */
	double weight_adjustment_factor;       /* 0.1; (0, 1]: adaptive step */
	double health_check_interval_seconds;  /* 30; (0, 86400]: checks and probes */
	unsigned unhealthy_threshold;          /* 3; 1..1000 consecutive failures */
	unsigned recovery_threshold;           /* 2; 1..1000 consecutive successes */
	uint64_t seed;                         /* 0 = per-thread generators seeded from time */
	bool result_metadata; /* true: results carry "balancer" metadata (costs an allocation) */
	json_t *weights; /* owned object {name: weight >= 0} or NULL; see config_clear */
} pv_balancer_config;

/* Fills the defaults above (weights NULL). */
void pv_balancer_config_default(pv_balancer_config *cfg);

/*
 * Reads the spec's "load_balancing" block: algorithm, health_check_mode,
 * max_connections_per_strategy, weight_adjustment_factor,
 * health_check_interval_seconds, unhealthy_threshold, recovery_threshold,
 * weights {name: w}, seed, result_metadata. Missing keys keep their defaults; unknown keys
 * and bad values are PV_EINVAL with a message naming the field and the
 * valid range. On success cfg->weights holds a new reference (free it with
 * pv_balancer_config_clear); on failure cfg owns nothing.
 */
int pv_balancer_config_from_json(const json_t *json, pv_balancer_config *cfg);

/* Drops what the config owns (weights). Safe on a default config. */
void pv_balancer_config_clear(pv_balancer_config *cfg);

/* The config as JSON (the shape from_json reads). New reference. */
json_t *pv_balancer_config_to_json(const pv_balancer_config *cfg);

/*
 * New balancer over `n` children (0..PV_BALANCER_MAX_STRATEGIES), taking a
 * reference on each (the caller keeps its own). `weights` may be NULL (all
 * 1); each weight must be finite and >= 0 (0 = no traffic from weighted
 * algorithms). cfg->weights, when set, overrides by name and must name only
 * children. `cfg` NULL = defaults; it is copied (its weights are not
 * taken). `clock` NULL = system. Children must have distinct names.
 * In active and hybrid health modes the health thread starts here.
 * Returns 0 with *out holding one reference, PV_EINVAL (message names the
 * field), PV_EEXISTS (duplicate name) or PV_ENOMEM.
 */
int pv_balancer_new(pv_strategy **out, const char *name, pv_strategy *const *children,
		    const double *weights, size_t n, const pv_balancer_config *cfg,
		    const pv_clock *clock);

/* True when `s` is a balancer. */
int pv_balancer_is(const pv_strategy *s);

/* Changes a child's weight (the spec's set_strategy_weight). 0, PV_EINVAL
 * (not a balancer, weight < 0 or not finite) or PV_ENOTFOUND. */
int pv_balancer_set_weight(pv_strategy *s, const char *child, double weight);

/* Adds a child (reference taken) with `weight`. When the balancer is
 * already initialized the child is initialized first (its error is
 * returned and it is not added). 0, PV_EINVAL, PV_EEXISTS (name taken),
 * PV_ESTATE (PV_BALANCER_MAX_STRATEGIES reached), PV_ENOMEM. */
int pv_balancer_add(pv_strategy *s, pv_strategy *child, double weight);

/* Removes a child by name. Operations already running on it finish; its
 * reference is dropped after the last one. 0, PV_EINVAL or PV_ENOTFOUND. */
int pv_balancer_remove(pv_strategy *s, const char *child);

/* Number of children now. */
size_t pv_balancer_count(pv_strategy *s);

/*
 * The spec's strategy_stats: a new object {child name: {"active_connections",
 * "success_rate" (percent, null before any operation),
 * "average_response_time" (ms, null before any), "ewma_response_time",
 * "requests", "successes", "failures", "healthy", "state", "weight",
 * "current_weight", ...}}. Caller owns it. NULL if `s` is not a balancer.
 */
json_t *pv_balancer_strategy_stats(pv_strategy *s);

/*
 * Runs one round of active health checks now, in the calling thread (the
 * health thread calls the same). Checks every child with no lock held and
 * applies the thresholds. Returns the number of children checked, or
 * PV_EINVAL when `s` is not a balancer.
 */
int pv_balancer_check_health(pv_strategy *s);

#ifdef __cplusplus
}
#endif
#endif
