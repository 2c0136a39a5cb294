/*
 * limiter.h - token buckets that several processes spend together.
 *
 * A provider that paces its calls the way its API meters them (EC2's
 * buckets per account and region) keeps those buckets in its process. Host
 * Factory starts one short process per call and `provisio serve` may run
 * beside them: N processes each with a full bucket spend N times the API's
 * budget and are answered RequestLimitExceeded. A limiter is where they
 * spend one budget instead. The provider does not know where the buckets
 * live: it is handed a limiter, an object with a versioned table of methods
 * (like a strategy or a store), and the broker gives it one backed by the
 * store every process already shares (pv_broker_limiter_new, broker.h).
 *
 * Buckets are named by the caller (one key per API budget) and described
 * on each call (capacity, refill rate), so a bucket needs no setup and two
 * processes with the same key share it.
 */
#ifndef PROVISIO_LIMITER_H
#define PROVISIO_LIMITER_H

#include <stdatomic.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct pv_limiter pv_limiter;

#define PV_LIMITER_METHODS_VERSION 1

typedef struct pv_limiter_methods {
	int version; /* PV_LIMITER_METHODS_VERSION */
	/* Takes one token of bucket `key` (full at first: `capacity` tokens,
	 * refilled continuously at `refill_per_s`). 0 and *wait_ns = 0: taken;
	 * 0 and *wait_ns > 0: none now, one in that many ns (nothing taken);
	 * PV_E* when the buckets cannot be reached (the caller paces alone).
	 * Thread-safe. Required. */
	int (*take)(pv_limiter *l, const char *key, double capacity, double refill_per_s,
		    uint64_t *wait_ns);
	/* Empties bucket `key`: the API answered that the budget is spent,
	 * whatever the bucket thought. 0 or PV_E*. Required. */
	int (*drain)(pv_limiter *l, const char *key, double capacity, double refill_per_s);
	/* Frees the implementation's state (not the object). Optional. */
	void (*destroy)(pv_limiter *l);
} pv_limiter_methods;

struct pv_limiter {
	const pv_limiter_methods *methods;
	atomic_uint refs; /* the last pv_limiter_unref destroys and frees it */
};

/* Fills the base of a limiter the implementation allocated with malloc:
 * one reference. */
void pv_limiter_setup(pv_limiter *l, const pv_limiter_methods *methods);
/* Takes a reference; returns `l`. NULL is fine. */
pv_limiter *pv_limiter_ref(pv_limiter *l);
/* Drops a reference; the last one destroys and frees. NULL is fine. */
void pv_limiter_unref(pv_limiter *l);

/* Dispatch helpers. */
int pv_limiter_take(pv_limiter *l, const char *key, double capacity, double refill_per_s,
		    uint64_t *wait_ns);
int pv_limiter_drain(pv_limiter *l, const char *key, double capacity, double refill_per_s);

#ifdef __cplusplus
}
#endif
#endif
