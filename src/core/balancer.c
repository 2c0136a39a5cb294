/*
 * balancer.c - the load-balancing strategy: creation, the execute path,
 * run-time membership and weights, and the rosters they publish.
 *
 * The data structures and why they are shaped so are described in
 * core/balancer_internal.h; the algorithms are in balancer_pick.c, health
 * in balancer_health.c, stats and state in balancer_stats.c, result
 * metadata in balancer_meta.c.
 *
 * The execute path: pick a member (inside a non-blocking read section, see
 * balancer_internal.h), run the child with no lock held, record the outcome
 * in lock-free counters, and add the "balancer" metadata key. The result
 * keeps the leaf provider the child reported.
 */
#include <math.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/balancer_internal.h"
#include "provisio/error.h"

#define RELAXED memory_order_relaxed

static const pv_strategy_methods lb_methods;

lb_balancer *lb_of(pv_strategy *s)
{
	return s && s->methods == &lb_methods ? (lb_balancer *)s : NULL;
}

int pv_balancer_is(const pv_strategy *s) { return s && s->methods == &lb_methods; }

/* ---- members ------------------------------------------------------------ */

static lb_member *member_new(lb_balancer *b, pv_strategy *child, double weight)
{
	lb_member *m = calloc(1, sizeof *m);
	if (!m)
		return NULL;
	m->meta = json_pack("{s:s, s:s, s:s}", "name", b->base.name, "algorithm",
			    pv_lb_algorithm_name(b->cfg.algorithm), "strategy",
			    pv_strategy_name(child));
	if (!m->meta) {
		free(m);
		return NULL;
	}
	static atomic_uint next_home;
	m->meta_home = atomic_fetch_add_explicit(&next_home, 1, RELAXED) % LB_META_POOL;
	atomic_init(&m->refs, 1);
	m->child = pv_strategy_ref(child);
	atomic_init(&m->weight, weight);
	pv_metrics_recorder_init(&m->metrics);
	atomic_init(&m->state, LB_HEALTHY);
	atomic_init(&m->adaptive, LB_ADAPTIVE_MAX);
	atomic_init(&m->success_ewma, 1.0);
	return m;
}

void lb_member_unref(lb_member *m)
{
	if (!m || atomic_fetch_sub_explicit(&m->refs, 1, memory_order_acq_rel) != 1)
		return;
	pv_strategy_unref(m->child);
	json_decref(m->meta);
	free(m);
}

static const char *member_name(const lb_member *m) { return pv_strategy_name(m->child); }

/* ---- rosters ------------------------------------------------------------ */

static void roster_free(lb_roster *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->n; i++)
		lb_member_unref(r->all[i]);
	free(r->all);
	lb_view_free(&r->healthy);
	lb_view_free(&r->every);
	free(r);
}

static int view_init(lb_view *v, lb_member **from, size_t n, bool healthy_only,
		     pv_lb_algorithm alg)
{
	v->m = malloc((n ? n : 1) * sizeof *v->m);
	if (!v->m)
		return pv_error_set(PV_ENOMEM, "out of memory");
	for (size_t i = 0; i < n; i++)
		if (!healthy_only || atomic_load(&from[i]->state) == LB_HEALTHY)
			v->m[v->n++] = from[i];
	return lb_view_build(v, alg);
}

/* A new roster from b->members (admin held). */
static lb_roster *roster_build(lb_balancer *b, lb_member **members, size_t n)
{
	lb_roster *r = calloc(1, sizeof *r);
	if (!r)
		return NULL;
	r->all = malloc((n ? n : 1) * sizeof *r->all);
	if (!r->all) {
		free(r);
		return NULL;
	}
	for (size_t i = 0; i < n; i++) {
		r->all[i] = members[i];
		atomic_fetch_add(&members[i]->refs, 1);
	}
	r->n = n;
	if (view_init(&r->healthy, r->all, n, true, b->cfg.algorithm) < 0 ||
	    view_init(&r->every, r->all, n, false, b->cfg.algorithm) < 0) {
		roster_free(r);
		return NULL;
	}
	r->n_ejected = n - r->healthy.n;
	return r;
}

static lb_members *members_of(lb_balancer *b) { return &b->members; }

unsigned lb_stripe_index(void)
{
	static atomic_uint next_stripe;
	static _Thread_local unsigned mine; /* stripe + 1; 0 = not assigned yet */
	if (!mine)
		mine = atomic_fetch_add_explicit(&next_stripe, 1, memory_order_relaxed) % LB_STRIPES + 1;
	return mine - 1;
}

static void wait_empty(lb_balancer *b, unsigned row)
{
	for (unsigned i = 0; i < LB_STRIPES; i++)
		while (atomic_load_explicit(&b->readers[row][i].n, memory_order_seq_cst) != 0)
			sched_yield();
}

/*
 * Returns once no read section that could have seen the previous roster is
 * still running (admin held). A reader increments its stripe before loading
 * the roster, so one that loaded the old pointer is counted in the row it
 * chose; both rows are drained, flipping the epoch before each wait so that
 * readers arriving meanwhile use the other row and cannot starve the wait.
 */
static void wait_for_readers(lb_balancer *b)
{
	for (int k = 0; k < 2; k++) {
		unsigned e = atomic_fetch_add_explicit(&b->epoch, 1, memory_order_seq_cst);
		wait_empty(b, e & 1u);
	}
}

static int swap_roster(lb_balancer *b)
{
	lb_members *ms = members_of(b);
	lb_roster *r = roster_build(b, ms->m, ms->n);
	if (!r)
		return pv_error_set(PV_ENOMEM, "balancer '%s': out of memory rebuilding", b->base.name);
	lb_roster *old = atomic_exchange_explicit(&b->roster, r, memory_order_seq_cst);
	wait_for_readers(b);
	roster_free(old);
	atomic_fetch_add(&b->rebuilds, 1);
	return 0;
}

int lb_rebuild(lb_balancer *b)
{
	pthread_mutex_lock(&b->admin);
	int rc = swap_roster(b);
	pthread_mutex_unlock(&b->admin);
	return rc;
}

/* ---- the strategy ------------------------------------------------------- */

static void fail_no_pick(lb_balancer *b, lb_pick_status st, pv_result *out)
{
	if (st == LB_PICK_AT_CAP) {
		atomic_fetch_add_explicit(&b->throttled, 1, RELAXED);
		pv_result_fail(out, PV_ERR_THROTTLED, PV_CLASS_THROTTLED,
			       "balancer '%s': every strategy is at max_connections_per_strategy (%u)",
			       b->base.name, b->cfg.max_connections_per_strategy);
	} else {
		atomic_fetch_add_explicit(&b->unavailable, 1, RELAXED);
		pv_result_fail(out, PV_ERR_NO_STRATEGY_AVAILABLE, PV_CLASS_TRANSIENT,
			       "balancer '%s' has no strategy to run %s", b->base.name, "the operation");
	}
	pv_result_set_provider(out, b->base.name);
	pv_result_meta_set(out, "balancer",
			   json_pack("{s:s, s:s, s:n}", "name", b->base.name, "algorithm",
				     pv_lb_algorithm_name(b->cfg.algorithm), "strategy"));
}

static void record(lb_balancer *b, lb_member *m, pv_op_type type, const pv_result *out)
{
	pv_metrics_end(&m->metrics);
	pv_metrics_record_op(&m->metrics, type, out, out->latency_ns, 0);
	if (b->cfg.algorithm == PV_LB_ADAPTIVE) {
		/* Racy load/store like the latency EWMA: a lost sample is harmless. */
		double s = atomic_load_explicit(&m->success_ewma, RELAXED);
		s += ((out->success ? 1.0 : 0.0) - s) / 16.0;
		atomic_store_explicit(&m->success_ewma, s, RELAXED);
	}
}

static int lb_execute(pv_strategy *s, const pv_operation *op, pv_result *out)
{
	lb_balancer *b = (lb_balancer *)s;
	lb_pick p;
	lb_pick_status st = lb_pick_member(b, op, &p);
	if (st != LB_PICK_OK) {
		fail_no_pick(b, st, out);
		return 0;
	}
	if (p.panic)
		atomic_fetch_add_explicit(&b->panic_picks, 1, RELAXED);
	pv_strategy_execute(p.m->child, op, out, b->clock);
	record(b, p.m, op->type, out);
	lb_health_on_result(b, p.m, out, p.probe);
	if (b->cfg.result_metadata)
		lb_attach_meta(out, p.m->meta, p.m->meta_home);
	if (p.panic)
		pv_result_meta_set(out, "balancer_panic", json_true());
	if (p.probe)
		pv_result_meta_set(out, "balancer_probe", json_true());
	lb_member_unref(p.m);
	return 0;
}

/* A referenced copy of the current members, for calls made with no lock. */
lb_member **lb_snapshot(lb_balancer *b, size_t *n)
{
	atomic_long *slot;
	const lb_roster *r = lb_read_begin(b, &slot);
	*n = r->n;
	lb_member **ms = malloc((*n ? *n : 1) * sizeof *ms);
	for (size_t i = 0; ms && i < *n; i++) {
		ms[i] = r->all[i];
		atomic_fetch_add(&ms[i]->refs, 1);
	}
	lb_read_end(slot);
	return ms;
}

void lb_snapshot_free(lb_member **ms, size_t n)
{
	for (size_t i = 0; i < n; i++)
		lb_member_unref(ms[i]);
	free(ms);
}

static int lb_init(pv_strategy *s)
{
	lb_balancer *b = (lb_balancer *)s;
	size_t n, ok = 0;
	lb_member **ms = lb_snapshot(b, &n);
	if (!ms)
		return pv_error_set(PV_ENOMEM, "out of memory");
	for (size_t i = 0; i < n; i++)
		if (pv_strategy_initialize(ms[i]->child) == 0)
			ok++;
	lb_snapshot_free(ms, n);
	if (n && !ok)
		return pv_error_set(PV_ESTATE, "balancer '%s': none of its %zu strategies initialized",
				    s->name, n);
	return 0;
}

static void merge_features(json_t **into, const json_t *from)
{
	if (!from)
		return;
	if (!*into)
		*into = json_object();
	json_object_update_missing(*into, (json_t *)from);
}

static int lb_capabilities(pv_strategy *s, pv_capabilities *out)
{
	lb_balancer *b = (lb_balancer *)s;
	size_t n;
	lb_member **ms = lb_snapshot(b, &n);
	if (!ms)
		return pv_error_set(PV_ENOMEM, "out of memory");
	snprintf(out->type, sizeof out->type, "%s", PV_BALANCER_TYPE);
	for (size_t i = 0; i < n; i++) {
		pv_capabilities c;
		if (pv_strategy_capabilities(ms[i]->child, &c) == 0) {
			out->operations |= c.operations;
			merge_features(&out->features, c.features);
		}
		pv_capabilities_clear(&c);
	}
	lb_snapshot_free(ms, n);
	json_t *own = json_pack("{s:b}", "load_balancing", 1);
	merge_features(&out->features, own);
	json_decref(own);
	json_t *lim = json_pack("{s:I}", "max_connections_per_strategy",
				(json_int_t)b->cfg.max_connections_per_strategy);
	out->limitations = lim;
	return 0;
}

static int lb_health(pv_strategy *s, pv_health *out)
{
	lb_balancer *b = (lb_balancer *)s;
	size_t n, healthy = 0;
	uint64_t t0 = pv_clock_now(b->clock);
	lb_member **ms = lb_snapshot(b, &n);
	if (!ms)
		return pv_error_set(PV_ENOMEM, "out of memory");
	json_t *details = json_object();
	for (size_t i = 0; i < n; i++) {
		pv_health h;
		bool ok = pv_strategy_health(ms[i]->child, &h) == 0 && h.healthy;
		healthy += ok;
		json_object_set_new(details, member_name(ms[i]),
				    json_pack("{s:b, s:b}", "healthy", ok, "ejected",
					      atomic_load(&ms[i]->state) == LB_EJECTED));
		pv_health_clear(&h);
	}
	lb_snapshot_free(ms, n);
	pv_health_set(out, healthy > 0, "balancer '%s': %zu of %zu strategies healthy", s->name,
		      healthy, n);
	out->details = details;
	out->checked_at_ms = pv_wall_ms();
	out->response_ns = pv_clock_now(b->clock) - t0;
	return 0;
}

static void lb_destroy(pv_strategy *s)
{
	lb_balancer *b = (lb_balancer *)s;
	lb_health_thread_stop(b);
	roster_free(atomic_load(&b->roster));
	lb_members *ms = members_of(b);
	for (size_t i = 0; i < ms->n; i++)
		lb_member_unref(ms->m[i]);
	free(ms->m);
	pthread_mutex_destroy(&b->admin);
}

static const pv_strategy_methods lb_methods = {
	.version = PV_STRATEGY_METHODS_VERSION,
	.init = lb_init,
	.execute = lb_execute,
	.capabilities = lb_capabilities,
	.health = lb_health,
	.destroy = lb_destroy,
	.stats = lb_stats,
	.state_save = lb_state_save,
	.state_load = lb_state_load,
	.flags = PV_STRATEGY_TIMED_BY_CHILD,
};

/* ---- membership ---------------------------------------------------------- */

static long find_locked(lb_balancer *b, const char *name)
{
	lb_members *ms = members_of(b);
	for (size_t i = 0; name && i < ms->n; i++)
		if (strcmp(member_name(ms->m[i]), name) == 0)
			return (long)i;
	return -1;
}

static int check_weight(const lb_balancer *b, const char *child, double w)
{
	if (!isfinite(w) || w < 0)
		return pv_error_set(PV_EINVAL,
				    "balancer '%s': weight of '%s' must be a finite number >= 0",
				    b->base.name, child ? child : "(null)");
	return 0;
}

/* Appends a member (admin held, no rebuild). */
static int append_locked(lb_balancer *b, pv_strategy *child, double w)
{
	lb_members *ms = members_of(b);
	if (!child)
		return pv_error_set(PV_EINVAL, "balancer '%s': child strategy is NULL", b->base.name);
	if (find_locked(b, pv_strategy_name(child)) >= 0)
		return pv_error_set(PV_EEXISTS, "balancer '%s': a strategy named '%s' is already a child",
				    b->base.name, pv_strategy_name(child));
	if (ms->n >= PV_BALANCER_MAX_STRATEGIES)
		return pv_error_set(PV_ESTATE, "balancer '%s': at most %d strategies", b->base.name,
				    PV_BALANCER_MAX_STRATEGIES);
	int rc = check_weight(b, pv_strategy_name(child), w);
	if (rc < 0)
		return rc;
	if (ms->n == ms->cap) {
		size_t cap = ms->cap ? ms->cap * 2 : 8;
		lb_member **grown = realloc(ms->m, cap * sizeof *grown);
		if (!grown)
			return pv_error_set(PV_ENOMEM, "out of memory");
		ms->m = grown;
		ms->cap = cap;
	}
	lb_member *m = member_new(b, child, w);
	if (!m)
		return pv_error_set(PV_ENOMEM, "out of memory");
	ms->m[ms->n++] = m;
	return 0;
}

int pv_balancer_add(pv_strategy *s, pv_strategy *child, double weight)
{
	lb_balancer *b = lb_of(s);
	if (!b)
		return pv_error_set(PV_EINVAL, "pv_balancer_add: not a balancer");
	/* A child joining a running balancer must be ready for traffic, or its
	 * first results (NOT_INITIALIZED) would eject it at once. */
	int rc = child && pv_strategy_is_initialized(s) ? pv_strategy_initialize(child) : 0;
	if (rc < 0)
		return rc;
	pthread_mutex_lock(&b->admin);
	rc = append_locked(b, child, weight);
	if (rc == 0 && (rc = swap_roster(b)) < 0) {
		lb_members *ms = members_of(b);
		lb_member_unref(ms->m[--ms->n]);
	}
	pthread_mutex_unlock(&b->admin);
	return rc;
}

int pv_balancer_remove(pv_strategy *s, const char *child)
{
	lb_balancer *b = lb_of(s);
	if (!b)
		return pv_error_set(PV_EINVAL, "pv_balancer_remove: not a balancer");
	pthread_mutex_lock(&b->admin);
	long i = find_locked(b, child);
	if (i < 0) {
		pthread_mutex_unlock(&b->admin);
		return pv_error_set(PV_ENOTFOUND, "balancer '%s' has no strategy named '%s'",
				    s->name, child ? child : "(null)");
	}
	lb_members *ms = members_of(b);
	lb_member *gone = ms->m[i];
	memmove(ms->m + i, ms->m + i + 1, (ms->n - (size_t)i - 1) * sizeof *ms->m);
	ms->n--;
	int rc = swap_roster(b);
	if (rc < 0) { /* put it back: the old roster is still current */
		memmove(ms->m + i + 1, ms->m + i, (ms->n - (size_t)i) * sizeof *ms->m);
		ms->m[i] = gone;
		ms->n++;
	} else {
		lb_member_unref(gone);
	}
	pthread_mutex_unlock(&b->admin);
	return rc;
}

int pv_balancer_set_weight(pv_strategy *s, const char *child, double weight)
{
	lb_balancer *b = lb_of(s);
	if (!b)
		return pv_error_set(PV_EINVAL, "pv_balancer_set_weight: not a balancer");
	int rc = check_weight(b, child, weight);
	if (rc < 0)
		return rc;
	pthread_mutex_lock(&b->admin);
	long i = find_locked(b, child);
	if (i < 0) {
		rc = pv_error_set(PV_ENOTFOUND, "balancer '%s' has no strategy named '%s'", s->name,
				  child ? child : "(null)");
	} else {
		atomic_store(&members_of(b)->m[i]->weight, weight);
		rc = swap_roster(b);
	}
	pthread_mutex_unlock(&b->admin);
	return rc;
}

size_t pv_balancer_count(pv_strategy *s)
{
	lb_balancer *b = lb_of(s);
	if (!b)
		return 0;
	atomic_long *slot;
	size_t n = lb_read_begin(b, &slot)->n;
	lb_read_end(slot);
	return n;
}

/* ---- creation ----------------------------------------------------------- */

static int check_config(const char *name, const pv_balancer_config *c)
{
	const char *field = NULL, *why = NULL;
	if ((unsigned)c->algorithm >= PV_LB_ALGORITHM_COUNT)
		field = "algorithm", why = "is not a known algorithm";
	else if ((unsigned)c->health_check_mode >= PV_LB_HEALTH_MODE_COUNT)
		field = "health_check_mode", why = "must be disabled, passive, active or hybrid";
	else if (c->max_connections_per_strategy > 1000000)
		field = "max_connections_per_strategy", why = "must be 0 (no cap) to 1000000";
	else if (!(c->weight_adjustment_factor > 0 && c->weight_adjustment_factor <= 1))
		field = "weight_adjustment_factor", why = "must be > 0 and <= 1";
	else if (!(c->health_check_interval_seconds > 0 && c->health_check_interval_seconds <= 86400))
		field = "health_check_interval_seconds", why = "must be > 0 and <= 86400";
	else if (c->unhealthy_threshold < 1 || c->unhealthy_threshold > 1000)
		field = "unhealthy_threshold", why = "must be 1 to 1000";
	else if (c->recovery_threshold < 1 || c->recovery_threshold > 1000)
		field = "recovery_threshold", why = "must be 1 to 1000";
	if (field)
		return pv_error_set(PV_EINVAL, "balancer '%s': field '%s' %s", name ? name : "(null)",
				    field, why);
	return 0;
}

/* Applies cfg->weights by name (admin held). */
static int apply_config_weights(lb_balancer *b, const json_t *weights)
{
	const char *k;
	json_t *v;
	if (!weights)
		return 0;
	if (!json_is_object(weights))
		return pv_error_set(PV_EINVAL, "balancer '%s': field 'weights' must be an object",
				    b->base.name);
	json_object_foreach((json_t *)weights, k, v) {
		long i = find_locked(b, k);
		double w = json_number_value(v);
		if (i < 0)
			return pv_error_set(PV_EINVAL,
					    "balancer '%s': field 'weights.%s': no child strategy "
					    "has that name",
					    b->base.name, k);
		if (!json_is_number(v) || !isfinite(w) || w < 0)
			return pv_error_set(PV_EINVAL,
					    "balancer '%s': field 'weights.%s': must be a finite "
					    "number >= 0",
					    b->base.name, k);
		atomic_store(&members_of(b)->m[i]->weight, w);
	}
	return 0;
}

static int populate(lb_balancer *b, pv_strategy *const *children, const double *weights,
		    size_t n, const json_t *cfg_weights)
{
	int rc = 0;
	if (n > PV_BALANCER_MAX_STRATEGIES)
		return pv_error_set(PV_EINVAL, "balancer '%s': at most %d strategies, got %zu",
				    b->base.name, PV_BALANCER_MAX_STRATEGIES, n);
	if (n && !children)
		return pv_error_set(PV_EINVAL, "balancer '%s': children is NULL", b->base.name);
	pthread_mutex_lock(&b->admin);
	for (size_t i = 0; rc == 0 && i < n; i++)
		rc = append_locked(b, children[i], weights ? weights[i] : 1.0);
	if (rc == 0)
		rc = apply_config_weights(b, cfg_weights);
	if (rc == 0)
		rc = swap_roster(b);
	pthread_mutex_unlock(&b->admin);
	return rc;
}

int pv_balancer_new(pv_strategy **out, const char *name, pv_strategy *const *children,
		    const double *weights, size_t n, const pv_balancer_config *cfg,
		    const pv_clock *clock)
{
	pv_balancer_config dflt;
	pv_balancer_config_default(&dflt);
	if (!cfg)
		cfg = &dflt;
	*out = NULL;
	int rc = check_config(name, cfg);
	if (rc < 0)
		return rc;
	lb_balancer *b = pv_strategy_alloc(sizeof *b, &lb_methods, name, PV_BALANCER_TYPE);
	if (!b)
		return pv_error_last_code();
	b->cfg = *cfg;
	b->cfg.weights = NULL;
	b->clock = clock;
	b->interval_ns = (uint64_t)(cfg->health_check_interval_seconds * 1e9);
	pthread_mutex_init(&b->admin, NULL);
	atomic_flag_clear(&b->adapting);
	rc = populate(b, children, weights, n, cfg->weights);
	if (rc == 0 && (cfg->health_check_mode == PV_LB_HEALTH_ACTIVE ||
			cfg->health_check_mode == PV_LB_HEALTH_HYBRID))
		rc = lb_health_thread_start(b);
	if (rc < 0) {
		pv_strategy_unref(&b->base);
		return rc;
	}
	*out = &b->base;
	return 0;
}
