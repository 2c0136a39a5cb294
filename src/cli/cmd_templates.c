/*
 * cmd_templates.c - `provisio templates list|show`: the machine templates
 * and how many machines of each may still be requested.
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
		   "\n"
		   "The templates Host Factory sees (from $HF_PROVIDER_CONFDIR or config/templates.json),\n"
		   "the strategy serving each (provider), and how many machines are still available\n"
		   "(availableNumber; -1: unlimited). --format json prints the document of\n"
		   "GET /api/v1/templates (list, default table) or /api/v1/templates/ID (show, default json).\n"
		   "\n"
		   "examples:\n"
		   "  provisio templates list\n"
		   "  provisio templates list --json\n"
		   "  provisio templates show local-small\n");
}

static const pv_cli_column columns[] = {
	{"TEMPLATE", "templateId", PV_COL_TEXT},  {"STRATEGY", "provider", PV_COL_TEXT},
	{"MAX", "maxNumber", PV_COL_TEXT},        {"AVAILABLE", "availableNumber", PV_COL_UNLIMITED},
	{"CPUS", "attributes.ncpus.1", PV_COL_TEXT}, {"RAM_MB", "attributes.nram.1", PV_COL_TEXT},
	{NULL, NULL, 0},
};

int cmd_templates(const pv_cli *cli, int argc, char **argv)
{
	if (argc < 2 || pv_cli_wants_help(argc, argv)) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? PV_EXIT_USAGE : PV_EXIT_OK;
	}
	bool show = strcmp(argv[1], "show") == 0;
	if (!show && strcmp(argv[1], "list") != 0) {
		pv_cli_error("templates: unknown subcommand '%s' (list, show)", argv[1]);
		return PV_EXIT_USAGE;
	}
	pv_cli_args a;
	if (pv_cli_parse(&a, show ? "templates show" : "templates list", NULL, true,
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
