/*
 * test_cli_migrate.c - `provisio migrate --from-orb DIR` on the original
 * project's real configuration files (tests/data/orb, tests/data/
 * hostfactory): what converts is written and loads in provisio (strict),
 * every setting that does not is named in the report, and a configuration
 * with errors writes nothing and says why.
 */
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
#include "scratch_dir.h"
#include "run_cli.h"

static char dir[64];
static int seq;

static int setup(void **state)
{
	(void)state;
	return pv_test_scratch_make(dir, sizeof dir, "pv-migrate-");
}

static int teardown(void **state)
{
	(void)state;
	return pv_test_scratch_remove(dir);
}

static void copy(const char *from, const char *to)
{
	char cmd[2200];
	snprintf(cmd, sizeof cmd, "cp '%s' '%s'", from, to);
	assert_int_equal(system(cmd), 0);
}

/* An original config directory holding orb/`file` as config.json (and the
 * templates file when `templates`); runs migrate into a fresh out dir. */
static cli_run migrate(const char *file, bool templates, char *out, size_t size)
{
	char in[256], path[512], args[1024];
	seq++;
	snprintf(in, sizeof in, "%s/in%d", dir, seq);
	snprintf(out, size, "%s/out%d", dir, seq);
	snprintf(path, sizeof path, "mkdir -p '%s' '%s'", in, out);
	assert_int_equal(system(path), 0);
	snprintf(path, sizeof path, "%s/tests/data/orb/%s", PV_SOURCE_DIR, file);
	char to[512];
	snprintf(to, sizeof to, "%s/config.json", in);
	copy(path, to);
	if (templates) {
		snprintf(path, sizeof path, "%s/tests/data/hostfactory/awsprov_templates.json", PV_SOURCE_DIR);
		snprintf(to, sizeof to, "%s/awsprov_templates.json", in);
		copy(path, to);
	}
	snprintf(args, sizeof args, "migrate --from-orb %s --out %s --json", in, out);
	return cli(NULL, args);
}

static bool names(const json_t *report, const char *path, const char *words)
{
	size_t i;
	json_t *d;
	json_array_foreach(json_object_get(report, "not_converted"), i, d) {
		const char *p = json_string_value(json_object_get(d, "path"));
		const char *m = json_string_value(json_object_get(d, "message"));
		if (p && strcmp(p, path) == 0 && m && strstr(m, words))
			return true;
	}
	return false;
}

static void test_converted_configs_load_strictly_and_name_what_was_left(void **state)
{
	(void)state;
	static const char *const files[] = {"single-provider.json", "multi-provider.json", "legacy-config.json",
					    "default_config.json"};
	for (int i = 0; i < 4; i++) {
		char out[256], args[512];
		cli_run r = migrate(files[i], i == 1, out, sizeof out);
		if (r.status != 0 || !r.json)
			fail_msg("migrate %s: exit %d: %s %s", files[i], r.status, r.out, r.err);
		assert_int_equal(json_integer_value(json_object_get(r.json, "errors")), 0);
		/* the original's state is never silently left behind */
		assert_true(names(r.json, "storage", "not converted"));
		assert_true(names(r.json, "(root)", "storage"));
		/* what it wrote loads, strict: no unknown key carried over */
		snprintf(args, sizeof args, "--strict config validate %s/provisio.json", out);
		cli_run v = cli(NULL, args);
		if (v.status != 0)
			fail_msg("%s converted does not load: %s", files[i], v.err);
		assert_true(json_is_true(json_object_get(v.json, "valid")));
		cli_free(&v);
		char tpl[300];
		snprintf(tpl, sizeof tpl, "%s/awsprov_templates.json", out);
		assert_int_equal(access(tpl, R_OK) == 0, i == 1);
		assert_int_equal(json_array_size(json_object_get(r.json, "written")), i == 1 ? 2 : 1);
		cli_free(&r);
	}
}

static void test_multi_provider_keeps_its_providers_by_name_and_type(void **state)
{
	(void)state;
	char out[256], path[300];
	cli_run r = migrate("multi-provider.json", false, out, sizeof out);
	assert_int_equal(r.status, 0);
	cli_free(&r);
	snprintf(path, sizeof path, "%s/provisio.json", out);
	json_t *doc = json_load_file(path, 0, NULL);
	assert_non_null(doc);
	json_t *orig = json_load_file(PV_SOURCE_DIR "/tests/data/orb/multi-provider.json", 0, NULL);
	json_t *want = json_object_get(json_object_get(orig, "provider"), "providers");
	json_t *got = json_object_get(doc, "providers");
	assert_int_equal(json_array_size(got), json_array_size(want));
	for (size_t i = 0; i < json_array_size(want); i++) {
		json_t *w = json_array_get(want, i), *g = json_array_get(got, i);
		assert_string_equal(json_string_value(json_object_get(g, "name")),
				    json_string_value(json_object_get(w, "name")));
		assert_string_equal(json_string_value(json_object_get(g, "type")),
				    json_string_value(json_object_get(w, "type")));
		assert_null(json_object_get(g, "_config_at")); /* no loader bookkeeping */
	}
	json_decref(orig);
	json_decref(doc);
}

static void test_config_with_errors_writes_nothing_and_names_them(void **state)
{
	(void)state;
	char out[256], path[300];
	cli_run r = migrate("config.example.json", true, out, sizeof out);
	assert_int_equal(r.status, 1);
	assert_true(json_integer_value(json_object_get(r.json, "errors")) > 0);
	assert_true(names(r.json, "provider.providers[2].type", "'azure' is not a known provider type"));
	assert_int_equal(json_array_size(json_object_get(r.json, "written")), 0);
	snprintf(path, sizeof path, "%s/provisio.json", out);
	assert_int_not_equal(access(path, F_OK), 0);
	cli_free(&r);
	/* an unknown option is named, as on every command */
	r = cli(NULL, "migrate --from-orbit x");
	assert_int_equal(r.status, 2);
	assert_non_null(strstr(r.err, "migrate: unknown option '--from-orbit'"));
	cli_free(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_converted_configs_load_strictly_and_name_what_was_left),
		cmocka_unit_test(test_multi_provider_keeps_its_providers_by_name_and_type),
		cmocka_unit_test(test_config_with_errors_writes_nothing_and_names_them),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
