/*
 * test_aws_emulator.c - the AWS provider against the EC2 emulator, both
 * real programs talking HTTP on loopback: launch / describe / terminate
 * through RunInstances and CreateFleet, partial capacity, type fail-over,
 * injected throttling, 5xx and dropped connections (no duplicate
 * instances), wrong credentials, deadlines, DryRun validation, health,
 * IMDSv2 credentials, client-side buckets, and the raw requests captured
 * from real EC2 clients replayed against the emulator's verifier.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>
#include <cmocka.h>
#include "provisio/provisio.h"
#include "provisio/aws.h"
#include "emu_harness.h"

#ifndef PV_EC2_EMULATOR
#define PV_EC2_EMULATOR "ec2-emulator"
#endif
#ifndef PV_TEST_DATA_DIR
#define PV_TEST_DATA_DIR "tests/data"
#endif

#define SECRET EMU_SECRET

/* The emulator, like EC2, refuses a launch template it does not know; the
 * tests (and the captured requests) that name this id seed it at start. */
#define LT_ID "lt-0123456789abcdef0"
#define LT_SEED LT_ID ":provisio-test-lt:ami-0abc1234:t3.micro"
/* Well-formed (lt- and 17 hex digits) but never made. */
#define LT_UNKNOWN "lt-0badc0ffee0000000"

static emu_proc start(const char *const *args)
{
	emu_proc e;
	assert_int_equal(emu_start(&e, PV_EC2_EMULATOR, args), 0);
	return e;
}

/* A provider named `name` aimed at the emulator; `extra` is merged into
 * its config. */
static pv_strategy *provider_named(const emu_proc *e, const char *name, const char *extra)
{
	pv_strategy *s = emu_provider(e, name, extra);
	if (!s)
		fail_msg("aws provider: %s", pv_error_last());
	return s;
}

static pv_strategy *provider(const emu_proc *e, const char *extra)
{
	return provider_named(e, "aws-test", extra);
}

static void run(pv_strategy *s, pv_op_type type, json_t *params, uint64_t timeout_ms, pv_result *r)
{
	pv_operation op = {.type = type, .params = params,
			   .deadline_ns = timeout_ms ? pv_now_ns() + timeout_ms * PV_NS_PER_MS : 0};
	pv_strategy_execute(s, &op, r, NULL);
	json_decref(params);
}

static json_t *tmpl_run(void)
{
	return json_pack("{s:s, s:s, s:s, s:s, s:s}", "templateId", "t-run", "imageId", "ami-12345678",
			 "vmType", "t3.micro", "instanceTags", "team=blue;env=test", "providerApi",
			 "RunInstances");
}

static void test_run_instances_create_describe_terminate(void **state)
{
	(void)state;
	emu_proc e = start(NULL);
	pv_strategy *s = provider(&e, NULL);
	pv_result r = PV_RESULT_INIT;
	run(s, PV_OP_CREATE_INSTANCES,
	    json_pack("{s:i, s:o, s:s}", "count", 3, "template", tmpl_run(), "request_id", "req-1"), 0, &r);
	assert_true(r.success);
	assert_string_equal(r.provider, "aws-test");
	assert_int_equal(json_integer_value(json_object_get(r.data, "count")), 3);
	assert_false(json_is_true(json_object_get(r.data, "partial")));
	json_t *in0 = json_array_get(json_object_get(r.data, "instances"), 0);
	assert_string_equal(json_string_value(json_object_get(in0, "provider")), "aws-test");
	assert_string_equal(json_string_value(json_object_get(in0, "request_id")), "req-1");
	assert_string_equal(json_string_value(json_object_get(in0, "template_id")), "t-run");
	assert_string_equal(json_string_value(json_object_get(json_object_get(in0, "tags"), "team")), "blue");
	assert_string_equal(json_string_value(json_object_get(in0, "lifecycle")), "on-demand");
	assert_non_null(json_object_get(in0, "private_ip"));
	json_t *ids = json_incref(json_object_get(r.data, "instance_ids"));
	pv_result_clear(&r);
	assert_int_equal(emu_stat(&e, "calls", "RunInstances"), 1);

	run(s, PV_OP_GET_INSTANCE_STATUS, json_pack("{s:O}", "instance_ids", ids), 0, &r);
	assert_true(r.success);
	assert_int_equal(json_array_size(json_object_get(r.data, "instances")), 3);
	pv_result_clear(&r);
	run(s, PV_OP_GET_INSTANCE_STATUS, json_pack("{s:s}", "request_id", "req-1"), 0, &r);
	assert_true(r.success);
	assert_int_equal(json_integer_value(json_object_get(r.data, "count")), 3);
	pv_result_clear(&r);

	run(s, PV_OP_TERMINATE_INSTANCES, json_pack("{s:O}", "instance_ids", ids), 0, &r);
	assert_true(r.success);
	assert_int_equal(json_array_size(json_object_get(r.data, "terminated")), 3);
	pv_result_clear(&r);
	/* Terminating again is still success: EC2 keeps terminated instances. */
	run(s, PV_OP_TERMINATE_INSTANCES, json_pack("{s:O}", "instance_ids", ids), 0, &r);
	assert_true(r.success);
	pv_result_clear(&r);
	assert_int_equal(emu_stat(&e, "instances", "live"), 0);
	json_decref(ids);
	pv_strategy_unref(s);
	emu_stop(&e);
}

static void test_unknown_instance_is_not_found(void **state)
{
	(void)state;
	emu_proc e = start(NULL);
	pv_strategy *s = provider(&e, NULL);
	pv_result r = PV_RESULT_INIT;
	run(s, PV_OP_GET_INSTANCE_STATUS, json_pack("{s:[s]}", "instance_ids", "i-0123456789abcdef0"), 0, &r);
	assert_false(r.success);
	assert_string_equal(r.error_code, "NOT_FOUND");
	assert_int_equal(r.error_class, PV_CLASS_PERMANENT);
	assert_non_null(strstr(pv_result_message(&r), "InvalidInstanceID.NotFound"));
	pv_result_clear(&r);
	pv_strategy_unref(s);
	emu_stop(&e);
}

static void test_states_move_from_pending_to_running(void **state)
{
	(void)state;
	const char *args[] = {"--boot-ms", "150", NULL};
	emu_proc e = start(args);
	pv_strategy *s = provider(&e, NULL);
	pv_result r = PV_RESULT_INIT;
	run(s, PV_OP_CREATE_INSTANCES, json_pack("{s:i, s:o, s:s}", "count", 1, "template", tmpl_run(),
						 "request_id", "req-boot"), 0, &r);
	assert_true(r.success);
	json_t *in0 = json_array_get(json_object_get(r.data, "instances"), 0);
	assert_string_equal(json_string_value(json_object_get(in0, "state")), "pending");
	pv_result_clear(&r);
	pv_clock_sleep(NULL, 300 * PV_NS_PER_MS);
	run(s, PV_OP_GET_INSTANCE_STATUS, json_pack("{s:s}", "request_id", "req-boot"), 0, &r);
	in0 = json_array_get(json_object_get(r.data, "instances"), 0);
	assert_string_equal(json_string_value(json_object_get(in0, "state")), "running");
	pv_result_clear(&r);
	pv_strategy_unref(s);
	emu_stop(&e);
}

static void test_create_fleet_weights_and_per_override_errors(void **state)
{
	(void)state;
	const char *args[] = {"--ice-types", "t3.micro", "--launch-template", LT_SEED, NULL};
	emu_proc e = start(args);
	pv_strategy *s = provider(&e, NULL);
	json_t *t = json_pack("{s:s, s:s, s:s, s:{s:i, s:i}, s:s, s:s}", "templateId", "t-fleet", "providerApi",
			      "EC2Fleet", "launchTemplateId", LT_ID, "vmTypes", "t3.micro", 1,
			      "t3.small", 2, "subnetId", "subnet-1", "priceType", "ondemand");
	pv_result r = PV_RESULT_INIT;
	run(s, PV_OP_CREATE_INSTANCES, json_pack("{s:i, s:o, s:s}", "count", 4, "template", t, "request_id", "req-f"),
	    0, &r);
	assert_true(r.success);
	assert_string_equal(json_string_value(json_object_get(r.data, "api")), "EC2Fleet");
	assert_non_null(json_object_get(r.data, "fleet_id"));
	/* t3.micro has no capacity: two t3.small of weight 2 make 4 units. */
	assert_int_equal(json_integer_value(json_object_get(r.data, "count")), 2);
	assert_int_equal(json_integer_value(json_object_get(r.data, "fulfilled_capacity")), 4);
	assert_false(json_is_true(json_object_get(r.data, "partial")));
	json_t *err0 = json_array_get(json_object_get(r.data, "errors"), 0);
	assert_string_equal(json_string_value(json_object_get(err0, "code")), "InsufficientInstanceCapacity");
	assert_string_equal(json_string_value(json_object_get(err0, "instance_type")), "t3.micro");
	json_t *ids = json_incref(json_object_get(r.data, "instance_ids"));
	pv_result_clear(&r);
	run(s, PV_OP_DESCRIBE_RESOURCE_INSTANCES, json_pack("{s:s}", "resource_id", "req-f"), 0, &r);
	assert_true(r.success);
	assert_int_equal(json_integer_value(json_object_get(r.data, "count")), 2);
	json_t *in0 = json_array_get(json_object_get(r.data, "instances"), 0);
	assert_string_equal(json_string_value(json_object_get(in0, "instance_type")), "t3.small");
	pv_result_clear(&r);
	run(s, PV_OP_TERMINATE_INSTANCES, json_pack("{s:o}", "instance_ids", ids), 0, &r);
	assert_true(r.success);
	pv_result_clear(&r);
	assert_int_equal(emu_stat(&e, "calls", "CreateFleet"), 1);
	pv_strategy_unref(s);
	emu_stop(&e);
}

static void test_spot_fleet_instances_are_spot(void **state)
{
	(void)state;
	const char *args[] = {"--launch-template", LT_SEED, NULL};
	emu_proc e = start(args);
	pv_strategy *s = provider(&e, NULL);
	json_t *t = json_pack("{s:s, s:s, s:s, s:[s], s:s, s:s}", "templateId", "t-spot", "providerApi", "EC2Fleet",
			      "launchTemplateId", LT_ID, "vmTypes", "m5.large", "priceType", "spot",
			      "allocationStrategy", "capacityOptimized");
	pv_result r = PV_RESULT_INIT;
	run(s, PV_OP_CREATE_INSTANCES, json_pack("{s:i, s:o, s:s}", "count", 2, "template", t, "request_id", "req-s"),
	    0, &r);
	assert_true(r.success);
	json_t *in0 = json_array_get(json_object_get(r.data, "instances"), 0);
	assert_string_equal(json_string_value(json_object_get(in0, "lifecycle")), "spot");
	pv_result_clear(&r);
	run(s, PV_OP_GET_INSTANCE_STATUS, json_pack("{s:s}", "request_id", "req-s"), 0, &r);
	in0 = json_array_get(json_object_get(r.data, "instances"), 0);
	assert_string_equal(json_string_value(json_object_get(in0, "lifecycle")), "spot");
	pv_result_clear(&r);
	pv_strategy_unref(s);
	emu_stop(&e);
}

static void test_partial_capacity_and_all_or_nothing(void **state)
{
	(void)state;
	const char *args[] = {"--capacity", "5", NULL};
	emu_proc e = start(args);
	pv_strategy *s = provider(&e, NULL);
	pv_result r = PV_RESULT_INIT;
	run(s, PV_OP_CREATE_INSTANCES,
	    json_pack("{s:i, s:o, s:s, s:b}", "count", 8, "template", tmpl_run(), "request_id", "req-aon",
		      "all_or_nothing", 1), 0, &r);
	assert_false(r.success);
	assert_string_equal(r.error_code, "CAPACITY");
	assert_int_equal(r.error_class, PV_CLASS_CAPACITY);
	pv_result_clear(&r);
	assert_int_equal(emu_stat(&e, "instances", "live"), 0);

	run(s, PV_OP_CREATE_INSTANCES,
	    json_pack("{s:i, s:o, s:s}", "count", 8, "template", tmpl_run(), "request_id", "req-part"), 0, &r);
	assert_true(r.success);
	assert_int_equal(json_integer_value(json_object_get(r.data, "count")), 5);
	assert_int_equal(json_integer_value(json_object_get(r.data, "requested")), 8);
	assert_true(json_is_true(json_object_get(r.data, "partial")));
	pv_result_clear(&r);
	pv_strategy_unref(s);
	emu_stop(&e);
}

static void test_run_instances_fails_over_to_next_type_on_capacity(void **state)
{
	(void)state;
	const char *args[] = {"--ice-types", "t3.micro", NULL};
	emu_proc e = start(args);
	pv_strategy *s = provider(&e, NULL);
	json_t *t = tmpl_run();
	json_object_set_new(t, "vmTypes", json_pack("[s, s]", "t3.micro", "t3.small"));
	pv_result r = PV_RESULT_INIT;
	run(s, PV_OP_CREATE_INSTANCES, json_pack("{s:i, s:o, s:s}", "count", 2, "template", t, "request_id", "req-fo"),
	    0, &r);
	assert_true(r.success);
	assert_int_equal(json_integer_value(json_object_get(r.data, "count")), 2);
	json_t *in0 = json_array_get(json_object_get(r.data, "instances"), 0);
	assert_string_equal(json_string_value(json_object_get(in0, "instance_type")), "t3.small");
	json_t *err0 = json_array_get(json_object_get(r.data, "errors"), 0);
	assert_string_equal(json_string_value(json_object_get(err0, "code")), "InsufficientInstanceCapacity");
	pv_result_clear(&r);
	pv_strategy_unref(s);
	emu_stop(&e);
}

static void test_only_capacity_errors_everywhere_is_capacity_class(void **state)
{
	(void)state;
	const char *args[] = {"--ice-types", "t3.micro", NULL};
	emu_proc e = start(args);
	pv_strategy *s = provider(&e, NULL);
	pv_result r = PV_RESULT_INIT;
	run(s, PV_OP_CREATE_INSTANCES, json_pack("{s:i, s:o, s:s}", "count", 2, "template", tmpl_run(),
						 "request_id", "req-ice"), 0, &r);
	assert_false(r.success);
	assert_string_equal(r.error_code, "CAPACITY");
	assert_int_equal(r.error_class, PV_CLASS_CAPACITY);
	/* Capacity is not retried by the provider: one call. */
	assert_int_equal(emu_stat(&e, "calls", "RunInstances"), 1);
	pv_result_clear(&r);
	pv_strategy_unref(s);
	emu_stop(&e);
}

static void test_injected_faults_at_30_percent_leave_no_duplicates(void **state)
{
	(void)state;
	const char *args[] = {"--throttle-rate", "0.1", "--error-rate", "0.1", "--drop-rate", "0.1",
			      "--seed", "99", "--no-throttle", NULL};
	emu_proc e = start(args);
	pv_strategy *s = provider(&e, "{\"max_retries\": 12, \"retry_base_ms\": 1, \"retry_max_ms\": 20,"
				      " \"max_instances_per_call\": 5, \"throttle\": {\"enabled\": false}}");
	int requests = 20, per = 7;
	for (int i = 0; i < requests; i++) {
		char rid[32];
		snprintf(rid, sizeof rid, "req-chaos-%d", i);
		pv_result r = PV_RESULT_INIT;
		run(s, PV_OP_CREATE_INSTANCES,
		    json_pack("{s:i, s:o, s:s}", "count", per, "template", tmpl_run(), "request_id", rid), 0, &r);
		if (!r.success)
			fail_msg("request %d failed: %s", i, pv_result_message(&r));
		assert_int_equal(json_integer_value(json_object_get(r.data, "count")), per);
		pv_result_clear(&r);
	}
	/* Exactly what was asked, although retries resent launches. */
	assert_int_equal(emu_stat(&e, "instances", "total"), requests * per);
	json_t *st = emu_admin(&e, "/_emu/stats", NULL);
	json_t *faults = json_object_get(st, "faults");
	if (json_integer_value(json_object_get(faults, "drop")) == 0) {
		char *t = json_dumps(st, 0);
		fail_msg("no drop injected: %s", t);
	}
	assert_true(json_integer_value(json_object_get(faults, "5xx")) > 0);
	assert_true(json_integer_value(json_object_get(faults, "throttle")) > 0);
	const char *tok;
	json_t *n;
	json_object_foreach(json_object_get(json_object_get(st, "instances"), "by_client_token"), tok, n)
		assert_true(json_integer_value(n) <= 5);
	json_decref(st);
	json_t *ps = pv_strategy_stats(s);
	assert_true(json_integer_value(json_object_get(ps, "retries")) > 0);
	json_decref(ps);
	pv_strategy_unref(s);
	emu_stop(&e);
}

static void test_wrong_credentials_fail_permanently_without_retries(void **state)
{
	(void)state;
	emu_proc e = start(NULL);
	pv_strategy *s = provider(&e, "{\"secret_access_key\": \"not-the-secret-xyz\"}");
	pv_result r = PV_RESULT_INIT;
	run(s, PV_OP_CREATE_INSTANCES, json_pack("{s:i, s:o, s:s}", "count", 1, "template", tmpl_run(),
						 "request_id", "req-auth"), 0, &r);
	assert_false(r.success);
	assert_int_equal(r.error_class, PV_CLASS_PERMANENT);
	assert_string_equal(r.error_code, "AUTH_FAILURE");
	assert_null(strstr(pv_result_message(&r), "not-the-secret-xyz"));
	char *all = json_dumps(pv_result_meta(&r), 0);
	assert_null(strstr(all ? all : "", "not-the-secret-xyz"));
	free(all);
	pv_result_clear(&r);
	assert_int_equal(emu_stat(&e, "auth_failures", NULL), 1);
	json_t *ps = pv_strategy_stats(s);
	char *text = json_dumps(ps, 0);
	assert_null(strstr(text, "not-the-secret-xyz"));
	assert_string_equal(json_string_value(json_object_get(ps, "health")), "unhealthy");
	free(text);
	json_decref(ps);
	pv_strategy_unref(s);
	emu_stop(&e);
}

static void test_deadline_is_respected(void **state)
{
	(void)state;
	const char *args[] = {"--latency-ms", "3000", NULL};
	emu_proc e = start(args);
	pv_strategy *s = provider(&e, NULL);
	pv_result r = PV_RESULT_INIT;
	uint64_t t0 = pv_now_ns();
	run(s, PV_OP_HEALTH_CHECK, NULL, 200, &r);
	uint64_t took = pv_now_ns() - t0;
	assert_false(r.success);
	assert_string_equal(r.error_code, "TIMEOUT");
	assert_int_equal(r.error_class, PV_CLASS_TRANSIENT);
	/* It gave up at the deadline instead of waiting for the 3 s answer. */
	assert_true(took < 3000 * PV_NS_PER_MS);
	pv_result_clear(&r);
	pv_strategy_unref(s);
	emu_stop(&e);
}

static void test_validate_template_uses_dry_run(void **state)
{
	(void)state;
	emu_proc e = start(NULL);
	pv_strategy *s = provider(&e, NULL);
	pv_result r = PV_RESULT_INIT;
	run(s, PV_OP_VALIDATE_TEMPLATE, json_pack("{s:o}", "template", tmpl_run()), 0, &r);
	assert_true(r.success);
	assert_true(json_is_true(json_object_get(r.data, "valid")));
	pv_result_clear(&r);
	json_t *bad = tmpl_run();
	json_object_set_new(bad, "imageId", json_string("not-an-ami"));
	run(s, PV_OP_VALIDATE_TEMPLATE, json_pack("{s:o}", "template", bad), 0, &r);
	assert_false(r.success);
	assert_string_equal(r.error_code, "INVALID_PARAMETERS");
	/* refused by the provider's own check, naming the field, before any
	 * call (EC2 would answer InvalidAMIID.Malformed) */
	assert_non_null(strstr(pv_result_message(&r), "field 'imageId'"));
	assert_non_null(strstr(pv_result_message(&r), "not-an-ami"));
	pv_result_clear(&r);
	assert_int_equal(emu_stat(&e, "calls", "RunInstances"), 1);
	assert_int_equal(emu_stat(&e, "instances", "total"), 0);
	pv_strategy_unref(s);
	emu_stop(&e);
}

/* EC2 checks a dry run's parameters first: a type it does not have is not
 * a valid template, although the emulator once answered DryRunOperation. */
static void test_validate_template_with_unknown_instance_type_is_invalid(void **state)
{
	(void)state;
	emu_proc e = start(NULL);
	pv_strategy *s = provider(&e, NULL);
	pv_result r = PV_RESULT_INIT;
	json_t *bad = tmpl_run();
	json_object_set_new(bad, "vmType", json_string("t3.bogus"));
	run(s, PV_OP_VALIDATE_TEMPLATE, json_pack("{s:o}", "template", bad), 0, &r);
	assert_false(r.success);
	assert_string_equal(r.error_code, "INVALID_PARAMETERS");
	assert_int_equal(r.error_class, PV_CLASS_PERMANENT);
	assert_non_null(strstr(pv_result_message(&r), "InvalidParameterValue"));
	assert_non_null(strstr(pv_result_message(&r), "t3.bogus"));
	pv_result_clear(&r);
	assert_int_equal(emu_stat(&e, "calls", "RunInstances"), 1);
	assert_int_equal(emu_stat(&e, "instances", "total"), 0);
	pv_strategy_unref(s);
	emu_stop(&e);
}

/* An id that is not an instance id at all is the caller's error
 * (InvalidInstanceID.Malformed), not an instance gone; a terminate naming
 * one terminates nothing. */
static void test_malformed_instance_id_is_invalid_and_terminates_nothing(void **state)
{
	(void)state;
	emu_proc e = start(NULL);
	pv_strategy *s = provider(&e, NULL);
	pv_result r = PV_RESULT_INIT;
	run(s, PV_OP_GET_INSTANCE_STATUS, json_pack("{s:[s]}", "instance_ids", "i-1"), 0, &r);
	assert_false(r.success);
	assert_string_equal(r.error_code, "INVALID_PARAMETERS");
	assert_int_equal(r.error_class, PV_CLASS_PERMANENT);
	assert_non_null(strstr(pv_result_message(&r), "InvalidInstanceID.Malformed"));
	assert_non_null(strstr(pv_result_message(&r), "i-1"));
	pv_result_clear(&r);
	run(s, PV_OP_CREATE_INSTANCES,
	    json_pack("{s:i, s:o, s:s}", "count", 1, "template", tmpl_run(), "request_id", "req-malformed"), 0, &r);
	assert_true(r.success);
	const char *id = json_string_value(json_array_get(json_object_get(r.data, "instance_ids"), 0));
	json_t *ids = json_pack("[s, s]", id, "web-1");
	pv_result_clear(&r);
	run(s, PV_OP_TERMINATE_INSTANCES, json_pack("{s:o}", "instance_ids", ids), 0, &r);
	assert_false(r.success);
	assert_string_equal(r.error_code, "INVALID_PARAMETERS");
	assert_non_null(strstr(pv_result_message(&r), "web-1"));
	pv_result_clear(&r);
	assert_int_equal(emu_stat(&e, "instances", "live"), 1);
	pv_strategy_unref(s);
	emu_stop(&e);
}

/* aws: tag keys are EC2's: a template asking for one fails for good and
 * launches nothing. */
static void test_reserved_aws_tag_is_refused_and_nothing_launched(void **state)
{
	(void)state;
	emu_proc e = start(NULL);
	pv_strategy *s = provider(&e, NULL);
	pv_result r = PV_RESULT_INIT;
	json_t *t = tmpl_run();
	json_object_set_new(t, "instanceTags", json_string("team=blue;aws:owner=me"));
	run(s, PV_OP_CREATE_INSTANCES, json_pack("{s:i, s:o, s:s}", "count", 2, "template", t, "request_id", "req-aws"),
	    0, &r);
	assert_false(r.success);
	assert_string_equal(r.error_code, "INVALID_PARAMETERS");
	assert_int_equal(r.error_class, PV_CLASS_PERMANENT);
	assert_non_null(strstr(pv_result_message(&r), "aws:"));
	pv_result_clear(&r);
	assert_int_equal(emu_stat(&e, "instances", "total"), 0);
	pv_strategy_unref(s);
	emu_stop(&e);
}

static void test_health_is_unknown_until_a_call_then_healthy(void **state)
{
	(void)state;
	emu_proc e = start(NULL);
	pv_strategy *s = provider(&e, NULL);
	json_t *st = pv_strategy_stats(s);
	assert_string_equal(json_string_value(json_object_get(st, "health")), "unknown");
	json_decref(st);
	pv_result r = PV_RESULT_INIT;
	run(s, PV_OP_HEALTH_CHECK, NULL, 5000, &r);
	assert_true(r.success);
	assert_true(json_integer_value(json_object_get(r.data, "regions")) >= 1);
	pv_result_clear(&r);
	pv_health h = {0};
	assert_int_equal(pv_strategy_health(s, &h), 0);
	assert_true(h.healthy);
	pv_health_clear(&h);
	st = pv_strategy_stats(s);
	assert_string_equal(json_string_value(json_object_get(st, "health")), "healthy");
	assert_int_equal(json_integer_value(json_object_get(json_object_get(st, "calls"), "DescribeRegions")), 2);
	json_decref(st);
	pv_strategy_unref(s);
	emu_stop(&e);
}

static void test_imds_v2_credentials(void **state)
{
	(void)state;
	emu_proc e = start(NULL);
	setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials", 1);
	unsetenv("AWS_ACCESS_KEY_ID");
	unsetenv("AWS_SECRET_ACCESS_KEY");
	unsetenv("AWS_EC2_METADATA_DISABLED");
	char imds[80];
	snprintf(imds, sizeof imds, "http://127.0.0.1:%d", e.port);
	json_t *cfg = json_pack("{s:s, s:s, s:s}", "region", "us-east-1", "endpoint_url", e.url, "imds_endpoint", imds);
	pv_strategy *s = NULL;
	assert_int_equal(pv_aws_new(&s, "aws-imds", cfg, NULL), 0);
	json_decref(cfg);
	if (pv_strategy_initialize(s) != 0)
		fail_msg("init: %s", pv_error_last());
	pv_result r = PV_RESULT_INIT;
	run(s, PV_OP_HEALTH_CHECK, NULL, 5000, &r);
	assert_true(r.success);
	pv_result_clear(&r);
	json_t *st = pv_strategy_stats(s);
	assert_string_equal(json_string_value(json_object_get(st, "credentials_source")), "imds");
	json_decref(st);
	pv_strategy_unref(s);
	unsetenv("AWS_SHARED_CREDENTIALS_FILE");
	emu_stop(&e);
}

static void test_client_buckets_keep_emulator_from_throttling(void **state)
{
	(void)state;
	emu_proc e = start(NULL); /* EC2's buckets on: RunInstances 5, 2/s */
	pv_strategy *s = provider(&e, NULL);
	for (int i = 0; i < 8; i++) {
		char rid[32];
		snprintf(rid, sizeof rid, "req-bucket-%d", i);
		pv_result r = PV_RESULT_INIT;
		run(s, PV_OP_CREATE_INSTANCES, json_pack("{s:i, s:o, s:s}", "count", 1, "template", tmpl_run(),
							 "request_id", rid), 0, &r);
		assert_true(r.success);
		pv_result_clear(&r);
	}
	assert_int_equal(emu_stat(&e, "throttled", NULL), 0);
	assert_int_equal(emu_stat(&e, "calls", "RunInstances"), 8);
	json_t *st = pv_strategy_stats(s);
	assert_true(json_integer_value(json_object_get(st, "throttle_wait_ms")) > 0);
	assert_int_equal(json_integer_value(json_object_get(st, "throttled_received")), 0);
	json_decref(st);
	pv_strategy_unref(s);
	emu_stop(&e);
}

static void test_without_client_buckets_emulator_throttles_and_provider_retries(void **state)
{
	(void)state;
	emu_proc e = start(NULL);
	pv_strategy *s = provider(&e, "{\"throttle\": {\"enabled\": false}, \"max_retries\": 10}");
	for (int i = 0; i < 8; i++) {
		char rid[32];
		snprintf(rid, sizeof rid, "req-nobucket-%d", i);
		pv_result r = PV_RESULT_INIT;
		run(s, PV_OP_CREATE_INSTANCES, json_pack("{s:i, s:o, s:s}", "count", 1, "template", tmpl_run(),
							 "request_id", rid), 0, &r);
		assert_true(r.success);
		pv_result_clear(&r);
	}
	assert_true(emu_stat(&e, "throttled", NULL) > 0);
	assert_int_equal(emu_stat(&e, "instances", "total"), 8);
	json_t *st = pv_strategy_stats(s);
	assert_true(json_integer_value(json_object_get(st, "throttled_received")) > 0);
	json_decref(st);
	pv_strategy_unref(s);
	emu_stop(&e);
}

typedef struct worker {
	pv_strategy *s;
	int id, ok;
} worker;

static void *create_many(void *arg)
{
	worker *w = arg;
	for (int i = 0; i < 5; i++) {
		char rid[48];
		snprintf(rid, sizeof rid, "req-thread-%d-%d", w->id, i);
		pv_result r = PV_RESULT_INIT;
		json_t *p = json_pack("{s:i, s:o, s:s}", "count", 2, "template", tmpl_run(), "request_id", rid);
		pv_operation op = {.type = PV_OP_CREATE_INSTANCES, .params = p};
		pv_strategy_execute(w->s, &op, &r, NULL);
		w->ok += r.success && json_integer_value(json_object_get(r.data, "count")) == 2;
		pv_result_clear(&r);
		json_decref(p);
	}
	return NULL;
}

static void test_one_provider_serves_threads_concurrently(void **state)
{
	(void)state;
	const char *args[] = {"--no-throttle", "--latency-ms", "20", NULL};
	emu_proc e = start(args);
	pv_strategy *s = provider(&e, "{\"throttle\": {\"enabled\": false}}");
	pthread_t th[4];
	worker w[4];
	for (int i = 0; i < 4; i++) {
		w[i] = (worker){s, i, 0};
		assert_int_equal(pthread_create(&th[i], NULL, create_many, &w[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(w[i].ok, 5);
	}
	assert_int_equal(emu_stat(&e, "instances", "total"), 4 * 5 * 2);
	assert_int_equal(pv_aws_calls(s, "RunInstances"), 20);
	pv_strategy_unref(s);
	emu_stop(&e);
}

/* ---- EC2Fleet without a launch template -------------------------------------------- */

static json_t *tmpl_fleet_no_lt(const char *image)
{
	return json_pack("{s:s, s:s, s:s, s:{s:i, s:i}, s:s, s:[s, s], s:s, s:s}", "templateId", "t-nolt",
			 "providerApi", "EC2Fleet", "imageId", image, "vmTypes", "t3.micro", 1, "t3.small", 1,
			 "keyName", "key-1", "securityGroupIds", "sg-1", "sg-2", "instanceTags", "team=red",
			 "userData", "#!/bin/sh\necho hi");
}

static const char *fleet_create(pv_strategy *s, const char *image, const char *rid, pv_result *r)
{
	run(s, PV_OP_CREATE_INSTANCES, json_pack("{s:i, s:o, s:s}", "count", 2, "template", tmpl_fleet_no_lt(image),
						 "request_id", rid), 0, r);
	if (!r->success)
		fail_msg("%s: %s", rid, pv_result_message(r));
	assert_int_equal(json_integer_value(json_object_get(r->data, "count")), 2);
	return json_string_value(json_object_get(json_object_get(r->data, "launch_template"), "source"));
}

static void test_create_fleet_without_launch_template_makes_one_and_reuses_it(void **state)
{
	(void)state;
	emu_proc e = start(NULL);
	pv_strategy *s = provider(&e, NULL);
	pv_result r = PV_RESULT_INIT;
	assert_string_equal(fleet_create(s, "ami-0abc1234", "req-lt-1", &r), "created");
	const char *lt_id = json_string_value(json_object_get(json_object_get(r.data, "launch_template"), "id"));
	assert_true(lt_id && strncmp(lt_id, "lt-", 3) == 0);
	char made[64];
	snprintf(made, sizeof made, "%s", lt_id);
	pv_result_clear(&r);
	/* The instances carry the launch template's parameters and the
	 * request's own tag. */
	run(s, PV_OP_GET_INSTANCE_STATUS, json_pack("{s:s}", "request_id", "req-lt-1"), 0, &r);
	assert_int_equal(json_integer_value(json_object_get(r.data, "count")), 2);
	json_t *in0 = json_array_get(json_object_get(r.data, "instances"), 0);
	assert_string_equal(json_string_value(json_object_get(in0, "image_id")), "ami-0abc1234");
	assert_string_equal(json_string_value(json_object_get(in0, "instance_type")), "t3.micro");
	json_t *tags = json_object_get(in0, "tags");
	assert_string_equal(json_string_value(json_object_get(tags, "team")), "red");
	assert_string_equal(json_string_value(json_object_get(tags, "provisio:template-id")), "t-nolt");
	assert_string_equal(json_string_value(json_object_get(tags, "provisio:request-id")), "req-lt-1");
	pv_result_clear(&r);

	/* A second request: the same launch template, no new call. */
	assert_string_equal(fleet_create(s, "ami-0abc1234", "req-lt-2", &r), "cached");
	pv_result_clear(&r);
	assert_int_equal(emu_stat(&e, "calls", "CreateLaunchTemplate"), 1);

	/* Another provider (another process) finds it by name. */
	pv_strategy *s2 = provider(&e, NULL);
	assert_string_equal(fleet_create(s2, "ami-0abc1234", "req-lt-3", &r), "existing");
	assert_string_equal(json_string_value(json_object_get(json_object_get(r.data, "launch_template"), "id")),
			    made);
	pv_result_clear(&r);
	assert_int_equal(emu_stat(&e, "calls", "CreateLaunchTemplate"), 2);
	assert_int_equal(emu_stat(&e, "calls", "DescribeLaunchTemplates"), 1);
	assert_int_equal(emu_stat(&e, "launch_templates", NULL), 1);
	assert_int_equal(emu_stat(&e, "calls", "CreateFleet"), 3);
	assert_int_equal(emu_stat(&e, "instances", "total"), 6);

	/* Other launch parameters: another launch template. */
	assert_string_equal(fleet_create(s2, "ami-0fff0000", "req-lt-4", &r), "created");
	pv_result_clear(&r);
	assert_int_equal(emu_stat(&e, "launch_templates", NULL), 2);
	pv_strategy_unref(s2);
	pv_strategy_unref(s);
	emu_stop(&e);
}

/* A launch template this provider cached and someone else deleted (here:
 * the emulator reset) is made again, not reported NOT_FOUND forever. */
static void test_cached_launch_template_deleted_elsewhere_is_made_again(void **state)
{
	(void)state;
	emu_proc e = start(NULL);
	pv_strategy *s = provider(&e, NULL);
	pv_result r = PV_RESULT_INIT;
	assert_string_equal(fleet_create(s, "ami-0abc1234", "req-del-1", &r), "created");
	pv_result_clear(&r);
	json_decref(emu_admin(&e, "/_emu/reset", ""));
	assert_int_equal(emu_stat(&e, "launch_templates", NULL), 0);
	assert_string_equal(fleet_create(s, "ami-0abc1234", "req-del-2", &r), "created");
	pv_result_clear(&r);
	assert_int_equal(emu_stat(&e, "launch_templates", NULL), 1);
	assert_int_equal(emu_stat(&e, "calls", "CreateFleet"), 2); /* the refused one, then this */
	pv_strategy_unref(s);
	emu_stop(&e);
}

/* EC2 is eventually consistent: a launch template made a moment ago can be
 * unknown to CreateFleet. The provider waits (backoff, within the
 * deadline) and tries again instead of failing the request. */
static void test_launch_template_not_yet_visible_is_waited_for(void **state)
{
	(void)state;
	emu_proc e = start(NULL);
	json_decref(emu_admin(&e, "/_emu/config", "{\"launch_template_settle_ms\": 100}"));
	pv_strategy *s = provider(&e, "{\"retry_base_ms\": 50, \"max_retries\": 10}");
	pv_result r = PV_RESULT_INIT;
	assert_string_equal(fleet_create(s, "ami-0abc1234", "req-settle-1", &r), "created");
	pv_result_clear(&r);
	assert_true(emu_stat(&e, "calls", "CreateFleet") >= 2);
	assert_int_equal(emu_stat(&e, "calls", "CreateLaunchTemplate"), 1);

	/* A deadline shorter than the wait: the NotFound stands, in time. */
	json_decref(emu_admin(&e, "/_emu/config", "{\"launch_template_settle_ms\": 5000}"));
	run(s, PV_OP_CREATE_INSTANCES,
	    json_pack("{s:i, s:o, s:s}", "count", 2, "template", tmpl_fleet_no_lt("ami-0fff0000"), "request_id",
		      "req-settle-2"),
	    400, &r);
	assert_false(r.success);
	assert_string_equal(r.error_code, PV_ERR_NOT_FOUND);
	pv_result_clear(&r);
	pv_strategy_unref(s);
	emu_stop(&e);
}

static void test_validate_fleet_template_without_launch_template_is_a_dry_run(void **state)
{
	(void)state;
	emu_proc e = start(NULL);
	pv_strategy *s = provider(&e, NULL);
	pv_result r = PV_RESULT_INIT;
	run(s, PV_OP_VALIDATE_TEMPLATE, json_pack("{s:o}", "template", tmpl_fleet_no_lt("ami-0abc1234")), 0, &r);
	assert_true(r.success);
	pv_result_clear(&r);
	assert_int_equal(emu_stat(&e, "calls", "CreateLaunchTemplate"), 1);
	assert_int_equal(emu_stat(&e, "launch_templates", NULL), 0);
	json_t *t = tmpl_fleet_no_lt("ami-0abc1234");
	json_object_del(t, "imageId");
	run(s, PV_OP_CREATE_INSTANCES, json_pack("{s:i, s:o}", "count", 1, "template", t), 0, &r);
	assert_false(r.success);
	assert_string_equal(r.error_code, "INVALID_PARAMETERS");
	assert_non_null(strstr(pv_result_message(&r), "imageId"));
	pv_result_clear(&r);
	pv_strategy_unref(s);
	emu_stop(&e);
}

/* ---- many DescribeInstances batches in flight ------------------------------------- */

/* Launches n instances (no faults yet) and returns their ids, shuffled so
 * the order given is not the launch order. */
static json_t *launch_many(pv_strategy *s, int n, const char *rid)
{
	pv_result r = PV_RESULT_INIT;
	run(s, PV_OP_CREATE_INSTANCES, json_pack("{s:i, s:o, s:s}", "count", n, "template", tmpl_run(),
						 "request_id", rid), 0, &r);
	if (!r.success)
		fail_msg("launch: %s", pv_result_message(&r));
	json_t *ids = json_deep_copy(json_object_get(r.data, "instance_ids"));
	pv_result_clear(&r);
	assert_int_equal(json_array_size(ids), n);
	uint64_t x = 12345;
	for (size_t i = json_array_size(ids) - 1; i > 0; i--) {
		x = x * 6364136223846793005ull + 1442695040888963407ull;
		size_t k = (size_t)((x >> 33) % (i + 1));
		json_t *a = json_incref(json_array_get(ids, i)), *b = json_incref(json_array_get(ids, k));
		json_array_set_new(ids, i, b);
		json_array_set_new(ids, k, a);
	}
	return ids;
}

static void assert_same_order(json_t *instances, json_t *ids)
{
	assert_int_equal(json_array_size(instances), json_array_size(ids));
	for (size_t i = 0; i < json_array_size(ids); i++) {
		const char *want = json_string_value(json_array_get(ids, i));
		const char *got = json_string_value(json_object_get(json_array_get(instances, i), "instance_id"));
		if (!got || strcmp(got, want) != 0)
			fail_msg("instance %zu: %s, want %s", i, got ? got : "(none)", want);
		assert_string_equal(json_string_value(json_object_get(json_array_get(instances, i), "image_id")),
				    "ami-12345678");
	}
}

static void test_describe_2500_instances_with_batches_in_flight_and_faults(void **state)
{
	(void)state;
	const char *args[] = {"--no-throttle", "--seed", "11", NULL};
	emu_proc e = start(args);
	pv_strategy *s = provider(&e, "{\"max_instances_per_call\": 1000, \"max_retries\": 12,"
				      " \"retry_base_ms\": 1, \"retry_max_ms\": 20}");
	json_t *ids = launch_many(s, 2500, "req-many");
	/* Now latency, faults, and pages of 64 inside each 200-id batch. */
	json_decref(emu_admin(&e, "/_emu/config", "{\"latency_ms\": 20, \"error_rate\": 0.1,"
						   " \"throttle_rate\": 0.1, \"page_size\": 64, \"max_in_flight\": 0}"));
	pv_result r = PV_RESULT_INIT;
	run(s, PV_OP_GET_INSTANCE_STATUS, json_pack("{s:O}", "instance_ids", ids), 60000, &r);
	if (!r.success)
		fail_msg("describe: %s", pv_result_message(&r));
	assert_int_equal(json_integer_value(json_object_get(r.data, "count")), 2500);
	assert_same_order(json_object_get(r.data, "instances"), ids);
	pv_result_clear(&r);
	json_t *st = emu_admin(&e, "/_emu/stats", NULL);
	/* 13 batches of 200 ids, each 4 pages of 64 (the last batch 2). */
	long long pages = 12 * 4 + 2;
	long long calls = json_integer_value(json_object_get(json_object_get(st, "calls"), "DescribeInstances"));
	json_t *faults = json_object_get(st, "faults");
	long long faulted = json_integer_value(json_object_get(faults, "5xx")) +
			    json_integer_value(json_object_get(faults, "throttle"));
	assert_true(faulted > 0);
	assert_int_equal(calls, pages + faulted);
	/* Several in flight at once, never more than the default 8. */
	long long in_flight = json_integer_value(json_object_get(st, "max_in_flight"));
	if (in_flight < 2 || in_flight > 8)
		fail_msg("max in flight at the emulator: %lld", in_flight);
	json_decref(st);
	json_t *ps = pv_strategy_stats(s);
	assert_int_equal(json_integer_value(json_object_get(ps, "retries")), faulted);
	json_decref(ps);
	json_decref(ids);
	pv_strategy_unref(s);
	emu_stop(&e);
}

static void test_describe_with_one_in_flight_is_sequential(void **state)
{
	(void)state;
	const char *args[] = {"--no-throttle", NULL};
	emu_proc e = start(args);
	pv_strategy *s = provider(&e, "{\"max_instances_per_call\": 1000, \"describe_max_in_flight\": 1}");
	json_t *ids = launch_many(s, 1000, "req-seq");
	json_decref(emu_admin(&e, "/_emu/config", "{\"latency_ms\": 10, \"max_in_flight\": 0}"));
	pv_result r = PV_RESULT_INIT;
	run(s, PV_OP_GET_INSTANCE_STATUS, json_pack("{s:O}", "instance_ids", ids), 0, &r);
	assert_true(r.success);
	assert_same_order(json_object_get(r.data, "instances"), ids);
	assert_int_equal(json_integer_value(json_object_get(pv_result_meta(&r), "api_calls")), 5);
	pv_result_clear(&r);
	assert_int_equal(emu_stat(&e, "max_in_flight", NULL), 1);
	json_decref(ids);
	pv_strategy_unref(s);
	emu_stop(&e);
}

static void test_describe_batches_in_flight_respect_the_deadline(void **state)
{
	(void)state;
	const char *args[] = {"--no-throttle", NULL};
	emu_proc e = start(args);
	pv_strategy *s = provider(&e, "{\"max_instances_per_call\": 1000, \"describe_max_in_flight\": 2}");
	json_t *ids = launch_many(s, 2500, "req-dl");
	/* 13 batches, 2 at a time, 300 ms each: about 2.1 s of work. */
	json_decref(emu_admin(&e, "/_emu/config", "{\"latency_ms\": 300}"));
	pv_result r = PV_RESULT_INIT;
	run(s, PV_OP_GET_INSTANCE_STATUS, json_pack("{s:O}", "instance_ids", ids), 700, &r);
	assert_false(r.success);
	assert_string_equal(r.error_code, "TIMEOUT");
	assert_int_equal(r.error_class, PV_CLASS_TRANSIENT);
	pv_result_clear(&r);
	/* Batches after the deadline were never sent (no wall-clock bound on
	 * the call itself: under valgrind the client's own work is slow). */
	assert_true(emu_stat(&e, "calls", "DescribeInstances") < 13);
	json_decref(ids);
	pv_strategy_unref(s);
	emu_stop(&e);
}

static void test_describe_batches_take_describe_tokens(void **state)
{
	(void)state;
	emu_proc e = start(NULL); /* EC2's buckets at the emulator too */
	pv_strategy *s = provider(&e, "{\"max_instances_per_call\": 1000, \"throttle\": {\"describe\":"
				      " {\"capacity\": 3, \"refill_per_s\": 20}}}");
	json_t *ids = launch_many(s, 2000, "req-tok");
	pv_result r = PV_RESULT_INIT;
	run(s, PV_OP_GET_INSTANCE_STATUS, json_pack("{s:O}", "instance_ids", ids), 0, &r);
	assert_true(r.success);
	assert_int_equal(json_integer_value(json_object_get(r.data, "count")), 2000);
	pv_result_clear(&r);
	/* 10 batches from a bucket of 3: seven waited for a token. */
	json_t *ps = pv_strategy_stats(s);
	assert_true(json_integer_value(json_object_get(ps, "throttle_wait_ms")) > 0);
	assert_int_equal(json_integer_value(json_object_get(ps, "throttled_received")), 0);
	json_decref(ps);
	assert_int_equal(emu_stat(&e, "throttled", NULL), 0);
	json_decref(ids);
	pv_strategy_unref(s);
	emu_stop(&e);
}

/* ---- launch templates the emulator does not know ------------------------------------ */

static json_t *tmpl_fleet_lt(const char *lt_id)
{
	return json_pack("{s:s, s:s, s:s, s:[s]}", "templateId", "t-fleet-lt", "providerApi", "EC2Fleet",
			 "launchTemplateId", lt_id, "vmTypes", "t3.micro");
}

static json_t *tmpl_run_lt(const char *lt_id)
{
	return json_pack("{s:s, s:s, s:s, s:s}", "templateId", "t-run-lt", "providerApi", "RunInstances",
			 "launchTemplateId", lt_id, "vmType", "t3.small");
}

/* A create that EC2 refuses as a request: no instance, one call, the
 * provider's class and code for `ec2_code`, the code in the message. */
static void assert_refused(const emu_proc *e, pv_strategy *s, json_t *tmpl, const char *action,
			   const char *ec2_code, const char *pv_code)
{
	pv_result r = PV_RESULT_INIT;
	long long before = emu_stat(e, "calls", action);
	run(s, PV_OP_CREATE_INSTANCES, json_pack("{s:i, s:o, s:s}", "count", 2, "template", tmpl, "request_id",
						 "req-refused"), 0, &r);
	assert_false(r.success);
	assert_int_equal(r.error_class, PV_CLASS_PERMANENT);
	assert_string_equal(r.error_code, pv_code);
	if (!strstr(pv_result_message(&r), ec2_code))
		fail_msg("message '%s' does not name %s", pv_result_message(&r), ec2_code);
	pv_result_clear(&r);
	/* Permanent: not retried. */
	assert_int_equal(emu_stat(e, "calls", action) - before, 1);
	assert_int_equal(emu_stat(e, "instances", "total"), 0);
}

static void test_create_fleet_with_unknown_launch_template_is_not_found(void **state)
{
	(void)state;
	emu_proc e = start(NULL);
	pv_strategy *s = provider(&e, NULL);
	assert_refused(&e, s, tmpl_fleet_lt(LT_UNKNOWN), "CreateFleet", "InvalidLaunchTemplateId.NotFound",
		       PV_ERR_NOT_FOUND);
	pv_strategy_unref(s);
	emu_stop(&e);
}

static void test_run_instances_with_unknown_launch_template_is_not_found(void **state)
{
	(void)state;
	emu_proc e = start(NULL);
	pv_strategy *s = provider(&e, NULL);
	assert_refused(&e, s, tmpl_run_lt(LT_UNKNOWN), "RunInstances", "InvalidLaunchTemplateId.NotFound",
		       PV_ERR_NOT_FOUND);
	pv_strategy_unref(s);
	emu_stop(&e);
}

static void test_launch_template_version_that_does_not_exist_is_refused(void **state)
{
	(void)state;
	const char *args[] = {"--launch-template", LT_SEED, NULL};
	emu_proc e = start(args);
	pv_strategy *s = provider(&e, NULL);
	/* The seeded template has one version: 2 does not exist: NOT_FOUND,
	 * like an unknown template (and not retried: the template is the
	 * user's, named by the provisio template). */
	json_t *fleet = tmpl_fleet_lt(LT_ID), *runi = tmpl_run_lt(LT_ID);
	json_object_set_new(fleet, "launchTemplateVersion", json_string("2"));
	json_object_set_new(runi, "launchTemplateVersion", json_string("2"));
	assert_refused(&e, s, fleet, "CreateFleet", "InvalidLaunchTemplateId.VersionNotFound",
		       PV_ERR_NOT_FOUND);
	assert_refused(&e, s, runi, "RunInstances", "InvalidLaunchTemplateId.VersionNotFound",
		       PV_ERR_NOT_FOUND);
	pv_strategy_unref(s);
	emu_stop(&e);
}

static void test_validate_template_with_unknown_launch_template_is_invalid(void **state)
{
	(void)state;
	emu_proc e = start(NULL);
	pv_strategy *s = provider(&e, NULL);
	pv_result r = PV_RESULT_INIT;
	/* The template is checked before DryRun, as EC2 checks what a request
	 * names before it answers DryRunOperation. (The provider returns the
	 * mapped code, NOT_FOUND, not INVALID_PARAMETERS here.) */
	run(s, PV_OP_VALIDATE_TEMPLATE, json_pack("{s:o}", "template", tmpl_fleet_lt(LT_UNKNOWN)), 0, &r);
	assert_false(r.success);
	assert_int_equal(r.error_class, PV_CLASS_PERMANENT);
	assert_string_equal(r.error_code, PV_ERR_NOT_FOUND);
	assert_non_null(strstr(pv_result_message(&r), "InvalidLaunchTemplateId.NotFound"));
	pv_result_clear(&r);
	pv_strategy_unref(s);
	emu_stop(&e);
}

static void test_run_instances_from_seeded_launch_template_uses_its_image(void **state)
{
	(void)state;
	const char *args[] = {"--launch-template", LT_SEED, NULL};
	emu_proc e = start(args);
	pv_strategy *s = provider(&e, NULL);
	pv_result r = PV_RESULT_INIT;
	run(s, PV_OP_CREATE_INSTANCES, json_pack("{s:i, s:o, s:s}", "count", 1, "template", tmpl_run_lt(LT_ID),
						 "request_id", "req-seeded"), 0, &r);
	if (!r.success)
		fail_msg("create: %s", pv_result_message(&r));
	pv_result_clear(&r);
	run(s, PV_OP_GET_INSTANCE_STATUS, json_pack("{s:s}", "request_id", "req-seeded"), 0, &r);
	json_t *in0 = json_array_get(json_object_get(r.data, "instances"), 0);
	/* The image is the template's; the request's type overrides its t3.micro. */
	assert_string_equal(json_string_value(json_object_get(in0, "image_id")), "ami-0abc1234");
	assert_string_equal(json_string_value(json_object_get(in0, "instance_type")), "t3.small");
	pv_result_clear(&r);
	pv_strategy_unref(s);
	emu_stop(&e);
}

static void test_admin_launch_templates_are_cleared_by_reset_seeded_ones_kept(void **state)
{
	(void)state;
	const char *args[] = {"--launch-template", LT_SEED, NULL};
	emu_proc e = start(args);
	pv_strategy *s = provider(&e, NULL);
	const char *added = "lt-00000000000000abc";
	assert_int_equal(emu_launch_template(&e, added, "admin-lt", "ami-0def5678", "t3.micro"), 0);
	/* The same id or name again, a malformed id: refused. */
	assert_int_equal(emu_launch_template(&e, added, "other-name", NULL, NULL), -1);
	assert_int_equal(emu_launch_template(&e, "lt-00000000000000abd", "admin-lt", NULL, NULL), -1);
	assert_int_equal(emu_launch_template(&e, "lt-not-hex", "bad-id", NULL, NULL), -1);
	assert_int_equal(emu_stat(&e, "launch_templates", NULL), 2);
	pv_result r = PV_RESULT_INIT;
	run(s, PV_OP_CREATE_INSTANCES, json_pack("{s:i, s:o, s:s}", "count", 1, "template", tmpl_fleet_lt(added),
						 "request_id", "req-admin"), 0, &r);
	if (!r.success)
		fail_msg("create: %s", pv_result_message(&r));
	pv_result_clear(&r);
	json_decref(emu_admin(&e, "/_emu/reset", ""));
	assert_int_equal(emu_stat(&e, "launch_templates", NULL), 1);
	assert_refused(&e, s, tmpl_fleet_lt(added), "CreateFleet", "InvalidLaunchTemplateId.NotFound",
		       PV_ERR_NOT_FOUND);
	run(s, PV_OP_CREATE_INSTANCES, json_pack("{s:i, s:o, s:s}", "count", 1, "template", tmpl_fleet_lt(LT_ID),
						 "request_id", "req-seed-kept"), 0, &r);
	if (!r.success)
		fail_msg("create from the seeded template after reset: %s", pv_result_message(&r));
	pv_result_clear(&r);
	pv_strategy_unref(s);
	emu_stop(&e);
}

/* ---- captured requests replayed raw ------------------------------------------------- */

static int send_raw(int port, const char *path)
{
	FILE *f = fopen(path, "rb");
	assert_non_null(f);
	char buf[8192];
	size_t n = fread(buf, 1, sizeof buf, f);
	fclose(f);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
	assert_int_equal(write(fd, buf, n), (ssize_t)n);
	char resp[256] = "";
	ssize_t got = read(fd, resp, sizeof resp - 1);
	close(fd);
	int status = 0;
	if (got > 12)
		sscanf(resp, "HTTP/1.1 %d", &status);
	return status;
}

static void test_captured_client_requests_are_accepted(void **state)
{
	(void)state;
	/* Both create-fleet captures name LT_ID. */
	const char *args[] = {"--max-skew-s", "-1", "--credentials", "AKIDEXAMPLE:" SECRET, "--credentials",
			      "AKIDEXAMPLE:secret", "--no-throttle", "--launch-template", LT_SEED, NULL};
	emu_proc e = start(args);
	const char *files[] = {
		"describe-regions.http", "run-instances.http", "create-fleet.http",
		"describe-instances.http", "terminate-instances.http",
		"awscli-2.9.19-extra/run-instances-auto-clienttoken-tags-userdata.http",
		"awscli-2.9.19-extra/describe-instances-filters-maxresults.http",
		"awscli-2.9.19-extra/terminate-instances-dry-run.http",
		"awscli-1.45.11/describe-regions.http", "aws-sdk-client-ec2-3.1169.0/describe-regions.http",
		"aws-sdk-client-ec2-3.1169.0/run-instances.http", "aws-sdk-client-ec2-3.1169.0/create-fleet.http",
		"libcurl-7.88.1/post-describe-regions.http", "libcurl-7.88.1/get-describe-regions-sorted-query.http",
	};
	/* run-instances.http and the SDK's use the same ClientToken "abc" with
	 * the same parameters: the second is answered from the first. */
	/* describe/terminate name i-1 and i-2, which are not instance ids:
	 * InvalidInstanceID.Malformed (400), checked before DryRun. */
	const int want[] = {200, 200, 200, 400, 400, 200, 200, 400, 200, 200, 200, 200, 200, 200};
	for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
		char path[512];
		snprintf(path, sizeof path, "%s/ec2-requests/%s", PV_TEST_DATA_DIR, files[i]);
		int st = send_raw(e.port, path);
		if (st != want[i])
			fail_msg("%s: HTTP %d, want %d", files[i], st, want[i]);
	}
	assert_int_equal(send_raw(e.port, PV_TEST_DATA_DIR "/ec2-requests/libcurl-7.88.1/"
					  "get-describe-regions-unsorted-query-NONCANONICAL.http"), 403);
	assert_int_equal(emu_stat(&e, "auth_failures", NULL), 1);
	/* run-instances.http asked for 2 with token abc; the SDK's identical
	 * request replays it; the tagged one adds 1; create-fleet 2 + 2. */
	assert_int_equal(emu_stat(&e, "instances", "total"), 2 + 1 + 2 + 2);
	emu_stop(&e);
}

/* ---- lost answers, tokens, throttling, the orphan sweep's list ---------------------- */

static json_int_t meta_int(pv_result *r, const char *key)
{
	return json_integer_value(json_object_get(pv_result_meta(r), key));
}

static void assert_unique_ids(const json_t *ids, size_t n)
{
	assert_int_equal(json_array_size(ids), n);
	json_t *seen = json_object();
	size_t i;
	json_t *v;
	json_array_foreach(ids, i, v) json_object_set(seen, json_string_value(v), json_true());
	assert_int_equal(json_object_size(seen), n);
	json_decref(seen);
}

/* EC2 launched, every answer was lost (the client timed out three times):
 * the provider looks the launch up by its ClientToken instead of calling
 * it failed, and the 20 instances are its answer. */
static void test_lost_launch_answers_are_found_by_the_client_token(void **state)
{
	(void)state;
	emu_proc e = start(NULL);
	assert_int_equal(emu_config(&e, "{\"faults_next\": {\"RunInstances\": [\"lose\", \"lose\", \"lose\"]}}"), 0);
	pv_strategy *s = provider(&e, "{\"timeout_ms\": 300, \"max_retries\": 2}");
	pv_result r = PV_RESULT_INIT;
	run(s, PV_OP_CREATE_INSTANCES,
	    json_pack("{s:i, s:o, s:s, s:s}", "count", 20, "template", tmpl_run(), "request_id", "req-lost",
		      "client_token", "req-lost-r0"), 0, &r);
	if (!r.success)
		fail_msg("the lost launch was not found: %s", pv_result_message(&r));
	assert_int_equal(json_integer_value(json_object_get(r.data, "count")), 20);
	assert_unique_ids(json_object_get(r.data, "instance_ids"), 20);
	assert_int_equal(meta_int(&r, "found_after_lost_answer"), 20);
	assert_null(json_object_get(pv_result_meta(&r), "outcome_unknown"));
	json_t *in0 = json_array_get(json_object_get(r.data, "instances"), 0);
	assert_string_equal(json_string_value(json_object_get(in0, "request_id")), "req-lost");
	pv_result_clear(&r);
	assert_int_equal(emu_stat(&e, "faults", "lose"), 3);
	assert_int_equal(emu_stat(&e, "calls", "RunInstances"), 3);
	assert_int_equal(emu_stat(&e, "instances", "total"), 20); /* launched once */
	assert_true(emu_stat(&e, "calls", "DescribeInstances") >= 1);
	pv_strategy_unref(s);
	emu_stop(&e);
}

/* The launch's answers and the lookups' answers all lost: the provider
 * cannot know, and says so (outcome_unknown) rather than a plain failure. */
static void test_lost_launch_that_cannot_be_looked_up_is_an_unknown_outcome(void **state)
{
	(void)state;
	emu_proc e = start(NULL);
	assert_int_equal(emu_config(&e, "{\"lose_rate\": 1.0, \"fault_actions\": [\"RunInstances\", "
					"\"DescribeInstances\"]}"), 0);
	pv_strategy *s = provider(&e, "{\"timeout_ms\": 200, \"max_retries\": 1}");
	pv_result r = PV_RESULT_INIT;
	run(s, PV_OP_CREATE_INSTANCES,
	    json_pack("{s:i, s:o, s:s, s:s}", "count", 5, "template", tmpl_run(), "request_id", "req-unknown",
		      "client_token", "req-unknown-r0"), 0, &r);
	assert_false(r.success);
	assert_int_equal(r.error_class, PV_CLASS_TRANSIENT);
	assert_true(json_is_true(json_object_get(pv_result_meta(&r), "outcome_unknown")));
	pv_result_clear(&r);
	assert_int_equal(emu_stat(&e, "instances", "live"), 5); /* what the caller must look for */
	pv_strategy_unref(s);
	emu_stop(&e);
}

/* The token identifies one intended launch: the same client_token returns
 * the first launch, a new one (the broker's next round) launches anew,
 * with RunInstances and with CreateFleet (whose fixed token used to give
 * IdempotentParameterMismatch when the next round asked another count). */
static void test_client_token_is_one_launch_and_a_new_one_launches_anew(void **state)
{
	(void)state;
	const char *args[] = {"--launch-template", LT_SEED, NULL};
	emu_proc e = start(args);
	pv_strategy *s = provider(&e, NULL);
	json_t *ids[3];
	const char *tokens[3] = {"req-t-r0", "req-t-r0", "req-t-r1"};
	for (int i = 0; i < 3; i++) {
		pv_result r = PV_RESULT_INIT;
		run(s, PV_OP_CREATE_INSTANCES, json_pack("{s:i, s:o, s:s, s:s}", "count", 3, "template", tmpl_run(),
							 "request_id", "req-t", "client_token", tokens[i]), 0, &r);
		assert_true(r.success);
		ids[i] = json_incref(json_object_get(r.data, "instance_ids"));
		pv_result_clear(&r);
	}
	assert_true(json_equal(ids[0], ids[1]));  /* a retry: the same instances */
	assert_false(json_equal(ids[0], ids[2])); /* a new round: new ones */
	assert_int_equal(emu_stat(&e, "instances", "total"), 6);
	for (int i = 0; i < 3; i++)
		json_decref(ids[i]);
	json_t *t = json_pack("{s:s, s:s, s:s, s:s}", "templateId", "t-fleet", "providerApi", "EC2Fleet",
			      "launchTemplateId", LT_ID, "vmType", "t3.micro");
	const int counts[2] = {2, 3};
	for (int i = 0; i < 2; i++) {
		char token[32];
		snprintf(token, sizeof token, "req-f-r%d", i);
		pv_result r = PV_RESULT_INIT;
		run(s, PV_OP_CREATE_INSTANCES, json_pack("{s:i, s:O, s:s, s:s}", "count", counts[i], "template", t,
							 "request_id", "req-f", "client_token", token), 0, &r);
		if (!r.success)
			fail_msg("fleet round %d: %s", i, pv_result_message(&r));
		assert_int_equal(json_integer_value(json_object_get(r.data, "count")), counts[i]);
		pv_result_clear(&r);
	}
	json_decref(t);
	assert_int_equal(emu_stat(&e, "instances", "total"), 6 + 2 + 3);
	pv_strategy_unref(s);
	emu_stop(&e);
}

/* A CreateFleet whose answers were lost is found by the token tag it puts
 * on its instances (EC2 gives fleet instances a token of its own). */
static void test_lost_fleet_answer_is_found_by_its_token_tag(void **state)
{
	(void)state;
	const char *args[] = {"--launch-template", LT_SEED, NULL};
	emu_proc e = start(args);
	assert_int_equal(emu_config(&e, "{\"faults_next\": {\"CreateFleet\": [\"lose\", \"drop\"]}}"), 0);
	pv_strategy *s = provider(&e, "{\"timeout_ms\": 300, \"max_retries\": 1}");
	json_t *t = json_pack("{s:s, s:s, s:s, s:s}", "templateId", "t-fleet", "providerApi", "EC2Fleet",
			      "launchTemplateId", LT_ID, "vmType", "t3.micro");
	pv_result r = PV_RESULT_INIT;
	run(s, PV_OP_CREATE_INSTANCES, json_pack("{s:i, s:o, s:s, s:s}", "count", 4, "template", t, "request_id",
						 "req-lf", "client_token", "req-lf-r0"), 0, &r);
	if (!r.success)
		fail_msg("the lost fleet was not found: %s", pv_result_message(&r));
	assert_int_equal(json_integer_value(json_object_get(r.data, "count")), 4);
	assert_int_equal(meta_int(&r, "found_after_lost_answer"), 4);
	json_t *in0 = json_array_get(json_object_get(r.data, "instances"), 0);
	assert_non_null(json_object_get(json_object_get(in0, "tags"), "provisio:client-token"));
	pv_result_clear(&r);
	assert_int_equal(emu_stat(&e, "instances", "total"), 4);
	pv_strategy_unref(s);
	emu_stop(&e);
}

/* RequestLimitExceeded ten times in a row with max_retries 2: throttling
 * delays the launch, it does not fail it (within the deadline). */
static void test_throttling_delays_a_launch_and_never_fails_it_before_the_deadline(void **state)
{
	(void)state;
	const char *args[] = {"--no-throttle", NULL}; /* only the scripted RequestLimitExceeded */
	emu_proc e = start(args);
	assert_int_equal(emu_config(&e, "{\"faults_next\": {\"RunInstances\": [\"throttle\", \"throttle\", "
					"\"throttle\", \"throttle\", \"throttle\", \"throttle\", \"throttle\", "
					"\"throttle\", \"throttle\", \"throttle\"]}}"), 0);
	pv_strategy *s = provider(&e, "{\"max_retries\": 2, \"retry_base_ms\": 1, \"retry_max_ms\": 10,"
				      " \"throttle\": {\"enabled\": false}}");
	pv_result r = PV_RESULT_INIT;
	run(s, PV_OP_CREATE_INSTANCES, json_pack("{s:i, s:o, s:s}", "count", 2, "template", tmpl_run(),
						 "request_id", "req-patient"), 60000, &r);
	if (!r.success)
		fail_msg("throttling failed the launch: %s", pv_result_message(&r));
	assert_int_equal(json_integer_value(json_object_get(r.data, "count")), 2);
	assert_int_equal(meta_int(&r, "retries"), 10);
	assert_int_equal(meta_int(&r, "throttled_received"), 10);
	assert_string_equal(json_string_value(json_object_get(pv_result_meta(&r), "throttled_by")), "EC2");
	pv_result_clear(&r);
	assert_int_equal(emu_stat(&e, "faults", "throttle"), 10);
	pv_strategy_unref(s);
	emu_stop(&e);
}

/* Throttled until the deadline: the failure names the cause. */
static void test_throttled_until_the_deadline_names_the_cause(void **state)
{
	(void)state;
	emu_proc e = start(NULL);
	assert_int_equal(emu_config(&e, "{\"throttle_rate\": 1.0, \"fault_actions\": [\"RunInstances\"]}"), 0);
	pv_strategy *s = provider(&e, "{\"retry_base_ms\": 5, \"retry_max_ms\": 50, \"throttle\": {\"enabled\": false}}");
	pv_result r = PV_RESULT_INIT;
	run(s, PV_OP_CREATE_INSTANCES, json_pack("{s:i, s:o, s:s}", "count", 2, "template", tmpl_run(),
						 "request_id", "req-throttled"), 600, &r);
	assert_false(r.success);
	assert_non_null(strstr(pv_result_message(&r), "throttled by EC2"));
	assert_string_equal(json_string_value(json_object_get(pv_result_meta(&r), "throttled_by")), "EC2");
	assert_true(meta_int(&r, "throttled_received") > 5); /* more than max_retries: patient */
	pv_result_clear(&r);
	assert_int_equal(emu_stat(&e, "instances", "total"), 0);
	pv_strategy_unref(s);
	emu_stop(&e);
}

/* describe_resource_instances without an id (the reconciler's orphan
 * sweep): every live instance this provider tagged, none of another's,
 * none gone. */
static void test_managed_instances_are_listed_without_an_id(void **state)
{
	(void)state;
	emu_proc e = start(NULL);
	pv_strategy *s = provider(&e, NULL), *other = provider_named(&e, "aws-other", NULL);
	pv_result r = PV_RESULT_INIT;
	run(s, PV_OP_CREATE_INSTANCES, json_pack("{s:i, s:o, s:s}", "count", 3, "template", tmpl_run(),
						 "request_id", "req-mine"), 0, &r);
	assert_true(r.success);
	json_t *gone = json_pack("[O]", json_array_get(json_object_get(r.data, "instance_ids"), 0));
	pv_result_clear(&r);
	run(other, PV_OP_CREATE_INSTANCES, json_pack("{s:i, s:o, s:s}", "count", 2, "template", tmpl_run(),
						     "request_id", "req-theirs"), 0, &r);
	assert_true(r.success);
	pv_result_clear(&r);
	run(s, PV_OP_TERMINATE_INSTANCES, json_pack("{s:O}", "instance_ids", gone), 0, &r);
	assert_true(r.success);
	pv_result_clear(&r);
	run(s, PV_OP_DESCRIBE_RESOURCE_INSTANCES, json_object(), 0, &r);
	if (!r.success)
		fail_msg("the orphan sweep's question failed: %s", pv_result_message(&r));
	json_t *list = json_object_get(r.data, "instances");
	assert_int_equal(json_array_size(list), 2);
	size_t i;
	json_t *in;
	json_array_foreach(list, i, in) {
		assert_string_equal(json_string_value(json_object_get(in, "provider")), "aws-test");
		assert_string_equal(json_string_value(json_object_get(in, "request_id")), "req-mine");
		assert_false(json_equal(json_object_get(in, "instance_id"), json_array_get(gone, 0)));
	}
	pv_result_clear(&r);
	json_decref(gone);
	pv_strategy_unref(other);
	pv_strategy_unref(s);
	emu_stop(&e);
}

/* The emulator's scripted faults, dice filter and buckets are checked
 * before anything is applied: a bad one is a 400 naming it. */
static void test_emulator_fault_and_bucket_config_is_checked(void **state)
{
	(void)state;
	emu_proc e = start(NULL);
	const char *bad[] = {"{\"faults_next\": {\"RunInstances\": [\"explode\"]}}",
			     "{\"faults_next\": {\"RunInstances\": \"lose\"}}",
			     "{\"buckets\": {\"launch\": {\"capacity\": 1, \"refill_per_s\": 1}}}",
			     "{\"buckets\": {\"describe\": {\"capacity\": 0, \"refill_per_s\": 1}}}",
			     "{\"fault_actions\": \"RunInstances\"}"};
	const char *names[] = {"faults_next.RunInstances[0]", "faults_next.RunInstances", "buckets.launch",
			       "buckets.describe", "fault_actions"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		json_t *a = emu_admin(&e, "/_emu/config", bad[i]);
		const char *err = json_string_value(json_object_get(a, "error"));
		if (!err || !strstr(err, names[i]))
			fail_msg("%s: expected an error naming %s, got %s", bad[i], names[i], err ? err : "none");
		json_decref(a);
	}
	/* nothing of a refused config was applied: no fault is scripted */
	pv_strategy *s = provider(&e, NULL);
	pv_result r = PV_RESULT_INIT;
	run(s, PV_OP_CREATE_INSTANCES, json_pack("{s:i, s:o, s:s}", "count", 1, "template", tmpl_run(),
						 "request_id", "req-clean"), 0, &r);
	assert_true(r.success);
	pv_result_clear(&r);
	assert_int_equal(emu_stat(&e, "calls", "RunInstances"), 1);
	pv_strategy_unref(s);
	emu_stop(&e);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_run_instances_create_describe_terminate),
		cmocka_unit_test(test_unknown_instance_is_not_found),
		cmocka_unit_test(test_states_move_from_pending_to_running),
		cmocka_unit_test(test_create_fleet_weights_and_per_override_errors),
		cmocka_unit_test(test_spot_fleet_instances_are_spot),
		cmocka_unit_test(test_partial_capacity_and_all_or_nothing),
		cmocka_unit_test(test_run_instances_fails_over_to_next_type_on_capacity),
		cmocka_unit_test(test_only_capacity_errors_everywhere_is_capacity_class),
		cmocka_unit_test(test_injected_faults_at_30_percent_leave_no_duplicates),
		cmocka_unit_test(test_wrong_credentials_fail_permanently_without_retries),
		cmocka_unit_test(test_deadline_is_respected),
		cmocka_unit_test(test_validate_template_uses_dry_run),
		cmocka_unit_test(test_validate_template_with_unknown_instance_type_is_invalid),
		cmocka_unit_test(test_malformed_instance_id_is_invalid_and_terminates_nothing),
		cmocka_unit_test(test_reserved_aws_tag_is_refused_and_nothing_launched),
		cmocka_unit_test(test_health_is_unknown_until_a_call_then_healthy),
		cmocka_unit_test(test_imds_v2_credentials),
		cmocka_unit_test(test_client_buckets_keep_emulator_from_throttling),
		cmocka_unit_test(test_without_client_buckets_emulator_throttles_and_provider_retries),
		cmocka_unit_test(test_one_provider_serves_threads_concurrently),
		cmocka_unit_test(test_create_fleet_without_launch_template_makes_one_and_reuses_it),
		cmocka_unit_test(test_validate_fleet_template_without_launch_template_is_a_dry_run),
		cmocka_unit_test(test_cached_launch_template_deleted_elsewhere_is_made_again),
		cmocka_unit_test(test_launch_template_not_yet_visible_is_waited_for),
		cmocka_unit_test(test_describe_2500_instances_with_batches_in_flight_and_faults),
		cmocka_unit_test(test_describe_with_one_in_flight_is_sequential),
		cmocka_unit_test(test_describe_batches_in_flight_respect_the_deadline),
		cmocka_unit_test(test_describe_batches_take_describe_tokens),
		cmocka_unit_test(test_create_fleet_with_unknown_launch_template_is_not_found),
		cmocka_unit_test(test_run_instances_with_unknown_launch_template_is_not_found),
		cmocka_unit_test(test_launch_template_version_that_does_not_exist_is_refused),
		cmocka_unit_test(test_validate_template_with_unknown_launch_template_is_invalid),
		cmocka_unit_test(test_run_instances_from_seeded_launch_template_uses_its_image),
		cmocka_unit_test(test_admin_launch_templates_are_cleared_by_reset_seeded_ones_kept),
		cmocka_unit_test(test_captured_client_requests_are_accepted),
		cmocka_unit_test(test_lost_launch_answers_are_found_by_the_client_token),
		cmocka_unit_test(test_lost_launch_that_cannot_be_looked_up_is_an_unknown_outcome),
		cmocka_unit_test(test_client_token_is_one_launch_and_a_new_one_launches_anew),
		cmocka_unit_test(test_lost_fleet_answer_is_found_by_its_token_tag),
		cmocka_unit_test(test_throttling_delays_a_launch_and_never_fails_it_before_the_deadline),
		cmocka_unit_test(test_throttled_until_the_deadline_names_the_cause),
		cmocka_unit_test(test_managed_instances_are_listed_without_an_id),
		cmocka_unit_test(test_emulator_fault_and_bucket_config_is_checked),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
