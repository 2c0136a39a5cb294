/*
 * broker_fixture.c - see broker_fixture.h.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>
#include "broker_fixture.h"
#include "scratch_dir.h"

char bf_dir[256];
static int db_seq;

int bf_group_setup(void **state)
{
	(void)state;
	char prefix[128];
	snprintf(prefix, sizeof prefix, "pv_%s_", program_invocation_short_name);
	return pv_test_scratch_make(bf_dir, sizeof bf_dir, prefix);
}

int bf_group_teardown(void **state)
{
	(void)state;
	return pv_test_scratch_remove(bf_dir);
}

void bf_db_path(char *out, size_t size, const char *stem)
{
	int n = snprintf(out, size, "%s/%s%d.db", bf_dir, stem, ++db_seq);
	assert_true(n > 0 && (size_t)n < size);
}

json_t *bf_json(const char *text)
{
	json_error_t e;
	json_t *j = json_loads(text, 0, &e);
	if (!j)
		fail_msg("bad JSON in a test (%s): %s", e.text, text);
	return j;
}

pv_strategy *bf_sim(const char *name, const char *config, const pv_clock *clock)
{
	json_t *c = bf_json(config ? config : "{}");
	pv_strategy *s = NULL;
	assert_int_equal(pv_sim_new(&s, name, c, clock), 0);
	json_decref(c);
	return s;
}

pv_context *bf_context(const pv_clock *clock, pv_strategy *const *strategies, size_t n)
{
	pv_context_options o = {.clock = clock};
	pv_context *ctx = NULL;
	assert_int_equal(pv_context_new(&ctx, &o), 0);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(pv_context_register(ctx, strategies[i]), 0);
	assert_int_equal(pv_context_initialize(ctx, NULL), 0);
	return ctx;
}

pv_store *bf_store(const char *path)
{
	pv_store *st = NULL;
	assert_int_equal(pv_store_open_sqlite(&st, path, NULL), 0);
	return st;
}

pv_broker *bf_broker(const pv_broker_setup *setup, const char *templates)
{
	pv_broker_setup s = *setup;
	json_t *t = templates ? bf_json(templates) : NULL;
	if (t)
		s.templates = t;
	pv_broker *b = NULL;
	assert_int_equal(pv_broker_new(&b, &s), 0);
	json_decref(t);
	return b;
}

void bf_close(pv_broker *b, pv_store *st)
{
	pv_broker_close(b);
	pv_store_close(st);
}

void bf_release(pv_context *ctx, pv_strategy *const *strategies, size_t n)
{
	pv_context_free(ctx);
	for (size_t i = 0; i < n; i++)
		pv_strategy_unref(strategies[i]);
}

int bf_hf(pv_broker *b, pv_hf_command c, const char *input, json_t **out)
{
	json_t *in = bf_json(input);
	int rc = pv_hf_run(b, c, in, out);
	json_decref(in);
	assert_non_null(*out);
	return rc;
}

char *bf_hf_request(pv_broker *b, const char *tmpl, int count, json_t **answer)
{
	char input[256];
	snprintf(input, sizeof input, "{\"template\": {\"templateId\": \"%s\", \"machineCount\": %d}}", tmpl, count);
	json_t *out;
	assert_int_equal(bf_hf(b, PV_HF_REQUEST_MACHINES, input, &out), 0);
	const char *id = json_string_value(json_object_get(out, "requestId"));
	assert_non_null(id);
	char *copy = strdup(id);
	if (answer)
		*answer = out;
	else
		json_decref(out);
	return copy;
}

size_t bf_count_requests(pv_store *st)
{
	pv_request_rec *l = NULL;
	size_t n = 0;
	assert_int_equal(pv_store_request_list(st, -1, 0, &l, &n), 0);
	free(l);
	return n;
}

char *bf_kv_get(pv_store *st, const char *key)
{
	char *v = NULL;
	assert_int_equal(pv_store_begin(st, false), 0);
	int rc = pv_store_kv_get(st, key, &v);
	pv_store_commit(st);
	return rc == 0 ? v : NULL;
}

void bf_kv_put(pv_store *st, const char *key, const char *value)
{
	assert_int_equal(pv_store_begin(st, true), 0);
	assert_int_equal(pv_store_kv_put(st, key, value), 0);
	assert_int_equal(pv_store_commit(st), 0);
}

pid_t bf_dead_pid(void)
{
	pid_t p = fork();
	if (p == 0)
		_exit(0);
	waitpid(p, NULL, 0);
	return p;
}

void bf_write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	if (!f)
		fail_msg("cannot write %s: %s", path, strerror(errno));
	fputs(text, f);
	fclose(f);
}

size_t bf_read_file(const char *path, char *buf, size_t size)
{
	FILE *f = fopen(path, "r");
	if (!f)
		fail_msg("cannot read %s: %s", path, strerror(errno));
	size_t n = fread(buf, 1, size - 1, f);
	buf[n] = '\0';
	fclose(f);
	return n;
}

bool bf_file_has(const char *path, const char *needle)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return false;
	char buf[65536];
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	buf[n] = '\0';
	fclose(f);
	return strstr(buf, needle) != NULL;
}
