/*
 * metrics.h - lock-free per-strategy counters, latency EWMA and histogram.
 *
 * A pv_metrics_recorder is updated on every operation with a handful of
 * relaxed atomic adds; it never takes a lock, so any number of threads
 * record at once. Readers take a pv_metrics snapshot. The context keeps one
 * recorder per registered strategy; wrappers may keep their own per child.
 *
 * What the numbers mean:
 *  - total = successes + failures (operations that finished);
 *  - success_rate is a percentage 0..100 and is NAN when total is 0 (no
 *    operations: unknown, not 0 % and not 100 %); JSON shows it as null;
 *  - latencies are milliseconds; mean and EWMA are NAN without samples;
 *  - the EWMA weighs each new sample by 1/8 (alpha = 0.125);
 *  - percentiles come from a log-linear histogram of 8 buckets per power of
 *    two (relative error under 6.25 %) from 64 ns to 2^40 ns (~18 min);
 *    a percentile reports the upper bound of its bucket.
 */
#ifndef PROVISIO_METRICS_H
#define PROVISIO_METRICS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <jansson.h>
#include "operation.h"
#include "result.h"

#ifdef __cplusplus
extern "C" {
#endif

#define PV_HIST_SUB_BITS 3
#define PV_HIST_MIN_POW 6   /* first bucket: < 2^6 ns */
#define PV_HIST_MAX_POW 40
#define PV_HIST_BUCKETS (((PV_HIST_MAX_POW - PV_HIST_MIN_POW) << PV_HIST_SUB_BITS) + 2)

typedef struct pv_metrics {
	uint64_t total;
	uint64_t successes;
	uint64_t failures;
	double success_rate;      /* percent; NAN when total == 0 */
	double mean_latency_ms;   /* NAN without samples */
	double ewma_latency_ms;   /* NAN without samples */
	double p50_ms, p95_ms, p99_ms; /* NAN without samples */
	uint64_t in_flight;
	int64_t last_used_ms;     /* wall clock, Unix ms; 0 = never */
	uint64_t consecutive_failures;
	char last_error_code[PV_RESULT_CODE_MAX]; /* "" when none */
	char last_error_message[256];
	uint64_t health_checks;
	double health_check_total_ms;
	int64_t last_health_check_ms; /* wall clock; 0 = never */
	/* [type][0] failures, [type][1] successes; the last row counts
	 * operations recorded without a type. */
	uint64_t by_op[PV_OP_COUNT + 1][2];
	/* Histogram bucket counts (pv_hist_bucket_upper gives the bounds). */
	uint64_t hist[PV_HIST_BUCKETS];
} pv_metrics;

typedef struct pv_metrics_recorder {
	/* Outcomes by operation type ([type][success]); totals are their sums,
	 * so counting by type costs nothing extra on the hot path. */
	atomic_uint_fast64_t outcomes[PV_OP_COUNT + 1][2];
	atomic_uint_fast64_t latency_sum_ns;
	atomic_uint_fast64_t ewma_ns;       /* 0 = no sample yet */
	atomic_int_fast64_t in_flight;
	atomic_uint_fast64_t last_used_ns;  /* monotonic; 0 = never */
	atomic_uint_fast64_t consecutive_failures;
	atomic_uint_fast64_t health_checks;
	atomic_uint_fast64_t health_ns_sum;
	atomic_int_fast64_t last_health_ms;
	atomic_flag error_lock;              /* guards the two fields below */
	char last_error_code[PV_RESULT_CODE_MAX];
	char last_error_message[256];
	atomic_uint_fast64_t hist[PV_HIST_BUCKETS];
} pv_metrics_recorder;

void pv_metrics_recorder_init(pv_metrics_recorder *m);

/* The histogram bucket of a latency (exposed for tests). */
unsigned pv_hist_bucket(uint64_t ns);
/* The upper bound in ns of a bucket. */
uint64_t pv_hist_bucket_upper(unsigned bucket);

/* Records a finished operation that ended at monotonic time `end_ns` (the
 * system clock; the snapshot turns it into wall time). `r` gives success
 * and, on failure, the error code and message kept as "last error".
 * Lock-free on success. */
void pv_metrics_record(pv_metrics_recorder *m, const pv_result *r, uint64_t latency_ns,
		       uint64_t end_ns);
/* The same, counted under operation `type`. */
void pv_metrics_record_op(pv_metrics_recorder *m, pv_op_type type, const pv_result *r,
			  uint64_t latency_ns, uint64_t end_ns);

/* Call-in-flight bookkeeping (for least-connections and the snapshot). */
static inline void pv_metrics_begin(pv_metrics_recorder *m)
{
	atomic_fetch_add_explicit(&m->in_flight, 1, memory_order_relaxed);
}
static inline void pv_metrics_end(pv_metrics_recorder *m)
{
	atomic_fetch_sub_explicit(&m->in_flight, 1, memory_order_relaxed);
}

void pv_metrics_record_health(pv_metrics_recorder *m, uint64_t ns);

/* Cheap reads used by selection. */
uint64_t pv_metrics_total(const pv_metrics_recorder *m);
double pv_metrics_success_rate(const pv_metrics_recorder *m); /* NAN if none */
uint64_t pv_metrics_ewma_ns(const pv_metrics_recorder *m);     /* 0 if none */
int64_t pv_metrics_in_flight(const pv_metrics_recorder *m);

/* A consistent-enough snapshot (counters read one by one, relaxed). */
void pv_metrics_snapshot(const pv_metrics_recorder *m, pv_metrics *out);

/* Snapshot as JSON (NAN values as null). New reference. */
json_t *pv_metrics_to_json(const pv_metrics *s);

#ifdef __cplusplus
}
#endif
#endif
