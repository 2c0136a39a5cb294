/*
 * test_fallback.c - the fallback strategy end to end over sim providers and
 * a manual clock: every mode, breakers inside the strategy, retries and the
 * retry budget, deadlines, degradation, persistence, configuration.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>
#include "core/retry.h"
#include "provisio/fallback.h"
#include "provisio/provisio.h"
#include "wait.h"

#define S PV_NS_PER_S

static pv_strategy *sim(const char *name, const char *json, const pv_clock *clock)
{
	json_t *cfg = json ? json_loads(json, 0, NULL) : NULL;
	assert_true(!json || cfg);
	pv_strategy *s = NULL;
	assert_int_equal(pv_sim_new(&s, name, cfg, clock), 0);
	json_decref(cfg);
	return s;
}

static pv_fallback_config config(const char *json)
{
	pv_fallback_config cfg;
	json_t *j = json_loads(json, 0, NULL);
	assert_non_null(j);
	assert_int_equal(pv_fallback_config_from_json(j, &cfg), 0);
	json_decref(j);
	return cfg;
}

/* A fallback over `n` children (it takes their references). */
static pv_strategy *fallback(const char *cfg_json, pv_strategy **kids, size_t n, const pv_clock *clk)
{
	pv_fallback_config cfg = config(cfg_json);
	pv_strategy *f = NULL;
	assert_int_equal(pv_fallback_new(&f, "fb", kids[0], kids + 1, n - 1, &cfg, clk), 0);
	for (size_t i = 0; i < n; i++)
		pv_strategy_unref(kids[i]);
	assert_int_equal(pv_strategy_initialize(f), 0);
	return f;
}

static void run(pv_strategy *f, pv_op_type type, pv_result *r, const pv_clock *clk)
{
	pv_operation op = {.type = type};
	pv_strategy_execute(f, &op, r, clk);
}

static json_t *meta(pv_result *r, const char *path1, const char *path2)
{
	json_t *v = json_object_get(pv_result_meta(r), path1);
	return path2 && v ? json_object_get(v, path2) : v;
}

static const char *meta_str(pv_result *r, const char *a, const char *b)
{
	return json_string_value(meta(r, a, b));
}

static const char *breaker_state(pv_strategy *f, const char *name)
{
	static char buf[32];
	json_t *m = pv_fallback_circuit_metrics(f);
	json_t *st = json_object_get(json_object_get(json_object_get(m, "strategies"), name), "state");
	snprintf(buf, sizeof buf, "%s", json_string_value(st));
	json_decref(m);
	return buf;
}

/* ---- immediate ------------------------------------------------------------ */

static void test_immediate_healthy_primary_answers_without_metadata(void **state)
{
	(void)state;
	pv_strategy *k[] = {sim("a", NULL, NULL), sim("b", NULL, NULL)};
	pv_strategy *b = k[1];
	pv_strategy_ref(b);
	pv_strategy *f = fallback("{\"mode\": \"immediate\"}", k, 2, NULL);
	pv_result r = PV_RESULT_INIT;
	run(f, PV_OP_HEALTH_CHECK, &r, NULL);
	assert_true(r.success);
	assert_string_equal(r.provider, "a");
	assert_int_equal(r.attempts, 1);
	assert_null(pv_result_meta(&r)); /* the fast path allocates nothing */
	assert_int_equal(pv_sim_calls(b, PV_OP_COUNT), 0);
	pv_result_clear(&r);
	pv_strategy_unref(b);
	pv_strategy_unref(f);
}

static void test_immediate_falls_back_in_order_and_first_success_wins(void **state)
{
	(void)state;
	pv_strategy *k[] = {sim("a", "{\"script\": [\"fail\"]}", NULL),
			    sim("b", "{\"script\": [\"fail:CAPACITY:capacity\"]}", NULL),
			    sim("c", NULL, NULL), sim("d", NULL, NULL)};
	pv_strategy *d = pv_strategy_ref(k[3]);
	pv_strategy *f = fallback("{\"mode\": \"immediate\"}", k, 4, NULL);
	pv_result r = PV_RESULT_INIT;
	run(f, PV_OP_CREATE_INSTANCES, &r, NULL);
	assert_true(r.success);
	assert_string_equal(r.provider, "c"); /* the leaf that answered */
	assert_int_equal(r.attempts, 3);
	assert_string_equal(meta_str(&r, "fallback", "answered_by"), "c");
	assert_true(json_is_true(meta(&r, "fallback", "fallback_used")));
	json_t *errors = meta(&r, "fallback", "errors");
	assert_int_equal(json_array_size(errors), 2);
	assert_string_equal(json_string_value(json_object_get(json_array_get(errors, 0), "strategy")), "a");
	assert_string_equal(json_string_value(json_object_get(json_array_get(errors, 1), "error_code")),
			    "CAPACITY");
	assert_int_equal(pv_sim_calls(d, PV_OP_COUNT), 0);
	pv_result_clear(&r);
	pv_strategy_unref(d);
	pv_strategy_unref(f);
}

/* The whole metadata of an answer from the second strategy: built only when
 * read, and exactly what it says (the spec's keys included). */
static void test_fallback_answer_explains_itself_when_read(void **state)
{
	(void)state;
	pv_manual_clock *mc = pv_manual_clock_new(S);
	const pv_clock *clk = pv_manual_clock_get(mc);
	pv_strategy *k[] = {sim("a", "{\"script\": [\"fail:THROTTLED\"]}", clk), sim("b", NULL, clk)};
	pv_strategy *f = fallback("{\"mode\": \"immediate\"}", k, 2, clk);
	pv_result r = PV_RESULT_INIT;
	run(f, PV_OP_HEALTH_CHECK, &r, clk);
	assert_true(r.success);
	assert_true(pv_result_has_meta(&r));
	assert_null(r.priv.meta); /* deferred: nothing built yet */
	json_t *want = json_pack(
		"{s:{s:s, s:s, s:s, s:b, s:i, s:i, s:[{s:s, s:s, s:s, s:s, s:i, s:b, s:s}]},"
		" s:s, s:s, s:f, s:i}",
		"fallback", "strategy", "fb", "mode", "immediate", "answered_by", "b", "fallback_used", 1,
		"attempts", 2, "retries", 0, "errors", "strategy", "a", "error_code", "THROTTLED",
		"error_class", "throttled", "message", "sim 'a': injected failure THROTTLED", "attempts", 1,
		"skipped", 0, "provider", "a", "strategy", "fb", "provider", "b", "latency_ms", 0.0,
		"attempts", 2);
	json_t *got = pv_result_metadata(&r);
	if (!json_equal(got, want)) {
		char *text = json_dumps(got, JSON_SORT_KEYS);
		fail_msg("metadata: %s", text);
	}
	json_decref(got);
	assert_null(r.priv.meta); /* a const reader leaves it deferred */
	assert_string_equal(meta_str(&r, "fallback", "answered_by"), "b"); /* now built */
	assert_non_null(r.priv.meta);
	json_decref(want);
	pv_result_clear(&r);
	pv_strategy_unref(f);
	pv_manual_clock_free(mc);
}

/* The kernel does not time a fallback (PV_STRATEGY_TIMED_BY_CHILD): an
 * answer has its child's latency, a failure of its own the time its calls
 * and backoff took. */
static void test_latency_is_the_childs_or_the_calls_and_backoff(void **state)
{
	(void)state;
	pv_manual_clock *mc = pv_manual_clock_new(S);
	const pv_clock *clk = pv_manual_clock_get(mc);
	pv_strategy *k[] = {sim("a", "{\"latency\": {\"mean_ms\": 1000}, \"script\": [\"fail*2\"]}", clk),
			    sim("b", "{\"latency\": {\"mean_ms\": 3000}, \"script\": [\"fail\"]}", clk)};
	pv_strategy *f = fallback("{\"mode\": \"retry_then_fallback\", \"max_retries\": 1, "
				  "\"retry_delay_seconds\": 2, \"retry_max_delay_seconds\": 2, "
				  "\"retry_budget_min_retries_per_second\": 100}",
				  k, 2, clk);
	pv_result r = PV_RESULT_INIT;
	run(f, PV_OP_HEALTH_CHECK, &r, clk); /* a, backoff, a, b: all fail */
	assert_false(r.success);
	uint64_t slept = pv_manual_clock_slept(mc);
	assert_true(slept > 5 * S && slept <= 7 * S); /* 1 + 3 of calls, up to 2 of backoff */
	assert_int_equal(r.latency_ns, slept);
	pv_result_clear(&r);
	run(f, PV_OP_HEALTH_CHECK, &r, clk); /* a answers now */
	assert_true(r.success);
	assert_int_equal(r.latency_ns, 1 * S);
	pv_result_clear(&r);
	pv_strategy_unref(f);
	pv_manual_clock_free(mc);
}

/* ---- retry_then_fallback ---------------------------------------------------- */

static void test_retry_backoff_is_full_jitter_with_cap_on_the_clock(void **state)
{
	(void)state;
	pv_manual_clock *mc = pv_manual_clock_new(S);
	const pv_clock *clk = pv_manual_clock_get(mc);
	pv_strategy *k[] = {sim("a", "{\"script\": [\"fail*5\"]}", clk), sim("b", NULL, clk)};
	pv_strategy *f = fallback("{\"mode\": \"retry_then_fallback\", \"max_retries\": 5, "
				  "\"retry_delay_seconds\": 1, \"retry_max_delay_seconds\": 4, \"retry_jitter\": \"full\", "
				  "\"retry_budget_min_retries_per_second\": 100, \"seed\": 42}",
				  k, 2, clk);
	pv_result r = PV_RESULT_INIT;
	run(f, PV_OP_HEALTH_CHECK, &r, clk);
	assert_true(r.success);
	assert_string_equal(r.provider, "a");
	assert_int_equal(r.attempts, 6);
	assert_int_equal(json_integer_value(meta(&r, "fallback", "retries")), 5);
	/* the same seeded generator gives the exact delays: 0..1, 0..2, 0..4, 0..4, 0..4 s */
	pv_rng rng;
	pv_rng_seed(&rng, 42);
	uint64_t want = 0;
	for (unsigned i = 0; i < 5; i++) {
		uint64_t d = pv_backoff_full_jitter(&rng, S, 4 * S, i);
		assert_true(d <= (i < 2 ? (1ull << i) * S : 4 * S));
		want += d;
	}
	assert_int_equal(pv_manual_clock_slept(mc), want);
	pv_result_clear(&r);
	pv_strategy_unref(f);
	pv_manual_clock_free(mc);
}

/* How long retry_then_fallback slept before giving the call to the
 * fallback: retry_delay_seconds 0.1, max_retries 2, a primary that always
 * fails, with `jitter` ("" = the default) and `seed`. */
static uint64_t slept_before_fallback(const char *jitter, uint64_t seed)
{
	pv_manual_clock *mc = pv_manual_clock_new(S);
	const pv_clock *clk = pv_manual_clock_get(mc);
	pv_strategy *k[] = {sim("a", "{\"script\": [\"fail*3\"]}", clk), sim("b", NULL, clk)};
	char cfg[512];
	snprintf(cfg, sizeof cfg,
		 "{\"mode\": \"retry_then_fallback\", \"max_retries\": 2, \"retry_delay_seconds\": 0.1, "
		 "\"retry_budget_min_retries_per_second\": 100, \"seed\": %llu%s%s%s}",
		 (unsigned long long)seed, *jitter ? ", \"retry_jitter\": \"" : "", jitter, *jitter ? "\"" : "");
	pv_strategy *f = fallback(cfg, k, 2, clk);
	pv_result r = PV_RESULT_INIT;
	run(f, PV_OP_HEALTH_CHECK, &r, clk);
	assert_true(r.success);
	assert_string_equal(r.provider, "b");
	assert_int_equal(json_integer_value(meta(&r, "fallback", "retries")), 2);
	uint64_t slept = pv_manual_clock_slept(mc);
	pv_result_clear(&r);
	pv_strategy_unref(f);
	pv_manual_clock_free(mc);
	return slept;
}

/* The configured delay is honoured: by default (equal jitter) each wait is
 * at least half of its backoff step, so two retries from 0.1 s wait at least
 * 0.05 + 0.1 s, never the 80 ms full jitter allowed, and still vary; "none"
 * waits exactly 0.1 + 0.2 s; "full" may wait next to nothing. */
static void test_retry_delay_honours_the_configured_delay(void **state)
{
	(void)state;
	uint64_t lo = UINT64_MAX, hi = 0, full_lo = UINT64_MAX;
	for (uint64_t seed = 1; seed <= 200; seed++) {
		uint64_t t = slept_before_fallback("", seed);
		lo = t < lo ? t : lo;
		hi = t > hi ? t : hi;
		uint64_t f = slept_before_fallback("full", seed);
		full_lo = f < full_lo ? f : full_lo;
	}
	assert_true(lo >= 150 * PV_NS_PER_MS);
	assert_true(hi <= 300 * PV_NS_PER_MS);
	assert_true(hi - lo > 50 * PV_NS_PER_MS); /* still jittered */
	assert_true(full_lo < 100 * PV_NS_PER_MS);
	assert_int_equal(slept_before_fallback("none", 1), 300 * PV_NS_PER_MS);
	assert_int_equal(slept_before_fallback("equal", 7), slept_before_fallback("", 7));

	pv_fallback_config c;
	json_t *j = json_loads("{\"retry_jitter\": \"half\"}", 0, NULL);
	assert_int_equal(pv_fallback_config_from_json(j, &c), PV_EINVAL);
	assert_non_null(strstr(pv_error_last(), "field 'retry_jitter': retry jitter 'half' is not one of equal, full, none"));
	json_decref(j);
	pv_fallback_config_default(&c);
	assert_int_equal(c.retry_jitter, PV_JITTER_EQUAL);
	json_t *out = pv_fallback_config_to_json(&c);
	assert_string_equal(json_string_value(json_object_get(out, "retry_jitter")), "equal");
	json_decref(out);
}

static void test_retry_only_for_transient_and_throttled_classes(void **state)
{
	(void)state;
	const char *cases[][2] = {
		{"fail:INVALID_PARAMETERS", "1"}, {"fail:CAPACITY:capacity", "1"},
		{"fail:THROTTLED", "3"},          {"fail:EXECUTION_ERROR", "3"},
	};
	for (size_t i = 0; i < 4; i++) {
		pv_manual_clock *mc = pv_manual_clock_new(S);
		const pv_clock *clk = pv_manual_clock_get(mc);
		char script[96];
		snprintf(script, sizeof script, "{\"script\": [\"%s*10\"]}", cases[i][0]);
		pv_strategy *k[] = {sim("a", script, clk), sim("b", NULL, clk)};
		pv_strategy *a = pv_strategy_ref(k[0]);
		pv_strategy *f = fallback("{\"mode\": \"retry_then_fallback\", \"max_retries\": 2, "
					  "\"retry_budget_min_retries_per_second\": 100}",
					  k, 2, clk);
		pv_result r = PV_RESULT_INIT;
		run(f, PV_OP_HEALTH_CHECK, &r, clk);
		assert_true(r.success);
		assert_string_equal(r.provider, "b");
		assert_int_equal(pv_sim_calls(a, PV_OP_COUNT), cases[i][1][0] - '0');
		pv_result_clear(&r);
		pv_strategy_unref(a);
		pv_strategy_unref(f);
		pv_manual_clock_free(mc);
	}
}

static void test_retry_never_sleeps_past_the_deadline(void **state)
{
	(void)state;
	pv_manual_clock *mc = pv_manual_clock_new(S);
	const pv_clock *clk = pv_manual_clock_get(mc);
	pv_strategy *k[] = {sim("a", "{\"failure_rate\": 1, \"latency\": {\"mean_ms\": 1000}}", clk),
			    sim("b", NULL, clk)};
	pv_strategy *f = fallback("{\"mode\": \"retry_then_fallback\", \"max_retries\": 3, "
				  "\"retry_delay_seconds\": 100, \"retry_max_delay_seconds\": 100, "
				  "\"retry_budget_min_retries_per_second\": 100, \"seed\": 7}",
				  k, 2, clk);
	pv_operation op = {.type = PV_OP_HEALTH_CHECK, .deadline_ns = pv_clock_now(clk) + 2 * S};
	pv_result r = PV_RESULT_INIT;
	pv_strategy_execute(f, &op, &r, clk);
	assert_true(pv_clock_now(clk) <= op.deadline_ns);
	assert_true(r.success); /* the fallback got the time the retry would have slept */
	assert_string_equal(r.provider, "b");
	assert_string_equal(meta_str(&r, "fallback", "retry_stopped"), "deadline");
	assert_int_equal(pv_manual_clock_slept(mc), 1 * S); /* only the primary's own latency */
	pv_result_clear(&r);
	pv_strategy_unref(f);
	pv_manual_clock_free(mc);
}

static uint64_t primary_calls_for_100_ops(const char *budget_json)
{
	char cfg[256];
	snprintf(cfg, sizeof cfg,
		 "{\"mode\": \"retry_then_fallback\", \"max_retries\": 3, "
		 "\"retry_delay_seconds\": 0, %s}",
		 budget_json);
	pv_manual_clock *mc = pv_manual_clock_new(S);
	const pv_clock *clk = pv_manual_clock_get(mc);
	pv_strategy *k[] = {sim("a", "{\"failure_rate\": 1}", clk), sim("b", NULL, clk)};
	pv_strategy *a = pv_strategy_ref(k[0]);
	pv_strategy *f = fallback(cfg, k, 2, clk);
	for (int i = 0; i < 100; i++) {
		pv_result r = PV_RESULT_INIT;
		run(f, PV_OP_HEALTH_CHECK, &r, clk);
		assert_true(r.success);
		pv_result_clear(&r);
	}
	uint64_t calls = pv_sim_calls(a, PV_OP_COUNT);
	json_t *st = pv_strategy_stats(f);
	/* every call beyond the first of each op is a retry the budget granted */
	assert_int_equal(json_integer_value(json_object_get(st, "retries")), calls - 100);
	if (calls < 400)
		assert_true(json_integer_value(json_object_get(st, "retries_denied_by_budget")) > 0);
	json_decref(st);
	pv_strategy_unref(a);
	pv_strategy_unref(f);
	pv_manual_clock_free(mc);
	return calls;
}

static void test_retry_budget_caps_load_amplification(void **state)
{
	(void)state;
	/* without a budget: every op makes 1 + 3 calls */
	assert_int_equal(primary_calls_for_100_ops("\"retry_budget_min_retries_per_second\": 1000000"), 400);
	/* 20 % budget, no floor: 100 first calls + 20 retries */
	assert_int_equal(primary_calls_for_100_ops("\"retry_budget_ratio\": 0.2, "
						   "\"retry_budget_min_retries_per_second\": 0"),
			 120);
}

/* ---- circuit_breaker ---------------------------------------------------------- */

static void test_breaker_opens_on_consecutive_failures_and_skips_primary(void **state)
{
	(void)state;
	pv_manual_clock *mc = pv_manual_clock_new(S);
	const pv_clock *clk = pv_manual_clock_get(mc);
	pv_strategy *k[] = {sim("a", "{\"failure_rate\": 1}", clk), sim("b", NULL, clk)};
	pv_strategy *a = pv_strategy_ref(k[0]);
	pv_strategy *f = fallback("{\"mode\": \"circuit_breaker\", \"circuit_breaker_threshold\": 3}", k, 2, clk);
	pv_result r = PV_RESULT_INIT;
	for (int i = 0; i < 3; i++) {
		run(f, PV_OP_HEALTH_CHECK, &r, clk);
		assert_string_equal(r.provider, "b");
		pv_result_clear(&r);
	}
	assert_string_equal(breaker_state(f, "a"), "open");
	run(f, PV_OP_HEALTH_CHECK, &r, clk);
	assert_true(r.success);
	assert_string_equal(r.provider, "b");
	assert_int_equal(pv_sim_calls(a, PV_OP_COUNT), 3); /* not called while open */
	json_t *e0 = json_array_get(meta(&r, "fallback", "errors"), 0);
	assert_string_equal(json_string_value(json_object_get(e0, "error_code")), "CIRCUIT_OPEN");
	assert_true(json_is_true(json_object_get(e0, "skipped")));
	pv_result_clear(&r);
	json_t *m = pv_fallback_circuit_metrics(f);
	assert_string_equal(json_string_value(json_object_get(m, "state")), "open");
	assert_int_equal(json_integer_value(json_object_get(m, "times_opened")), 1);
	assert_int_equal(json_integer_value(json_object_get(m, "failure_count")), 3);
	assert_int_equal(json_integer_value(json_object_get(m, "rejected_requests")), 1);
	assert_true(json_is_real(json_object_get(m, "next_attempt_time")));
	json_decref(m);
	json_t *st = pv_strategy_stats(f); /* the fallback's count is its breakers' */
	assert_int_equal(json_integer_value(json_object_get(st, "circuit_rejections")), 1);
	json_decref(st);
	pv_strategy_unref(a);
	pv_strategy_unref(f);
	pv_manual_clock_free(mc);
}

static void test_breaker_opens_on_failure_rate_of_the_window(void **state)
{
	(void)state;
	pv_manual_clock *mc = pv_manual_clock_new(S);
	const pv_clock *clk = pv_manual_clock_get(mc);
	pv_strategy *k[] = {sim("a", "{\"script\": [\"ok\", \"fail\", \"ok\", \"fail\", \"ok\", \"fail\", "
				     "\"ok\", \"fail\", \"ok\", \"fail\"]}", clk),
			    sim("b", NULL, clk)};
	pv_strategy *f = fallback("{\"mode\": \"circuit_breaker\", \"circuit_breaker_threshold\": 100, "
				  "\"circuit_breaker_window_size\": 10, \"circuit_breaker_min_calls\": 10, "
				  "\"circuit_breaker_failure_rate_threshold\": 50}",
				  k, 2, clk);
	for (int i = 0; i < 10; i++) {
		assert_string_equal(breaker_state(f, "a"), "closed");
		pv_result r = PV_RESULT_INIT;
		run(f, PV_OP_HEALTH_CHECK, &r, clk);
		assert_true(r.success);
		pv_result_clear(&r);
	}
	assert_string_equal(breaker_state(f, "a"), "open");
	json_t *m = pv_fallback_circuit_metrics(f);
	assert_true(json_real_value(json_object_get(m, "failure_rate")) == 50.0);
	json_decref(m);
	pv_strategy_unref(f);
	pv_manual_clock_free(mc);
}

static void test_breaker_reopens_longer_after_failed_probe_and_closes_after_success(void **state)
{
	(void)state;
	pv_manual_clock *mc = pv_manual_clock_new(S);
	const pv_clock *clk = pv_manual_clock_get(mc);
	pv_strategy *k[] = {sim("a", "{\"script\": [\"fail*3\"]}", clk), sim("b", NULL, clk)};
	pv_strategy *a = pv_strategy_ref(k[0]);
	pv_strategy *f = fallback("{\"mode\": \"circuit_breaker\", \"circuit_breaker_threshold\": 2, "
				  "\"circuit_breaker_timeout_seconds\": 10, \"circuit_breaker_jitter\": 0}",
				  k, 2, clk);
	pv_result r = PV_RESULT_INIT;
	for (int i = 0; i < 2; i++, pv_result_clear(&r))
		run(f, PV_OP_HEALTH_CHECK, &r, clk);
	assert_string_equal(breaker_state(f, "a"), "open");
	pv_manual_clock_advance(mc, 10 * S);
	run(f, PV_OP_HEALTH_CHECK, &r, clk); /* the probe fails (3rd scripted failure) */
	assert_string_equal(r.provider, "b");
	assert_string_equal(meta_str(&r, "fallback", "circuit_state"), "closed"); /* b's breaker */
	pv_result_clear(&r);
	assert_string_equal(breaker_state(f, "a"), "open");
	assert_int_equal(pv_sim_calls(a, PV_OP_COUNT), 3);
	pv_manual_clock_advance(mc, 19 * S); /* now open for 20 s */
	run(f, PV_OP_HEALTH_CHECK, &r, clk);
	pv_result_clear(&r);
	assert_int_equal(pv_sim_calls(a, PV_OP_COUNT), 3);
	pv_manual_clock_advance(mc, 1 * S);
	run(f, PV_OP_HEALTH_CHECK, &r, clk); /* the probe succeeds */
	assert_string_equal(r.provider, "a");
	pv_result_clear(&r);
	assert_string_equal(breaker_state(f, "a"), "closed");
	pv_strategy_unref(a);
	pv_strategy_unref(f);
	pv_manual_clock_free(mc);
}

static void test_throttles_fall_back_but_do_not_trip_the_breaker(void **state)
{
	(void)state;
	pv_manual_clock *mc = pv_manual_clock_new(S);
	const pv_clock *clk = pv_manual_clock_get(mc);
	pv_strategy *k[] = {sim("a", "{\"script\": [\"fail:THROTTLED*10\"]}", clk), sim("b", NULL, clk)};
	pv_strategy *a = pv_strategy_ref(k[0]);
	pv_strategy *f = fallback("{\"mode\": \"circuit_breaker\", \"circuit_breaker_threshold\": 2}", k, 2, clk);
	for (int i = 0; i < 10; i++) {
		pv_result r = PV_RESULT_INIT;
		run(f, PV_OP_HEALTH_CHECK, &r, clk);
		assert_string_equal(r.provider, "b");
		pv_result_clear(&r);
	}
	assert_int_equal(pv_sim_calls(a, PV_OP_COUNT), 10);
	assert_string_equal(breaker_state(f, "a"), "closed");
	pv_strategy_unref(a);
	pv_strategy_unref(f);
	pv_manual_clock_free(mc);
}

/* A strategy that fails once, then blocks every call until released, so
 * probes stay in flight while other threads go through the fallback. */
typedef struct gate {
	pv_strategy base;
	pthread_mutex_t m;
	pthread_cond_t cv;
	int entered, open, fail_first;
} gate;

static int gate_execute(pv_strategy *s, const pv_operation *op, pv_result *out)
{
	(void)op;
	gate *g = (gate *)s;
	pthread_mutex_lock(&g->m);
	int n = ++g->entered;
	pthread_cond_broadcast(&g->cv);
	struct timespec until;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += PV_TEST_PATIENCE_S;
	while (n > g->fail_first && !g->open)
		if (pthread_cond_timedwait(&g->cv, &g->m, &until) == ETIMEDOUT)
			break;
	pthread_mutex_unlock(&g->m);
	if (n <= g->fail_first)
		pv_result_fail(out, PV_ERR_EXECUTION_ERROR, PV_CLASS_TRANSIENT, "gate: down");
	else
		pv_result_ok(out, NULL);
	return 0;
}

static int gate_caps(pv_strategy *s, pv_capabilities *out)
{
	(void)s;
	out->operations = PV_OP_SET_ALL;
	return 0;
}

static int gate_health(pv_strategy *s, pv_health *out)
{
	(void)s;
	pv_health_set(out, true, "gate");
	return 0;
}

static void gate_destroy(pv_strategy *s)
{
	gate *g = (gate *)s;
	pthread_mutex_destroy(&g->m);
	pthread_cond_destroy(&g->cv);
}

static const pv_strategy_methods gate_methods = {
	.version = 1, .execute = gate_execute, .capabilities = gate_caps, .health = gate_health,
	.destroy = gate_destroy,
};

typedef struct worker {
	pv_strategy *f;
	const pv_clock *clk;
	gate *g;
	atomic_int *done;
	char provider[PV_RESULT_NAME_MAX];
} worker;

static void *work(void *arg)
{
	worker *w = arg;
	pv_result r = PV_RESULT_INIT;
	run(w->f, PV_OP_HEALTH_CHECK, &r, w->clk);
	snprintf(w->provider, sizeof w->provider, "%s", r.success ? r.provider : "FAILED");
	pv_result_clear(&r);
	pthread_mutex_lock(&w->g->m);
	atomic_fetch_add(w->done, 1);
	pthread_cond_broadcast(&w->g->cv);
	pthread_mutex_unlock(&w->g->m);
	return NULL;
}

/* Waits until `cond` holds (with the gate's mutex held), PV_TEST_PATIENCE_S at most. */
#define WAIT_FOR(g, cond)                                                                 \
	do {                                                                              \
		struct timespec until;                                                    \
		clock_gettime(CLOCK_REALTIME, &until);                                    \
		until.tv_sec += PV_TEST_PATIENCE_S;                                       \
		pthread_mutex_lock(&(g)->m);                                              \
		while (!(cond))                                                           \
			if (pthread_cond_timedwait(&(g)->cv, &(g)->m, &until) == ETIMEDOUT) \
				break;                                                    \
		pthread_mutex_unlock(&(g)->m);                                            \
	} while (0)

enum { WORKERS = 8, PROBES = 2 };

static void test_half_open_admits_exactly_n_probes_while_others_fall_back(void **state)
{
	(void)state;
	pv_manual_clock *mc = pv_manual_clock_new(S);
	const pv_clock *clk = pv_manual_clock_get(mc);
	gate *g = calloc(1, sizeof *g);
	assert_int_equal(pv_strategy_setup(&g->base, &gate_methods, "gate", "test"), 0);
	pthread_mutex_init(&g->m, NULL);
	pthread_cond_init(&g->cv, NULL);
	g->fail_first = 1;
	pv_strategy *b = sim("b", NULL, clk);
	pv_strategy *bref = pv_strategy_ref(b);
	pv_strategy *k[] = {&g->base, b};
	pv_strategy_ref(&g->base);
	pv_strategy *f = fallback("{\"mode\": \"circuit_breaker\", \"circuit_breaker_threshold\": 1, "
				  "\"circuit_breaker_timeout_seconds\": 10, \"circuit_breaker_half_open_probes\": 2}",
				  k, 2, clk);
	pv_result r = PV_RESULT_INIT;
	run(f, PV_OP_HEALTH_CHECK, &r, clk); /* the gate fails once: open */
	pv_result_clear(&r);
	assert_string_equal(breaker_state(f, "gate"), "open");
	pv_manual_clock_advance(mc, 10 * S);

	atomic_int done = 0;
	worker w[WORKERS];
	pthread_t t[WORKERS];
	for (int i = 0; i < WORKERS; i++) {
		w[i] = (worker){.f = f, .clk = clk, .g = g, .done = &done};
		pthread_create(&t[i], NULL, work, &w[i]);
	}
	/* the non-probes finish while the probes are still inside the gate: no
	 * lock is held across the call */
	WAIT_FOR(g, g->entered == 1 + PROBES && atomic_load(&done) == WORKERS - PROBES);
	pthread_mutex_lock(&g->m);
	int entered = g->entered, finished = atomic_load(&done);
	g->open = 1;
	pthread_cond_broadcast(&g->cv);
	pthread_mutex_unlock(&g->m);
	for (int i = 0; i < WORKERS; i++)
		pthread_join(t[i], NULL);
	assert_int_equal(entered, 1 + PROBES);
	assert_int_equal(finished, WORKERS - PROBES);
	int from_gate = 0, from_b = 0;
	for (int i = 0; i < WORKERS; i++) {
		from_gate += strcmp(w[i].provider, "gate") == 0;
		from_b += strcmp(w[i].provider, "b") == 0;
	}
	assert_int_equal(from_gate, PROBES);
	assert_int_equal(from_b, WORKERS - PROBES);
	assert_int_equal(pv_sim_calls(bref, PV_OP_COUNT), 1 + WORKERS - PROBES);
	assert_string_equal(breaker_state(f, "gate"), "closed"); /* both probes succeeded */
	pv_strategy_unref(bref);
	pv_strategy_unref(&g->base);
	pv_strategy_unref(f);
	pv_manual_clock_free(mc);
}

typedef struct stress {
	pv_strategy *f;
	pv_manual_clock *mc;
	atomic_int failures;
} stress;

static void *hammer(void *arg)
{
	stress *st = arg;
	for (int i = 0; i < 2000; i++) {
		pv_result r = PV_RESULT_INIT;
		run(st->f, PV_OP_HEALTH_CHECK, &r, pv_manual_clock_get(st->mc));
		if (!r.success)
			atomic_fetch_add(&st->failures, 1);
		pv_result_clear(&r);
		pv_manual_clock_advance(st->mc, 7 * PV_NS_PER_MS);
	}
	return NULL;
}

static void test_concurrent_calls_keep_breaker_accounting_exact(void **state)
{
	(void)state;
	pv_manual_clock *mc = pv_manual_clock_new(S);
	const pv_clock *clk = pv_manual_clock_get(mc);
	pv_strategy *k[] = {sim("a", "{\"seed\": 3, \"failure_rate\": 0.5}", clk), sim("b", NULL, clk)};
	pv_strategy *a = pv_strategy_ref(k[0]);
	pv_strategy *f = fallback("{\"circuit_breaker_threshold\": 3, \"circuit_breaker_timeout_seconds\": 1, "
				  "\"circuit_breaker_half_open_probes\": 2}",
				  k, 2, clk);
	stress st = {.f = f, .mc = mc};
	pthread_t t[4];
	for (int i = 0; i < 4; i++)
		pthread_create(&t[i], NULL, hammer, &st);
	for (int i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
	assert_int_equal(atomic_load(&st.failures), 0); /* b always answers */
	json_t *m = pv_fallback_circuit_metrics(f);
	json_t *ma = json_object_get(json_object_get(m, "strategies"), "a");
	json_int_t made = json_integer_value(json_object_get(ma, "total_requests"));
	json_int_t rejected = json_integer_value(json_object_get(ma, "rejected_requests"));
	assert_int_equal(made, (json_int_t)pv_sim_calls(a, PV_OP_COUNT)); /* every call accounted once */
	assert_int_equal(made + rejected, 4 * 2000);
	assert_true(json_integer_value(json_object_get(ma, "times_opened")) > 0);
	json_decref(m);
	json_t *stats = pv_strategy_stats(f);
	assert_int_equal(json_integer_value(json_object_get(stats, "successes")), 4 * 2000);
	json_decref(stats);
	pv_strategy_unref(a);
	pv_strategy_unref(f);
	pv_manual_clock_free(mc);
}

/* ---- health_based ---------------------------------------------------------------- */

static void test_health_based_skips_unhealthy_primary_until_recheck(void **state)
{
	(void)state;
	pv_manual_clock *mc = pv_manual_clock_new(S);
	const pv_clock *clk = pv_manual_clock_get(mc);
	pv_strategy *k[] = {sim("a", "{\"healthy\": false}", clk), sim("b", NULL, clk)};
	pv_strategy *a = pv_strategy_ref(k[0]);
	pv_strategy *f = fallback("{\"mode\": \"health_based\", \"health_check_interval_seconds\": 30}", k, 2, clk);
	pv_result r = PV_RESULT_INIT;
	run(f, PV_OP_CREATE_INSTANCES, &r, clk);
	assert_true(r.success);
	assert_string_equal(r.provider, "b");
	json_t *e0 = json_array_get(meta(&r, "fallback", "errors"), 0);
	assert_string_equal(json_string_value(json_object_get(e0, "error_code")), "UNHEALTHY");
	pv_result_clear(&r);
	assert_int_equal(pv_sim_calls(a, PV_OP_CREATE_INSTANCES), 0);

	pv_sim_set_healthy(a, 1);
	pv_manual_clock_advance(mc, 29 * S); /* cached answer still says unhealthy */
	run(f, PV_OP_CREATE_INSTANCES, &r, clk);
	assert_string_equal(r.provider, "b");
	pv_result_clear(&r);
	pv_manual_clock_advance(mc, 1 * S); /* re-checked: healthy again */
	run(f, PV_OP_CREATE_INSTANCES, &r, clk);
	assert_string_equal(r.provider, "a");
	pv_result_clear(&r);
	pv_strategy_unref(a);
	pv_strategy_unref(f);
	pv_manual_clock_free(mc);
}

/* ---- degradation --------------------------------------------------------------- */

static pv_strategy *two_failing(const char *extra_cfg, pv_strategy **a_out)
{
	char cfg[256];
	snprintf(cfg, sizeof cfg, "{\"mode\": \"immediate\"%s}", extra_cfg);
	pv_strategy *k[] = {sim("a", NULL, NULL), sim("b", NULL, NULL)};
	*a_out = pv_strategy_ref(k[0]);
	pv_sim_script(k[0], "fail:EXECUTION_ERROR*100");
	pv_sim_script(k[1], "fail:CAPACITY:capacity*100");
	return fallback(cfg, k, 2, NULL);
}

static void test_degraded_health_check_says_unhealthy_and_never_succeeds(void **state)
{
	(void)state;
	pv_strategy *a;
	pv_strategy *f = two_failing("", &a);
	pv_result r = PV_RESULT_INIT;
	run(f, PV_OP_HEALTH_CHECK, &r, NULL);
	assert_false(r.success);
	assert_string_equal(r.error_code, "ALL_STRATEGIES_FAILED");
	assert_int_equal(r.error_class, PV_CLASS_TRANSIENT);
	assert_string_equal(r.provider, "fb");
	assert_false(json_is_true(json_object_get(r.data, "healthy")));
	assert_true(json_is_true(json_object_get(r.data, "degraded")));
	assert_true(json_is_true(meta(&r, "degraded", NULL)));
	assert_int_equal(json_array_size(meta(&r, "fallback", "errors")), 2);
	assert_true(json_is_false(meta(&r, "fallback", "fallback_used")));
	assert_true(json_is_null(meta(&r, "fallback", "answered_by")));
	pv_result_clear(&r);
	pv_strategy_unref(a);
	pv_strategy_unref(f);
}

static void test_degraded_templates_come_from_cache_marked_stale(void **state)
{
	(void)state;
	pv_strategy *k[] = {sim("a", NULL, NULL), sim("b", NULL, NULL)};
	pv_strategy *a = pv_strategy_ref(k[0]), *b = pv_strategy_ref(k[1]);
	pv_strategy *f = fallback("{\"mode\": \"immediate\"}", k, 2, NULL);
	pv_result r = PV_RESULT_INIT;
	run(f, PV_OP_GET_AVAILABLE_TEMPLATES, &r, NULL);
	assert_true(r.success);
	assert_null(json_object_get(r.data, "stale"));
	pv_result_clear(&r);
	pv_sim_script(a, "fail*5");
	pv_sim_script(b, "fail*5");
	run(f, PV_OP_GET_AVAILABLE_TEMPLATES, &r, NULL);
	assert_true(r.success);
	assert_true(json_is_true(json_object_get(r.data, "stale")));
	assert_int_equal(json_array_size(json_object_get(r.data, "templates")), 1);
	assert_true(json_is_true(meta(&r, "stale", NULL)));
	assert_true(json_is_true(meta(&r, "degraded", NULL)));
	assert_string_equal(meta_str(&r, "cached_from", NULL), "a");
	assert_int_equal(json_array_size(meta(&r, "fallback", "errors")), 2);
	pv_result_clear(&r);
	pv_strategy_unref(a);
	pv_strategy_unref(b);
	pv_strategy_unref(f);
}

static void test_templates_without_cache_fail_with_each_error(void **state)
{
	(void)state;
	pv_strategy *a;
	pv_strategy *f = two_failing("", &a);
	pv_result r = PV_RESULT_INIT;
	run(f, PV_OP_GET_AVAILABLE_TEMPLATES, &r, NULL);
	assert_false(r.success);
	assert_string_equal(r.error_code, "ALL_STRATEGIES_FAILED");
	pv_result_clear(&r);
	pv_strategy_unref(a);
	pv_strategy_unref(f);
}

static void test_failed_create_reports_every_strategy_and_creates_nothing(void **state)
{
	(void)state;
	pv_strategy *a;
	pv_strategy *f = two_failing("", &a);
	pv_result r = PV_RESULT_INIT;
	run(f, PV_OP_CREATE_INSTANCES, &r, NULL);
	assert_false(r.success);
	assert_null(r.data);
	assert_string_equal(r.error_code, "ALL_STRATEGIES_FAILED");
	assert_int_equal(r.attempts, 2);
	json_t *errors = meta(&r, "fallback", "errors");
	assert_string_equal(json_string_value(json_object_get(json_array_get(errors, 0), "error_code")),
			    "EXECUTION_ERROR");
	assert_string_equal(json_string_value(json_object_get(json_array_get(errors, 1), "error_code")),
			    "CAPACITY");
	assert_string_equal(json_string_value(json_object_get(json_array_get(errors, 1), "provider")), "b");
	assert_int_equal(pv_sim_live_instances(a), 0);
	pv_result_clear(&r);
	pv_strategy_unref(a);
	pv_strategy_unref(f);
}

static void test_without_degradation_the_last_error_is_returned(void **state)
{
	(void)state;
	pv_strategy *a;
	pv_strategy *f = two_failing(", \"enable_graceful_degradation\": false", &a);
	pv_result r = PV_RESULT_INIT;
	run(f, PV_OP_HEALTH_CHECK, &r, NULL);
	assert_false(r.success);
	assert_string_equal(r.error_code, "CAPACITY");
	assert_string_equal(r.provider, "b");
	assert_null(r.data);
	assert_null(meta(&r, "degraded", NULL));
	assert_int_equal(json_array_size(meta(&r, "fallback", "errors")), 2);
	pv_result_clear(&r);
	pv_strategy_unref(a);
	pv_strategy_unref(f);
}

static void test_health_method_reports_degraded_when_primary_is_down(void **state)
{
	(void)state;
	pv_strategy *k[] = {sim("a", "{\"healthy\": false}", NULL), sim("b", NULL, NULL)};
	pv_strategy *b = pv_strategy_ref(k[1]);
	pv_strategy *f = fallback("{\"mode\": \"immediate\"}", k, 2, NULL);
	pv_health h;
	assert_int_equal(pv_strategy_health(f, &h), 0);
	assert_true(h.healthy);
	assert_string_equal(json_string_value(json_object_get(h.details, "status")), "degraded");
	pv_health_clear(&h);
	pv_sim_set_healthy(b, 0);
	assert_int_equal(pv_strategy_health(f, &h), 0);
	assert_false(h.healthy);
	assert_true(json_is_true(json_object_get(h.details, "degraded")));
	assert_non_null(strstr(h.message, "unhealthy"));
	pv_health_clear(&h);
	pv_strategy_unref(b);
	pv_strategy_unref(f);
}

/* ---- persistence ------------------------------------------------------------------ */

static void test_state_restore_keeps_breaker_open_in_the_next_process(void **state)
{
	(void)state;
	const char *cfg = "{\"mode\": \"circuit_breaker\", \"circuit_breaker_threshold\": 2, "
			  "\"circuit_breaker_timeout_seconds\": 60, \"circuit_breaker_jitter\": 0}";
	pv_manual_clock *mc = pv_manual_clock_new(S);
	const pv_clock *clk = pv_manual_clock_get(mc);
	pv_strategy *k[] = {sim("a", "{\"failure_rate\": 1}", clk), sim("b", NULL, clk)};
	pv_strategy *f = fallback(cfg, k, 2, clk);
	pv_result r = PV_RESULT_INIT;
	for (int i = 0; i < 2; i++, pv_result_clear(&r))
		run(f, PV_OP_HEALTH_CHECK, &r, clk);
	json_t *saved = pv_strategy_state_save(f);
	char *text = json_dumps(saved, 0);
	json_decref(saved);
	pv_strategy_unref(f);
	pv_manual_clock_free(mc);

	/* the next short-lived process: new objects, a clock with another origin */
	mc = pv_manual_clock_new(1000 * S);
	clk = pv_manual_clock_get(mc);
	pv_strategy *k2[] = {sim("a", NULL, clk), sim("b", NULL, clk)};
	pv_strategy *a = pv_strategy_ref(k2[0]);
	f = fallback(cfg, k2, 2, clk);
	json_t *loaded = json_loads(text, 0, NULL);
	free(text);
	assert_int_equal(pv_strategy_state_load(f, loaded), 0);
	json_decref(loaded);
	assert_string_equal(breaker_state(f, "a"), "open");
	run(f, PV_OP_HEALTH_CHECK, &r, clk);
	assert_string_equal(r.provider, "b");
	pv_result_clear(&r);
	assert_int_equal(pv_sim_calls(a, PV_OP_COUNT), 0);
	pv_manual_clock_advance(mc, 60 * S);
	run(f, PV_OP_HEALTH_CHECK, &r, clk);
	assert_string_equal(r.provider, "a");
	pv_result_clear(&r);
	json_t *m = pv_fallback_circuit_metrics(f);
	assert_int_equal(json_integer_value(json_object_get(m, "times_opened")), 1);
	json_decref(m);
	pv_strategy_unref(a);
	pv_strategy_unref(f);
	pv_manual_clock_free(mc);
}

static void test_state_load_rejects_bad_state_without_changes(void **state)
{
	(void)state;
	pv_strategy *k[] = {sim("a", NULL, NULL), sim("b", NULL, NULL)};
	pv_strategy *f = fallback("{}", k, 2, NULL);
	const char *bad[][2] = {
		{"{\"version\": 2}", "version"},
		{"{\"version\": 1, \"breakers\": {\"a\": {\"state\": \"open\"}, \"b\": {\"state\": \"ajar\"}}}",
		 "breakers.b"},
	};
	for (size_t i = 0; i < 2; i++) {
		json_t *j = json_loads(bad[i][0], 0, NULL);
		assert_int_equal(pv_strategy_state_load(f, j), PV_EINVAL);
		assert_non_null(strstr(pv_error_last(), bad[i][1]));
		json_decref(j);
		assert_string_equal(breaker_state(f, "a"), "closed");
	}
	pv_strategy_unref(f);
}

/* ---- configuration and construction ------------------------------------------------- */

static void test_config_accepts_the_spec_block(void **state)
{
	(void)state;
	pv_fallback_config c = config("{\"mode\": \"circuit_breaker\", \"primary\": \"aws\", "
				      "\"fallbacks\": [\"provider1\", \"provider2\"], "
				      "\"circuit_breaker_threshold\": 5, \"circuit_breaker_timeout_seconds\": 60, "
				      "\"max_retries\": 3, \"retry_delay_seconds\": 1.5}");
	assert_int_equal(c.mode, PV_FALLBACK_CIRCUIT_BREAKER);
	assert_int_equal(c.circuit_breaker_threshold, 5);
	assert_true(c.retry_delay_seconds == 1.5);
	assert_true(c.enable_graceful_degradation);
	json_t *j = pv_fallback_config_to_json(&c);
	pv_fallback_config back;
	assert_int_equal(pv_fallback_config_from_json(j, &back), 0);
	json_t *j2 = pv_fallback_config_to_json(&back);
	assert_true(json_equal(j, j2));
	assert_int_equal(json_object_size(j), 20);
	json_decref(j);
	json_decref(j2);
}

static void test_config_caps_left_unset_follow_a_larger_base(void **state)
{
	(void)state;
	pv_fallback_config c = config("{\"circuit_breaker_timeout_seconds\": 3600, "
				      "\"retry_delay_seconds\": 30, \"circuit_breaker_window_size\": 4}");
	assert_true(c.circuit_breaker_max_timeout_seconds == 36000);
	assert_true(c.retry_max_delay_seconds == 30);
	assert_int_equal(c.circuit_breaker_min_calls, 4);
	json_t *j = json_loads("{\"circuit_breaker_timeout_seconds\": 3600, "
			       "\"circuit_breaker_max_timeout_seconds\": 600}", 0, NULL);
	assert_int_equal(pv_fallback_config_from_json(j, &c), PV_EINVAL); /* explicit: checked as given */
	assert_non_null(strstr(pv_error_last(), "circuit_breaker_max_timeout_seconds"));
	json_decref(j);
}

static void test_config_rejects_bad_values_naming_field_and_range(void **state)
{
	(void)state;
	const char *bad[][2] = {
		{"{\"mode\": \"sometimes\"}", "'mode'"},
		{"{\"max_retries\": -1}", "'max_retries': must be an integer from 0 to 100"},
		{"{\"circuit_breaker_timeout_seconds\": 0}", "'circuit_breaker_timeout_seconds': must be a number greater than 0"},
		{"{\"circuit_breaker_threshold\": 0}", "'circuit_breaker_threshold'"},
		{"{\"circuit_breaker_failure_rate_threshold\": 150}", "'circuit_breaker_failure_rate_threshold'"},
		{"{\"circuit_breaker_window_size\": 5, \"circuit_breaker_min_calls\": 10}", "'circuit_breaker_min_calls'"},
		{"{\"retry_delay_seconds\": 5, \"retry_max_delay_seconds\": 2}", "'retry_max_delay_seconds'"},
		{"{\"retry_budget_ratio\": 1.5}", "'retry_budget_ratio': must be a number from 0 to 1"},
		{"{\"enable_graceful_degradation\": \"yes\"}", "'enable_graceful_degradation'"},
		{"{\"health_check_interval_seconds\": -3}", "'health_check_interval_seconds'"},
		{"{\"bogus\": 1}", "unknown field 'bogus'"},
		{"{\"mode\": \"circut_breaker\"}",
		 "field 'mode': fallback mode 'circut_breaker' is not one of immediate, retry_then_fallback, "
		 "circuit_breaker, health_based"},
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		json_t *j = json_loads(bad[i][0], 0, NULL);
		pv_fallback_config c;
		assert_int_equal(pv_fallback_config_from_json(j, &c), PV_EINVAL);
		if (!strstr(pv_error_last(), bad[i][1]))
			fail_msg("%s: got '%s'", bad[i][0], pv_error_last());
		json_decref(j);
	}
}

static void test_mode_names_round_trip_and_unknown_lists_valid_values(void **state)
{
	(void)state;
	for (int m = 0; m < PV_FALLBACK_MODE_COUNT; m++) {
		pv_fallback_mode back;
		assert_int_equal(pv_fallback_mode_parse(pv_fallback_mode_name((pv_fallback_mode)m), &back), 0);
		assert_int_equal(back, m);
	}
	pv_fallback_mode x;
	assert_int_equal(pv_fallback_mode_parse("panic", &x), PV_EINVAL);
	assert_non_null(strstr(pv_error_last(), "retry_then_fallback"));
}

static void test_new_rejects_null_primary_and_duplicate_names(void **state)
{
	(void)state;
	pv_strategy *a = sim("a", NULL, NULL), *a2 = sim("a", NULL, NULL), *f = NULL;
	assert_int_equal(pv_fallback_new(&f, "fb", NULL, NULL, 0, NULL, NULL), PV_EINVAL);
	assert_int_equal(pv_fallback_new(&f, "fb", a, &a2, 1, NULL, NULL), PV_EINVAL);
	assert_non_null(strstr(pv_error_last(), "'a' appears twice"));
	assert_null(f);
	pv_strategy_unref(a);
	pv_strategy_unref(a2);
}

static void test_capabilities_are_the_union_and_type_is_fallback(void **state)
{
	(void)state;
	pv_strategy *k[] = {sim("a", "{\"operations\": [\"health_check\"]}", NULL),
			    sim("b", "{\"operations\": [\"create_instances\"]}", NULL)};
	pv_strategy *f = fallback("{}", k, 2, NULL);
	assert_string_equal(pv_strategy_type(f), "fallback");
	assert_true(pv_fallback_is(f));
	pv_capabilities c;
	assert_int_equal(pv_strategy_capabilities(f, &c), 0);
	assert_string_equal(c.type, "fallback");
	assert_int_equal(c.operations, PV_OP_BIT(PV_OP_HEALTH_CHECK) | PV_OP_BIT(PV_OP_CREATE_INSTANCES));
	pv_capabilities_clear(&c);
	pv_strategy_unref(f);
}

static void test_nested_fallback_keeps_leaf_provider_and_inner_metadata(void **state)
{
	(void)state;
	pv_strategy *k[] = {sim("a", "{\"script\": [\"fail\"]}", NULL), sim("b", NULL, NULL)};
	pv_fallback_config cfg = config("{\"mode\": \"immediate\"}");
	pv_strategy *inner = NULL, *outer = NULL;
	assert_int_equal(pv_fallback_new(&inner, "inner", k[0], k + 1, 1, &cfg, NULL), 0);
	pv_strategy *c = sim("c", NULL, NULL);
	cfg.mode = PV_FALLBACK_CIRCUIT_BREAKER;
	assert_int_equal(pv_fallback_new(&outer, "outer", inner, &c, 1, &cfg, NULL), 0);
	pv_strategy_unref(k[0]);
	pv_strategy_unref(k[1]);
	pv_strategy_unref(inner);
	pv_strategy_unref(c);
	assert_int_equal(pv_strategy_initialize(outer), 0);
	pv_result r = PV_RESULT_INIT;
	run(outer, PV_OP_HEALTH_CHECK, &r, NULL);
	assert_true(r.success);
	assert_string_equal(r.provider, "b");
	assert_string_equal(meta_str(&r, "fallback", "strategy"), "inner"); /* outer had nothing to add */
	pv_result_clear(&r);
	json_t *st = pv_strategy_stats(outer);
	assert_int_equal(json_integer_value(json_object_get(st, "successes")), 1);
	json_decref(st);
	pv_strategy_unref(outer);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_immediate_healthy_primary_answers_without_metadata),
		cmocka_unit_test(test_immediate_falls_back_in_order_and_first_success_wins),
		cmocka_unit_test(test_fallback_answer_explains_itself_when_read),
		cmocka_unit_test(test_latency_is_the_childs_or_the_calls_and_backoff),
		cmocka_unit_test(test_retry_backoff_is_full_jitter_with_cap_on_the_clock),
		cmocka_unit_test(test_retry_delay_honours_the_configured_delay),
		cmocka_unit_test(test_retry_only_for_transient_and_throttled_classes),
		cmocka_unit_test(test_retry_never_sleeps_past_the_deadline),
		cmocka_unit_test(test_retry_budget_caps_load_amplification),
		cmocka_unit_test(test_breaker_opens_on_consecutive_failures_and_skips_primary),
		cmocka_unit_test(test_breaker_opens_on_failure_rate_of_the_window),
		cmocka_unit_test(test_breaker_reopens_longer_after_failed_probe_and_closes_after_success),
		cmocka_unit_test(test_throttles_fall_back_but_do_not_trip_the_breaker),
		cmocka_unit_test(test_half_open_admits_exactly_n_probes_while_others_fall_back),
		cmocka_unit_test(test_concurrent_calls_keep_breaker_accounting_exact),
		cmocka_unit_test(test_health_based_skips_unhealthy_primary_until_recheck),
		cmocka_unit_test(test_degraded_health_check_says_unhealthy_and_never_succeeds),
		cmocka_unit_test(test_degraded_templates_come_from_cache_marked_stale),
		cmocka_unit_test(test_templates_without_cache_fail_with_each_error),
		cmocka_unit_test(test_failed_create_reports_every_strategy_and_creates_nothing),
		cmocka_unit_test(test_without_degradation_the_last_error_is_returned),
		cmocka_unit_test(test_health_method_reports_degraded_when_primary_is_down),
		cmocka_unit_test(test_state_restore_keeps_breaker_open_in_the_next_process),
		cmocka_unit_test(test_state_load_rejects_bad_state_without_changes),
		cmocka_unit_test(test_config_accepts_the_spec_block),
		cmocka_unit_test(test_config_caps_left_unset_follow_a_larger_base),
		cmocka_unit_test(test_config_rejects_bad_values_naming_field_and_range),
		cmocka_unit_test(test_mode_names_round_trip_and_unknown_lists_valid_values),
		cmocka_unit_test(test_new_rejects_null_primary_and_duplicate_names),
		cmocka_unit_test(test_capabilities_are_the_union_and_type_is_fallback),
		cmocka_unit_test(test_nested_fallback_keeps_leaf_provider_and_inner_metadata),
	};
	return cmocka_run_group_tests_name("fallback", tests, NULL, NULL);
}
