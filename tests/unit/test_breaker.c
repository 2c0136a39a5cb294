/*
 * test_breaker.c - the circuit breaker, backoff and retry budget on their
 * own: tripping rules, open periods on a manual clock, half-open probes
 * under concurrency, stale outcomes, persistence.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <pthread.h>
#include <string.h>
#include <cmocka.h>
#include "core/breaker.h"
#include "core/retry.h"
#include "provisio/provisio.h"

#define S PV_NS_PER_S

static pv_breaker_config base_config(void)
{
	return (pv_breaker_config){
		.threshold = 3,
		.window_size = 100,
		.min_calls = 100,
		.failure_rate = 100,
		.open_ns = 10 * S,
		.max_open_ns = 100 * S,
		.jitter = 0,
		.half_open_probes = 1,
	};
}

/* A breaker that trips on the failure rate of a window of 10 (consecutive
 * failures set high enough not to). */
static pv_breaker_config rate_config(unsigned threshold, double rate)
{
	pv_breaker_config cfg = base_config();
	cfg.threshold = threshold;
	cfg.window_size = 10;
	cfg.min_calls = 10;
	cfg.failure_rate = rate;
	return cfg;
}

static pv_result make_result(const char *code, pv_error_class cls)
{
	pv_result r = PV_RESULT_INIT;
	if (code)
		pv_result_fail(&r, code, cls, NULL);
	else
		pv_result_ok(&r, NULL);
	return r;
}

/* One admitted call with the given outcome at `now`. */
static void call(pv_breaker *b, const pv_clock *clk, const char *code, pv_error_class cls,
		 uint64_t latency)
{
	pv_breaker_permit p = pv_breaker_admit(b, clk);
	assert_int_not_equal(p.kind, PV_PERMIT_REJECTED);
	pv_result r = make_result(code, cls);
	pv_breaker_record(b, p, &r, latency, clk);
	pv_result_clear(&r);
}

#define FAIL(b, clk) call(b, clk, "EXECUTION_ERROR", PV_CLASS_TRANSIENT, 0)
#define OK(b, clk) call(b, clk, NULL, PV_CLASS_NONE, 0)

static void test_trips_after_threshold_consecutive_failures(void **state)
{
	(void)state;
	pv_breaker b;
	pv_breaker_config cfg = base_config();
	assert_int_equal(pv_breaker_init(&b, &cfg, 1), 0);
	FAIL(&b, NULL);
	FAIL(&b, NULL);
	assert_int_equal(pv_breaker_get_state(&b), PV_BREAKER_CLOSED);
	FAIL(&b, NULL);
	assert_int_equal(pv_breaker_get_state(&b), PV_BREAKER_OPEN);
	assert_int_equal(atomic_load(&b.times_opened), 1);
	pv_breaker_destroy(&b);
}

/* On the system clock an open breaker rejects on the coarse clock while it
 * is surely open: never a probe before the open period ended, and one soon
 * after (the coarse clock may lag by a tick, more where ticks were lost).
 * Waits for that probe. */
static void test_open_breaker_on_the_system_clock_admits_when_the_period_ends(void **state)
{
	(void)state;
	pv_breaker b;
	pv_breaker_config cfg = base_config();
	cfg.threshold = 1;
	cfg.open_ns = 30 * PV_NS_PER_MS;
	assert_int_equal(pv_breaker_init(&b, &cfg, 1), 0);
	FAIL(&b, NULL);
	assert_int_equal(pv_breaker_get_state(&b), PV_BREAKER_OPEN);
	uint64_t end = atomic_load(&b.next_attempt_ns);
	uint64_t rejected = 0;
	for (;;) {
		pv_breaker_permit p = pv_breaker_admit(&b, NULL);
		if (p.kind != PV_PERMIT_REJECTED) {
			assert_int_equal(p.kind, PV_PERMIT_PROBE);
			assert_true(pv_now_ns() >= end);
			break;
		}
		rejected++;
	}
	assert_true(rejected > 0);
	assert_int_equal(pv_breaker_count(&b, PV_BC_REJECTED), rejected);
	pv_breaker_destroy(&b);
}

static json_int_t window_failures(pv_breaker *b)
{
	json_t *m = pv_breaker_metrics(b, pv_now_ns());
	assert_int_equal(json_integer_value(json_object_get(m, "window_calls")), b->cfg.window_size);
	json_int_t failed = json_integer_value(json_object_get(m, "window_failures"));
	json_decref(m);
	return failed;
}

/* A window full of successes is not written again (the healthy path stays
 * off its shared words), yet it always holds exactly the last N outcomes. */
static void test_window_holds_the_last_n_outcomes_through_healthy_runs(void **state)
{
	(void)state;
	pv_breaker b;
	pv_breaker_config cfg = rate_config(100, 30);
	assert_int_equal(pv_breaker_init(&b, &cfg, 1), 0);
	for (int i = 0; i < 1000; i++)
		OK(&b, NULL);
	assert_int_equal(window_failures(&b), 0);
	FAIL(&b, NULL);
	FAIL(&b, NULL);
	assert_int_equal(window_failures(&b), 2);
	for (int i = 0; i < 8; i++)
		OK(&b, NULL);
	assert_int_equal(window_failures(&b), 2); /* both still among the last 10 */
	OK(&b, NULL);
	assert_int_equal(window_failures(&b), 1);
	OK(&b, NULL);
	assert_int_equal(window_failures(&b), 0);
	for (int i = 0; i < 1000; i++)
		OK(&b, NULL);
	FAIL(&b, NULL);
	FAIL(&b, NULL);
	assert_int_equal(pv_breaker_get_state(&b), PV_BREAKER_CLOSED); /* 20 % */
	FAIL(&b, NULL);
	assert_int_equal(pv_breaker_get_state(&b), PV_BREAKER_OPEN); /* 30 % of the last 10 */
	assert_int_equal(pv_breaker_count(&b, PV_BC_SUCCESSES), 2010);
	pv_breaker_destroy(&b);
}

static void test_success_resets_consecutive_failures(void **state)
{
	(void)state;
	pv_breaker b;
	pv_breaker_config cfg = base_config();
	pv_breaker_init(&b, &cfg, 1);
	for (int i = 0; i < 10; i++) {
		FAIL(&b, NULL);
		FAIL(&b, NULL);
		OK(&b, NULL);
	}
	assert_int_equal(pv_breaker_get_state(&b), PV_BREAKER_CLOSED);
	pv_breaker_destroy(&b);
}

static void test_trips_on_failure_rate_only_after_min_calls(void **state)
{
	(void)state;
	pv_breaker b;
	pv_breaker_config cfg = rate_config(1000, 50);
	pv_breaker_init(&b, &cfg, 1);
	for (int i = 0; i < 4; i++) {
		OK(&b, NULL);
		FAIL(&b, NULL); /* 50 % but fewer than 10 calls */
	}
	OK(&b, NULL);
	assert_int_equal(pv_breaker_get_state(&b), PV_BREAKER_CLOSED);
	FAIL(&b, NULL); /* 10 calls, 5 failures */
	assert_int_equal(pv_breaker_get_state(&b), PV_BREAKER_OPEN);
	pv_breaker_destroy(&b);
}

static void test_window_slides_so_old_failures_stop_counting(void **state)
{
	(void)state;
	pv_breaker b;
	pv_breaker_config cfg = base_config();
	cfg.threshold = 1000;
	cfg.window_size = 10;
	cfg.min_calls = 10;
	cfg.failure_rate = 60;
	pv_breaker_init(&b, &cfg, 1);
	for (int i = 0; i < 5; i++)
		FAIL(&b, NULL);
	for (int i = 0; i < 10; i++)
		OK(&b, NULL); /* pushes the 5 failures out */
	for (int i = 0; i < 5; i++)
		FAIL(&b, NULL); /* 5 of 10 = 50 % < 60 % */
	assert_int_equal(pv_breaker_get_state(&b), PV_BREAKER_CLOSED);
	FAIL(&b, NULL); /* 6 of 10 */
	assert_int_equal(pv_breaker_get_state(&b), PV_BREAKER_OPEN);
	pv_breaker_destroy(&b);
}

static void test_throttle_capacity_permanent_are_neither_success_nor_failure(void **state)
{
	(void)state;
	pv_breaker b;
	pv_breaker_config cfg = base_config();
	cfg.threshold = 2;
	pv_breaker_init(&b, &cfg, 1);
	for (int i = 0; i < 50; i++) {
		call(&b, NULL, "THROTTLED", PV_CLASS_THROTTLED, 0);
		call(&b, NULL, "CAPACITY", PV_CLASS_CAPACITY, 0);
		call(&b, NULL, "INVALID_PARAMETERS", PV_CLASS_PERMANENT, 0);
	}
	assert_int_equal(pv_breaker_get_state(&b), PV_BREAKER_CLOSED);
	FAIL(&b, NULL);
	call(&b, NULL, "THROTTLED", PV_CLASS_THROTTLED, 0); /* does not reset the count either */
	FAIL(&b, NULL);
	assert_int_equal(pv_breaker_get_state(&b), PV_BREAKER_OPEN);
	json_t *m = pv_breaker_metrics(&b, 0);
	assert_int_equal(json_integer_value(json_object_get(m, "ignored_requests")), 151);
	assert_int_equal(json_integer_value(json_object_get(m, "failed_requests")), 2);
	json_decref(m);
	pv_breaker_destroy(&b);
}

static void test_slow_successes_count_as_failures(void **state)
{
	(void)state;
	pv_breaker b;
	pv_breaker_config cfg = base_config();
	cfg.slow_call_ns = 100 * PV_NS_PER_MS;
	pv_breaker_init(&b, &cfg, 1);
	call(&b, NULL, NULL, PV_CLASS_NONE, 99 * PV_NS_PER_MS);
	for (int i = 0; i < 3; i++)
		call(&b, NULL, NULL, PV_CLASS_NONE, 150 * PV_NS_PER_MS);
	assert_int_equal(pv_breaker_get_state(&b), PV_BREAKER_OPEN);
	assert_int_equal(pv_breaker_count(&b, PV_BC_SLOW_CALLS), 3);
	pv_breaker_destroy(&b);
}

static void trip(pv_breaker *b, const pv_clock *clk)
{
	for (unsigned i = 0; i < b->cfg.threshold; i++)
		FAIL(b, clk);
	assert_int_equal(pv_breaker_get_state(b), PV_BREAKER_OPEN);
}

/* The open period is exactly `period`: rejected 1 ns before, a probe at it. */
static void expect_open_for(pv_breaker *b, pv_manual_clock *mc, uint64_t period)
{
	const pv_clock *clk = pv_manual_clock_get(mc);
	pv_manual_clock_advance(mc, period - 1);
	assert_int_equal(pv_breaker_admit(b, clk).kind, PV_PERMIT_REJECTED);
	pv_manual_clock_advance(mc, 1);
	pv_breaker_permit p = pv_breaker_admit(b, clk);
	assert_int_equal(p.kind, PV_PERMIT_PROBE);
	assert_int_equal(pv_breaker_get_state(b), PV_BREAKER_HALF_OPEN);
	/* hand the probe back as inconclusive so the caller decides the next step */
	pv_result r = make_result("THROTTLED", PV_CLASS_THROTTLED);
	pv_breaker_record(b, p, &r, 0, clk);
	pv_result_clear(&r);
}

static void test_open_period_doubles_on_each_reopen_up_to_cap(void **state)
{
	(void)state;
	pv_manual_clock *mc = pv_manual_clock_new(1000);
	const pv_clock *clk = pv_manual_clock_get(mc);
	pv_breaker b;
	pv_breaker_config cfg = base_config();
	cfg.max_open_ns = 35 * S;
	pv_breaker_init(&b, &cfg, 1);
	trip(&b, clk);
	uint64_t want[] = {10 * S, 20 * S, 35 * S, 35 * S};
	for (int i = 0; i < 4; i++) {
		expect_open_for(&b, mc, want[i]);
		FAIL(&b, clk); /* the probe fails: open again, longer */
		assert_int_equal(pv_breaker_get_state(&b), PV_BREAKER_OPEN);
	}
	expect_open_for(&b, mc, 35 * S);
	OK(&b, clk); /* the probe succeeds: closed, streak forgotten */
	assert_int_equal(pv_breaker_get_state(&b), PV_BREAKER_CLOSED);
	trip(&b, clk);
	expect_open_for(&b, mc, 10 * S);
	assert_int_equal(atomic_load(&b.times_opened), 6);
	pv_breaker_destroy(&b);
	pv_manual_clock_free(mc);
}

static uint64_t first_open_period(uint64_t seed)
{
	pv_breaker b;
	pv_breaker_config cfg = base_config();
	cfg.jitter = 0.5;
	pv_breaker_init(&b, &cfg, seed);
	trip(&b, NULL);
	uint64_t p = b.open_period_ns;
	pv_breaker_destroy(&b);
	return p;
}

static void test_jitter_shortens_open_period_within_bounds_and_is_seeded(void **state)
{
	(void)state;
	bool differs = false;
	for (uint64_t seed = 1; seed <= 20; seed++) {
		uint64_t p = first_open_period(seed);
		assert_in_range(p, 5 * S, 10 * S);
		assert_int_equal(p, first_open_period(seed));
		differs |= p != first_open_period(1);
	}
	assert_true(differs);
}

static void test_probe_successes_close_and_one_failure_reopens(void **state)
{
	(void)state;
	pv_manual_clock *mc = pv_manual_clock_new(1);
	const pv_clock *clk = pv_manual_clock_get(mc);
	pv_breaker b;
	pv_breaker_config cfg = base_config();
	cfg.half_open_probes = 2;
	pv_breaker_init(&b, &cfg, 1);
	trip(&b, clk);
	pv_manual_clock_advance(mc, 10 * S);
	OK(&b, clk);
	assert_int_equal(pv_breaker_get_state(&b), PV_BREAKER_HALF_OPEN);
	OK(&b, clk);
	assert_int_equal(pv_breaker_get_state(&b), PV_BREAKER_CLOSED);

	trip(&b, clk);
	pv_manual_clock_advance(mc, 10 * S);
	OK(&b, clk);
	FAIL(&b, clk);
	assert_int_equal(pv_breaker_get_state(&b), PV_BREAKER_OPEN);
	pv_breaker_destroy(&b);
	pv_manual_clock_free(mc);
}

static void test_outcome_from_an_older_period_cannot_close_the_breaker(void **state)
{
	(void)state;
	pv_manual_clock *mc = pv_manual_clock_new(1);
	const pv_clock *clk = pv_manual_clock_get(mc);
	pv_breaker b;
	pv_breaker_config cfg = base_config();
	pv_breaker_init(&b, &cfg, 1);
	pv_breaker_permit early = pv_breaker_admit(&b, clk); /* a slow call starts */
	trip(&b, clk);
	pv_manual_clock_advance(mc, 10 * S);
	pv_breaker_permit probe = pv_breaker_admit(&b, clk);
	assert_int_equal(probe.kind, PV_PERMIT_PROBE);
	pv_result ok = make_result(NULL, PV_CLASS_NONE);
	pv_breaker_record(&b, early, &ok, 0, clk); /* the slow call ends */
	assert_int_equal(pv_breaker_get_state(&b), PV_BREAKER_HALF_OPEN);
	assert_int_equal(pv_breaker_admit(&b, clk).kind, PV_PERMIT_REJECTED);
	pv_breaker_record(&b, probe, &ok, 0, clk);
	assert_int_equal(pv_breaker_get_state(&b), PV_BREAKER_CLOSED);
	pv_result_clear(&ok);
	pv_breaker_destroy(&b);
	pv_manual_clock_free(mc);
}

enum { N_THREADS = 8, N_PROBES = 3 };

typedef struct race {
	pv_breaker *b;
	const pv_clock *clk;
	pthread_barrier_t start;
	atomic_int probes, rejected;
} race;

static void *admit_once(void *arg)
{
	race *r = arg;
	pthread_barrier_wait(&r->start);
	pv_breaker_permit p = pv_breaker_admit(r->b, r->clk);
	atomic_fetch_add(p.kind == PV_PERMIT_PROBE ? &r->probes : &r->rejected, 1);
	return NULL;
}

static void test_half_open_admits_exactly_n_probes_under_concurrency(void **state)
{
	(void)state;
	pv_manual_clock *mc = pv_manual_clock_new(1);
	for (int round = 0; round < 50; round++) {
		pv_breaker b;
		pv_breaker_config cfg = base_config();
		cfg.half_open_probes = N_PROBES;
		pv_breaker_init(&b, &cfg, 1);
		trip(&b, pv_manual_clock_get(mc));
		pv_manual_clock_advance(mc, 10 * S); /* due: the first admit turns it half-open */
		race r = {.b = &b, .clk = pv_manual_clock_get(mc)};
		pthread_barrier_init(&r.start, NULL, N_THREADS);
		pthread_t t[N_THREADS];
		for (int i = 0; i < N_THREADS; i++)
			pthread_create(&t[i], NULL, admit_once, &r);
		for (int i = 0; i < N_THREADS; i++)
			pthread_join(t[i], NULL);
		pthread_barrier_destroy(&r.start);
		assert_int_equal(atomic_load(&r.probes), N_PROBES);
		assert_int_equal(atomic_load(&r.rejected), N_THREADS - N_PROBES);
		assert_int_equal(pv_breaker_get_state(&b), PV_BREAKER_HALF_OPEN);
		pv_breaker_destroy(&b);
	}
	pv_manual_clock_free(mc);
}

static void test_save_and_load_keep_an_open_breaker_open(void **state)
{
	(void)state;
	pv_manual_clock *mc = pv_manual_clock_new(5 * S);
	const pv_clock *clk = pv_manual_clock_get(mc);
	pv_breaker a, b;
	pv_breaker_config cfg = base_config();
	pv_breaker_init(&a, &cfg, 1);
	OK(&a, clk);
	trip(&a, clk);
	pv_manual_clock_advance(mc, 4 * S); /* 6 s of 10 left */
	json_t *saved = pv_breaker_save(&a, pv_clock_now(clk));
	assert_string_equal(json_string_value(json_object_get(saved, "state")), "open");
	assert_string_equal(json_string_value(json_object_get(saved, "window")), "SFFF");

	pv_manual_clock *mc2 = pv_manual_clock_new(777 * S); /* "another process" */
	const pv_clock *clk2 = pv_manual_clock_get(mc2);
	pv_breaker_init(&b, &cfg, 2);
	assert_int_equal(pv_breaker_load(&b, saved, pv_clock_now(clk2)), 0);
	assert_int_equal(pv_breaker_get_state(&b), PV_BREAKER_OPEN);
	pv_manual_clock_advance(mc2, 5 * S);
	assert_int_equal(pv_breaker_admit(&b, clk2).kind, PV_PERMIT_REJECTED);
	pv_manual_clock_advance(mc2, 1 * S);
	assert_int_equal(pv_breaker_admit(&b, clk2).kind, PV_PERMIT_PROBE);
	json_t *m = pv_breaker_metrics(&b, pv_clock_now(clk2));
	assert_int_equal(json_integer_value(json_object_get(m, "times_opened")), 1);
	assert_int_equal(json_integer_value(json_object_get(m, "failed_requests")), 3);
	assert_int_equal(json_integer_value(json_object_get(m, "successful_requests")), 1);
	json_decref(m);
	json_decref(saved);
	pv_breaker_destroy(&a);
	pv_breaker_destroy(&b);
	pv_manual_clock_free(mc);
	pv_manual_clock_free(mc2);
}

static void test_load_rejects_bad_state_and_changes_nothing(void **state)
{
	(void)state;
	pv_breaker b;
	pv_breaker_config cfg = base_config();
	pv_breaker_init(&b, &cfg, 1);
	const char *bad[][2] = {
		{"{\"state\": \"ajar\"}", "state"},
		{"{\"state\": \"open\", \"window\": \"SXF\"}", "window"},
		{"{\"state\": \"open\", \"consecutive_failures\": -1}", "consecutive_failures"},
		{"{\"state\": \"open\", \"open_remaining_ms\": \"soon\"}", "open_remaining_ms"},
		{"[]", "root"},
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		json_t *j = json_loads(bad[i][0], 0, NULL);
		assert_int_equal(pv_breaker_load(&b, j, 0), PV_EINVAL);
		assert_non_null(strstr(pv_error_last(), bad[i][1]));
		assert_int_equal(pv_breaker_get_state(&b), PV_BREAKER_CLOSED);
		json_decref(j);
	}
	pv_breaker_destroy(&b);
}

static void test_full_jitter_backoff_stays_under_growing_capped_ceiling(void **state)
{
	(void)state;
	pv_rng rng;
	pv_rng_seed(&rng, 9);
	for (unsigned attempt = 0; attempt < 8; attempt++) {
		uint64_t ceiling = (1ull << attempt) * S;
		if (ceiling > 20 * S)
			ceiling = 20 * S;
		uint64_t max_seen = 0;
		for (int i = 0; i < 2000; i++) {
			uint64_t d = pv_backoff_full_jitter(&rng, 1 * S, 20 * S, attempt);
			assert_true(d <= ceiling);
			if (d > max_seen)
				max_seen = d;
		}
		assert_true(max_seen > ceiling / 10 * 9); /* the whole range is used */
	}
	assert_int_equal(pv_backoff_full_jitter(&rng, 0, 20 * S, 3), 0);
}

static void test_retry_budget_allows_ratio_of_recent_calls_plus_floor(void **state)
{
	(void)state;
	pv_retry_budget b;
	pv_retry_budget_init(&b, 0.2, 0, 10 * S);
	uint64_t now = 100 * S;
	for (int i = 0; i < 100; i++)
		pv_retry_budget_deposit(&b, now);
	int granted = 0;
	while (pv_retry_budget_withdraw(&b, now) && granted < 1000)
		granted++;
	assert_int_equal(granted, 20);
	now += 10 * S; /* the window has passed: the old calls no longer count */
	assert_false(pv_retry_budget_withdraw(&b, now));
	pv_retry_budget_destroy(&b);

	pv_retry_budget_init(&b, 0.2, 1.0, 10 * S); /* floor: 1/s over 10 s */
	granted = 0;
	while (pv_retry_budget_withdraw(&b, now) && granted < 1000)
		granted++;
	assert_int_equal(granted, 10);
	pv_retry_budget_destroy(&b);
}

static json_int_t transitions(pv_breaker *b, const char *name)
{
	json_t *m = pv_breaker_metrics(b, 0);
	json_int_t n = json_integer_value(json_object_get(json_object_get(m, "transitions"), name));
	json_decref(m);
	return n;
}

static void test_every_transition_is_counted_once(void **state)
{
	(void)state;
	pv_manual_clock *mc = pv_manual_clock_new(1);
	const pv_clock *clk = pv_manual_clock_get(mc);
	pv_breaker b;
	pv_breaker_config cfg = base_config();
	pv_breaker_init(&b, &cfg, 1);
	assert_int_equal(transitions(&b, "closed_to_open"), 0);
	trip(&b, clk);                            /* closed -> open */
	pv_manual_clock_advance(mc, 10 * S);
	FAIL(&b, clk);                            /* open -> half_open -> open */
	pv_manual_clock_advance(mc, 20 * S);
	OK(&b, clk);                              /* open -> half_open -> closed */
	assert_int_equal(pv_breaker_get_state(&b), PV_BREAKER_CLOSED);
	assert_int_equal(transitions(&b, "closed_to_open"), 1);
	assert_int_equal(transitions(&b, "open_to_half_open"), 2);
	assert_int_equal(transitions(&b, "half_open_to_open"), 1);
	assert_int_equal(transitions(&b, "half_open_to_closed"), 1);
	/* they survive a save and load, which is not a transition itself */
	json_t *saved = pv_breaker_save(&b, pv_clock_now(clk));
	pv_breaker c;
	pv_breaker_init(&c, &cfg, 2);
	assert_int_equal(pv_breaker_load(&c, saved, pv_clock_now(clk)), 0);
	assert_int_equal(transitions(&c, "closed_to_open"), 1);
	assert_int_equal(transitions(&c, "open_to_half_open"), 2);
	json_object_set_new(saved, "transitions", json_pack("{s:i}", "closed_to_open", -1));
	assert_int_equal(pv_breaker_load(&c, saved, pv_clock_now(clk)), PV_EINVAL);
	assert_non_null(strstr(pv_error_last(), "closed_to_open"));
	json_decref(saved);
	pv_breaker_destroy(&c);
	pv_breaker_destroy(&b);
	pv_manual_clock_free(mc);
}

static void test_transition_names_round_trip(void **state)
{
	(void)state;
	for (int i = 0; i < PV_BT_COUNT; i++) {
		pv_breaker_transition t;
		assert_int_equal(pv_breaker_transition_parse(pv_breaker_transition_name((pv_breaker_transition)i), &t), 0);
		assert_int_equal(t, i);
		assert_int_not_equal(pv_breaker_transition_from(t), pv_breaker_transition_to(t));
	}
	pv_breaker_transition t;
	assert_int_equal(pv_breaker_transition_parse("open_to_closed", &t), PV_EINVAL);
	assert_non_null(strstr(pv_error_last(), "half_open_to_open"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_trips_after_threshold_consecutive_failures),
		cmocka_unit_test(test_open_breaker_on_the_system_clock_admits_when_the_period_ends),
		cmocka_unit_test(test_window_holds_the_last_n_outcomes_through_healthy_runs),
		cmocka_unit_test(test_success_resets_consecutive_failures),
		cmocka_unit_test(test_trips_on_failure_rate_only_after_min_calls),
		cmocka_unit_test(test_window_slides_so_old_failures_stop_counting),
		cmocka_unit_test(test_throttle_capacity_permanent_are_neither_success_nor_failure),
		cmocka_unit_test(test_slow_successes_count_as_failures),
		cmocka_unit_test(test_open_period_doubles_on_each_reopen_up_to_cap),
		cmocka_unit_test(test_jitter_shortens_open_period_within_bounds_and_is_seeded),
		cmocka_unit_test(test_probe_successes_close_and_one_failure_reopens),
		cmocka_unit_test(test_outcome_from_an_older_period_cannot_close_the_breaker),
		cmocka_unit_test(test_half_open_admits_exactly_n_probes_under_concurrency),
		cmocka_unit_test(test_save_and_load_keep_an_open_breaker_open),
		cmocka_unit_test(test_load_rejects_bad_state_and_changes_nothing),
		cmocka_unit_test(test_full_jitter_backoff_stays_under_growing_capped_ceiling),
		cmocka_unit_test(test_retry_budget_allows_ratio_of_recent_calls_plus_floor),
		cmocka_unit_test(test_every_transition_is_counted_once),
		cmocka_unit_test(test_transition_names_round_trip),
	};
	return cmocka_run_group_tests_name("breaker", tests, NULL, NULL);
}
