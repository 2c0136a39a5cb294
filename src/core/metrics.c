/*
 * metrics.c - lock-free per-strategy metrics.
 *
 * The success path costs four relaxed atomic adds (outcome, latency sum,
 * histogram bucket) and two plain stores (EWMA, last used). The EWMA is
 * updated with a load and a store rather than a CAS loop: two threads that
 * race may drop one sample from the average, which an exponential average
 * tolerates, and it keeps the hot path free of retries. Only failures take
 * the tiny spin lock that guards the last error text.
 */
#include <math.h>
#include <string.h>
#include "provisio/clock.h"
#include "provisio/metrics.h"

#define RELAXED memory_order_relaxed

void pv_metrics_recorder_init(pv_metrics_recorder *m)
{
	memset(m, 0, sizeof *m);
	atomic_flag_clear(&m->error_lock);
}

unsigned pv_hist_bucket(uint64_t ns)
{
	if (ns < (1ull << PV_HIST_MIN_POW))
		return 0;
	if (ns >= (1ull << PV_HIST_MAX_POW))
		return PV_HIST_BUCKETS - 1;
	unsigned p = 63u - (unsigned)__builtin_clzll(ns);
	unsigned sub = (unsigned)(ns >> (p - PV_HIST_SUB_BITS)) & ((1u << PV_HIST_SUB_BITS) - 1);
	return 1 + ((p - PV_HIST_MIN_POW) << PV_HIST_SUB_BITS) + sub;
}

uint64_t pv_hist_bucket_upper(unsigned bucket)
{
	if (bucket == 0)
		return 1ull << PV_HIST_MIN_POW;
	if (bucket >= PV_HIST_BUCKETS - 1)
		return 1ull << PV_HIST_MAX_POW;
	unsigned i = bucket - 1;
	unsigned p = PV_HIST_MIN_POW + (i >> PV_HIST_SUB_BITS);
	uint64_t sub = i & ((1u << PV_HIST_SUB_BITS) - 1);
	return ((1ull << PV_HIST_SUB_BITS) + sub + 1) << (p - PV_HIST_SUB_BITS);
}

static void copy_text(char *dst, size_t size, const char *src)
{
	size_t n = src ? strnlen(src, size - 1) : 0;
	if (n)
		memcpy(dst, src, n);
	dst[n] = '\0';
}

void pv_metrics_record(pv_metrics_recorder *m, const pv_result *r, uint64_t latency_ns,
		       uint64_t end_ns)
{
	pv_metrics_record_op(m, PV_OP_COUNT, r, latency_ns, end_ns);
}

void pv_metrics_record_op(pv_metrics_recorder *m, pv_op_type type, const pv_result *r,
			  uint64_t latency_ns, uint64_t end_ns)
{
	unsigned row = (unsigned)type < PV_OP_COUNT ? (unsigned)type : PV_OP_COUNT;
	atomic_fetch_add_explicit(&m->outcomes[row][r->success ? 1 : 0], 1, RELAXED);
	if (r->success) {
		if (atomic_load_explicit(&m->consecutive_failures, RELAXED))
			atomic_store_explicit(&m->consecutive_failures, 0, RELAXED);
	} else {
		atomic_fetch_add_explicit(&m->consecutive_failures, 1, RELAXED);
		const char *message = pv_result_message(r); /* formatted outside the lock */
		while (atomic_flag_test_and_set_explicit(&m->error_lock, memory_order_acquire))
			;
		copy_text(m->last_error_code, sizeof m->last_error_code, r->error_code);
		copy_text(m->last_error_message, sizeof m->last_error_message, message);
		atomic_flag_clear_explicit(&m->error_lock, memory_order_release);
	}
	atomic_fetch_add_explicit(&m->latency_sum_ns, latency_ns, RELAXED);
	atomic_fetch_add_explicit(&m->hist[pv_hist_bucket(latency_ns)], 1, RELAXED);

	uint64_t old = atomic_load_explicit(&m->ewma_ns, RELAXED);
	int64_t next = old ? (int64_t)old + ((int64_t)latency_ns - (int64_t)old) / 8
			   : (int64_t)latency_ns;
	atomic_store_explicit(&m->ewma_ns, next > 0 ? (uint64_t)next : 1, RELAXED);
	if (end_ns)
		atomic_store_explicit(&m->last_used_ns, end_ns, RELAXED);
}

void pv_metrics_record_health(pv_metrics_recorder *m, uint64_t ns)
{
	atomic_fetch_add_explicit(&m->health_checks, 1, RELAXED);
	atomic_fetch_add_explicit(&m->health_ns_sum, ns, RELAXED);
	atomic_store_explicit(&m->last_health_ms, pv_wall_ms(), RELAXED);
}

/* Successes and failures summed over the operation types, in one pass. */
static void outcome_sums(const pv_metrics_recorder *m, uint64_t *ok, uint64_t *failed)
{
	uint64_t s = 0, f = 0;
	for (unsigned t = 0; t <= PV_OP_COUNT; t++) {
		f += atomic_load_explicit(&m->outcomes[t][0], RELAXED);
		s += atomic_load_explicit(&m->outcomes[t][1], RELAXED);
	}
	*ok = s;
	*failed = f;
}

uint64_t pv_metrics_total(const pv_metrics_recorder *m)
{
	uint64_t ok, failed;
	outcome_sums(m, &ok, &failed);
	return ok + failed;
}

double pv_metrics_success_rate(const pv_metrics_recorder *m)
{
	uint64_t ok, failed;
	outcome_sums(m, &ok, &failed);
	return ok + failed ? 100.0 * (double)ok / (double)(ok + failed) : NAN;
}

uint64_t pv_metrics_ewma_ns(const pv_metrics_recorder *m)
{
	return atomic_load_explicit(&m->ewma_ns, RELAXED);
}

int64_t pv_metrics_in_flight(const pv_metrics_recorder *m)
{
	return atomic_load_explicit(&m->in_flight, RELAXED);
}

static double percentile_ms(const uint64_t *counts, uint64_t total, double q)
{
	if (!total)
		return NAN;
	uint64_t rank = (uint64_t)ceil(q * (double)total);
	if (rank == 0)
		rank = 1;
	uint64_t seen = 0;
	for (unsigned b = 0; b < PV_HIST_BUCKETS; b++) {
		seen += counts[b];
		if (seen >= rank)
			return (double)pv_hist_bucket_upper(b) / 1e6;
	}
	return (double)pv_hist_bucket_upper(PV_HIST_BUCKETS - 1) / 1e6;
}

void pv_metrics_snapshot(const pv_metrics_recorder *m, pv_metrics *out)
{
	memset(out, 0, sizeof *out);
	for (unsigned t = 0; t <= PV_OP_COUNT; t++) {
		for (int ok = 0; ok < 2; ok++)
			out->by_op[t][ok] = atomic_load_explicit(&m->outcomes[t][ok], RELAXED);
		out->failures += out->by_op[t][0];
		out->successes += out->by_op[t][1];
	}
	out->total = out->successes + out->failures;
	out->success_rate = out->total ? 100.0 * (double)out->successes / (double)out->total : NAN;

	uint64_t *counts = out->hist, samples = 0;
	for (unsigned b = 0; b < PV_HIST_BUCKETS; b++) {
		counts[b] = atomic_load_explicit(&m->hist[b], RELAXED);
		samples += counts[b];
	}
	uint64_t sum = atomic_load_explicit(&m->latency_sum_ns, RELAXED);
	uint64_t ewma = atomic_load_explicit(&m->ewma_ns, RELAXED);
	out->mean_latency_ms = samples ? (double)sum / (double)samples / 1e6 : NAN;
	out->ewma_latency_ms = ewma ? (double)ewma / 1e6 : NAN;
	out->p50_ms = percentile_ms(counts, samples, 0.50);
	out->p95_ms = percentile_ms(counts, samples, 0.95);
	out->p99_ms = percentile_ms(counts, samples, 0.99);

	int64_t inflight = atomic_load_explicit(&m->in_flight, RELAXED);
	out->in_flight = inflight > 0 ? (uint64_t)inflight : 0;
	uint64_t used = atomic_load_explicit(&m->last_used_ns, RELAXED);
	if (used) {
		uint64_t now = pv_now_ns();
		out->last_used_ms = pv_wall_ms() - (now > used ? (int64_t)((now - used) / PV_NS_PER_MS) : 0);
	}
	out->consecutive_failures = atomic_load_explicit(&m->consecutive_failures, RELAXED);
	out->health_checks = atomic_load_explicit(&m->health_checks, RELAXED);
	out->health_check_total_ms = (double)atomic_load_explicit(&m->health_ns_sum, RELAXED) / 1e6;
	out->last_health_check_ms = atomic_load_explicit(&m->last_health_ms, RELAXED);

	pv_metrics_recorder *mm = (pv_metrics_recorder *)m; /* the lock is not part of the value */
	while (atomic_flag_test_and_set_explicit(&mm->error_lock, memory_order_acquire))
		;
	memcpy(out->last_error_code, m->last_error_code, sizeof out->last_error_code);
	memcpy(out->last_error_message, m->last_error_message, sizeof out->last_error_message);
	atomic_flag_clear_explicit(&mm->error_lock, memory_order_release);
}

static json_t *num_or_null(double v) { return isnan(v) ? json_null() : json_real(v); }

json_t *pv_metrics_to_json(const pv_metrics *s)
{
	json_t *j = json_object();
	json_object_set_new(j, "total_operations", json_integer((json_int_t)s->total));
	json_object_set_new(j, "successful_operations", json_integer((json_int_t)s->successes));
	json_object_set_new(j, "failed_operations", json_integer((json_int_t)s->failures));
	json_object_set_new(j, "success_rate", num_or_null(s->success_rate));
	json_object_set_new(j, "average_response_time_ms", num_or_null(s->mean_latency_ms));
	json_object_set_new(j, "ewma_response_time_ms", num_or_null(s->ewma_latency_ms));
	json_object_set_new(j, "p50_ms", num_or_null(s->p50_ms));
	json_object_set_new(j, "p95_ms", num_or_null(s->p95_ms));
	json_object_set_new(j, "p99_ms", num_or_null(s->p99_ms));
	json_object_set_new(j, "in_flight", json_integer((json_int_t)s->in_flight));
	json_object_set_new(j, "last_used_ms", s->last_used_ms ? json_integer(s->last_used_ms) : json_null());
	json_object_set_new(j, "consecutive_failures", json_integer((json_int_t)s->consecutive_failures));
	json_object_set_new(j, "last_error_code", s->last_error_code[0] ? json_string(s->last_error_code) : json_null());
	json_object_set_new(j, "last_error_message", s->last_error_message[0] ? json_string(s->last_error_message) : json_null());
	json_object_set_new(j, "health_checks", json_integer((json_int_t)s->health_checks));
	json_object_set_new(j, "health_check_total_ms", json_real(s->health_check_total_ms));
	json_object_set_new(j, "last_health_check_ms", s->last_health_check_ms ? json_integer(s->last_health_check_ms) : json_null());
	json_t *by = json_object();
	for (unsigned t = 0; t < PV_OP_COUNT; t++)
		if (s->by_op[t][0] || s->by_op[t][1])
			json_object_set_new(by, pv_op_name((pv_op_type)t),
					    json_pack("{s:I, s:I}", "success", (json_int_t)s->by_op[t][1],
						      "failure", (json_int_t)s->by_op[t][0]));
	json_object_set_new(j, "operations_by_type", by);
	return j;
}
