/*
 * breaker.c - the circuit breaker of one wrapped strategy (see breaker.h).
 *
 * Why it looks like this:
 *  - The common case is a closed breaker and a successful call. That path
 *    is one acquire load to admit and, to record, one relaxed exchange into
 *    the window ring plus a few relaxed counter adds: no lock, no clock.
 *  - The failure rate is computed by scanning the window ring only when a
 *    failure could trip the breaker, so there are no running counters that a
 *    concurrent reset could drive below zero.
 *  - Every transition bumps a generation packed with the state into one
 *    word. A permit remembers the generation it was given in, so an outcome
 *    of a call admitted before a transition cannot move the new state (a
 *    slow success from the old closed period does not close a fresh open
 *    breaker, a late probe cannot count twice).
 *  - Throttles, capacity and permanent errors are IGNORED: the provider is
 *    answering, so tripping would send good traffic away for nothing.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "core/breaker.h"
#include "core/coarse_clock.h"
#include "provisio/error.h"
#include "util/names.h"

#define RELAXED memory_order_relaxed
/* last_success_time's resolution: a success writes it at most once a grain */
#define LAST_SUCCESS_GRAIN_NS PV_NS_PER_MS

enum { SLOT_EMPTY = 0, SLOT_SUCCESS = 1, SLOT_FAILURE = 2 };

static const char *const state_names[] = {"closed", "open", "half_open"};

const char *pv_breaker_state_name(pv_breaker_state st)
{
	return (unsigned)st <= PV_BREAKER_HALF_OPEN ? state_names[st] : "unknown";
}

int pv_breaker_state_parse(const char *name, pv_breaker_state *out)
{
	int i = pv_names_find(state_names, (size_t)PV_BREAKER_HALF_OPEN + 1, name, "breaker state");
	if (i < 0)
		return i;
	*out = (pv_breaker_state)i;
	return 0;
}

int pv_breaker_init(pv_breaker *b, const pv_breaker_config *cfg, uint64_t seed)
{
	memset(b, 0, sizeof *b);
	b->cfg = *cfg;
	b->window = calloc(cfg->window_size, sizeof *b->window);
	if (!b->window || pv_counters_init(&b->counts) < 0) {
		free((void *)b->window);
		return pv_error_set(PV_ENOMEM, "out of memory");
	}
	pthread_mutex_init(&b->lock, NULL);
	pv_rng_seed(&b->rng, seed);
	b->open_period_ns = cfg->open_ns;
	return 0;
}

void pv_breaker_destroy(pv_breaker *b)
{
	free((void *)b->window);
	b->window = NULL;
	pv_counters_destroy(&b->counts);
	pthread_mutex_destroy(&b->lock);
}

pv_breaker_state pv_breaker_get_state(const pv_breaker *b)
{
	return (pv_breaker_state)(atomic_load_explicit(&b->state_gen, memory_order_acquire) & 3);
}

uint64_t pv_breaker_count(const pv_breaker *b, pv_breaker_counter which)
{
	return pv_counters_get(&b->counts, which);
}

static void count(pv_breaker *b, pv_breaker_counter which)
{
	pv_counters_add(&b->counts, which, 1);
}

/* ---- transitions (lock held) ------------------------------------------ */

static const char *const transition_names[PV_BT_COUNT] = {
	"closed_to_open", "open_to_half_open", "half_open_to_closed", "half_open_to_open"};
static const pv_breaker_state transition_ends[PV_BT_COUNT][2] = {
	{PV_BREAKER_CLOSED, PV_BREAKER_OPEN},
	{PV_BREAKER_OPEN, PV_BREAKER_HALF_OPEN},
	{PV_BREAKER_HALF_OPEN, PV_BREAKER_CLOSED},
	{PV_BREAKER_HALF_OPEN, PV_BREAKER_OPEN},
};

const char *pv_breaker_transition_name(pv_breaker_transition t)
{
	return (unsigned)t < PV_BT_COUNT ? transition_names[t] : "unknown";
}

int pv_breaker_transition_parse(const char *name, pv_breaker_transition *out)
{
	int i = pv_names_find(transition_names, PV_BT_COUNT, name, "breaker transition");
	if (i < 0)
		return i;
	*out = (pv_breaker_transition)i;
	return 0;
}

pv_breaker_state pv_breaker_transition_from(pv_breaker_transition t)
{
	return transition_ends[(unsigned)t < PV_BT_COUNT ? t : 0][0];
}

pv_breaker_state pv_breaker_transition_to(pv_breaker_transition t)
{
	return transition_ends[(unsigned)t < PV_BT_COUNT ? t : 0][1];
}

static void set_state_locked(pv_breaker *b, pv_breaker_state st)
{
	uint64_t sg = atomic_load_explicit(&b->state_gen, RELAXED);
	atomic_store_explicit(&b->state_gen, (((sg >> 2) + 1) << 2) | (uint64_t)st,
			      memory_order_release);
}

/* A move of the state machine (a restored state is not one: it only puts
 * back where a previous process was). */
static void move_locked(pv_breaker *b, pv_breaker_state to)
{
	pv_breaker_state from = pv_breaker_get_state(b);
	for (int t = 0; t < PV_BT_COUNT; t++)
		if (transition_ends[t][0] == from && transition_ends[t][1] == to)
			atomic_fetch_add_explicit(&b->transitions[t], 1, RELAXED);
	set_state_locked(b, to);
}

/* The open period after `streak` re-opens: base * 2^streak, capped, then
 * shortened by up to `jitter` of itself so breakers tripped together do not
 * all probe at the same instant. Shortening (not lengthening) keeps the cap
 * a real upper bound. */
static uint64_t open_period_locked(pv_breaker *b, unsigned streak)
{
	uint64_t d = b->cfg.open_ns;
	for (unsigned i = 0; i < streak && d < b->cfg.max_open_ns; i++)
		d = d > UINT64_MAX / 2 ? UINT64_MAX : d * 2;
	if (d > b->cfg.max_open_ns)
		d = b->cfg.max_open_ns;
	if (b->cfg.jitter > 0)
		d -= (uint64_t)((double)d * b->cfg.jitter * pv_rng_double(&b->rng));
	return d;
}

static void open_locked(pv_breaker *b, uint64_t now)
{
	b->open_period_ns = open_period_locked(b, b->reopen_streak);
	atomic_store_explicit(&b->next_attempt_ns, now + b->open_period_ns, RELAXED);
	atomic_fetch_add_explicit(&b->times_opened, 1, RELAXED);
	move_locked(b, PV_BREAKER_OPEN);
}

static void clear_window(pv_breaker *b)
{
	for (unsigned i = 0; i < b->cfg.window_size; i++)
		atomic_store_explicit(&b->window[i], SLOT_EMPTY, RELAXED);
	atomic_store_explicit(&b->window_pos, 0, RELAXED);
	atomic_store_explicit(&b->failure_end, 0, RELAXED);
	atomic_store_explicit(&b->consecutive, 0, RELAXED);
}

static void close_locked(pv_breaker *b)
{
	clear_window(b);
	b->reopen_streak = 0;
	move_locked(b, PV_BREAKER_CLOSED);
}

static void half_open_locked(pv_breaker *b)
{
	b->probes_admitted = 0;
	b->probes_succeeded = 0;
	move_locked(b, PV_BREAKER_HALF_OPEN);
}

/* ---- admission --------------------------------------------------------- */

static pv_breaker_permit reject(pv_breaker *b, uint64_t gen)
{
	count(b, PV_BC_REJECTED);
	return (pv_breaker_permit){PV_PERMIT_REJECTED, gen};
}

static pv_breaker_permit admit_slow(pv_breaker *b, uint64_t now, uint64_t sg)
{
	if ((sg & 3) == PV_BREAKER_OPEN && now < atomic_load_explicit(&b->next_attempt_ns, RELAXED))
		return reject(b, sg >> 2);
	pthread_mutex_lock(&b->lock);
	sg = atomic_load_explicit(&b->state_gen, RELAXED);
	if ((sg & 3) == PV_BREAKER_OPEN) {
		if (now < atomic_load_explicit(&b->next_attempt_ns, RELAXED)) {
			pthread_mutex_unlock(&b->lock);
			return reject(b, sg >> 2);
		}
		half_open_locked(b);
		sg = atomic_load_explicit(&b->state_gen, RELAXED);
	}
	pv_breaker_permit p = {PV_PERMIT_NORMAL, sg >> 2};
	if ((sg & 3) == PV_BREAKER_HALF_OPEN) {
		if (b->probes_admitted < b->cfg.half_open_probes) {
			b->probes_admitted++;
			p.kind = PV_PERMIT_PROBE;
		} else {
			p.kind = PV_PERMIT_REJECTED;
		}
	}
	pthread_mutex_unlock(&b->lock);
	if (p.kind == PV_PERMIT_REJECTED)
		count(b, PV_BC_REJECTED);
	return p;
}

pv_breaker_permit pv_breaker_admit(pv_breaker *b, const pv_clock *clock)
{
	uint64_t sg = atomic_load_explicit(&b->state_gen, memory_order_acquire);
	if ((sg & 3) == PV_BREAKER_CLOSED)
		return (pv_breaker_permit){PV_PERMIT_NORMAL, sg >> 2};
	/* Open, and surely so for a while: the coarse clock proves it for a
	 * quarter of a precise read (the precise one decides near the end). */
	if ((sg & 3) == PV_BREAKER_OPEN &&
	    pv_clock_now_coarse(clock) + pv_clock_coarse_lag(clock) <
		    atomic_load_explicit(&b->next_attempt_ns, RELAXED))
		return reject(b, sg >> 2);
	return admit_slow(b, pv_clock_now(clock), sg);
}

pv_breaker_permit pv_breaker_admit_at(pv_breaker *b, const pv_clock *clock, uint64_t *now)
{
	uint64_t sg = atomic_load_explicit(&b->state_gen, memory_order_acquire);
	if ((sg & 3) == PV_BREAKER_CLOSED)
		return (pv_breaker_permit){PV_PERMIT_NORMAL, sg >> 2};
	if (!*now)
		*now = pv_clock_now(clock);
	return admit_slow(b, *now, sg);
}

/* ---- outcomes ---------------------------------------------------------- */

pv_breaker_outcome pv_breaker_classify(const pv_breaker *b, const pv_result *r, uint64_t latency_ns)
{
	if (r->success)
		return b->cfg.slow_call_ns && latency_ns >= b->cfg.slow_call_ns ? PV_OUTCOME_FAILURE
										 : PV_OUTCOME_SUCCESS;
	switch (r->error_class) {
	case PV_CLASS_TRANSIENT:
	case PV_CLASS_INTERNAL:
		return PV_OUTCOME_FAILURE;
	default:
		return PV_OUTCOME_IGNORED; /* throttled, capacity, permanent */
	}
}

static void window_put(pv_breaker *b, unsigned char v)
{
	uint64_t pos = atomic_fetch_add_explicit(&b->window_pos, 1, RELAXED);
	atomic_store_explicit(&b->window[pos % b->cfg.window_size], v, RELAXED);
	uint64_t end = atomic_load_explicit(&b->failure_end, RELAXED);
	while (v == SLOT_FAILURE && end < pos + 1 &&
	       !atomic_compare_exchange_weak_explicit(&b->failure_end, &end, pos + 1, RELAXED, RELAXED))
		;
}

/* A success goes into the window only while a failure may still be in it:
 * a window full of successes reads the same with one more, and not writing
 * it keeps the healthy path off the two words every caller would share. */
static void window_put_success(pv_breaker *b)
{
	uint64_t pos = atomic_load_explicit(&b->window_pos, RELAXED);
	if (pos < atomic_load_explicit(&b->failure_end, RELAXED) + b->cfg.window_size)
		window_put(b, SLOT_SUCCESS);
}

static void window_scan(pv_breaker *b, unsigned *filled, unsigned *failed)
{
	*filled = *failed = 0;
	for (unsigned i = 0; i < b->cfg.window_size; i++) {
		unsigned char v = atomic_load_explicit(&b->window[i], RELAXED);
		*filled += v != SLOT_EMPTY;
		*failed += v == SLOT_FAILURE;
	}
}

static bool rate_tripped(pv_breaker *b)
{
	unsigned filled, failed;
	window_scan(b, &filled, &failed);
	return filled >= b->cfg.min_calls &&
	       (double)failed * 100.0 >= b->cfg.failure_rate * (double)filled;
}

static void trip(pv_breaker *b, uint64_t gen, uint64_t now)
{
	pthread_mutex_lock(&b->lock);
	uint64_t sg = atomic_load_explicit(&b->state_gen, RELAXED);
	if ((sg & 3) == PV_BREAKER_CLOSED && (sg >> 2) == gen) {
		b->reopen_streak = 0;
		open_locked(b, now);
	}
	pthread_mutex_unlock(&b->lock);
}

static void record_probe(pv_breaker *b, uint64_t gen, pv_breaker_outcome o, uint64_t now)
{
	pthread_mutex_lock(&b->lock);
	uint64_t sg = atomic_load_explicit(&b->state_gen, RELAXED);
	if ((sg & 3) == PV_BREAKER_HALF_OPEN && (sg >> 2) == gen) {
		if (o == PV_OUTCOME_FAILURE) {
			b->reopen_streak++;
			open_locked(b, now);
		} else if (o == PV_OUTCOME_SUCCESS) {
			if (++b->probes_succeeded >= b->cfg.half_open_probes)
				close_locked(b);
		} else if (b->probes_admitted > 0) {
			b->probes_admitted--; /* inconclusive: let another call probe */
		}
	}
	pthread_mutex_unlock(&b->lock);
}

static void count_outcome(pv_breaker *b, pv_breaker_outcome o, const pv_result *r, uint64_t now)
{
	if (o == PV_OUTCOME_SUCCESS) {
		count(b, PV_BC_SUCCESSES);
		/* stamped once a grain: most successes need not write the line
		 * every caller reads (nor go back in time for a slower thread) */
		if (now >= atomic_load_explicit(&b->last_success_ns, RELAXED) + LAST_SUCCESS_GRAIN_NS)
			atomic_store_explicit(&b->last_success_ns, now, RELAXED);
	} else if (o == PV_OUTCOME_FAILURE) {
		count(b, PV_BC_FAILURES);
		atomic_store_explicit(&b->last_failure_ns, now, RELAXED);
		if (r->success)
			count(b, PV_BC_SLOW_CALLS);
	} else {
		count(b, PV_BC_IGNORED);
	}
}

/* Records outcome `o` of a call made with `permit` that ended at `now`. */
static void record(pv_breaker *b, pv_breaker_permit permit, const pv_result *r,
		   pv_breaker_outcome o, uint64_t now)
{
	count_outcome(b, o, r, now);
	if (permit.kind == PV_PERMIT_PROBE) {
		record_probe(b, permit.generation, o, now);
		return;
	}
	uint64_t sg = atomic_load_explicit(&b->state_gen, memory_order_acquire);
	if (permit.kind != PV_PERMIT_NORMAL || (sg & 3) != PV_BREAKER_CLOSED ||
	    (sg >> 2) != permit.generation || o == PV_OUTCOME_IGNORED)
		return;
	if (o == PV_OUTCOME_SUCCESS) {
		window_put_success(b);
		if (atomic_load_explicit(&b->consecutive, RELAXED) != 0)
			atomic_store_explicit(&b->consecutive, 0, RELAXED);
		return;
	}
	window_put(b, SLOT_FAILURE);
	unsigned c = atomic_fetch_add_explicit(&b->consecutive, 1, RELAXED) + 1;
	if (c >= b->cfg.threshold || rate_tripped(b))
		trip(b, permit.generation, now);
}

void pv_breaker_record(pv_breaker *b, pv_breaker_permit permit, const pv_result *r,
		       uint64_t latency_ns, const pv_clock *clock)
{
	pv_breaker_outcome o = pv_breaker_classify(b, r, latency_ns);
	bool fast = o == PV_OUTCOME_SUCCESS && permit.kind == PV_PERMIT_NORMAL;
	record(b, permit, r, o, fast ? pv_clock_now_coarse(clock) : pv_clock_now(clock));
}

void pv_breaker_record_at(pv_breaker *b, pv_breaker_permit permit, const pv_result *r,
			  uint64_t latency_ns, uint64_t now)
{
	record(b, permit, r, pv_breaker_classify(b, r, latency_ns), now);
}

/* ---- metrics and persistence -------------------------------------------- */

/* Calls made through the breaker: every recorded outcome. */
static uint64_t total_of(pv_breaker *b)
{
	return pv_breaker_count(b, PV_BC_SUCCESSES) + pv_breaker_count(b, PV_BC_FAILURES) +
	       pv_breaker_count(b, PV_BC_IGNORED);
}

/* A monotonic instant as Unix seconds (the spec's time.time() values). */
static json_t *wall_seconds(uint64_t t, uint64_t now)
{
	if (t == 0)
		return json_null();
	double wall_ms = (double)pv_wall_ms();
	double delta_ms = t <= now ? -(double)(now - t) / 1e6 : (double)(t - now) / 1e6;
	return json_real((wall_ms + delta_ms) / 1e3);
}

static json_t *transitions_json(pv_breaker *b)
{
	json_t *t = json_object();
	for (int i = 0; i < PV_BT_COUNT; i++)
		json_object_set_new(t, transition_names[i],
				    json_integer((json_int_t)atomic_load(&b->transitions[i])));
	return t;
}

json_t *pv_breaker_metrics(pv_breaker *b, uint64_t now_ns)
{
	unsigned filled, failed;
	window_scan(b, &filled, &failed);
	pthread_mutex_lock(&b->lock);
	pv_breaker_state st = pv_breaker_get_state(b);
	uint64_t next = atomic_load_explicit(&b->next_attempt_ns, RELAXED);
	unsigned probes = b->probes_admitted, streak = b->reopen_streak;
	uint64_t period = b->open_period_ns;
	pthread_mutex_unlock(&b->lock);
	json_t *m = json_object();
	json_object_set_new(m, "state", json_string(pv_breaker_state_name(st)));
	json_object_set_new(m, "failure_count", json_integer(atomic_load(&b->consecutive)));
	json_object_set_new(m, "failure_rate",
			    filled ? json_real(100.0 * failed / filled) : json_null());
	json_object_set_new(m, "window_calls", json_integer(filled));
	json_object_set_new(m, "window_failures", json_integer(failed));
	json_object_set_new(m, "total_requests", json_integer((json_int_t)total_of(b)));
	json_object_set_new(m, "successful_requests",
			    json_integer((json_int_t)pv_breaker_count(b, PV_BC_SUCCESSES)));
	json_object_set_new(m, "failed_requests", json_integer((json_int_t)pv_breaker_count(b, PV_BC_FAILURES)));
	json_object_set_new(m, "slow_calls", json_integer((json_int_t)pv_breaker_count(b, PV_BC_SLOW_CALLS)));
	json_object_set_new(m, "ignored_requests", json_integer((json_int_t)pv_breaker_count(b, PV_BC_IGNORED)));
	json_object_set_new(m, "rejected_requests", json_integer((json_int_t)pv_breaker_count(b, PV_BC_REJECTED)));
	json_object_set_new(m, "last_failure_time", wall_seconds(atomic_load(&b->last_failure_ns), now_ns));
	json_object_set_new(m, "last_success_time", wall_seconds(atomic_load(&b->last_success_ns), now_ns));
	json_object_set_new(m, "next_attempt_time",
			    st == PV_BREAKER_OPEN ? wall_seconds(next, now_ns) : json_null());
	json_object_set_new(m, "times_opened", json_integer((json_int_t)atomic_load(&b->times_opened)));
	json_object_set_new(m, "transitions", transitions_json(b));
	json_object_set_new(m, "open_duration_seconds", json_real((double)period / 1e9));
	json_object_set_new(m, "reopen_streak", json_integer(streak));
	json_object_set_new(m, "half_open_probes_admitted",
			    json_integer(st == PV_BREAKER_HALF_OPEN ? probes : 0));
	return m;
}

/* The window oldest first, as a string of 'S' and 'F'. */
static json_t *window_string(pv_breaker *b)
{
	unsigned n = b->cfg.window_size;
	char *s = malloc(n + 1), *p = s;
	if (!s)
		return NULL;
	uint64_t pos = atomic_load(&b->window_pos);
	for (unsigned i = 0; i < n; i++) {
		unsigned char v = atomic_load(&b->window[(pos + i) % n]);
		if (v != SLOT_EMPTY)
			*p++ = v == SLOT_FAILURE ? 'F' : 'S';
	}
	*p = '\0';
	json_t *j = json_string(s);
	free(s);
	return j;
}

json_t *pv_breaker_save(pv_breaker *b, uint64_t now_ns)
{
	pthread_mutex_lock(&b->lock);
	pv_breaker_state st = pv_breaker_get_state(b);
	uint64_t next = atomic_load(&b->next_attempt_ns);
	json_t *j = json_pack(
		"{s:s, s:I, s:o*, s:I, s:f, s:f, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "state",
		pv_breaker_state_name(st), "consecutive_failures", (json_int_t)atomic_load(&b->consecutive),
		"window", window_string(b), "reopen_streak", (json_int_t)b->reopen_streak,
		"open_period_ms", (double)b->open_period_ns / 1e6, "open_remaining_ms",
		st == PV_BREAKER_OPEN && next > now_ns ? (double)(next - now_ns) / 1e6 : 0.0,
		"saved_at_ms", (json_int_t)pv_wall_ms(), "times_opened",
		(json_int_t)atomic_load(&b->times_opened), "total_requests", (json_int_t)total_of(b),
		"successful_requests", (json_int_t)pv_breaker_count(b, PV_BC_SUCCESSES), "failed_requests",
		(json_int_t)pv_breaker_count(b, PV_BC_FAILURES), "slow_calls", (json_int_t)pv_breaker_count(b, PV_BC_SLOW_CALLS),
		"ignored_requests", (json_int_t)pv_breaker_count(b, PV_BC_IGNORED), "rejected_requests",
		(json_int_t)pv_breaker_count(b, PV_BC_REJECTED));
	json_object_set_new(j, "transitions", transitions_json(b));
	pthread_mutex_unlock(&b->lock);
	return j;
}

static int load_error(const char *field, const char *why)
{
	return pv_error_set(PV_EINVAL, "breaker state: field '%s': %s", field, why);
}

/* A non-negative integer field; absent = 0. */
static int get_count(const json_t *j, const char *key, uint64_t *out)
{
	json_t *v = json_object_get(j, key);
	*out = 0;
	if (!v)
		return 0;
	if (!json_is_integer(v) || json_integer_value(v) < 0)
		return load_error(key, "must be an integer >= 0");
	*out = (uint64_t)json_integer_value(v);
	return 0;
}

/* A non-negative number of milliseconds as ns; absent = 0. */
static int get_ms(const json_t *j, const char *key, uint64_t *out)
{
	json_t *v = json_object_get(j, key);
	*out = 0;
	if (!v)
		return 0;
	double ms = json_number_value(v);
	if (!json_is_number(v) || !(ms >= 0 && ms < 1e12))
		return load_error(key, "must be a number of milliseconds from 0 to 1e12");
	*out = (uint64_t)(ms * 1e6);
	return 0;
}

typedef struct saved {
	pv_breaker_state state;
	const char *window;
	uint64_t consecutive, streak, period_ns, remaining_ns, saved_at_ms;
	uint64_t counters[6]; /* total_requests is derived, not loaded */
	uint64_t transitions[PV_BT_COUNT]; /* absent in states saved before they were counted */
} saved;

static const char *const counter_keys[6] = {
	"times_opened", "successful_requests", "failed_requests",
	"slow_calls",   "ignored_requests",    "rejected_requests",
};

static int parse_saved(const json_t *j, saved *s)
{
	int rc;
	memset(s, 0, sizeof *s);
	if (!json_is_object(j))
		return load_error("(root)", "must be a JSON object");
	json_t *st = json_object_get(j, "state");
	if (!json_is_string(st) || pv_breaker_state_parse(json_string_value(st), &s->state) < 0)
		return load_error("state", "must be one of closed, open, half_open");
	json_t *w = json_object_get(j, "window");
	s->window = w ? json_string_value(w) : "";
	if (!s->window || strspn(s->window, "SF") != strlen(s->window))
		return load_error("window", "must be a string of 'S' and 'F'");
	uint64_t saved_at = 0;
	if ((rc = get_count(j, "consecutive_failures", &s->consecutive)) < 0 ||
	    (rc = get_count(j, "reopen_streak", &s->streak)) < 0 ||
	    (rc = get_count(j, "saved_at_ms", &saved_at)) < 0 ||
	    (rc = get_ms(j, "open_period_ms", &s->period_ns)) < 0 ||
	    (rc = get_ms(j, "open_remaining_ms", &s->remaining_ns)) < 0)
		return rc;
	if (s->streak > 64)
		return load_error("reopen_streak", "must be an integer from 0 to 64");
	s->saved_at_ms = saved_at;
	for (int i = 0; i < 6; i++)
		if ((rc = get_count(j, counter_keys[i], &s->counters[i])) < 0)
			return rc;
	json_t *t = json_object_get(j, "transitions");
	if (t && !json_is_object(t))
		return load_error("transitions", "must be an object of counts by transition");
	for (int i = 0; t && i < PV_BT_COUNT; i++)
		if ((rc = get_count(t, transition_names[i], &s->transitions[i])) < 0)
			return rc;
	return 0;
}

static void apply_saved_locked(pv_breaker *b, const saved *s, uint64_t now)
{
	clear_window(b);
	size_t len = strlen(s->window), skip = len > b->cfg.window_size ? len - b->cfg.window_size : 0;
	for (size_t i = skip; i < len; i++)
		window_put(b, s->window[i] == 'F' ? SLOT_FAILURE : SLOT_SUCCESS);
	atomic_store(&b->consecutive, (unsigned)(s->consecutive > UINT32_MAX ? UINT32_MAX : s->consecutive));
	b->reopen_streak = (unsigned)s->streak;
	b->open_period_ns = s->period_ns ? s->period_ns : b->cfg.open_ns;
	atomic_store(&b->times_opened, s->counters[0]);
	static const pv_breaker_counter dst[5] = {PV_BC_SUCCESSES, PV_BC_FAILURES, PV_BC_SLOW_CALLS,
						  PV_BC_IGNORED, PV_BC_REJECTED};
	for (int i = 0; i < 5; i++)
		pv_counters_set(&b->counts, dst[i], s->counters[i + 1]);
	for (int i = 0; i < PV_BT_COUNT; i++)
		atomic_store(&b->transitions[i], s->transitions[i]);
	uint64_t remaining = 0;
	if (s->state == PV_BREAKER_OPEN) {
		/* The time that passed between save and load is wall time. */
		int64_t gone_ms = s->saved_at_ms ? pv_wall_ms() - (int64_t)s->saved_at_ms : 0;
		uint64_t gone_ns = gone_ms > 0 ? (uint64_t)gone_ms * PV_NS_PER_MS : 0;
		remaining = s->remaining_ns > gone_ns ? s->remaining_ns - gone_ns : 0;
	}
	atomic_store(&b->next_attempt_ns, now + remaining);
	b->probes_admitted = b->probes_succeeded = 0;
	set_state_locked(b, s->state == PV_BREAKER_CLOSED ? PV_BREAKER_CLOSED : PV_BREAKER_OPEN);
}

int pv_breaker_check_state(const json_t *state)
{
	saved s;
	return parse_saved(state, &s);
}

int pv_breaker_load(pv_breaker *b, const json_t *state, uint64_t now_ns)
{
	saved s;
	int rc = parse_saved(state, &s);
	if (rc < 0)
		return rc;
	pthread_mutex_lock(&b->lock);
	apply_saved_locked(b, &s, now_ns);
	pthread_mutex_unlock(&b->lock);
	return 0;
}
