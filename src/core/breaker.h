/*
 * breaker.h - a circuit breaker for one wrapped strategy (internal).
 *
 * closed -> open -> half-open -> closed. It trips on consecutive failures
 * or on the failure rate of a count-based sliding window (after a minimum
 * number of calls); slow successes may count as failures; throttles,
 * capacity and permanent errors count as neither (the provider works, it
 * is busy or the request is bad). Each re-open from half-open doubles the
 * open period up to a cap, shortened by a random jitter. Half-open admits
 * exactly `half_open_probes` calls; their success closes it, one failure
 * re-opens it.
 *
 * Callers ask for a permit before a call and report the outcome with it
 * afterwards: no lock is held in between, so the wrapped call runs free.
 * The closed-state path is lock-free; the mutex guards only transitions and
 * half-open bookkeeping.
 */
#ifndef PV_CORE_BREAKER_H
#define PV_CORE_BREAKER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <jansson.h>
#include "provisio/clock.h"
#include "provisio/result.h"
#include "util/counters.h"
#include "util/rng.h"

typedef enum pv_breaker_state {
	PV_BREAKER_CLOSED = 0,
	PV_BREAKER_OPEN = 1,
	PV_BREAKER_HALF_OPEN = 2,
} pv_breaker_state;

/* "closed", "open", "half_open"; static. */
const char *pv_breaker_state_name(pv_breaker_state st);
/* 0 or PV_EINVAL listing the valid names. */
int pv_breaker_state_parse(const char *name, pv_breaker_state *out);

/* The moves of the state machine, each counted (a breaker that flaps
 * shows it here long after its state looks calm again). */
typedef enum pv_breaker_transition {
	PV_BT_CLOSED_TO_OPEN = 0,
	PV_BT_OPEN_TO_HALF_OPEN,
	PV_BT_HALF_OPEN_TO_CLOSED,
	PV_BT_HALF_OPEN_TO_OPEN,
	PV_BT_COUNT
} pv_breaker_transition;

/* "closed_to_open", "open_to_half_open", "half_open_to_closed",
 * "half_open_to_open"; static. */
const char *pv_breaker_transition_name(pv_breaker_transition t);
/* 0 or PV_EINVAL listing the valid names. */
int pv_breaker_transition_parse(const char *name, pv_breaker_transition *out);
/* The states a transition leaves and enters. */
pv_breaker_state pv_breaker_transition_from(pv_breaker_transition t);
pv_breaker_state pv_breaker_transition_to(pv_breaker_transition t);

typedef struct pv_breaker_config {
	unsigned threshold;     /* consecutive failures that trip, >= 1 */
	unsigned window_size;   /* >= 1 */
	unsigned min_calls;     /* 1..window_size */
	double failure_rate;    /* percent, (0, 100] */
	uint64_t slow_call_ns;  /* 0 = off */
	uint64_t open_ns;       /* first open period, > 0 */
	uint64_t max_open_ns;   /* >= open_ns */
	double jitter;          /* 0..1 */
	unsigned half_open_probes; /* >= 1 */
} pv_breaker_config;

typedef enum pv_permit_kind {
	PV_PERMIT_REJECTED = 0,
	PV_PERMIT_NORMAL,
	PV_PERMIT_PROBE,
} pv_permit_kind;

typedef struct pv_breaker_permit {
	pv_permit_kind kind;
	uint64_t generation; /* the state period the permit was given in */
} pv_breaker_permit;

/* What an outcome means to the breaker. */
typedef enum pv_breaker_outcome {
	PV_OUTCOME_SUCCESS,
	PV_OUTCOME_FAILURE,
	PV_OUTCOME_IGNORED,
} pv_breaker_outcome;

/* The outcome counters of a breaker (pv_breaker_count). */
typedef enum pv_breaker_counter {
	PV_BC_SUCCESSES, PV_BC_FAILURES, PV_BC_SLOW_CALLS, PV_BC_IGNORED, PV_BC_REJECTED,
	PV_BC_COUNT
} pv_breaker_counter;
_Static_assert(PV_BC_COUNT <= PV_COUNTERS_MAX, "a counter set holds PV_COUNTERS_MAX");

typedef struct pv_breaker {
	pv_breaker_config cfg;
	/* state in the low 2 bits, generation above: one load reads both */
	_Atomic uint64_t state_gen;
	_Atomic uint64_t next_attempt_ns; /* when open: monotonic time half-open may start */
	atomic_uint consecutive;
	_Atomic uint64_t window_pos;
	_Atomic uint64_t failure_end;  /* window_pos just past the last failure put in */
	_Atomic unsigned char *window; /* 0 empty, 1 success, 2 failure */

	pv_counters counts; /* PV_BC_* by thread: callers on many cores do not collide */
	_Atomic uint64_t times_opened;
	_Atomic uint64_t transitions[PV_BT_COUNT];
	_Atomic uint64_t last_failure_ns, last_success_ns; /* monotonic; 0 = never */

	pthread_mutex_t lock; /* transitions, the fields below, rng */
	unsigned reopen_streak;   /* re-opens since last closed */
	unsigned probes_admitted; /* in this half-open period */
	unsigned probes_succeeded;
	uint64_t open_period_ns;  /* length of the current/last open period */
	pv_rng rng;
} pv_breaker;

/* 0 or PV_ENOMEM. The config must be valid (the fallback validates it). */
int pv_breaker_init(pv_breaker *b, const pv_breaker_config *cfg, uint64_t seed);
void pv_breaker_destroy(pv_breaker *b);

pv_breaker_state pv_breaker_get_state(const pv_breaker *b);

/* One of the outcome counters, summed over threads. */
uint64_t pv_breaker_count(const pv_breaker *b, pv_breaker_counter which);

/* Asks to make a call now. Reads `clock` only when the breaker is not
 * closed, and only coarsely while it is open with more than a clock tick
 * to go: a probe is never admitted before the open period ends, and on the
 * system clock may be admitted a tick after (more where the kernel lost
 * ticks: a few ms on a busy VM). A rejected permit is counted in the
 * metrics. */
pv_breaker_permit pv_breaker_admit(pv_breaker *b, const pv_clock *clock);
/* The same at `*now`, a precise time the caller has just read (the start
 * of the call it asks to make); when 0 and the breaker is not closed, the
 * time is read into it, for the caller's next use. */
pv_breaker_permit pv_breaker_admit_at(pv_breaker *b, const pv_clock *clock, uint64_t *now);

/* How the breaker classifies a result that took `latency_ns`. */
pv_breaker_outcome pv_breaker_classify(const pv_breaker *b, const pv_result *r,
				       uint64_t latency_ns);

/* Reports the outcome of a call made with `permit` (not a rejected one)
 * that just ended. Reads `clock` (NULL = system) precisely only when the
 * outcome can change the state; a success is stamped with the coarse clock. */
void pv_breaker_record(pv_breaker *b, pv_breaker_permit permit, const pv_result *r,
		       uint64_t latency_ns, const pv_clock *clock);
/* The same for a call that ended at `now` (precise: the caller read it as
 * the call's end), with no clock read of its own. */
void pv_breaker_record_at(pv_breaker *b, pv_breaker_permit permit, const pv_result *r,
			  uint64_t latency_ns, uint64_t now);

/* circuit_metrics of this breaker at monotonic `now_ns`. New reference. */
json_t *pv_breaker_metrics(pv_breaker *b, uint64_t now_ns);

/* State that outlives the process (wall-clock based). New reference. */
json_t *pv_breaker_save(pv_breaker *b, uint64_t now_ns);
/* Restores a saved state at monotonic `now_ns`. A half-open breaker comes
 * back open with no time left (its probes died with the process). 0 or
 * PV_EINVAL naming the bad field; on error the breaker is unchanged. */
int pv_breaker_load(pv_breaker *b, const json_t *state, uint64_t now_ns);
/* Checks a saved state without applying it: 0 or PV_EINVAL as load. */
int pv_breaker_check_state(const json_t *state);

#endif
