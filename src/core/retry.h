/*
 * retry.h - the two halves of a safe retry (internal): how long to wait
 * (exponential backoff with jitter) and whether to retry at all (a retry
 * budget).
 *
 * Jitter spreads the retries of many clients that failed together (see the
 * AWS Architecture Blog, "Exponential Backoff And Jitter"). Full jitter
 * (uniform in [0, c], c = min(cap, base * 2^attempt)) spreads most but may
 * wait next to nothing, which breaks the promise of a configured delay;
 * equal jitter (uniform in [c/2, c], the default) keeps half of it fixed
 * and still spreads. The budget is Finagle's idea: retries may add at most `ratio`
 * of the first calls made over a recent window, plus a small floor per
 * second, so a broken provider sees at most (1 + ratio) times the load
 * instead of (1 + max_retries) times.
 */
#ifndef PV_CORE_RETRY_H
#define PV_CORE_RETRY_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <jansson.h>
#include "provisio/fallback.h"
#include "util/rng.h"

/* A delay for retry number `attempt` (0 = the first retry): full jitter,
 * and the same ceiling with the jitter the configuration chose. */
uint64_t pv_backoff_full_jitter(pv_rng *rng, uint64_t base_ns, uint64_t cap_ns, unsigned attempt);
uint64_t pv_backoff(pv_rng *rng, pv_retry_jitter jitter, uint64_t base_ns, uint64_t cap_ns,
		    unsigned attempt);

#define PV_RETRY_BUDGET_SLOTS 10

typedef struct pv_retry_budget_slot {
	_Atomic uint64_t epoch; /* slot number + 1; 0 = never used */
	_Atomic uint64_t requests;
	_Atomic uint64_t retries;
} pv_retry_budget_slot;

typedef struct pv_retry_budget {
	double ratio;
	double min_per_second;
	uint64_t window_ns, slot_ns;
	pv_retry_budget_slot slots[PV_RETRY_BUDGET_SLOTS];
	_Atomic uint64_t granted, denied; /* since creation */
	pthread_mutex_t lock;             /* makes check-and-take one step */
} pv_retry_budget;

/* window_ns >= PV_RETRY_BUDGET_SLOTS. */
void pv_retry_budget_init(pv_retry_budget *b, double ratio, double min_per_second,
			  uint64_t window_ns);
void pv_retry_budget_destroy(pv_retry_budget *b);

/* Counts a first call (not a retry) at monotonic `now`. Lock-free. */
void pv_retry_budget_deposit(pv_retry_budget *b, uint64_t now);

/* Takes one retry if the budget allows it now; false = do not retry. */
bool pv_retry_budget_withdraw(pv_retry_budget *b, uint64_t now);

/* {"ratio", "min_retries_per_second", "window_seconds", "requests",
 *  "retries", "available", "granted", "denied"}. New reference. */
json_t *pv_retry_budget_stats(pv_retry_budget *b, uint64_t now);

/* {"requests", "retries", "saved_at_ms"} of the current window, and its
 * restore (counts younger than the window go into the current slot).
 * load: 0 or PV_EINVAL naming the field. */
json_t *pv_retry_budget_save(pv_retry_budget *b, uint64_t now);
int pv_retry_budget_load(pv_retry_budget *b, const json_t *state, uint64_t now);

#endif
