/*
 * test_server_cli.c - the CLI's --format json is the REST API's document:
 * `provisio serve` (in this process, on loopback) and the real program on
 * the same configuration and store; each command's JSON parses, has the
 * REST field names and equals what the server answers for the same thing.
 * And every command refuses a flag it does not know, naming it (exit 2).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include "run_cli.h"
#include "test_server_support.h"
#include "wait.h"

static json_t *rest(ts_env *e, const char *path)
{
	ts_resp r = ts_call(e, "GET", path, READ_TOKEN, NULL, NULL);
	assert_int_equal(r.status, 200);
	json_t *body = json_incref(r.body);
	ts_resp_clear(&r);
	return body;
}

/* The program's JSON for `args` on the server's configuration. */
static json_t *cli_json(ts_env *e, const char *args)
{
	char full[1024];
	snprintf(full, sizeof full, "--config %s %s", e->config, args);
	cli_run r = cli(NULL, full);
	if (r.status != 0 || !r.json)
		fail_msg("provisio %s: exit %d, stdout %s, stderr %s", args, r.status, r.out, r.err);
	json_t *j = json_incref(r.json);
	cli_free(&r);
	return j;
}

static void assert_same(json_t *from_rest, json_t *from_cli, const char *what)
{
	if (!json_equal(from_rest, from_cli)) {
		char *a = json_dumps(from_rest, JSON_COMPACT), *b = json_dumps(from_cli, JSON_COMPACT);
		fail_msg("%s differs:\nREST %s\nCLI  %s", what, a, b);
	}
	json_decref(from_rest);
	json_decref(from_cli);
}

/* A finished request of two machines, made through the REST API. */
static char *finished_request(ts_env *e)
{
	ts_resp r = ts_call(e, "POST", "/api/v1/requests", ADMIN_TOKEN, "{\"template_id\": \"t1\", \"count\": 2}", NULL);
	assert_int_equal(r.status, 202);
	char *id = strdup(json_string_value(json_object_get(r.body, "request_id")));
	ts_resp_clear(&r);
	char path[200];
	snprintf(path, sizeof path, "/api/v1/requests/%s", id);
	bool done = false;
	PV_TEST_WAIT_UNTIL((r = ts_call(e, "GET", path, READ_TOKEN, NULL, NULL),
			    done = strcmp(json_string_value(json_object_get(r.body, "status")) ?: "", "running") != 0,
			    ts_resp_clear(&r), done));
	assert_true(done);
	return id;
}

static void templates_json_is_the_rest_document(void **state)
{
	ts_env *e = *state;
	assert_same(rest(e, "/api/v1/templates"), cli_json(e, "templates list --json"), "templates list");
	assert_same(rest(e, "/api/v1/templates/t1"), cli_json(e, "templates show t1"), "templates show");
	assert_same(rest(e, "/api/v1/templates/t1"), cli_json(e, "templates show t1 --format table --format json"),
		    "templates show --format json");
}

static void requests_and_machines_json_are_the_rest_documents(void **state)
{
	ts_env *e = *state;
	char *id = finished_request(e);
	char path[200], args[200];
	snprintf(path, sizeof path, "/api/v1/requests/%s", id);
	snprintf(args, sizeof args, "requests show %s", id);
	json_t *shown = cli_json(e, args);
	/* the REST names, not the Host Factory ones */
	assert_non_null(json_object_get(shown, "request_id"));
	assert_non_null(json_object_get(shown, "template_id"));
	assert_null(json_object_get(shown, "requestId"));
	assert_non_null(json_object_get(json_array_get(json_object_get(shown, "machines"), 0), "machine_id"));
	assert_same(rest(e, path), shown, "requests show");
	snprintf(args, sizeof args, "requests status %s --json", id);
	assert_same(rest(e, path), cli_json(e, args), "requests status --json");
	assert_same(rest(e, "/api/v1/requests"), cli_json(e, "requests list --json"), "requests list");
	assert_same(rest(e, "/api/v1/requests?status=complete&limit=5"),
		    cli_json(e, "requests list --status complete --limit 5 --json"), "requests list --status");
	assert_same(rest(e, "/api/v1/machines"), cli_json(e, "machines list --all --json"), "machines list");
	assert_same(rest(e, "/api/v1/machines?state=running"), cli_json(e, "machines list --state running --json"),
		    "machines list --state");
	free(id);
}

/* The strategies' state is each process's own (its counters, its
 * health checks): the same strategies with the same fields. */
static void providers_json_has_the_rest_fields(void **state)
{
	ts_env *e = *state;
	json_t *r = rest(e, "/api/v1/providers"), *c = cli_json(e, "providers list --format json");
	const char *key;
	json_t *v;
	json_object_foreach(r, key, v)
		assert_non_null(json_object_get(c, key));
	json_t *rs = json_object_get(r, "strategies"), *cs = json_object_get(c, "strategies");
	assert_int_equal(json_object_size(rs), 3);
	assert_int_equal(json_object_size(cs), json_object_size(rs));
	json_object_foreach(rs, key, v) {
		json_t *mine = json_object_get(cs, key);
		assert_non_null(mine);
		const char *field;
		json_t *x;
		json_object_foreach(v, field, x)
			if (!json_object_get(mine, field))
				fail_msg("providers list --json: %s has no '%s'", key, field);
		assert_true(json_equal(json_object_get(v, "children"), json_object_get(mine, "children")));
		assert_true(json_equal(json_object_get(v, "kind"), json_object_get(mine, "kind")));
	}
	json_decref(r);
	json_decref(c);
	json_t *cfg = cli_json(e, "config show --json");
	assert_non_null(json_object_get(cfg, "config"));
	assert_non_null(json_object_get(cfg, "graph"));
	json_decref(cfg);
	cfg = cli_json(e, "config validate --json");
	assert_true(json_is_true(json_object_get(cfg, "valid")));
	json_decref(cfg);
}

/* top's one-shot JSON is the two documents it reads, as the server gave them. */
static void top_json_is_the_rest_documents(void **state)
{
	ts_env *e = *state;
	char args[1024];
	snprintf(args, sizeof args, "top --url %s --token %s --json", e->url, READ_TOKEN);
	json_t *top = cli_json(e, args);
	assert_same(rest(e, "/api/v1/requests?status=running&limit=20"), json_incref(json_object_get(top, "requests")),
		    "top --json requests");
	json_t *p = json_object_get(top, "providers"), *r = rest(e, "/api/v1/providers");
	assert_true(json_equal(json_object_get(p, "current"), json_object_get(r, "current")));
	assert_int_equal(json_object_size(json_object_get(p, "strategies")), 3);
	json_decref(r);
	json_decref(top);
	snprintf(args, sizeof args, "--config %s top --url %s --jsn", e->config, e->url);
	cli_run bad = cli(NULL, args);
	assert_int_equal(bad.status, 2);
	assert_non_null(strstr(bad.err, "--jsn"));
	cli_free(&bad);
}

/* Every command that takes options refuses one it does not know. */
static void unknown_flags_exit_2_naming_flag_and_command(void **state)
{
	ts_env *e = *state;
	static const char *const commands[] = {
		"templates list",      "templates show t1",       "requests list",  "requests show x",
		"requests status x",   "machines list",           "machines request t1 1",
		"machines return m-1", "providers list",          "providers health",
		"providers exec health_check", "config show",     "config validate",
	};
	for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
		char args[512], want[160];
		snprintf(args, sizeof args, "--config %s %s --jsn", e->config, commands[i]);
		cli_run r = cli(NULL, args);
		if (r.status != 2)
			fail_msg("provisio %s --jsn: exit %d (stderr: %s)", commands[i], r.status, r.err);
		/* "templates show t1" -> "templates show" */
		snprintf(want, sizeof want, "%s", commands[i]);
		char *sp = strchr(want, ' ');
		sp = sp ? strchr(sp + 1, ' ') : NULL;
		if (sp)
			*sp = '\0';
		char need[200];
		snprintf(need, sizeof need, "%s: unknown option '--jsn'", want);
		if (!strstr(r.err, need))
			fail_msg("provisio %s --jsn: stderr does not say \"%s\": %s", commands[i], need, r.err);
		assert_null(r.json);
		cli_free(&r);
	}
	/* a bad format value is named too */
	char args[512];
	snprintf(args, sizeof args, "--config %s templates list --format yaml", e->config);
	cli_run r = cli(NULL, args);
	assert_int_equal(r.status, 2);
	assert_non_null(strstr(r.err, "--format 'yaml' is not one of table, json"));
	cli_free(&r);
}

/* The old spelling still works and says what replaces it. */
static void deprecated_state_flag_warns_and_filters_like_status(void **state)
{
	ts_env *e = *state;
	char *id = finished_request(e);
	char args[512];
	snprintf(args, sizeof args, "--config %s requests list --state complete --json", e->config);
	cli_run r = cli(NULL, args);
	assert_int_equal(r.status, 0);
	assert_non_null(strstr(r.err, "--state is deprecated; use --status"));
	json_t *want = cli_json(e, "requests list --status complete --json");
	assert_true(json_equal(want, r.json));
	assert_true(json_array_size(json_object_get(want, "requests")) >= 1);
	json_decref(want);
	cli_free(&r);
	free(id);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(templates_json_is_the_rest_document, ts_setup_default, ts_teardown),
		cmocka_unit_test_setup_teardown(requests_and_machines_json_are_the_rest_documents, ts_setup_default, ts_teardown),
		cmocka_unit_test_setup_teardown(providers_json_has_the_rest_fields, ts_setup_default, ts_teardown),
		cmocka_unit_test_setup_teardown(top_json_is_the_rest_documents, ts_setup_default, ts_teardown),
		cmocka_unit_test_setup_teardown(unknown_flags_exit_2_naming_flag_and_command, ts_setup_default, ts_teardown),
		cmocka_unit_test_setup_teardown(deprecated_state_flag_warns_and_filters_like_status, ts_setup_default, ts_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
