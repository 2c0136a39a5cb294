/*
 * context.h - the registry that runs operations on named strategies.
 *
 * The spec's ProviderContext: register strategies by name, initialize them,
 * switch the current one at run time, or let a selection policy choose one
 * per operation under selection criteria. Keeps per-strategy metrics and
 * cached health.
 *
 * Thread safety: every function may be called from any thread at any time.
 * execute takes a short read lock to choose a strategy and take a reference
 * on it, then calls the strategy with no lock held; register, unregister,
 * switch and policy changes take the write lock for a few instructions. A
 * strategy unregistered during a call is destroyed when the call returns.
 */
#ifndef PROVISIO_CONTEXT_H
#define PROVISIO_CONTEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <jansson.h>
#include "capabilities.h"
#include "clock.h"
#include "metrics.h"
#include "operation.h"
#include "result.h"
#include "strategy.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct pv_context pv_context;

/* Selection policies (the spec's SelectionPolicy). */
typedef enum pv_policy {
	PV_POLICY_NONE = 0,          /* use the current strategy */
	PV_POLICY_FIRST_AVAILABLE,   /* first eligible in registration order */
	PV_POLICY_ROUND_ROBIN,
	PV_POLICY_WEIGHTED_ROUND_ROBIN, /* smooth (nginx) over weights */
	PV_POLICY_LEAST_CONNECTIONS, /* fewest in-flight operations */
	PV_POLICY_FASTEST_RESPONSE,  /* lowest EWMA latency; unmeasured first */
	PV_POLICY_HIGHEST_SUCCESS_RATE, /* highest rate; unmeasured first */
	PV_POLICY_CAPABILITY_BASED,  /* the most capable eligible strategy */
	PV_POLICY_HEALTH_BASED,      /* healthy first, then unknown */
	PV_POLICY_RANDOM,
	PV_POLICY_PERFORMANCE_BASED, /* best score, see docs/kernel.md */
	PV_POLICY_CUSTOM,            /* the callback of pv_context_set_custom_policy */
	PV_POLICY_COUNT
} pv_policy;

/* "round_robin", ...; static. */
const char *pv_policy_name(pv_policy p);
/* Accepts the names above in any case, and the spec's alias
 * "least_response_time" for fastest_response. 0 or PV_EINVAL listing the
 * valid names. */
int pv_policy_parse(const char *name, pv_policy *out);

/* Selection criteria: filters applied before the policy chooses. */
typedef struct pv_criteria {
	pv_op_set required_operations;   /* 0 = only the operation's own type */
	const json_t *required_features; /* array of names or NULL; copied */
	double min_success_rate;         /* percent; 0 = no minimum */
	double max_response_time_ms;     /* EWMA; 0 = no maximum */
	unsigned min_samples;            /* rate/time apply after this many ops; 0 = 10 */
	bool require_healthy;            /* skip strategies known unhealthy */
	const char *const *exclude;      /* names never chosen; copied */
	size_t n_exclude;
	const char *const *prefer;       /* chosen first when eligible; copied */
	size_t n_prefer;
} pv_criteria;

/* What a custom policy sees of each eligible strategy. */
typedef struct pv_candidate {
	const char *name;
	const char *type;
	double weight;
	int health;               /* 1 healthy, 0 unhealthy, -1 unknown */
	const pv_metrics_recorder *metrics;
	const pv_capabilities *capabilities;
} pv_candidate;

/* Returns the index of the chosen candidate, or -1 for none. Runs under the
 * context's read lock: it must not call back into the context. */
typedef int (*pv_select_fn)(void *user, const pv_candidate *cands, size_t n,
			    const pv_operation *op);

typedef struct pv_context_options {
	const pv_clock *clock;          /* NULL = system */
	double health_interval_seconds; /* health cache lifetime; 0 = 30 */
	uint64_t rng_seed;              /* random policy; 0 = from time */
} pv_context_options;

/* New empty context. `opts` may be NULL. Free with pv_context_free. */
int pv_context_new(pv_context **out, const pv_context_options *opts);
/* Stops the health monitor, drops every strategy. NULL is fine. */
void pv_context_free(pv_context *ctx);

/*
 * Registers `s` under its name, taking a new reference (the caller keeps
 * its own). Returns 0, or 1 when it replaced a strategy of the same name
 * (the message of pv_error_last says so), or PV_E*. The first strategy
 * registered becomes the current one. `weight` (> 0) is for
 * weighted_round_robin; pv_context_register uses 1.
 */
int pv_context_register(pv_context *ctx, pv_strategy *s);
int pv_context_register_weighted(pv_context *ctx, pv_strategy *s, double weight);
/* 0 or PV_ENOTFOUND. If it was current, the first remaining strategy whose
 * initialization did not fail becomes current (none when there is none). */
int pv_context_unregister(pv_context *ctx, const char *name);
/* 0, PV_ENOTFOUND or PV_EINVAL (weight <= 0 or not finite). */
int pv_context_set_weight(pv_context *ctx, const char *name, double weight);

/*
 * Initializes every registered strategy not yet initialized. Returns 0 when
 * at least one strategy is usable, else PV_ESTATE. `report` (may be NULL)
 * receives a new object {name: {"initialized": bool, "error": "..."}}.
 * A current strategy whose init failed, or no current strategy at all, is
 * replaced by the first usable one.
 */
int pv_context_initialize(pv_context *ctx, json_t **report);

/* Makes `name` current. PV_ENOTFOUND for an unknown name, PV_ESTATE when
 * its initialization failed. */
int pv_context_set_strategy(pv_context *ctx, const char *name);
/* Copies the current strategy's name into buf (""when none). 0, or
 * PV_ENOTFOUND when none is current. */
int pv_context_current(pv_context *ctx, char *buf, size_t size);
/* Registered names in registration order, new JSON array. */
json_t *pv_context_names(pv_context *ctx);
size_t pv_context_count(pv_context *ctx);

/* Whether selection policies may choose `name` (default true). A graph
 * built from configuration registers every strategy, so execute_on reaches
 * any of them, but lets policies choose only among its top-level ones.
 * 0 or PV_ENOTFOUND. */
int pv_context_set_selectable(pv_context *ctx, const char *name, bool selectable);

/* Metrics collection (default on). Off, execute reads no clock (unless the
 * operation has a deadline) and records nothing: results carry no latency. */
void pv_context_set_metrics_enabled(pv_context *ctx, bool enabled);

/* Runtime policy and criteria. set_criteria(NULL) clears them.
 * set_policy(PV_POLICY_CUSTOM) is PV_EINVAL until a callback is registered
 * (set_custom_policy registers it and selects the policy); removing the
 * callback (fn NULL) while the custom policy is in use is PV_EINVAL. */
int pv_context_set_policy(pv_context *ctx, pv_policy policy);
pv_policy pv_context_policy(pv_context *ctx);
int pv_context_set_criteria(pv_context *ctx, const pv_criteria *criteria);
int pv_context_set_custom_policy(pv_context *ctx, pv_select_fn fn, void *user);

/*
 * Runs `op` on the current strategy or, when a policy is set, on the one it
 * selects (a policy that reads health learns it first: see put_health
 * below). Always fills `out`: NO_STRATEGY_AVAILABLE when none fits,
 * NOT_INITIALIZED, OPERATION_NOT_SUPPORTED (counted as a failure of that
 * strategy), TIMEOUT when the deadline has already passed, or the
 * strategy's own answer. out->provider names the strategy that answered.
 */
void pv_context_execute(pv_context *ctx, const pv_operation *op, pv_result *out);
/* Runs on the named strategy, bypassing selection (STRATEGY_NOT_FOUND). */
void pv_context_execute_on(pv_context *ctx, const char *name,
			   const pv_operation *op, pv_result *out);

/* The name selection would choose for `op` now (for tests and `explain`).
 * 0 and the name in buf, or PV_ENOTFOUND when none fits. */
int pv_context_select(pv_context *ctx, const pv_operation *op, char *buf, size_t size);

/* The registered strategy `name` with a new reference (release with
 * pv_strategy_unref), or NULL. */
pv_strategy *pv_context_strategy(pv_context *ctx, const char *name);

/* Metrics of one strategy (PV_ENOTFOUND) or all as JSON {name: {...}}. */
int pv_context_metrics(pv_context *ctx, const char *name, pv_metrics *out);
json_t *pv_context_metrics_json(pv_context *ctx);

/* Capabilities as cached at registration/initialization. */
int pv_context_capabilities(pv_context *ctx, const char *name, pv_capabilities *out);

/*
 * Health of one strategy (`name` NULL: the current one): the cached answer
 * when younger than the health interval, else a fresh check (made with no
 * lock held). 0 or PV_ENOTFOUND.
 */
int pv_context_check_health(pv_context *ctx, const char *name, pv_health *out);

/*
 * Health that outlives a process. A pick that reads health (the
 * health_based and custom policies, the require_healthy criterion) first
 * makes it known for every strategy it may choose: cached here, else
 * checked then, once per strategy and health interval. A short process
 * (one Host Factory call) learns what another process checked with
 * put_health and hands on what it checked with cached_health; the broker
 * keeps both in its store, the kernel knows nothing of where.
 *
 * put_health caches `h` as checked at h->checked_at_ms (wall clock): it
 * expires one interval after that, so a record older than the interval is
 * checked again at the first pick that needs it. A record older than what
 * is cached is ignored. 0, PV_ENOTFOUND or PV_EINVAL (checked_at_ms <= 0).
 * cached_health copies the cached health (0), or PV_ENOTFOUND when the
 * name is unknown or its health was never learned. picks_read_health says
 * whether the policy and criteria in force read health.
 */
int pv_context_put_health(pv_context *ctx, const char *name, const pv_health *h);
int pv_context_cached_health(pv_context *ctx, const char *name, pv_health *out);
bool pv_context_picks_read_health(pv_context *ctx);
/* Re-checks every strategy whose cached health is stale (or all, when
 * `force`). Returns how many were checked. */
int pv_context_refresh_health(pv_context *ctx, bool force);
/* A background thread that refreshes stale health every interval. */
int pv_context_start_health_monitor(pv_context *ctx);
void pv_context_stop_health_monitor(pv_context *ctx);

/* Everything as JSON: current, policy, and per strategy type, weight,
 * initialized, health, metrics, stats. New reference. */
json_t *pv_context_to_json(pv_context *ctx);

#ifdef __cplusplus
}
#endif
#endif
