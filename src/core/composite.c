/*
 * composite.c - the composite strategy: the object, its children, and the
 * methods.
 *
 * The object keeps its children in an immutable, reference-counted roster
 * (see composite_internal.h) so a call takes one reference under a mutex and
 * then runs children with no lock held, while add/remove publish a new
 * roster. Weights are atomics on the members, so changing one needs no copy.
 * How calls run and how answers combine lives in composite_run.c,
 * composite_agg.c and composite_create.c; the config in composite_config.c.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/composite_internal.h"
#include "core/strategy_internal.h"
#include "provisio/error.h"

/* ---- members and rosters ------------------------------------------------ */

static cmember *member_new(pv_strategy *s, double weight)
{
	cmember *m = calloc(1, sizeof *m);
	if (!m || pv_counters_init(&m->counts) < 0) {
		free(m);
		return NULL;
	}
	atomic_init(&m->refs, 1);
	m->s = pv_strategy_ref(s);
	atomic_init(&m->weight, weight);
	atomic_init(&m->last_ns, UINT64_MAX);
	pv_capabilities caps;
	m->ops = pv_strategy_capabilities(s, &caps) == 0 ? caps.operations : 0;
	pv_capabilities_clear(&caps);
	return m;
}

void pv_cmember_unref(cmember *m)
{
	if (!m || atomic_fetch_sub_explicit(&m->refs, 1, memory_order_acq_rel) != 1)
		return;
	pv_strategy_unref(m->s);
	pv_counters_destroy(&m->counts);
	free(m);
}

static croster *roster_new(size_t n)
{
	croster *r = calloc(1, sizeof *r + n * sizeof r->m[0]);
	if (r)
		atomic_init(&r->refs, 1);
	return r;
}

/*
 * A roster's block is never freed while its composite lives, only its
 * members let go when the last reference goes: roster_get may touch the
 * count of a roster that was just replaced (see there). `released` makes
 * the letting go happen once, even when such a touch brings the count from
 * 0 to 1 and back.
 */
void pv_croster_unref(croster *r)
{
	if (!r || atomic_fetch_sub_explicit(&r->refs, 1, memory_order_seq_cst) != 1)
		return;
	if (atomic_exchange_explicit(&r->released, true, memory_order_acq_rel))
		return;
	for (size_t i = 0; i < r->n; i++)
		pv_cmember_unref(r->m[i]);
}

/*
 * The current roster with one reference, without a lock (a mutex here was
 * two atomic operations and fifty instructions on every call). Take a
 * reference, then check the roster is still the current one: publishing
 * stores the new pointer before dropping the old one's reference, and with
 * the four operations sequentially consistent, a check that still sees the
 * old pointer means our increment came before that drop, so the members
 * stay. A check that sees a newer one gives the reference back and tries
 * again. The block itself outlives every such touch (pv_croster_unref).
 */
static croster *roster_get(composite *c)
{
	for (;;) {
		croster *r = atomic_load_explicit(&c->roster, memory_order_seq_cst);
		atomic_fetch_add_explicit(&r->refs, 1, memory_order_seq_cst);
		if (atomic_load_explicit(&c->roster, memory_order_seq_cst) == r)
			return r;
		pv_croster_unref(r);
	}
}

/* Index of `name` in the roster, or -1. */
static long roster_find(const croster *r, const char *name)
{
	for (size_t i = 0; i < r->n; i++)
		if (strcmp(r->m[i]->s->name, name) == 0)
			return (long)i;
	return -1;
}

/* ---- the strategy methods ---------------------------------------------- */

static composite *as_composite(pv_strategy *s) { return (composite *)s; }

#define STACK_CHILDREN 16

/* Stop at the first successes only when the gate cannot need the rest. */
static bool may_stop_early(const pv_composite_config *cfg)
{
	return cfg->aggregation_policy == PV_AGG_FIRST_SUCCESS && !cfg->require_all_success &&
	       cfg->failure_threshold >= 1.0;
}

/*
 * Runs a read on `mem`. `first`, when not NULL, is mem[0]'s answer already
 * obtained by the sequential fast path; it is taken over. `now`: as for
 * pv_composite_run.
 */
static void run_read(composite *c, const croster *r, const pv_operation *op, cmember **mem,
		     size_t n, pv_result *first, pv_result *out, uint64_t *now)
{
	child_job jstack[STACK_CHILDREN];
	child_outcome ostack[STACK_CHILDREN];
	child_job *jobs = n <= STACK_CHILDREN ? jstack : malloc(n * sizeof *jobs);
	child_outcome *o = n <= STACK_CHILDREN ? ostack : malloc(n * sizeof *o);
	if (!jobs || !o) {
		pv_result_clear(first ? first : out);
		pv_result_fail(out, PV_ERR_INTERNAL, PV_CLASS_INTERNAL, "out of memory");
		goto done;
	}
	size_t done = first ? 1 : 0;
	for (size_t i = done; i < n; i++)
		jobs[i] = (child_job){mem[i], json_incref(op->params), 0};
	const pv_composite_config *cfg = &c->cfg;
	size_t stop = may_stop_early(cfg) ? cfg->min_success_count : 0;
	if (first) {
		o[0] = (child_outcome){.m = mem[0], .res = *first, .seq = 1};
		memset(first, 0, sizeof *first);
		stop = stop ? stop - o[0].res.success : 0; /* o[0] failed here: stays >= 1 */
	}
	if (n > done)
		pv_composite_run(c, op, jobs + done, n - done, cfg->mode != PV_COMPOSITE_SEQUENTIAL,
				 stop, o + done, now);
	for (size_t i = done; i < n; i++)
		o[i].seq += o[i].seq ? done : 0;
	pv_composite_aggregate(c, r, op, o, n, out);
	child_outcomes_clear(o, n);
done:
	if (jobs != jstack)
		free(jobs);
	if (o != ostack)
		free(o);
}

/*
 * The hot path of sequential first_success: the first capable child
 * answers straight into `out`; no job list, no aggregation, no metadata.
 * Returns false (with that child's failure in `first`) when the general
 * path must go on with the other children. `now`: the composite's start
 * in, the child's end out (one clock read for both).
 */
static bool sequential_first(composite *c, const pv_operation *op, cmember *m, pv_result *first,
			     pv_result *out, uint64_t *now)
{
	*now = pv_strategy_execute_from(m->s, op, out, c->clock, *now);
	pv_composite_count_member(m, out);
	if (out->success)
		return true; /* its answer, its latency */
	*first = *out;
	memset(out, 0, sizeof *out);
	return false;
}

static int composite_execute(pv_strategy *s, const pv_operation *op, pv_result *out)
{
	composite *c = as_composite(s);
	croster *r = roster_get(c);
	cmember *stack[STACK_CHILDREN];
	cmember **mem = r->n <= STACK_CHILDREN ? stack : malloc(r->n * sizeof *mem);
	size_t n = 0;
	if (!mem) {
		pv_result_fail(out, PV_ERR_INTERNAL, PV_CLASS_INTERNAL, "out of memory");
		goto done;
	}
	for (size_t i = 0; i < r->n; i++)
		if (r->m[i]->ops & PV_OP_BIT(op->type))
			mem[n++] = r->m[i];
	if (r->n == 0) {
		pv_result_fail(out, PV_ERR_NO_STRATEGY_AVAILABLE, PV_CLASS_TRANSIENT,
			       "composite '%s' has no children", s->name);
	} else if (n == 0) {
		pv_result_fail(out, PV_ERR_OPERATION_NOT_SUPPORTED, PV_CLASS_PERMANENT,
			       "no child of composite '%s' supports %s", s->name, pv_op_name(op->type));
	} else {
		/* One clock read starts the deadline, the composite's latency and
		 * its first child's call; each child's end starts the next one's,
		 * and the last one's ends a sequential composite's latency (what
		 * follows, aggregation, takes nanoseconds). */
		uint64_t start = pv_clock_now(c->clock), now = start;
		pv_operation cop = *op;
		cop.deadline_ns = pv_composite_deadline_at(c, op, start);
		pv_result first;
		bool hot = op->type != PV_OP_CREATE_INSTANCES && c->sequential_first;
		if (op->type == PV_OP_CREATE_INSTANCES) {
			pv_composite_create(c, &cop, mem, n, out);
			now = 0;
		} else if (!hot) {
			run_read(c, r, &cop, mem, n, NULL, out, &now);
		} else if (!sequential_first(c, &cop, mem[0], &first, out, &now)) {
			run_read(c, r, &cop, mem, n, &first, out, &now);
		}
		if (!hot || !out->success) /* one child's answer came with its latency */
			out->latency_ns = (now ? now : pv_clock_now(c->clock)) - start;
	}
done:
	pv_counters_add(&c->counts, out->success ? CC_SUCCESSES : CC_FAILURES, 1);
	if (mem != stack)
		free(mem);
	pv_croster_unref(r);
	return 0;
}

static int composite_init(pv_strategy *s)
{
	croster *r = roster_get(as_composite(s));
	int first_rc = 0;
	size_t ok = 0;
	for (size_t i = 0; i < r->n; i++) {
		int rc = pv_strategy_initialize(r->m[i]->s);
		if (rc == 0)
			ok++;
		else if (!first_rc)
			first_rc = rc;
	}
	size_t n = r->n;
	pv_croster_unref(r);
	if (n > 0 && ok == 0)
		return pv_error_set(first_rc, "composite '%s': no child could be initialized",
				    s->name);
	return 0;
}

/* Free room a capabilities answer reports, -1 when unbounded or unknown. */
static int64_t caps_room(const pv_capabilities *caps)
{
	static const char *const keys[] = {"available_capacity", "capacity",
					   "max_instances_per_request"};
	int64_t room = -1;
	for (size_t i = 0; caps->limitations && i < 3; i++) {
		json_t *v = json_object_get(caps->limitations, keys[i]);
		if (json_is_integer(v) && json_integer_value(v) >= 0 &&
		    (room < 0 || json_integer_value(v) < room))
			room = json_integer_value(v);
	}
	return room;
}

int64_t pv_composite_child_room(pv_strategy *child)
{
	pv_capabilities caps;
	int64_t room = pv_strategy_capabilities(child, &caps) == 0 ? caps_room(&caps) : -1;
	pv_capabilities_clear(&caps);
	return room;
}

static void merge_features(json_t *into, const json_t *from)
{
	const char *k;
	json_t *v;
	json_object_foreach((json_t *)from, k, v)
		if (!json_object_get(into, k) || json_is_false(json_object_get(into, k)))
			json_object_set(into, k, v);
}

static int composite_capabilities(pv_strategy *s, pv_capabilities *out)
{
	composite *c = as_composite(s);
	croster *r = roster_get(c);
	snprintf(out->type, sizeof out->type, "%s", PV_COMPOSITE_TYPE);
	out->features = json_object();
	int64_t capacity = r->n ? 0 : -1;
	for (size_t i = 0; i < r->n; i++) {
		pv_capabilities cc;
		if (pv_strategy_capabilities(r->m[i]->s, &cc) == 0) {
			out->operations |= cc.operations;
			if (cc.features)
				merge_features(out->features, cc.features);
			int64_t room = caps_room(&cc);
			capacity = room < 0 || capacity < 0 ? -1 : capacity + room;
		}
		pv_capabilities_clear(&cc);
	}
	out->limitations = json_pack("{s:I, s:I, s:i}", "capacity", (json_int_t)capacity, "children",
				     (json_int_t)r->n, "max_concurrent_operations",
				     (int)c->cfg.max_concurrent_operations);
	pv_croster_unref(r);
	return 0;
}

static int composite_health(pv_strategy *s, pv_health *out)
{
	composite *c = as_composite(s);
	uint64_t t0 = pv_clock_now(c->clock);
	croster *r = roster_get(c);
	json_t *children = json_object();
	size_t healthy = 0;
	for (size_t i = 0; i < r->n; i++) {
		pv_health h;
		if (pv_strategy_health(r->m[i]->s, &h) < 0)
			pv_health_set(&h, false, "health check failed: %s", pv_error_last());
		healthy += h.healthy;
		json_object_set_new(children, r->m[i]->s->name, pv_health_to_json(&h));
		pv_health_clear(&h);
	}
	size_t n = r->n;
	pv_croster_unref(r);
	double need = c->cfg.healthy_fraction * (double)n;
	bool ok = n > 0 && (double)healthy + 1e-9 >= need;
	pv_health_set(out, ok, "composite '%s': %zu of %zu children healthy (need fraction %.2f)",
		      s->name, healthy, n, c->cfg.healthy_fraction);
	out->details = json_pack("{s:o, s:I, s:I, s:f}", "children", children, "healthy_children",
				 (json_int_t)healthy, "total_children", (json_int_t)n,
				 "healthy_fraction", c->cfg.healthy_fraction);
	out->checked_at_ms = pv_wall_ms();
	out->response_ns = pv_clock_now(c->clock) - t0;
	return 0;
}

static json_t *member_stats(const cmember *m)
{
	json_int_t ok = (json_int_t)pv_counters_get(&m->counts, MC_SUCCESSES);
	json_int_t failed = (json_int_t)pv_counters_get(&m->counts, MC_FAILURES);
	return json_pack("{s:s, s:f, s:I, s:I, s:I, s:I}", "name", m->s->name, "weight",
			 atomic_load(&m->weight), "calls", ok + failed, "successes", ok, "failures",
			 failed, "timeouts", (json_int_t)pv_counters_get(&m->counts, MC_TIMEOUTS));
}

static json_t *composite_stats(pv_strategy *s)
{
	composite *c = as_composite(s);
	croster *r = roster_get(c);
	json_t *children = json_array();
	for (size_t i = 0; i < r->n; i++)
		json_array_append_new(children, member_stats(r->m[i]));
	pv_croster_unref(r);
	json_int_t ok = (json_int_t)pv_counters_get(&c->counts, CC_SUCCESSES);
	json_int_t failed = (json_int_t)pv_counters_get(&c->counts, CC_FAILURES);
	return json_pack("{s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:i, s:o}", "mode",
			 pv_composite_mode_name(c->cfg.mode), "aggregation_policy",
			 pv_aggregation_name(c->cfg.aggregation_policy), "calls", ok + failed,
			 "successes", ok, "failures", failed, "late_results",
			 (json_int_t)pv_counters_get(&c->counts, CC_LATE_RESULTS),
			 "late_machines_terminated",
			 (json_int_t)pv_counters_get(&c->counts, CC_LATE_REAPED),
			 "surplus_machines_terminated",
			 (json_int_t)pv_counters_get(&c->counts, CC_SURPLUS_REAPED), "merges_reused",
			 (json_int_t)pv_counters_get(&c->counts, CC_MERGES_REUSED), "pool_threads",
			 (int)pv_pool_threads(c->pool), "children", children);
}

static void composite_destroy(pv_strategy *s)
{
	composite *c = as_composite(s);
	pv_pool_free(c->pool); /* first: late finishers still use members and counters */
	croster *cur = atomic_load(&c->roster);
	pv_croster_unref(cur);
	free(cur);
	for (croster *r = c->retired, *next; r; r = next) { /* no call runs any more */
		next = r->retired;
		free(r);
	}
	pv_kept_merge_free(atomic_load(&c->kept));
	pv_composite_config_clear(&c->cfg);
	pv_counters_destroy(&c->counts);
	pthread_mutex_destroy(&c->lock);
}

static const pv_strategy_methods composite_methods = {
	.version = PV_STRATEGY_METHODS_VERSION,
	.init = composite_init,
	.execute = composite_execute,
	.capabilities = composite_capabilities,
	.health = composite_health,
	.destroy = composite_destroy,
	.stats = composite_stats,
	/* It times itself: the sequential first_success answer has its
	 * child's latency, anything else the composite's own. */
	.flags = PV_STRATEGY_TIMED_BY_CHILD,
};

bool pv_strategy_is_composite(const pv_strategy *s)
{
	return s && s->methods == &composite_methods;
}

/* ---- construction and runtime changes ---------------------------------- */

static double child_weight(const composite *c, const double *weights, size_t i,
			   const pv_strategy *child)
{
	if (weights)
		return weights[i];
	json_t *w = c->cfg.weights ? json_object_get(c->cfg.weights, child->name) : NULL;
	return w ? json_number_value(w) : 1.0;
}

static int fill_roster(composite *c, pv_strategy *const *children, const double *weights,
		       size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (!children[i])
			return pv_error_set(PV_EINVAL, "composite '%s': child %zu is NULL",
					    c->base.name, i);
		double w = child_weight(c, weights, i, children[i]);
		if (!pv_composite_valid_weight(w))
			return pv_error_set(PV_EINVAL,
					    "composite '%s': child '%s': weight must be a finite "
					    "number > 0, got %g",
					    c->base.name, children[i]->name, w);
		if (roster_find(c->roster, children[i]->name) >= 0)
			return pv_error_set(PV_EEXISTS, "composite '%s': child name '%s' used twice",
					    c->base.name, children[i]->name);
		if (!(c->roster->m[i] = member_new(children[i], w)))
			return pv_error_set(PV_ENOMEM, "out of memory");
		c->roster->n = i + 1;
	}
	return 0;
}

int pv_composite_new(pv_strategy **out, const char *name, pv_strategy *const *children,
		     const double *weights, size_t n, const pv_composite_config *cfg,
		     const pv_clock *clock)
{
	*out = NULL;
	pv_composite_config defaults;
	pv_composite_config_default(&defaults);
	if (!cfg)
		cfg = &defaults;
	int rc = pv_composite_config_check(cfg);
	if (rc < 0)
		return rc;
	composite *c = pv_strategy_alloc(sizeof *c, &composite_methods, name, PV_COMPOSITE_TYPE);
	if (!c)
		return pv_error_last_code();
	pthread_mutex_init(&c->lock, NULL);
	c->name_len = strlen(c->base.name);
	c->clock = clock;
	pv_composite_config_default(&c->cfg);
	if ((rc = pv_composite_config_copy(&c->cfg, cfg)) == 0) {
		c->timeout_ns = (uint64_t)(c->cfg.timeout_seconds * 1e9);
		c->sequential_first = c->cfg.mode == PV_COMPOSITE_SEQUENTIAL &&
				      may_stop_early(&c->cfg) && c->cfg.min_success_count == 1;
	}
	if (rc == 0 && (rc = pv_counters_init(&c->counts)) == 0 &&
	    (rc = pv_pool_new(&c->pool, cfg->max_concurrent_operations)) == 0) {
		c->roster = roster_new(n);
		rc = c->roster ? fill_roster(c, children, weights, n)
			       : pv_error_set(PV_ENOMEM, "out of memory");
	}
	if (rc < 0) {
		if (!c->roster)
			c->roster = roster_new(0); /* destroy expects one */
		pv_strategy_unref(&c->base);
		return rc;
	}
	*out = &c->base;
	return 0;
}

/* True when `target` is `s` or nested anywhere below it (a cycle guard). */
static bool contains(pv_strategy *s, const pv_strategy *target, int depth)
{
	if (s == target)
		return true;
	if (!pv_strategy_is_composite(s) || depth > 64)
		return depth > 64;
	croster *r = roster_get(as_composite(s));
	bool found = false;
	for (size_t i = 0; i < r->n && !found; i++)
		found = contains(r->m[i]->s, target, depth + 1);
	pv_croster_unref(r);
	return found;
}

/* Publishes `next` (lock held) and returns the old roster to unref, its
 * block kept on the retired list until the composite goes. */
static croster *publish(composite *c, croster *next)
{
	croster *old = atomic_exchange_explicit(&c->roster, next, memory_order_seq_cst);
	old->retired = c->retired;
	c->retired = old;
	return old;
}

int pv_composite_add(pv_strategy *s, pv_strategy *child, double weight)
{
	if (!pv_strategy_is_composite(s) || !child)
		return pv_error_set(PV_EINVAL, "pv_composite_add: not a composite or NULL child");
	if (!pv_composite_valid_weight(weight))
		return pv_error_set(PV_EINVAL, "composite '%s': weight of '%s' must be > 0, got %g",
				    s->name, child->name, weight);
	if (contains(child, s, 0))
		return pv_error_set(PV_EINVAL, "composite '%s': adding '%s' would make a cycle",
				    s->name, child->name);
	if (pv_strategy_is_initialized(s))
		pv_strategy_initialize(child); /* a failure shows as NOT_INITIALIZED per call */
	composite *c = as_composite(s);
	cmember *m = member_new(child, weight);
	if (!m)
		return pv_error_set(PV_ENOMEM, "out of memory");
	pthread_mutex_lock(&c->lock);
	croster *cur = c->roster, *next = NULL;
	int rc = 0;
	if (roster_find(cur, child->name) >= 0)
		rc = pv_error_set(PV_EEXISTS, "composite '%s' already has a child named '%s'",
				  s->name, child->name);
	else if (!(next = roster_new(cur->n + 1)))
		rc = pv_error_set(PV_ENOMEM, "out of memory");
	if (rc == 0) {
		for (size_t i = 0; i < cur->n; i++)
			next->m[i] = pv_cmember_ref(cur->m[i]);
		next->m[cur->n] = m;
		next->n = cur->n + 1;
		cur = publish(c, next);
	}
	pthread_mutex_unlock(&c->lock);
	if (rc < 0) {
		pv_cmember_unref(m);
		return rc;
	}
	pv_croster_unref(cur);
	return 0;
}

int pv_composite_remove(pv_strategy *s, const char *name)
{
	if (!pv_strategy_is_composite(s) || !name)
		return pv_error_set(PV_EINVAL, "pv_composite_remove: not a composite or NULL name");
	composite *c = as_composite(s);
	pthread_mutex_lock(&c->lock);
	croster *cur = c->roster, *next = NULL;
	long at = roster_find(cur, name);
	int rc = 0;
	if (at < 0)
		rc = pv_error_set(PV_ENOTFOUND, "composite '%s' has no child named '%s'", s->name,
				  name);
	else if (!(next = roster_new(cur->n - 1)))
		rc = pv_error_set(PV_ENOMEM, "out of memory");
	if (rc == 0) {
		for (size_t i = 0; i < cur->n; i++)
			if ((long)i != at)
				next->m[next->n++] = pv_cmember_ref(cur->m[i]);
		cur = publish(c, next);
	}
	pthread_mutex_unlock(&c->lock);
	if (rc == 0)
		pv_croster_unref(cur);
	return rc;
}

int pv_composite_set_weight(pv_strategy *s, const char *name, double weight)
{
	if (!pv_strategy_is_composite(s) || !name)
		return pv_error_set(PV_EINVAL, "pv_composite_set_weight: not a composite or NULL name");
	if (!pv_composite_valid_weight(weight))
		return pv_error_set(PV_EINVAL, "composite '%s': weight of '%s' must be > 0, got %g",
				    s->name, name, weight);
	composite *c = as_composite(s);
	pthread_mutex_lock(&c->lock);
	long at = roster_find(c->roster, name);
	if (at >= 0)
		atomic_store(&c->roster->m[at]->weight, weight);
	pthread_mutex_unlock(&c->lock);
	return at >= 0 ? 0
		       : pv_error_set(PV_ENOTFOUND, "composite '%s' has no child named '%s'",
				      s->name, name);
}

size_t pv_composite_count(pv_strategy *s)
{
	if (!pv_strategy_is_composite(s))
		return 0;
	croster *r = roster_get(as_composite(s));
	size_t n = r->n;
	pv_croster_unref(r);
	return n;
}

json_t *pv_composite_children(pv_strategy *s)
{
	if (!pv_strategy_is_composite(s))
		return NULL;
	croster *r = roster_get(as_composite(s));
	json_t *list = json_array();
	for (size_t i = 0; i < r->n; i++)
		json_array_append_new(list, json_pack("{s:s, s:f}", "name", r->m[i]->s->name,
						      "weight", atomic_load(&r->m[i]->weight)));
	pv_croster_unref(r);
	return list;
}
