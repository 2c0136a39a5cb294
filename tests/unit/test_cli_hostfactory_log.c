/*
 * test_cli_hostfactory_log.c - the log of the Host Factory calls
 * ($HF_PROVIDER_LOGDIR/provisio.log): JSON lines like serve's, rotated at
 * the configured size keeping the configured number of files, and an
 * input error logged with its real reason. The real program, a SQLite
 * store and a sim provider in a scratch directory.
 */
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>
#include "scratch_dir.h"
#include "run_cli.h"

static char dir[64], env[1024];

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static int setup(void **state)
{
	(void)state;
	if (pv_test_scratch_make(dir, sizeof dir, "pv-hf-log-") < 0)
		return -1;
	char path[256], text[1024];
	snprintf(path, sizeof path, "%s/templates.json", dir);
	write_file(path, "{\"templates\": [{\"templateId\": \"t\", \"provider\": \"sim\"}]}");
	snprintf(text, sizeof text,
		 "{\"providers\": [{\"name\": \"sim\", \"type\": \"sim\"}], \"default_strategy\": \"sim\","
		 " \"store\": {\"path\": \"%s/p.db\"}, \"broker\": {\"templates_file\": \"%s\"}}", dir, path);
	snprintf(path, sizeof path, "%s/provisio.json", dir);
	write_file(path, text);
	snprintf(env, sizeof env, "PROVISIO_CONFIG=%s HF_PROVIDER_LOGDIR=%s PROVISIO_HF_LOG_MAX_BYTES=2048 "
		 "PROVISIO_HF_LOG_KEEP=2", path, dir);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	return pv_test_scratch_remove(dir);
}

static bool exists(const char *name)
{
	char path[256];
	snprintf(path, sizeof path, "%s/%s", dir, name);
	return access(path, F_OK) == 0;
}

static long long size_of(const char *name)
{
	char path[256];
	struct stat sb;
	snprintf(path, sizeof path, "%s/%s", dir, name);
	return stat(path, &sb) == 0 ? (long long)sb.st_size : -1;
}

/* Every line of `name` is a JSON object with ts, level, component, msg;
 * returns how many lines hold `needle` in msg (and level `level`). */
static int lines_with(const char *name, const char *level, const char *needle)
{
	char path[256], line[8192];
	snprintf(path, sizeof path, "%s/%s", dir, name);
	FILE *f = fopen(path, "r");
	assert_non_null(f);
	int hits = 0;
	while (fgets(line, sizeof line, f)) {
		json_t *j = json_loads(line, 0, NULL);
		if (!j)
			fail_msg("%s: not a JSON line: %s", name, line);
		const char *msg = json_string_value(json_object_get(j, "msg"));
		assert_non_null(json_string_value(json_object_get(j, "ts")));
		assert_non_null(json_string_value(json_object_get(j, "component")));
		assert_non_null(msg);
		const char *lv = json_string_value(json_object_get(j, "level"));
		assert_non_null(lv);
		hits += needle && strstr(msg, needle) && (!level || strcmp(lv, level) == 0);
		json_decref(j);
	}
	fclose(f);
	return hits;
}

static void test_input_error_is_logged_with_its_reason(void **state)
{
	(void)state;
	cli_run r = cli(env, "hostfactory requestMachines -d '{}'");
	assert_int_equal(r.status, 1);
	const char *answer = json_string_value(json_object_get(r.json, "message"));
	assert_non_null(answer);
	assert_non_null(strstr(answer, "input needs \"template\""));
	/* the log says what the answer says, not a stale lookup's "no key" */
	assert_int_equal(lines_with("provisio.log", "error", "input needs \"template\""), 1);
	assert_int_equal(lines_with("provisio.log", NULL, "no key"), 0);
	cli_free(&r);
}

/* Calls until the log has rotated past its keep count; it never grows
 * past its bound by more than one call's lines, and no third file. */
static void test_log_rotates_at_its_size_keeping_n_files(void **state)
{
	(void)state;
	int calls = 0;
	while (!exists("provisio.log.2") && calls < 500) {
		cli_run r = cli(env, "hostfactory getAvailableTemplates -d '{}'");
		assert_int_equal(r.status, 0);
		cli_free(&r);
		calls++;
	}
	assert_true(exists("provisio.log.2"));
	for (int i = 0; i < 20; i++) { /* more rotations: still two old files */
		cli_run r = cli(env, "hostfactory getAvailableTemplates -d '{}'");
		assert_int_equal(r.status, 0);
		cli_free(&r);
	}
	assert_false(exists("provisio.log.3"));
	const char *files[] = {"provisio.log", "provisio.log.1", "provisio.log.2"};
	for (int i = 0; i < 3; i++) {
		long long n = size_of(files[i]);
		assert_true(n > 0);
		assert_true(n < 2048 + 1024); /* the bound and one call's lines */
		assert_true(lines_with(files[i], "info", "getAvailableTemplates") >= 1);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_input_error_is_logged_with_its_reason),
		cmocka_unit_test(test_log_rotates_at_its_size_keeping_n_files),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
