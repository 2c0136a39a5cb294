/*
 * test_metrics.c - the metrics recorder (histogram, percentiles, EWMA,
 * last error), results, operation names and the routing hash.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <math.h>
#include <string.h>
#include <cmocka.h>
#include "provisio/provisio.h"

static void test_histogram_buckets_are_ordered_and_tight(void **state)
{
	(void)state;
	assert_int_equal(pv_hist_bucket(0), 0);
	assert_int_equal(pv_hist_bucket(63), 0);
	assert_int_equal(pv_hist_bucket(64), 1);
	assert_int_equal(pv_hist_bucket(UINT64_MAX), PV_HIST_BUCKETS - 1);
	unsigned prev = 0;
	for (uint64_t ns = 64; ns < (1ull << 40); ns = ns + ns / 13 + 1) {
		unsigned b = pv_hist_bucket(ns);
		assert_true(b >= prev);
		prev = b;
		uint64_t upper = pv_hist_bucket_upper(b);
		assert_true(upper > ns);                          /* the bound is above the value */
		assert_true((double)upper <= (double)ns * 1.125 + 1); /* and within one sub-bucket */
	}
}

static void test_percentiles_follow_the_distribution(void **state)
{
	(void)state;
	pv_metrics_recorder m;
	pv_metrics_recorder_init(&m);
	pv_result ok = {.success = true};
	for (int i = 1; i <= 1000; i++) /* 1..1000 us */
		pv_metrics_record(&m, &ok, (uint64_t)i * 1000, 0);
	pv_metrics s;
	pv_metrics_snapshot(&m, &s);
	assert_int_equal(s.total, 1000);
	assert_true(fabs(s.mean_latency_ms - 0.5005) < 1e-9);
	assert_true(s.p50_ms >= 0.500 && s.p50_ms <= 0.500 * 1.125);
	assert_true(s.p95_ms >= 0.950 && s.p95_ms <= 0.950 * 1.125);
	assert_true(s.p99_ms >= 0.990 && s.p99_ms <= 0.990 * 1.125);
	assert_int_equal(s.last_used_ms, 0); /* no end time given */
}

static void test_ewma_moves_an_eighth_toward_each_sample(void **state)
{
	(void)state;
	pv_metrics_recorder m;
	pv_metrics_recorder_init(&m);
	pv_result ok = {.success = true};
	pv_metrics_record(&m, &ok, 8000, 0);
	assert_int_equal(pv_metrics_ewma_ns(&m), 8000); /* the first sample is the average */
	pv_metrics_record(&m, &ok, 16000, 0);
	assert_int_equal(pv_metrics_ewma_ns(&m), 9000);
	pv_metrics_record(&m, &ok, 1000, 0);
	assert_int_equal(pv_metrics_ewma_ns(&m), 8000);
}

static void test_failures_keep_last_error_and_consecutive_count(void **state)
{
	(void)state;
	pv_metrics_recorder m;
	pv_metrics_recorder_init(&m);
	pv_result bad = PV_RESULT_INIT, ok = {.success = true};
	pv_result_fail(&bad, "CAPACITY", PV_CLASS_CAPACITY, "no room in %s", "us-east-1a");
	pv_metrics_record(&m, &bad, 10, 0);
	pv_metrics_record(&m, &bad, 10, 0);
	pv_metrics s;
	pv_metrics_snapshot(&m, &s);
	assert_int_equal(s.consecutive_failures, 2);
	assert_string_equal(s.last_error_code, "CAPACITY");
	assert_string_equal(s.last_error_message, "no room in us-east-1a");
	assert_true(fabs(s.success_rate) < 1e-9);
	pv_metrics_record(&m, &ok, 10, 0);
	pv_metrics_snapshot(&m, &s);
	assert_int_equal(s.consecutive_failures, 0);
	assert_string_equal(s.last_error_code, "CAPACITY"); /* kept after recovery */
	pv_result_clear(&bad);
}

static void test_result_fail_ok_move_and_classes(void **state)
{
	(void)state;
	pv_result r = PV_RESULT_INIT, moved = PV_RESULT_INIT;
	pv_result_ok(&r, json_pack("{s:i}", "count", 2));
	pv_result_fail(&r, "THROTTLED", PV_CLASS_NONE, "slow down");
	assert_false(r.success);
	assert_null(r.data); /* a failure carries no stale data */
	assert_int_equal(r.error_class, PV_CLASS_INTERNAL); /* a failure always has a class */
	pv_result_meta_set(&r, "region", json_string("eu-west-1"));
	pv_result_move(&moved, &r);
	assert_null(pv_result_message(&r));
	assert_string_equal(pv_result_message(&moved), "slow down");
	json_t *meta = pv_result_metadata(&moved);
	assert_string_equal(json_string_value(json_object_get(meta, "region")), "eu-west-1");
	json_decref(meta);
	pv_result_clear(&moved);

	char longcode[100];
	memset(longcode, 'X', sizeof longcode - 1);
	longcode[99] = '\0';
	pv_result_fail(&r, longcode, PV_CLASS_PERMANENT, NULL);
	assert_int_equal(strlen(r.error_code), PV_RESULT_CODE_MAX - 1); /* truncated, terminated */
	pv_result_clear(&r);

	assert_int_equal(pv_error_code_class("THROTTLED"), PV_CLASS_THROTTLED);
	assert_int_equal(pv_error_code_class("CAPACITY"), PV_CLASS_CAPACITY);
	assert_int_equal(pv_error_code_class("INVALID_PARAMETERS"), PV_CLASS_PERMANENT);
	assert_true(pv_error_class_retryable(PV_CLASS_TRANSIENT));
	assert_true(pv_error_class_retryable(PV_CLASS_THROTTLED));
	assert_false(pv_error_class_retryable(PV_CLASS_CAPACITY));
	assert_false(pv_error_class_retryable(PV_CLASS_PERMANENT));
	pv_error_class c;
	assert_int_equal(pv_error_class_parse("throttled", &c), 0);
	assert_int_equal(c, PV_CLASS_THROTTLED);
	assert_int_equal(pv_error_class_parse("flaky", &c), PV_EINVAL);
	assert_non_null(strstr(pv_error_last(), "transient"));
}

static void test_operation_names_parse_both_ways(void **state)
{
	(void)state;
	for (int t = 0; t < PV_OP_COUNT; t++) {
		pv_op_type back;
		assert_int_equal(pv_op_parse(pv_op_name((pv_op_type)t), &back), 0);
		assert_int_equal(back, t);
	}
	pv_op_type t;
	assert_int_equal(pv_op_parse("CREATE_INSTANCES", &t), 0);
	assert_int_equal(t, PV_OP_CREATE_INSTANCES);
	assert_int_equal(pv_op_parse("reboot", &t), PV_EINVAL);
	assert_non_null(strstr(pv_error_last(), "health_check"));
}

static void test_routing_hash_is_stable_and_key_order_free(void **state)
{
	(void)state;
	/* FNV-1a 64 of "a" is a published constant: the hash is the same in every process. */
	assert_true(pv_fnv1a64(PV_FNV64_OFFSET, "a", 1) == 0xaf63dc4c8601ec8cull);
	json_t *ctx = json_pack("{s:s}", "routing_key", "a");
	pv_operation op = {.type = PV_OP_CREATE_INSTANCES, .context = ctx};
	assert_true(pv_operation_routing_hash(&op) == 0xaf63dc4c8601ec8cull);
	json_decref(ctx);

	json_t *p1 = json_loads("{\"count\": 2, \"template_id\": \"t\"}", 0, NULL);
	json_t *p2 = json_loads("{\"template_id\": \"t\", \"count\": 2}", 0, NULL);
	pv_operation o1 = {.type = PV_OP_CREATE_INSTANCES, .params = p1};
	pv_operation o2 = {.type = PV_OP_CREATE_INSTANCES, .params = p2};
	pv_operation o3 = {.type = PV_OP_TERMINATE_INSTANCES, .params = p2};
	assert_true(pv_operation_routing_hash(&o1) == pv_operation_routing_hash(&o2));
	assert_true(pv_operation_routing_hash(&o1) != pv_operation_routing_hash(&o3));
	json_decref(p1);
	json_decref(p2);
}

static void test_strategy_setup_rejects_bad_input(void **state)
{
	(void)state;
	static const pv_strategy_methods no_execute = {.version = 1};
	pv_strategy s;
	assert_int_equal(pv_strategy_setup(&s, &no_execute, "x", "t"), PV_EINVAL);
	assert_non_null(strstr(pv_error_last(), "execute"));
	pv_strategy *sim;
	assert_int_equal(pv_sim_new(&sim, "", NULL, NULL), PV_EINVAL);
	assert_non_null(strstr(pv_error_last(), "name"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_histogram_buckets_are_ordered_and_tight),
		cmocka_unit_test(test_percentiles_follow_the_distribution),
		cmocka_unit_test(test_ewma_moves_an_eighth_toward_each_sample),
		cmocka_unit_test(test_failures_keep_last_error_and_consecutive_count),
		cmocka_unit_test(test_result_fail_ok_move_and_classes),
		cmocka_unit_test(test_operation_names_parse_both_ways),
		cmocka_unit_test(test_routing_hash_is_stable_and_key_order_free),
		cmocka_unit_test(test_strategy_setup_rejects_bad_input),
	};
	return cmocka_run_group_tests_name("metrics", tests, NULL, NULL);
}
