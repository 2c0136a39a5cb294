/*
 * test_config.c - configuration loading: variable expansion, overlays,
 * search order, redaction, validation messages with JSON paths, the three
 * formats, graph building, plugins.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>
#include "scratch_dir.h"
#include "util/paths.h"
#include "provisio/provisio.h"

static char dir[64];

static void write_file(const char *name, const char *text, mode_t mode)
{
	char path[256];
	snprintf(path, sizeof path, "%s/%s", dir, name);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	chmod(path, mode);
}

static char *path_of(const char *name)
{
	static char path[256];
	snprintf(path, sizeof path, "%s/%s", dir, name);
	return path;
}

static int setup(void **state)
{
	(void)state;
	if (pv_test_scratch_make(dir, sizeof dir, "pv-config-") < 0)
		return -1;
	pv_log_set_level(PV_LOG_OFF);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	return pv_test_scratch_remove(dir);
}

/* The diagnostic at `path` whose message contains `text`, or NULL. */
static const pv_diag *find_diag(const pv_diags *d, const char *path, const char *text)
{
	for (size_t i = 0; i < d->n; i++)
		if (strcmp(d->items[i].path, path) == 0 && strstr(d->items[i].message, text))
			return &d->items[i];
	return NULL;
}

static void test_expansion_of_set_defaulted_and_missing_variables(void **state)
{
	(void)state;
	setenv("PV_TEST_REGION", "eu-west-1", 1);
	unsetenv("PV_TEST_MISSING");
	json_t *doc = json_loads("{\"a\": \"${PV_TEST_REGION}\", \"b\": [\"x-${PV_TEST_MISSING:-dflt}-y\"],"
				 " \"c\": {\"api_key\": \"${PV_TEST_MISSING}\"}, \"d\": \"cost $$5\"}", 0, NULL);
	pv_diags d;
	pv_diags_init(&d);
	pv_config_expand(doc, &d);
	assert_string_equal(json_string_value(json_object_get(doc, "a")), "eu-west-1");
	assert_string_equal(json_string_value(json_array_get(json_object_get(doc, "b"), 0)), "x-dflt-y");
	assert_string_equal(json_string_value(json_object_get(doc, "d")), "cost $5");
	/* the literal reference never survives as a key */
	assert_true(json_is_null(json_object_get(json_object_get(doc, "c"), "api_key")));
	assert_int_equal(d.errors, 1);
	assert_non_null(find_diag(&d, "c.api_key", "PV_TEST_MISSING is not set"));
	pv_diags_clear(&d);
	json_decref(doc);
}

/* "$NAME" without braces is left as written, with a warning that names it
 * unless it may be part of a secret. */
static void test_bare_dollar_name_warns_and_stays_literal(void **state)
{
	(void)state;
	setenv("PV_TEST_REGION", "eu-west-1", 1);
	json_t *doc = json_loads("{\"a\": \"$PV_TEST_REGION/x\", \"b\": \"${PV_TEST_REGION} $$5 $1\","
				 " \"c\": {\"password\": \"pa$sw0rd\"},"
				 " \"u\": \"postgresql://pv:Se$cr3tXq@db/pv\", \"t\": [\"ok\", \"$HOME\"]}", 0, NULL);
	pv_diags d;
	pv_diags_init(&d);
	pv_config_expand(doc, &d);
	assert_int_equal(d.errors, 0);
	assert_string_equal(json_string_value(json_object_get(doc, "a")), "$PV_TEST_REGION/x");
	assert_string_equal(json_string_value(json_object_get(doc, "b")), "eu-west-1 $5 $1"); /* no warning */
	const pv_diag *w = find_diag(&d, "a", "'$PV_TEST_REGION' is left as written: only ${PV_TEST_REGION} is expanded");
	assert_non_null(w);
	assert_int_equal(w->level, PV_DIAG_WARNING);
	assert_non_null(find_diag(&d, "t[1]", "'$HOME'"));
	assert_non_null(find_diag(&d, "c.password", "a '$' followed by a name is left as written"));
	assert_non_null(find_diag(&d, "u", "a '$' followed by a name is left as written"));
	assert_int_equal(d.n, 4);
	char *all = pv_diags_format(&d);
	assert_null(strstr(all, "sw0rd")); /* never a piece of a secret */
	assert_null(strstr(all, "cr3tXq"));
	free(all);
	pv_diags_clear(&d);
	json_decref(doc);
}

static void test_merge_replaces_arrays_and_merges_objects(void **state)
{
	(void)state;
	json_t *base = json_loads("{\"a\": {\"x\": 1, \"y\": 2}, \"l\": [1, 2, 3]}", 0, NULL);
	json_t *over = json_loads("{\"a\": {\"y\": 5, \"z\": 6}, \"l\": [9]}", 0, NULL);
	pv_config_merge(base, over);
	json_t *want = json_loads("{\"a\": {\"x\": 1, \"y\": 5, \"z\": 6}, \"l\": [9]}", 0, NULL);
	assert_true(json_equal(base, want));
	json_decref(base);
	json_decref(over);
	json_decref(want);
}

static void test_redaction_hides_secrets_not_settings(void **state)
{
	(void)state;
	json_t *doc = json_loads("{\"p\": {\"api_key\": \"k1\", \"secret_access_key\": \"s\", \"password\": \"p\","
				 " \"session_token\": \"t\", \"tokens\": [\"a\", \"b\"], \"region\": \"r\","
				 " \"token_bucket\": {\"capacity\": 5}},"
				 " \"store\": {\"url\": \"postgresql://pv:Sesame7@db:5432/pv?sslmode=require\"},"
				 " \"proxy\": \"http://proxy.example:3128/\"}", 0, NULL);
	json_t *red = pv_config_redact(doc);
	char *text = json_dumps(red, JSON_COMPACT);
	/* a password in a URL's user info, whatever the key */
	assert_null(strstr(text, "Sesame7"));
	assert_non_null(strstr(text, "\"postgresql://pv:***@db:5432/pv?sslmode=require\""));
	assert_non_null(strstr(text, "\"http://proxy.example:3128/\""));
	assert_null(strstr(text, "k1"));
	assert_null(strstr(text, "\"s\""));
	assert_null(strstr(text, "\"t\""));
	assert_null(strstr(text, "\"a\""));
	assert_non_null(strstr(text, "\"region\":\"r\""));
	assert_non_null(strstr(text, "\"capacity\":5"));
	free(text);
	json_decref(red);
	json_decref(doc);
}

static void test_search_order_explicit_env_hfconfdir_local(void **state)
{
	(void)state;
	write_file("provisio.json", "{}", 0600);
	unsetenv("PROVISIO_CONFIG");
	setenv("HF_PROVIDER_CONFDIR", dir, 1);
	char *p = pv_config_find(NULL);
	assert_string_equal(p, path_of("provisio.json"));
	free(p);
	setenv("PROVISIO_CONFIG", "/elsewhere/x.json", 1);
	p = pv_config_find(NULL);
	assert_string_equal(p, "/elsewhere/x.json");
	free(p);
	p = pv_config_find("/explicit.json");
	assert_string_equal(p, "/explicit.json");
	free(p);
	unsetenv("PROVISIO_CONFIG");
	setenv("HF_PROVIDER_CONFDIR", "/nonexistent-dir", 1);
	char cwd[512];
	assert_non_null(getcwd(cwd, sizeof cwd));
	assert_int_equal(chdir(dir), 0); /* no ./config/provisio.json here */
	/* last: the installation's (/etc/provisio/provisio.json), when there is one */
	char sys[512];
	snprintf(sys, sizeof sys, "%s/provisio.json", pv_paths_config_dir());
	p = pv_config_find(NULL);
	if (access(sys, F_OK) == 0) {
		assert_string_equal(p, sys);
		free(p);
	} else {
		assert_null(p);
		assert_non_null(strstr(pv_error_last(), "--config"));
		assert_non_null(strstr(pv_error_last(), pv_paths_config_dir()));
	}
	/* ./config/provisio.json comes before the installation's */
	assert_int_equal(mkdir("config", 0700), 0);
	write_file("config/provisio.json", "{}", 0600);
	p = pv_config_find(NULL);
	assert_string_equal(p, "config/provisio.json");
	free(p);
	unlink("config/provisio.json");
	rmdir("config");
	assert_int_equal(chdir(cwd), 0);
	unsetenv("HF_PROVIDER_CONFDIR");
}

static const char *graph_json =
	"{\"providers\": ["
	"  {\"name\": \"a\", \"type\": \"sim\", \"weight\": 3, \"config\": {\"seed\": 1}},"
	"  {\"name\": \"b\", \"type\": \"sim\"},"
	"  {\"name\": \"off\", \"type\": \"sim\", \"enabled\": false}],"
	" \"strategies\": [{\"name\": \"flaky-a\", \"kind\": \"chaos\", \"child\": \"a\","
	"                   \"config\": {\"failure_rate\": 0.5, \"seed\": 3}}],"
	" \"default_strategy\": \"flaky-a\","
	" \"context\": {\"selection_policy\": \"ROUND_ROBIN\", \"health_check_interval_seconds\": 10}}";

static void test_explicit_graph_builds_context_with_default(void **state)
{
	(void)state;
	write_file("graph.json", graph_json, 0600);
	pv_diags d;
	pv_diags_init(&d);
	pv_config_options o = {.path = path_of("graph.json")};
	pv_context *ctx = NULL;
	json_t *graph = NULL;
	assert_int_equal(pv_config_open(&o, &ctx, &graph, &d), 0);
	assert_int_equal(d.errors, 0);
	json_t *names = pv_context_names(ctx);
	assert_int_equal(json_array_size(names), 3); /* a, b, flaky-a; "off" is disabled */
	json_decref(names);
	char cur[32];
	pv_context_current(ctx, cur, sizeof cur);
	assert_string_equal(cur, "flaky-a");
	assert_int_equal(pv_context_policy(ctx), PV_POLICY_ROUND_ROBIN);
	/* a is inside flaky-a: the policy chooses among the top-level b and flaky-a */
	pv_operation op = {.type = PV_OP_HEALTH_CHECK};
	int seen_a_direct = 0;
	for (int i = 0; i < 20; i++) {
		char who[32];
		pv_context_select(ctx, &op, who, sizeof who);
		seen_a_direct += strcmp(who, "a") == 0;
	}
	assert_int_equal(seen_a_direct, 0);
	pv_result r;
	pv_context_execute_on(ctx, "a", &op, &r); /* still reachable by name */
	assert_true(r.success);
	pv_result_clear(&r);
	pv_context_free(ctx);
	json_decref(graph);
	pv_diags_clear(&d);
}

/* Normalises `json` and, when that finds no error, builds it: what a
 * `config validate` reports, in d (initialised here). */
static void diagnose(const char *json, bool strict, pv_diags *d)
{
	json_t *doc = json_loads(json, 0, NULL);
	assert_non_null(doc);
	pv_diags_init(d);
	json_t *graph = pv_config_normalize(doc, strict, d);
	if (!d->errors && graph) {
		pv_context *ctx = NULL;
		pv_config_build(graph, NULL, &ctx, d);
		pv_context_free(ctx);
	}
	json_decref(graph);
	json_decref(doc);
}

static void expect_diag(const pv_diags *d, pv_diag_level level, const char *path, const char *text)
{
	const pv_diag *g = find_diag(d, path, text);
	if (!g) {
		char *all = pv_diags_format(d);
		print_error("wanted '%s' at '%s', got:\n%s", text, path, all ? all : "");
		free(all);
	}
	assert_non_null(g);
	assert_int_equal(g->level, level);
}

static void expect_invalid(const char *json, const char *path, const char *text, bool strict)
{
	pv_diags d;
	diagnose(json, strict, &d);
	expect_diag(&d, PV_DIAG_ERROR, path, text);
	pv_diags_clear(&d);
}

static void test_validation_errors_name_path_value_and_allowed(void **state)
{
	(void)state;
	expect_invalid("{\"providers\": [{\"name\": \"a\", \"type\": \"nimbus\"}]}", "providers[0].type",
		       "'nimbus' is not a known provider type (known: [\"sim\"", false);
	expect_invalid("{\"providers\": [{\"name\": \"a\", \"type\": \"sim\"}, {\"name\": \"a\", \"type\": \"sim\"}]}",
		       "providers[1].name", "used twice", false);
	expect_invalid("{\"providers\": [{\"name\": \"a\", \"type\": \"sim\"}],"
		       " \"strategies\": [{\"name\": \"s\", \"kind\": \"magic\", \"children\": [\"a\"]}]}",
		       "strategies[0].kind", "'magic' is not one of fallback, balancer, composite, chaos", false);
	expect_invalid("{\"providers\": [{\"name\": \"a\", \"type\": \"sim\"}],"
		       " \"strategies\": [{\"name\": \"s\", \"kind\": \"chaos\", \"child\": \"ghost\"}]}",
		       "strategies[0].child", "'ghost' names no provider or strategy", false);
	expect_invalid("{\"providers\": [{\"name\": \"a\", \"type\": \"sim\"}],"
		       " \"strategies\": [{\"name\": \"x\", \"kind\": \"chaos\", \"child\": \"y\"},"
		       "                  {\"name\": \"y\", \"kind\": \"chaos\", \"child\": \"x\"}]}",
		       "strategies[0]", "cycle in the strategy graph", false);
	expect_invalid("{\"providers\": [{\"name\": \"a\", \"type\": \"sim\"}], \"context\": {\"selection_policy\": \"cheapest\"}}",
		       "context.selection_policy", "unknown selection policy 'cheapest'", false);
	expect_invalid("{\"providers\": [{\"name\": \"a\", \"type\": \"sim\", \"config\": {\"failure_rate\": 7}}]}",
		       "providers[0].config", "failure_rate", false);
	expect_invalid("{\"providers\": [{\"name\": \"a\", \"type\": \"sim\", \"colour\": \"red\"}]}",
		       "providers[0]", "unknown key 'colour'", true);
	expect_invalid("{\"providers\": [{\"name\": \"a\", \"type\": \"sim\"}],"
		       " \"context\": {\"selection_criteria\": {\"min_success_rate\": 150}}}",
		       "context.selection_criteria.min_success_rate", "percentage from 0 to 100", false);
	/* Children that are not names are reported, never read as names (found by the fuzzer). */
	expect_invalid("{\"providers\": [{\"name\": \"a\", \"type\": \"sim\"}],"
		       " \"strategies\": [{\"name\": \"s\", \"kind\": \"balancer\", \"children\": [\"a\", 5]}]}",
		       "strategies[0].children", "item 1 must be a name", false);
	expect_invalid("{\"providers\": [{\"name\": \"a\", \"type\": \"sim\"}],"
		       " \"strategies\": [{\"name\": \"f\", \"kind\": \"fallback\", \"primary\": 7,"
		       " \"fallbacks\": [null, \"ghost\"]}]}",
		       "strategies[0].fallbacks", "'ghost' names no provider or strategy", false);
}

/* Built and initialized from JSON text that must be valid. */
static pv_context *build_json(const char *json, pv_diags *d)
{
	json_t *doc = json_loads(json, 0, NULL);
	assert_non_null(doc);
	pv_diags_init(d);
	json_t *graph = pv_config_normalize(doc, false, d);
	pv_context *ctx = NULL;
	if (d->errors || pv_config_build(graph, NULL, &ctx, d) < 0) {
		char *all = pv_diags_format(d);
		print_error("%s\n", all ? all : "");
		free(all);
	}
	assert_non_null(ctx);
	assert_int_equal(pv_context_initialize(ctx, NULL), 0);
	json_decref(graph);
	json_decref(doc);
	return ctx;
}

/* The names of the strategies that answer `n` health checks, one letter each. */
static void served_by(pv_context *ctx, int n, char *out)
{
	pv_operation op = {.type = PV_OP_HEALTH_CHECK};
	for (int i = 0; i < n; i++) {
		pv_result r;
		pv_context_execute(ctx, &op, &r);
		assert_true(r.success);
		out[i] = r.provider[0];
		pv_result_clear(&r);
	}
	out[n] = '\0';
}

#define LEGACY_XY(extra) \
	"{\"provider\": {" extra "\"providers\": [" \
	" {\"name\": \"x\", \"type\": \"sim\", \"priority\": 1}," \
	" {\"name\": \"y\", \"type\": \"sim\", \"priority\": 2}]}}"

static void test_active_provider_serves_every_operation(void **state)
{
	(void)state;
	pv_diags d;
	pv_context *ctx = build_json(LEGACY_XY("\"active_provider\": \"y\", \"selection_policy\": \"ROUND_ROBIN\","
					       " \"circuit_breaker\": {\"enabled\": true},"), &d);
	char got[8];
	served_by(ctx, 4, got);
	assert_string_equal(got, "yyyy");
	expect_diag(&d, PV_DIAG_WARNING, "provider.selection_policy", "active_provider 'y' serves every operation");
	expect_diag(&d, PV_DIAG_WARNING, "provider.circuit_breaker", "active_provider 'y'");
	pv_strategy *x = pv_context_strategy(ctx, "x"); /* the others stay reachable by name */
	assert_non_null(x);
	pv_strategy_unref(x);
	pv_context_free(ctx);
	pv_diags_clear(&d);

	for (int strict = 0; strict < 2; strict++)
		expect_invalid(LEGACY_XY("\"active_provider\": \"nonexistent\","), "provider.active_provider",
			       "'nonexistent' names no provider of provider.providers (known: x, y)", strict);
	expect_invalid("{\"provider\": {\"active_provider\": \"x\", \"providers\": ["
		       " {\"name\": \"x\", \"type\": \"sim\", \"enabled\": false}, {\"name\": \"y\", \"type\": \"sim\"}]}}",
		       "provider.active_provider", "'x' is disabled", false);
}

static void test_default_provider_instance_is_the_default(void **state)
{
	(void)state;
	pv_diags d;
	pv_context *ctx = build_json(LEGACY_XY("\"default_provider_instance\": \"y\","), &d);
	char got[8];
	served_by(ctx, 3, got);
	assert_string_equal(got, "yyy");
	pv_context_free(ctx);
	pv_diags_clear(&d);

	/* with the failover chain (FIRST_AVAILABLE): the chain starts there */
	json_t *graph = NULL;
	json_t *doc = json_loads(LEGACY_XY("\"default_provider_instance\": \"y\", \"circuit_breaker\": {\"enabled\": true},"),
				 0, NULL);
	pv_diags_init(&d);
	graph = pv_config_normalize(doc, false, &d);
	assert_int_equal(d.errors, 0);
	json_t *chain = json_array_get(json_object_get(graph, "strategies"), 0);
	assert_string_equal(json_string_value(json_object_get(chain, "primary")), "y");
	assert_string_equal(json_string_value(json_array_get(json_object_get(chain, "fallbacks"), 0)), "x");
	assert_string_equal(json_string_value(json_object_get(graph, "default_strategy")), "failover");
	json_decref(graph);
	json_decref(doc);
	pv_diags_clear(&d);

	/* FIRST_AVAILABLE without a chain: the default first */
	ctx = build_json(LEGACY_XY("\"default_provider_instance\": \"y\", \"selection_policy\": \"FIRST_AVAILABLE\","), &d);
	served_by(ctx, 3, got);
	assert_string_equal(got, "yyy");
	pv_context_free(ctx);
	pv_diags_clear(&d);

	/* the spec format's failover_enabled: false keeps the primary alone */
	ctx = build_json("{\"provider\": {\"type\": \"sim\", \"sim\": {}, \"provider1\": {\"type\": \"sim\"},"
			 " \"strategy\": {\"failover_enabled\": false}, \"fallback\": {\"primary\": \"provider1\"}}}", &d);
	served_by(ctx, 2, got);
	assert_string_equal(got, "pp");
	expect_diag(&d, PV_DIAG_WARNING, "provider.fallback", "not used: strategy.failover_enabled is false");
	assert_null(pv_context_strategy(ctx, "fallback"));
	pv_context_free(ctx);
	pv_diags_clear(&d);

	expect_invalid(LEGACY_XY("\"default_provider_instance\": \"zz\","), "provider.default_provider_instance",
		       "'zz' names no provider of provider.providers (known: x, y)", true);
	expect_invalid(LEGACY_XY("\"default_provider_instance\": 3,"), "provider.default_provider_instance",
		       "must be the name of a provider", false);
}

static void test_empty_lists_and_callbackless_custom_are_errors(void **state)
{
	(void)state;
	expect_invalid("{\"provider\": {\"providers\": []}}", "provider.providers", "is empty", false);
	expect_invalid("{\"providers\": []}", "providers", "is empty", false);
	expect_invalid("{\"providers\": [{\"name\": \"a\", \"type\": \"sim\"}],"
		       " \"strategies\": [{\"name\": \"f\", \"kind\": \"fallback\", \"primary\": \"a\", \"fallbacks\": []}]}",
		       "strategies[0].fallbacks", "is empty: a fallback needs at least one strategy", false);
	expect_invalid("{\"providers\": [{\"name\": \"a\", \"type\": \"sim\"}],"
		       " \"strategies\": [{\"name\": \"f\", \"kind\": \"fallback\", \"primary\": \"a\"}]}",
		       "strategies[0].fallbacks", "is required", false);
	expect_invalid("{\"providers\": [{\"name\": \"a\", \"type\": \"sim\"}, {\"name\": \"b\", \"type\": \"sim\", \"enabled\": false}],"
		       " \"strategies\": [{\"name\": \"f\", \"kind\": \"fallback\", \"primary\": \"a\", \"fallbacks\": [\"b\"]}]}",
		       "strategies[0]", "'f' has no usable fallback", false);
	expect_invalid("{\"provider\": {\"type\": \"sim\", \"sim\": {}, \"fallback\": {\"mode\": \"immediate\"}}}",
		       "provider.fallback", "no strategy to fall back to: 'sim' is the only enabled provider", false);
	expect_invalid("{\"providers\": [{\"name\": \"a\", \"type\": \"sim\"}], \"context\": {\"selection_policy\": \"custom\"}}",
		       "context.selection_policy", "needs a selection callback registered in code", false);
	expect_invalid(LEGACY_XY("\"selection_policy\": \"CUSTOM\","), "provider.selection_policy",
		       "'CUSTOM' needs a selection callback", false);
}

/* Problems are reported at the user's own paths and field names, in every
 * format, and one problem never hides another. */
static void test_errors_point_at_the_users_own_fields(void **state)
{
	(void)state;
	expect_invalid(LEGACY_XY("\"selection_policy\": \"FASTEST\","), "provider.selection_policy",
		       "unknown selection policy 'FASTEST'", false);
	expect_invalid(LEGACY_XY("\"health_check_interval\": 0,"), "provider.health_check_interval",
		       "must be a number of seconds > 0", false);
	pv_diags d;
	diagnose(LEGACY_XY("\"circuit_breaker\": {\"enabled\": true, \"failure_threshold\": 0, \"recovery_timeout\": -5},"),
		 false, &d);
	expect_diag(&d, PV_DIAG_ERROR, "provider.circuit_breaker.failure_threshold", "must be an integer from 1");
	expect_diag(&d, PV_DIAG_ERROR, "provider.circuit_breaker.recovery_timeout", "must be a number greater than 0");
	char *all = pv_diags_format(&d);
	assert_null(strstr(all, "circuit_breaker_threshold")); /* provisio's name, not the user's */
	assert_null(strstr(all, "circuit_breaker_timeout_seconds"));
	free(all);
	pv_diags_clear(&d);
	expect_invalid("{\"provider\": {\"providers\": [{\"name\": \"x\", \"type\": \"sim\", \"weight\": -1}]}}",
		       "provider.providers[0].weight", "must be a number > 0", false);
	expect_invalid("{\"providers\": [{\"name\": \"x\", \"type\": \"sim\", \"enabled\": 1}]}",
		       "providers[0].enabled", "must be true or false", false);
	expect_invalid("{\"provider\": {\"type\": \"sim\", \"sim\": {}, \"strategy\": {\"selection_policy\": \"FASTEST\"}}}",
		       "provider.strategy.selection_policy", "unknown selection policy 'FASTEST'", false);
	expect_invalid("{\"provider\": {\"type\": \"sim\", \"sim\": {},"
		       " \"strategy\": {\"selection_criteria\": {\"require_healthy\": 1}}}}",
		       "provider.strategy.selection_criteria.require_healthy", "must be true or false", false);

	/* an unknown child type hides neither the fallback's bad mode nor a provider's bad config */
	diagnose("{\"providers\": [{\"name\": \"a\", \"type\": \"nimbus\"},"
		 " {\"name\": \"b\", \"type\": \"sim\", \"config\": {\"failure_rate\": 7}}],"
		 " \"strategies\": [{\"name\": \"f\", \"kind\": \"fallback\", \"primary\": \"a\", \"fallbacks\": [\"b\"],"
		 " \"config\": {\"mode\": \"circut_breaker\"}}]}", false, &d);
	expect_diag(&d, PV_DIAG_ERROR, "providers[0].type", "'nimbus' is not a known provider type");
	expect_diag(&d, PV_DIAG_ERROR, "strategies[0].config", "fallback mode 'circut_breaker'");
	expect_diag(&d, PV_DIAG_ERROR, "providers[1].config", "failure_rate");
	pv_diags_clear(&d);
}

static void test_every_error_is_reported_at_once(void **state)
{
	(void)state;
	json_t *doc = json_loads("{\"providers\": [{\"name\": \"\", \"type\": \"sim\"}, {\"name\": \"b\"}],"
				 " \"default_strategy\": \"zzz\", \"context\": {\"selection_policy\": 5}}", 0, NULL);
	pv_diags d;
	pv_diags_init(&d);
	json_t *g = pv_config_normalize(doc, false, &d);
	assert_true(d.errors >= 4);
	assert_non_null(find_diag(&d, "providers[0].name", "letters"));
	assert_non_null(find_diag(&d, "providers[1].type", "required"));
	assert_non_null(find_diag(&d, "default_strategy", "'zzz'"));
	assert_non_null(find_diag(&d, "context.selection_policy", "policy name"));
	json_decref(g);
	json_decref(doc);
	pv_diags_clear(&d);
}

static void test_unknown_keys_warn_by_default(void **state)
{
	(void)state;
	json_t *doc = json_loads("{\"providers\": [{\"name\": \"a\", \"type\": \"sim\"}], \"colour\": 1}", 0, NULL);
	pv_diags d;
	pv_diags_init(&d);
	json_t *g = pv_config_normalize(doc, false, &d);
	assert_int_equal(d.errors, 0);
	const pv_diag *w = find_diag(&d, "(root)", "unknown top-level section(s) colour");
	assert_non_null(w);
	assert_int_equal(w->level, PV_DIAG_WARNING);
	json_decref(g);
	json_decref(doc);
	pv_diags_clear(&d);
}

static void test_overlay_from_env_name_is_merged(void **state)
{
	(void)state;
	write_file("base.json", "{\"providers\": [{\"name\": \"a\", \"type\": \"sim\"}],"
				" \"context\": {\"selection_policy\": \"first_available\", \"health_check_interval_seconds\": 60}}", 0600);
	write_file("production.json", "{\"context\": {\"selection_policy\": \"random\"}}", 0600);
	pv_diags d;
	pv_diags_init(&d);
	json_t *doc = NULL;
	pv_config_options o = {.path = path_of("base.json"), .env_name = "production"};
	assert_int_equal(pv_config_load_file(&o, &doc, &d), 0);
	json_t *ctx = json_object_get(doc, "context");
	assert_string_equal(json_string_value(json_object_get(ctx, "selection_policy")), "random");
	assert_int_equal(json_integer_value(json_object_get(ctx, "health_check_interval_seconds")), 60);
	json_decref(doc);

	o.env_name = "staging"; /* no such overlay: an error, not a silent skip */
	assert_int_equal(pv_config_load_file(&o, &doc, &d), PV_EIO);
	assert_non_null(strstr(pv_error_last(), "staging"));
	json_decref(doc);
	pv_diags_clear(&d);
}

static void test_readable_file_with_literal_secret_warns(void **state)
{
	(void)state;
	write_file("leaky.json", "{\"providers\": [{\"name\": \"a\", \"type\": \"sim\", \"config\": {\"api_key\": \"hunter2\"}}]}", 0644);
	pv_diags d;
	pv_diags_init(&d);
	json_t *doc = NULL;
	pv_config_options o = {.path = path_of("leaky.json")};
	pv_config_load_file(&o, &doc, &d);
	assert_non_null(find_diag(&d, "providers[0].config.api_key", "literal secret"));
	char *all = pv_diags_format(&d);
	assert_null(strstr(all, "hunter2")); /* the warning never quotes it */
	free(all);
	json_decref(doc);
	pv_diags_clear(&d);
	pv_diags_init(&d);
	write_file("safe.json", "{\"providers\": [{\"name\": \"a\", \"type\": \"sim\", \"config\": {\"api_key\": \"hunter2\"}}]}", 0600);
	o.path = path_of("safe.json");
	pv_config_load_file(&o, &doc, &d);
	assert_int_equal(d.n, 0);
	json_decref(doc);
	pv_diags_clear(&d);
	/* a password inside a URL is a literal secret too */
	pv_diags_init(&d);
	write_file("url.json", "{\"providers\": [{\"name\": \"a\", \"type\": \"sim\"}],"
		   " \"store\": {\"url\": \"postgresql://pv:hunter3@db/pv\"}}", 0644);
	o.path = path_of("url.json");
	pv_config_load_file(&o, &doc, &d);
	assert_non_null(find_diag(&d, "store.url", "literal secret"));
	all = pv_diags_format(&d);
	assert_null(strstr(all, "hunter3"));
	free(all);
	json_decref(doc);
	pv_diags_clear(&d);
}

static void test_plugin_provider_loads_and_serves(void **state)
{
	(void)state;
	char json[1024];
	snprintf(json, sizeof json,
		 "{\"plugins\": [\"%s\"], \"providers\": [{\"name\": \"e\", \"type\": \"echo\"}]}", PV_TEST_PLUGIN);
	write_file("plugin.json", json, 0600);
	pv_diags d;
	pv_diags_init(&d);
	pv_config_options o = {.path = path_of("plugin.json")};
	pv_context *ctx = NULL;
	/* the type is unknown until the plugin loads: normalisation must not reject it first */
	assert_int_equal(pv_plugin_load(PV_TEST_PLUGIN), 0);
	assert_int_equal(pv_config_open(&o, &ctx, NULL, &d), 0);
	json_t *params = json_pack("{s:i}", "n", 7);
	pv_operation op = {.type = PV_OP_VALIDATE_TEMPLATE, .params = params};
	pv_result r;
	pv_context_execute(ctx, &op, &r);
	assert_true(r.success);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(r.data, "echo"), "n")), 7);
	pv_result_clear(&r);
	json_decref(params);
	pv_context_free(ctx);
	pv_diags_clear(&d);

	assert_int_equal(pv_plugin_load("/nonexistent/libnope.so"), PV_EIO);
	assert_non_null(strstr(pv_error_last(), "libnope.so"));
}

/* Provider types the files name but this build may lack: served by sims,
 * so the graph built from the files can be checked. */
static int sim_as(pv_strategy **out, const char *name, const json_t *config, const pv_clock *clock)
{
	(void)config; /* the real provider's keys (region, profile, ...) are not sim keys */
	return pv_sim_new(out, name, NULL, clock);
}

/* Replaces a real provider type by sims for the rest of this process, so
 * tests that run operations never leave the machine. */
static void stand_in(const char *type)
{
	assert_int_equal(pv_provider_register_type(type, sim_as), 0);
}

/* With the real provider types: every file of the Python original builds
 * (constructors validate, nothing connects). Runs before any stand-in. */
static void test_python_original_files_build_with_real_providers(void **state)
{
	(void)state;
	const char *files[] = {"single-provider.json", "multi-provider.json", "legacy-config.json"};
	for (size_t i = 0; i < 3; i++) {
		char path[512];
		snprintf(path, sizeof path, PV_SOURCE_DIR "/tests/data/orb/%s", files[i]);
		pv_diags d;
		pv_diags_init(&d);
		pv_config_options o = {.path = path};
		pv_context *ctx = NULL;
		int rc = pv_config_open(&o, &ctx, NULL, &d);
		if (rc) {
			char *all = pv_diags_format(&d);
			print_error("%s\n%s", path, all ? all : "");
			free(all);
		}
		assert_int_equal(rc, 0);
		pv_strategy *s = pv_context_strategy(ctx, i == 2 ? "aws" : "aws-primary");
		if (!s)
			s = pv_context_strategy(ctx, "aws-default");
		assert_non_null(s);
		assert_string_equal(s->type, "aws"); /* the real provider, not a stand-in */
		pv_strategy_unref(s);
		pv_context_free(ctx);
		pv_diags_clear(&d);
	}
}

static pv_context *open_file(const char *path, json_t **graph, pv_diags *d)
{
	pv_config_options o = {.path = path};
	pv_context *ctx = NULL;
	int rc = pv_config_open(&o, &ctx, graph, d);
	if (rc < 0) {
		char *all = pv_diags_format(d);
		print_error("%s: %s\n%s", path, pv_error_last(), all ? all : "");
		free(all);
	}
	assert_int_equal(rc, 0);
	assert_int_equal(pv_context_initialize(ctx, NULL), 0);
	return ctx;
}

static void test_python_original_multi_provider_file_loads(void **state)
{
	(void)state;
	stand_in("aws");
	pv_diags d;
	pv_diags_init(&d);
	json_t *graph = NULL;
	pv_context *ctx = open_file(PV_SOURCE_DIR "/tests/data/orb/multi-provider.json", &graph, &d);
	/* WEIGHTED_ROUND_ROBIN 70/30 over the two providers; the circuit breaker
	 * becomes a failover chain in priority order, reachable by name. */
	assert_int_equal(pv_context_policy(ctx), PV_POLICY_WEIGHTED_ROUND_ROBIN);
	pv_operation op = {.type = PV_OP_HEALTH_CHECK};
	int primary = 0;
	for (int i = 0; i < 100; i++) {
		pv_result r;
		pv_context_execute(ctx, &op, &r);
		assert_true(r.success);
		primary += strcmp(r.provider, "aws-primary") == 0;
		pv_result_clear(&r);
	}
	assert_int_equal(primary, 70);
	json_t *failover = json_array_get(json_object_get(graph, "strategies"), 0);
	assert_string_equal(json_string_value(json_object_get(failover, "primary")), "aws-primary");
	assert_string_equal(json_string_value(json_array_get(json_object_get(failover, "fallbacks"), 0)), "aws-backup");
	assert_int_equal(json_integer_value(json_object_get(json_object_get(failover, "config"), "circuit_breaker_threshold")), 5);
	pv_result r;
	pv_context_execute_on(ctx, "failover", &op, &r);
	assert_true(r.success);
	assert_string_equal(r.provider, "aws-primary");
	pv_result_clear(&r);
	pv_context_free(ctx);
	json_decref(graph);
	pv_diags_clear(&d);
}

static void test_python_original_single_and_legacy_files_load(void **state)
{
	(void)state;
	stand_in("aws");
	const char *files[] = {"single-provider.json", "legacy-config.json", "production-config.json"};
	for (size_t i = 0; i < 3; i++) {
		char path[512];
		snprintf(path, sizeof path, PV_SOURCE_DIR "/tests/data/orb/%s", files[i]);
		pv_diags d;
		pv_diags_init(&d);
		pv_context *ctx = open_file(path, NULL, &d);
		assert_true(pv_context_count(ctx) >= 1);
		pv_operation op = {.type = PV_OP_HEALTH_CHECK};
		pv_result r;
		pv_context_execute(ctx, &op, &r);
		assert_true(r.success);
		pv_result_clear(&r);
		pv_context_free(ctx);
		pv_diags_clear(&d);
	}
}

/* The spec's full example: providers aws, provider1, provider2, a balancer
 * over all three, a fallback aws -> provider1 -> provider2. Real provider
 * types are replaced by sims so nothing leaves the machine. */
static void test_spec_full_example_builds_the_documented_graph(void **state)
{
	(void)state;
	const char *types[] = {"aws", "provider1", "provider2"};
	for (int i = 0; i < 3; i++)
		assert_int_equal(pv_provider_register_type(types[i], sim_as), 0);
	setenv("PROVIDER1_API_KEY", "k1", 1);
	setenv("PROVIDER2_API_KEY", "k2", 1);
	const char *envs[] = {NULL, "production", "development"};
	for (int e = 0; e < 3; e++) {
		char cmd[512];
		snprintf(cmd, sizeof cmd, "cp %s/config/examples/*.json %s/", PV_SOURCE_DIR, dir);
		assert_int_equal(system(cmd), 0);
		pv_diags d;
		pv_diags_init(&d);
		pv_config_options o = {.path = path_of("spec-full.json"), .env_name = envs[e]};
		pv_context *ctx = NULL;
		json_t *graph = NULL;
		int rc = pv_config_open(&o, &ctx, &graph, &d);
		if (rc) {
			char *all = pv_diags_format(&d);
			print_error("%s\n", all);
			free(all);
		}
		assert_int_equal(rc, 0);
		assert_int_equal(pv_context_initialize(ctx, NULL), 0);
		char cur[32];
		pv_context_current(ctx, cur, sizeof cur);
		assert_string_equal(cur, "fallback"); /* the outermost wrapper serves */
		json_t *st = json_object_get(graph, "strategies");
		assert_int_equal(json_array_size(st), 2);
		json_t *lb = json_array_get(st, 0), *fb = json_array_get(st, 1);
		assert_string_equal(json_string_value(json_object_get(lb, "kind")), "balancer");
		assert_int_equal(json_array_size(json_object_get(lb, "children")), 3);
		assert_string_equal(json_string_value(json_object_get(fb, "primary")), "aws");
		assert_int_equal(json_array_size(json_object_get(fb, "fallbacks")), 2);
		pv_policy want = e == 2 ? PV_POLICY_FIRST_AVAILABLE : PV_POLICY_PERFORMANCE_BASED;
		assert_int_equal(pv_context_policy(ctx), want);
		/* the policy chooses among the top-level strategies only */
		pv_operation op = {.type = PV_OP_HEALTH_CHECK};
		for (int i = 0; i < 10; i++) {
			pv_result r;
			pv_context_execute(ctx, &op, &r);
			assert_true(r.success);
			json_t *meta = pv_result_metadata(&r);
			assert_true(json_object_get(meta, "balancer") || json_object_get(meta, "strategy") ||
				    strcmp(r.provider, "aws") == 0);
			json_decref(meta);
			pv_result_clear(&r);
		}
		pv_strategy *fallback = pv_context_strategy(ctx, "fallback");
		json_t *cm = pv_fallback_circuit_metrics(fallback);
		assert_non_null(cm);
		json_decref(cm);
		pv_strategy_unref(fallback);
		pv_context_free(ctx);
		json_decref(graph);
		pv_diags_clear(&d);
	}
}

/* The context of configuration `text` (written to `name`), initialized. */
static pv_context *context_of(const char *name, const char *text, pv_diags *d)
{
	write_file(name, text, 0600);
	pv_diags_init(d);
	pv_config_options o = {.path = path_of(name)};
	pv_context *ctx = NULL;
	assert_int_equal(pv_config_open(&o, &ctx, NULL, d), 0);
	pv_context_initialize(ctx, NULL);
	return ctx;
}

static void test_runtime_update_is_validated_then_applied(void **state)
{
	(void)state;
	pv_diags d;
	pv_context *ctx = context_of("upd.json", "{\"providers\": [{\"name\": \"a\", \"type\": \"sim\"},"
				     " {\"name\": \"b\", \"type\": \"sim\"}], \"strategies\": [{\"name\": \"lb\","
				     " \"kind\": \"balancer\", \"children\": [\"a\", \"b\"],"
				     " \"config\": {\"algorithm\": \"weighted_round_robin\"}}]}", &d);

	json_t *bad = json_loads("{\"selection_policy\": \"cheapest\", \"weights\": {\"lb\": {\"a\": -1, \"zz\": 1}}}", 0, NULL);
	assert_int_equal(pv_config_update(ctx, bad, &d), PV_EINVAL);
	assert_non_null(find_diag(&d, "selection_policy", "cheapest"));
	assert_non_null(find_diag(&d, "weights.lb.a", "> 0"));
	assert_non_null(find_diag(&d, "weights.lb.zz", "not a strategy"));
	assert_int_equal(pv_context_policy(ctx), PV_POLICY_NONE); /* nothing changed */
	json_decref(bad);
	pv_diags_clear(&d);
	pv_diags_init(&d);

	json_t *good = json_loads("{\"selection_policy\": \"least_connections\","
				  " \"selection_criteria\": {\"min_success_rate\": 99},"
				  " \"weights\": {\"lb\": {\"a\": 4, \"b\": 1}}}", 0, NULL);
	assert_int_equal(pv_config_update(ctx, good, &d), 0);
	assert_int_equal(pv_context_policy(ctx), PV_POLICY_LEAST_CONNECTIONS);
	pv_context_set_policy(ctx, PV_POLICY_NONE);
	pv_context_set_strategy(ctx, "lb");
	int a = 0;
	pv_operation op = {.type = PV_OP_HEALTH_CHECK};
	for (int i = 0; i < 50; i++) {
		pv_result r;
		pv_context_execute(ctx, &op, &r);
		a += strcmp(r.provider, "a") == 0;
		pv_result_clear(&r);
	}
	assert_int_equal(a, 40); /* 4:1 */
	json_decref(good);
	pv_diags_clear(&d);
	pv_context_free(ctx);
}

/* A criteria list is used whole, however long: the 70th name excluded is
 * as excluded as the first (a list cut at 64 once chose it anyway). */
static void test_criteria_lists_of_any_length_count_every_name(void **state)
{
	(void)state;
	pv_diags d;
	pv_context *ctx = context_of("long.json", "{\"providers\": [{\"name\": \"a\", \"type\": \"sim\"},"
				     " {\"name\": \"b\", \"type\": \"sim\"}]}", &d);
	json_t *names = json_array();
	for (int i = 0; i < 69; i++)
		json_array_append_new(names, json_sprintf("absent-%d", i));
	json_array_append_new(names, json_string("a"));
	json_t *update = json_pack("{s:s, s:{s:o}}", "selection_policy", "round_robin",
				   "selection_criteria", "exclude", names);
	assert_int_equal(pv_config_update(ctx, update, &d), 0);
	pv_operation op = {.type = PV_OP_HEALTH_CHECK};
	for (int i = 0; i < 4; i++) {
		char got[64];
		assert_int_equal(pv_context_select(ctx, &op, got, sizeof got), 0);
		assert_string_equal(got, "b");
	}
	json_decref(update);
	pv_diags_clear(&d);
	pv_context_free(ctx);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_expansion_of_set_defaulted_and_missing_variables),
		cmocka_unit_test(test_bare_dollar_name_warns_and_stays_literal),
		cmocka_unit_test(test_merge_replaces_arrays_and_merges_objects),
		cmocka_unit_test(test_redaction_hides_secrets_not_settings),
		cmocka_unit_test(test_search_order_explicit_env_hfconfdir_local),
		cmocka_unit_test(test_explicit_graph_builds_context_with_default),
		cmocka_unit_test(test_validation_errors_name_path_value_and_allowed),
		cmocka_unit_test(test_active_provider_serves_every_operation),
		cmocka_unit_test(test_default_provider_instance_is_the_default),
		cmocka_unit_test(test_empty_lists_and_callbackless_custom_are_errors),
		cmocka_unit_test(test_errors_point_at_the_users_own_fields),
		cmocka_unit_test(test_every_error_is_reported_at_once),
		cmocka_unit_test(test_unknown_keys_warn_by_default),
		cmocka_unit_test(test_overlay_from_env_name_is_merged),
		cmocka_unit_test(test_readable_file_with_literal_secret_warns),
		cmocka_unit_test(test_plugin_provider_loads_and_serves),
		cmocka_unit_test(test_python_original_files_build_with_real_providers),
		cmocka_unit_test(test_python_original_multi_provider_file_loads),
		cmocka_unit_test(test_python_original_single_and_legacy_files_load),
		cmocka_unit_test(test_spec_full_example_builds_the_documented_graph),
		cmocka_unit_test(test_runtime_update_is_validated_then_applied),
		cmocka_unit_test(test_criteria_lists_of_any_length_count_every_name),
	};
	return cmocka_run_group_tests_name("config", tests, setup, teardown);
}
