/*
 * balancer_pick.c - the eight load-balancing algorithms.
 *
 * Each algorithm chooses an index in a view (the healthy members, or every
 * member in panic mode) that is not in the `ex` set. The caller then tries
 * to take a connection on it; a member at max_connections_per_strategy is
 * added to `ex` and the algorithm asked again, so every algorithm honours
 * the cap the same way and "all at cap" is known exactly.
 *
 * The tables the algorithms need (the smooth WRR schedule, cumulative
 * weights, the Maglev table) are built once per roster, off the hot path;
 * a pick is a few loads, one shared counter and at most one random number.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "core/balancer_internal.h"
#include "core/maglev.h"
#include "provisio/error.h"
#include "util/rng.h"
#include "util/swrr.h"

#define RELAXED memory_order_relaxed
#define EX_WORDS ((PV_BALANCER_MAX_STRATEGIES + 63) / 64)

static inline bool ex_has(const uint64_t *ex, size_t i) { return (ex[i >> 6] >> (i & 63)) & 1u; }
static inline void ex_add(uint64_t *ex, size_t i) { ex[i >> 6] |= 1ull << (i & 63); }

static inline double weight_of(const lb_member *m)
{
	return atomic_load_explicit(&((lb_member *)m)->weight, RELAXED);
}

/* ---- building ----------------------------------------------------------- */

/* nginx's smooth weighted round robin, unrolled into a schedule (util/swrr.h). */
static int build_wrr(lb_view *v)
{
	double *weights = malloc((v->n ? v->n : 1) * sizeof *weights);
	if (!weights)
		return pv_error_set(PV_ENOMEM, "out of memory");
	for (size_t i = 0; i < v->n; i++)
		weights[i] = weight_of(v->m[i]);
	int rc = pv_swrr_schedule(weights, v->n, LB_WRR_MAX, &v->wrr, &v->wrr_len);
	free(weights);
	return rc;
}

static int build_cum(lb_view *v)
{
	v->cum = malloc(v->n * sizeof *v->cum);
	if (!v->cum)
		return pv_error_set(PV_ENOMEM, "out of memory");
	double sum = 0;
	for (size_t i = 0; i < v->n; i++)
		v->cum[i] = (sum += weight_of(v->m[i]));
	if (sum <= 0) /* all zero: equal shares */
		for (size_t i = 0; i < v->n; i++)
			v->cum[i] = (double)(i + 1);
	return 0;
}

/* Writes the adaptive cumulative weights (the caller is the only writer:
 * it holds b->adapting, or the view is not published yet). */
static void publish_adaptive(const lb_view *v)
{
	lb_adaptive *a = v->adaptive;
	if (!a)
		return;
	unsigned seq = atomic_load_explicit(&a->seq, RELAXED);
	atomic_store_explicit(&a->seq, seq + 1, RELAXED);
	atomic_thread_fence(memory_order_release);
	double sum = 0;
	for (size_t i = 0; i < v->n; i++)
		sum += weight_of(v->m[i]) * atomic_load_explicit(&v->m[i]->adaptive, RELAXED);
	bool equal = sum <= 0; /* all weights zero: equal shares */
	sum = 0;
	for (size_t i = 0; i < v->n; i++) {
		sum += equal ? 1.0
			     : weight_of(v->m[i]) * atomic_load_explicit(&v->m[i]->adaptive, RELAXED);
		atomic_store_explicit(&a->cum[i], sum, RELAXED);
	}
	atomic_store_explicit(&a->seq, seq + 2, memory_order_release);
}

static int build_adaptive(lb_view *v)
{
	v->adaptive = malloc(sizeof *v->adaptive + v->n * sizeof v->adaptive->cum[0]);
	if (!v->adaptive)
		return pv_error_set(PV_ENOMEM, "out of memory");
	atomic_init(&v->adaptive->seq, 0);
	publish_adaptive(v);
	return 0;
}

static int build_maglev(lb_view *v)
{
	const char **names = malloc(v->n * sizeof *names);
	v->maglev_len = pv_maglev_size(v->n);
	v->maglev = malloc(v->maglev_len * sizeof *v->maglev);
	if (!names || !v->maglev) {
		free(names);
		return pv_error_set(PV_ENOMEM, "out of memory");
	}
	for (size_t i = 0; i < v->n; i++)
		names[i] = pv_strategy_name(v->m[i]->child);
	int rc = pv_maglev_build(v->maglev, v->maglev_len, names, v->n);
	free(names);
	return rc;
}

int lb_view_build(lb_view *v, pv_lb_algorithm alg)
{
	if (v->n == 0)
		return 0;
	switch (alg) {
	case PV_LB_WEIGHTED_ROUND_ROBIN:
		return build_wrr(v);
	case PV_LB_WEIGHTED_RANDOM:
		return build_cum(v);
	case PV_LB_HASH_BASED:
		return build_maglev(v);
	case PV_LB_ADAPTIVE:
		return build_adaptive(v);
	default:
		return 0;
	}
}

void lb_view_free(lb_view *v)
{
	free(v->m);
	free(v->wrr);
	free(v->cum);
	free(v->maglev);
	free(v->adaptive);
	memset(v, 0, sizeof *v);
}

/* ---- randomness --------------------------------------------------------- */

uint64_t lb_random(lb_balancer *b)
{
	if (b->cfg.seed) {
		/* splitmix64 over a shared counter: exact in single-threaded tests. */
		uint64_t k = atomic_fetch_add_explicit(&b->rng_counter, 1, RELAXED);
		return pv_mix64(b->cfg.seed + k * 0x9e3779b97f4a7c15ull);
	}
	return pv_rng_next(pv_rng_thread());
}

static inline size_t below(uint64_t r, size_t n)
{
	return (size_t)(((unsigned __int128)r * n) >> 64);
}

static inline double unit(uint64_t r) { return (double)(r >> 11) * 0x1.0p-53; }

/* First index at or after `i` (cyclically) not in ex, or -1. */
static long next_free(const uint64_t *ex, size_t n, size_t i)
{
	for (size_t k = 0; k < n; k++) {
		size_t j = (i + k) % n;
		if (!ex_has(ex, j))
			return (long)j;
	}
	return -1;
}

/* ---- the algorithms ----------------------------------------------------- */

static long pick_round_robin(lb_balancer *b, const lb_view *v, const uint64_t *ex)
{
	uint64_t pos = atomic_fetch_add_explicit(&b->position, 1, RELAXED);
	return next_free(ex, v->n, (size_t)(pos % v->n));
}

static long pick_wrr(lb_balancer *b, const lb_view *v, const uint64_t *ex)
{
	uint64_t pos = atomic_fetch_add_explicit(&b->position, 1, RELAXED);
	for (size_t k = 0; k < v->wrr_len; k++) {
		size_t i = v->wrr[(pos + k) % v->wrr_len];
		if (!ex_has(ex, i))
			return (long)i;
	}
	return -1;
}

/* Weighted choice over `w` (0 for excluded entries) by a linear scan, for
 * the uniform number u in [0, 1). */
static long weighted_scan_at(double u, const double *w, size_t n, double sum)
{
	if (sum <= 0)
		return -1;
	double x = u * sum;
	long last = -1;
	for (size_t i = 0; i < n; i++) {
		if (w[i] <= 0)
			continue;
		last = (long)i;
		if (x < w[i])
			return (long)i;
		x -= w[i];
	}
	return last; /* rounding at the top end */
}

static long pick_weighted_random(lb_balancer *b, const lb_view *v, const uint64_t *ex,
				 bool any_ex)
{
	if (!any_ex) {
		double x = unit(lb_random(b)) * v->cum[v->n - 1];
		size_t lo = 0, hi = v->n - 1;
		while (lo < hi) {
			size_t mid = (lo + hi) / 2;
			if (x < v->cum[mid])
				hi = mid;
			else
				lo = mid + 1;
		}
		return (long)lo;
	}
	double w[PV_BALANCER_MAX_STRATEGIES], sum = 0;
	for (size_t i = 0; i < v->n; i++) {
		double prev = i ? v->cum[i - 1] : 0;
		w[i] = ex_has(ex, i) ? 0 : v->cum[i] - prev;
		sum += w[i];
	}
	return weighted_scan_at(unit(lb_random(b)), w, v->n, sum);
}

static long pick_random(lb_balancer *b, const lb_view *v, const uint64_t *ex)
{
	return next_free(ex, v->n, below(lb_random(b), v->n));
}

/* Operations of this type the member has finished: two counters, where
 * the member's total would sum every type's. */
static inline uint64_t served(const lb_member *m, unsigned row)
{
	return atomic_load_explicit(&m->metrics.outcomes[row][0], RELAXED) +
	       atomic_load_explicit(&m->metrics.outcomes[row][1], RELAXED);
}

/* Among tied candidates, two random choices; the one that has served fewer
 * operations of the type wins, so ties do not always fall on the same
 * member. */
static long two_choices(lb_balancer *b, const lb_view *v, const uint16_t *tied, size_t nt,
			unsigned row)
{
	if (nt == 1)
		return tied[0];
	uint64_t r = lb_random(b);
	size_t x = below(r, nt), y = below(pv_mix64(r), nt - 1);
	if (y >= x)
		y++;
	uint64_t tx = served(v->m[tied[x]], row), ty = served(v->m[tied[y]], row);
	return ty < tx ? tied[y] : tied[x];
}

static long pick_least_connections(lb_balancer *b, const lb_view *v, const uint64_t *ex,
				   pv_op_type type)
{
	/* Two passes over a local copy: the loads are independent (they overlap
	 * in the memory system) and the minimum is branch-free. */
	int64_t c[PV_BALANCER_MAX_STRATEGIES], best = INT64_MAX;
	for (size_t i = 0; i < v->n; i++) {
		c[i] = ex_has(ex, i) ? INT64_MAX
				     : atomic_load_explicit(&v->m[i]->metrics.in_flight, RELAXED);
		best = c[i] < best ? c[i] : best;
	}
	if (best == INT64_MAX)
		return -1;
	uint16_t tied[PV_BALANCER_MAX_STRATEGIES];
	size_t nt = 0;
	for (size_t i = 0; i < v->n; i++)
		if (c[i] == best)
			tied[nt++] = (uint16_t)i;
	unsigned row = (unsigned)type < PV_OP_COUNT ? (unsigned)type : PV_OP_COUNT;
	return two_choices(b, v, tied, nt, row);
}

static long pick_least_response_time(lb_balancer *b, const lb_view *v, const uint64_t *ex)
{
	uint16_t tied[PV_BALANCER_MAX_STRATEGIES];
	size_t nt = 0;
	uint64_t best = UINT64_MAX;
	for (size_t i = 0; i < v->n; i++) {
		if (ex_has(ex, i))
			continue;
		/* 0 = unmeasured: first */
		uint64_t e = atomic_load_explicit(&v->m[i]->metrics.ewma_ns, RELAXED);
		if (e < best) {
			best = e;
			nt = 0;
		}
		if (e == best)
			tied[nt++] = (uint16_t)i;
	}
	if (!nt)
		return -1;
	return nt == 1 ? tied[0] : tied[below(lb_random(b), nt)];
}

static long pick_hash(const lb_view *v, const uint64_t *ex, uint64_t hash)
{
	size_t slot = pv_maglev_slot(hash, v->maglev_len);
	for (size_t k = 0; k < v->maglev_len; k++) {
		size_t i = v->maglev[(slot + k) % v->maglev_len];
		if (!ex_has(ex, i))
			return (long)i;
	}
	return -1;
}

/* The first index whose cumulative weight exceeds x (acum read under the
 * seqlock, so its entries may be mid-rewrite: any answer is an index). */
static size_t acum_search(const _Atomic double *cum, size_t n, double x)
{
	size_t lo = 0, hi = n - 1;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (x < atomic_load_explicit(&cum[mid], RELAXED))
			hi = mid;
		else
			lo = mid + 1;
	}
	return lo;
}

/* A seqlock read of the adaptive weights into w (0 for excluded members);
 * false when lb_adapt kept rewriting them (the caller then reads the
 * members themselves rather than wait for a writer that may be
 * descheduled). */
static bool adaptive_weights(const lb_view *v, const uint64_t *ex, double *w, double *sum)
{
	const lb_adaptive *a = v->adaptive;
	for (int attempt = 0; attempt < 4; attempt++) {
		unsigned seq = atomic_load_explicit(&a->seq, memory_order_acquire);
		if (seq & 1)
			continue;
		double prev = 0, s = 0;
		for (size_t i = 0; i < v->n; i++) {
			double c = atomic_load_explicit(&a->cum[i], RELAXED);
			w[i] = ex_has(ex, i) ? 0 : c - prev;
			s += w[i];
			prev = c;
		}
		atomic_thread_fence(memory_order_acquire);
		if (atomic_load_explicit(&a->seq, RELAXED) == seq) {
			*sum = s;
			return true;
		}
	}
	return false;
}

static long pick_adaptive(lb_balancer *b, const lb_roster *r, const lb_view *v,
			  const uint64_t *ex, bool any_ex)
{
	/* The period is counted per thread: a shared counter would be one more
	 * contended cache line per pick, for a schedule that need not be exact. */
	static _Thread_local unsigned tick;
	if (++tick % LB_ADAPTIVE_PERIOD == 0)
		lb_adapt(b, r);
	double x = unit(lb_random(b));
	const lb_adaptive *a = v->adaptive;
	if (!any_ex) {
		for (int attempt = 0; attempt < 4; attempt++) {
			unsigned seq = atomic_load_explicit(&a->seq, memory_order_acquire);
			if (seq & 1)
				continue;
			size_t i = acum_search(a->cum, v->n,
					       x * atomic_load_explicit(&a->cum[v->n - 1], RELAXED));
			atomic_thread_fence(memory_order_acquire);
			if (atomic_load_explicit(&a->seq, RELAXED) == seq)
				return (long)i;
		}
	}
	double w[PV_BALANCER_MAX_STRATEGIES], sum = 0;
	if (!adaptive_weights(v, ex, w, &sum)) {
		for (size_t i = 0; i < v->n; i++)
			sum += w[i] = ex_has(ex, i) ? 0
						    : weight_of(v->m[i]) *
							      atomic_load_explicit(&v->m[i]->adaptive, RELAXED);
	}
	if (sum <= 0) /* all weights zero: equal shares */
		for (size_t i = 0; i < v->n; i++)
			sum += w[i] = ex_has(ex, i) ? 0 : 1;
	return weighted_scan_at(x, w, v->n, sum);
}

/*
 * Adaptive factors move by weight_adjustment_factor toward a target:
 * (fastest EWMA / own EWMA) * (recent success rate)^2, within
 * [LB_ADAPTIVE_MIN, 1]. Unmeasured members target 1. Only one thread
 * adapts at a time; the others just pick with the current factors.
 */
void lb_adapt(lb_balancer *b, const lb_roster *r)
{
	if (atomic_flag_test_and_set_explicit(&b->adapting, memory_order_acquire))
		return;
	uint64_t fastest = UINT64_MAX;
	for (size_t i = 0; i < r->n; i++) {
		uint64_t e = pv_metrics_ewma_ns(&r->all[i]->metrics);
		if (e && e < fastest)
			fastest = e;
	}
	double f = b->cfg.weight_adjustment_factor;
	for (size_t i = 0; i < r->n; i++) {
		lb_member *m = r->all[i];
		uint64_t e = pv_metrics_ewma_ns(&m->metrics);
		double s = atomic_load_explicit(&m->success_ewma, RELAXED);
		double target = (e ? (double)fastest / (double)e : 1.0) * s * s;
		target = fmin(LB_ADAPTIVE_MAX, fmax(LB_ADAPTIVE_MIN, target));
		double a = atomic_load_explicit(&m->adaptive, RELAXED);
		a += f * (target - a);
		atomic_store_explicit(&m->adaptive, fmin(LB_ADAPTIVE_MAX, fmax(LB_ADAPTIVE_MIN, a)),
				      RELAXED);
	}
	publish_adaptive(&r->healthy);
	publish_adaptive(&r->every);
	atomic_flag_clear_explicit(&b->adapting, memory_order_release);
}

static long choose(lb_balancer *b, const lb_roster *r, const lb_view *v, const uint64_t *ex,
		   bool any_ex, const pv_operation *op, uint64_t hash)
{
	switch (b->cfg.algorithm) {
	case PV_LB_ROUND_ROBIN:
		return pick_round_robin(b, v, ex);
	case PV_LB_WEIGHTED_ROUND_ROBIN:
		return pick_wrr(b, v, ex);
	case PV_LB_LEAST_CONNECTIONS:
		return pick_least_connections(b, v, ex, op->type);
	case PV_LB_LEAST_RESPONSE_TIME:
		return pick_least_response_time(b, v, ex);
	case PV_LB_RANDOM:
		return pick_random(b, v, ex);
	case PV_LB_WEIGHTED_RANDOM:
		return pick_weighted_random(b, v, ex, any_ex);
	case PV_LB_HASH_BASED:
		return pick_hash(v, ex, hash);
	case PV_LB_ADAPTIVE:
		return pick_adaptive(b, r, v, ex, any_ex);
	default:
		return -1;
	}
}

/* Takes a connection unless the member is at the cap. */
static bool try_acquire(const lb_balancer *b, lb_member *m)
{
	unsigned cap = b->cfg.max_connections_per_strategy;
	if (!cap) {
		pv_metrics_begin(&m->metrics);
		return true;
	}
	int_fast64_t cur = atomic_load_explicit(&m->metrics.in_flight, RELAXED);
	while (cur < (int_fast64_t)cap) {
		if (atomic_compare_exchange_weak_explicit(&m->metrics.in_flight, &cur, cur + 1,
							  RELAXED, RELAXED))
			return true;
	}
	return false;
}

static void take(lb_pick *out, lb_member *m)
{
	atomic_fetch_add_explicit(&m->refs, 1, RELAXED);
	out->m = m;
}

lb_pick_status lb_pick_member(lb_balancer *b, const pv_operation *op, lb_pick *out)
{
	memset(out, 0, sizeof *out);
	/* Hashing may serialise parameters: do it before the read section. */
	uint64_t hash = b->cfg.algorithm == PV_LB_HASH_BASED ? pv_operation_routing_hash(op) : 0;
	lb_pick_status st = LB_PICK_NONE;
	atomic_long *slot;
	const lb_roster *r = lb_read_begin(b, &slot);
	if (r->n_ejected && b->cfg.health_check_mode == PV_LB_HEALTH_PASSIVE) {
		lb_member *p = lb_probe_due(b, r);
		if (p && try_acquire(b, p)) {
			take(out, p);
			out->probe = true;
			lb_read_end(slot);
			return LB_PICK_OK;
		}
	}
	const lb_view *v = r->healthy.n ? &r->healthy : &r->every;
	out->panic = r->healthy.n == 0;
	uint64_t ex[EX_WORDS] = {0};
	bool any_ex = false;
	for (size_t tries = 0; tries < v->n; tries++) {
		long i = choose(b, r, v, ex, any_ex, op, hash);
		if (i < 0)
			break;
		if (try_acquire(b, v->m[i])) {
			take(out, v->m[i]);
			st = LB_PICK_OK;
			break;
		}
		ex_add(ex, (size_t)i);
		any_ex = true;
		st = LB_PICK_AT_CAP;
	}
	lb_read_end(slot);
	return st;
}
