/*
 * balancer_internal.h - the balancer's data structures, shared by its files:
 * balancer.c (the strategy, membership, rosters), balancer_pick.c (the
 * algorithms), balancer_health.c (ejection, probes, the health thread),
 * balancer_stats.c (stats and state), balancer_meta.c (result metadata),
 * balancer_config.c (names and JSON config), maglev.c (consistent hashing).
 *
 * Concurrency design (why it is shaped this way):
 *  - A child is a `lb_member`: reference counted, holding the child, its
 *    metrics recorder (whose in_flight is the connection count) and its
 *    health state, all atomics. A running operation holds a member
 *    reference, so removing a child never frees it under a call.
 *  - Everything derived from the membership (the healthy subset, the smooth
 *    WRR schedule, cumulative weights, the Maglev table) lives in an
 *    immutable `lb_roster`. Changes (add, remove, set_weight, a health
 *    transition) build a new roster under `admin` and swap the pointer.
 *  - Readers never block and never share a cache line with each other: a
 *    pick enters a read section by incrementing its thread's stripe counter
 *    (SRCU-style, two epochs), loads the roster pointer, picks, takes a
 *    member reference and a connection, and leaves. A writer that swapped
 *    the pointer frees the old roster only after every stripe of both
 *    epochs has been seen empty (it flips the epoch between the two waits
 *    so new readers cannot keep it waiting). Read sections last tens of
 *    nanoseconds and never run a child, so the wait is short. So the hot
 *    path is: one uncontended increment, pick, two atomic increments, one
 *    decrement, run the child with no lock held.
 *  - Positions (round robin) live in the balancer, not the roster, so a
 *    rebuild does not restart the rotation.
 */
#ifndef PV_CORE_BALANCER_INTERNAL_H
#define PV_CORE_BALANCER_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include "provisio/balancer.h"
#include "provisio/metrics.h"

enum { LB_HEALTHY = 0, LB_EJECTED = 1 };

/* Bounds of the adaptive factor: a slow child keeps a trickle of traffic
 * (so it is measured and can recover) and never exceeds its weight. */
#define LB_ADAPTIVE_MIN 0.05
#define LB_ADAPTIVE_MAX 1.0
/* Adaptive weights are recomputed every this many picks of a thread. */
#define LB_ADAPTIVE_PERIOD 32
/* Metadata objects kept per thread (see balancer_meta.c): members get
 * consecutive home slots, so up to this many children never collide. */
#define LB_META_POOL 32
/* The longest smooth WRR cycle kept as a schedule. */
#define LB_WRR_MAX 65536

typedef struct lb_member {
	/* What picks read sits first, so one cache line serves a whole scan. */
	atomic_uint refs;
	_Atomic double weight;
	_Atomic double adaptive;     /* factor in [LB_ADAPTIVE_MIN, 1] */
	pv_strategy *child;          /* reference */
	pv_metrics_recorder metrics; /* in_flight = active connections */
	atomic_int state;            /* LB_HEALTHY / LB_EJECTED */
	atomic_uint fail_streak, ok_streak;             /* results (passive) */
	atomic_uint check_fail_streak, check_ok_streak; /* health checks (active) */
	atomic_uint_fast64_t next_probe_ns; /* passive: when an ejected child is probed */
	atomic_uint_fast64_t ejections, probes, checks_failed;
	_Atomic double success_ewma; /* 0..1, recent success rate */
	json_t *meta;                /* immutable {"name","algorithm","strategy"} */
	unsigned meta_home;          /* its slot in the per-thread metadata pool */
} lb_member;

/* One set of candidates and what the algorithms precompute over it. */
typedef struct lb_view {
	size_t n;
	lb_member **m;     /* borrowed from the roster */
	uint32_t *wrr;     /* smooth WRR schedule of indexes into m */
	size_t wrr_len;
	double *cum;       /* cumulative weights (weighted random) */
	uint16_t *maglev;  /* Maglev lookup table of indexes into m */
	size_t maglev_len;
	struct lb_adaptive *adaptive; /* adaptive: the published weights */
} lb_view;

/* The adaptive algorithm's cumulative weight x factor per view member,
 * rewritten by lb_adapt under a seqlock (seq odd while it writes), so a
 * pick is a binary search over one array instead of a pass over every
 * member's counters. */
typedef struct lb_adaptive {
	atomic_uint seq;
	_Atomic double cum[];
} lb_adaptive;

typedef struct lb_roster {
	size_t n;
	lb_member **all; /* references */
	size_t n_ejected;
	lb_view healthy; /* the members in LB_HEALTHY state */
	lb_view every;   /* all members (panic mode) */
} lb_roster;

/* Read-section counters, one cache line each so threads do not contend. */
#define LB_STRIPES 16
typedef struct lb_stripe {
	atomic_long n;
	char pad[64 - sizeof(atomic_long)];
} lb_stripe;

/* The authoritative member list, changed only with `admin` held. */
typedef struct lb_members {
	lb_member **m; /* references */
	size_t n, cap;
} lb_members;

typedef struct lb_balancer {
	pv_strategy base;
	pv_balancer_config cfg; /* weights: NULL (applied at creation) */
	const pv_clock *clock;
	uint64_t interval_ns;

	_Atomic(lb_roster *) roster;
	atomic_uint epoch;                           /* parity selects readers[] row */
	lb_stripe readers[2][LB_STRIPES];            /* read sections in progress */
	pthread_mutex_t admin; /* serializes membership changes and rebuilds */
	lb_members members;

	char pad0[64];
	atomic_uint_fast64_t position; /* round robin / WRR / adaptive period */
	char pad1[64];
	atomic_uint_fast64_t rng_counter; /* seeded mode: splitmix64 over a counter */
	char pad2[64];
	atomic_uint_fast64_t panic_picks, throttled, unavailable, health_rounds, rebuilds;
	atomic_flag adapting;

	/* the health thread (active and hybrid) */
	pthread_mutex_t thr_lock;
	pthread_cond_t thr_cond;
	bool thr_started, thr_stop;
	uint64_t thr_first; /* clock time of the first round */
	pthread_t thread;
} lb_balancer;

/* ---- read sections -------------------------------------------------------- */

/* This thread's stripe (threads are spread over stripes round robin). */
unsigned lb_stripe_index(void);

/* Enters a read section and returns the current roster, valid until
 * lb_read_end(*slot). Never blocks. */
static inline const lb_roster *lb_read_begin(lb_balancer *b, atomic_long **slot)
{
	unsigned e = atomic_load_explicit(&b->epoch, memory_order_relaxed) & 1u;
	*slot = &b->readers[e][lb_stripe_index()].n;
	atomic_fetch_add_explicit(*slot, 1, memory_order_seq_cst);
	return atomic_load_explicit(&b->roster, memory_order_seq_cst);
}

static inline void lb_read_end(atomic_long *slot)
{
	atomic_fetch_sub_explicit(slot, 1, memory_order_release);
}

/* ---- balancer.c -------------------------------------------------------- */
lb_balancer *lb_of(pv_strategy *s); /* NULL when not a balancer */
void lb_member_unref(lb_member *m);
/* A referenced copy of the current members (free with lb_snapshot_free). */
lb_member **lb_snapshot(lb_balancer *b, size_t *n);
void lb_snapshot_free(lb_member **ms, size_t n);
/* Rebuilds the roster from the current members' states (takes admin). */
int lb_rebuild(lb_balancer *b);

/* ---- balancer_stats.c -------------------------------------------------- */
json_t *lb_stats(pv_strategy *s);
json_t *lb_state_save(pv_strategy *s);
int lb_state_load(pv_strategy *s, const json_t *state);

/* ---- balancer_meta.c --------------------------------------------------- */
/* Gives `out` the metadata {"balancer": meta} (meta: a member's object;
 * home: the member's slot in the per-thread pool). */
void lb_attach_meta(pv_result *out, json_t *meta, unsigned home);

/* ---- balancer_pick.c --------------------------------------------------- */
/* Builds a view's tables for `alg`. 0 or PV_ENOMEM. */
int lb_view_build(lb_view *v, pv_lb_algorithm alg);
void lb_view_free(lb_view *v);

typedef enum { LB_PICK_OK = 0, LB_PICK_NONE, LB_PICK_AT_CAP } lb_pick_status;
typedef struct lb_pick {
	lb_member *m; /* referenced, its in_flight taken */
	bool panic, probe;
} lb_pick;
/* Chooses a member for `op` and takes a reference and a connection on it. */
lb_pick_status lb_pick_member(lb_balancer *b, const pv_operation *op, lb_pick *out);
/* Recomputes adaptive factors from EWMA latency and success. */
void lb_adapt(lb_balancer *b, const lb_roster *r);
/* A uniform 64-bit random number (seeded or per-thread). */
uint64_t lb_random(lb_balancer *b);

/* ---- balancer_health.c ------------------------------------------------- */
/* Applies one finished operation to passive health; may rebuild. */
void lb_health_on_result(lb_balancer *b, lb_member *m, const pv_result *r, bool probe);
/* Claims a passive probe of an ejected member of `r`, or NULL. */
lb_member *lb_probe_due(lb_balancer *b, const lb_roster *r);
int lb_health_thread_start(lb_balancer *b);
void lb_health_thread_stop(lb_balancer *b);
bool lb_failure_counts(const pv_result *r);

#endif
