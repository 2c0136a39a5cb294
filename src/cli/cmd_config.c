/*
 * cmd_config.c - `provisio config validate|show`.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cli/cli.h"

static void help(FILE *f)
{
	fprintf(f,
		"usage: provisio config validate [FILE] [--format table|json] [--json]\n"
		"       provisio config show [--format table|json] [--json]\n"
		"\n"
		"validate  loads the file (with the --env overlay and ${VAR} expansion), checks every\n"
		"          block and builds every strategy without contacting any provider, then checks\n"
		"          the Host Factory templates file (found as the Host Factory commands find it)\n"
		"          as `templates validate` does: a field a provider refuses is an error naming the\n"
		"          template and the field, an unknown field a warning; prints {\"valid\", \"file\",\n"
		"          \"templates_file\", \"errors\", \"warnings\", \"diagnostics\"}; exits 1 when invalid.\n"
		"show      prints the effective configuration and the strategy graph built from it,\n"
		"          with secrets (api_key, secret_access_key, password, token, ...) redacted.\n"
		"Both print JSON; --format table prints one \"path value\" line a setting.\n"
		"\n"
		"examples:\n"
		"  provisio config validate config/provisio.json\n"
		"  provisio --env production config show\n"
		"  PROVIDER1_API_KEY=... provisio --strict config validate\n");
}

static const pv_cli_sub subs[] = {
	{"validate", NULL, true, PV_WORDS_FILE},
	{"show", NULL, true, PV_WORDS_NONE},
	{NULL, NULL, false, PV_WORDS_NONE},
};

const pv_cli_command_info pv_cli_info_config = {.usage = help, .subs = subs};

static int validate(const pv_cli *cli, const char *file, pv_cli_format format)
{
	pv_diags d;
	pv_diags_init(&d);
	pv_config_options o = {.path = file ? file : cli->config_path, .env_name = cli->env_name,
			       .strict = cli->strict};
	char *path = pv_config_find(o.path);
	pv_context *ctx = NULL;
	json_t *graph = NULL;
	char *templates = NULL;
	int rc = path ? pv_config_open(&o, &ctx, &graph, &d) : PV_ENOTFOUND;
	if (rc < 0 && !d.errors)
		pv_diags_add(&d, PV_DIAG_ERROR, "", "%s", pv_error_last());
	/* the templates Host Factory will be offered, checked by the providers
	 * that serve them (a template that can never run is an error here) */
	if (rc == 0 && (pv_broker_validate_templates_file(&o, ctx, graph, &d, &templates) < 0 || d.errors))
		rc = PV_EINVAL;
	json_decref(graph);
	pv_context_free(ctx);
	pv_cli_print_diags(&d);
	pv_cli_output(json_pack("{s:b, s:s?, s:s?, s:I, s:I, s:o}", "valid", rc == 0, "file", path, "templates_file",
				templates, "errors", (json_int_t)d.errors, "warnings", (json_int_t)(d.n - d.errors),
				"diagnostics", pv_diags_to_json(&d)), format, NULL);
	free(templates);
	free(path);
	pv_diags_clear(&d);
	return rc == 0 ? PV_EXIT_OK : PV_EXIT_FAIL;
}

static int show(const pv_cli *cli, pv_cli_format format)
{
	pv_diags d;
	pv_diags_init(&d);
	pv_config_options o = {.path = cli->config_path, .env_name = cli->env_name, .strict = cli->strict};
	json_t *doc = NULL;
	int rc = pv_config_load_file(&o, &doc, &d);
	json_t *graph = doc ? pv_config_normalize(doc, cli->strict, &d) : NULL;
	pv_cli_print_diags(&d);
	if (!doc) {
		pv_cli_error("%s", pv_error_last());
	} else {
		char *path = pv_config_find(o.path);
		json_t *out = json_object();
		json_object_set_new(out, "file", path ? json_string(path) : json_null());
		const char *env = cli->env_name ? cli->env_name : getenv("PROVISIO_ENV");
		json_object_set_new(out, "env", env && *env ? json_string(env) : json_null());
		json_object_set_new(out, "config", pv_config_redact(doc));
		json_object_set_new(out, "graph", graph ? pv_config_redact(graph) : json_null());
		pv_cli_output(out, format, NULL);
		free(path);
	}
	bool bad = rc < 0 || d.errors;
	json_decref(doc);
	json_decref(graph);
	pv_diags_clear(&d);
	return bad ? PV_EXIT_FAIL : PV_EXIT_OK;
}

int cmd_config(const pv_cli *cli, int argc, char **argv)
{
	if (argc < 2 || pv_cli_wants_help(argc, argv)) {
		help(argc < 2 ? stderr : stdout);
		return argc < 2 ? PV_EXIT_USAGE : PV_EXIT_OK;
	}
	const pv_cli_sub *sub = pv_cli_sub_find(&pv_cli_info_config, "config", argv[1]);
	if (!sub)
		return PV_EXIT_USAGE;
	bool is_validate = strcmp(sub->name, "validate") == 0;
	pv_cli_args a;
	if (pv_cli_parse(&a, is_validate ? "config validate" : "config show", sub->flags, sub->formats, PV_FORMAT_JSON, argc,
			 argv, 2) < 0 ||
	    pv_cli_words(&a, 0, is_validate, "") < 0) {
		pv_cli_args_clear(&a);
		return PV_EXIT_USAGE;
	}
	int rc = is_validate ? validate(cli, a.n_words ? a.words[0] : NULL, a.format) : show(cli, a.format);
	pv_cli_args_clear(&a);
	return rc;
}
