/*
 * test_context.c - the provider context: registration, initialization,
 * switching, execution errors, metrics and cached health. The spec's own
 * examples (register, switch, current, execute, metrics, health) come first.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <math.h>
#include <pthread.h>
#include <string.h>
#include <cmocka.h>
#include "provisio/provisio.h"
#include "test_strategies.h"
#include "wait.h"

static pv_strategy *sim(const char *name, const char *json, const pv_clock *clock)
{
	json_t *cfg = json ? json_loads(json, 0, NULL) : NULL;
	pv_strategy *s = NULL;
	assert_int_equal(pv_sim_new(&s, name, cfg, clock), 0);
	json_decref(cfg);
	return s;
}

/* Registers and drops the caller's reference: the context owns it. */
static void give(pv_context *ctx, pv_strategy *s)
{
	assert_true(pv_context_register(ctx, s) >= 0);
	pv_strategy_unref(s);
}

static pv_context *new_ctx(const pv_clock *clock)
{
	pv_context *ctx;
	pv_context_options o = {.clock = clock, .health_interval_seconds = 30, .rng_seed = 99};
	assert_int_equal(pv_context_new(&ctx, &o), 0);
	return ctx;
}

static const pv_operation health_op = {.type = PV_OP_HEALTH_CHECK};

static void test_spec_quick_start_register_initialize_execute(void **state)
{
	(void)state;
	pv_context *ctx = new_ctx(NULL);
	give(ctx, sim("aws", NULL, NULL));
	assert_int_equal(pv_context_initialize(ctx, NULL), 0);
	pv_result r;
	pv_context_execute(ctx, &health_op, &r);
	assert_true(r.success);
	assert_string_equal(r.provider, "aws");
	assert_int_equal(r.attempts, 1);
	pv_result_clear(&r);
	pv_context_free(ctx);
}

static void test_spec_runtime_switching_and_current(void **state)
{
	(void)state;
	pv_context *ctx = new_ctx(NULL);
	give(ctx, sim("aws", NULL, NULL));
	give(ctx, sim("provider1", NULL, NULL));
	give(ctx, sim("provider2", NULL, NULL));
	assert_int_equal(pv_context_initialize(ctx, NULL), 0);

	json_t *names = pv_context_names(ctx);
	assert_int_equal(json_array_size(names), 3);
	assert_string_equal(json_string_value(json_array_get(names, 0)), "aws");
	assert_string_equal(json_string_value(json_array_get(names, 2)), "provider2");
	json_decref(names);

	char cur[64];
	assert_int_equal(pv_context_current(ctx, cur, sizeof cur), 0);
	assert_string_equal(cur, "aws"); /* the first registered */
	assert_int_equal(pv_context_set_strategy(ctx, "provider1"), 0);
	pv_context_current(ctx, cur, sizeof cur);
	assert_string_equal(cur, "provider1");

	pv_result r;
	pv_context_execute(ctx, &health_op, &r);
	assert_string_equal(r.provider, "provider1");
	pv_result_clear(&r);
	assert_int_equal(pv_context_set_strategy(ctx, "aws"), 0);
	pv_context_execute(ctx, &health_op, &r);
	assert_string_equal(r.provider, "aws");
	pv_result_clear(&r);

	assert_int_equal(pv_context_set_strategy(ctx, "nope"), PV_ENOTFOUND);
	assert_non_null(strstr(pv_error_last(), "nope"));
	pv_context_current(ctx, cur, sizeof cur);
	assert_string_equal(cur, "aws"); /* unchanged by the failed switch */
	pv_context_free(ctx);
}

static void test_spec_metrics_and_health(void **state)
{
	(void)state;
	pv_manual_clock *mc = pv_manual_clock_new(1);
	const pv_clock *clk = pv_manual_clock_get(mc);
	pv_context *ctx = new_ctx(clk);
	pv_strategy *aws = sim("aws", "{\"latency\": {\"mean_ms\": 20}, \"script\": [\"ok*3\", \"fail:THROTTLED\"]}", clk);
	give(ctx, aws);
	pv_context_initialize(ctx, NULL);
	for (int i = 0; i < 4; i++) {
		pv_result r;
		pv_context_execute(ctx, &health_op, &r);
		assert_int_equal(r.latency_ns, 20 * PV_NS_PER_MS);
		pv_result_clear(&r);
	}
	pv_metrics m;
	assert_int_equal(pv_context_metrics(ctx, "aws", &m), 0);
	assert_int_equal(m.total, 4);
	assert_int_equal(m.successes, 3);
	assert_int_equal(m.failures, 1);
	assert_true(fabs(m.success_rate - 75.0) < 1e-9);
	assert_true(fabs(m.mean_latency_ms - 20.0) < 1e-9);
	assert_true(m.p50_ms >= 20.0 && m.p50_ms <= 20.0 * 1.0625 + 1e-9);
	assert_int_equal(m.consecutive_failures, 1);
	assert_int_equal(m.by_op[PV_OP_HEALTH_CHECK][1], 3); /* counted by operation type too */
	assert_int_equal(m.by_op[PV_OP_HEALTH_CHECK][0], 1);
	assert_int_equal(m.by_op[PV_OP_CREATE_INSTANCES][1], 0);
	assert_string_equal(m.last_error_code, "THROTTLED");
	assert_true(m.last_used_ms > 0);
	assert_int_equal(m.in_flight, 0);

	pv_health h;
	assert_int_equal(pv_context_check_health(ctx, "aws", &h), 0);
	assert_true(h.healthy);
	assert_non_null(strstr(h.message, "healthy"));
	assert_true(h.checked_at_ms > 0);
	pv_health_clear(&h);
	assert_int_equal(pv_context_check_health(ctx, "missing", &h), PV_ENOTFOUND);

	json_t *all = pv_context_metrics_json(ctx);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(all, "aws"), "total_operations")), 4);
	json_decref(all);
	pv_context_free(ctx);
	pv_manual_clock_free(mc);
}

static void test_empty_context_answers_no_strategy_available(void **state)
{
	(void)state;
	pv_context *ctx = new_ctx(NULL);
	pv_result r;
	pv_context_execute(ctx, &health_op, &r);
	assert_false(r.success);
	assert_string_equal(r.error_code, "NO_STRATEGY_AVAILABLE");
	pv_result_clear(&r);
	char cur[8];
	assert_int_equal(pv_context_current(ctx, cur, sizeof cur), PV_ENOTFOUND);
	assert_int_equal(pv_context_initialize(ctx, NULL), PV_ESTATE);
	assert_int_equal(pv_context_set_policy(ctx, PV_POLICY_ROUND_ROBIN), 0);
	pv_context_execute(ctx, &health_op, &r);
	assert_string_equal(r.error_code, "NO_STRATEGY_AVAILABLE");
	pv_result_clear(&r);
	pv_context_free(ctx);
}

static void test_register_same_name_replaces_and_says_so(void **state)
{
	(void)state;
	bool first_gone, second_gone;
	pv_context *ctx = new_ctx(NULL);
	pv_strategy *a = test_init_strategy("aws", false, &first_gone);
	pv_strategy *b = test_init_strategy("aws", false, &second_gone);
	assert_int_equal(pv_context_register(ctx, a), 0);
	pv_strategy_unref(a);
	assert_false(first_gone);
	assert_int_equal(pv_context_register(ctx, b), 1);
	assert_non_null(strstr(pv_error_last(), "replaced"));
	pv_strategy_unref(b);
	assert_true(first_gone); /* the old one is released at once: no call was in flight */
	assert_false(second_gone);
	assert_int_equal(pv_context_count(ctx), 1);
	char cur[16];
	pv_context_current(ctx, cur, sizeof cur);
	assert_string_equal(cur, "aws");
	pv_context_free(ctx);
	assert_true(second_gone);
}

static void test_initialize_reports_failures_and_succeeds_with_one(void **state)
{
	(void)state;
	pv_context *ctx = new_ctx(NULL);
	give(ctx, test_init_strategy("broken", true, NULL));
	give(ctx, test_init_strategy("fine", false, NULL));
	json_t *report = NULL;
	assert_int_equal(pv_context_initialize(ctx, &report), 0);
	json_t *broken = json_object_get(report, "broken");
	assert_true(json_is_false(json_object_get(broken, "initialized")));
	assert_non_null(strstr(json_string_value(json_object_get(broken, "error")), "cannot reach"));
	assert_true(json_is_true(json_object_get(json_object_get(report, "fine"), "initialized")));
	json_decref(report);

	/* the current one failed, so the first usable took over */
	char cur[16];
	pv_context_current(ctx, cur, sizeof cur);
	assert_string_equal(cur, "fine");
	assert_int_equal(pv_context_set_strategy(ctx, "broken"), PV_ESTATE);
	assert_non_null(strstr(pv_error_last(), "cannot reach"));
	pv_context_free(ctx);
}

static void test_initialize_fails_when_none_initializes(void **state)
{
	(void)state;
	pv_context *ctx = new_ctx(NULL);
	give(ctx, test_init_strategy("a", true, NULL));
	give(ctx, test_init_strategy("b", true, NULL));
	assert_int_equal(pv_context_initialize(ctx, NULL), PV_ESTATE);
	assert_non_null(strstr(pv_error_last(), "no strategy initialized"));
	pv_result r;
	pv_context_execute_on(ctx, "a", &health_op, &r);
	assert_string_equal(r.error_code, "NOT_INITIALIZED");
	pv_result_clear(&r);
	pv_context_free(ctx);
}

/* The original's scenario: provider-1's init fails, so initialize fails and
 * leaves nothing current; a working provider-1 replaces it and initialize
 * succeeds: it must also make it current. */
static void test_reregistered_strategy_becomes_current_after_a_failed_initialize(void **state)
{
	(void)state;
	pv_context *ctx = new_ctx(NULL);
	give(ctx, test_init_strategy("provider-1", true, NULL));
	assert_int_equal(pv_context_initialize(ctx, NULL), PV_ESTATE);
	char cur[32];
	assert_int_equal(pv_context_current(ctx, cur, sizeof cur), PV_ENOTFOUND);
	assert_true(pv_context_register(ctx, test_init_strategy("provider-1", false, NULL)) == 1);
	pv_strategy *s = pv_context_strategy(ctx, "provider-1");
	pv_strategy_unref(s); /* the registry's reference */
	pv_strategy_unref(s); /* ours from test_init_strategy */
	assert_int_equal(pv_context_initialize(ctx, NULL), 0);
	assert_int_equal(pv_context_current(ctx, cur, sizeof cur), 0);
	assert_string_equal(cur, "provider-1");
	pv_result r;
	pv_context_execute(ctx, &health_op, &r);
	assert_true(r.success);
	assert_string_equal(r.provider, "provider-1");
	pv_result_clear(&r);
	pv_context_free(ctx);
}

static void test_not_initialized_strategy_answers_not_initialized(void **state)
{
	(void)state;
	pv_context *ctx = new_ctx(NULL);
	give(ctx, test_init_strategy("lazy", false, NULL));
	pv_result r;
	pv_context_execute(ctx, &health_op, &r);
	assert_string_equal(r.error_code, "NOT_INITIALIZED");
	assert_string_equal(r.provider, "lazy");
	pv_result_clear(&r);
	pv_context_initialize(ctx, NULL);
	pv_context_execute(ctx, &health_op, &r);
	assert_true(r.success);
	pv_result_clear(&r);
	pv_context_free(ctx);
}

static void test_execute_on_unknown_name_is_strategy_not_found(void **state)
{
	(void)state;
	pv_context *ctx = new_ctx(NULL);
	give(ctx, sim("a", NULL, NULL));
	pv_result r;
	pv_context_execute_on(ctx, "ghost", &health_op, &r);
	assert_false(r.success);
	assert_string_equal(r.error_code, "STRATEGY_NOT_FOUND");
	assert_non_null(strstr(pv_result_message(&r), "ghost"));
	pv_result_clear(&r);
	pv_context_execute_on(ctx, "a", &health_op, &r);
	assert_true(r.success);
	pv_result_clear(&r);
	pv_context_free(ctx);
}

static void test_unsupported_operation_fails_and_counts_as_failure(void **state)
{
	(void)state;
	pv_context *ctx = new_ctx(NULL);
	pv_strategy *s = sim("ro", "{\"operations\": [\"health_check\"]}", NULL);
	give(ctx, s);
	pv_operation create = {.type = PV_OP_CREATE_INSTANCES};
	pv_result r;
	pv_context_execute(ctx, &create, &r);
	assert_string_equal(r.error_code, "OPERATION_NOT_SUPPORTED");
	assert_int_equal(r.error_class, PV_CLASS_PERMANENT);
	pv_result_clear(&r);
	assert_int_equal(pv_sim_calls(s, PV_OP_CREATE_INSTANCES), 0); /* checked before the call */
	pv_metrics m;
	pv_context_metrics(ctx, "ro", &m);
	assert_int_equal(m.failures, 1);
	assert_string_equal(m.last_error_code, "OPERATION_NOT_SUPPORTED");
	pv_context_free(ctx);
}

static void test_passed_deadline_times_out_without_calling(void **state)
{
	(void)state;
	pv_manual_clock *mc = pv_manual_clock_new(1000);
	pv_context *ctx = new_ctx(pv_manual_clock_get(mc));
	pv_strategy *s = sim("a", NULL, NULL);
	give(ctx, s);
	pv_operation op = {.type = PV_OP_HEALTH_CHECK, .deadline_ns = 1000};
	pv_result r;
	pv_context_execute(ctx, &op, &r);
	assert_string_equal(r.error_code, "TIMEOUT");
	assert_int_equal(pv_sim_calls(s, PV_OP_COUNT), 0);
	pv_result_clear(&r);
	op.deadline_ns = 2000;
	pv_context_execute(ctx, &op, &r);
	assert_true(r.success);
	pv_result_clear(&r);
	pv_context_free(ctx);
	pv_manual_clock_free(mc);
}

static void test_invalid_operation_type_is_invalid_parameters(void **state)
{
	(void)state;
	pv_context *ctx = new_ctx(NULL);
	give(ctx, sim("a", NULL, NULL));
	pv_operation op = {.type = (pv_op_type)42};
	pv_result r;
	pv_context_execute(ctx, &op, &r);
	assert_string_equal(r.error_code, "INVALID_PARAMETERS");
	pv_result_clear(&r);
	pv_context_free(ctx);
}

static void test_success_rate_is_nan_with_zero_operations(void **state)
{
	(void)state;
	pv_context *ctx = new_ctx(NULL);
	give(ctx, sim("a", NULL, NULL));
	pv_metrics m;
	pv_context_metrics(ctx, "a", &m);
	assert_int_equal(m.total, 0);
	assert_true(isnan(m.success_rate));
	assert_true(isnan(m.ewma_latency_ms));
	assert_true(isnan(m.p99_ms));
	json_t *j = pv_context_metrics_json(ctx);
	assert_true(json_is_null(json_object_get(json_object_get(j, "a"), "success_rate")));
	json_decref(j);
	pv_context_free(ctx);
}

static void test_health_is_cached_for_the_interval(void **state)
{
	(void)state;
	pv_manual_clock *mc = pv_manual_clock_new(1);
	pv_context *ctx = new_ctx(pv_manual_clock_get(mc));
	pv_strategy *s = sim("a", NULL, NULL);
	give(ctx, s);
	pv_health h;
	pv_context_check_health(ctx, "a", &h);
	assert_true(h.healthy);
	pv_health_clear(&h);
	pv_sim_set_healthy(s, 0);
	pv_context_check_health(ctx, "a", &h);
	assert_true(h.healthy); /* cached: 30 s have not passed */
	pv_health_clear(&h);
	pv_metrics m;
	pv_context_metrics(ctx, "a", &m);
	assert_int_equal(m.health_checks, 1);

	pv_manual_clock_advance(mc, 31 * PV_NS_PER_S);
	pv_context_check_health(ctx, "a", &h);
	assert_false(h.healthy);
	pv_health_clear(&h);
	pv_context_metrics(ctx, "a", &m);
	assert_int_equal(m.health_checks, 2);
	assert_int_equal(pv_context_refresh_health(ctx, false), 0); /* nothing stale */
	assert_int_equal(pv_context_refresh_health(ctx, true), 1);
	pv_context_free(ctx);
	pv_manual_clock_free(mc);
}

static void test_check_health_of_null_checks_the_current_strategy(void **state)
{
	(void)state;
	pv_context *ctx = new_ctx(NULL);
	pv_health h;
	assert_int_equal(pv_context_check_health(ctx, NULL, &h), PV_ENOTFOUND);
	assert_non_null(strstr(pv_error_last(), "no strategy is current"));
	give(ctx, sim("a", NULL, NULL));
	give(ctx, sim("b", "{\"healthy\": false}", NULL));
	assert_int_equal(pv_context_set_strategy(ctx, "b"), 0);
	assert_int_equal(pv_context_check_health(ctx, NULL, &h), 0);
	assert_false(h.healthy);
	assert_non_null(strstr(h.message, "'b'"));
	pv_health_clear(&h);
	pv_context_free(ctx);
}

static pv_health recorded(bool healthy, int64_t age_ms)
{
	pv_health h = {0};
	pv_health_set(&h, healthy, "recorded by another process");
	h.checked_at_ms = pv_wall_ms() - age_ms;
	return h;
}

/* What another process checked counts until one interval after its check:
 * younger, picks use it without a check; older, the first pick checks. */
static void test_put_health_is_used_until_one_interval_after_its_check(void **state)
{
	(void)state;
	pv_manual_clock *mc = pv_manual_clock_new(1000 * PV_NS_PER_S);
	pv_context *ctx = new_ctx(pv_manual_clock_get(mc)); /* interval 30 s */
	give(ctx, sim("a", NULL, NULL));
	give(ctx, sim("b", NULL, NULL));
	assert_int_equal(pv_context_set_policy(ctx, PV_POLICY_HEALTH_BASED), 0);
	assert_true(pv_context_picks_read_health(ctx));
	pv_health h;
	assert_int_equal(pv_context_cached_health(ctx, "a", &h), PV_ENOTFOUND);

	pv_health sick = recorded(false, 10000); /* 10 s old: 20 s left */
	assert_int_equal(pv_context_put_health(ctx, "a", &sick), 0);
	pv_health fine = recorded(true, 10000);
	assert_int_equal(pv_context_put_health(ctx, "b", &fine), 0);
	pv_result r;
	pv_context_execute(ctx, &health_op, &r);
	assert_string_equal(r.provider, "b"); /* a is known sick though a sim says healthy */
	pv_result_clear(&r);
	pv_metrics m;
	pv_context_metrics(ctx, "a", &m);
	assert_int_equal(m.health_checks, 0);

	/* an older record never replaces a newer one */
	pv_health older = recorded(true, 20000);
	assert_int_equal(pv_context_put_health(ctx, "a", &older), 0);
	assert_int_equal(pv_context_cached_health(ctx, "a", &h), 0);
	assert_false(h.healthy);
	assert_int_equal(h.checked_at_ms, sick.checked_at_ms);
	pv_health_clear(&h);

	pv_manual_clock_advance(mc, 21 * PV_NS_PER_S); /* now 31 s after the check */
	pv_context_execute(ctx, &health_op, &r);
	assert_string_equal(r.provider, "a"); /* checked again: the sim is healthy */
	pv_result_clear(&r);
	pv_context_metrics(ctx, "a", &m);
	assert_int_equal(m.health_checks, 1);

	pv_health stale = recorded(false, 60000); /* older than the interval */
	give(ctx, sim("c", NULL, NULL));
	assert_int_equal(pv_context_put_health(ctx, "c", &stale), 0);
	pv_context_execute(ctx, &health_op, &r);
	pv_result_clear(&r);
	pv_context_metrics(ctx, "c", &m);
	assert_int_equal(m.health_checks, 1); /* stale on arrival: checked at the first pick */

	pv_health never = {0};
	assert_int_equal(pv_context_put_health(ctx, "a", &never), PV_EINVAL);
	assert_int_equal(pv_context_put_health(ctx, "zz", &fine), PV_ENOTFOUND);
	pv_health_clear(&sick);
	pv_health_clear(&fine);
	pv_health_clear(&older);
	pv_health_clear(&stale);
	pv_context_free(ctx);
	pv_manual_clock_free(mc);
}

static void test_health_monitor_thread_refreshes_health(void **state)
{
	(void)state;
	pv_context *ctx;
	pv_context_options o = {.health_interval_seconds = 0.02};
	assert_int_equal(pv_context_new(&ctx, &o), 0);
	pv_strategy *s = sim("a", NULL, NULL);
	give(ctx, s);
	assert_int_equal(pv_context_start_health_monitor(ctx), 0);
	pv_metrics m;
	PV_TEST_WAIT_UNTIL((pv_context_metrics(ctx, "a", &m), m.health_checks >= 2));
	assert_true(m.health_checks >= 2);
	pv_context_stop_health_monitor(ctx);
	pv_context_free(ctx);
}

static void *call_gate(void *arg)
{
	pv_context *ctx = arg;
	pv_result r;
	pv_context_execute_on(ctx, "gate", &health_op, &r);
	assert_true(r.success);
	pv_result_clear(&r);
	return NULL;
}

static void test_unregister_during_call_destroys_after_the_call(void **state)
{
	(void)state;
	bool destroyed;
	pv_context *ctx = new_ctx(NULL);
	pv_strategy *gate = test_gate_strategy("gate", &destroyed);
	give(ctx, gate);
	pthread_t t;
	pthread_create(&t, NULL, call_gate, ctx);
	test_gate_wait_inside(gate, 1);
	pv_metrics m;
	pv_context_metrics(ctx, "gate", &m);
	assert_int_equal(m.in_flight, 1);
	assert_int_equal(pv_context_unregister(ctx, "gate"), 0);
	assert_false(destroyed); /* a call is still inside */
	assert_int_equal(pv_context_count(ctx), 0);
	test_gate_open(gate);
	pthread_join(t, NULL);
	assert_true(destroyed);
	assert_int_equal(pv_context_unregister(ctx, "gate"), PV_ENOTFOUND);
	pv_context_free(ctx);
}

static void test_unregister_current_moves_to_first_remaining(void **state)
{
	(void)state;
	pv_context *ctx = new_ctx(NULL);
	give(ctx, sim("a", NULL, NULL));
	give(ctx, sim("b", NULL, NULL));
	assert_int_equal(pv_context_unregister(ctx, "a"), 0);
	char cur[8];
	assert_int_equal(pv_context_current(ctx, cur, sizeof cur), 0);
	assert_string_equal(cur, "b");
	pv_context_free(ctx);
}

static void test_context_json_lists_strategies_with_metrics(void **state)
{
	(void)state;
	pv_context *ctx = new_ctx(NULL);
	give(ctx, sim("a", NULL, NULL));
	pv_result r;
	pv_context_execute(ctx, &health_op, &r);
	pv_result_clear(&r);
	json_t *j = pv_context_to_json(ctx);
	assert_string_equal(json_string_value(json_object_get(j, "current")), "a");
	json_t *a = json_object_get(json_object_get(j, "strategies"), "a");
	assert_string_equal(json_string_value(json_object_get(a, "type")), "sim");
	assert_int_equal(json_integer_value(json_object_get(json_object_get(a, "metrics"), "total_operations")), 1);
	assert_non_null(json_object_get(a, "stats"));
	json_decref(j);
	pv_context_free(ctx);
}

static void test_result_metadata_has_provider_latency_attempts(void **state)
{
	(void)state;
	pv_context *ctx = new_ctx(NULL);
	give(ctx, sim("a", NULL, NULL));
	pv_result r;
	pv_context_execute(ctx, &health_op, &r);
	json_t *meta = pv_result_metadata(&r);
	assert_string_equal(json_string_value(json_object_get(meta, "provider")), "a");
	assert_true(json_is_number(json_object_get(meta, "latency_ms")));
	assert_int_equal(json_integer_value(json_object_get(meta, "attempts")), 1);
	json_decref(meta);
	json_t *whole = pv_result_to_json(&r);
	assert_true(json_is_true(json_object_get(whole, "success")));
	json_decref(whole);
	pv_result_clear(&r);
	pv_context_free(ctx);
}

static int noop_execute(pv_strategy *s, const pv_operation *op, pv_result *out)
{
	(void)s;
	(void)op;
	pv_result_ok(out, NULL);
	return 0;
}

static int noop_caps(pv_strategy *s, pv_capabilities *out)
{
	(void)s;
	(void)out;
	return 0;
}

static int noop_health(pv_strategy *s, pv_health *out)
{
	(void)s;
	out->healthy = true;
	return 0;
}

static const pv_strategy_methods noop_methods = {
	.version = PV_STRATEGY_METHODS_VERSION,
	.execute = noop_execute,
	.capabilities = noop_caps,
	.health = noop_health,
};

typedef struct noop {
	pv_strategy base;
	int extra[64];
} noop;

static void test_strategy_alloc_sets_up_the_base_or_names_the_problem(void **state)
{
	(void)state;
	noop *n = pv_strategy_alloc(sizeof *n, &noop_methods, "n1", "noop");
	assert_non_null(n);
	assert_string_equal(pv_strategy_name(&n->base), "n1");
	assert_int_equal(n->extra[63], 0); /* zeroed */
	assert_true(pv_strategy_is_initialized(&n->base)); /* no init method */
	pv_result r;
	pv_strategy_execute(&n->base, &health_op, &r, NULL);
	assert_true(r.success);
	pv_result_clear(&r);
	pv_strategy_unref(&n->base);

	assert_null(pv_strategy_alloc(sizeof(noop), &noop_methods, "", "noop"));
	assert_int_equal(pv_error_last_code(), PV_EINVAL);
	assert_non_null(strstr(pv_error_last(), "name"));
	assert_null(pv_strategy_alloc(sizeof(pv_strategy) - 1, &noop_methods, "n2", "noop"));
	assert_int_equal(pv_error_last_code(), PV_EINVAL);
	assert_non_null(strstr(pv_error_last(), "n2"));
}

int main(void)
{
	pv_log_set_level(PV_LOG_OFF);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_spec_quick_start_register_initialize_execute),
		cmocka_unit_test(test_spec_runtime_switching_and_current),
		cmocka_unit_test(test_spec_metrics_and_health),
		cmocka_unit_test(test_empty_context_answers_no_strategy_available),
		cmocka_unit_test(test_register_same_name_replaces_and_says_so),
		cmocka_unit_test(test_initialize_reports_failures_and_succeeds_with_one),
		cmocka_unit_test(test_initialize_fails_when_none_initializes),
		cmocka_unit_test(test_reregistered_strategy_becomes_current_after_a_failed_initialize),
		cmocka_unit_test(test_not_initialized_strategy_answers_not_initialized),
		cmocka_unit_test(test_execute_on_unknown_name_is_strategy_not_found),
		cmocka_unit_test(test_unsupported_operation_fails_and_counts_as_failure),
		cmocka_unit_test(test_passed_deadline_times_out_without_calling),
		cmocka_unit_test(test_invalid_operation_type_is_invalid_parameters),
		cmocka_unit_test(test_success_rate_is_nan_with_zero_operations),
		cmocka_unit_test(test_health_is_cached_for_the_interval),
		cmocka_unit_test(test_check_health_of_null_checks_the_current_strategy),
		cmocka_unit_test(test_put_health_is_used_until_one_interval_after_its_check),
		cmocka_unit_test(test_health_monitor_thread_refreshes_health),
		cmocka_unit_test(test_unregister_during_call_destroys_after_the_call),
		cmocka_unit_test(test_unregister_current_moves_to_first_remaining),
		cmocka_unit_test(test_context_json_lists_strategies_with_metrics),
		cmocka_unit_test(test_result_metadata_has_provider_latency_attempts),
		cmocka_unit_test(test_strategy_alloc_sets_up_the_base_or_names_the_problem),
	};
	return cmocka_run_group_tests_name("context", tests, NULL, NULL);
}
