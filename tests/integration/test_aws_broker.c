/*
 * test_aws_broker.c - the broker over the AWS provider and the EC2
 * emulator (real programs on loopback, a real SQLite store): no machine is
 * lost when EC2's answers are: a create whose answers were lost resolves
 * the request instead of failing it; when nothing can be looked up the
 * request is left to recovery, which releases what was made once EC2
 * answers again; every round is a launch of its own; a request taken over
 * from a dead process adopts what it launched; throttling is named; the
 * Host Factory machine fields come from the instance, field by field; and
 * providers of two brokers on one store spend one set of EC2 buckets.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>
#include "broker_fixture.h"
#include "emu_harness.h"
#include "provisio/provisio.h"
#include "provisio/hostfactory.h"

#ifndef PV_EC2_EMULATOR
#define PV_EC2_EMULATOR "ec2-emulator"
#endif

static const char *templates_json =
	"{\"templates\": ["
	" {\"templateId\": \"od\", \"provider\": \"aws\", \"maxNumber\": -1, \"imageId\": \"ami-12345678\","
	"  \"vmType\": \"t3.micro\", \"providerApi\": \"RunInstances\"},"
	" {\"templateId\": \"spot\", \"provider\": \"aws\", \"maxNumber\": -1, \"imageId\": \"ami-12345678\","
	"  \"vmType\": \"t3.small\", \"priceType\": \"spot\"},"
	" {\"templateId\": \"sfm\", \"provider\": \"aws\", \"maxNumber\": -1, \"imageId\": \"ami-12345678\","
	"  \"vmType\": \"t3.micro\", \"providerApi\": \"SpotFleet\", \"fleetType\": \"maintain\","
	"  \"fleetRole\": \"arn:aws:iam::123456789012:role/fleet\"},"
	" {\"templateId\": \"efm\", \"provider\": \"aws\", \"maxNumber\": -1, \"imageId\": \"ami-12345678\","
	"  \"vmType\": \"t3.micro\", \"providerApi\": \"EC2Fleet\", \"fleetType\": \"maintain\"}]}";

typedef struct world {
	emu_proc e;
	pv_strategy *aws;
	pv_context *ctx;
	pv_store *st;
	pv_broker *b;
	char db[400];
} world;

/* The aws provider "aws" aimed at the emulator; `extra` merged into its
 * config. */
static pv_strategy *aws_provider(const emu_proc *e, const char *name, const char *extra)
{
	pv_strategy *s = emu_provider(e, name, extra);
	if (!s)
		fail_msg("aws provider: %s", pv_error_last());
	return s;
}

static world *up(const char *const *emu_args, const char *aws_extra, const pv_broker_settings *set)
{
	world *w = calloc(1, sizeof *w);
	assert_int_equal(emu_start(&w->e, PV_EC2_EMULATOR, emu_args), 0);
	w->aws = aws_provider(&w->e, "aws", aws_extra);
	w->ctx = bf_context(NULL, &w->aws, 1);
	bf_db_path(w->db, sizeof w->db, "aws");
	w->st = bf_store(w->db);
	const char *providers[] = {"aws"};
	pv_broker_setup s = {.ctx = w->ctx, .strategies = &w->aws, .n_strategies = 1, .providers = providers,
			     .n_providers = 1, .store = w->st};
	if (set)
		s.settings = *set;
	w->b = bf_broker(&s, templates_json);
	return w;
}

static void down(world *w)
{
	bf_close(w->b, w->st);
	bf_release(w->ctx, &w->aws, 1);
	emu_stop(&w->e);
	free(w);
}

static pv_request_rec stored(world *w, const char *id)
{
	pv_request_rec r;
	assert_int_equal(pv_store_begin(w->st, false), 0);
	assert_int_equal(pv_store_request_get(w->st, id, &r), 0);
	pv_store_commit(w->st);
	return r;
}

/* The request's machines as the store has them. */
static size_t machines_of(world *w, const char *id, pv_machine_list *ms)
{
	assert_int_equal(pv_store_begin(w->st, false), 0);
	assert_int_equal(pv_store_machine_list(w->st, PV_MF_REQUEST, id, ms), 0);
	pv_store_commit(w->st);
	return ms->n;
}

/* EC2 launched but no RunInstances answer ever came back (the client's
 * timeout each time): the request is complete with the instances found by
 * their token, not "failed" with 20 instances running. */
static void test_lost_create_answers_resolve_the_request(void **state)
{
	(void)state;
	world *w = up(NULL, "{\"timeout_ms\": 300, \"max_retries\": 1}", NULL);
	assert_int_equal(emu_config(&w->e, "{\"lose_rate\": 1.0, \"fault_actions\": [\"RunInstances\"]}"), 0);
	char id[PV_STORE_SHORT_MAX];
	if (pv_broker_request_machines(w->b, "od", 20, id) != 0)
		fail_msg("the request failed: %s", pv_error_last());
	pv_request_rec r = stored(w, id);
	assert_int_equal(r.state, PV_REQ_COMPLETE);
	pv_machine_list ms = {0};
	assert_int_equal(machines_of(w, id, &ms), 20);
	pv_machine_list_clear(&ms);
	assert_true(emu_stat(&w->e, "faults", "lose") >= 2);
	assert_int_equal(emu_stat(&w->e, "instances", "total"), 20);
	down(w);
}

/* Neither the launch's answers nor a lookup's come back: nobody can know
 * what exists, so the request is not declared failed but left to
 * recovery (no owner); once EC2 answers again, recovery finds the 20
 * instances under the request's tag and releases them. */
static void test_unsettled_request_is_left_to_recovery_which_releases_its_machines(void **state)
{
	(void)state;
	world *w = up(NULL, "{\"timeout_ms\": 200, \"max_retries\": 1}", NULL);
	assert_int_equal(emu_config(&w->e, "{\"lose_rate\": 1.0, \"fault_actions\": [\"RunInstances\", "
					   "\"DescribeInstances\"]}"), 0);
	char id[PV_STORE_SHORT_MAX];
	assert_int_equal(pv_broker_request_machines(w->b, "od", 20, id), PV_EIO);
	assert_non_null(strstr(pv_error_last(), "unknown"));
	pv_request_rec *list = NULL;
	size_t n = 0;
	assert_int_equal(pv_store_request_list(w->st, -1, 0, &list, &n), 0);
	assert_int_equal(n, 1);
	pv_request_rec r = list[0];
	free(list);
	assert_int_equal(r.state, PV_REQ_CREATING);
	assert_int_equal(r.owner_pid, 0);
	assert_int_equal(emu_stat(&w->e, "instances", "live"), 20);
	/* EC2 still silent: recovery does not conclude either */
	assert_int_equal(pv_broker_recover(w->b), 0);
	assert_int_equal(stored(w, r.id).state, PV_REQ_CREATING);
	assert_int_equal(emu_config(&w->e, "{\"lose_rate\": 0}"), 0);
	assert_int_equal(pv_broker_recover(w->b), 1);
	r = stored(w, r.id);
	assert_int_equal(r.state, PV_REQ_FAILED);
	assert_non_null(strstr(r.message, "20 machine(s) released"));
	assert_int_equal(emu_stat(&w->e, "instances", "live"), 0);
	down(w);
}

/* Round 0 launches 100 and fails its second batch; round 1 is a launch of
 * its own (new tokens), not a replay of round 0's first batch: 250 of 250,
 * and EC2 launched exactly 250. */
static void test_each_round_is_a_launch_of_its_own(void **state)
{
	(void)state;
	world *w = up(NULL, "{\"max_retries\": 1, \"max_instances_per_call\": 100}", NULL);
	assert_int_equal(emu_config(&w->e, "{\"faults_next\": {\"RunInstances\": [\"none\", \"5xx\", \"5xx\"]}}"), 0);
	char id[PV_STORE_SHORT_MAX];
	if (pv_broker_request_machines(w->b, "od", 250, id) != 0)
		fail_msg("request: %s", pv_error_last());
	pv_request_rec r = stored(w, id);
	if (r.state != PV_REQ_COMPLETE)
		fail_msg("%s: %s", pv_request_state_name(r.state), r.message);
	pv_machine_list ms = {0};
	assert_int_equal(machines_of(w, id, &ms), 250);
	pv_machine_list_clear(&ms);
	assert_int_equal(emu_stat(&w->e, "instances", "total"), 250);
	assert_int_equal(emu_stat(&w->e, "faults", "5xx"), 2);
	down(w);
}

/* Returns machines [from, to) of `ms` through the broker. */
static void return_some(world *w, const pv_machine_list *ms, size_t from, size_t to)
{
	pv_machine_ref refs[8];
	for (size_t i = from; i < to; i++)
		refs[i - from] = (pv_machine_ref){.machine_id = ms->items[i].machine_id};
	char rid[PV_STORE_SHORT_MAX];
	if (pv_broker_return_machines(w->b, refs, to - from, rid) != 0)
		fail_msg("return: %s", pv_error_last());
}

/* One EC2 call: the emulator tops maintained fleets up before answering. */
static void poke(world *w, const pv_machine_list *ms)
{
	json_t *ids = json_array();
	for (size_t i = 0; i < ms->n; i++)
		json_array_append_new(ids, json_string(ms->items[i].machine_id));
	pv_operation op = {.type = PV_OP_GET_INSTANCE_STATUS, .params = json_pack("{s:o}", "instance_ids", ids)};
	pv_result r = PV_RESULT_INIT;
	pv_strategy_execute(w->aws, &op, &r, NULL);
	assert_true(r.success);
	pv_result_clear(&r);
	json_decref(op.params);
}

/* Maintain fleets (Spot Fleet, EC2 Fleet) through the broker: the request
 * completes with the fleet's instances; machines Host Factory returns are
 * not replaced by the fleet; the last return ends it. */
static void test_maintain_fleets_never_replace_returned_machines(void **state)
{
	(void)state;
	pv_broker_settings set = {.status_max_age_seconds = -1}; /* each status asks EC2 */
	world *w = up(NULL, NULL, &set);
	const char *tmpls[] = {"sfm", "efm"};
	const char *end_action[] = {"CancelSpotFleetRequests", "DeleteFleets"};
	for (int k = 0; k < 2; k++) {
		char id[PV_STORE_SHORT_MAX];
		if (pv_broker_request_machines(w->b, tmpls[k], 4, id) != 0)
			fail_msg("%s: %s", tmpls[k], pv_error_last());
		/* the fleet answers its instances pending: complete once running */
		pv_request_rec r;
		pv_machine_list ms = {0};
		PV_TEST_WAIT_UNTIL((ms.n = 0, pv_broker_request_status(w->b, id, &r, &ms) == 0 &&
						     r.state == PV_REQ_COMPLETE));
		if (r.state != PV_REQ_COMPLETE)
			fail_msg("%s: %s: %s", tmpls[k], pv_request_state_name(r.state), r.message);
		assert_int_equal(ms.n, 4);
		return_some(w, &ms, 0, 2);
		poke(w, &ms);
		assert_int_equal(emu_stat(&w->e, "instances", "total"), 4 * (k + 1)); /* none replaced */
		assert_int_equal(emu_stat(&w->e, "instances", "live"), 2);
		assert_int_equal(emu_stat(&w->e, "calls", end_action[k]), 0);
		return_some(w, &ms, 2, 4);
		assert_int_equal(emu_stat(&w->e, "calls", end_action[k]), 1);
		poke(w, &ms);
		assert_int_equal(emu_stat(&w->e, "instances", "live"), 0);
		assert_int_equal(emu_stat(&w->e, "instances", "total"), 4 * (k + 1));
		pv_machine_list_clear(&ms);
	}
	down(w);
}

/* A queued request whose process died after launching 6 of its 10 (under
 * a token no replay would reproduce): the next process adopts the 6 found
 * under its tag and launches 4 more; none is left unrecorded. */
static void test_queued_request_taken_over_adopts_what_its_dead_owner_launched(void **state)
{
	(void)state;
	world *w = up(NULL, NULL, NULL);
	pv_broker_set_mode(w->b, PV_BROKER_DEFERRED);
	char id[PV_STORE_SHORT_MAX];
	assert_int_equal(pv_broker_request_machines(w->b, "od", 10, id), 0);
	/* the dead owner: claimed it, launched 6, never wrote them */
	pv_request_rec r = stored(w, id);
	r.owner_pid = bf_dead_pid();
	assert_int_equal(pv_store_begin(w->st, true), 0);
	assert_int_equal(pv_store_request_put(w->st, &r), 0);
	assert_int_equal(pv_store_commit(w->st), 0);
	json_t *tmpl = json_incref((json_t *)pv_broker_template(w->b, "od"));
	pv_operation op = {.type = PV_OP_CREATE_INSTANCES,
			   .params = json_pack("{s:i, s:s, s:s, s:s, s:o}", "count", 6, "request_id", id,
					       "client_token", "dead-owner-round-1", "template_id", "od", "template", tmpl)};
	pv_result res = PV_RESULT_INIT;
	pv_strategy_execute(w->aws, &op, &res, NULL);
	assert_true(res.success);
	json_t *theirs = json_incref(json_object_get(res.data, "instance_ids"));
	pv_result_clear(&res);
	json_decref(op.params);
	pv_broker_set_mode(w->b, PV_BROKER_DIRECT);
	assert_int_equal(pv_broker_run_queue(w->b), 1);
	r = stored(w, id);
	if (r.state != PV_REQ_COMPLETE)
		fail_msg("%s: %s", pv_request_state_name(r.state), r.message);
	pv_machine_list ms = {0};
	assert_int_equal(machines_of(w, id, &ms), 10);
	size_t i;
	json_t *v;
	json_array_foreach(theirs, i, v) {
		bool found = false;
		for (size_t k = 0; k < ms.n; k++)
			found |= strcmp(ms.items[k].machine_id, json_string_value(v)) == 0;
		assert_true(found);
	}
	pv_machine_list_clear(&ms);
	json_decref(theirs);
	assert_int_equal(emu_stat(&w->e, "instances", "total"), 10);
	down(w);
}

/* 100 launched, then RequestLimitExceeded until the deadline: the request
 * ends short and its message names the cause first. */
static void test_throttled_request_names_the_cause(void **state)
{
	(void)state;
	const char *args[] = {"--no-throttle", NULL};
	pv_broker_settings set = {.call_timeout_ms = 1500, .max_create_rounds = 2};
	world *w = up(args, "{\"max_instances_per_call\": 100, \"retry_max_ms\": 100, \"throttle\": {\"enabled\": false}}",
		      &set);
	assert_int_equal(emu_config(&w->e, "{\"faults_next\": {\"RunInstances\": [\"none\"]}, \"throttle_rate\": 1.0,"
					   " \"fault_actions\": [\"RunInstances\"]}"), 0);
	char id[PV_STORE_SHORT_MAX];
	assert_int_equal(pv_broker_request_machines(w->b, "od", 150, id), 0);
	pv_request_rec r = stored(w, id);
	assert_int_equal(r.state, PV_REQ_COMPLETE_WITH_ERROR);
	if (strncmp(r.message, "throttled by EC2: 100 of 150 after ", 35) != 0 || !strstr(r.message, " retries"))
		fail_msg("message: %s", r.message);
	down(w);
}

static bool has_key(const json_t *o, const char *key) { return json_object_get(o, key) != NULL; }

/* getRequestStatus on aws, field by field against the contract
 * (docs/hostfactory.md): name is the private DNS host name, priceType the
 * instance's lifecycle, launchtime its launch time, and nothing else. */
static void test_hf_machine_fields_on_aws_follow_the_contract(void **state)
{
	(void)state;
	world *w = up(NULL, NULL, NULL);
	int64_t t0 = pv_wall_ms() / 1000;
	const char *tmpl[2] = {"od", "spot"}, *price[2] = {"ondemand", "spot"}, *type[2] = {"t3.micro", "t3.small"};
	for (int k = 0; k < 2; k++) {
		char *id = bf_hf_request(w->b, tmpl[k], 1, NULL);
		char in[200];
		snprintf(in, sizeof in, "{\"requests\": [{\"requestId\": \"%s\"}]}", id);
		json_t *out = NULL;
		assert_int_equal(bf_hf(w->b, PV_HF_GET_REQUEST_STATUS, in, &out), 0);
		json_t *m = json_array_get(json_object_get(json_array_get(json_object_get(out, "requests"), 0), "machines"), 0);
		const char *mid = json_string_value(json_object_get(m, "machineId"));
		assert_non_null(mid);
		/* the instance as EC2 describes it */
		pv_operation op = {.type = PV_OP_GET_INSTANCE_STATUS, .params = json_pack("{s:[s]}", "instance_ids", mid)};
		pv_result res = PV_RESULT_INIT;
		pv_strategy_execute(w->aws, &op, &res, NULL);
		assert_true(res.success);
		json_t *inst = json_array_get(json_object_get(res.data, "instances"), 0);
		assert_string_equal(json_string_value(json_object_get(m, "name")),
				    json_string_value(json_object_get(inst, "private_dns")));
		assert_non_null(strstr(json_string_value(json_object_get(m, "name")), ".ec2.internal"));
		assert_string_equal(json_string_value(json_object_get(m, "privateIpAddress")),
				    json_string_value(json_object_get(inst, "private_ip")));
		assert_string_equal(json_string_value(json_object_get(m, "publicIpAddress")),
				    json_string_value(json_object_get(inst, "public_ip")));
		assert_string_equal(json_string_value(json_object_get(m, "instanceType")), type[k]);
		assert_string_equal(json_string_value(json_object_get(m, "priceType")), price[k]);
		assert_string_equal(json_string_value(json_object_get(m, "status")), "running");
		assert_string_equal(json_string_value(json_object_get(m, "result")), "succeed");
		assert_string_equal(json_string_value(json_object_get(m, "message")), "");
		struct tm tm = {0};
		assert_non_null(strptime(json_string_value(json_object_get(inst, "launch_time")), "%Y-%m-%dT%H:%M:%S", &tm));
		json_int_t lt = json_integer_value(json_object_get(m, "launchtime"));
		assert_int_equal(lt, (json_int_t)timegm(&tm));
		assert_true(lt >= t0 - 1 && lt <= pv_wall_ms() / 1000 + 1);
		const char *keys[] = {"machineId", "name", "result", "status", "privateIpAddress", "publicIpAddress",
				      "launchtime", "message", "instanceType", "priceType"};
		for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
			assert_true(has_key(m, keys[i]));
		assert_int_equal(json_object_size(m), sizeof keys / sizeof keys[0]);
		/* Host Factory may name the machine by its host name alone */
		char ret[300];
		snprintf(ret, sizeof ret, "{\"machines\": [{\"name\": \"%s\"}]}", json_string_value(json_object_get(m, "name")));
		json_t *rout = NULL;
		assert_int_equal(bf_hf(w->b, PV_HF_REQUEST_RETURN_MACHINES, ret, &rout), 0);
		json_decref(rout);
		pv_result_clear(&res);
		json_decref(op.params);
		json_decref(out);
		free(id);
	}
	assert_int_equal(emu_stat(&w->e, "instances", "live"), 0);
	down(w);
}

typedef struct checker {
	pv_strategy *s;
	int ok;
} checker;

static void *health_checks(void *arg)
{
	checker *c = arg;
	for (int i = 0; i < 6; i++) {
		pv_result r = PV_RESULT_INIT;
		pv_operation op = {.type = PV_OP_HEALTH_CHECK, .deadline_ns = pv_now_ns() + 30 * PV_NS_PER_S};
		pv_strategy_execute(c->s, &op, &r, NULL);
		c->ok += r.success;
		pv_result_clear(&r);
	}
	return NULL;
}

/* Two brokers (two processes) on one store, each with its own aws
 * provider, each handed a limiter on that store: 12 describe calls at once
 * never exceed the emulator's describe bucket of 3 at 5/s. */
static void test_brokers_on_one_store_share_ec2_buckets(void **state)
{
	(void)state;
	world *w = up(NULL, NULL, NULL);
	assert_int_equal(emu_config(&w->e, "{\"buckets\": {\"describe\": {\"capacity\": 3, \"refill_per_s\": 5}}}"), 0);
	/* the same bucket on our side, refilled at half the rate: client and
	 * server buckets cannot be in step over a network (a call taken early
	 * may arrive late); two unshared buckets would still burst 6 against 3 */
	const char *cfg = "{\"throttle\": {\"describe\": {\"capacity\": 3, \"refill_per_s\": 5}, \"safety_margin\": 0.5},"
			  " \"max_retries\": 0}";
	pv_strategy *p[2];
	pv_context *ctx[2];
	pv_store *st[2];
	pv_broker *b[2];
	pv_limiter *lim[2];
	for (int i = 0; i < 2; i++) {
		p[i] = aws_provider(&w->e, "aws", cfg);
		ctx[i] = bf_context(NULL, &p[i], 1);
		st[i] = bf_store(w->db);
		assert_int_equal(pv_broker_limiter_new(&lim[i], w->db, NULL), 0);
		const char *providers[] = {"aws"};
		pv_broker_setup s = {.ctx = ctx[i], .strategies = &p[i], .n_strategies = 1, .providers = providers,
				     .n_providers = 1, .store = st[i], .limiter = lim[i]};
		b[i] = bf_broker(&s, templates_json);
		pv_limiter_unref(lim[i]); /* the broker and the provider hold theirs */
	}
	checker c[2] = {{p[0], 0}, {p[1], 0}};
	pthread_t t[2];
	for (int i = 0; i < 2; i++)
		pthread_create(&t[i], NULL, health_checks, &c[i]);
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	assert_int_equal(c[0].ok + c[1].ok, 12);
	assert_int_equal(emu_stat(&w->e, "throttled", NULL), 0);
	/* the bucket both spent: one row of the store, named by region and endpoint */
	char key[200];
	snprintf(key, sizeof key, "limiter/ec2 us-east-1 %s describe", w->e.url);
	char *row = bf_kv_get(w->st, key);
	assert_non_null(row);
	free(row);
	for (int i = 0; i < 2; i++) {
		bf_close(b[i], st[i]);
		bf_release(ctx[i], &p[i], 1);
	}
	down(w);
}


/* getReturnRequests' machines: name -> gracePeriod (owned). */
static json_t *hf_return_requests(world *w, const char *in_text)
{
	json_t *in = json_loads(in_text, 0, NULL), *out = NULL;
	assert_non_null(in);
	assert_int_equal(pv_hf_run(w->b, PV_HF_GET_RETURN_REQUESTS, in, &out), 0);
	json_decref(in);
	json_t *by_name = json_object();
	size_t i;
	json_t *m;
	json_array_foreach(json_object_get(out, "requests"), i, m)
		json_object_set(by_name, json_string_value(json_object_get(m, "machine")), json_object_get(m, "gracePeriod"));
	json_decref(out);
	return by_name;
}

/* A spot interruption (EC2 takes the instance back: stateReason
 * Server.SpotInstanceTermination) reaches Host Factory through
 * getReturnRequests, asked with or without the machines, and is reported
 * at every call until Host Factory returns the machine; the store says
 * why. A machine still running is not reported. */
static void test_spot_interruption_reaches_get_return_requests_until_returned(void **state)
{
	(void)state;
	world *w = up(NULL, NULL, NULL);
	char id[PV_STORE_SHORT_MAX];
	assert_int_equal(pv_broker_request_machines(w->b, "spot", 3, id), 0);
	pv_machine_list ms = {0};
	assert_int_equal(machines_of(w, id, &ms), 3);
	char victim[PV_STORE_ID_MAX], name[PV_STORE_NAME_MAX], body[PV_STORE_ID_MAX + 64];
	snprintf(victim, sizeof victim, "%s", ms.items[0].machine_id);
	snprintf(name, sizeof name, "%s", ms.items[0].name);
	pv_machine_list_clear(&ms);
	snprintf(body, sizeof body, "{\"instance_ids\": [\"%s\"]}", victim);
	json_t *ans = emu_admin(&w->e, "/_emu/interrupt", body);
	assert_int_equal(json_array_size(json_object_get(ans, "interrupted")), 1);
	json_decref(ans);

	for (int round = 0; round < 3; round++) {
		json_t *got = hf_return_requests(w, round == 1 ? "{\"machines\": []}" : "{}");
		if (json_object_size(got) != 1 || !json_object_get(got, name))
			fail_msg("round %d: getReturnRequests reported %zu machine(s), not the interrupted %s", round,
				 json_object_size(got), name);
		json_decref(got);
	}
	char in[PV_STORE_ID_MAX + PV_STORE_NAME_MAX + 64];
	snprintf(in, sizeof in, "{\"machines\": [{\"name\": \"%s\", \"machineId\": \"%s\"}]}", name, victim);
	json_t *got = hf_return_requests(w, in);
	assert_int_equal(json_object_size(got), 1);
	json_decref(got);
	/* the store says why */
	assert_int_equal(machines_of(w, id, &ms), 3);
	for (size_t i = 0; i < ms.n; i++)
		if (strcmp(ms.items[i].machine_id, victim) == 0)
			assert_non_null(strstr(ms.items[i].message, "Server.SpotInstanceTermination"));
	pv_machine_list_clear(&ms);

	/* Host Factory returns it: no longer reported */
	pv_machine_ref ref = {victim, name};
	char rid[PV_STORE_SHORT_MAX];
	assert_int_equal(pv_broker_return_machines(w->b, &ref, 1, rid), 0);
	got = hf_return_requests(w, "{}");
	assert_int_equal(json_object_size(got), 0);
	json_decref(got);
	down(w);
}

/* The store's record of one machine. */
static pv_machine_rec machine_of(world *w, const char *request_id, const char *machine_id)
{
	pv_machine_list ms = {0};
	pv_machine_rec out = {0};
	machines_of(w, request_id, &ms);
	for (size_t i = 0; i < ms.n; i++)
		if (strcmp(ms.items[i].machine_id, machine_id) == 0)
			out = ms.items[i];
	pv_machine_list_clear(&ms);
	assert_string_equal(out.machine_id, machine_id);
	return out;
}

/* EC2's two-minute warning (the spot request's status code
 * marked-for-termination, read with DescribeSpotInstanceRequests) reaches
 * Host Factory while the machine still runs, at every getReturnRequests
 * until Host Factory returns it, and once only when EC2 then takes it back.
 * Machines without a spot request cost no such call. */
static void test_interruption_notice_reaches_get_return_requests_before_the_machine_goes(void **state)
{
	(void)state;
	world *w = up(NULL, NULL, NULL);
	char od[PV_STORE_SHORT_MAX], id[PV_STORE_SHORT_MAX];
	assert_int_equal(pv_broker_request_machines(w->b, "od", 2, od), 0);
	json_t *got = hf_return_requests(w, "{}");
	assert_int_equal(json_object_size(got), 0);
	json_decref(got);
	assert_int_equal(emu_stat(&w->e, "calls", "DescribeSpotInstanceRequests"), 0); /* on-demand only */

	assert_int_equal(pv_broker_request_machines(w->b, "spot", 3, id), 0);
	pv_machine_list ms = {0};
	assert_int_equal(machines_of(w, id, &ms), 3);
	char victim[PV_STORE_ID_MAX], name[PV_STORE_NAME_MAX], body[PV_STORE_ID_MAX + 64];
	snprintf(victim, sizeof victim, "%s", ms.items[1].machine_id);
	snprintf(name, sizeof name, "%s", ms.items[1].name);
	pv_machine_list_clear(&ms);
	got = hf_return_requests(w, "{}");
	assert_int_equal(json_object_size(got), 0); /* fulfilled requests: nothing to drain */
	json_decref(got);
	assert_true(emu_stat(&w->e, "calls", "DescribeSpotInstanceRequests") >= 1);

	snprintf(body, sizeof body, "{\"instance_ids\": [\"%s\"], \"notice\": true}", victim);
	json_t *ans = emu_admin(&w->e, "/_emu/interrupt", body);
	assert_int_equal(json_array_size(json_object_get(ans, "interrupted")), 1);
	json_decref(ans);
	for (int round = 0; round < 2; round++) {
		got = hf_return_requests(w, round ? "{\"machines\": []}" : "{}");
		if (json_object_size(got) != 1 || !json_object_get(got, name))
			fail_msg("round %d: getReturnRequests reported %zu machine(s), not %s under notice", round,
				 json_object_size(got), name);
		json_decref(got);
		pv_machine_rec m = machine_of(w, id, victim);
		assert_string_equal(m.status, "running"); /* still running: Host Factory can drain it */
		assert_non_null(strstr(m.message, "interruption notice: marked-for-termination"));
	}

	/* EC2 takes it back: still the one machine, reported once */
	snprintf(body, sizeof body, "{\"instance_ids\": [\"%s\"]}", victim);
	json_decref(emu_admin(&w->e, "/_emu/interrupt", body));
	got = hf_return_requests(w, "{}");
	assert_int_equal(json_object_size(got), 1);
	assert_non_null(json_object_get(got, name));
	json_decref(got);
	assert_string_not_equal(machine_of(w, id, victim).status, "running");

	pv_machine_ref ref = {victim, name};
	char rid[PV_STORE_SHORT_MAX];
	assert_int_equal(pv_broker_return_machines(w->b, &ref, 1, rid), 0);
	got = hf_return_requests(w, "{}");
	assert_int_equal(json_object_size(got), 0);
	json_decref(got);
	down(w);
}

/* The provider's side: get_instance_status marks the instance under notice
 * (code, message, time), by the behaviour EC2 gives (stop: marked-for-stop);
 * a failed DescribeSpotInstanceRequests never fails the status. */
static void test_status_carries_the_notice_and_survives_its_failure(void **state)
{
	(void)state;
	world *w = up(NULL, NULL, NULL);
	char id[PV_STORE_SHORT_MAX];
	assert_int_equal(pv_broker_request_machines(w->b, "spot", 2, id), 0);
	pv_machine_list ms = {0};
	assert_int_equal(machines_of(w, id, &ms), 2);
	char body[PV_STORE_ID_MAX + 96];
	snprintf(body, sizeof body, "{\"instance_ids\": [\"%s\"], \"notice\": true, \"behavior\": \"stop\"}",
		 ms.items[0].machine_id);
	json_decref(emu_admin(&w->e, "/_emu/interrupt", body));
	json_t *ids = json_pack("[s, s]", ms.items[0].machine_id, ms.items[1].machine_id);
	pv_operation op = {.type = PV_OP_GET_INSTANCE_STATUS, .params = json_pack("{s:O}", "instance_ids", ids)};
	pv_result r = PV_RESULT_INIT;
	pv_strategy_execute(w->aws, &op, &r, NULL);
	assert_true(r.success);
	json_t *first = json_array_get(json_object_get(r.data, "instances"), 0);
	json_t *second = json_array_get(json_object_get(r.data, "instances"), 1);
	assert_string_equal(json_string_value(json_object_get(first, "interruption_notice")), "marked-for-stop");
	assert_non_null(json_object_get(first, "interruption_notice_time"));
	assert_non_null(json_object_get(first, "interruption_notice_message"));
	assert_null(json_object_get(second, "interruption_notice"));
	pv_result_clear(&r);

	/* the notices' call fails (an injected 500s): the status still answers */
	json_decref(emu_admin(&w->e, "/_emu/config",
			      "{\"faults_next\": {\"DescribeSpotInstanceRequests\": [\"5xx\", \"5xx\", \"5xx\", \"5xx\", \"5xx\", \"5xx\", \"5xx\", \"5xx\", \"5xx\", \"5xx\"]}}"));
	pv_strategy_execute(w->aws, &op, &r, NULL);
	assert_true(r.success);
	assert_int_equal(json_array_size(json_object_get(r.data, "instances")), 2);
	assert_null(json_object_get(json_array_get(json_object_get(r.data, "instances"), 0), "interruption_notice"));
	assert_non_null(json_object_get(pv_result_meta(&r), "spot_notices_error"));
	pv_result_clear(&r);
	json_decref(op.params);
	json_decref(ids);
	pv_machine_list_clear(&ms);
	down(w);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lost_create_answers_resolve_the_request),
		cmocka_unit_test(test_unsettled_request_is_left_to_recovery_which_releases_its_machines),
		cmocka_unit_test(test_each_round_is_a_launch_of_its_own),
		cmocka_unit_test(test_maintain_fleets_never_replace_returned_machines),
		cmocka_unit_test(test_queued_request_taken_over_adopts_what_its_dead_owner_launched),
		cmocka_unit_test(test_throttled_request_names_the_cause),
		cmocka_unit_test(test_hf_machine_fields_on_aws_follow_the_contract),
		cmocka_unit_test(test_brokers_on_one_store_share_ec2_buckets),
		cmocka_unit_test(test_spot_interruption_reaches_get_return_requests_until_returned),
		cmocka_unit_test(test_interruption_notice_reaches_get_return_requests_before_the_machine_goes),
		cmocka_unit_test(test_status_carries_the_notice_and_survives_its_failure),
	};
	return cmocka_run_group_tests(tests, bf_group_setup, bf_group_teardown);
}
