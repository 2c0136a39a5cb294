/*
 * cmd_migrate.c - `provisio migrate --from-orb DIR`: the original project's
 * configuration directory (awsprov_config.json or config.json, and its
 * templates file) turned into a provisio.json, with a report naming each
 * thing that could not be converted (docs/migrate.md).
 *
 * The conversion is the loader's own: the legacy provider.providers[]
 * format is one provisio reads (config/normalize.c), so what migrate writes
 * is the explicit graph the loader builds from it, and what it reports is
 * every diagnostic of that normalisation. ${VAR} references are kept as
 * written, never expanded: a secret stays in the environment.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "cli/cli.h"

static void usage(FILE *f)
{
	fprintf(f, "usage: provisio migrate --from-orb DIR [--out DIR] [--force] [--format table|json] [--json]\n"
		   "\n"
		   "Reads the original project's config directory (awsprov_config.json, else config.json,\n"
		   "else default_config.json; and awsprov_templates.json or another *templates.json),\n"
		   "writes OUT/provisio.json (the strategy graph in provisio's explicit format) and a copy\n"
		   "of the templates file (read unchanged by provisio), and reports each setting it could\n"
		   "not convert, naming it. Prints the report (default table); exits 1 when the\n"
		   "configuration has errors (nothing is written then). --out defaults to the current\n"
		   "directory; an existing provisio.json is kept unless --force.\n"
		   "\n"
		   "examples:\n"
		   "  provisio migrate --from-orb /opt/symphony/hostfactory/conf/providers/awsinst --out /etc/provisio\n"
		   "  provisio migrate --from-orb ./config --json\n");
}

static const pv_cli_flag flags[] = {
	{"--from-orb", "DIR", NULL},
	{"--out", "DIR", NULL},
	{"--force", NULL, NULL},
	{NULL, NULL, NULL},
};

const pv_cli_command_info pv_cli_info_migrate = {.usage = usage, .flags = flags, .formats = true};

/* The first of `names` present in `dir` (caller frees), or NULL. */
static char *first_in(const char *dir, const char *const *names)
{
	for (const char *const *n = names; *n; n++) {
		char path[4096];
		snprintf(path, sizeof path, "%s/%s", dir, *n);
		if (access(path, R_OK) == 0)
			return strdup(path);
	}
	return NULL;
}

/* "_at", "_config_at" mark where an item came from in the user's file:
 * the loader's bookkeeping, not for output. */
static void strip_origins(json_t *v)
{
	if (json_is_object(v)) {
		const char *k;
		json_t *x;
		void *tmp;
		json_object_foreach_safe(v, tmp, k, x) {
			if (k[0] == '_')
				json_object_del(v, k);
			else
				strip_origins(x);
		}
	} else if (json_is_array(v)) {
		size_t i;
		json_t *x;
		json_array_foreach(v, i, x)
			strip_origins(x);
	}
}

static int copy_file(const char *from, const char *to)
{
	FILE *in = fopen(from, "rb"), *out = in ? fopen(to, "wb") : NULL;
	char buf[65536];
	size_t n;
	int rc = in && out ? 0 : -1;
	while (rc == 0 && (n = fread(buf, 1, sizeof buf, in)) > 0)
		rc = fwrite(buf, 1, n, out) == n ? 0 : -1;
	if (in)
		fclose(in);
	if (out && fclose(out) != 0)
		rc = -1;
	return rc;
}

static const pv_cli_column columns[] = {
	{"LEVEL", "level", PV_COL_TEXT},
	{"SETTING", "path", PV_COL_TEXT},
	{"WHY NOT CONVERTED", "message", PV_COL_TEXT},
	{NULL, NULL, 0},
};

static int migrate(const char *from, const char *out_dir, bool force, pv_cli_format format)
{
	static const char *const configs[] = {"awsprov_config.json", "config.json", "default_config.json", NULL};
	static const char *const templates[] = {"awsprov_templates.json", "templates.json", NULL};
	char *cfg = first_in(from, configs), *tpl = first_in(from, templates);
	if (!cfg) {
		pv_cli_error("migrate: no awsprov_config.json, config.json or default_config.json in %s", from);
		free(tpl);
		return PV_EXIT_FAIL;
	}
	json_error_t e;
	json_t *doc = json_load_file(cfg, 0, &e);
	if (!doc) {
		pv_cli_error("migrate: %s: not valid JSON: %s (line %d)", cfg, e.text, e.line);
		free(cfg);
		free(tpl);
		return PV_EXIT_FAIL;
	}
	pv_diags d;
	pv_diags_init(&d);
	json_t *graph = pv_config_normalize(doc, false, &d);
	/* what the original keeps outside the strategy graph, and where it goes */
	static const char *const moved[][2] = {
		{"storage", "the original's request state (its JSON/SQL files) is not converted: let running "
			    "requests finish or return their machines first; provisio keeps state in its store "
			    "(docs/store.md)"},
		{"logging", "not converted: Host Factory calls log to $HF_PROVIDER_LOGDIR/provisio.log "
			    "(PROVISIO_HF_LOG_MAX_BYTES, PROVISIO_HF_LOG_KEEP), serve to server.logging"},
		{"template", "template defaults are not converted: write them into each template of the "
			     "templates file"},
		{"scheduler", "not converted: register provisio with Host Factory as docs/hostfactory.md says"},
		{"server", "not converted: provisio serve's settings are the server block (docs/serve.md)"},
	};
	for (size_t i = 0; i < sizeof moved / sizeof moved[0]; i++)
		if (json_object_get(doc, moved[i][0]))
			pv_diags_add(&d, PV_DIAG_WARNING, moved[i][0], "%s", moved[i][1]);
	json_t *report = json_object();
	json_object_set_new(report, "from", json_string(from));
	json_object_set_new(report, "config", json_string(cfg));
	json_object_set_new(report, "templates", tpl ? json_string(tpl) : json_null());
	json_t *written = json_array();
	int rc = PV_EXIT_OK;
	char path[4096];
	snprintf(path, sizeof path, "%s/provisio.json", out_dir);
	if (!graph || d.errors) {
		rc = PV_EXIT_FAIL;
	} else if (!force && access(path, F_OK) == 0) {
		pv_diags_add(&d, PV_DIAG_ERROR, path, "exists: kept (use --force to replace it)");
		rc = PV_EXIT_FAIL;
	} else {
		strip_origins(graph);
		if (json_dump_file(graph, path, JSON_INDENT(2) | JSON_PRESERVE_ORDER) < 0) {
			pv_diags_add(&d, PV_DIAG_ERROR, path, "cannot write: %s", strerror(errno));
			rc = PV_EXIT_FAIL;
		} else {
			json_array_append_new(written, json_string(path));
		}
	}
	if (rc == PV_EXIT_OK && tpl) {
		const char *base = strrchr(tpl, '/') + 1;
		snprintf(path, sizeof path, "%s/%s", out_dir, base);
		char *a = realpath(tpl, NULL), *b = realpath(path, NULL);
		bool same = a && b && strcmp(a, b) == 0;
		free(a);
		free(b);
		if (!same && copy_file(tpl, path) < 0) {
			pv_diags_add(&d, PV_DIAG_ERROR, path, "cannot copy the templates: %s", strerror(errno));
			rc = PV_EXIT_FAIL;
		} else {
			json_array_append_new(written, json_string(path));
		}
	} else if (!tpl) {
		pv_diags_add(&d, PV_DIAG_WARNING, from, "no awsprov_templates.json or templates.json: write the "
			     "templates file yourself (docs/hostfactory.md)");
	}
	json_object_set_new(report, "written", written);
	json_object_set_new(report, "errors", json_integer((json_int_t)d.errors));
	json_object_set_new(report, "not_converted", pv_diags_to_json(&d));
	if (format == PV_FORMAT_TABLE) {
		printf("from %s: %s%s%s\n", from, cfg, tpl ? ", " : "", tpl ? tpl : "");
		size_t i;
		json_t *w;
		json_array_foreach(written, i, w)
			printf("wrote %s\n", json_string_value(w));
		if (rc != PV_EXIT_OK)
			printf("nothing written: %zu error(s) below\n", d.errors);
		pv_cli_output(json_incref(json_object_get(report, "not_converted")), format,
			      &(pv_cli_table){NULL, columns});
		json_decref(report);
	} else {
		pv_cli_output(report, format, NULL);
	}
	pv_diags_clear(&d);
	json_decref(graph);
	json_decref(doc);
	free(cfg);
	free(tpl);
	return rc;
}

int cmd_migrate(const pv_cli *cli, int argc, char **argv)
{
	(void)cli;
	if (pv_cli_wants_help(argc, argv)) {
		usage(stdout);
		return PV_EXIT_OK;
	}
	pv_cli_args a;
	if (pv_cli_parse(&a, "migrate", pv_cli_info_migrate.flags, pv_cli_info_migrate.formats, PV_FORMAT_TABLE, argc, argv, 1) < 0 ||
	    pv_cli_words(&a, 0, 0, "") < 0) {
		pv_cli_args_clear(&a);
		return PV_EXIT_USAGE;
	}
	const char *from = pv_cli_arg(&a, "--from-orb");
	if (!from) {
		pv_cli_error("migrate: name the original project's config directory with --from-orb DIR");
		pv_cli_args_clear(&a);
		return PV_EXIT_USAGE;
	}
	const char *out = pv_cli_arg(&a, "--out");
	int rc = migrate(from, out ? out : ".", pv_cli_flag_set(&a, "--force"), a.format);
	pv_cli_args_clear(&a);
	return rc;
}
