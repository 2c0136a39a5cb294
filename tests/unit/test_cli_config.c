/*
 * test_cli_config.c - the `provisio` program's config and providers
 * commands, run as a user runs them.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <cmocka.h>
#include "scratch_dir.h"
#include "provisio/provisio.h"
#include "run_cli.h"

static char dir[64];
static char args[4096];

static const char *file(const char *name, const char *text)
{
	static char path[256];
	snprintf(path, sizeof path, "%s/%s", dir, name);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	chmod(path, 0600);
	return path;
}

static int setup(void **state)
{
	(void)state;
	return pv_test_scratch_make(dir, sizeof dir, "pv-cli-");
}

static int teardown(void **state)
{
	(void)state;
	return pv_test_scratch_remove(dir);
}

static void test_help_and_unknown_command(void **state)
{
	(void)state;
	cli_run r = cli(NULL, "--help");
	assert_int_equal(r.status, 0);
	assert_non_null(strstr(r.out, "providers"));
	cli_free(&r);
	r = cli(NULL, "providers --help");
	assert_int_equal(r.status, 0);
	assert_non_null(strstr(r.out, "--repeat"));
	assert_non_null(strstr(r.out, "examples:"));
	cli_free(&r);
	r = cli(NULL, "teleport");
	assert_int_equal(r.status, 2);
	assert_non_null(strstr(r.err, "unknown command 'teleport'"));
	cli_free(&r);
}

static void test_config_validate_good_and_bad(void **state)
{
	(void)state;
	const char *good = file("good.json", "{\"providers\": [{\"name\": \"a\", \"type\": \"sim\"}]}");
	snprintf(args, sizeof args, "config validate %s", good);
	cli_run r = cli(NULL, args);
	assert_int_equal(r.status, 0);
	assert_true(json_is_true(json_object_get(r.json, "valid")));
	cli_free(&r);

	const char *bad = file("bad.json", "{\"provider\": {\"fallback\": {\"mode\": \"circut_breaker\"},"
					   " \"sim\": {\"failure_rate\": 3}}}");
	snprintf(args, sizeof args, "config validate %s", bad);
	r = cli(NULL, args);
	assert_int_equal(r.status, 1);
	assert_true(json_is_false(json_object_get(r.json, "valid")));
	assert_non_null(strstr(r.err, "circut_breaker"));
	assert_non_null(strstr(r.err, "provider.sim: "));
	assert_non_null(strstr(r.err, "provider.fallback: fallback config: field 'mode'"));
	assert_non_null(strstr(r.err, "failure_rate"));
	cli_free(&r);
}

static void test_config_show_expands_and_redacts(void **state)
{
	(void)state;
	const char *cfg = file("show.json", "{\"providers\": [{\"name\": \"a\", \"type\": \"sim\","
					    " \"config\": {\"api_key\": \"${PV_TEST_KEY}\", \"seed\": 4}}]}");
	snprintf(args, sizeof args, "--config %s config show", cfg);
	cli_run r = cli("PV_TEST_KEY=sup3rs3cret", args);
	assert_int_equal(r.status, 0); /* show checks the structure; `validate` builds */
	assert_null(strstr(r.out, "sup3rs3cret"));
	assert_null(strstr(r.err, "sup3rs3cret"));
	assert_non_null(strstr(r.out, "\"***\""));
	cli_free(&r);
}

/* The server's token hashes are hidden like any secret (docs say tokens
 * are redacted); names and roles stay readable. */
static void test_config_show_hides_token_hashes(void **state)
{
	(void)state;
	const char *hash = "pbkdf2-sha256$10000$00112233445566778899aabbccddeeff$"
			   "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
	char text[1024];
	snprintf(text, sizeof text, "{\"providers\": [{\"name\": \"a\", \"type\": \"sim\"}],"
		 " \"server\": {\"auth\": {\"tokens\": [{\"name\": \"ops\", \"hash\": \"%s\","
		 " \"role\": \"admin\"}]}}}", hash);
	const char *cfg = file("tokens.json", text);
	snprintf(args, sizeof args, "--config %s config show", cfg);
	cli_run r = cli(NULL, args);
	assert_int_equal(r.status, 0);
	assert_null(strstr(r.out, "0123456789abcdef"));
	assert_null(strstr(r.out, "pbkdf2"));
	json_t *tok = json_array_get(json_object_get(json_object_get(json_object_get(json_object_get(r.json,
		"config"), "server"), "auth"), "tokens"), 0);
	assert_string_equal(json_string_value(json_object_get(tok, "name")), "ops");
	assert_string_equal(json_string_value(json_object_get(tok, "role")), "admin");
	assert_string_equal(json_string_value(json_object_get(tok, "hash")), "***");
	cli_free(&r);
}

static const char *weighted =
	"{\"providers\": [{\"name\": \"a\", \"type\": \"sim\", \"weight\": 5},"
	"                 {\"name\": \"b\", \"type\": \"sim\"}, {\"name\": \"c\", \"type\": \"sim\"}],"
	" \"context\": {\"selection_policy\": \"weighted_round_robin\"}}";

static void test_exec_repeat_shows_weighted_distribution(void **state)
{
	(void)state;
	const char *cfg = file("weighted.json", weighted);
	snprintf(args, sizeof args, "--config %s providers exec health_check --repeat 700 --threads 3", cfg);
	cli_run r = cli(NULL, args);
	assert_int_equal(r.status, 0);
	json_t *sum = json_object_get(r.json, "summary");
	assert_int_equal(json_integer_value(json_object_get(sum, "succeeded")), 700);
	json_t *by = json_object_get(sum, "by_provider");
	assert_int_equal(json_integer_value(json_object_get(by, "a")), 500);
	assert_int_equal(json_integer_value(json_object_get(by, "b")), 100);
	assert_int_equal(json_integer_value(json_object_get(by, "c")), 100);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(json_object_get(r.json, "metrics"), "a"),
							    "total_operations")), 500);
	cli_free(&r);
}

static void test_exec_repeat_shows_breaker_opening(void **state)
{
	(void)state;
	const char *cfg = file("breaker.json",
			       "{\"providers\": [{\"name\": \"flaky\", \"type\": \"sim\", \"config\": {\"failure_rate\": 1}},"
			       "                 {\"name\": \"backup\", \"type\": \"sim\"}],"
			       " \"strategies\": [{\"name\": \"guarded\", \"kind\": \"fallback\", \"primary\": \"flaky\","
			       "   \"fallbacks\": [\"backup\"], \"config\": {\"mode\": \"circuit_breaker\","
			       "   \"circuit_breaker_threshold\": 3, \"circuit_breaker_timeout_seconds\": 600}}]}");
	snprintf(args, sizeof args, "--config %s providers exec health_check --repeat 50", cfg);
	cli_run r = cli(NULL, args);
	assert_int_equal(r.status, 0);
	json_t *sum = json_object_get(r.json, "summary");
	assert_int_equal(json_integer_value(json_object_get(sum, "succeeded")), 50);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(sum, "by_provider"), "backup")), 50);
	json_t *stats = json_object_get(json_object_get(r.json, "stats"), "guarded");
	char *text = json_dumps(stats, JSON_COMPACT);
	assert_non_null(strstr(text, "\"open\""));
	free(text);
	/* the primary was called exactly threshold times, then skipped */
	json_t *flaky = json_object_get(json_object_get(r.json, "stats"), "flaky");
	assert_int_equal(json_integer_value(json_object_get(json_object_get(flaky, "calls"), "health_check")), 3);
	cli_free(&r);
}

static void test_providers_list_health_metrics_capabilities(void **state)
{
	(void)state;
	const char *cfg = file("list.json", "{\"providers\": [{\"name\": \"a\", \"type\": \"sim\"}, {\"name\": \"b\", \"type\": \"sim\"}],"
					    " \"strategies\": [{\"name\": \"ab\", \"kind\": \"fallback\", \"primary\": \"a\", \"fallbacks\": [\"b\"]}]}");
	snprintf(args, sizeof args, "--config %s providers list --json", cfg);
	cli_run r = cli(NULL, args);
	assert_int_equal(r.status, 0);
	assert_string_equal(json_string_value(json_object_get(r.json, "current")), "ab");
	json_t *list = json_object_get(r.json, "strategies");
	assert_int_equal(json_object_size(list), 3);
	json_t *ab = json_object_get(list, "ab");
	assert_string_equal(json_string_value(json_object_get(ab, "kind")), "fallback");
	assert_int_equal(json_array_size(json_object_get(ab, "children")), 2);
	assert_true(json_is_true(json_object_get(json_object_get(ab, "health"), "healthy")));
	cli_free(&r);

	const char *verbs[] = {"health", "metrics", "capabilities"};
	for (int i = 0; i < 3; i++) {
		snprintf(args, sizeof args, "--config %s providers %s --provider b", cfg, verbs[i]);
		r = cli(NULL, args);
		assert_int_equal(r.status, 0);
		assert_non_null(json_object_get(r.json, "b"));
		assert_null(json_object_get(r.json, "a"));
		cli_free(&r);
	}
	snprintf(args, sizeof args, "--config %s providers health --provider nope", cfg);
	r = cli(NULL, args);
	assert_int_equal(r.status, 1);
	assert_non_null(strstr(r.err, "'nope' is not registered"));
	cli_free(&r);
}

static void test_exec_once_reports_failure_with_exit_status(void **state)
{
	(void)state;
	const char *cfg = file("once.json", "{\"providers\": [{\"name\": \"a\", \"type\": \"sim\", \"config\": {\"capacity\": 0}}]}");
	snprintf(args, sizeof args, "--config %s providers exec create_instances --params '{\"count\": 2}'", cfg);
	cli_run r = cli(NULL, args);
	assert_int_equal(r.status, 1);
	assert_string_equal(json_string_value(json_object_get(r.json, "error_code")), "CAPACITY");
	cli_free(&r);
	snprintf(args, sizeof args, "--config %s providers exec create_instances --params 'not json'", cfg);
	r = cli(NULL, args);
	assert_int_equal(r.status, 2);
	assert_non_null(strstr(r.err, "--params"));
	cli_free(&r);
	snprintf(args, sizeof args, "--config %s providers exec reboot", cfg);
	r = cli(NULL, args);
	assert_int_equal(r.status, 2);
	assert_non_null(strstr(r.err, "operation 'reboot' is not one of create_instances"));
	cli_free(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_help_and_unknown_command),
		cmocka_unit_test(test_config_validate_good_and_bad),
		cmocka_unit_test(test_config_show_expands_and_redacts),
		cmocka_unit_test(test_config_show_hides_token_hashes),
		cmocka_unit_test(test_exec_repeat_shows_weighted_distribution),
		cmocka_unit_test(test_exec_repeat_shows_breaker_opening),
		cmocka_unit_test(test_providers_list_health_metrics_capabilities),
		cmocka_unit_test(test_exec_once_reports_failure_with_exit_status),
	};
	return cmocka_run_group_tests_name("cli_config", tests, setup, teardown);
}
