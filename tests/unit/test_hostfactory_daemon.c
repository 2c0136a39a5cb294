/*
 * test_hostfactory_daemon.c - Host Factory commands next to `provisio
 * serve`: with a live daemon's heartbeat in the store they make no
 * provider call (queued requests and returns, status read from the
 * store), the daemon's side (pv_broker_run_queue, what its reconciler and
 * queue timer call) does the work; with a stale, crashed or stopped daemon
 * the commands call the providers themselves and finish what it left
 * queued. Real SQLite files; the sim provider's call counters.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
#include "broker_fixture.h"
#include "provisio/provisio.h"
#include "provisio/hostfactory.h"

/* The Host Factory process's broker and the daemon's, each over its own
 * connection to one store file, sharing one context (one sim). */
typedef struct fx {
	pv_context *ctx;
	pv_strategy *sim;
	pv_store *st, *dst;
	pv_broker *b, *daemon;
} fx;

static pv_broker *broker_on(fx *f, pv_store *st)
{
	const char *leaves[] = {"sim"};
	pv_broker_setup s = {.ctx = f->ctx, .strategies = &f->sim, .n_strategies = 1,
			     .providers = leaves, .n_providers = 1, .store = st,
			     .settings = {.status_max_age_seconds = -1}};
	return bf_broker(&s, "{\"templates\": [{\"templateId\": \"t\", \"maxNumber\": 10, \"provider\": \"sim\"}]}");
}

static fx *make(void)
{
	fx *f = calloc(1, sizeof *f);
	f->sim = bf_sim("sim", "{\"capacity\": 100}", NULL);
	f->ctx = bf_context(NULL, &f->sim, 1);
	char path[400];
	bf_db_path(path, sizeof path, "d");
	f->st = bf_store(path);
	f->dst = bf_store(path);
	f->b = broker_on(f, f->st);
	f->daemon = broker_on(f, f->dst);
	return f;
}

static void destroy(fx *f)
{
	bf_close(f->b, f->st);
	bf_close(f->daemon, f->dst);
	bf_release(f->ctx, &f->sim, 1);
	free(f);
}

static uint64_t calls(fx *f) { return pv_sim_calls(f->sim, PV_OP_COUNT); }

/* The daemon announces itself as this process (alive, this host). */
static void beat(fx *f)
{
	pv_daemon_info d = {.pid = getpid(), .interval_ms = 10000, .started_ms = pv_wall_ms()};
	snprintf(d.listen, sizeof d.listen, "http://127.0.0.1:1");
	assert_int_equal(pv_broker_daemon_beat(f->daemon, &d), 0);
}

static void put_heartbeat(fx *f, const char *json) { bf_kv_put(f->dst, "daemon/heartbeat", json); }

/* The heartbeat of a daemon on another host (its pid cannot be checked),
 * beating every second, last beat `age_ms` ago. */
static void beat_elsewhere(fx *f, int64_t age_ms)
{
	char row[256];
	snprintf(row, sizeof row, "{\"state\": \"running\", \"pid\": 1, \"host\": \"elsewhere\", "
		 "\"interval_ms\": 1000, \"updated_ms\": %lld}", (long long)(pv_wall_ms() - age_ms));
	put_heartbeat(f, row);
}

static int hf(fx *f, pv_hf_command c, const char *input, json_t **out) { return bf_hf(f->b, c, input, out); }

static char *request(fx *f, int count)
{
	json_t *out;
	char *id = bf_hf_request(f->b, "t", count, &out);
	assert_string_equal(json_string_value(json_object_get(out, "message")),
			    "Request VM success from provisio.");
	assert_int_equal(json_object_size(out), 2);
	json_decref(out);
	return id;
}

/* getRequestStatus of one request: its entry (new reference). */
static json_t *status_of(fx *f, const char *id)
{
	char input[256];
	snprintf(input, sizeof input, "{\"requests\": [{\"requestId\": \"%s\"}]}", id);
	json_t *out;
	assert_int_equal(hf(f, PV_HF_GET_REQUEST_STATUS, input, &out), 0);
	json_t *r = json_incref(json_array_get(json_object_get(out, "requests"), 0));
	json_decref(out);
	assert_non_null(r);
	return r;
}

static const char *str(const json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

/* ---- the heartbeat ------------------------------------------------------------------ */

static void test_mode_names_round_trip(void **state)
{
	(void)state;
	for (int i = 0; i < PV_BROKER_MODE_COUNT; i++) {
		pv_broker_mode m;
		assert_int_equal(pv_broker_mode_parse(pv_broker_mode_name((pv_broker_mode)i), &m), 0);
		assert_int_equal(m, i);
	}
	pv_broker_mode m;
	assert_int_equal(pv_broker_mode_parse("lazy", &m), PV_EINVAL);
	assert_non_null(strstr(pv_error_last(), "deferred"));
}

static void test_heartbeat_is_read_back_and_validated(void **state)
{
	(void)state;
	fx *f = make();
	pv_daemon_info d;
	assert_int_equal(pv_broker_daemon_get(f->b, &d), PV_ENOTFOUND); /* never written */
	pv_daemon_info bad = {.pid = getpid(), .interval_ms = 0};
	assert_int_equal(pv_broker_daemon_beat(f->daemon, &bad), PV_EINVAL);
	assert_non_null(strstr(pv_error_last(), "interval_ms"));
	beat(f);
	assert_int_equal(pv_broker_daemon_get(f->b, &d), 0);
	assert_int_equal(d.pid, getpid());
	assert_string_equal(d.listen, "http://127.0.0.1:1");
	assert_int_equal(d.interval_ms, 10000);
	assert_true(pv_wall_ms() - d.updated_ms < 60000);
	destroy(f);
}

static void test_graceful_stop_clears_only_its_own_heartbeat(void **state)
{
	(void)state;
	fx *f = make();
	beat(f);
	assert_int_equal(pv_broker_daemon_clear(f->daemon, getpid() + 1), 0); /* not ours */
	assert_int_equal(pv_broker_daemon_get(f->b, NULL), 0);
	assert_int_equal(pv_broker_daemon_clear(f->daemon, getpid()), 0);
	assert_int_equal(pv_broker_daemon_get(f->b, NULL), PV_ENOTFOUND);
	destroy(f);
}

static void test_old_heartbeat_is_stale(void **state)
{
	(void)state;
	fx *f = make();
	/* another host (its pid cannot be checked): only the clock decides */
	beat_elsewhere(f, 5001);
	assert_int_equal(pv_broker_daemon_get(f->b, NULL), PV_ENOTFOUND);
	beat_elsewhere(f, 1000);
	assert_int_equal(pv_broker_daemon_get(f->b, NULL), 0);
	destroy(f);
}

static void test_crashed_daemon_on_this_host_is_not_live(void **state)
{
	(void)state;
	fx *f = make();
	pv_daemon_info d = {.pid = bf_dead_pid(), .interval_ms = 10000};
	assert_int_equal(pv_broker_daemon_beat(f->daemon, &d), 0); /* fresh, but its pid is gone */
	assert_int_equal(pv_broker_daemon_get(f->b, NULL), PV_ENOTFOUND);
	destroy(f);
}

/* Same host name, another pid namespace (a container): its pids are not
 * ours to check, so only the clock decides. */
static void test_daemon_in_another_pid_namespace_is_judged_by_the_clock(void **state)
{
	(void)state;
	fx *f = make();
	char host[256], row[600];
	assert_int_equal(gethostname(host, sizeof host), 0);
	host[sizeof host - 1] = '\0';
	pid_t gone = bf_dead_pid();
	snprintf(row, sizeof row, "{\"state\": \"running\", \"pid\": %d, \"host\": \"%s\", "
		 "\"pid_namespace\": \"pid:[1]\", \"interval_ms\": 10000, \"updated_ms\": %lld}",
		 (int)gone, host, (long long)pv_wall_ms());
	put_heartbeat(f, row);
	assert_int_equal(pv_broker_daemon_get(f->b, NULL), 0); /* not our pid 'gone' */
	/* the same row from our own namespace: the dead pid is believed */
	pv_daemon_info d = {.pid = gone, .interval_ms = 10000};
	assert_int_equal(pv_broker_daemon_beat(f->daemon, &d), 0);
	assert_int_equal(pv_broker_daemon_get(f->b, NULL), PV_ENOTFOUND);
	destroy(f);
}

/* ---- acquire ------------------------------------------------------------------------ */

/* Daemons sharing a store elect one for the provider-wide passes: a lease
 * taken by one is refused to the other until released or expired; renewing
 * one's own works; releasing another's does nothing. */
static void test_one_daemon_of_several_holds_the_lease(void **state)
{
	(void)state;
	fx *f = make();
	bool held = false;
	assert_int_equal(pv_broker_lease(f->daemon, "reconciler", "node-a", 60000, &held), 0);
	assert_true(held);
	assert_int_equal(pv_broker_lease(f->b, "reconciler", "node-b", 60000, &held), 0);
	assert_false(held);
	assert_int_equal(pv_broker_lease(f->daemon, "reconciler", "node-a", 60000, &held), 0);
	assert_true(held); /* renewed */
	assert_int_equal(pv_broker_lease_release(f->b, "reconciler", "node-b"), 0); /* not b's */
	assert_int_equal(pv_broker_lease(f->b, "reconciler", "node-b", 60000, &held), 0);
	assert_false(held);
	assert_int_equal(pv_broker_lease_release(f->daemon, "reconciler", "node-a"), 0);
	assert_int_equal(pv_broker_lease(f->b, "reconciler", "node-b", 60000, &held), 0);
	assert_true(held); /* a graceful stop hands over at once */
	/* a holder that stopped renewing (crashed) loses it when it expires */
	char row[128];
	snprintf(row, sizeof row, "{\"holder\": \"node-b\", \"until_ms\": %lld}",
		 (long long)(pv_wall_ms() - 1));
	bf_kv_put(f->dst, "lease/reconciler", row);
	assert_int_equal(pv_broker_lease(f->daemon, "reconciler", "node-a", 60000, &held), 0);
	assert_true(held);
	assert_int_equal(pv_broker_lease(f->b, "reconciler", "node-b", 0, &held), PV_EINVAL);
	assert_non_null(strstr(pv_error_last(), "ttl_ms"));
	destroy(f);
}

static void test_live_daemon_request_makes_no_provider_call_and_daemon_provisions(void **state)
{
	(void)state;
	fx *f = make();
	beat(f);
	char *id = request(f, 3);
	assert_int_equal(strncmp(id, "req-", 4), 0);
	assert_int_equal(pv_broker_get_mode(f->b), PV_BROKER_DEFERRED);
	json_t *r = status_of(f, id);
	assert_string_equal(str(r, "status"), "running");
	assert_int_equal(json_array_size(json_object_get(r, "machines")), 0);
	json_decref(r);
	assert_int_equal(calls(f), 0);
	assert_int_equal(pv_sim_live_instances(f->sim), 0);
	/* queued machines count against maxNumber already */
	json_t *out;
	assert_int_equal(hf(f, PV_HF_REQUEST_MACHINES,
			    "{\"template\": {\"templateId\": \"t\", \"machineCount\": 8}}", &out), PV_EINVAL);
	json_decref(out);

	/* the daemon's side */
	assert_int_equal(pv_broker_run_queue(f->daemon), 1);
	assert_int_equal(pv_sim_calls(f->sim, PV_OP_CREATE_INSTANCES), 1);
	assert_int_equal(pv_sim_live_instances(f->sim), 3);
	assert_int_equal(pv_broker_run_queue(f->daemon), 0); /* done once */
	uint64_t before = calls(f);
	r = status_of(f, id);
	assert_string_equal(str(r, "status"), "complete");
	assert_int_equal(json_array_size(json_object_get(r, "machines")), 3);
	json_decref(r);
	assert_int_equal(calls(f), before); /* status read from the store */
	free(id);
	destroy(f);
}

static void test_stale_heartbeat_request_provisions_itself(void **state)
{
	(void)state;
	fx *f = make();
	beat_elsewhere(f, 60000);
	char *id = request(f, 2);
	assert_int_equal(pv_broker_get_mode(f->b), PV_BROKER_DIRECT);
	assert_int_equal(pv_sim_calls(f->sim, PV_OP_CREATE_INSTANCES), 1);
	assert_int_equal(pv_sim_live_instances(f->sim), 2);
	json_t *r = status_of(f, id);
	assert_string_equal(str(r, "status"), "complete");
	json_decref(r);
	free(id);
	destroy(f);
}

static void test_queue_left_by_stopped_daemon_is_finished_by_next_command(void **state)
{
	(void)state;
	fx *f = make();
	beat(f);
	char *id = request(f, 2);
	assert_int_equal(calls(f), 0);
	assert_int_equal(pv_broker_daemon_clear(f->daemon, getpid()), 0); /* stopped before working it */
	json_t *out;
	assert_int_equal(hf(f, PV_HF_GET_AVAILABLE_TEMPLATES, "{}", &out), 0);
	json_decref(out);
	assert_int_equal(pv_sim_live_instances(f->sim), 2);
	json_t *r = status_of(f, id);
	assert_string_equal(str(r, "status"), "complete");
	assert_int_equal(json_array_size(json_object_get(r, "machines")), 2);
	json_decref(r);
	free(id);
	destroy(f);
}

static void test_queued_request_claimed_by_dead_daemon_is_done_not_released(void **state)
{
	(void)state;
	fx *f = make();
	beat(f);
	char *id = request(f, 2);
	/* a daemon took it from the queue and died before writing the outcome */
	pv_request_rec q;
	assert_int_equal(pv_store_begin(f->dst, true), 0);
	assert_int_equal(pv_store_request_get(f->dst, id, &q), 0);
	assert_int_equal(q.state, PV_REQ_QUEUED);
	q.owner_pid = bf_dead_pid();
	assert_int_equal(pv_store_request_put(f->dst, &q), 0);
	assert_int_equal(pv_store_commit(f->dst), 0);
	/* crash recovery of direct requests leaves it alone: Host Factory has the id */
	assert_int_equal(pv_broker_recover(f->daemon), 0);
	assert_int_equal(pv_broker_run_queue(f->daemon), 1);
	assert_int_equal(pv_sim_live_instances(f->sim), 2);
	json_t *r = status_of(f, id);
	assert_string_equal(str(r, "status"), "complete");
	json_decref(r);
	free(id);
	destroy(f);
}

static void test_answers_have_the_same_shape_in_both_modes(void **state)
{
	(void)state;
	fx *f = make();
	char *direct = request(f, 1);
	json_t *a = status_of(f, direct);
	beat(f);
	char *queued = request(f, 1);
	pv_broker_run_queue(f->daemon);
	json_t *b = status_of(f, queued);
	assert_int_equal(json_object_size(a), json_object_size(b));
	const char *key;
	json_t *v;
	json_object_foreach(a, key, v) assert_non_null(json_object_get(b, key));
	assert_string_equal(str(a, "status"), str(b, "status"));
	json_t *ma = json_array_get(json_object_get(a, "machines"), 0);
	json_t *mb = json_array_get(json_object_get(b, "machines"), 0);
	assert_int_equal(json_object_size(ma), json_object_size(mb));
	json_object_foreach(ma, key, v) assert_non_null(json_object_get(mb, key));
	json_decref(a);
	json_decref(b);
	free(direct);
	free(queued);
	destroy(f);
}

/* ---- return ------------------------------------------------------------------------- */

static char *return_all(fx *f, const char *req_id)
{
	json_t *r = status_of(f, req_id);
	json_t *list = json_array(), *m;
	size_t i;
	json_array_foreach(json_object_get(r, "machines"), i, m)
		json_array_append_new(list, json_pack("{s:s, s:s}", "name", str(m, "name"), "machineId",
						      str(m, "machineId")));
	json_decref(r);
	json_t *in = json_pack("{s:o}", "machines", list), *out;
	assert_int_equal(pv_hf_run(f->b, PV_HF_REQUEST_RETURN_MACHINES, in, &out), 0);
	json_decref(in);
	assert_string_equal(str(out, "message"), "Delete VM success.");
	char *id = strdup(str(out, "requestId"));
	json_decref(out);
	return id;
}

static void test_live_daemon_return_is_queued_and_daemon_terminates(void **state)
{
	(void)state;
	fx *f = make();
	char *id = request(f, 2); /* no daemon yet: provisioned directly */
	assert_int_equal(pv_sim_live_instances(f->sim), 2);
	beat(f);
	uint64_t before = calls(f);
	char *ret = return_all(f, id);
	assert_int_equal(calls(f), before); /* nothing terminated by the command */
	assert_int_equal(pv_sim_live_instances(f->sim), 2);
	pv_machine_list ms = {0};
	assert_int_equal(pv_store_begin(f->st, false), 0);
	assert_int_equal(pv_store_machine_list(f->st, PV_MF_RETURN, ret, &ms), 0);
	pv_store_commit(f->st);
	assert_int_equal(ms.n, 2); /* marked for return */
	assert_string_equal(ms.items[0].result, "executing");
	pv_machine_list_clear(&ms);
	json_t *r = status_of(f, ret);
	assert_string_equal(str(r, "status"), "running");
	json_decref(r);

	assert_int_equal(pv_broker_run_queue(f->daemon), 1);
	assert_int_equal(pv_sim_calls(f->sim, PV_OP_TERMINATE_INSTANCES), 1);
	assert_int_equal(pv_sim_live_instances(f->sim), 0);
	/* the reconciler's refresh sees them gone */
	pv_request_rec q;
	assert_int_equal(pv_broker_request_status(f->daemon, ret, &q, &ms), 0);
	pv_machine_list_clear(&ms);
	r = status_of(f, ret);
	assert_string_equal(str(r, "status"), "complete");
	json_decref(r);
	free(id);
	free(ret);
	destroy(f);
}

static void test_stale_heartbeat_return_terminates_itself(void **state)
{
	(void)state;
	fx *f = make();
	char *id = request(f, 2);
	pv_daemon_info d = {.pid = bf_dead_pid(), .interval_ms = 10000};
	assert_int_equal(pv_broker_daemon_beat(f->daemon, &d), 0);
	char *ret = return_all(f, id);
	assert_int_equal(pv_broker_get_mode(f->b), PV_BROKER_DIRECT);
	assert_int_equal(pv_sim_calls(f->sim, PV_OP_TERMINATE_INSTANCES), 1);
	assert_int_equal(pv_sim_live_instances(f->sim), 0);
	free(id);
	free(ret);
	destroy(f);
}

static void test_live_daemon_get_return_requests_reads_the_store(void **state)
{
	(void)state;
	fx *f = make();
	char *id = request(f, 2);
	json_t *r = status_of(f, id);
	json_t *m0 = json_array_get(json_object_get(r, "machines"), 0);
	char name[256], mid[128], input[600];
	snprintf(name, sizeof name, "%s", str(m0, "name"));
	snprintf(mid, sizeof mid, "%s", str(m0, "machineId"));
	json_decref(r);
	/* the provider takes one back; the daemon's reconciler notices */
	pv_operation op = {.type = PV_OP_TERMINATE_INSTANCES,
			   .params = json_pack("{s:[s]}", "instance_ids", mid)};
	pv_result res = PV_RESULT_INIT;
	pv_strategy_execute(f->sim, &op, &res, NULL);
	json_decref(op.params);
	pv_result_clear(&res);
	beat(f);
	snprintf(input, sizeof input, "{\"machines\": [{\"name\": \"%s\", \"machineId\": \"%s\"}]}", name, mid);
	json_t *out;
	uint64_t before = calls(f);
	assert_int_equal(hf(f, PV_HF_GET_RETURN_REQUESTS, input, &out), 0);
	assert_int_equal(json_array_size(json_object_get(out, "requests")), 0); /* not known yet */
	json_decref(out);
	pv_machine_list gone = {0};
	assert_int_equal(pv_broker_reclaimed(f->daemon, NULL, 0, &gone), 0);
	assert_int_equal(gone.n, 1);
	pv_machine_list_clear(&gone);
	assert_int_equal(hf(f, PV_HF_GET_RETURN_REQUESTS, input, &out), 0);
	json_t *list = json_object_get(out, "requests");
	assert_int_equal(json_array_size(list), 1);
	assert_string_equal(str(json_array_get(list, 0), "machine"), name);
	assert_int_equal(json_object_size(out), 3);
	json_decref(out);
	assert_int_equal(calls(f), before + 1); /* the daemon's status call only */
	free(id);
	destroy(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mode_names_round_trip),
		cmocka_unit_test(test_heartbeat_is_read_back_and_validated),
		cmocka_unit_test(test_graceful_stop_clears_only_its_own_heartbeat),
		cmocka_unit_test(test_old_heartbeat_is_stale),
		cmocka_unit_test(test_crashed_daemon_on_this_host_is_not_live),
		cmocka_unit_test(test_daemon_in_another_pid_namespace_is_judged_by_the_clock),
		cmocka_unit_test(test_one_daemon_of_several_holds_the_lease),
		cmocka_unit_test(test_live_daemon_request_makes_no_provider_call_and_daemon_provisions),
		cmocka_unit_test(test_stale_heartbeat_request_provisions_itself),
		cmocka_unit_test(test_queue_left_by_stopped_daemon_is_finished_by_next_command),
		cmocka_unit_test(test_queued_request_claimed_by_dead_daemon_is_done_not_released),
		cmocka_unit_test(test_answers_have_the_same_shape_in_both_modes),
		cmocka_unit_test(test_live_daemon_return_is_queued_and_daemon_terminates),
		cmocka_unit_test(test_stale_heartbeat_return_terminates_itself),
		cmocka_unit_test(test_live_daemon_get_return_requests_reads_the_store),
	};
	return cmocka_run_group_tests(tests, bf_group_setup, bf_group_teardown);
}
