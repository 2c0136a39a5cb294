/*
 * test_cli_machines.c - `provisio machines` and `provisio requests` run as a
 * person runs them (the real program, a configuration and a SQLite store
 * in a scratch directory, sim providers): lists of any length, the one
 * bound on a machine count.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_return_takes_every_id_given),
		cmocka_unit_test(test_request_over_the_bound_names_it),
		cmocka_unit_test(test_printed_request_is_delivered),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
