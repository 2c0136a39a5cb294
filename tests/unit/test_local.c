/*
 * test_local.c - the local provider end to end with real processes:
 * creation, host names and addresses, idempotent replay by client token,
 * capacity, detachment (no shared stdio, not our child), terminate with
 * SIGTERM then SIGKILL after the grace period, machines that end by
 * themselves, describe by request id, configuration errors.
 *
 * Every process a test starts is terminated and waited for before it ends.
 */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>
#include "scratch_dir.h"
#include "wait.h"
#include "provisio/provisio.h"
#include "provisio/local.h"

static char dir[256];
static int seq;

static pv_strategy *make(const char *extra)
{
	char cfg[2048];
	snprintf(cfg, sizeof cfg, "{\"workdir\": \"%s/w%d\", \"hostname\": \"node\"%s%s}", dir, ++seq,
		 extra ? ", " : "", extra ? extra : "");
	json_t *c = json_loads(cfg, 0, NULL);
	assert_non_null(c);
	pv_strategy *s = NULL;
	assert_int_equal(pv_local_new(&s, "local", c, NULL), 0);
	json_decref(c);
	assert_int_equal(pv_strategy_initialize(s), 0);
	return s;
}

static void exec_op(pv_strategy *s, pv_op_type t, json_t *params, pv_result *r)
{
	pv_operation op = {.type = t, .params = params};
	pv_strategy_execute(s, &op, r, NULL);
	json_decref(params);
}

static json_t *ids_of(const pv_result *r)
{
	json_t *ids = json_array(), *inst;
	size_t i;
	json_array_foreach(json_object_get(r->data, "instances"), i, inst)
		json_array_append(ids, json_object_get(inst, "instance_id"));
	return ids;
}

static const char *state_of(pv_strategy *s, const char *id)
{
	static char buf[32];
	pv_result r = PV_RESULT_INIT;
	exec_op(s, PV_OP_GET_INSTANCE_STATUS, json_pack("{s:[s]}", "instance_ids", id), &r);
	snprintf(buf, sizeof buf, "%s",
		 json_string_value(json_object_get(json_array_get(json_object_get(r.data, "instances"), 0), "state")));
	pv_result_clear(&r);
	return buf;
}

static bool gone_now(pv_strategy *s, json_t *ids)
{
	bool gone = true;
	size_t i;
	json_t *id;
	json_array_foreach(ids, i, id) gone &= strcmp(state_of(s, json_string_value(id)), "terminated") == 0;
	return gone;
}

/* Waits until every id is terminated; false past the safety bound. */
static bool all_gone(pv_strategy *s, json_t *ids)
{
	bool gone = false;
	PV_TEST_WAIT_UNTIL((gone = gone_now(s, ids)));
	return gone;
}

static void terminate_all(pv_strategy *s)
{
	pv_result r = PV_RESULT_INIT;
	exec_op(s, PV_OP_DESCRIBE_RESOURCE_INSTANCES, NULL, &r);
	json_t *ids = ids_of(&r);
	pv_result_clear(&r);
	if (json_array_size(ids)) {
		exec_op(s, PV_OP_TERMINATE_INSTANCES, json_pack("{s:O}", "instance_ids", ids), &r);
		pv_result_clear(&r);
		assert_true(all_gone(s, ids));
	}
	json_decref(ids);
	pv_strategy_unref(s);
}

static void create(pv_strategy *s, int count, const char *token, pv_result *r)
{
	exec_op(s, PV_OP_CREATE_INSTANCES,
		json_pack("{s:i, s:s, s:s, s:s?}", "count", count, "template_id", "t", "request_id", "req-1",
			  "client_token", token),
		r);
}

static int setup(void **state)
{
	(void)state;
	return pv_test_scratch_make(dir, sizeof dir, "pv_test_local_");
}

/* Stops whatever a failed test left running (a failed assertion skips the
 * test's own cleanup), through the provider itself, which checks each pid's
 * start time so a reused pid is never signalled. */
static void terminate_all(pv_strategy *s);

static void kill_leftovers(void)
{
	for (int i = 1; i <= seq; i++) {
		char cfg[400];
		snprintf(cfg, sizeof cfg, "{\"workdir\": \"%s/w%d\"}", dir, i);
		json_t *c = json_loads(cfg, 0, NULL);
		pv_strategy *s = NULL;
		if (pv_local_new(&s, "local", c, NULL) == 0 && pv_strategy_initialize(s) == 0)
			terminate_all(s);
		else
			pv_strategy_unref(s);
		json_decref(c);
	}
}

static int teardown(void **state)
{
	(void)state;
	kill_leftovers();
	return pv_test_scratch_remove(dir);
}

static void test_create_starts_running_machines_with_names_and_ip(void **state)
{
	(void)state;
	pv_strategy *s = make(NULL);
	pv_result r = PV_RESULT_INIT;
	create(s, 2, "tok-a", &r);
	assert_true(r.success);
	json_t *list = json_object_get(r.data, "instances");
	assert_int_equal(json_array_size(list), 2);
	json_t *m = json_array_get(list, 1);
	assert_string_equal(json_string_value(json_object_get(m, "instance_id")), "local-2");
	assert_string_equal(json_string_value(json_object_get(m, "name")), "node-2");
	assert_string_equal(json_string_value(json_object_get(m, "private_ip")), "127.0.0.1");
	assert_string_equal(json_string_value(json_object_get(m, "state")), "running");
	assert_string_equal(json_string_value(json_object_get(m, "provider")), "local");
	assert_string_equal(json_string_value(json_object_get(m, "request_id")), "req-1");
	pid_t pid = (pid_t)json_integer_value(json_object_get(m, "pid"));
	assert_int_equal(kill(pid, 0), 0);
	pv_result_clear(&r);
	terminate_all(s);
}

static void test_machine_is_detached_from_caller(void **state)
{
	(void)state;
	pv_strategy *s = make(NULL);
	pv_result r = PV_RESULT_INIT;
	create(s, 1, "tok", &r);
	pid_t pid = (pid_t)json_integer_value(json_object_get(json_array_get(json_object_get(r.data, "instances"), 0), "pid"));
	pv_result_clear(&r);
	char path[64], link[256] = "";
	snprintf(path, sizeof path, "/proc/%d/fd/1", (int)pid);
	ssize_t n = readlink(path, link, sizeof link - 1);
	assert_true(n > 0);
	link[n] = '\0';
	assert_string_equal(link, "/dev/null"); /* never holds Host Factory's stdout pipe */
	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	FILE *f = fopen(path, "r");
	assert_non_null(f);
	char buf[512];
	size_t got = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[got] = '\0';
	int ppid = 0;
	assert_int_equal(sscanf(strrchr(buf, ')') + 2, "%*c %d", &ppid), 1);
	assert_int_not_equal(ppid, getpid());
	terminate_all(s);
}

static void test_same_client_token_replays_without_new_machines(void **state)
{
	(void)state;
	pv_strategy *s = make(NULL);
	pv_result a = PV_RESULT_INIT, b = PV_RESULT_INIT;
	create(s, 2, "req-1-0", &a);
	create(s, 2, "req-1-0", &b);
	assert_true(b.success);
	assert_true(json_is_true(json_object_get(b.data, "replayed")));
	json_t *ia = ids_of(&a), *ib = ids_of(&b);
	assert_true(json_equal(ia, ib));
	json_decref(ia);
	json_decref(ib);
	pv_result_clear(&a);
	pv_result_clear(&b);
	exec_op(s, PV_OP_DESCRIBE_RESOURCE_INSTANCES, NULL, &a);
	assert_int_equal(json_array_size(json_object_get(a.data, "instances")), 2);
	pv_result_clear(&a);
	terminate_all(s);
}

static void test_capacity_makes_what_fits_then_fails(void **state)
{
	(void)state;
	pv_strategy *s = make("\"capacity\": 3");
	pv_result r = PV_RESULT_INIT;
	create(s, 5, "t1", &r);
	assert_true(r.success);
	assert_int_equal(json_integer_value(json_object_get(r.data, "count")), 3);
	assert_true(json_is_true(json_object_get(r.data, "partial")));
	pv_result_clear(&r);
	create(s, 1, "t2", &r);
	assert_false(r.success);
	assert_string_equal(r.error_code, "CAPACITY");
	assert_int_equal(r.error_class, PV_CLASS_CAPACITY);
	pv_result_clear(&r);
	terminate_all(s);
}

static void test_terminate_stops_machine(void **state)
{
	(void)state;
	pv_strategy *s = make(NULL);
	pv_result r = PV_RESULT_INIT;
	create(s, 1, "t", &r);
	json_t *ids = ids_of(&r);
	pv_result_clear(&r);
	exec_op(s, PV_OP_TERMINATE_INSTANCES, json_pack("{s:O}", "instance_ids", ids), &r);
	assert_true(r.success);
	assert_int_equal(json_array_size(json_object_get(r.data, "terminated")), 1);
	pv_result_clear(&r);
	assert_true(all_gone(s, ids));
	json_decref(ids);
	pv_strategy_unref(s);
}

/* The pid a command wrote to `path` (whole: the command writes a temporary
 * file and renames it), 0 while there is none. */
static int read_pid(const char *path)
{
	int pid = 0;
	FILE *f = fopen(path, "r");
	if (f) {
		if (fscanf(f, "%d", &pid) != 1)
			pid = 0;
		fclose(f);
	}
	return pid;
}

static void test_sigkill_after_grace_for_command_ignoring_sigterm(void **state)
{
	(void)state;
	char extra[1200], pidfile[300];
	snprintf(pidfile, sizeof pidfile, "%s/stubborn.pid", dir);
	snprintf(extra, sizeof extra,
		 "\"grace_period_ms\": 200, \"command\": \"trap '' TERM; echo $$ > %s.tmp; mv %s.tmp %s;"
		 " exec sleep 60\"", pidfile, pidfile, pidfile);
	pv_strategy *s = make(extra);
	pv_result r = PV_RESULT_INIT;
	create(s, 1, "t", &r);
	json_t *ids = ids_of(&r);
	pv_result_clear(&r);
	int cmd_pid = 0;
	PV_TEST_WAIT_UNTIL((cmd_pid = read_pid(pidfile)) > 0);
	assert_true(cmd_pid > 0);
	exec_op(s, PV_OP_TERMINATE_INSTANCES, json_pack("{s:O}", "instance_ids", ids), &r);
	pv_result_clear(&r);
	assert_true(all_gone(s, ids));
	PV_TEST_WAIT_UNTIL(kill(cmd_pid, 0) != 0);
	assert_int_not_equal(kill(cmd_pid, 0), 0); /* killed, not left behind */
	json_decref(ids);
	pv_strategy_unref(s);
}

static void test_machine_that_exits_is_terminated(void **state)
{
	(void)state;
	pv_strategy *s = make("\"command\": \"sleep 0.1\"");
	pv_result r = PV_RESULT_INIT;
	create(s, 1, "t", &r);
	json_t *ids = ids_of(&r);
	pv_result_clear(&r);
	assert_true(all_gone(s, ids));
	json_decref(ids);
	pv_strategy_unref(s);
}

/* A template's command is a shell command the provider runs: refused
 * (with the reason, nothing started) unless the config allows it. */
static void test_template_command_is_refused_unless_allowed(void **state)
{
	(void)state;
	pv_strategy *s = make("\"command\": \"sleep 60\"");
	pv_result r = PV_RESULT_INIT;
	exec_op(s, PV_OP_CREATE_INSTANCES,
		json_pack("{s:i, s:s, s:s, s:{s:s}}", "count", 1, "client_token", "x", "template_id", "t9",
			  "template", "command", "touch /tmp/pv-should-not-run"),
		&r);
	assert_false(r.success);
	assert_string_equal(r.error_code, PV_ERR_INVALID_PARAMETERS);
	assert_non_null(strstr(pv_result_message(&r), "template_commands"));
	assert_non_null(strstr(pv_result_message(&r), "t9"));
	pv_result_clear(&r);
	exec_op(s, PV_OP_DESCRIBE_RESOURCE_INSTANCES, json_object(), &r);
	assert_true(r.success);
	assert_int_equal(json_array_size(json_object_get(r.data, "instances")), 0);
	pv_result_clear(&r);
	pv_strategy_unref(s);
}

static void test_template_command_wins_over_default(void **state)
{
	(void)state;
	pv_strategy *s = make("\"command\": \"sleep 60\", \"template_commands\": true");
	pv_result r = PV_RESULT_INIT;
	exec_op(s, PV_OP_CREATE_INSTANCES,
		json_pack("{s:i, s:s, s:{s:s}}", "count", 1, "client_token", "x", "template", "command", "sleep 0.1"),
		&r);
	json_t *ids = ids_of(&r);
	assert_string_equal(json_string_value(json_object_get(json_array_get(json_object_get(r.data, "instances"), 0), "command")),
			    "sleep 0.1");
	pv_result_clear(&r);
	assert_true(all_gone(s, ids));
	json_decref(ids);
	pv_strategy_unref(s);
}

static void test_describe_filters_by_request_and_status_reports_unknown(void **state)
{
	(void)state;
	pv_strategy *s = make(NULL);
	pv_result r = PV_RESULT_INIT;
	create(s, 1, "t", &r);
	pv_result_clear(&r);
	exec_op(s, PV_OP_DESCRIBE_RESOURCE_INSTANCES, json_pack("{s:s}", "request_id", "req-1"), &r);
	assert_int_equal(json_array_size(json_object_get(r.data, "instances")), 1);
	pv_result_clear(&r);
	exec_op(s, PV_OP_DESCRIBE_RESOURCE_INSTANCES, json_pack("{s:s}", "request_id", "req-2"), &r);
	assert_int_equal(json_array_size(json_object_get(r.data, "instances")), 0);
	pv_result_clear(&r);
	exec_op(s, PV_OP_GET_INSTANCE_STATUS, json_pack("{s:[s]}", "instance_ids", "local-99"), &r);
	assert_true(r.success);
	assert_int_equal(json_array_size(json_object_get(r.data, "not_found")), 1);
	pv_result_clear(&r);
	exec_op(s, PV_OP_TERMINATE_INSTANCES, json_pack("{s:[s]}", "instance_ids", "../etc"), &r);
	assert_string_equal(r.error_code, "NOT_FOUND");
	pv_result_clear(&r);
	terminate_all(s);
}

static void test_lost_counter_never_reuses_an_id(void **state)
{
	(void)state;
	pv_strategy *s = make(NULL);
	pv_result a = PV_RESULT_INIT, b = PV_RESULT_INIT;
	create(s, 2, "t1", &a);
	char path[400];
	snprintf(path, sizeof path, "%s/w%d/next", dir, seq);
	assert_int_equal(unlink(path), 0); /* as if a crash lost it */
	create(s, 1, "t2", &b);
	const char *id = json_string_value(json_object_get(json_array_get(json_object_get(b.data, "instances"), 0), "instance_id"));
	assert_string_equal(id, "local-3");
	pv_result_clear(&a);
	pv_result_clear(&b);
	terminate_all(s);
}

/* Reaps the descendants that have ended; true once none is left. */
static bool reaped_all(void)
{
	pid_t p;
	while ((p = waitpid(-1, NULL, WNOHANG)) > 0)
		;
	return p < 0 && errno == ECHILD;
}

/* Reaps every descendant this process adopted (it is their subreaper)
 * until none is left; false past the safety bound. */
static bool reap_all(void)
{
	bool none = false;
	PV_TEST_WAIT_UNTIL((none = reaped_all()));
	return none;
}

/* A process creating a machine is killed (SIGKILL) right after each step
 * of the creation. Whatever the step, the machine has a record, and no
 * process runs that its record does not name: before the go, the
 * supervisor ends without running the command; after it, the record names
 * the running machine. This process adopts the orphans (a subreaper), so
 * it sees every process the killed one left behind. */
static void test_crash_at_each_step_leaves_no_unrecorded_machine(void **state)
{
	(void)state;
	const char *steps[] = {"intent", "spawned", "recorded", "started"};
	assert_int_equal(prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
	for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
		bool started = strcmp(steps[i], "started") == 0;
		char ran[300], extra[1200];
		snprintf(ran, sizeof ran, "%s/ran-%s", dir, steps[i]);
		snprintf(extra, sizeof extra, "\"command\": \"echo $$ > %s.tmp && mv %s.tmp %s; exec sleep 60\","
			 " \"grace_period_ms\": 100", ran, ran, ran);
		pv_strategy *s = make(extra);
		pid_t child = fork();
		assert_true(child >= 0);
		if (child == 0) {
			setenv("PROVISIO_TEST_LOCAL_CRASH_AT", steps[i], 1);
			pv_result r = PV_RESULT_INIT;
			create(s, 1, "tok-crash", &r);
			_exit(3); /* not reached: the hook kills this process */
		}
		int st = 0;
		assert_int_equal(waitpid(child, &st, 0), child);
		assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);

		/* before the go: the supervisor (if it was made) ends by itself */
		if (!started)
			assert_true(reap_all());
		pv_result r = PV_RESULT_INIT;
		exec_op(s, PV_OP_DESCRIBE_RESOURCE_INSTANCES, json_pack("{s:s}", "request_id", "req-1"), &r);
		json_t *list = json_object_get(r.data, "instances");
		assert_int_equal(json_array_size(list), 1); /* recorded, whatever the step */
		json_t *m = json_array_get(list, 0);
		const char *mstate = json_string_value(json_object_get(m, "state"));
		if (!started) {
			assert_string_equal(mstate, "terminated");
			struct stat sb;
			assert_int_not_equal(stat(ran, &sb), 0); /* it never ran the command */
		} else {
			assert_string_equal(mstate, "running");
			pid_t pid = (pid_t)json_integer_value(json_object_get(m, "pid"));
			assert_true(pid > 0);
			PV_TEST_WAIT_UNTIL(access(ran, F_OK) == 0); /* the command writes it once it runs */
			assert_int_equal(access(ran, F_OK), 0);
		}
		pv_result_clear(&r);
		terminate_all(s);
		assert_true(reap_all());
	}
	assert_int_equal(prctl(PR_SET_CHILD_SUBREAPER, 0), 0);
}

/* health_check answers what the provider knows, not just a flag. */
static void test_health_check_answers_status_message_and_latency(void **state)
{
	(void)state;
	pv_strategy *s = make(NULL);
	pv_result r = PV_RESULT_INIT;
	exec_op(s, PV_OP_HEALTH_CHECK, NULL, &r);
	assert_true(r.success);
	assert_true(json_is_true(json_object_get(r.data, "healthy")));
	assert_string_equal(json_string_value(json_object_get(r.data, "status")), "healthy");
	assert_non_null(strstr(json_string_value(json_object_get(r.data, "message")), "writable"));
	assert_true(json_is_number(json_object_get(r.data, "latency_ms")));
	assert_int_equal(json_integer_value(json_object_get(json_object_get(r.data, "details"), "live_machines")), 0);
	pv_result_clear(&r);

	char workdir[512];
	snprintf(workdir, sizeof workdir, "%s/w%d", dir, seq);
	assert_int_equal(pv_test_scratch_remove(workdir), 0); /* gone: nothing can be written */
	exec_op(s, PV_OP_HEALTH_CHECK, NULL, &r);
	assert_false(r.success);
	assert_string_equal(r.error_code, "UNHEALTHY");
	json_t *h = json_object_get(pv_result_meta(&r), "health");
	assert_string_equal(json_string_value(json_object_get(h, "status")), "unhealthy");
	assert_non_null(strstr(json_string_value(json_object_get(h, "message")), "not writable"));
	pv_result_clear(&r);
	pv_strategy_unref(s);
}

static void test_config_errors_name_the_field(void **state)
{
	(void)state;
	const char *bad[][2] = {{"{\"capacity\": -5}", "capacity"},
				{"{\"grace_period_ms\": 1e9}", "grace_period_ms"},
				{"{\"command\": \"\"}", "command"},
				{"{\"colour\": 1}", "colour"},
				{"[]", "object"}};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		json_t *c = json_loads(bad[i][0], 0, NULL);
		pv_strategy *s = NULL;
		assert_int_equal(pv_local_new(&s, "l", c, NULL), PV_EINVAL);
		assert_null(s);
		assert_non_null(strstr(pv_error_last(), bad[i][1]));
		json_decref(c);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_create_starts_running_machines_with_names_and_ip),
		cmocka_unit_test(test_machine_is_detached_from_caller),
		cmocka_unit_test(test_same_client_token_replays_without_new_machines),
		cmocka_unit_test(test_capacity_makes_what_fits_then_fails),
		cmocka_unit_test(test_terminate_stops_machine),
		cmocka_unit_test(test_sigkill_after_grace_for_command_ignoring_sigterm),
		cmocka_unit_test(test_machine_that_exits_is_terminated),
		cmocka_unit_test(test_template_command_is_refused_unless_allowed),
		cmocka_unit_test(test_template_command_wins_over_default),
		cmocka_unit_test(test_describe_filters_by_request_and_status_reports_unknown),
		cmocka_unit_test(test_lost_counter_never_reuses_an_id),
		cmocka_unit_test(test_crash_at_each_step_leaves_no_unrecorded_machine),
		cmocka_unit_test(test_health_check_answers_status_message_and_latency),
		cmocka_unit_test(test_config_errors_name_the_field),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
