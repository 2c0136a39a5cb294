/*
 * context.c - the registry of named strategies and the execution path.
 *
 * The hot path (pv_context_execute) is: read lock, choose an entry, one
 * atomic increment of its reference count, unlock; call the strategy with
 * no lock held; read the clock twice; record metrics with relaxed atomics;
 * drop the reference. An entry's reference count doubles as its in-flight
 * count, so keeping a strategy alive under an unregister costs nothing more.
 * See docs/kernel.md for the measured budget.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "core/coarse_clock.h"
#include "core/context_internal.h"
#include "provisio/error.h"
#include "provisio/log.h"

#define DEFAULT_HEALTH_INTERVAL_S 30.0

/* ---- entries -------------------------------------------------------------- */

static unsigned capability_score(const pv_capabilities *c)
{
	unsigned score = (unsigned)__builtin_popcount(c->operations);
	const char *key;
	json_t *v;
	if (c->features)
		json_object_foreach(c->features, key, v)
			if (!json_is_false(v) && !json_is_null(v))
				score++;
	return score;
}

static void entry_destroy(entry *e)
{
	pv_capabilities_clear(&e->caps);
	pv_health_clear(&e->health);
	pthread_mutex_destroy(&e->health_lock);
	pthread_cond_destroy(&e->health_checked);
	free(e->init_error);
	pv_strategy_unref(e->s);
	free(e);
}

static inline entry *entry_acquire(entry *e)
{
	atomic_fetch_add_explicit(&e->refs, 1, memory_order_relaxed);
	return e;
}

static inline void entry_release(entry *e)
{
	if (atomic_fetch_sub_explicit(&e->refs, 1, memory_order_acq_rel) == 1)
		entry_destroy(e);
}

static int entry_new(entry **out, pv_strategy *s, double weight)
{
	entry *e = calloc(1, sizeof *e);
	if (!e)
		return pv_error_set(PV_ENOMEM, "out of memory");
	int rc = pv_strategy_capabilities(s, &e->caps);
	if (rc < 0) {
		free(e);
		return rc;
	}
	e->s = pv_strategy_ref(s);
	atomic_init(&e->refs, 1);
	e->registered = true;
	e->selectable = true;
	e->weight = weight;
	e->capability_score = capability_score(&e->caps);
	atomic_init(&e->init_state, pv_strategy_is_initialized(s) ? INIT_OK : INIT_PENDING);
	atomic_init(&e->health_state, HEALTH_UNKNOWN);
	pthread_mutex_init(&e->health_lock, NULL);
	pthread_cond_init(&e->health_checked, NULL);
	pv_metrics_recorder_init(&e->metrics);
	*out = e;
	return 0;
}

/* Index of `name`, or -1 (lock held). */
static long find_index(const pv_context *ctx, const char *name)
{
	for (size_t i = 0; name && i < ctx->n; i++)
		if (strcmp(ctx->entries[i]->s->name, name) == 0)
			return (long)i;
	return -1;
}

/* Takes a reference on the named entry, or NULL. */
static entry *acquire_by_name(pv_context *ctx, const char *name)
{
	pthread_rwlock_rdlock(&ctx->lock);
	long i = find_index(ctx, name);
	entry *e = i >= 0 ? entry_acquire(ctx->entries[i]) : NULL;
	pthread_rwlock_unlock(&ctx->lock);
	return e;
}

/* References to every entry, for work done outside the lock. */
static entry **acquire_all(pv_context *ctx, size_t *n)
{
	pthread_rwlock_rdlock(&ctx->lock);
	entry **all = calloc(ctx->n ? ctx->n : 1, sizeof *all);
	*n = 0;
	if (all)
		for (size_t i = 0; i < ctx->n; i++)
			all[(*n)++] = entry_acquire(ctx->entries[i]);
	pthread_rwlock_unlock(&ctx->lock);
	return all;
}

static void release_all(entry **all, size_t n)
{
	for (size_t i = 0; i < n; i++)
		entry_release(all[i]);
	free(all);
}

/* The next pick that reads health learns it again first: what a pick may
 * choose, or what is known of it, changed. */
static void forget_known_health(pv_context *ctx)
{
	pthread_mutex_lock(&ctx->known_lock);
	ctx->known_epoch++;
	atomic_store_explicit(&ctx->health_known_until, 0, memory_order_release);
	pthread_mutex_unlock(&ctx->known_lock);
}

/* Whether picks read health: health_based and custom (its candidates carry
 * health) do, and so does require_healthy under any policy (lock held). */
static void note_health_readers(pv_context *ctx)
{
	bool reads = ctx->policy != PV_POLICY_NONE &&
		     (ctx->policy == PV_POLICY_HEALTH_BASED || ctx->policy == PV_POLICY_CUSTOM ||
		      (ctx->crit.set && ctx->crit.require_healthy));
	atomic_store(&ctx->picks_read_health, reads);
}

/* The first entry whose initialization did not fail (write lock held). */
static entry *first_usable(const pv_context *ctx)
{
	for (size_t i = 0; i < ctx->n; i++)
		if (atomic_load(&ctx->entries[i]->init_state) != INIT_FAILED)
			return ctx->entries[i];
	return NULL;
}

/* ---- life cycle -------------------------------------------------------------- */

int pv_context_new(pv_context **out, const pv_context_options *opts)
{
	*out = NULL;
	double interval = opts && opts->health_interval_seconds > 0 ? opts->health_interval_seconds
								     : DEFAULT_HEALTH_INTERVAL_S;
	if (opts && opts->health_interval_seconds < 0)
		return pv_error_set(PV_EINVAL, "context: health_interval_seconds must be >= 0 (0 = 30)");
	pv_context *ctx = calloc(1, sizeof *ctx);
	if (!ctx)
		return pv_error_set(PV_ENOMEM, "out of memory");
	pthread_rwlock_init(&ctx->lock, NULL);
	pthread_mutex_init(&ctx->monitor_lock, NULL);
	pthread_mutex_init(&ctx->known_lock, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&ctx->monitor_cond, &ca);
	pthread_condattr_destroy(&ca);
	ctx->clock = opts ? opts->clock : NULL;
	ctx->health_interval_ns = (uint64_t)(interval * 1e9);
	ctx->seed = opts && opts->rng_seed ? opts->rng_seed : pv_now_ns();
	*out = ctx;
	return 0;
}

void pv_context_free(pv_context *ctx)
{
	if (!ctx)
		return;
	pv_context_stop_health_monitor(ctx);
	for (size_t i = 0; i < ctx->n; i++)
		entry_release(ctx->entries[i]);
	free(ctx->entries);
	free(ctx->wrr);
	pv_criteria_clear(&ctx->crit);
	pthread_rwlock_destroy(&ctx->lock);
	pthread_mutex_destroy(&ctx->monitor_lock);
	pthread_mutex_destroy(&ctx->known_lock);
	pthread_cond_destroy(&ctx->monitor_cond);
	free(ctx);
}

/* ---- registration ---------------------------------------------------------------- */

static int check_weight(const char *name, double weight)
{
	if (!(weight > 0) || weight > 1e9)
		return pv_error_set(PV_EINVAL, "strategy '%s': weight must be a number > 0 and <= 1e9",
				    name);
	return 0;
}

int pv_context_register_weighted(pv_context *ctx, pv_strategy *s, double weight)
{
	if (!ctx || !s)
		return pv_error_set(PV_EINVAL, "register: NULL context or strategy");
	int rc = check_weight(s->name, weight);
	entry *e = NULL, *old = NULL;
	if (rc < 0 || (rc = entry_new(&e, s, weight)) < 0)
		return rc;

	pthread_rwlock_wrlock(&ctx->lock);
	long i = find_index(ctx, s->name);
	if (i >= 0) {
		old = ctx->entries[i];
		old->registered = false;
		ctx->entries[i] = e;
		if (ctx->current == old)
			ctx->current = e;
	} else {
		if (ctx->n == ctx->cap) {
			size_t cap = ctx->cap ? ctx->cap * 2 : 8;
			entry **grown = realloc(ctx->entries, cap * sizeof *grown);
			if (!grown) {
				pthread_rwlock_unlock(&ctx->lock);
				entry_release(e);
				return pv_error_set(PV_ENOMEM, "out of memory");
			}
			ctx->entries = grown;
			ctx->cap = cap;
		}
		ctx->entries[ctx->n++] = e;
		if (!ctx->current)
			ctx->current = e;
	}
	rc = pv_select_rebuild_schedule(ctx);
	pthread_rwlock_unlock(&ctx->lock);
	forget_known_health(ctx);

	if (old) {
		entry_release(old);
		pv_log(PV_LOG_WARN, "strategy '%s' replaced by a new registration", s->name);
		pv_error_set(1, "strategy '%s' was already registered: replaced", s->name);
		return rc < 0 ? rc : 1;
	}
	return rc;
}

int pv_context_register(pv_context *ctx, pv_strategy *s)
{
	return pv_context_register_weighted(ctx, s, 1.0);
}

int pv_context_unregister(pv_context *ctx, const char *name)
{
	pthread_rwlock_wrlock(&ctx->lock);
	long i = find_index(ctx, name);
	if (i < 0) {
		pthread_rwlock_unlock(&ctx->lock);
		return pv_error_set(PV_ENOTFOUND, "strategy '%s' is not registered", name ? name : "(null)");
	}
	entry *e = ctx->entries[i];
	e->registered = false;
	memmove(ctx->entries + i, ctx->entries + i + 1, (ctx->n - (size_t)i - 1) * sizeof *ctx->entries);
	ctx->n--;
	if (ctx->current == e)
		ctx->current = first_usable(ctx);
	int rc = pv_select_rebuild_schedule(ctx);
	pthread_rwlock_unlock(&ctx->lock);
	entry_release(e); /* destroyed now, or when its last call returns */
	return rc;
}

int pv_context_set_selectable(pv_context *ctx, const char *name, bool selectable)
{
	int rc = 0;
	pthread_rwlock_wrlock(&ctx->lock);
	long i = find_index(ctx, name);
	if (i >= 0)
		ctx->entries[i]->selectable = selectable;
	else
		rc = pv_error_set(PV_ENOTFOUND, "strategy '%s' is not registered", name ? name : "(null)");
	pthread_rwlock_unlock(&ctx->lock);
	forget_known_health(ctx);
	return rc;
}

void pv_context_set_metrics_enabled(pv_context *ctx, bool enabled)
{
	atomic_store(&ctx->metrics_off, !enabled);
}

int pv_context_set_weight(pv_context *ctx, const char *name, double weight)
{
	int rc = check_weight(name ? name : "(null)", weight);
	if (rc < 0)
		return rc;
	pthread_rwlock_wrlock(&ctx->lock);
	long i = find_index(ctx, name);
	if (i >= 0) {
		ctx->entries[i]->weight = weight;
		rc = pv_select_rebuild_schedule(ctx);
	} else {
		rc = pv_error_set(PV_ENOTFOUND, "strategy '%s' is not registered", name ? name : "(null)");
	}
	pthread_rwlock_unlock(&ctx->lock);
	return rc;
}

/* ---- initialization and switching ---------------------------------------------- */

static void initialize_entry(pv_context *ctx, entry *e, json_t *report)
{
	int state = atomic_load(&e->init_state);
	char *err = NULL;
	if (state != INIT_OK) {
		pv_error_clear();
		int rc = pv_strategy_initialize(e->s);
		state = rc == 0 ? INIT_OK : INIT_FAILED;
		if (rc < 0)
			err = strdup(pv_error_last()[0] ? pv_error_last() : pv_error_name(rc));
	}
	/* Capabilities may depend on what init found (regions, quotas). */
	pv_capabilities caps;
	bool have_caps = state == INIT_OK && pv_strategy_capabilities(e->s, &caps) == 0;

	pthread_rwlock_wrlock(&ctx->lock);
	if (have_caps) {
		pv_capabilities old = e->caps;
		e->caps = caps;
		e->capability_score = capability_score(&caps);
		caps = old;
	}
	free(e->init_error);
	e->init_error = err;
	atomic_store(&e->init_state, state);
	pthread_rwlock_unlock(&ctx->lock);
	if (have_caps)
		pv_capabilities_clear(&caps);

	if (state == INIT_FAILED)
		pv_log(PV_LOG_WARN, "strategy '%s' failed to initialize: %s", e->s->name, err ? err : "");
	if (report)
		json_object_set_new(report, e->s->name,
				    json_pack("{s:b, s:s?}", "initialized", state == INIT_OK, "error", err));
}

int pv_context_initialize(pv_context *ctx, json_t **report)
{
	size_t n;
	entry **all = acquire_all(ctx, &n);
	if (!all)
		return pv_error_set(PV_ENOMEM, "out of memory");
	json_t *rep = json_object();
	for (size_t i = 0; i < n; i++)
		initialize_entry(ctx, all[i], rep);

	size_t ok = 0;
	pthread_rwlock_wrlock(&ctx->lock);
	for (size_t i = 0; i < ctx->n; i++)
		ok += atomic_load(&ctx->entries[i]->init_state) == INIT_OK;
	if (ctx->current && atomic_load(&ctx->current->init_state) == INIT_FAILED) {
		entry *was = ctx->current;
		ctx->current = first_usable(ctx);
		pv_log(PV_LOG_WARN, "current strategy '%s' failed to initialize; now '%s'", was->s->name,
		       ctx->current ? ctx->current->s->name : "(none)");
	} else if (!ctx->current) {
		/* none was left current (an earlier initialize failed them all,
		 * then a working one was registered under an old name) */
		ctx->current = first_usable(ctx);
	}
	pthread_rwlock_unlock(&ctx->lock);
	release_all(all, n);
	forget_known_health(ctx);

	int rc = 0;
	if (ok == 0) {
		char *text = json_dumps(rep, JSON_COMPACT | JSON_SORT_KEYS);
		rc = pv_error_set(PV_ESTATE, n ? "no strategy initialized: %s" : "no strategy registered%s",
				  n ? (text ? text : "") : "");
		free(text);
	}
	if (report)
		*report = rep;
	else
		json_decref(rep);
	return rc;
}

int pv_context_set_strategy(pv_context *ctx, const char *name)
{
	int rc = 0;
	pthread_rwlock_wrlock(&ctx->lock);
	long i = find_index(ctx, name);
	if (i < 0)
		rc = pv_error_set(PV_ENOTFOUND, "strategy '%s' is not registered", name ? name : "(null)");
	else if (atomic_load(&ctx->entries[i]->init_state) == INIT_FAILED)
		rc = pv_error_set(PV_ESTATE, "strategy '%s' failed to initialize: %s", name,
				  ctx->entries[i]->init_error ? ctx->entries[i]->init_error : "");
	else
		ctx->current = ctx->entries[i];
	pthread_rwlock_unlock(&ctx->lock);
	return rc;
}

int pv_context_current(pv_context *ctx, char *buf, size_t size)
{
	int rc = 0;
	pthread_rwlock_rdlock(&ctx->lock);
	const char *name = ctx->current ? ctx->current->s->name : "";
	if (size)
		snprintf(buf, size, "%s", name);
	if (!ctx->current)
		rc = pv_error_set(PV_ENOTFOUND, "no strategy is current");
	pthread_rwlock_unlock(&ctx->lock);
	return rc;
}

json_t *pv_context_names(pv_context *ctx)
{
	json_t *names = json_array();
	pthread_rwlock_rdlock(&ctx->lock);
	for (size_t i = 0; i < ctx->n; i++)
		json_array_append_new(names, json_string(ctx->entries[i]->s->name));
	pthread_rwlock_unlock(&ctx->lock);
	return names;
}

size_t pv_context_count(pv_context *ctx)
{
	pthread_rwlock_rdlock(&ctx->lock);
	size_t n = ctx->n;
	pthread_rwlock_unlock(&ctx->lock);
	return n;
}

/* ---- policy and criteria --------------------------------------------------------- */

int pv_context_set_policy(pv_context *ctx, pv_policy policy)
{
	if ((unsigned)policy >= PV_POLICY_COUNT)
		return pv_error_set(PV_EINVAL, "unknown selection policy %d", (int)policy);
	int rc = 0;
	pthread_rwlock_wrlock(&ctx->lock);
	if (policy == PV_POLICY_CUSTOM && !ctx->custom)
		rc = pv_error_set(PV_EINVAL, "selection policy custom needs a callback: register it with "
					     "pv_context_set_custom_policy");
	else
		ctx->policy = policy;
	note_health_readers(ctx);
	pthread_rwlock_unlock(&ctx->lock);
	forget_known_health(ctx);
	return rc;
}

pv_policy pv_context_policy(pv_context *ctx)
{
	pthread_rwlock_rdlock(&ctx->lock);
	pv_policy p = ctx->policy;
	pthread_rwlock_unlock(&ctx->lock);
	return p;
}

int pv_context_set_criteria(pv_context *ctx, const pv_criteria *c)
{
	criteria copy, old;
	int rc = pv_criteria_copy(&copy, c);
	if (rc < 0)
		return rc;
	pthread_rwlock_wrlock(&ctx->lock);
	old = ctx->crit;
	ctx->crit = copy;
	note_health_readers(ctx);
	pthread_rwlock_unlock(&ctx->lock);
	pv_criteria_clear(&old);
	forget_known_health(ctx);
	return 0;
}

int pv_context_set_custom_policy(pv_context *ctx, pv_select_fn fn, void *user)
{
	int rc = 0;
	pthread_rwlock_wrlock(&ctx->lock);
	if (!fn && ctx->policy == PV_POLICY_CUSTOM) {
		rc = pv_error_set(PV_EINVAL, "the custom selection policy is in use: set another policy "
					     "before removing its callback");
	} else {
		ctx->custom = fn;
		ctx->custom_user = user;
		if (fn)
			ctx->policy = PV_POLICY_CUSTOM;
	}
	note_health_readers(ctx);
	pthread_rwlock_unlock(&ctx->lock);
	forget_known_health(ctx);
	return rc;
}

/* ---- execution ---------------------------------------------------------------------- */

static inline uint64_t ctx_now(const pv_context *ctx)
{
	return ctx->clock ? ctx->clock->now_ns(ctx->clock->user) : pv_now_ns();
}

static void learn_health(pv_context *ctx, uint64_t now);

/* A pick that reads health needs it known: the first pick after what is
 * known expired learns it (docs/kernel.md, "Health"); the others pay one
 * relaxed load, and picks that do not read health nothing more. */
static inline void health_before_pick(pv_context *ctx)
{
	if (__builtin_expect(!atomic_load_explicit(&ctx->picks_read_health, memory_order_relaxed), 1))
		return;
	uint64_t now = pv_clock_now_coarse(ctx->clock); /* milliseconds do not matter here */
	if (now >= atomic_load_explicit(&ctx->health_known_until, memory_order_acquire))
		learn_health(ctx, ctx_now(ctx));
}

/* A strategy not initialized (`config validate` builds without init, which
 * may fetch credentials) still checks a template's fields when it says it
 * can do so without a call (feature template_field_checks). */
static bool checks_fields_uninitialized(const entry *e, const pv_operation *op)
{
	static const char feature[] = "template_field_checks";
	return op->type == PV_OP_VALIDATE_TEMPLATE && json_is_true(json_object_get(op->params, "check_only")) &&
	       json_is_true(e->caps.features ? json_object_get(e->caps.features, feature) : NULL);
}

/* Runs `op` on `e` (a reference held), records its metrics. */
static void run_entry(pv_context *ctx, entry *e, const pv_operation *op, pv_result *out)
{
	pv_strategy *s = e->s;
	bool timed = !atomic_load_explicit(&ctx->metrics_off, memory_order_relaxed);
	uint64_t start = timed || op->deadline_ns ? ctx_now(ctx) : 0;
	if (__builtin_expect(atomic_load_explicit(&e->init_state, memory_order_acquire) != INIT_OK, 0) &&
	    !checks_fields_uninitialized(e, op))
		pv_result_fail(out, PV_ERR_NOT_INITIALIZED, PV_CLASS_PERMANENT,
			       "strategy '%s' is not initialized", s->name);
	else if (__builtin_expect(!(e->caps.operations & PV_OP_BIT(op->type)), 0))
		pv_result_fail(out, PV_ERR_OPERATION_NOT_SUPPORTED, PV_CLASS_PERMANENT,
			       "strategy '%s' does not support %s", s->name, pv_op_name(op->type));
	else if (op->deadline_ns && start >= op->deadline_ns)
		pv_result_fail(out, PV_ERR_TIMEOUT, PV_CLASS_TRANSIENT,
			       "deadline passed before strategy '%s' was called", s->name);
	else if (s->methods->execute(s, op, out) < 0)
		pv_result_fail(out, PV_ERR_INTERNAL, PV_CLASS_INTERNAL,
			       "strategy '%s' failed internally: %s", s->name, pv_error_last());
	if (!out->provider[0])
		pv_result_set_provider(out, s->name);
	if (!out->attempts)
		out->attempts = 1;
	if (!timed)
		return;
	uint64_t end = ctx_now(ctx);
	out->latency_ns = end - start;
	pv_metrics_record_op(&e->metrics, op->type, out, end - start, ctx->clock ? pv_now_ns() : end);
}

static bool op_valid(const pv_operation *op, pv_result *out)
{
	if (op && (unsigned)op->type < PV_OP_COUNT)
		return true;
	pv_result_fail(out, PV_ERR_INVALID_PARAMETERS, PV_CLASS_PERMANENT,
		       "operation is NULL or has an unknown type");
	return false;
}

void pv_context_execute(pv_context *ctx, const pv_operation *op, pv_result *out)
{
	pv_result_init(out);
	if (!op_valid(op, out))
		return;
	health_before_pick(ctx);
	pthread_rwlock_rdlock(&ctx->lock);
	entry *e = ctx->policy == PV_POLICY_NONE ? ctx->current : pv_select_entry(ctx, op);
	if (e)
		entry_acquire(e);
	size_t n = ctx->n;
	pthread_rwlock_unlock(&ctx->lock);
	if (!e) {
		if (n)
			pv_result_fail(out, PV_ERR_NO_STRATEGY_AVAILABLE, PV_CLASS_TRANSIENT,
				       "none of the %zu strategies can serve %s now", n,
				       pv_op_name(op->type));
		else
			pv_result_fail(out, PV_ERR_NO_STRATEGY_AVAILABLE, PV_CLASS_TRANSIENT,
				       "no strategy is registered to serve %s", pv_op_name(op->type));
		return;
	}
	run_entry(ctx, e, op, out);
	entry_release(e);
}

void pv_context_execute_on(pv_context *ctx, const char *name, const pv_operation *op, pv_result *out)
{
	pv_result_init(out);
	if (!op_valid(op, out))
		return;
	entry *e = acquire_by_name(ctx, name);
	if (!e) {
		pv_result_fail(out, PV_ERR_STRATEGY_NOT_FOUND, PV_CLASS_PERMANENT,
			       "strategy '%s' is not registered", name ? name : "(null)");
		return;
	}
	run_entry(ctx, e, op, out);
	entry_release(e);
}

int pv_context_select(pv_context *ctx, const pv_operation *op, char *buf, size_t size)
{
	health_before_pick(ctx);
	pthread_rwlock_rdlock(&ctx->lock);
	entry *e = ctx->policy == PV_POLICY_NONE ? ctx->current : pv_select_entry(ctx, op);
	if (e && size)
		snprintf(buf, size, "%s", e->s->name);
	pthread_rwlock_unlock(&ctx->lock);
	return e ? 0 : pv_error_set(PV_ENOTFOUND, "no strategy can serve %s now", pv_op_name(op->type));
}

/* ---- metrics and capabilities --------------------------------------------------------- */

pv_strategy *pv_context_strategy(pv_context *ctx, const char *name)
{
	pthread_rwlock_rdlock(&ctx->lock);
	long i = find_index(ctx, name);
	pv_strategy *s = i >= 0 ? pv_strategy_ref(ctx->entries[i]->s) : NULL;
	pthread_rwlock_unlock(&ctx->lock);
	if (!s)
		pv_error_set(PV_ENOTFOUND, "strategy '%s' is not registered", name ? name : "(null)");
	return s;
}

static void entry_metrics(entry *e, pv_metrics *out)
{
	pv_metrics_snapshot(&e->metrics, out);
	/* The reference count is the in-flight count plus the registry's one
	 * (the caller holds one more while it reads). */
	int64_t refs = (int64_t)atomic_load(&e->refs) - 2;
	out->in_flight = refs > 0 ? (uint64_t)refs : 0;
}

int pv_context_metrics(pv_context *ctx, const char *name, pv_metrics *out)
{
	entry *e = acquire_by_name(ctx, name);
	if (!e)
		return pv_error_set(PV_ENOTFOUND, "strategy '%s' is not registered", name ? name : "(null)");
	entry_metrics(e, out);
	entry_release(e);
	return 0;
}

json_t *pv_context_metrics_json(pv_context *ctx)
{
	size_t n;
	entry **all = acquire_all(ctx, &n);
	json_t *j = json_object();
	for (size_t i = 0; all && i < n; i++) {
		pv_metrics m;
		entry_metrics(all[i], &m);
		json_object_set_new(j, all[i]->s->name, pv_metrics_to_json(&m));
	}
	if (all)
		release_all(all, n);
	return j;
}

int pv_context_capabilities(pv_context *ctx, const char *name, pv_capabilities *out)
{
	memset(out, 0, sizeof *out);
	int rc = 0;
	pthread_rwlock_rdlock(&ctx->lock);
	long i = find_index(ctx, name);
	if (i < 0) {
		rc = pv_error_set(PV_ENOTFOUND, "strategy '%s' is not registered", name ? name : "(null)");
	} else {
		const pv_capabilities *c = &ctx->entries[i]->caps;
		*out = *c;
		out->features = c->features ? json_deep_copy(c->features) : NULL;
		out->limitations = c->limitations ? json_deep_copy(c->limitations) : NULL;
	}
	pthread_rwlock_unlock(&ctx->lock);
	return rc;
}

/* ---- health ----------------------------------------------------------------------------- */

/* Checks `e` now with no context lock held and caches the answer. Only one
 * thread checks a strategy at a time; others get the cached answer, or
 * wait for the check in flight when there is none yet. */
static void refresh_entry(pv_context *ctx, entry *e, pv_health *copy_out)
{
	pthread_mutex_lock(&e->health_lock);
	if (e->health_refreshing) {
		while (e->health_refreshing && !e->health_cached)
			pthread_cond_wait(&e->health_checked, &e->health_lock);
		if (copy_out)
			pv_health_copy(copy_out, &e->health);
		pthread_mutex_unlock(&e->health_lock);
		return;
	}
	e->health_refreshing = true;
	pthread_mutex_unlock(&e->health_lock);

	pv_health h;
	uint64_t t0 = ctx_now(ctx);
	pv_error_clear();
	int rc = pv_strategy_health(e->s, &h);
	uint64_t t1 = ctx_now(ctx);
	if (rc < 0) {
		pv_health_clear(&h);
		pv_health_set(&h, false, "health check of '%s' failed: %s", e->s->name, pv_error_last());
	}
	if (!h.checked_at_ms)
		h.checked_at_ms = pv_wall_ms();
	if (!h.response_ns)
		h.response_ns = t1 - t0;
	pv_metrics_record_health(&e->metrics, t1 - t0);

	pthread_mutex_lock(&e->health_lock);
	pv_health_clear(&e->health);
	e->health = h;
	e->health_expires_ns = t1 + ctx->health_interval_ns;
	e->health_cached = true;
	e->health_refreshing = false;
	atomic_store(&e->health_state, h.healthy ? HEALTH_UP : HEALTH_DOWN);
	if (copy_out)
		pv_health_copy(copy_out, &e->health);
	pthread_cond_broadcast(&e->health_checked);
	pthread_mutex_unlock(&e->health_lock);
}

/* health_lock held. */
static bool health_fresh(pv_context *ctx, entry *e)
{
	return e->health_cached && ctx_now(ctx) < e->health_expires_ns;
}

/* References to the entries a pick may choose: selectable and initialized. */
static entry **acquire_pickable(pv_context *ctx, size_t *n)
{
	pthread_rwlock_rdlock(&ctx->lock);
	entry **all = calloc(ctx->n ? ctx->n : 1, sizeof *all);
	*n = 0;
	for (size_t i = 0; all && i < ctx->n; i++)
		if (ctx->entries[i]->selectable &&
		    atomic_load(&ctx->entries[i]->init_state) == INIT_OK)
			all[(*n)++] = entry_acquire(ctx->entries[i]);
	pthread_rwlock_unlock(&ctx->lock);
	return all;
}

static bool monitor_running(pv_context *ctx)
{
	pthread_mutex_lock(&ctx->monitor_lock);
	bool on = ctx->monitor_running;
	pthread_mutex_unlock(&ctx->monitor_lock);
	return on;
}

/*
 * Makes the health of every strategy a pick may choose known and younger
 * than the interval: what this process cached, else what another process
 * recorded (pv_context_put_health), else a check made now, once per
 * strategy and interval whatever the number of picks. With the monitor
 * running only a strategy never checked is checked here: the monitor keeps
 * the others fresh, and no pick waits for a check it would make anyway.
 */
static void learn_health(pv_context *ctx, uint64_t now)
{
	pthread_mutex_lock(&ctx->known_lock);
	uint64_t epoch = ctx->known_epoch;
	pthread_mutex_unlock(&ctx->known_lock);
	bool monitor = monitor_running(ctx);
	size_t n;
	entry **all = acquire_pickable(ctx, &n);
	if (!all)
		return;
	uint64_t until = UINT64_MAX;
	for (size_t i = 0; i < n; i++) {
		entry *e = all[i];
		pthread_mutex_lock(&e->health_lock);
		bool check = !e->health_cached || (!monitor && !health_fresh(ctx, e));
		pthread_mutex_unlock(&e->health_lock);
		if (check)
			refresh_entry(ctx, e, NULL);
		pthread_mutex_lock(&e->health_lock);
		if (e->health_expires_ns < until)
			until = e->health_expires_ns;
		pthread_mutex_unlock(&e->health_lock);
	}
	release_all(all, n);
	if (monitor)
		until = now + ctx->health_interval_ns;
	pthread_mutex_lock(&ctx->known_lock);
	if (ctx->known_epoch == epoch) /* nothing changed meanwhile */
		atomic_store_explicit(&ctx->health_known_until, until, memory_order_release);
	pthread_mutex_unlock(&ctx->known_lock);
}

/* Takes a reference on the named entry, or on the current one for NULL. */
static entry *acquire_named_or_current(pv_context *ctx, const char *name)
{
	if (name)
		return acquire_by_name(ctx, name);
	pthread_rwlock_rdlock(&ctx->lock);
	entry *e = ctx->current ? entry_acquire(ctx->current) : NULL;
	pthread_rwlock_unlock(&ctx->lock);
	return e;
}

static int not_found(const char *name)
{
	return name ? pv_error_set(PV_ENOTFOUND, "strategy '%s' is not registered", name)
		    : pv_error_set(PV_ENOTFOUND, "no strategy is current");
}

int pv_context_check_health(pv_context *ctx, const char *name, pv_health *out)
{
	memset(out, 0, sizeof *out);
	entry *e = acquire_named_or_current(ctx, name);
	if (!e)
		return not_found(name);
	pthread_mutex_lock(&e->health_lock);
	bool fresh = health_fresh(ctx, e);
	if (fresh)
		pv_health_copy(out, &e->health);
	pthread_mutex_unlock(&e->health_lock);
	if (!fresh)
		refresh_entry(ctx, e, out);
	entry_release(e);
	return 0;
}

int pv_context_put_health(pv_context *ctx, const char *name, const pv_health *h)
{
	if (!h || h->checked_at_ms <= 0)
		return pv_error_set(PV_EINVAL, "health of '%s': checked_at_ms must say when it was checked",
				    name ? name : "(null)");
	entry *e = acquire_by_name(ctx, name);
	if (!e)
		return not_found(name ? name : "(null)");
	int64_t age_ms = pv_wall_ms() - h->checked_at_ms;
	uint64_t age_ns = age_ms > 0 ? (uint64_t)age_ms * PV_NS_PER_MS : 0;
	uint64_t now = ctx_now(ctx);
	int rc = 0;
	pthread_mutex_lock(&e->health_lock);
	if (!e->health_cached || e->health.checked_at_ms < h->checked_at_ms) {
		rc = pv_health_copy(&e->health, h);
		e->health_cached = rc == 0;
		/* it expires one interval after it was checked, wherever that was */
		e->health_expires_ns = age_ns < ctx->health_interval_ns
					       ? now + (ctx->health_interval_ns - age_ns) : 0;
		if (rc == 0)
			atomic_store(&e->health_state, h->healthy ? HEALTH_UP : HEALTH_DOWN);
	}
	pthread_mutex_unlock(&e->health_lock);
	entry_release(e);
	forget_known_health(ctx);
	return rc;
}

int pv_context_cached_health(pv_context *ctx, const char *name, pv_health *out)
{
	memset(out, 0, sizeof *out);
	entry *e = acquire_by_name(ctx, name);
	if (!e)
		return not_found(name ? name : "(null)");
	pthread_mutex_lock(&e->health_lock);
	int rc = e->health_cached ? pv_health_copy(out, &e->health)
				  : pv_error_set(PV_ENOTFOUND, "the health of '%s' is not known yet", name);
	pthread_mutex_unlock(&e->health_lock);
	entry_release(e);
	return rc;
}

bool pv_context_picks_read_health(pv_context *ctx)
{
	return atomic_load(&ctx->picks_read_health);
}

int pv_context_refresh_health(pv_context *ctx, bool force)
{
	size_t n;
	entry **all = acquire_all(ctx, &n);
	if (!all)
		return pv_error_set(PV_ENOMEM, "out of memory");
	int checked = 0;
	for (size_t i = 0; i < n; i++) {
		pthread_mutex_lock(&all[i]->health_lock);
		bool fresh = health_fresh(ctx, all[i]);
		pthread_mutex_unlock(&all[i]->health_lock);
		if (force || !fresh) {
			refresh_entry(ctx, all[i], NULL);
			checked++;
		}
	}
	release_all(all, n);
	return checked;
}

static void *health_monitor(void *arg)
{
	pv_context *ctx = arg;
	pthread_mutex_lock(&ctx->monitor_lock);
	while (!ctx->monitor_stop) {
		pthread_mutex_unlock(&ctx->monitor_lock);
		pv_context_refresh_health(ctx, false);
		pthread_mutex_lock(&ctx->monitor_lock);
		/* Wake twice an interval so nothing is older than 1.5 intervals. */
		struct timespec until;
		clock_gettime(CLOCK_MONOTONIC, &until);
		uint64_t ns = (uint64_t)until.tv_nsec + ctx->health_interval_ns / 2;
		until.tv_sec += (time_t)(ns / PV_NS_PER_S);
		until.tv_nsec = (long)(ns % PV_NS_PER_S);
		while (!ctx->monitor_stop &&
		       pthread_cond_timedwait(&ctx->monitor_cond, &ctx->monitor_lock, &until) != ETIMEDOUT)
			;
	}
	pthread_mutex_unlock(&ctx->monitor_lock);
	return NULL;
}

int pv_context_start_health_monitor(pv_context *ctx)
{
	int rc = 0;
	pthread_mutex_lock(&ctx->monitor_lock);
	if (!ctx->monitor_running) {
		ctx->monitor_stop = false;
		if (pthread_create(&ctx->monitor, NULL, health_monitor, ctx) != 0)
			rc = pv_error_set(PV_ERROR, "cannot start the health monitor thread");
		else
			ctx->monitor_running = true;
	}
	pthread_mutex_unlock(&ctx->monitor_lock);
	return rc;
}

void pv_context_stop_health_monitor(pv_context *ctx)
{
	pthread_mutex_lock(&ctx->monitor_lock);
	bool running = ctx->monitor_running;
	ctx->monitor_stop = true;
	ctx->monitor_running = false;
	pthread_cond_broadcast(&ctx->monitor_cond);
	pthread_mutex_unlock(&ctx->monitor_lock);
	if (running)
		pthread_join(ctx->monitor, NULL);
}

/* ---- JSON view ------------------------------------------------------------------------------ */

json_t *pv_context_to_json(pv_context *ctx)
{
	json_t *j = json_object(), *list = json_object();
	char current[PV_RESULT_NAME_MAX] = "";
	pthread_rwlock_rdlock(&ctx->lock);
	if (ctx->current)
		snprintf(current, sizeof current, "%s", ctx->current->s->name);
	json_object_set_new(j, "policy", json_string(pv_policy_name(ctx->policy)));
	for (size_t i = 0; i < ctx->n; i++) {
		entry *e = ctx->entries[i];
		int init = atomic_load(&e->init_state);
		json_object_set_new(list, e->s->name,
				    json_pack("{s:s, s:f, s:s, s:s?, s:o}", "type", e->s->type,
					      "weight", e->weight, "initialized",
					      init == INIT_OK ? "yes" : init == INIT_FAILED ? "failed" : "pending",
					      "init_error", e->init_error, "capabilities",
					      pv_capabilities_to_json(&e->caps)));
	}
	pthread_rwlock_unlock(&ctx->lock);
	json_object_set_new(j, "current", current[0] ? json_string(current) : json_null());

	size_t n;
	entry **all = acquire_all(ctx, &n);
	for (size_t i = 0; all && i < n; i++) {
		entry *e = all[i];
		json_t *item = json_object_get(list, e->s->name);
		if (!item)
			continue;
		pv_metrics m;
		entry_metrics(e, &m);
		json_object_set_new(item, "metrics", pv_metrics_to_json(&m));
		pthread_mutex_lock(&e->health_lock);
		json_object_set_new(item, "health", e->health_cached ? pv_health_to_json(&e->health) : json_null());
		pthread_mutex_unlock(&e->health_lock);
		json_t *stats = pv_strategy_stats(e->s);
		if (stats)
			json_object_set_new(item, "stats", stats);
	}
	if (all)
		release_all(all, n);
	json_object_set_new(j, "strategies", list);
	return j;
}
