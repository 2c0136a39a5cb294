/*
 * test_server_metrics.c - what `provisio serve` tells monitoring: its
 * OpenAPI document at /openapi.json (the docs' one: docs/openapi.yaml as
 * converted at build time), and /metrics read by a parser of the
 * Prometheus text format 0.0.4: every sample's family has HELP and TYPE
 * before it, names and labels are valid, counters end in _total, the
 * standard process_* metrics are there, ratios are 0..1.
 */
#include <ctype.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include "test_server_support.h"
#include "wait.h"

static void openapi_json_is_the_docs_document(void **state)
{
	ts_env *e = *state;
	ts_resp r = ts_call(e, "GET", "/openapi.json", NULL, NULL, NULL); /* no token needed */
	assert_int_equal(r.status, 200);
	assert_non_null(strstr(r.headers, "application/json"));
	assert_non_null(r.body);
	json_error_t err;
	json_t *docs = json_load_file(PV_OPENAPI_JSON, 0, &err);
	if (!docs)
		fail_msg("%s: %s", PV_OPENAPI_JSON, err.text);
	assert_true(json_equal(r.body, docs));
	json_t *paths = json_object_get(r.body, "paths");
	assert_non_null(json_object_get(paths, "/openapi.json"));
	assert_non_null(json_object_get(paths, "/api/v1/requests"));
	assert_string_equal(json_string_value(json_object_get(r.body, "openapi")), "3.0.3");
	json_decref(docs);
	ts_resp_clear(&r);
}

/* ---- a parser of the text exposition format ---- */

typedef struct family {
	char name[128], type[16];
	bool help;
} family;

typedef struct exposition {
	family fams[256];
	size_t n;
} exposition;

static bool valid_name(const char *s, size_t n)
{
	if (!n || !(isalpha((unsigned char)s[0]) || s[0] == '_' || s[0] == ':'))
		return false;
	for (size_t i = 1; i < n; i++)
		if (!(isalnum((unsigned char)s[i]) || s[i] == '_' || s[i] == ':'))
			return false;
	return true;
}

static family *find_family(exposition *x, const char *name)
{
	for (size_t i = 0; i < x->n; i++)
		if (strcmp(x->fams[i].name, name) == 0)
			return &x->fams[i];
	return NULL;
}

/* The family a sample belongs to: histograms' _bucket/_sum/_count. */
static family *family_of(exposition *x, const char *sample)
{
	family *f = find_family(x, sample);
	if (f)
		return f;
	static const char *const suffixes[] = {"_bucket", "_sum", "_count"};
	for (int i = 0; i < 3; i++) {
		size_t n = strlen(sample), k = strlen(suffixes[i]);
		if (n > k && strcmp(sample + n - k, suffixes[i]) == 0) {
			char base[128];
			snprintf(base, sizeof base, "%.*s", (int)(n - k), sample);
			f = find_family(x, base);
			if (f && strcmp(f->type, "histogram") == 0)
				return f;
		}
	}
	return NULL;
}

/* Parses `text`; fails the test at the first line that breaks the format.
 * Writes each sample's value by name (the first of a name) into `values`. */
static void parse(const char *text, exposition *x, json_t *values)
{
	char *copy = strdup(text), *save = NULL;
	int lineno = 0;
	for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		lineno++;
		if (line[0] == '#') {
			char kind[8], name[128];
			int used = 0;
			if (sscanf(line, "# %7s %127s %n", kind, name, &used) < 2)
				fail_msg("line %d: bad comment: %s", lineno, line);
			if (!valid_name(name, strlen(name)))
				fail_msg("line %d: invalid metric name '%s'", lineno, name);
			family *f = find_family(x, name);
			if (!f) {
				assert_true(x->n < 256);
				f = &x->fams[x->n++];
				snprintf(f->name, sizeof f->name, "%s", name);
			}
			if (strcmp(kind, "HELP") == 0) {
				if (f->help)
					fail_msg("line %d: second HELP for %s", lineno, name);
				if (!line[used])
					fail_msg("line %d: empty HELP for %s", lineno, name);
				f->help = true;
			} else if (strcmp(kind, "TYPE") == 0) {
				if (f->type[0])
					fail_msg("line %d: second TYPE for %s", lineno, name);
				const char *t = line + used;
				if (strcmp(t, "counter") && strcmp(t, "gauge") && strcmp(t, "histogram") &&
				    strcmp(t, "summary") && strcmp(t, "untyped"))
					fail_msg("line %d: unknown TYPE '%s'", lineno, t);
				snprintf(f->type, sizeof f->type, "%s", t);
				if (strcmp(t, "counter") == 0 && (strlen(name) < 6 || strcmp(name + strlen(name) - 6, "_total")))
					fail_msg("line %d: counter %s does not end in _total", lineno, name);
			}
			continue;
		}
		size_t n = strcspn(line, "{ ");
		char name[128];
		snprintf(name, sizeof name, "%.*s", (int)n, line);
		if (!valid_name(name, n))
			fail_msg("line %d: invalid sample name: %s", lineno, line);
		family *f = family_of(x, name);
		if (!f || !f->help || !f->type[0])
			fail_msg("line %d: %s has no HELP and TYPE before it", lineno, name);
		const char *p = line + n;
		if (*p == '{') { /* name="value" pairs, escaped \\ \" \n */
			p++;
			while (*p != '}') {
				size_t k = strcspn(p, "=");
				if (!valid_name(p, k) || p[k] != '=' || p[k + 1] != '"')
					fail_msg("line %d: bad label: %s", lineno, line);
				p += k + 2;
				while (*p && *p != '"')
					p += *p == '\\' ? 2 : 1;
				if (*p != '"')
					fail_msg("line %d: unterminated label value: %s", lineno, line);
				p++;
				if (*p == ',')
					p++;
				else if (*p != '}')
					fail_msg("line %d: bad label list: %s", lineno, line);
			}
			p++;
		}
		if (*p != ' ')
			fail_msg("line %d: no value: %s", lineno, line);
		char *end;
		double v = strtod(p + 1, &end);
		if (end == p + 1 || (*end && *end != ' '))
			fail_msg("line %d: bad value: %s", lineno, line);
		if (!json_object_get(values, name))
			json_object_set_new(values, name, json_real(v));
	}
	free(copy);
}

static void metrics_follow_the_exposition_format_and_conventions(void **state)
{
	ts_env *e = *state;
	/* some operations, so the strategies have a success ratio */
	ts_resp r = ts_call(e, "POST", "/api/v1/requests", ADMIN_TOKEN, "{\"template_id\": \"t1\", \"count\": 1}", NULL);
	assert_int_equal(r.status, 202);
	ts_resp_clear(&r);
	r = ts_call(e, "GET", "/metrics", READ_TOKEN, NULL, NULL);
	assert_int_equal(r.status, 200);
	exposition *x = calloc(1, sizeof *x);
	json_t *values = json_object();
	parse(r.raw, x, values);
	for (size_t i = 0; i < x->n; i++)
		if (!x->fams[i].help || !x->fams[i].type[0])
			fail_msg("%s lacks HELP or TYPE", x->fams[i].name);
	static const char *const standard[] = {"process_start_time_seconds", "process_cpu_seconds_total",
					       "process_resident_memory_bytes", "process_open_fds",
					       "process_max_fds"};
	for (int i = 0; i < 5; i++)
		if (!json_object_get(values, standard[i]))
			fail_msg("no %s", standard[i]);
	double start = json_real_value(json_object_get(values, "process_start_time_seconds"));
	double now = (double)pv_wall_ms() / 1e3;
	assert_true(start > now - 3600 && start <= now + 1); /* epoch seconds, not ms or uptime */
	assert_true(json_real_value(json_object_get(values, "process_resident_memory_bytes")) > 1e6);
	assert_true(json_real_value(json_object_get(values, "process_open_fds")) >= 3);
	/* ratios 0..1, never percents; no family in milliseconds or percent */
	json_t *ratio = json_object_get(values, "provisio_strategy_success_ratio");
	assert_non_null(ratio);
	assert_true(json_real_value(ratio) >= 0 && json_real_value(ratio) <= 1);
	for (size_t i = 0; i < x->n; i++) {
		const char *nm = x->fams[i].name;
		size_t len = strlen(nm);
		bool ends_ms = len > 3 && strcmp(nm + len - 3, "_ms") == 0;
		bool ends_rate = len > 5 && strcmp(nm + len - 5, "_rate") == 0;
		if (ends_ms || ends_rate || strstr(nm, "_ms_") || strstr(nm, "percent"))
			fail_msg("%s: not in base units (seconds, bytes, ratio)", nm);
	}
	json_decref(values);
	free(x);
	ts_resp_clear(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(openapi_json_is_the_docs_document, ts_setup_default, ts_teardown),
		cmocka_unit_test_setup_teardown(metrics_follow_the_exposition_format_and_conventions, ts_setup_default, ts_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
