/*
 * balancer_stats.c - what a balancer tells about itself: the spec's
 * strategy_stats, the strategy's stats, and the state a short-lived process
 * saves for the next one (Host Factory runs one process per call, and a
 * round robin that restarts at the first child every time is no rotation).
 */
#include <math.h>
#include <stdlib.h>
#include "core/balancer_internal.h"
#include "provisio/error.h"

static const char *member_name(const lb_member *m) { return pv_strategy_name(m->child); }

/* ---- stats -------------------------------------------------------------- */

static json_t *num_or_null(double v) { return isnan(v) ? json_null() : json_real(v); }

static json_t *member_stats(const lb_member *m)
{
	pv_metrics s;
	pv_metrics_snapshot(&m->metrics, &s);
	double w = atomic_load(&((lb_member *)m)->weight);
	double a = atomic_load(&((lb_member *)m)->adaptive);
	bool ejected = atomic_load(&((lb_member *)m)->state) == LB_EJECTED;
	json_t *j = json_object();
	json_object_set_new(j, "active_connections", json_integer((json_int_t)s.in_flight));
	json_object_set_new(j, "success_rate", num_or_null(s.success_rate));
	json_object_set_new(j, "average_response_time", num_or_null(s.mean_latency_ms));
	json_object_set_new(j, "ewma_response_time", num_or_null(s.ewma_latency_ms));
	json_object_set_new(j, "requests", json_integer((json_int_t)s.total));
	json_object_set_new(j, "successes", json_integer((json_int_t)s.successes));
	json_object_set_new(j, "failures", json_integer((json_int_t)s.failures));
	json_object_set_new(j, "healthy", json_boolean(!ejected));
	json_object_set_new(j, "state", json_string(ejected ? "ejected" : "healthy"));
	json_object_set_new(j, "weight", json_real(w));
	json_object_set_new(j, "current_weight", json_real(w * a));
	json_object_set_new(j, "adaptive_factor", json_real(a));
	json_object_set_new(j, "consecutive_failures",
			    json_integer(atomic_load(&((lb_member *)m)->fail_streak)));
	json_object_set_new(j, "ejections", json_integer((json_int_t)atomic_load(&m->ejections)));
	json_object_set_new(j, "probes", json_integer((json_int_t)atomic_load(&m->probes)));
	json_object_set_new(j, "health_checks", json_integer((json_int_t)s.health_checks));
	json_object_set_new(j, "health_checks_failed",
			    json_integer((json_int_t)atomic_load(&m->checks_failed)));
	return j;
}

json_t *pv_balancer_strategy_stats(pv_strategy *s)
{
	lb_balancer *b = lb_of(s);
	if (!b)
		return NULL;
	size_t n;
	lb_member **ms = lb_snapshot(b, &n);
	if (!ms)
		return NULL;
	json_t *j = json_object();
	for (size_t i = 0; i < n; i++)
		json_object_set_new(j, member_name(ms[i]), member_stats(ms[i]));
	lb_snapshot_free(ms, n);
	return j;
}

json_t *lb_stats(pv_strategy *s)
{
	lb_balancer *b = (lb_balancer *)s;
	atomic_long *slot;
	const lb_roster *r = lb_read_begin(b, &slot);
	bool panic = r->n && r->healthy.n == 0;
	json_int_t ejected = (json_int_t)r->n_ejected;
	lb_read_end(slot);
	return json_pack("{s:s, s:s, s:o, s:b, s:I, s:I, s:I, s:I, s:I, s:I}", "algorithm",
			 pv_lb_algorithm_name(b->cfg.algorithm), "health_check_mode",
			 pv_lb_health_mode_name(b->cfg.health_check_mode), "strategies",
			 pv_balancer_strategy_stats(s), "panic", panic, "ejected", ejected,
			 "panic_picks", (json_int_t)atomic_load(&b->panic_picks), "throttled",
			 (json_int_t)atomic_load(&b->throttled), "unavailable",
			 (json_int_t)atomic_load(&b->unavailable), "health_check_rounds",
			 (json_int_t)atomic_load(&b->health_rounds), "rebuilds",
			 (json_int_t)atomic_load(&b->rebuilds));
}

/* ---- state -------------------------------------------------------------- */

static json_t *member_state(lb_member *m, uint64_t now)
{
	bool ejected = atomic_load(&m->state) == LB_EJECTED;
	uint64_t due = atomic_load(&m->next_probe_ns);
	json_t *j = json_pack(
		"{s:b, s:I, s:I, s:I, s:I, s:f, s:f, s:I}", "ejected", ejected,
		"probe_in_ms", (json_int_t)(ejected && due > now ? (due - now) / PV_NS_PER_MS : 0),
		"fail_streak", (json_int_t)atomic_load(&m->fail_streak), "ok_streak",
		(json_int_t)atomic_load(&m->ok_streak), "ejections",
		(json_int_t)atomic_load(&m->ejections), "adaptive", atomic_load(&m->adaptive),
		"success_ewma", atomic_load(&m->success_ewma), "ewma_ns",
		(json_int_t)atomic_load(&m->metrics.ewma_ns));
	return j;
}

json_t *lb_state_save(pv_strategy *s)
{
	lb_balancer *b = (lb_balancer *)s;
	size_t n;
	lb_member **ms = lb_snapshot(b, &n);
	if (!ms)
		return NULL;
	uint64_t now = pv_clock_now(b->clock);
	json_t *members = json_object();
	for (size_t i = 0; i < n; i++)
		json_object_set_new(members, member_name(ms[i]), member_state(ms[i], now));
	lb_snapshot_free(ms, n);
	return json_pack("{s:i, s:s, s:I, s:o}", "version", 1, "algorithm",
			 pv_lb_algorithm_name(b->cfg.algorithm), "position",
			 (json_int_t)atomic_load(&b->position), "strategies", members);
}

static uint64_t state_u64(const json_t *o, const char *k)
{
	json_int_t v = json_integer_value(json_object_get(o, k));
	return v > 0 ? (uint64_t)v : 0;
}

static double state_real(const json_t *o, const char *k, double dflt, double lo, double hi)
{
	json_t *v = json_object_get(o, k);
	double d = json_is_number(v) ? json_number_value(v) : dflt;
	return isfinite(d) ? fmin(hi, fmax(lo, d)) : dflt;
}

static void member_load(lb_member *m, const json_t *st, uint64_t now)
{
	bool ejected = json_is_true(json_object_get(st, "ejected"));
	atomic_store(&m->state, ejected ? LB_EJECTED : LB_HEALTHY);
	atomic_store(&m->next_probe_ns, ejected ? now + state_u64(st, "probe_in_ms") * PV_NS_PER_MS : 0);
	atomic_store(&m->fail_streak, (unsigned)state_u64(st, "fail_streak"));
	atomic_store(&m->ok_streak, (unsigned)state_u64(st, "ok_streak"));
	atomic_store(&m->ejections, state_u64(st, "ejections"));
	atomic_store(&m->adaptive, state_real(st, "adaptive", 1, LB_ADAPTIVE_MIN, LB_ADAPTIVE_MAX));
	atomic_store(&m->success_ewma, state_real(st, "success_ewma", 1, 0, 1));
	atomic_store(&m->metrics.ewma_ns, state_u64(st, "ewma_ns"));
}

/*
 * Restores what a previous process saved: the rotation position, and per
 * child (matched by name; unknown names are ignored because the set of
 * children may have changed) ejection, streaks, adaptive factors and EWMA
 * latency (what the algorithms decide with; outcome counts are statistics
 * of this process and start at zero). Weights come from the configuration, not the state.
 */
int lb_state_load(pv_strategy *s, const json_t *state)
{
	lb_balancer *b = (lb_balancer *)s;
	json_t *members = json_object_get(state, "strategies");
	if (!json_is_object(state) || json_integer_value(json_object_get(state, "version")) != 1 ||
	    !json_is_object(members))
		return pv_error_set(PV_EINVAL,
				    "balancer '%s': state must be an object with \"version\": 1 and "
				    "\"strategies\": {name: {...}}",
				    s->name);
	size_t n;
	lb_member **ms = lb_snapshot(b, &n);
	if (!ms)
		return pv_error_set(PV_ENOMEM, "out of memory");
	uint64_t now = pv_clock_now(b->clock);
	for (size_t i = 0; i < n; i++) {
		json_t *st = json_object_get(members, member_name(ms[i]));
		if (json_is_object(st))
			member_load(ms[i], st, now);
	}
	lb_snapshot_free(ms, n);
	atomic_store(&b->position, state_u64(state, "position"));
	return lb_rebuild(b);
}
