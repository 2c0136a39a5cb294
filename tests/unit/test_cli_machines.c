/*
 * test_cli_machines.c - `provisio machines` and `provisio requests` run as a
 * person runs them (the real program, a configuration and a SQLite store
 * in a scratch directory, sim providers): lists of any length, the one
 * bound on a machine count, and `provisio serve` running on the store:
 * request and return then leave the providers to it.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "broker_fixture.h"
#include <cmocka.h>
#include "scratch_dir.h"
#include "provisio/provisio.h"
#include "run_cli.h"

static char dir[64];
static char env[512];
static int seq;

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

/* A fresh configuration and store for one test: a sim provider (room for
 * 2,000 machines) serving template "t", which has no maxNumber. */
static void world(void)
{
	char path[256], text[1024];
	seq++;
	snprintf(path, sizeof path, "%s/templates%d.json", dir, seq);
	write_file(path, "{\"templates\": [{\"templateId\": \"t\", \"provider\": \"sim\"}]}");
	snprintf(text, sizeof text,
		 "{\"providers\": [{\"name\": \"sim\", \"type\": \"sim\", \"config\": {\"capacity\": 2000}}],"
		 " \"default_strategy\": \"sim\", \"store\": {\"path\": \"%s/p%d.db\"},"
		 " \"broker\": {\"templates_file\": \"%s\"}}",
		 dir, seq, path);
	snprintf(path, sizeof path, "%s/provisio%d.json", dir, seq);
	write_file(path, text);
	snprintf(env, sizeof env, "PROVISIO_CONFIG=%s HF_PROVIDER_WORKDIR=%s", path, dir);
}

static int setup(void **state)
{
	(void)state;
	return pv_test_scratch_make(dir, sizeof dir, "pv-cli-machines-");
}

static int teardown(void **state)
{
	(void)state;
	return pv_test_scratch_remove(dir);
}

/* `provisio machines request t COUNT`: its request id (caller frees). */
static char *request(int count)
{
	char args[64];
	snprintf(args, sizeof args, "machines request t %d", count);
	cli_run r = cli(env, args);
	assert_int_equal(r.status, 0);
	char *id = strdup(json_string_value(json_object_get(r.json, "request_id")));
	cli_free(&r);
	return id;
}

static void test_return_takes_every_id_given(void **state)
{
	(void)state;
	world();
	char *req = request(900);
	char args[128];
	snprintf(args, sizeof args, "requests show %s", req);
	cli_run shown = cli(env, args);
	assert_int_equal(shown.status, 0);
	json_t *machines = json_object_get(shown.json, "machines");
	assert_int_equal(json_array_size(machines), 900);
	size_t cap = 64 + 64 * 900, len = 0;
	char *ret = malloc(cap);
	len += (size_t)snprintf(ret, cap, "machines return --wait --timeout 120");
	size_t i;
	json_t *m;
	json_array_foreach(machines, i, m)
		len += (size_t)snprintf(ret + len, cap - len, " %s",
					json_string_value(json_object_get(m, "machine_id")));
	cli_run r = cli(env, ret);
	/* every one of the 900, not the first 256 */
	assert_int_equal(r.status, 0);
	assert_string_equal(json_string_value(json_object_get(r.json, "status")), "complete");
	assert_int_equal(json_array_size(json_object_get(r.json, "machines")), 900);
	assert_non_null(strstr(r.err, "900/900"));
	cli_free(&r);
	cli_free(&shown);
	free(ret);
	free(req);
}

static void test_request_over_the_bound_names_it(void **state)
{
	(void)state;
	world();
	cli_run r = cli(env, "machines request t 1000000000000");
	assert_int_equal(r.status, 1);
	assert_non_null(strstr(r.err, "machineCount must be from 1 to 100000 (got 1000000000000)"));
	assert_null(r.json);
	cli_free(&r);
	r = cli(env, "requests list");
	assert_int_equal(r.status, 0);
	assert_null(strstr(r.out, "req-")); /* nothing written */
	cli_free(&r);
}

/* The id a person was shown is delivered: its machines are never
 * reclaimed as a request nobody got. */
static void test_printed_request_is_delivered(void **state)
{
	(void)state;
	world();
	char *id = request(2);
	char path[128];
	snprintf(path, sizeof path, "%s/p%d.db", dir, seq);
	pv_store *st = NULL;
	assert_int_equal(pv_store_open(&st, path, NULL), 0);
	pv_request_rec r;
	assert_int_equal(pv_store_begin(st, false), 0);
	assert_int_equal(pv_store_request_get(st, id, &r), 0);
	pv_store_commit(st);
	assert_true(r.delivered_ms > 0);
	pv_store_close(st);
	free(id);
}

/* This world's store, opened by the test (caller closes). */
static pv_store *world_store(void)
{
	char path[128];
	snprintf(path, sizeof path, "%s/p%d.db", dir, seq);
	pv_store *st = NULL;
	assert_int_equal(pv_store_open(&st, path, NULL), 0);
	return st;
}

static void stored(pv_store *st, const char *id, pv_request_rec *r, size_t *machines)
{
	pv_machine_list ms = {0};
	assert_int_equal(pv_store_begin(st, false), 0);
	assert_int_equal(pv_store_request_get(st, id, r), 0);
	assert_int_equal(pv_store_machine_list(st, r->kind == PV_REQ_ACQUIRE ? PV_MF_REQUEST : PV_MF_RETURN, id, &ms), 0);
	pv_store_commit(st);
	*machines = ms.n;
	pv_machine_list_clear(&ms);
}

/* A live daemon on the store (this test process, on this host, beating
 * now): machines request and return queue their work for it and call no
 * provider (nothing made, nothing terminated); once it is gone, the next
 * command does what it left queued itself. */
static void test_request_and_return_defer_to_a_live_daemon(void **state)
{
	(void)state;
	world();
	char *made = request(1); /* no daemon yet: provisioned here */
	pv_store *st = world_store();
	char host[256], beat[600];
	gethostname(host, sizeof host);
	snprintf(beat, sizeof beat, "{\"state\": \"running\", \"pid\": %d, \"host\": \"%s\", \"listen\": \"\","
		 " \"interval_ms\": 60000, \"started_ms\": %lld, \"updated_ms\": %lld}", (int)getpid(), host,
		 (long long)pv_wall_ms(), (long long)pv_wall_ms());
	bf_kv_put(st, "daemon/heartbeat", beat);

	cli_run r = cli(env, "--log-level info machines request t 2");
	assert_int_equal(r.status, 0);
	assert_non_null(strstr(r.err, "machines request: deferred to provisio serve"));
	const char *queued = json_string_value(json_object_get(r.json, "request_id"));
	assert_non_null(queued);
	assert_string_equal(json_string_value(json_object_get(r.json, "state")), "queued");
	pv_request_rec q;
	size_t n;
	stored(st, queued, &q, &n);
	assert_int_equal(q.state, PV_REQ_QUEUED);
	assert_int_equal(n, 0); /* no provider was asked for a machine */
	char *queued_id = strdup(queued);
	cli_free(&r);

	pv_request_rec first;
	stored(st, made, &first, &n);
	assert_int_equal(n, 1);
	pv_machine_list ms = {0};
	assert_int_equal(pv_store_begin(st, false), 0);
	assert_int_equal(pv_store_machine_list(st, PV_MF_REQUEST, made, &ms), 0);
	pv_store_commit(st);
	char args[256];
	snprintf(args, sizeof args, "--log-level info machines return %s", ms.items[0].machine_id);
	r = cli(env, args);
	assert_int_equal(r.status, 0);
	assert_non_null(strstr(r.err, "machines return: deferred to provisio serve"));
	assert_string_equal(json_string_value(json_object_get(r.json, "state")), "queued");
	pv_machine_rec m;
	assert_int_equal(pv_store_begin(st, false), 0);
	assert_int_equal(pv_store_machine_get(st, ms.items[0].machine_id, NULL, &m), 0);
	pv_store_commit(st);
	assert_string_not_equal(m.status, "terminated"); /* the daemon's to do */
	cli_free(&r);

	/* the daemon is gone: the next command finishes its queue itself */
	bf_kv_put(st, "daemon/heartbeat", "{\"state\": \"stopped\"}");
	snprintf(args, sizeof args, "--log-level info requests show %s", queued_id);
	r = cli(env, args);
	assert_int_equal(r.status, 0);
	assert_non_null(strstr(r.err, "no live daemon; finished 2 queued request(s)"));
	assert_string_equal(json_string_value(json_object_get(r.json, "state")), "complete");
	assert_int_equal(json_array_size(json_object_get(r.json, "machines")), 2);
	cli_free(&r);
	assert_int_equal(pv_store_begin(st, false), 0);
	assert_int_equal(pv_store_machine_get(st, ms.items[0].machine_id, NULL, &m), 0);
	pv_store_commit(st);
	assert_string_equal(m.status, "terminated");
	pv_machine_list_clear(&ms);
	pv_store_close(st);
	free(queued_id);
	free(made);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_return_takes_every_id_given),
		cmocka_unit_test(test_request_over_the_bound_names_it),
		cmocka_unit_test(test_printed_request_is_delivered),
		cmocka_unit_test(test_request_and_return_defer_to_a_live_daemon),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
