/*
 * balancer_health.c - ejecting children that fail and bringing them back.
 *
 * Passive (from results): unhealthy_threshold consecutive failures eject a
 * child. An ejected child gets no traffic except probes: once every
 * health_check_interval_seconds one operation is sent to it (claimed by a
 * CAS so exactly one thread probes); a success makes the next operation a
 * probe too, and recovery_threshold consecutive successes restore it. So an
 * ejected child always comes back once it works, at the cost of at most one
 * operation per interval while it does not.
 *
 * Active: a background thread calls every child's health method each
 * interval with no lock held; the same thresholds apply to consecutive
 * failed and passed checks. Hybrid: results eject, and checks both eject and
 * restore (no probe traffic).
 *
 * Only failures that say something about the child count: transient,
 * throttled and internal errors and NOT_INITIALIZED. A permanent error (bad
 * parameters) or a capacity error is the caller's or the quota's problem,
 * not the child's health.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "core/balancer_internal.h"
#include "provisio/error.h"
#include "provisio/log.h"

#define RELAXED memory_order_relaxed

bool lb_failure_counts(const pv_result *r)
{
	if (r->success)
		return false;
	return r->error_class == PV_CLASS_TRANSIENT || r->error_class == PV_CLASS_THROTTLED ||
	       r->error_class == PV_CLASS_INTERNAL ||
	       strcmp(r->error_code, PV_ERR_NOT_INITIALIZED) == 0;
}

/* Healthy -> ejected. True when this call made the transition. */
static bool eject(lb_balancer *b, lb_member *m)
{
	int want = LB_HEALTHY;
	if (!atomic_compare_exchange_strong(&m->state, &want, LB_EJECTED))
		return false;
	atomic_store(&m->next_probe_ns, pv_clock_now(b->clock) + b->interval_ns);
	atomic_store(&m->ok_streak, 0);
	atomic_store(&m->check_ok_streak, 0);
	atomic_fetch_add(&m->ejections, 1);
	pv_log(PV_LOG_WARN, "balancer '%s': ejected '%s'", b->base.name,
	       pv_strategy_name(m->child));
	return true;
}

/* Ejected -> healthy. True when this call made the transition. */
static bool restore(lb_balancer *b, lb_member *m)
{
	int want = LB_EJECTED;
	if (!atomic_compare_exchange_strong(&m->state, &want, LB_HEALTHY))
		return false;
	atomic_store(&m->fail_streak, 0);
	atomic_store(&m->check_fail_streak, 0);
	atomic_store(&m->ok_streak, 0);
	atomic_store(&m->check_ok_streak, 0);
	pv_log(PV_LOG_INFO, "balancer '%s': restored '%s'", b->base.name,
	       pv_strategy_name(m->child));
	return true;
}

void lb_health_on_result(lb_balancer *b, lb_member *m, const pv_result *r, bool probe)
{
	pv_lb_health_mode mode = b->cfg.health_check_mode;
	if (mode == PV_LB_HEALTH_DISABLED || mode == PV_LB_HEALTH_ACTIVE)
		return;
	bool ejected = atomic_load_explicit(&m->state, RELAXED) == LB_EJECTED;
	if (r->success) {
		if (atomic_load_explicit(&m->fail_streak, RELAXED))
			atomic_store_explicit(&m->fail_streak, 0, RELAXED);
		if (!ejected)
			return;
		unsigned ok = atomic_fetch_add(&m->ok_streak, 1) + 1;
		if (ok >= b->cfg.recovery_threshold) {
			if (restore(b, m))
				lb_rebuild(b);
		} else if (probe) {
			atomic_store(&m->next_probe_ns, 0); /* probe again at once */
		}
		return;
	}
	if (!lb_failure_counts(r))
		return;
	if (atomic_load_explicit(&m->ok_streak, RELAXED))
		atomic_store_explicit(&m->ok_streak, 0, RELAXED);
	if (ejected)
		return; /* a failed probe: the claim already set the next one */
	unsigned f = atomic_fetch_add(&m->fail_streak, 1) + 1;
	if (f >= b->cfg.unhealthy_threshold && eject(b, m))
		lb_rebuild(b);
}

lb_member *lb_probe_due(lb_balancer *b, const lb_roster *r)
{
	uint64_t now = pv_clock_now(b->clock);
	for (size_t i = 0; i < r->n; i++) {
		lb_member *m = r->all[i];
		if (atomic_load_explicit(&m->state, RELAXED) != LB_EJECTED)
			continue;
		uint_fast64_t due = atomic_load(&m->next_probe_ns);
		if (now >= due &&
		    atomic_compare_exchange_strong(&m->next_probe_ns, &due, now + b->interval_ns)) {
			atomic_fetch_add(&m->probes, 1);
			return m;
		}
	}
	return NULL;
}

/* Applies one health check answer; true when the member changed state. */
static bool apply_check(lb_balancer *b, lb_member *m, bool healthy)
{
	pv_lb_health_mode mode = b->cfg.health_check_mode;
	if (healthy) {
		atomic_store(&m->check_fail_streak, 0);
		if (atomic_load(&m->state) != LB_EJECTED)
			return false;
		unsigned ok = atomic_fetch_add(&m->check_ok_streak, 1) + 1;
		return ok >= b->cfg.recovery_threshold && restore(b, m);
	}
	atomic_fetch_add(&m->checks_failed, 1);
	atomic_store(&m->check_ok_streak, 0);
	unsigned f = atomic_fetch_add(&m->check_fail_streak, 1) + 1;
	bool may_eject = mode == PV_LB_HEALTH_ACTIVE || mode == PV_LB_HEALTH_HYBRID;
	return may_eject && f >= b->cfg.unhealthy_threshold && eject(b, m);
}

int pv_balancer_check_health(pv_strategy *s)
{
	lb_balancer *b = lb_of(s);
	if (!b)
		return pv_error_set(PV_EINVAL, "pv_balancer_check_health: not a balancer");
	size_t n;
	lb_member **ms = lb_snapshot(b, &n);
	if (!ms)
		return pv_error_set(PV_ENOMEM, "out of memory");
	bool changed = false;
	for (size_t i = 0; i < n; i++) {
		pv_health h;
		uint64_t t0 = pv_clock_now(b->clock);
		int rc = pv_strategy_health(ms[i]->child, &h);
		pv_metrics_record_health(&ms[i]->metrics, pv_clock_now(b->clock) - t0);
		changed |= apply_check(b, ms[i], rc == 0 && h.healthy);
		pv_health_clear(&h);
	}
	lb_snapshot_free(ms, n);
	if (changed)
		lb_rebuild(b);
	atomic_fetch_add(&b->health_rounds, 1);
	return (int)n;
}

/* ---- the health thread -------------------------------------------------- */

static void wait_real(lb_balancer *b, uint64_t ns)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	uint64_t t = (uint64_t)ts.tv_sec * PV_NS_PER_S + (uint64_t)ts.tv_nsec + ns;
	ts.tv_sec = (time_t)(t / PV_NS_PER_S);
	ts.tv_nsec = (long)(t % PV_NS_PER_S);
	pthread_cond_timedwait(&b->thr_cond, &b->thr_lock, &ts);
}

/*
 * With the system clock the thread sleeps the whole interval (woken early
 * only to stop). With another clock (a manual one in tests) it cannot be
 * woken by that clock, so it looks at it every 5 ms of real time.
 */
static void *health_main(void *arg)
{
	lb_balancer *b = arg;
	bool system = !b->clock || b->clock == pv_clock_system();
	pthread_mutex_lock(&b->thr_lock);
	uint64_t next = b->thr_first;
	while (!b->thr_stop) {
		uint64_t now = pv_clock_now(b->clock);
		if (now >= next) {
			pthread_mutex_unlock(&b->thr_lock);
			pv_balancer_check_health(&b->base);
			pthread_mutex_lock(&b->thr_lock);
			next = now + b->interval_ns;
			continue;
		}
		uint64_t left = next - now;
		wait_real(b, system || left < 5 * PV_NS_PER_MS ? left : 5 * PV_NS_PER_MS);
	}
	pthread_mutex_unlock(&b->thr_lock);
	return NULL;
}

int lb_health_thread_start(lb_balancer *b)
{
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&b->thr_cond, &ca);
	pthread_condattr_destroy(&ca);
	pthread_mutex_init(&b->thr_lock, NULL);
	b->thr_stop = false;
	/* Read here, not in the thread: the first round is one interval after
	 * creation, however late the thread gets scheduled. */
	b->thr_first = pv_clock_now(b->clock) + b->interval_ns;
	int err = pthread_create(&b->thread, NULL, health_main, b);
	if (err) {
		pthread_cond_destroy(&b->thr_cond);
		pthread_mutex_destroy(&b->thr_lock);
		return pv_error_set(PV_ERROR, "balancer '%s': cannot start the health thread: %s",
				    b->base.name, strerror(err));
	}
	b->thr_started = true;
	return 0;
}

void lb_health_thread_stop(lb_balancer *b)
{
	if (!b->thr_started)
		return;
	pthread_mutex_lock(&b->thr_lock);
	b->thr_stop = true;
	pthread_cond_signal(&b->thr_cond);
	pthread_mutex_unlock(&b->thr_lock);
	pthread_join(b->thread, NULL);
	pthread_cond_destroy(&b->thr_cond);
	pthread_mutex_destroy(&b->thr_lock);
	b->thr_started = false;
}
