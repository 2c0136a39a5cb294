/*
 * test_aws_groups.c - the AWS provider's fleets and groups against the EC2
 * emulator, both real programs on loopback: Spot Fleet (request and
 * maintain), EC2 Fleet request / maintain and Auto Scaling groups launched
 * from a launch template, their instances given back without the fleet or
 * group replacing them, the fleet / group ended with its last instance,
 * ClientToken retries, lost answers looked up, and the return of a fleet's
 * instances by a provider that did not launch them (a restart): its
 * weights and its own launch template read from EC2. Each group launches
 * from a launch template of its own, deleted with it; the user's never.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
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

#define ROLE "arn:aws:iam::123456789012:role/aws-ec2-spot-fleet-tagging-role"

static emu_proc start_with(const char *const *args)
{
	emu_proc e;
	assert_int_equal(emu_start(&e, PV_EC2_EMULATOR, args), 0);
	return e;
}

static emu_proc start(void) { return start_with(NULL); }

/* A provider aimed at the emulator, Auto Scaling included (the emulator
 * serves it at the same address); `extra` merged into its config. */
static pv_strategy *provider(const emu_proc *e, const char *extra)
{
	char cfg[4096];
	snprintf(cfg, sizeof cfg, "{\"autoscaling_endpoint_url\": \"%s\"%s%s}", e->url, extra ? ", " : "",
		 extra ? extra : "");
	pv_strategy *s = emu_provider(e, "aws-groups", cfg);
	if (!s)
		fail_msg("aws provider: %s", pv_error_last());
	return s;
}

static void run(pv_strategy *s, pv_op_type type, json_t *params, pv_result *r)
{
	pv_operation op = {.type = type, .params = params, .deadline_ns = pv_now_ns() + 60 * PV_NS_PER_S};
	pv_strategy_execute(s, &op, r, NULL);
	json_decref(params);
}

/* A template of `api` and `fleet_type` (NULL: the default) from an image
 * and one instance type (the provider makes the launch template). */
static json_t *tmpl(const char *id, const char *api, const char *fleet_type)
{
	json_t *t = json_pack("{s:s, s:s, s:s, s:s, s:s}", "templateId", id, "providerApi", api, "imageId",
			      "ami-12345678", "vmType", "t3.micro", "instanceTags", "team=blue");
	if (fleet_type)
		json_object_set_new(t, "fleetType", json_string(fleet_type));
	if (strcmp(api, "SpotFleet") == 0)
		json_object_set_new(t, "fleetRole", json_string(ROLE));
	return t;
}

static long long calls(const emu_proc *e, const char *action) { return emu_stat(e, "calls", action); }

/* Creates `count` through `t` (consumed); the result's instance ids (new
 * reference). */
static json_t *create(pv_strategy *s, json_t *t, int count, const char *request, const char *token, pv_result *r)
{
	run(s, PV_OP_CREATE_INSTANCES,
	    json_pack("{s:i, s:o, s:s, s:s}", "count", count, "template", t, "request_id", request, "client_token",
		      token),
	    r);
	if (!r->success)
		fail_msg("create through %s: %s", request, pv_result_message(r));
	return json_incref(json_object_get(r->data, "instance_ids"));
}

/* Returns ids[from, to) of `ids`. */
static void give_back(pv_strategy *s, const json_t *ids, size_t from, size_t to)
{
	json_t *some = json_array();
	for (size_t i = from; i < to; i++)
		json_array_append(some, json_array_get(ids, i));
	pv_result r = PV_RESULT_INIT;
	run(s, PV_OP_TERMINATE_INSTANCES, json_pack("{s:o}", "instance_ids", some), &r);
	if (!r.success)
		fail_msg("return: %s", pv_result_message(&r));
	assert_int_equal(json_array_size(json_object_get(r.data, "instances")), to - from);
	pv_result_clear(&r);
}

/* One EC2 call through the provider: the emulator tops its maintained
 * groups up before it answers, so a replacement would show after it. */
static void poke(pv_strategy *s, const json_t *ids)
{
	pv_result r = PV_RESULT_INIT;
	run(s, PV_OP_GET_INSTANCE_STATUS, json_pack("{s:O}", "instance_ids", ids), &r);
	assert_true(r.success);
	pv_result_clear(&r);
}

/* ---- Spot Fleet ------------------------------------------------------------------- */

static void test_spot_fleet_request_launches_and_ends_with_its_last_instance(void **state)
{
	(void)state;
	emu_proc e = start();
	pv_strategy *s = provider(&e, NULL);
	pv_result r = PV_RESULT_INIT;
	json_t *ids = create(s, tmpl("t-sf", "SpotFleet", NULL), 4, "req-sf", "req-sf-r0", &r);
	assert_string_equal(json_string_value(json_object_get(r.data, "api")), "SpotFleet");
	assert_string_equal(json_string_value(json_object_get(r.data, "fleet_type")), "request");
	char fleet_id[128];
	snprintf(fleet_id, sizeof fleet_id, "%s", json_string_value(json_object_get(r.data, "fleet_id")));
	assert_int_equal(strncmp(fleet_id, "sfr-", 4), 0);
	assert_int_equal(json_integer_value(json_object_get(r.data, "count")), 4);
	json_t *in0 = json_array_get(json_object_get(r.data, "instances"), 0);
	assert_string_equal(json_string_value(json_object_get(in0, "request_id")), "req-sf");
	pv_result_clear(&r);
	assert_int_equal(calls(&e, "RequestSpotFleet"), 1);
	assert_int_equal(calls(&e, "DescribeSpotFleetInstances"), 1);
	assert_int_equal(emu_stat(&e, "instances", "live"), 4);
	/* ... and are listed by the fleet's id */
	run(s, PV_OP_DESCRIBE_RESOURCE_INSTANCES, json_pack("{s:s}", "resource_id", fleet_id), &r);
	assert_true(r.success);
	assert_int_equal(json_array_size(json_object_get(r.data, "instances")), 4);
	pv_result_clear(&r);
	/* The instances carry the request's tag (from the launch template made
	 * for it): found by the request like RunInstances' are. */
	run(s, PV_OP_GET_INSTANCE_STATUS, json_pack("{s:s}", "request_id", "req-sf"), &r);
	assert_true(r.success);
	assert_int_equal(json_array_size(json_object_get(r.data, "instances")), 4);
	pv_result_clear(&r);
	/* Half back: a request fleet does not replace, so a plain terminate. */
	give_back(s, ids, 0, 2);
	assert_int_equal(calls(&e, "TerminateInstances"), 1);
	assert_int_equal(calls(&e, "CancelSpotFleetRequests"), 0);
	/* The rest: the fleet goes with them. */
	give_back(s, ids, 2, 4);
	assert_int_equal(calls(&e, "CancelSpotFleetRequests"), 1);
	assert_int_equal(calls(&e, "TerminateInstances"), 1);
	assert_int_equal(calls(&e, "DeleteLaunchTemplate"), 1); /* the request's template goes too */
	poke(s, ids);
	assert_int_equal(emu_stat(&e, "instances", "live"), 0);
	assert_int_equal(emu_stat(&e, "instances", "total"), 4);
	json_decref(ids);
	pv_strategy_unref(s);
	emu_stop(&e);
}

static void test_maintain_spot_fleet_does_not_replace_a_returned_instance(void **state)
{
	(void)state;
	emu_proc e = start();
	pv_strategy *s = provider(&e, NULL);
	pv_result r = PV_RESULT_INIT;
	json_t *ids = create(s, tmpl("t-sfm", "SpotFleet", "maintain"), 4, "req-sfm", "req-sfm-r0", &r);
	pv_result_clear(&r);
	give_back(s, ids, 0, 1);
	assert_int_equal(calls(&e, "ModifySpotFleetRequest"), 1);
	poke(s, ids);
	assert_int_equal(emu_stat(&e, "instances", "total"), 4); /* nothing replaced it */
	assert_int_equal(emu_stat(&e, "instances", "live"), 3);
	give_back(s, ids, 1, 4);
	assert_int_equal(calls(&e, "CancelSpotFleetRequests"), 1);
	poke(s, ids);
	assert_int_equal(emu_stat(&e, "instances", "live"), 0);
	assert_int_equal(emu_stat(&e, "instances", "total"), 4);
	json_decref(ids);
	pv_strategy_unref(s);
	emu_stop(&e);
}

static void test_spot_fleet_without_fleet_role_is_refused_and_nothing_launched(void **state)
{
	(void)state;
	emu_proc e = start();
	pv_strategy *s = provider(&e, NULL);
	json_t *t = tmpl("t-norole", "SpotFleet", "request");
	json_object_del(t, "fleetRole");
	pv_result r = PV_RESULT_INIT;
	run(s, PV_OP_CREATE_INSTANCES, json_pack("{s:i, s:o, s:s}", "count", 2, "template", t, "request_id", "req-nr"), &r);
	assert_false(r.success);
	assert_string_equal(r.error_code, "INVALID_PARAMETERS");
	assert_non_null(strstr(pv_result_message(&r), "fleetRole"));
	pv_result_clear(&r);
	assert_int_equal(calls(&e, "RequestSpotFleet"), 0);
	assert_int_equal(emu_stat(&e, "instances", "total"), 0);
	pv_strategy_unref(s);
	emu_stop(&e);
}

/* One token, one launch: the same token again is the same fleet; a new
 * round's token a new one. */
static void test_spot_fleet_client_token_is_one_fleet(void **state)
{
	(void)state;
	emu_proc e = start();
	pv_strategy *s = provider(&e, NULL);
	pv_result r = PV_RESULT_INIT;
	json_t *a = create(s, tmpl("t-tok", "SpotFleet", "request"), 3, "req-tok", "req-tok-r0", &r);
	json_t *fleet = json_incref(json_object_get(r.data, "fleet_id"));
	pv_result_clear(&r);
	json_t *b = create(s, tmpl("t-tok", "SpotFleet", "request"), 3, "req-tok", "req-tok-r0", &r);
	assert_true(json_equal(fleet, json_object_get(r.data, "fleet_id")));
	pv_result_clear(&r);
	assert_true(json_equal(a, b));
	json_t *c = create(s, tmpl("t-tok", "SpotFleet", "request"), 3, "req-tok", "req-tok-r1", &r);
	assert_false(json_equal(fleet, json_object_get(r.data, "fleet_id")));
	pv_result_clear(&r);
	assert_int_equal(emu_stat(&e, "instances", "total"), 6);
	assert_int_equal(emu_stat(&e, "instances", "groups"), 2);
	json_decref(fleet);
	json_decref(a);
	json_decref(b);
	json_decref(c);
	pv_strategy_unref(s);
	emu_stop(&e);
}

/* Every RequestSpotFleet answer lost: the fleet is found by its token. */
static void test_lost_spot_fleet_answer_is_found_by_its_token(void **state)
{
	(void)state;
	emu_proc e = start();
	assert_int_equal(emu_config(&e, "{\"faults_next\": {\"RequestSpotFleet\": [\"lose\", \"lose\"]}}"), 0);
	pv_strategy *s = provider(&e, "\"timeout_ms\": 300, \"max_retries\": 1");
	pv_result r = PV_RESULT_INIT;
	json_t *ids = create(s, tmpl("t-lost", "SpotFleet", "request"), 3, "req-lost", "req-lost-r0", &r);
	assert_int_equal(json_integer_value(json_object_get(pv_result_meta(&r), "found_after_lost_answer")), 1);
	assert_int_equal(json_array_size(ids), 3);
	pv_result_clear(&r);
	assert_int_equal(calls(&e, "RequestSpotFleet"), 2);
	assert_true(calls(&e, "DescribeSpotFleetRequests") >= 1);
	assert_int_equal(emu_stat(&e, "instances", "groups"), 1);
	assert_int_equal(emu_stat(&e, "instances", "total"), 3);
	json_decref(ids);
	pv_strategy_unref(s);
	emu_stop(&e);
}

/* The orphan sweep's question (every instance of this provider) lists a
 * fleet's instances with their request, as RunInstances' are. */
static void test_fleet_instances_are_listed_for_the_orphan_sweep_with_their_request(void **state)
{
	(void)state;
	emu_proc e = start();
	pv_strategy *s = provider(&e, NULL);
	pv_result r = PV_RESULT_INIT;
	json_t *ids = create(s, tmpl("t-orph", "SpotFleet", "maintain"), 3, "req-orph", "req-orph-r0", &r);
	pv_result_clear(&r);
	run(s, PV_OP_DESCRIBE_RESOURCE_INSTANCES, json_object(), &r);
	assert_true(r.success);
	json_t *list = json_object_get(r.data, "instances");
	assert_int_equal(json_array_size(list), 3);
	size_t i;
	json_t *in;
	json_array_foreach(list, i, in) {
		assert_string_equal(json_string_value(json_object_get(in, "request_id")), "req-orph");
		assert_non_null(json_object_get(json_object_get(in, "tags"), "aws:ec2spot:fleet-request-id"));
	}
	pv_result_clear(&r);
	/* what the sweep then does with orphans: terminate; the fleet goes too */
	give_back(s, ids, 0, 3);
	assert_int_equal(calls(&e, "CancelSpotFleetRequests"), 1);
	json_decref(ids);
	pv_strategy_unref(s);
	emu_stop(&e);
}

/* Every RequestSpotFleet answer and every lookup's answer lost: nobody
 * can know whether the fleet exists, and the result says so rather than a
 * plain failure (the caller looks under the request's tag, which the
 * fleet's instances carry). */
static void test_lost_spot_fleet_that_cannot_be_looked_up_is_an_unknown_outcome(void **state)
{
	(void)state;
	emu_proc e = start();
	assert_int_equal(emu_config(&e, "{\"lose_rate\": 1.0, \"fault_actions\": [\"RequestSpotFleet\", "
					"\"DescribeSpotFleetRequests\"]}"), 0);
	pv_strategy *s = provider(&e, "\"timeout_ms\": 200, \"max_retries\": 1");
	pv_result r = PV_RESULT_INIT;
	run(s, PV_OP_CREATE_INSTANCES,
	    json_pack("{s:i, s:o, s:s, s:s}", "count", 3, "template", tmpl("t-unk", "SpotFleet", "request"),
		      "request_id", "req-unk", "client_token", "req-unk-r0"), &r);
	assert_false(r.success);
	assert_true(json_is_true(json_object_get(pv_result_meta(&r), "outcome_unknown")));
	pv_result_clear(&r);
	assert_int_equal(emu_config(&e, "{\"lose_rate\": 0}"), 0);
	run(s, PV_OP_GET_INSTANCE_STATUS, json_pack("{s:s}", "request_id", "req-unk"), &r);
	assert_true(r.success);
	assert_int_equal(json_array_size(json_object_get(r.data, "instances")), 3); /* found by the request */
	pv_result_clear(&r);
	pv_strategy_unref(s);
	emu_stop(&e);
}

/* ---- EC2 Fleet request / maintain ------------------------------------------------ */

/* Every CreateFleet answer lost: the fleet is found by its clientToken
 * (DescribeFleets), not made twice. */
static void test_lost_ec2_fleet_answer_is_found_by_its_token(void **state)
{
	(void)state;
	emu_proc e = start();
	assert_int_equal(emu_config(&e, "{\"faults_next\": {\"CreateFleet\": [\"lose\", \"drop\"]}}"), 0);
	pv_strategy *s = provider(&e, "\"timeout_ms\": 300, \"max_retries\": 1");
	pv_result r = PV_RESULT_INIT;
	json_t *ids = create(s, tmpl("t-lfm", "EC2Fleet", "maintain"), 4, "req-lfm", "req-lfm-r0", &r);
	assert_int_equal(json_integer_value(json_object_get(pv_result_meta(&r), "found_after_lost_answer")), 1);
	assert_int_equal(json_array_size(ids), 4);
	pv_result_clear(&r);
	assert_true(calls(&e, "DescribeFleets") >= 1);
	assert_int_equal(emu_stat(&e, "instances", "groups"), 1);
	assert_int_equal(emu_stat(&e, "instances", "total"), 4);
	json_decref(ids);
	pv_strategy_unref(s);
	emu_stop(&e);
}


static void test_ec2_fleet_maintain_gives_back_without_replacement_then_deletes(void **state)
{
	(void)state;
	emu_proc e = start();
	pv_strategy *s = provider(&e, NULL);
	pv_result r = PV_RESULT_INIT;
	json_t *ids = create(s, tmpl("t-fm", "EC2Fleet", "maintain"), 5, "req-fm", "req-fm-r0", &r);
	assert_string_equal(json_string_value(json_object_get(r.data, "fleet_type")), "maintain");
	assert_int_equal(strncmp(json_string_value(json_object_get(r.data, "fleet_id")), "fleet-", 6), 0);
	assert_int_equal(json_integer_value(json_object_get(r.data, "count")), 5);
	pv_result_clear(&r);
	assert_int_equal(calls(&e, "CreateFleet"), 1);
	assert_int_equal(calls(&e, "DescribeFleetInstances"), 1);
	give_back(s, ids, 0, 2);
	assert_int_equal(calls(&e, "ModifyFleet"), 1);
	poke(s, ids);
	assert_int_equal(emu_stat(&e, "instances", "total"), 5);
	assert_int_equal(emu_stat(&e, "instances", "live"), 3);
	give_back(s, ids, 2, 5);
	assert_int_equal(calls(&e, "DeleteFleets"), 1);
	poke(s, ids);
	assert_int_equal(emu_stat(&e, "instances", "live"), 0);
	assert_int_equal(emu_stat(&e, "instances", "total"), 5);
	json_decref(ids);
	pv_strategy_unref(s);
	emu_stop(&e);
}

static void test_ec2_fleet_request_is_not_run_as_instant(void **state)
{
	(void)state;
	emu_proc e = start();
	pv_strategy *s = provider(&e, NULL);
	pv_result r = PV_RESULT_INIT;
	json_t *ids = create(s, tmpl("t-fr", "EC2Fleet", "request"), 3, "req-fr", "req-fr-r0", &r);
	assert_string_equal(json_string_value(json_object_get(r.data, "fleet_type")), "request");
	pv_result_clear(&r);
	assert_int_equal(calls(&e, "DescribeFleetInstances"), 1); /* instant answers its instances itself */
	give_back(s, ids, 0, 1);
	assert_int_equal(calls(&e, "ModifyFleet"), 0); /* a request fleet is not modified */
	assert_int_equal(calls(&e, "TerminateInstances"), 1);
	give_back(s, ids, 1, 3);
	assert_int_equal(calls(&e, "DeleteFleets"), 1);
	json_decref(ids);
	pv_strategy_unref(s);
	emu_stop(&e);
}

/* Capacity for 3 of 5: the maintain fleet answers what it has, and its
 * target is lowered to that, so nothing appears later that no request
 * records; a request fleet is ended (its instances kept). */
static void test_partly_filled_fleets_are_held_where_they_are(void **state)
{
	(void)state;
	const char *args[] = {"--capacity", "3", NULL};
	emu_proc e = start_with(args);
	pv_strategy *s = provider(&e, "\"group_fill_wait_ms\": 0");
	pv_result r = PV_RESULT_INIT;
	json_t *ids = create(s, tmpl("t-pm", "EC2Fleet", "maintain"), 5, "req-pm", "req-pm-r0", &r);
	assert_int_equal(json_array_size(ids), 3);
	assert_true(json_is_true(json_object_get(r.data, "partial")));
	pv_result_clear(&r);
	assert_int_equal(calls(&e, "ModifyFleet"), 1);
	give_back(s, ids, 0, 3);
	assert_int_equal(calls(&e, "DeleteFleets"), 1);
	json_decref(ids);
	ids = create(s, tmpl("t-pr", "SpotFleet", "request"), 5, "req-pr", "req-pr-r0", &r);
	assert_int_equal(json_array_size(ids), 3);
	pv_result_clear(&r);
	assert_int_equal(calls(&e, "CancelSpotFleetRequests"), 1); /* ended, TerminateInstances=false */
	poke(s, ids);
	assert_int_equal(emu_stat(&e, "instances", "live"), 3);
	give_back(s, ids, 0, 3); /* the fleet has ended: plain terminate */
	assert_int_equal(calls(&e, "TerminateInstances"), 1);
	json_decref(ids);
	pv_strategy_unref(s);
	emu_stop(&e);
}

/* A provider that did not launch them (the service restarted) finds the
 * fleet from the instances' aws:ec2:fleet-id tag and still keeps the
 * maintain fleet from replacing them. */
static void test_return_after_restart_finds_the_fleet_by_the_instance_tag(void **state)
{
	(void)state;
	emu_proc e = start();
	json_t *t = tmpl("t-rs", "EC2Fleet", "maintain");
	char *text = json_dumps(t, JSON_COMPACT);
	char extra[2048];
	snprintf(extra, sizeof extra, "\"templates\": [%s]", text);
	free(text);
	pv_strategy *s = provider(&e, extra);
	pv_result r = PV_RESULT_INIT;
	run(s, PV_OP_CREATE_INSTANCES,
	    json_pack("{s:i, s:s, s:s, s:s}", "count", 4, "template_id", "t-rs", "request_id", "req-rs", "client_token",
		      "req-rs-r0"),
	    &r);
	assert_true(r.success);
	json_t *ids = json_incref(json_object_get(r.data, "instance_ids"));
	pv_result_clear(&r);
	pv_strategy_unref(s);
	s = provider(&e, extra); /* a new process: knows nothing of the fleet */
	give_back(s, ids, 0, 1);
	assert_int_equal(calls(&e, "DescribeFleets"), 1);
	assert_int_equal(calls(&e, "ModifyFleet"), 1);
	poke(s, ids);
	assert_int_equal(emu_stat(&e, "instances", "total"), 4);
	give_back(s, ids, 1, 4);
	assert_int_equal(calls(&e, "DeleteFleets"), 1);
	poke(s, ids);
	assert_int_equal(emu_stat(&e, "instances", "live"), 0);
	json_decref(ids);
	json_decref(t);
	pv_strategy_unref(s);
	emu_stop(&e);
}

/* ---- Auto Scaling ----------------------------------------------------------------- */

static void test_asg_launches_gives_back_one_by_one_then_deletes(void **state)
{
	(void)state;
	emu_proc e = start();
	pv_strategy *s = provider(&e, NULL);
	pv_result r = PV_RESULT_INIT;
	json_t *ids = create(s, tmpl("t-asg", "ASG", NULL), 3, "req-asg", "req-asg-r0", &r);
	const char *group = json_string_value(json_object_get(r.data, "group_id"));
	assert_non_null(group);
	assert_int_equal(strncmp(group, "provisio-", 9), 0);
	assert_int_equal(json_integer_value(json_object_get(r.data, "count")), 3);
	json_t *gid = json_incref(json_object_get(r.data, "group_id"));
	pv_result_clear(&r);
	assert_int_equal(calls(&e, "CreateAutoScalingGroup"), 1);
	run(s, PV_OP_DESCRIBE_RESOURCE_INSTANCES, json_pack("{s:o}", "resource_id", gid), &r);
	assert_true(r.success);
	assert_int_equal(json_array_size(json_object_get(r.data, "instances")), 3); /* by the group's name */
	pv_result_clear(&r);
	give_back(s, ids, 0, 1);
	assert_int_equal(calls(&e, "TerminateInstanceInAutoScalingGroup"), 1);
	poke(s, ids);
	assert_int_equal(emu_stat(&e, "instances", "total"), 3); /* the group shrank: no replacement */
	assert_int_equal(emu_stat(&e, "instances", "live"), 2);
	give_back(s, ids, 1, 3);
	assert_int_equal(calls(&e, "DeleteAutoScalingGroup"), 1);
	poke(s, ids);
	assert_int_equal(emu_stat(&e, "instances", "live"), 0);
	assert_int_equal(emu_stat(&e, "instances", "groups"), 0);
	json_decref(ids);
	pv_strategy_unref(s);
	emu_stop(&e);
}

/* A repeated create of one launch (the same token) is the same group: its
 * name comes from the token and AlreadyExists means "made already". */
static void test_asg_retry_of_one_launch_is_the_same_group(void **state)
{
	(void)state;
	emu_proc e = start();
	pv_strategy *s = provider(&e, NULL);
	pv_result r = PV_RESULT_INIT;
	json_t *a = create(s, tmpl("t-asg2", "ASG", NULL), 2, "req-a2", "req-a2-r0", &r);
	pv_result_clear(&r);
	json_t *b = create(s, tmpl("t-asg2", "ASG", NULL), 2, "req-a2", "req-a2-r0", &r);
	assert_int_equal(json_integer_value(json_object_get(pv_result_meta(&r), "found_after_lost_answer")), 1);
	pv_result_clear(&r);
	assert_true(json_equal(a, b));
	assert_int_equal(emu_stat(&e, "instances", "total"), 2);
	assert_int_equal(emu_stat(&e, "instances", "groups"), 1);
	json_decref(a);
	json_decref(b);
	pv_strategy_unref(s);
	emu_stop(&e);
}

/* A weighted maintain fleet: an instance of weight 2 returned lowers the
 * target by 2 (by 1, the fleet would launch another to make it up). */
static void test_weighted_return_lowers_the_target_by_the_weight(void **state)
{
	(void)state;
	emu_proc e = start();
	pv_strategy *s = provider(&e, NULL);
	json_t *t = tmpl("t-w", "EC2Fleet", "maintain");
	json_object_del(t, "vmType");
	json_object_set_new(t, "vmTypes", json_pack("{s:i}", "t3.small", 2));
	pv_result r = PV_RESULT_INIT;
	json_t *ids = create(s, t, 4, "req-w", "req-w-r0", &r);
	assert_int_equal(json_array_size(ids), 2);
	assert_int_equal(json_integer_value(json_object_get(r.data, "fulfilled_capacity")), 4);
	pv_result_clear(&r);
	give_back(s, ids, 0, 1);
	poke(s, ids);
	assert_int_equal(emu_stat(&e, "instances", "total"), 2);
	assert_int_equal(emu_stat(&e, "instances", "live"), 1);
	json_decref(ids);
	pv_strategy_unref(s);
	emu_stop(&e);
}

/* One return naming instances of two fleets and of RunInstances: each
 * fleet ended with its own, the others terminated in one call. */
static void test_one_return_across_fleets_and_plain_instances(void **state)
{
	(void)state;
	emu_proc e = start();
	pv_strategy *s = provider(&e, NULL);
	pv_result r = PV_RESULT_INIT;
	json_t *all = create(s, tmpl("t-x1", "SpotFleet", "maintain"), 2, "req-x1", "req-x1-r0", &r);
	pv_result_clear(&r);
	json_t *b = create(s, tmpl("t-x2", "EC2Fleet", "maintain"), 2, "req-x2", "req-x2-r0", &r);
	pv_result_clear(&r);
	json_t *c = create(s, tmpl("t-x3", "RunInstances", NULL), 2, "req-x3", "req-x3-r0", &r);
	pv_result_clear(&r);
	json_array_extend(all, b);
	json_array_extend(all, c);
	give_back(s, all, 0, 6);
	assert_int_equal(calls(&e, "CancelSpotFleetRequests"), 1);
	assert_int_equal(calls(&e, "DeleteFleets"), 1);
	assert_int_equal(calls(&e, "TerminateInstances"), 1);
	poke(s, all);
	assert_int_equal(emu_stat(&e, "instances", "live"), 0);
	assert_int_equal(emu_stat(&e, "instances", "total"), 6);
	json_decref(all);
	json_decref(b);
	json_decref(c);
	pv_strategy_unref(s);
	emu_stop(&e);
}

/* Auto Scaling's calls spend its own client bucket: with it nearly empty a
 * return through the group fails naming the client-side throttle (the wait
 * would pass the deadline, so nothing is sent), while EC2's calls go on. */
static void test_auto_scaling_has_its_own_client_bucket(void **state)
{
	(void)state;
	emu_proc e = start();
	pv_strategy *s = provider(&e, "\"throttle\": {\"autoscaling\": {\"capacity\": 2, \"refill_per_s\": 0.001}}");
	pv_result r = PV_RESULT_INIT;
	json_t *ids = create(s, tmpl("t-ab", "ASG", NULL), 2, "req-ab", "req-ab-r0", &r);
	pv_result_clear(&r);
	assert_int_equal(calls(&e, "CreateAutoScalingGroup"), 1);
	assert_int_equal(calls(&e, "DescribeAutoScalingGroups"), 1);
	json_t *one = json_pack("[O]", json_array_get(ids, 0));
	run(s, PV_OP_TERMINATE_INSTANCES, json_pack("{s:o}", "instance_ids", one), &r);
	assert_false(r.success);
	/* the cause named: this API's bucket, before any call was sent */
	if (!strstr(pv_result_message(&r), "TerminateInstanceInAutoScalingGroup") ||
	    !strstr(pv_result_message(&r), "client-side throttle"))
		fail_msg("%s: %s", r.error_code, pv_result_message(&r));
	pv_result_clear(&r);
	assert_int_equal(calls(&e, "TerminateInstanceInAutoScalingGroup"), 0);
	poke(s, ids); /* EC2's describe bucket is another one */
	assert_int_equal(emu_stat(&e, "instances", "live"), 2);
	json_decref(ids);
	pv_strategy_unref(s);
	emu_stop(&e);
}

/* The original project's fleet and group templates (tests/data), as a user
 * brings them: each launches through its API and ends with its last
 * instance. Two changes: an AMI id for the SSM parameter path (resolved by
 * the template side, not here) and the fleetRole Spot Fleet requires,
 * which those templates lack (without it they are refused by name). */
static void test_original_fleet_and_group_templates_run_for_real(void **state)
{
	(void)state;
	json_error_t err;
	json_t *doc = json_load_file(PV_TEST_DATA_DIR "/hostfactory/awsprov_templates.json", 0, &err);
	if (!doc)
		fail_msg("awsprov_templates.json: %s", err.text);
	emu_proc e = start();
	pv_strategy *s = provider(&e, NULL);
	json_t *all = json_array();
	static const struct {
		const char *id, *create, *end;
	} cases[] = {
		{"EC2FleetMaintain", "CreateFleet", "DeleteFleets"},
		{"EC2FleetRequest", "CreateFleet", "DeleteFleets"},
		{"SpotFleetRequest", "RequestSpotFleet", "CancelSpotFleetRequests"},
		{"SpotFleetMaintain", "RequestSpotFleet", "CancelSpotFleetRequests"},
		{"ASG", "CreateAutoScalingGroup", "DeleteAutoScalingGroup"},
	};
	for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
		json_t *t = NULL, *v;
		size_t i;
		json_array_foreach(json_object_get(doc, "templates"), i, v)
			if (strcmp(json_string_value(json_object_get(v, "templateId")), cases[c].id) == 0)
				t = json_deep_copy(v);
		assert_non_null(t);
		json_object_set_new(t, "imageId", json_string("ami-12345678"));
		if (strncmp(cases[c].id, "SpotFleet", 9) == 0)
			json_object_set_new(t, "fleetRole", json_string(ROLE));
		long long made = calls(&e, cases[c].create), ended = calls(&e, cases[c].end);
		char req[64], token[80];
		snprintf(req, sizeof req, "req-orig-%zu", c);
		snprintf(token, sizeof token, "%s-r0", req);
		pv_result r = PV_RESULT_INIT;
		json_t *ids = create(s, t, 2, req, token, &r);
		assert_int_equal(json_array_size(ids), 2);
		json_t *in0 = json_array_get(json_object_get(r.data, "instances"), 0);
		assert_string_equal(json_string_value(json_object_get(in0, "template_id")), cases[c].id);
		pv_result_clear(&r);
		assert_int_equal(calls(&e, cases[c].create), made + 1);
		give_back(s, ids, 0, 2);
		assert_int_equal(calls(&e, cases[c].end), ended + 1);
		json_array_extend(all, ids);
		json_decref(ids);
	}
	poke(s, all);
	json_decref(all);
	assert_int_equal(emu_stat(&e, "instances", "live"), 0);
	assert_int_equal(emu_stat(&e, "instances", "total"), 10);
	json_decref(doc);
	pv_strategy_unref(s);
	emu_stop(&e);
}

/* ---- whose launch template ------------------------------------------------------ */

/* The maintained kinds, each with the call that ends one. */
static const struct group_kind_case {
	const char *api, *fleet_type, *end;
} maintained[] = {
	{"SpotFleet", "maintain", "CancelSpotFleetRequests"},
	{"EC2Fleet", "maintain", "DeleteFleets"},
	{"ASG", NULL, "DeleteAutoScalingGroup"},
};

#define N_MAINTAINED (sizeof maintained / sizeof maintained[0])

/* The live instances of `request` (new array of ids): a group's
 * replacements included, which the caller has not seen. */
static json_t *live_of(pv_strategy *s, const char *request)
{
	pv_result r = PV_RESULT_INIT;
	run(s, PV_OP_GET_INSTANCE_STATUS, json_pack("{s:s}", "request_id", request), &r);
	assert_true(r.success);
	json_t *ids = json_array();
	size_t i;
	json_t *in;
	json_array_foreach(json_object_get(r.data, "instances"), i, in) {
		const char *st = json_string_value(json_object_get(in, "state"));
		if (st && (strcmp(st, "running") == 0 || strcmp(st, "pending") == 0))
			json_array_append(ids, json_object_get(in, "instance_id"));
	}
	pv_result_clear(&r);
	return ids;
}

/* Takes spot instance `id` back (an interruption): a maintained group
 * replaces it from its launch template. */
static void interrupt(const emu_proc *e, const json_t *id)
{
	json_t *req = json_pack("{s:[O]}", "instance_ids", id);
	char *body = json_dumps(req, JSON_COMPACT);
	json_t *ans = emu_admin(e, "/_emu/interrupt", body);
	assert_int_equal(json_array_size(json_object_get(ans, "interrupted")), 1);
	json_decref(ans);
	free(body);
	json_decref(req);
}

/* A create that surely made no group (EC2 refused it: throttled until the
 * deadline) deletes the launch template made for it, which nothing will
 * launch from; one whose answer was lost keeps it (the group may exist). */
static void test_a_group_never_made_leaves_no_launch_template(void **state)
{
	(void)state;
	emu_proc e = start();
	assert_int_equal(emu_config(&e, "{\"throttle_rate\": 1.0, \"fault_actions\": [\"RequestSpotFleet\"]}"), 0);
	pv_strategy *s = provider(&e, NULL);
	pv_result r = PV_RESULT_INIT;
	pv_operation op = {.type = PV_OP_CREATE_INSTANCES,
			   .params = json_pack("{s:i, s:o, s:s, s:s}", "count", 2, "template",
					       tmpl("t-never", "SpotFleet", "maintain"), "request_id", "req-never",
					       "client_token", "req-never-r0"),
			   .deadline_ns = pv_now_ns() + 2 * PV_NS_PER_S};
	pv_strategy_execute(s, &op, &r, NULL);
	json_decref(op.params);
	if (r.success || !strstr(pv_result_message(&r), "RequestSpotFleet"))
		fail_msg("a throttled RequestSpotFleet: %s", r.success ? "succeeded" : pv_result_message(&r));
	assert_false(r.success);
	assert_false(json_is_true(json_object_get(pv_result_meta(&r), "outcome_unknown")));
	pv_result_clear(&r);
	assert_int_equal(calls(&e, "CreateLaunchTemplate"), 1);
	assert_int_equal(emu_stat(&e, "instances", "groups"), 0);
	assert_int_equal(calls(&e, "DeleteLaunchTemplate"), 1);
	assert_int_equal(emu_stat(&e, "launch_templates", NULL), 0);
	/* every answer lost: the group may exist, its template stays */
	assert_int_equal(emu_config(&e, "{\"throttle_rate\": 0, \"lose_rate\": 1.0, \"fault_actions\": "
					"[\"RequestSpotFleet\", \"DescribeSpotFleetRequests\"]}"), 0);
	pv_strategy_unref(s);
	s = provider(&e, "\"timeout_ms\": 200, \"max_retries\": 1");
	run(s, PV_OP_CREATE_INSTANCES,
	    json_pack("{s:i, s:o, s:s, s:s}", "count", 2, "template", tmpl("t-never", "SpotFleet", "maintain"),
		      "request_id", "req-never", "client_token", "req-never-r1"),
	    &r);
	assert_false(r.success);
	assert_true(json_is_true(json_object_get(pv_result_meta(&r), "outcome_unknown")));
	pv_result_clear(&r);
	assert_int_equal(calls(&e, "DeleteLaunchTemplate"), 1);
	assert_int_equal(emu_stat(&e, "launch_templates", NULL), 1);
	pv_strategy_unref(s);
	emu_stop(&e);
}

/* A provider configured with the one template `t` (which it keeps): a
 * provider of a later Host Factory call reads its groups from EC2. */
static pv_strategy *provider_with(const emu_proc *e, const json_t *t)
{
	char *text = json_dumps(t, JSON_COMPACT);
	char extra[2048];
	snprintf(extra, sizeof extra, "\"templates\": [%s]", text);
	free(text);
	return provider(e, extra);
}

/* Two launches of the same launch data (two rounds of one request, the
 * broker's next round after a partial one): each group launches from a
 * launch template of its own, so the first one ending (its template
 * deleted with it) leaves the second able to replace what it loses; once
 * both ended, no template of theirs is left. Before, they shared one, and
 * the first group's end deleted it under the second. */
static void test_each_group_launches_from_its_own_launch_template(void **state)
{
	(void)state;
	for (size_t c = 0; c < N_MAINTAINED; c++) {
		emu_proc e = start();
		json_t *t = tmpl("t-own", maintained[c].api, maintained[c].fleet_type);
		json_object_set_new(t, "priceType", json_string("spot"));
		pv_strategy *s = provider_with(&e, t);
		pv_result r = PV_RESULT_INIT;
		json_t *a = create(s, json_deep_copy(t), 2, "req-own", "req-own-r0", &r);
		pv_result_clear(&r);
		json_t *b = create(s, json_deep_copy(t), 2, "req-own", "req-own-r1", &r);
		pv_result_clear(&r);
		assert_int_equal(emu_stat(&e, "instances", "groups"), 2);
		give_back(s, a, 0, 2);
		assert_int_equal(calls(&e, maintained[c].end), 1);
		assert_int_equal(calls(&e, "DeleteLaunchTemplate"), 1);
		if (emu_stat(&e, "launch_templates", NULL) != 1)
			fail_msg("%s: the second group's launch template went with the first group",
				 maintained[c].api);
		/* the second group still replaces what it loses */
		long long total = emu_stat(&e, "instances", "total");
		interrupt(&e, json_array_get(b, 0));
		poke(s, b);
		if (emu_stat(&e, "instances", "total") != total + 1)
			fail_msg("%s: the second group did not replace an interrupted instance", maintained[c].api);
		/* and is returned cleanly (by a later Host Factory call, which
		 * reads the group from EC2), its template with it */
		pv_strategy_unref(s);
		s = provider_with(&e, t);
		json_t *left = live_of(s, "req-own");
		assert_int_equal(json_array_size(left), 2);
		give_back(s, left, 0, 2);
		assert_int_equal(calls(&e, maintained[c].end), 2);
		assert_int_equal(calls(&e, "DeleteLaunchTemplate"), 2);
		assert_int_equal(emu_stat(&e, "launch_templates", NULL), 0);
		poke(s, b);
		assert_int_equal(emu_stat(&e, "instances", "live"), 0);
		json_decref(left);
		json_decref(a);
		json_decref(b);
		json_decref(t);
		pv_strategy_unref(s);
		emu_stop(&e);
	}
}

/* One long-lived process: a maintained group replaced an interrupted
 * instance, which this process never saw launch. Returning every live
 * instance still ends the group (and its launch template goes): the
 * group's state is read from EC2 when the process's own is stale. Before,
 * the stale one lowered the target to 0 and the group and its template
 * stayed. */
static void test_a_replacement_the_process_never_saw_still_ends_the_group(void **state)
{
	(void)state;
	for (size_t c = 0; c < N_MAINTAINED; c++) {
		emu_proc e = start();
		json_t *t = tmpl("t-rep", maintained[c].api, maintained[c].fleet_type);
		json_object_set_new(t, "priceType", json_string("spot"));
		pv_strategy *s = provider_with(&e, t);
		pv_result r = PV_RESULT_INIT;
		json_t *ids = create(s, json_deep_copy(t), 2, "req-rep", "req-rep-r0", &r);
		pv_result_clear(&r);
		interrupt(&e, json_array_get(ids, 0));
		poke(s, ids);
		assert_int_equal(emu_stat(&e, "instances", "total"), 3); /* replaced */
		json_t *left = live_of(s, "req-rep");
		assert_int_equal(json_array_size(left), 2);
		give_back(s, left, 0, 2);
		if (calls(&e, maintained[c].end) != 1 || emu_stat(&e, "launch_templates", NULL) != 0)
			fail_msg("%s: the group or its launch template outlived its last instance", maintained[c].api);
		poke(s, left);
		assert_int_equal(emu_stat(&e, "instances", "live"), 0);
		json_decref(left);
		json_decref(ids);
		json_decref(t);
		pv_strategy_unref(s);
		emu_stop(&e);
	}
}

/* Creates `count` units through the configured template `id`: the ids. */
static json_t *create_by_id(pv_strategy *s, const char *id, int count, const char *request)
{
	char token[80];
	snprintf(token, sizeof token, "%s-r0", request);
	pv_result r = PV_RESULT_INIT;
	run(s, PV_OP_CREATE_INSTANCES,
	    json_pack("{s:i, s:s, s:s, s:s}", "count", count, "template_id", id, "request_id", request,
		      "client_token", token),
	    &r);
	if (!r.success)
		fail_msg("create through %s: %s", id, pv_result_message(&r));
	json_t *ids = json_incref(json_object_get(r.data, "instance_ids"));
	pv_result_clear(&r);
	return ids;
}

/* Every Host Factory call is a new process: the machines of a weighted
 * group are returned by a provider that did not launch them. It reads the
 * group's instance weights from EC2 (an instance of weight 2 lowers the
 * target by 2, so nothing replaces it) and its launch template, deleted
 * when the group ends. Before, each instance counted 1 and the template
 * was left behind. */
static void test_after_a_restart_weights_count_and_the_launch_template_goes(void **state)
{
	(void)state;
	for (size_t c = 0; c < N_MAINTAINED; c++) {
		emu_proc e = start();
		json_t *t = tmpl("t-rw", maintained[c].api, maintained[c].fleet_type);
		json_object_del(t, "vmType");
		json_object_set_new(t, "vmTypes", json_pack("{s:i}", "t3.small", 2));
		pv_strategy *s = provider_with(&e, t);
		json_t *ids = create_by_id(s, "t-rw", 4, "req-rw");
		assert_int_equal(json_array_size(ids), 2);
		pv_strategy_unref(s);
		s = provider_with(&e, t); /* a new process: empty caches */
		give_back(s, ids, 0, 1);
		poke(s, ids);
		if (emu_stat(&e, "instances", "total") != 2)
			fail_msg("%s: the returned instance of weight 2 was replaced", maintained[c].api);
		assert_int_equal(emu_stat(&e, "instances", "live"), 1);
		pv_strategy_unref(s);
		s = provider_with(&e, t); /* and another */
		give_back(s, ids, 1, 2);
		assert_int_equal(calls(&e, maintained[c].end), 1);
		assert_int_equal(calls(&e, "DeleteLaunchTemplate"), 1);
		if (emu_stat(&e, "launch_templates", NULL) != 0)
			fail_msg("%s: the group's launch template was left behind", maintained[c].api);
		poke(s, ids);
		assert_int_equal(emu_stat(&e, "instances", "live"), 0);
		json_decref(ids);
		json_decref(t);
		pv_strategy_unref(s);
		emu_stop(&e);
	}
}

/* A launch template the Host Factory template names (launchTemplateId) is
 * the user's: never deleted, neither by the process that launched the
 * group nor after a restart, even when its name looks like one provisio
 * makes (only the mark of the group's own request counts). */
static void test_a_launch_template_given_by_id_is_never_deleted(void **state)
{
	(void)state;
	for (size_t c = 0; c < N_MAINTAINED; c++) {
		for (int restart = 0; restart < 2; restart++) {
			emu_proc e = start();
			assert_int_equal(emu_launch_template(&e, "lt-0a1b2c3d4e5f60718", "provisio-t-user-0123456789abcdef",
							     "ami-12345678", "t3.micro"),
					 0);
			json_t *t = tmpl("t-user", maintained[c].api, maintained[c].fleet_type);
			json_object_del(t, "imageId");
			json_object_set_new(t, "launchTemplateId", json_string("lt-0a1b2c3d4e5f60718"));
			pv_strategy *s = provider_with(&e, t);
			json_t *ids = create_by_id(s, "t-user", 2, "req-user");
			assert_int_equal(calls(&e, "CreateLaunchTemplate"), 0);
			if (restart) {
				pv_strategy_unref(s);
				s = provider_with(&e, t);
			}
			give_back(s, ids, 0, 2);
			assert_int_equal(calls(&e, maintained[c].end), 1);
			if (calls(&e, "DeleteLaunchTemplate") != 0 || emu_stat(&e, "launch_templates", NULL) != 1)
				fail_msg("%s%s: the user's launch template was deleted", maintained[c].api,
					 restart ? " after a restart" : "");
			json_decref(ids);
			json_decref(t);
			pv_strategy_unref(s);
			emu_stop(&e);
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_spot_fleet_request_launches_and_ends_with_its_last_instance),
		cmocka_unit_test(test_maintain_spot_fleet_does_not_replace_a_returned_instance),
		cmocka_unit_test(test_spot_fleet_without_fleet_role_is_refused_and_nothing_launched),
		cmocka_unit_test(test_spot_fleet_client_token_is_one_fleet),
		cmocka_unit_test(test_lost_spot_fleet_answer_is_found_by_its_token),
		cmocka_unit_test(test_lost_spot_fleet_that_cannot_be_looked_up_is_an_unknown_outcome),
		cmocka_unit_test(test_fleet_instances_are_listed_for_the_orphan_sweep_with_their_request),
		cmocka_unit_test(test_lost_ec2_fleet_answer_is_found_by_its_token),
		cmocka_unit_test(test_ec2_fleet_maintain_gives_back_without_replacement_then_deletes),
		cmocka_unit_test(test_ec2_fleet_request_is_not_run_as_instant),
		cmocka_unit_test(test_return_after_restart_finds_the_fleet_by_the_instance_tag),
		cmocka_unit_test(test_partly_filled_fleets_are_held_where_they_are),
		cmocka_unit_test(test_asg_launches_gives_back_one_by_one_then_deletes),
		cmocka_unit_test(test_asg_retry_of_one_launch_is_the_same_group),
		cmocka_unit_test(test_weighted_return_lowers_the_target_by_the_weight),
		cmocka_unit_test(test_one_return_across_fleets_and_plain_instances),
		cmocka_unit_test(test_auto_scaling_has_its_own_client_bucket),
		cmocka_unit_test(test_original_fleet_and_group_templates_run_for_real),
		cmocka_unit_test(test_each_group_launches_from_its_own_launch_template),
		cmocka_unit_test(test_a_replacement_the_process_never_saw_still_ends_the_group),
		cmocka_unit_test(test_a_group_never_made_leaves_no_launch_template),
		cmocka_unit_test(test_after_a_restart_weights_count_and_the_launch_template_goes),
		cmocka_unit_test(test_a_launch_template_given_by_id_is_never_deleted),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
