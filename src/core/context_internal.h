/*
 * context_internal.h - the registry's data, shared by context.c (registry,
 * execution, health) and select.c (criteria and selection policies).
 */
#ifndef PV_CORE_CONTEXT_INTERNAL_H
#define PV_CORE_CONTEXT_INTERNAL_H

#include <pthread.h>
#include "provisio/context.h"

enum { INIT_PENDING = 0, INIT_OK = 1, INIT_FAILED = -1 };
enum { HEALTH_UNKNOWN = -1, HEALTH_DOWN = 0, HEALTH_UP = 1 };

/* One registered strategy. Lives while the registry or a call holds it:
 * refs = 1 for the registry + 1 per call in flight. */
typedef struct entry {
	pv_strategy *s;
	atomic_uint_fast64_t refs;
	bool registered;          /* under the context's write lock */
	bool selectable;          /* under the context's lock */
	double weight;            /* under the context's lock */
	pv_capabilities caps;     /* replaced under the write lock */
	unsigned capability_score;
	atomic_int init_state;
	char *init_error;         /* under the write lock */
	atomic_int health_state;  /* HEALTH_*; read by selection without locks */
	pthread_mutex_t health_lock;
	pthread_cond_t health_checked; /* a check in flight ended */
	bool health_refreshing;   /* under health_lock */
	bool health_cached;       /* under health_lock */
	pv_health health;         /* under health_lock */
	uint64_t health_expires_ns; /* context clock; 0 = stale; under health_lock */
	pv_metrics_recorder metrics;
} entry;

/* Owned copy of the selection criteria. */
typedef struct criteria {
	bool set;
	pv_op_set required_operations;
	json_t *required_features;
	double min_success_rate;
	double max_response_ns;
	unsigned min_samples;
	bool require_healthy;
	char **exclude;
	size_t n_exclude;
	char **prefer;
	size_t n_prefer;
} criteria;

struct pv_context {
	pthread_rwlock_t lock;
	entry **entries; /* registration order */
	size_t n, cap;
	entry *current;
	pv_policy policy;
	criteria crit;
	pv_select_fn custom;
	void *custom_user;
	uint32_t *wrr;   /* smooth weighted round-robin schedule: entry indexes */
	size_t wrr_len;
	atomic_uint_fast64_t cursor; /* round robin, rotation of ties, random */
	atomic_bool metrics_off;
	uint64_t seed;

	const pv_clock *clock;
	uint64_t health_interval_ns;

	/* Health for picks: set while the policy or the criteria read health.
	 * Until `health_known_until` (context clock) every strategy a pick may
	 * choose has a fresh health; past it, the next pick learns it first. */
	atomic_bool picks_read_health;
	atomic_uint_fast64_t health_known_until;
	pthread_mutex_t known_lock; /* known_epoch, and stores of known_until */
	uint64_t known_epoch;       /* bumped whenever what is known may change */

	pthread_mutex_t monitor_lock;
	pthread_cond_t monitor_cond;
	bool monitor_running, monitor_stop;
	pthread_t monitor;
};

/* Chooses an entry for `op` (read lock held). NULL when none fits. */
entry *pv_select_entry(pv_context *ctx, const pv_operation *op);

/* Rebuilds the weighted round-robin schedule (write lock held). */
int pv_select_rebuild_schedule(pv_context *ctx);

void pv_criteria_clear(criteria *c);
int pv_criteria_copy(criteria *dst, const pv_criteria *src);

#endif
