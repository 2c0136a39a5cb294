/*
 * test_sim.c - the simulated provider: scripts, failures, capacity, boot
 * delay, instance lifecycle, config validation.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <string.h>
#include <cmocka.h>
#include "provisio/provisio.h"

static pv_strategy *sim_from(const char *json, const pv_clock *clock)
{
	json_error_t err;
	json_t *cfg = json ? json_loads(json, 0, &err) : NULL;
	pv_strategy *s = NULL;
	assert_int_equal(pv_sim_new(&s, "sim1", cfg, clock), 0);
	json_decref(cfg);
	return s;
}

static void run(pv_strategy *s, pv_op_type type, json_t *params, pv_result *r)
{
	pv_operation op = {.type = type, .params = params};
	pv_strategy_execute(s, &op, r, NULL);
	json_decref(params);
}

static void test_script_runs_in_order_then_falls_back_to_config(void **state)
{
	(void)state;
	pv_strategy *s = sim_from("{\"script\": [\"fail:THROTTLED*2\", \"ok\", \"fail:CAPACITY:capacity\"]}", NULL);
	pv_result r = PV_RESULT_INIT;
	const char *want[] = {"THROTTLED", "THROTTLED", "", "CAPACITY", ""};
	pv_error_class cls[] = {PV_CLASS_THROTTLED, PV_CLASS_THROTTLED, PV_CLASS_NONE,
				PV_CLASS_CAPACITY, PV_CLASS_NONE};
	for (int i = 0; i < 5; i++) {
		run(s, PV_OP_HEALTH_CHECK, NULL, &r);
		assert_string_equal(r.error_code, want[i]);
		assert_int_equal(r.error_class, cls[i]);
		assert_int_equal(r.success, want[i][0] == '\0');
		assert_string_equal(r.provider, "sim1");
		pv_result_clear(&r);
	}
	assert_int_equal(pv_sim_calls(s, PV_OP_HEALTH_CHECK), 5);
	pv_strategy_unref(s);
}

static void test_failure_rate_is_seeded_and_close_to_rate(void **state)
{
	(void)state;
	int fails[2] = {0, 0};
	for (int k = 0; k < 2; k++) {
		pv_strategy *s = sim_from("{\"seed\": 7, \"failure_rate\": 0.25, \"failure_code\": \"THROTTLED\"}", NULL);
		for (int i = 0; i < 4000; i++) {
			pv_result r = PV_RESULT_INIT;
			run(s, PV_OP_HEALTH_CHECK, NULL, &r);
			if (!r.success) {
				fails[k]++;
				assert_int_equal(r.error_class, PV_CLASS_THROTTLED);
			}
			pv_result_clear(&r);
		}
		pv_strategy_unref(s);
	}
	assert_int_equal(fails[0], fails[1]); /* same seed, same sequence */
	assert_in_range(fails[0], 850, 1150);
}

static void test_create_beyond_capacity_is_partial_then_capacity_error(void **state)
{
	(void)state;
	pv_strategy *s = sim_from("{\"capacity\": 3}", NULL);
	pv_result r = PV_RESULT_INIT;
	run(s, PV_OP_CREATE_INSTANCES, json_pack("{s:i, s:s}", "count", 5, "request_id", "req-1"), &r);
	assert_true(r.success);
	assert_int_equal(json_integer_value(json_object_get(r.data, "count")), 3);
	assert_int_equal(json_integer_value(json_object_get(r.data, "requested")), 5);
	assert_true(json_is_true(json_object_get(r.data, "partial")));
	assert_int_equal(json_array_size(json_object_get(r.data, "instances")), 3);
	json_t *first = json_array_get(json_object_get(r.data, "instance_ids"), 0);
	char id[64];
	strcpy(id, json_string_value(first));
	pv_result_clear(&r);

	run(s, PV_OP_CREATE_INSTANCES, json_pack("{s:i}", "count", 1), &r);
	assert_false(r.success);
	assert_string_equal(r.error_code, "CAPACITY");
	assert_int_equal(r.error_class, PV_CLASS_CAPACITY);
	pv_result_clear(&r);

	run(s, PV_OP_TERMINATE_INSTANCES, json_pack("{s:[s]}", "instance_ids", id), &r);
	assert_true(r.success);
	pv_result_clear(&r);
	assert_int_equal(pv_sim_live_instances(s), 2);
	run(s, PV_OP_CREATE_INSTANCES, json_pack("{s:i}", "count", 1), &r);
	assert_true(r.success);
	assert_false(json_is_true(json_object_get(r.data, "partial")));
	pv_result_clear(&r);
	pv_strategy_unref(s);
}

static void test_instances_boot_after_delay_on_manual_clock(void **state)
{
	(void)state;
	pv_manual_clock *mc = pv_manual_clock_new(1000);
	pv_strategy *s = sim_from("{\"boot_delay_ms\": 100}", pv_manual_clock_get(mc));
	pv_result r = PV_RESULT_INIT;
	run(s, PV_OP_CREATE_INSTANCES, json_pack("{s:i}", "count", 1), &r);
	json_t *inst = json_array_get(json_object_get(r.data, "instances"), 0);
	assert_string_equal(json_string_value(json_object_get(inst, "state")), "pending");
	json_t *ids = json_incref(json_object_get(r.data, "instance_ids"));
	pv_result_clear(&r);

	run(s, PV_OP_GET_INSTANCE_STATUS, json_pack("{s:O}", "instance_ids", ids), &r);
	inst = json_array_get(json_object_get(r.data, "instances"), 0);
	assert_string_equal(json_string_value(json_object_get(inst, "state")), "pending");
	pv_result_clear(&r);

	pv_manual_clock_advance(mc, 100 * PV_NS_PER_MS);
	run(s, PV_OP_GET_INSTANCE_STATUS, json_pack("{s:O}", "instance_ids", ids), &r);
	inst = json_array_get(json_object_get(r.data, "instances"), 0);
	assert_string_equal(json_string_value(json_object_get(inst, "state")), "running");
	pv_result_clear(&r);

	run(s, PV_OP_TERMINATE_INSTANCES, json_pack("{s:O}", "instance_ids", ids), &r);
	pv_result_clear(&r);
	run(s, PV_OP_DESCRIBE_RESOURCE_INSTANCES, NULL, &r);
	inst = json_array_get(json_object_get(r.data, "instances"), 0);
	assert_string_equal(json_string_value(json_object_get(inst, "state")), "terminated");
	pv_result_clear(&r);
	json_decref(ids);
	pv_strategy_unref(s);
	pv_manual_clock_free(mc);
}

static void test_latency_sleeps_on_clock_and_respects_deadline(void **state)
{
	(void)state;
	pv_manual_clock *mc = pv_manual_clock_new(0);
	const pv_clock *clk = pv_manual_clock_get(mc);
	pv_strategy *s = sim_from("{\"latency\": {\"mean_ms\": 50}}", clk);
	pv_result r = PV_RESULT_INIT;
	pv_operation op = {.type = PV_OP_HEALTH_CHECK};
	pv_strategy_execute(s, &op, &r, clk);
	assert_true(r.success);
	assert_int_equal(r.latency_ns, 50 * PV_NS_PER_MS);
	pv_result_clear(&r);

	op.deadline_ns = pv_clock_now(clk) + 20 * PV_NS_PER_MS;
	pv_strategy_execute(s, &op, &r, clk);
	assert_false(r.success);
	assert_string_equal(r.error_code, "TIMEOUT");
	assert_int_equal(pv_clock_now(clk), op.deadline_ns); /* waited until, not past, the deadline */
	pv_result_clear(&r);
	pv_strategy_unref(s);
	pv_manual_clock_free(mc);
}

/* health_check answers what the sim knows: status, message, latency. */
static void test_health_check_answers_status_message_and_latency(void **state)
{
	(void)state;
	pv_strategy *s = sim_from(NULL, NULL);
	pv_result r = PV_RESULT_INIT, again = PV_RESULT_INIT;
	run(s, PV_OP_HEALTH_CHECK, NULL, &r);
	assert_true(r.success);
	assert_true(json_is_true(json_object_get(r.data, "healthy")));
	assert_string_equal(json_string_value(json_object_get(r.data, "status")), "healthy");
	assert_string_equal(json_string_value(json_object_get(r.data, "message")), "sim 'sim1' healthy");
	assert_true(json_real_value(json_object_get(r.data, "latency_ms")) == 0.0);
	run(s, PV_OP_HEALTH_CHECK, NULL, &again);
	assert_ptr_equal(again.data, r.data); /* one shared answer: the fast path allocates nothing */
	pv_result_clear(&again);
	pv_result_clear(&r);

	pv_sim_set_healthy(s, 0);
	run(s, PV_OP_HEALTH_CHECK, NULL, &r);
	assert_false(r.success);
	assert_string_equal(r.error_code, "UNHEALTHY");
	json_t *h = json_object_get(pv_result_meta(&r), "health");
	assert_string_equal(json_string_value(json_object_get(h, "status")), "unhealthy");
	assert_string_equal(json_string_value(json_object_get(h, "message")), "sim 'sim1' unhealthy");
	pv_result_clear(&r);
	pv_strategy_unref(s);

	pv_manual_clock *mc = pv_manual_clock_new(0);
	s = sim_from("{\"latency\": {\"mean_ms\": 50}}", pv_manual_clock_get(mc));
	run(s, PV_OP_HEALTH_CHECK, NULL, &r);
	assert_true(r.success);
	assert_true(json_real_value(json_object_get(r.data, "latency_ms")) == 50.0);
	pv_result_clear(&r);
	pv_strategy_unref(s);
	pv_manual_clock_free(mc);
}

static void test_unsupported_operation_and_templates(void **state)
{
	(void)state;
	pv_strategy *s = sim_from("{\"operations\": [\"health_check\", \"validate_template\"]}", NULL);
	pv_result r = PV_RESULT_INIT;
	run(s, PV_OP_CREATE_INSTANCES, NULL, &r);
	assert_string_equal(r.error_code, "OPERATION_NOT_SUPPORTED");
	pv_result_clear(&r);
	run(s, PV_OP_VALIDATE_TEMPLATE, json_pack("{s:s}", "template_id", "sim-small"), &r);
	assert_true(r.success);
	pv_result_clear(&r);
	run(s, PV_OP_VALIDATE_TEMPLATE, json_pack("{s:{s:i}}", "template", "ncpus", 2), &r);
	assert_false(r.success);
	assert_non_null(strstr(pv_result_message(&r), "templateId"));
	pv_result_clear(&r);
	pv_capabilities c;
	assert_int_equal(pv_strategy_capabilities(s, &c), 0);
	assert_true(pv_capabilities_supports(&c, PV_OP_HEALTH_CHECK));
	assert_false(pv_capabilities_supports(&c, PV_OP_CREATE_INSTANCES));
	pv_capabilities_clear(&c);
	pv_strategy_unref(s);
}

static void test_bad_config_names_the_field(void **state)
{
	(void)state;
	const char *bad[][2] = {
		{"{\"failure_rate\": 2}", "failure_rate"},
		{"{\"latency\": {\"distribution\": \"cauchy\"}}", "latency.distribution"},
		{"{\"capacity\": -5}", "capacity"},
		{"{\"failure_class\": \"sometimes\"}", "failure_class"},
		{"{\"script\": [\"explode\"]}", "explode"},
		{"{\"operations\": [\"fly\"]}", "operations"},
		{"{\"failure_rat\": 0.5}", "unknown field 'failure_rat'"},
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		json_t *cfg = json_loads(bad[i][0], 0, NULL);
		pv_strategy *s = NULL;
		assert_int_equal(pv_sim_new(&s, "bad", cfg, NULL), PV_EINVAL);
		assert_null(s);
		assert_non_null(strstr(pv_error_last(), bad[i][1]));
		json_decref(cfg);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_script_runs_in_order_then_falls_back_to_config),
		cmocka_unit_test(test_failure_rate_is_seeded_and_close_to_rate),
		cmocka_unit_test(test_create_beyond_capacity_is_partial_then_capacity_error),
		cmocka_unit_test(test_instances_boot_after_delay_on_manual_clock),
		cmocka_unit_test(test_latency_sleeps_on_clock_and_respects_deadline),
		cmocka_unit_test(test_health_check_answers_status_message_and_latency),
		cmocka_unit_test(test_unsupported_operation_and_templates),
		cmocka_unit_test(test_bad_config_names_the_field),
	};
	return cmocka_run_group_tests_name("sim", tests, NULL, NULL);
}
