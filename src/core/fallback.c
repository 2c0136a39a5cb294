/*
 * fallback.c - the fallback strategy (see include/provisio/fallback.h).
 *
 * One execute walks the wrapped strategies in order (primary first) and
 * returns the first success. What each mode adds is a gate before a child
 * runs (an open breaker or a cached "unhealthy" skips it without a call)
 * and, for the primary in retry_then_fallback, a retry loop. No lock is
 * held while a child runs: the breaker hands out permits, the health cache
 * is refreshed by one thread at a time with a flag, and the shared pieces
 * (backoff random numbers, the template cache) take a mutex only around
 * their own few instructions.
 *
 * The fast path (breaker closed, primary succeeds first time) allocates
 * nothing: the result already names the leaf provider and the attempts.
 * Metadata is added only when there is something to say: a fallback
 * answered, a retry happened, a breaker is not closed, or it all failed.
 *
 * When everything failed, the result never claims success for work that was
 * not done: health_check says degraded and unhealthy, get_available_templates
 * may serve the last good list marked stale, anything else is
 * ALL_STRATEGIES_FAILED with each strategy's error in the metadata.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/breaker.h"
#include "core/coarse_clock.h"
#include "core/retry.h"
#include "core/strategy_internal.h"
#include "util/counters.h"
#include "util/spare.h"
#include "provisio/error.h"
#include "provisio/fallback.h"

#define RELAXED memory_order_relaxed

typedef struct child {
	pv_strategy *s;
	uint32_t name;                /* offset of its name in fallback.names */
	pv_breaker breaker;           /* used in circuit_breaker mode */
	atomic_int health;            /* -1 unknown, 0 unhealthy, 1 healthy */
	_Atomic uint64_t health_at_ns;
	atomic_flag health_refreshing;
} child;

typedef struct fallback {
	pv_strategy base;
	pv_fallback_config cfg;
	const pv_clock *clock;
	size_t n; /* children[0] is the primary */
	child *children;
	char *names; /* "fallback\0primary\0backup\0...": what an fb_meta copies */
	size_t names_len;
	pv_retry_budget budget;
	uint64_t retry_base_ns, retry_cap_ns, health_interval_ns;

	pthread_mutex_t lock; /* rng and the template cache */
	pv_rng rng;
	json_t *templates;    /* last good get_available_templates data, or NULL */
	int64_t templates_at_ms;
	char templates_from[PV_RESULT_NAME_MAX];

	pv_counters counts; /* FB_* by thread: two threads calling one fallback do not collide */
} fallback;

/* A success bumps one counter, the primary's or a fallback's answers:
 * successes are their sum (one atomic add a call, not two). */
enum {
	FB_PRIMARY_ANSWERS, FB_FAILURES, FB_FALLBACK_ANSWERS, FB_RETRIES, FB_RETRIES_DENIED,
	FB_RETRIES_PAST_DEADLINE, FB_DEGRADED_ANSWERS, FB_UNHEALTHY_SKIPS,
	FB_COUNTERS
};
_Static_assert(FB_COUNTERS <= PV_COUNTERS_MAX, "a counter set holds PV_COUNTERS_MAX");

static const pv_strategy_methods fallback_methods;

static fallback *as_fb(pv_strategy *s) { return (fallback *)s; }

static inline void bump(fallback *f, unsigned counter) { pv_counters_add(&f->counts, counter, 1); }
static uint64_t count_of(const fallback *f, unsigned counter) { return pv_counters_get(&f->counts, counter); }

/* ---- one execute's bookkeeping ------------------------------------------ */

/* Why a wrapped strategy gave no answer. */
typedef enum miss_kind {
	MISS_FAILED,       /* it was called and failed */
	MISS_CIRCUIT_OPEN, /* skipped: its breaker is open */
	MISS_UNHEALTHY,    /* skipped: its cached health says no */
	MISS_DEADLINE,     /* skipped: the deadline passed first */
} miss_kind;

typedef struct miss {
	uint32_t name; /* of the strategy: offset in fb_meta.names */
	miss_kind kind;
	uint32_t attempts;
	bool is_answer; /* its failure became the answer: read it from there */
	pv_result res;  /* MISS_FAILED: the failure */
} miss;

/*
 * What one execute did, kept as facts and turned into the "fallback"
 * metadata only when somebody reads it (a deferred part of the result):
 * the answer from a fallback strategy is the path an open breaker makes
 * hot, and building ~25 small JSON values per call cost ten times the
 * calls themselves. It holds a copy of the names (one memcpy of the
 * fallback's name block), not a reference: a result may outlive the
 * fallback, and a reference is two atomic operations on a line every call
 * reads.
 */
typedef struct fb_meta {
	pv_result_later part;
	pv_fallback_mode mode;
	long answered;         /* index of the strategy that answered, or -1 */
	uint32_t answered_name;
	uint32_t attempts;
	unsigned retries;
	const char *retry_stopped;
	int circuit_state;     /* of the answering strategy's breaker, or -1 */
	size_t n_misses;
	const char *names;     /* the fallback's name at 0, its strategies' after */
	miss misses[];         /* room for f->n, then the names */
} fb_meta;

typedef struct run_state {
	fb_meta *meta;    /* NULL until something is worth telling */
	long last;        /* index in meta->misses of the last failure, or -1 */
	unsigned classes; /* bit per pv_error_class seen */
	uint32_t attempts;
	unsigned retries;
	uint64_t spent_ns; /* in calls and backoff: the latency of a failure */
	const char *retry_stopped; /* why the retries ended early, or NULL */
} run_state;

static void fb_meta_build(const pv_result_later *part, const pv_result *r, json_t *meta);

static void fb_meta_release(pv_result_later *part)
{
	fb_meta *m = (fb_meta *)part;
	for (size_t i = 0; i < m->n_misses; i++)
		if (m->misses[i].kind == MISS_FAILED)
			pv_result_clear(&m->misses[i].res);
	pv_spare_free(m);
}

/* The run's fb_meta, made on first use; NULL when out of memory. From the
 * thread's spare block: an open breaker makes one on every call. */
static fb_meta *meta_of(fallback *f, run_state *rs)
{
	size_t size = sizeof *rs->meta + f->n * sizeof rs->meta->misses[0];
	fb_meta *m = rs->meta;
	if (!m && (m = rs->meta = pv_spare_alloc(size + f->names_len))) {
		m->part = (pv_result_later){fb_meta_build, fb_meta_release, NULL};
		m->mode = f->cfg.mode;
		m->n_misses = 0;
		m->names = memcpy((char *)m + size, f->names, f->names_len);
	}
	return m;
}

static miss *add_miss(fallback *f, run_state *rs, size_t at, miss_kind kind, uint32_t attempts)
{
	fb_meta *m = meta_of(f, rs);
	if (!m)
		return NULL;
	miss *x = &m->misses[m->n_misses++];
	x->name = f->children[at].name;
	x->kind = kind;
	x->attempts = attempts;
	x->is_answer = false;
	if (kind == MISS_FAILED) /* a skip keeps no result */
		pv_result_init(&x->res);
	return x;
}

/* Records a strategy skipped without a call. */
static void skip(fallback *f, run_state *rs, size_t at, miss_kind kind)
{
	rs->classes |= 1u << PV_CLASS_TRANSIENT;
	add_miss(f, rs, at, kind, 0);
}

/* Records a child's failure, moved out of `res`, as the last one. */
static void note_failure(fallback *f, run_state *rs, size_t at, pv_result *res,
			 uint32_t attempts)
{
	rs->classes |= 1u << res->error_class;
	miss *x = add_miss(f, rs, at, MISS_FAILED, attempts);
	if (!x) {
		pv_result_clear(res);
		return;
	}
	pv_result_move(&x->res, res);
	rs->last = (long)(x - rs->meta->misses);
}

static void run_state_clear(run_state *rs)
{
	if (rs->meta)
		fb_meta_release(&rs->meta->part);
}

/* ---- gates --------------------------------------------------------------- */

static void refresh_health(fallback *f, child *c)
{
	pv_health h;
	int rc = pv_strategy_health(c->s, &h);
	atomic_store(&c->health, rc == 0 && h.healthy ? 1 : 0);
	atomic_store(&c->health_at_ns, pv_clock_now_coarse(f->clock));
	pv_health_clear(&h);
}

/* The cached health of `c`, re-checked once it is older than the interval.
 * One thread refreshes; the others use the old answer meanwhile. Unknown
 * counts as healthy: only a check that said no skips a strategy. */
static bool health_ok(fallback *f, child *c)
{
	uint64_t now = pv_clock_now_coarse(f->clock);
	int h = atomic_load(&c->health);
	if (h < 0 || now >= atomic_load(&c->health_at_ns) + f->health_interval_ns) {
		if (!atomic_flag_test_and_set(&c->health_refreshing)) {
			refresh_health(f, c);
			atomic_flag_clear(&c->health_refreshing);
			h = atomic_load(&c->health);
		}
	}
	return h != 0;
}

/* Whether to retry the primary after `res`, sleeping the backoff if so. */
static bool should_retry(fallback *f, const pv_operation *op, const pv_result *res, unsigned retry,
			 run_state *rs)
{
	if (!pv_error_class_retryable(res->error_class))
		return false;
	if (retry >= f->cfg.max_retries) {
		rs->retry_stopped = "max_retries";
		return false;
	}
	pthread_mutex_lock(&f->lock);
	uint64_t delay = pv_backoff(&f->rng, f->cfg.retry_jitter, f->retry_base_ns, f->retry_cap_ns, retry);
	pthread_mutex_unlock(&f->lock);
	uint64_t now = pv_clock_now(f->clock);
	if (op->deadline_ns && now + delay >= op->deadline_ns) {
		bump(f, FB_RETRIES_PAST_DEADLINE);
		rs->retry_stopped = "deadline";
		return false;
	}
	if (!pv_retry_budget_withdraw(&f->budget, now)) {
		bump(f, FB_RETRIES_DENIED);
		rs->retry_stopped = "retry_budget";
		return false;
	}
	pv_clock_sleep(f->clock, delay);
	rs->spent_ns += delay;
	bump(f, FB_RETRIES);
	rs->retries++;
	return true;
}

/* Calls `c` from `start` (0: none read yet); returns when it ended, or 0
 * when nothing read it: a wrapper that reports its leaf's latency is not
 * timed again unless a start is already paid for. */
static uint64_t call(fallback *f, child *c, const pv_operation *op, pv_result *out, uint64_t start)
{
	if (start || !(c->s->methods->flags & PV_STRATEGY_TIMED_BY_CHILD))
		return pv_strategy_execute_from(c->s, op, out, f->clock, start);
	pv_strategy_execute(c->s, op, out, f->clock);
	return 0;
}

/*
 * Runs child `i` (with retries when it is the primary of
 * retry_then_fallback) into `out`. true on success; on failure the error is
 * noted in `rs` and `out` is left cleared. `*now` is a time just read (0:
 * none yet) and becomes the time the last call ended: one clock read a
 * call, which the breaker's admission and record share (a read is a third
 * of a zero-latency call).
 */
static bool try_child(fallback *f, size_t i, const pv_operation *op, pv_result *out, run_state *rs,
		      uint64_t *now)
{
	child *c = &f->children[i];
	pv_breaker_permit permit = {PV_PERMIT_NORMAL, 0};
	bool breakers = f->cfg.mode == PV_FALLBACK_CIRCUIT_BREAKER;
	if (breakers) {
		permit = pv_breaker_admit_at(&c->breaker, f->clock, now);
		if (permit.kind == PV_PERMIT_REJECTED) { /* counted by the breaker */
			skip(f, rs, i, MISS_CIRCUIT_OPEN);
			return false;
		}
	} else if (f->cfg.mode == PV_FALLBACK_HEALTH_BASED && !health_ok(f, c)) {
		bump(f, FB_UNHEALTHY_SKIPS);
		skip(f, rs, i, MISS_UNHEALTHY);
		return false;
	}
	bool may_retry = f->cfg.mode == PV_FALLBACK_RETRY_THEN_FALLBACK && i == 0;
	if (may_retry)
		pv_retry_budget_deposit(&f->budget, pv_clock_now_coarse(f->clock));
	uint32_t attempts = 0;
	for (unsigned retry = 0;; retry++) {
		*now = call(f, c, op, out, *now);
		attempts += out->attempts;
		rs->spent_ns += out->latency_ns;
		if (breakers && *now)
			pv_breaker_record_at(&c->breaker, permit, out, out->latency_ns, *now);
		else if (breakers)
			pv_breaker_record(&c->breaker, permit, out, out->latency_ns, f->clock);
		if (out->success || !may_retry || !should_retry(f, op, out, retry, rs))
			break;
		pv_result_clear(out);
		*now = 0; /* it slept */
	}
	rs->attempts += attempts;
	if (out->success)
		return true;
	note_failure(f, rs, i, out, attempts);
	return false;
}

/* ---- answers ------------------------------------------------------------- */

static void remember_templates(fallback *f, const pv_result *r, const char *from)
{
	json_t *copy = r->data ? json_deep_copy(r->data) : NULL;
	if (!copy)
		return;
	pthread_mutex_lock(&f->lock);
	json_decref(f->templates);
	f->templates = copy;
	f->templates_at_ms = pv_wall_ms();
	snprintf(f->templates_from, sizeof f->templates_from, "%s", from);
	pthread_mutex_unlock(&f->lock);
}

/* One entry of metadata.fallback.errors. */
static json_t *miss_json(const fb_meta *fm, const miss *x, const pv_result *answer)
{
	static const struct {
		const char *code, *message;
	} skipped[] = {
		[MISS_CIRCUIT_OPEN] = {PV_ERR_CIRCUIT_OPEN, "skipped: its circuit breaker is open"},
		[MISS_UNHEALTHY] = {PV_ERR_UNHEALTHY, "skipped: its cached health check says unhealthy"},
		[MISS_DEADLINE] = {PV_ERR_TIMEOUT, "skipped: the deadline passed before it could be tried"},
	};
	const char *name = fm->names + x->name;
	if (x->kind != MISS_FAILED)
		return json_pack("{s:s, s:s, s:s, s:s, s:i, s:b}", "strategy", name, "error_code",
				 skipped[x->kind].code, "error_class",
				 pv_error_class_name(PV_CLASS_TRANSIENT), "message",
				 skipped[x->kind].message, "attempts", 0, "skipped", 1);
	const pv_result *res = x->is_answer ? answer : &x->res;
	return json_pack("{s:s, s:s, s:s, s:s?, s:i, s:b, s:s}", "strategy", name, "error_code",
			 res->error_code, "error_class", pv_error_class_name(res->error_class),
			 "message", pv_result_message(res), "attempts", (int)x->attempts, "skipped",
			 0, "provider", res->provider);
}

/* Our facts, nested under "fallback" so that a nested fallback's own facts
 * survive (they move under "inner"). */
static void fb_meta_build(const pv_result_later *part, const pv_result *r, json_t *meta)
{
	const fb_meta *fm = (const fb_meta *)part;
	const char *name = fm->names; /* the fallback's comes first */
	json_t *m = json_object();
	json_t *inner = json_object_get(meta, "fallback");
	if (inner)
		json_object_set(m, "inner", inner);
	json_object_set_new(m, "strategy", json_string(name));
	json_object_set_new(m, "mode", json_string(pv_fallback_mode_name(fm->mode)));
	json_object_set_new(m, "answered_by", fm->answered >= 0
						      ? json_string(fm->names + fm->answered_name)
						      : json_null());
	json_object_set_new(m, "fallback_used", json_boolean(fm->answered > 0));
	json_object_set_new(m, "attempts", json_integer(fm->attempts));
	json_object_set_new(m, "retries", json_integer(fm->retries));
	if (fm->retry_stopped)
		json_object_set_new(m, "retry_stopped", json_string(fm->retry_stopped));
	if (fm->circuit_state >= 0)
		json_object_set_new(m, "circuit_state",
				    json_string(pv_breaker_state_name((pv_breaker_state)fm->circuit_state)));
	if (fm->n_misses) {
		json_t *errors = json_array();
		for (size_t i = 0; i < fm->n_misses; i++)
			json_array_append_new(errors, miss_json(fm, &fm->misses[i], r));
		json_object_set_new(m, "errors", errors);
	}
	json_object_set_new(meta, "fallback", m);
	json_object_set_new(meta, "strategy", json_string(name));
}

/* Hands the run's facts to `out`, to be built into metadata when read. */
static void annotate(fallback *f, pv_result *out, size_t answered, run_state *rs)
{
	fb_meta *m = meta_of(f, rs);
	if (!m)
		return;
	m->answered = answered < f->n ? (long)answered : -1;
	m->answered_name = answered < f->n ? f->children[answered].name : 0;
	m->attempts = rs->attempts;
	m->retries = rs->retries;
	m->retry_stopped = rs->retry_stopped;
	m->circuit_state = f->cfg.mode == PV_FALLBACK_CIRCUIT_BREAKER && answered < f->n
				   ? (int)pv_breaker_get_state(&f->children[answered].breaker)
				   : -1;
	pv_result_meta_later(out, &m->part);
	rs->meta = NULL; /* the result's now */
}

static void finish_success(fallback *f, size_t i, const pv_operation *op, pv_result *out,
			   run_state *rs)
{
	child *c = &f->children[i];
	out->attempts = rs->attempts;
	if (i > 0)
		bump(f, FB_FALLBACK_ANSWERS);
	else
		bump(f, FB_PRIMARY_ANSWERS);
	if (op->type == PV_OP_GET_AVAILABLE_TEMPLATES && f->cfg.enable_graceful_degradation)
		remember_templates(f, out, c->s->name);
	bool notable = i > 0 || rs->retries > 0 || rs->meta ||
		       (f->cfg.mode == PV_FALLBACK_CIRCUIT_BREAKER &&
			pv_breaker_get_state(&c->breaker) != PV_BREAKER_CLOSED);
	if (notable)
		annotate(f, out, i, rs);
}

/* The class of the combined failure: transient if any strategy may work
 * when asked again, else the most hopeful class seen. */
static pv_error_class combined_class(unsigned classes)
{
	static const pv_error_class order[] = {PV_CLASS_TRANSIENT, PV_CLASS_THROTTLED,
					       PV_CLASS_CAPACITY, PV_CLASS_INTERNAL};
	for (size_t i = 0; i < sizeof order / sizeof order[0]; i++)
		if (classes & (1u << order[i]))
			return order[i];
	return PV_CLASS_PERMANENT;
}

/* Serves the last good template list, marked stale. false when none. */
static bool serve_stale_templates(fallback *f, pv_result *out, run_state *rs)
{
	pthread_mutex_lock(&f->lock);
	json_t *data = f->templates ? json_deep_copy(f->templates) : NULL;
	int64_t at = f->templates_at_ms;
	char from[PV_RESULT_NAME_MAX];
	memcpy(from, f->templates_from, sizeof from);
	pthread_mutex_unlock(&f->lock);
	if (!data)
		return false;
	if (json_is_object(data)) {
		json_object_set_new(data, "stale", json_true());
		json_object_set_new(data, "cached_at_ms", json_integer(at));
	}
	pv_result_ok(out, data);
	pv_result_set_provider(out, f->base.name);
	out->attempts = rs->attempts;
	pv_result_meta_set(out, "stale", json_true());
	pv_result_meta_set(out, "cached_from", json_string(from));
	pv_result_meta_set(out, "cached_at_ms", json_integer(at));
	return true;
}

static void finish_failure(fallback *f, const pv_operation *op, pv_result *out, run_state *rs)
{
	bump(f, FB_FAILURES);
	bool degrade = f->cfg.enable_graceful_degradation;
	miss *last = rs->last >= 0 ? &rs->meta->misses[rs->last] : NULL;
	if (degrade && op->type == PV_OP_GET_AVAILABLE_TEMPLATES && serve_stale_templates(f, out, rs)) {
		bump(f, FB_DEGRADED_ANSWERS);
	} else if (!degrade && last) {
		pv_result_move(out, &last->res); /* the last strategy's own error, its latency */
		last->is_answer = true;
		out->attempts = rs->attempts;
	} else {
		pv_result_fail(out, PV_ERR_ALL_STRATEGIES_FAILED, combined_class(rs->classes),
			       "fallback '%s': all %zu strategies failed (last: %s)", f->base.name, f->n,
			       last ? last->res.error_code : "skipped");
		pv_result_set_provider(out, f->base.name);
		out->attempts = rs->attempts;
		if (degrade && op->type == PV_OP_HEALTH_CHECK)
			out->data = json_pack("{s:b, s:b, s:s}", "healthy", 0, "degraded", 1, "status",
					      "degraded");
		if (degrade)
			bump(f, FB_DEGRADED_ANSWERS);
	}
	if (!last || degrade) /* an answer of our own: it took the calls' time and the backoff */
		out->latency_ns = rs->spent_ns;
	if (degrade)
		pv_result_meta_set(out, "degraded", json_true());
	annotate(f, out, f->n, rs);
}

static int fb_execute(pv_strategy *s, const pv_operation *op, pv_result *out)
{
	fallback *f = as_fb(s);
	run_state rs = {.meta = NULL, .last = -1};
	uint64_t now = 0;
	for (size_t i = 0; i < f->n; i++) {
		if (op->deadline_ns && (now ? now : (now = pv_clock_now(f->clock))) >= op->deadline_ns) {
			skip(f, &rs, i, MISS_DEADLINE);
			break;
		}
		if (try_child(f, i, op, out, &rs, &now)) {
			finish_success(f, i, op, out, &rs);
			run_state_clear(&rs);
			return 0;
		}
	}
	finish_failure(f, op, out, &rs);
	run_state_clear(&rs);
	return 0;
}
/* ---- the other methods ---------------------------------------------------- */

static int fb_init(pv_strategy *s)
{
	fallback *f = as_fb(s);
	size_t ok = 0;
	char last[256] = "";
	for (size_t i = 0; i < f->n; i++) {
		if (pv_strategy_initialize(f->children[i].s) == 0)
			ok++;
		else
			snprintf(last, sizeof last, "%s: %s", f->children[i].s->name, pv_error_last());
	}
	if (ok == 0)
		return pv_error_set(PV_ESTATE, "fallback '%s': no wrapped strategy initialized (%s)",
				    s->name, last);
	return 0;
}

static int fb_capabilities(pv_strategy *s, pv_capabilities *out)
{
	fallback *f = as_fb(s);
	snprintf(out->type, sizeof out->type, "fallback");
	out->features = json_object();
	for (size_t i = 0; i < f->n; i++) {
		pv_capabilities c;
		if (pv_strategy_capabilities(f->children[i].s, &c) == 0) {
			out->operations |= c.operations;
			if (c.features)
				json_object_update_missing(out->features, c.features);
		}
		pv_capabilities_clear(&c);
	}
	return 0;
}

/* Healthy when some wrapped strategy is healthy (and, in circuit_breaker
 * mode, not cut off by an open breaker). Degraded when the primary is not. */
static int fb_health(pv_strategy *s, pv_health *out)
{
	fallback *f = as_fb(s);
	uint64_t t0 = pv_clock_now(f->clock);
	json_t *each = json_object();
	size_t usable = 0, first = f->n;
	for (size_t i = 0; i < f->n; i++) {
		child *c = &f->children[i];
		pv_health h;
		int rc = pv_strategy_health(c->s, &h);
		pv_breaker_state st = pv_breaker_get_state(&c->breaker);
		bool up = rc == 0 && h.healthy;
		atomic_store(&c->health, up ? 1 : 0);
		atomic_store(&c->health_at_ns, pv_clock_now_coarse(f->clock));
		bool cut = f->cfg.mode == PV_FALLBACK_CIRCUIT_BREAKER && st == PV_BREAKER_OPEN;
		if (up && !cut && usable++ == 0)
			first = i;
		json_object_set_new(each, c->s->name,
				    json_pack("{s:b, s:s?, s:s}", "healthy", up, "message", h.message,
					      "circuit_state", pv_breaker_state_name(st)));
		pv_health_clear(&h);
	}
	bool degraded = first != 0;
	const char *status = usable == 0 ? "unhealthy" : degraded ? "degraded" : "healthy";
	if (usable == 0)
		pv_health_set(out, false, "fallback '%s' unhealthy and degraded: none of its %zu strategies can serve",
			      s->name, f->n);
	else if (degraded)
		pv_health_set(out, true, "fallback '%s' degraded: primary '%s' cannot serve, '%s' serves",
			      s->name, f->children[0].s->name, f->children[first].s->name);
	else
		pv_health_set(out, true, "fallback '%s' healthy: primary '%s' serves", s->name,
			      f->children[0].s->name);
	out->details = json_pack("{s:s, s:b, s:o}", "status", status, "degraded", usable == 0 || degraded,
				 "strategies", each);
	out->checked_at_ms = pv_wall_ms();
	out->response_ns = pv_clock_now(f->clock) - t0;
	return 0;
}

static json_t *all_circuit_metrics(fallback *f)
{
	uint64_t now = pv_clock_now(f->clock);
	json_t *top = pv_breaker_metrics(&f->children[0].breaker, now);
	json_t *each = json_object();
	for (size_t i = 0; i < f->n; i++)
		json_object_set_new(each, f->children[i].s->name,
				    pv_breaker_metrics(&f->children[i].breaker, now));
	json_object_set_new(top, "strategy", json_string(f->children[0].s->name));
	json_object_set_new(top, "mode", json_string(pv_fallback_mode_name(f->cfg.mode)));
	json_object_set_new(top, "strategies", each);
	return top;
}

json_t *pv_fallback_circuit_metrics(pv_strategy *s)
{
	return pv_fallback_is(s) ? all_circuit_metrics(as_fb(s)) : NULL;
}

/* Calls the breakers turned away: each counts its own. */
static json_int_t circuit_rejections(const fallback *f)
{
	uint64_t sum = 0;
	for (size_t i = 0; i < f->n; i++)
		sum += pv_breaker_count(&f->children[i].breaker, PV_BC_REJECTED);
	return (json_int_t)sum;
}

static json_t *fb_stats(pv_strategy *s)
{
	fallback *f = as_fb(s);
	json_t *names = json_array();
	for (size_t i = 1; i < f->n; i++)
		json_array_append_new(names, json_string(f->children[i].s->name));
	uint64_t ok = count_of(f, FB_PRIMARY_ANSWERS) + count_of(f, FB_FALLBACK_ANSWERS);
	uint64_t bad = count_of(f, FB_FAILURES);
	pthread_mutex_lock(&f->lock);
	json_t *cache = json_pack("{s:b, s:I}", "cached", f->templates != NULL, "cached_at_ms",
				  (json_int_t)f->templates_at_ms);
	pthread_mutex_unlock(&f->lock);
	return json_pack("{s:s, s:s, s:s, s:o, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I,"
			 " s:o, s:o, s:o}",
			 "type", "fallback", "mode", pv_fallback_mode_name(f->cfg.mode), "primary",
			 f->children[0].s->name, "fallbacks", names, "calls", (json_int_t)(ok + bad),
			 "successes", (json_int_t)ok, "failures", (json_int_t)bad, "fallback_answers",
			 (json_int_t)count_of(f, FB_FALLBACK_ANSWERS), "retries",
			 (json_int_t)count_of(f, FB_RETRIES), "retries_denied_by_budget",
			 (json_int_t)count_of(f, FB_RETRIES_DENIED), "retries_stopped_by_deadline",
			 (json_int_t)count_of(f, FB_RETRIES_PAST_DEADLINE), "degraded_answers",
			 (json_int_t)count_of(f, FB_DEGRADED_ANSWERS), "circuit_rejections",
			 (json_int_t)circuit_rejections(f), "unhealthy_skips",
			 (json_int_t)count_of(f, FB_UNHEALTHY_SKIPS), "circuit_metrics",
			 all_circuit_metrics(f), "retry_budget",
			 pv_retry_budget_stats(&f->budget, pv_clock_now(f->clock)), "templates_cache",
			 cache);
}

/* ---- state across processes ------------------------------------------------ */

static json_t *fb_state_save(pv_strategy *s)
{
	fallback *f = as_fb(s);
	uint64_t now = pv_clock_now(f->clock);
	json_t *breakers = json_object(), *children = json_object();
	for (size_t i = 0; i < f->n; i++) {
		child *c = &f->children[i];
		json_object_set_new(breakers, c->s->name, pv_breaker_save(&c->breaker, now));
		json_t *st = pv_strategy_state_save(c->s);
		if (st)
			json_object_set_new(children, c->s->name, st);
	}
	return json_pack("{s:i, s:s, s:o, s:o, s:o}", "version", 1, "type", "fallback", "breakers",
			 breakers, "retry_budget", pv_retry_budget_save(&f->budget, now), "children",
			 children);
}

static child *child_named(fallback *f, const char *name)
{
	for (size_t i = 0; i < f->n; i++)
		if (strcmp(f->children[i].s->name, name) == 0)
			return &f->children[i];
	return NULL;
}

/* Checks everything first, so a bad state changes nothing. Names that are
 * no longer wrapped (the configuration changed) are skipped. */
static int check_state(fallback *f, const json_t *st)
{
	const char *name;
	json_t *v;
	json_t *ver = json_object_get(st, "version");
	if (!json_is_object(st) || !json_is_integer(ver) || json_integer_value(ver) != 1)
		return pv_error_set(PV_EINVAL, "fallback '%s' state: field 'version': must be 1",
				    f->base.name);
	json_t *breakers = json_object_get(st, "breakers");
	if (breakers && !json_is_object(breakers))
		return pv_error_set(PV_EINVAL, "fallback '%s' state: field 'breakers': must be an object",
				    f->base.name);
	json_object_foreach(breakers, name, v) {
		if (child_named(f, name) && pv_breaker_check_state(v) < 0) {
			char why[256]; /* pv_error_set must not read its own buffer */
			snprintf(why, sizeof why, "%s", pv_error_last());
			return pv_error_set(PV_EINVAL, "fallback '%s' state: breakers.%s: %s",
					    f->base.name, name, why);
		}
	}
	json_t *children = json_object_get(st, "children");
	if (children && !json_is_object(children))
		return pv_error_set(PV_EINVAL, "fallback '%s' state: field 'children': must be an object",
				    f->base.name);
	return 0;
}

static int fb_state_load(pv_strategy *s, const json_t *st)
{
	fallback *f = as_fb(s);
	int rc = check_state(f, st);
	if (rc < 0)
		return rc;
	uint64_t now = pv_clock_now(f->clock);
	const char *name;
	json_t *v;
	json_object_foreach(json_object_get(st, "breakers"), name, v) {
		child *c = child_named(f, name);
		if (c && (rc = pv_breaker_load(&c->breaker, v, now)) < 0)
			return rc;
	}
	json_t *budget = json_object_get(st, "retry_budget");
	if (budget && (rc = pv_retry_budget_load(&f->budget, budget, now)) < 0)
		return rc;
	json_object_foreach(json_object_get(st, "children"), name, v) {
		child *c = child_named(f, name);
		if (c && (rc = pv_strategy_state_load(c->s, v)) < 0 && rc != PV_EUNSUPPORTED)
			return rc;
	}
	return 0;
}

static void fb_destroy(pv_strategy *s)
{
	fallback *f = as_fb(s);
	for (size_t i = 0; i < f->n; i++) {
		pv_breaker_destroy(&f->children[i].breaker);
		pv_strategy_unref(f->children[i].s);
	}
	free(f->children);
	free(f->names);
	pv_retry_budget_destroy(&f->budget);
	json_decref(f->templates);
	pv_counters_destroy(&f->counts);
	pthread_mutex_destroy(&f->lock);
}

static const pv_strategy_methods fallback_methods = {
	.version = PV_STRATEGY_METHODS_VERSION,
	.init = fb_init,
	.execute = fb_execute,
	.capabilities = fb_capabilities,
	.health = fb_health,
	.destroy = fb_destroy,
	.stats = fb_stats,
	.state_save = fb_state_save,
	.state_load = fb_state_load,
	.flags = PV_STRATEGY_TIMED_BY_CHILD, /* an answer's latency is its child's */
};

bool pv_fallback_is(const pv_strategy *s) { return s && s->methods == &fallback_methods; }

/* ---- construction ------------------------------------------------------------ */

static uint64_t to_ns(double seconds) { return (uint64_t)(seconds * 1e9); }

static pv_breaker_config breaker_config(const pv_fallback_config *c)
{
	return (pv_breaker_config){
		.threshold = c->circuit_breaker_threshold,
		.window_size = c->circuit_breaker_window_size,
		.min_calls = c->circuit_breaker_min_calls,
		.failure_rate = c->circuit_breaker_failure_rate_threshold,
		.slow_call_ns = to_ns(c->circuit_breaker_slow_call_seconds),
		.open_ns = to_ns(c->circuit_breaker_timeout_seconds),
		.max_open_ns = to_ns(c->circuit_breaker_max_timeout_seconds),
		.jitter = c->circuit_breaker_jitter,
		.half_open_probes = c->circuit_breaker_half_open_probes,
	};
}

static int check_children(const char *name, pv_strategy *primary, pv_strategy *const *fallbacks,
			  size_t n_fallbacks)
{
	if (!primary)
		return pv_error_set(PV_EINVAL, "fallback '%s': primary must not be NULL", name);
	if (n_fallbacks && !fallbacks)
		return pv_error_set(PV_EINVAL, "fallback '%s': fallbacks is NULL but n_fallbacks is %zu",
				    name, n_fallbacks);
	for (size_t i = 0; i <= n_fallbacks; i++) {
		pv_strategy *a = i ? fallbacks[i - 1] : primary;
		if (!a)
			return pv_error_set(PV_EINVAL, "fallback '%s': fallbacks[%zu] is NULL", name, i - 1);
		for (size_t j = 0; j < i; j++) {
			pv_strategy *b = j ? fallbacks[j - 1] : primary;
			if (strcmp(a->name, b->name) == 0)
				return pv_error_set(PV_EINVAL,
						    "fallback '%s': strategy name '%s' appears twice; "
						    "wrapped strategies need unique names",
						    name, a->name);
		}
	}
	return 0;
}

/* "fallback\0primary\0backup\0..." and each child's offset in it. */
static int setup_names(fallback *f, pv_strategy *primary, pv_strategy *const *fallbacks)
{
	size_t len = strlen(f->base.name) + 1;
	for (size_t i = 0; i < f->n; i++)
		len += strlen((i ? fallbacks[i - 1] : primary)->name) + 1;
	if (len > UINT32_MAX || !(f->names = malloc(len)))
		return PV_ENOMEM;
	size_t at = strlen(f->base.name) + 1;
	memcpy(f->names, f->base.name, at);
	for (size_t i = 0; i < f->n; i++) {
		const char *name = (i ? fallbacks[i - 1] : primary)->name;
		size_t n = strlen(name) + 1;
		memcpy(f->names + at, name, n);
		f->children[i].name = (uint32_t)at;
		at += n;
	}
	f->names_len = len;
	return 0;
}

static int setup_children(fallback *f, pv_strategy *primary, pv_strategy *const *fallbacks)
{
	pv_breaker_config bc = breaker_config(&f->cfg);
	uint64_t seed = f->cfg.seed ? f->cfg.seed : pv_now_ns();
	if (setup_names(f, primary, fallbacks) < 0)
		return PV_ENOMEM;
	for (size_t i = 0; i < f->n; i++) {
		child *c = &f->children[i];
		if (pv_breaker_init(&c->breaker, &bc, pv_mix64(seed + i + 1)) < 0) {
			for (size_t j = 0; j < i; j++)
				pv_breaker_destroy(&f->children[j].breaker);
			return PV_ENOMEM;
		}
		atomic_init(&c->health, -1);
		atomic_flag_clear(&c->health_refreshing);
	}
	for (size_t i = 0; i < f->n; i++)
		f->children[i].s = pv_strategy_ref(i ? fallbacks[i - 1] : primary);
	pv_rng_seed(&f->rng, seed);
	return 0;
}

int pv_fallback_new(pv_strategy **out, const char *name, pv_strategy *primary,
		    pv_strategy *const *fallbacks, size_t n_fallbacks,
		    const pv_fallback_config *cfg, const pv_clock *clock)
{
	pv_fallback_config defaults;
	int rc;
	*out = NULL;
	if (!cfg) {
		pv_fallback_config_default(&defaults);
		cfg = &defaults;
	}
	if ((rc = pv_fallback_config_validate(cfg)) < 0 ||
	    (rc = check_children(name ? name : "(null)", primary, fallbacks, n_fallbacks)) < 0)
		return rc;
	child *children = calloc(n_fallbacks + 1, sizeof *children);
	if (!children)
		return pv_error_set(PV_ENOMEM, "out of memory");
	fallback *f = pv_strategy_alloc(sizeof *f, &fallback_methods, name, "fallback");
	if (!f) {
		free(children);
		return pv_error_last_code();
	}
	f->cfg = *cfg;
	f->clock = clock;
	f->n = n_fallbacks + 1;
	f->children = children;
	f->retry_base_ns = to_ns(cfg->retry_delay_seconds);
	f->retry_cap_ns = to_ns(cfg->retry_max_delay_seconds);
	f->health_interval_ns = to_ns(cfg->health_check_interval_seconds);
	pthread_mutex_init(&f->lock, NULL);
	pv_retry_budget_init(&f->budget, cfg->retry_budget_ratio,
			     cfg->retry_budget_min_retries_per_second,
			     to_ns(cfg->retry_budget_window_seconds));
	if (pv_counters_init(&f->counts) < 0 || setup_children(f, primary, fallbacks) < 0) {
		f->n = 0; /* no breaker or child to release in destroy */
		pv_strategy_unref(&f->base);
		return pv_error_set(PV_ENOMEM, "out of memory");
	}
	*out = &f->base;
	return 0;
}
