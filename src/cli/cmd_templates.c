/*
 * cmd_templates.c - `provisio templates list|show|validate`: the machine
 * templates, how many machines of each may still be requested, and whether
 * the strategy serving each takes every field (validate_template).
 */
#include <stdio.h>
#include <string.h>
#include "cli/cli.h"

int pv_cli_open_broker(const pv_cli *cli, pv_broker **out)
{
	pv_diags d;
	pv_diags_init(&d);
	pv_broker_open_options o = {.config = {.path = cli->config_path, .env_name = cli->env_name,
					       .strict = cli->strict}};
	int rc = pv_broker_open(out, &o, &d);
	pv_cli_print_diags(&d);
	if (rc < 0 && !d.errors)
		pv_cli_error("%s", pv_error_last());
	pv_diags_clear(&d);
	return rc;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: provisio templates list [--format table|json] [--json]\n"
		   "       provisio templates show TEMPLATE_ID [--format table|json] [--json]\n"
		   "       provisio templates validate [TEMPLATE_ID] [--dry-run]\n"
		   "\n"
		   "The templates Host Factory sees (from $HF_PROVIDER_CONFDIR or config/templates.json),\n"
		   "the strategy serving each (provider), and how many machines are still available\n"
		   "(availableNumber; -1: unlimited). --format json prints the document of\n"
		   "GET /api/v1/templates (list, default table) or /api/v1/templates/ID (show, default json).\n"
		   "validate asks the strategy serving each template to check its fields (validate_template):\n"
		   "every problem with the template id and the field, unknown fields as warnings; --dry-run\n"
		   "also asks the provider (a DryRun call on EC2). Exit 1 when a template is refused.\n"
		   "\n"
		   "examples:\n"
		   "  provisio templates list\n"
		   "  provisio templates list --json\n"
		   "  provisio templates show local-small\n"
		   "  provisio templates validate --dry-run\n");
}

static const pv_cli_flag validate_flags[] = {{"--dry-run", NULL, NULL}, {NULL, NULL, NULL}};

static const pv_cli_sub subs[] = {
	{"list", NULL, true, PV_WORDS_NONE},
	{"show", NULL, true, PV_WORDS_TEMPLATE},
	{"validate", validate_flags, false, PV_WORDS_TEMPLATE},
	{NULL, NULL, false, PV_WORDS_NONE},
};

const pv_cli_command_info pv_cli_info_templates = {.usage = usage, .subs = subs};

static const pv_cli_column columns[] = {
	{"TEMPLATE", "templateId", PV_COL_TEXT},  {"STRATEGY", "provider", PV_COL_TEXT},
	{"MAX", "maxNumber", PV_COL_TEXT},        {"AVAILABLE", "availableNumber", PV_COL_UNLIMITED},
	{"CPUS", "attributes.ncpus.1", PV_COL_TEXT}, {"RAM_MB", "attributes.nram.1", PV_COL_TEXT},
	{NULL, NULL, 0},
};

/* Prints a validate_template answer's problems, "  level field: message". */
static void print_problems(const json_t *problems)
{
	size_t i;
	json_t *p;
	json_array_foreach(problems, i, p)
		printf("  %s %s: %s\n", json_string_value(json_object_get(p, "level")),
		       json_string_value(json_object_get(p, "field")), json_string_value(json_object_get(p, "message")));
}

/* validate_template on the strategy of each template (or of `only`):
 * the number of templates refused. */
static int validate(pv_broker *b, const char *only, bool dry_run, size_t *checked)
{
	int refused = 0;
	size_t i;
	json_t *t;
	*checked = 0;
	json_array_foreach(pv_broker_templates(b), i, t) {
		const char *id = json_string_value(json_object_get(t, "templateId"));
		if (only && strcmp(only, id) != 0)
			continue;
		(*checked)++;
		char strategy[64] = "-";
		pv_broker_template_strategy(b, t, strategy, sizeof strategy);
		json_t *params = json_pack("{s:O, s:s, s:b}", "template", t, "template_id", id, "check_only", !dry_run);
		pv_operation op = {.type = PV_OP_VALIDATE_TEMPLATE, .params = params,
				   .deadline_ns = pv_now_ns() + 30 * PV_NS_PER_S};
		pv_result r = PV_RESULT_INIT;
		pv_context_execute_on(pv_broker_context(b), strategy, &op, &r);
		if (r.success) {
			printf("%-24s %-16s valid%s\n", id, strategy, dry_run ? " (dry run)" : "");
			print_problems(json_object_get(r.data, "problems"));
		} else if (strcmp(r.error_code, PV_ERR_OPERATION_NOT_SUPPORTED) == 0) {
			printf("%-24s %-16s not checked: the strategy has no validate_template\n", id, strategy);
		} else {
			refused++;
			printf("%-24s %-16s refused: %s\n", id, strategy, pv_result_message(&r));
			print_problems(json_object_get(pv_result_meta(&r), "problems"));
		}
		pv_result_clear(&r);
		json_decref(params);
	}
	return refused;
}

int cmd_templates(const pv_cli *cli, int argc, char **argv)
{
	if (argc < 2 || pv_cli_wants_help(argc, argv)) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? PV_EXIT_USAGE : PV_EXIT_OK;
	}
	const pv_cli_sub *sub = pv_cli_sub_find(&pv_cli_info_templates, "templates", argv[1]);
	if (!sub)
		return PV_EXIT_USAGE;
	bool show = strcmp(sub->name, "show") == 0;
	if (strcmp(sub->name, "validate") == 0) {
		pv_cli_args a;
		if (pv_cli_parse(&a, "templates validate", sub->flags, sub->formats, PV_FORMAT_TABLE, argc, argv, 2) < 0 ||
		    pv_cli_words(&a, 0, 1, "TEMPLATE_ID") < 0) {
			pv_cli_args_clear(&a);
			return PV_EXIT_USAGE;
		}
		bool dry_run = pv_cli_flag_set(&a, "--dry-run");
		const char *only = a.n_words ? a.words[0] : NULL;
		pv_broker *b;
		if (pv_cli_open_broker(cli, &b) < 0) {
			pv_cli_args_clear(&a);
			return PV_EXIT_FAIL;
		}
		size_t checked;
		int refused = validate(b, only, dry_run, &checked);
		if (only && !checked)
			pv_cli_error("no template '%s' in %s", only, pv_broker_templates_path(b));
		pv_broker_close(b);
		int rc = refused || (only && !checked) ? PV_EXIT_FAIL : PV_EXIT_OK;
		pv_cli_args_clear(&a);
		return rc;
	}
	pv_cli_args a;
	if (pv_cli_parse(&a, show ? "templates show" : "templates list", sub->flags, sub->formats,
			 show ? PV_FORMAT_JSON : PV_FORMAT_TABLE, argc, argv, 2) < 0 ||
	    pv_cli_words(&a, show, show, "TEMPLATE_ID") < 0) {
		pv_cli_args_clear(&a);
		return PV_EXIT_USAGE;
	}
	pv_broker *b;
	if (pv_cli_open_broker(cli, &b) < 0) {
		pv_cli_args_clear(&a);
		return PV_EXIT_FAIL;
	}
	int rc = PV_EXIT_OK;
	json_t *doc = NULL;
	pv_store_begin(pv_broker_store(b), false);
	if (!show) {
		json_t *list = json_array();
		size_t i;
		json_t *t;
		json_array_foreach(pv_broker_templates(b), i, t)
			json_array_append_new(list, pv_broker_template_json(b, t));
		doc = json_pack("{s:o}", "templates", list);
	} else {
		const json_t *t = pv_broker_template(b, a.words[0]);
		if (t)
			doc = pv_broker_template_json(b, t);
		else {
			pv_cli_error("no template '%s' in %s", a.words[0], pv_broker_templates_path(b));
			rc = PV_EXIT_FAIL;
		}
	}
	pv_store_commit(pv_broker_store(b));
	pv_cli_output(doc, a.format, show ? NULL : &(pv_cli_table){"templates", columns});
	pv_broker_close(b);
	pv_cli_args_clear(&a);
	return rc;
}
