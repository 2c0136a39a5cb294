/*
 * composite_internal.h - what the files of the composite strategy share.
 *
 * composite.c         the strategy object, children, health, stats
 * composite_config.c  the config: defaults, JSON, mode and policy names
 * composite_run.c     running a set of child calls in order or on the pool,
 *                     with the deadline, the timeout and late finishers
 * composite_agg.c     the gate and the four aggregation policies
 * composite_create.c  create_instances: split, spill-over, hedge
 *
 * Children live in "members" (a strategy, its weight, its counters) and a
 * call sees an immutable "roster" of members with one reference, taken
 * without a lock (composite.c: roster_get): adding or removing a child
 * publishes a new roster, so a call never holds a lock while children run
 * and never sees a half-edited list.
 */
#ifndef PV_CORE_COMPOSITE_INTERNAL_H
#define PV_CORE_COMPOSITE_INTERNAL_H

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include "provisio/composite.h"
#include "provisio/strategy.h"
#include "util/counters.h"
#include "util/pool.h"

typedef struct cmember {
	atomic_uint refs;
	pv_strategy *s;        /* one reference */
	_Atomic double weight; /* > 0 */
	pv_op_set ops;         /* cached at add time */
	pv_counters counts;    /* MC_*: calls = successes + failures */
	_Atomic uint64_t last_ns; /* about how long its last call took; UINT64_MAX: unknown */
} cmember;

typedef struct croster {
	atomic_uint refs;
	atomic_bool released; /* its members were let go (refs reached 0) */
	struct croster *retired; /* the next older replaced roster */
	size_t n;
	cmember *m[]; /* one reference each */
} croster;

typedef struct composite {
	pv_strategy base;
	size_t name_len;         /* strlen(base.name), measured once */
	pv_composite_config cfg; /* owns weights / volatile_fields; fixed */
	uint64_t timeout_ns;     /* cfg.timeout_seconds, converted once */
	bool sequential_first;   /* reads: the first child's success is the answer */
	const pv_clock *clock;
	pv_pool *pool;
	pthread_mutex_t lock;    /* serialises publishing a roster */
	_Atomic(croster *) roster; /* the current one; read without the lock */
	croster *retired;        /* replaced rosters' blocks, freed at destroy (lock) */
	pv_counters counts;      /* CC_*: calls = successes + failures */
	_Atomic(struct kept_merge *) kept;    /* a merge_all answer to reuse (composite_agg.c) */
} composite;

/* A member's counters; a thread bumps its own row (util/counters.h). */
enum { MC_SUCCESSES, MC_FAILURES, MC_TIMEOUTS };
/* The composite's. */
enum {
	CC_SUCCESSES,
	CC_FAILURES,
	CC_LATE_RESULTS,    /* finished after the call gave up */
	CC_LATE_REAPED,     /* machines of late creates terminated */
	CC_SURPLUS_REAPED,  /* hedge surplus machines terminated */
	CC_MERGES_REUSED,   /* merge_all answers handed out again (composite_agg.c) */
};

/* Frees a kept merge and lets go of what it holds (NULL: nothing). */
void pv_kept_merge_free(struct kept_merge *k);

void pv_croster_unref(croster *r);

/* Config checks shared with composite.c (composite_config.c). */
int pv_composite_config_check(const pv_composite_config *cfg);
int pv_composite_config_copy(pv_composite_config *dst, const pv_composite_config *src);
static inline bool pv_composite_valid_weight(double w) { return isfinite(w) && w > 0; }
void pv_cmember_unref(cmember *m);
static inline cmember *pv_cmember_ref(cmember *m)
{
	atomic_fetch_add_explicit(&m->refs, 1, memory_order_relaxed);
	return m;
}

/* The keys of merged data: each child's answer, and the keys they disagree on. */
#define BY_CHILD_KEY "by_child"
#define CONFLICTS_KEY "conflicting_keys"

/* What one child call gave. */
typedef struct child_outcome {
	cmember *m;        /* borrowed from the call's roster */
	pv_result res;
	uint64_t seq;      /* completion order, from 1; 0 = did not finish */
	int64_t requested; /* create: machines asked of it; 0 for other ops */
	bool abstained;    /* NOT_FOUND on an id-addressed op: not its instances */
	bool cancelled;    /* not run or not awaited: the answer was already known */
} child_outcome;

/* One child call to make; `params` is a reference the run takes over. */
typedef struct child_job {
	cmember *m;
	json_t *params;
	int64_t requested;
} child_job;

/*
 * Runs `jobs` (n >= 1) with `op` (its params are ignored: each job has its
 * own; its deadline bounds the run). In parallel, on the pool: returns when
 * all have finished, when `stop_after` successes are in (0 = wait for all),
 * or at the deadline, with the rest recorded as TIMEOUT. Sequentially,
 * stops after `stop_after` successes. Fills out[0..n) (each cleared by the
 * caller with child_outcomes_clear). Updates member counters. `now`, when
 * not NULL, holds a time just read on the composite's clock: a sequential
 * run starts its first child from it and leaves there the time its last
 * child ended (one clock read a child: pv_strategy_execute_from); a
 * parallel run leaves 0 (not known).
 */
void pv_composite_run(composite *c, const pv_operation *op, child_job *jobs, size_t n,
		      bool parallel, size_t stop_after, child_outcome *out, uint64_t *now);

void child_outcomes_clear(child_outcome *o, size_t n);

/* Counts one finished child call in the member's counters. */
void pv_composite_count_member(cmember *m, const pv_result *r);

/* The deadline of one composite call: the op's, capped by timeout_seconds. */
uint64_t pv_composite_deadline(const composite *c, const pv_operation *op);
/* The same from a time already read. */
uint64_t pv_composite_deadline_at(const composite *c, const pv_operation *op, uint64_t now);

/* Gate then policy over outcomes of a read (non-create) operation, run
 * with roster `r` (the call's). */
void pv_composite_aggregate(composite *c, const croster *r, const pv_operation *op,
			    child_outcome *o, size_t n, pv_result *out);

/* create_instances in the configured mode, over the capable members. */
void pv_composite_create(composite *c, const pv_operation *op, cmember **members, size_t n,
			 pv_result *out);

/* Free room a child reports in its capabilities' limitations
 * (available_capacity, capacity, max_instances_per_request: the smallest),
 * -1 when unbounded or unknown. */
int64_t pv_composite_child_room(pv_strategy *child);

/* Machines a create result made (instances, instance_ids, or count). */
int64_t pv_create_made(const pv_result *r);

/* What a policy adds to the composite's metadata. */
enum { META_NONE, META_PROVIDERS, META_AGREEMENT };
typedef struct meta_extra {
	int kind;             /* META_* */
	size_t votes, voters; /* META_AGREEMENT */
	bool *agreeing;       /* META_AGREEMENT: per outcome (owned) */
} meta_extra;

/* Attaches "composite", "mode", "policy", the extra (NULL: none) and, when
 * something is worth telling, "children" ([{child, provider, success,
 * latency_ms, error_code?, abstained?, cancelled?, requested?, made?}]) as
 * a deferred part of `out`'s metadata. */
void pv_composite_meta(const composite *c, pv_result *out, const child_outcome *o, size_t n,
		       const meta_extra *extra);

#endif
