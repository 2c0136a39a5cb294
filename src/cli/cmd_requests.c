/*
 * cmd_requests.c - `provisio requests list|show|status`: what was asked,
 * and where each request stands. The JSON is GET /api/v1/requests's.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "cli/cli.h"

static void usage(FILE *f)
{
	fprintf(f, "usage: provisio requests list [--status STATUS] [--limit N] [--format table|json] [--json]\n"
		   "       provisio requests show REQUEST_ID [--format table|json] [--json]\n"
		   "       provisio requests status REQUEST_ID [--format table|json] [--json]\n"
		   "\n"
		   "list    the newest requests (default table); --json prints GET /api/v1/requests's\n"
		   "        document. STATUS: running, complete, complete_with_error (Host Factory's\n"
		   "        status), or queued, creating, failed (the stored state); --state is a\n"
		   "        deprecated spelling of --status. N: 1..1000 (default 100), 0 for all.\n"
		   "show    one request and its machines (default json): GET /api/v1/requests/ID.\n"
		   "status  one line (default table); --json prints what show prints.\n"
		   "\n"
		   "examples:\n"
		   "  provisio requests list --status running\n"
		   "  provisio requests list --json --limit 10\n"
		   "  provisio requests show req-8c1f...\n");
}

static const pv_cli_flag list_flags[] = {
	{"--status", "STATUS", NULL},
	{"--limit", "N", NULL},
	{"--state", "STATUS", "--status"},
	{NULL, NULL, NULL},
};

static const pv_cli_sub subs[] = {
	{"list", list_flags, true, PV_WORDS_NONE},
	{"show", NULL, true, PV_WORDS_REQUEST},
	{"status", NULL, true, PV_WORDS_REQUEST},
	{NULL, NULL, false, PV_WORDS_NONE},
};

const pv_cli_command_info pv_cli_info_requests = {.usage = usage, .subs = subs};

static const pv_cli_column columns[] = {
	{"REQUEST", "request_id", PV_COL_TEXT}, {"KIND", "kind", PV_COL_TEXT},
	{"STATE", "state", PV_COL_TEXT},        {"TEMPLATE", "template_id", PV_COL_TEXT},
	{"COUNT", "count", PV_COL_TEXT},        {"CREATED", "created_at", PV_COL_TIME},
	{NULL, NULL, 0},
};

static int list(pv_broker *b, const pv_cli_args *a)
{
	const char *status = pv_cli_arg(a, "--status"), *lim = pv_cli_arg(a, "--limit");
	if (status && !pv_broker_status_filter_valid(status)) {
		pv_cli_error("requests list: --status '%s': valid: running, complete, complete_with_error, "
			     "queued, creating, failed", status);
		return PV_EXIT_USAGE;
	}
	char *end = NULL;
	long limit = lim ? strtol(lim, &end, 10) : 100;
	if (lim && (!*lim || *end || limit < 0 || limit > 1000)) {
		pv_cli_error("requests list: --limit '%s': an integer from 1 to 1000, or 0 for all", lim);
		return PV_EXIT_USAGE;
	}
	pv_request_rec *rs = NULL;
	size_t n = 0;
	pv_store *st = pv_broker_store(b);
	/* filtered after reading, as the server does: "running" spans two states */
	if (pv_store_begin(st, false) < 0 ||
	    pv_store_request_list(st, -1, status ? 0 : (size_t)limit, &rs, &n) < 0) {
		pv_store_rollback(st);
		pv_cli_error("%s", pv_error_last());
		return PV_EXIT_FAIL;
	}
	json_t *list = json_array();
	for (size_t i = 0; i < n && (limit == 0 || json_array_size(list) < (size_t)limit); i++) {
		if (!pv_broker_status_filter_matches(&rs[i], status))
			continue;
		pv_machine_list ms = {0};
		pv_store_machine_list(st, rs[i].kind == PV_REQ_ACQUIRE ? PV_MF_REQUEST : PV_MF_RETURN, rs[i].id,
				      &ms);
		json_array_append_new(list, pv_broker_request_json(&rs[i], &ms));
		pv_machine_list_clear(&ms);
	}
	pv_store_commit(st);
	free(rs);
	pv_cli_output(json_pack("{s:o}", "requests", list), a->format, &(pv_cli_table){"requests", columns});
	return PV_EXIT_OK;
}

int cmd_requests(const pv_cli *cli, int argc, char **argv)
{
	if (argc < 2 || pv_cli_wants_help(argc, argv)) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? PV_EXIT_USAGE : PV_EXIT_OK;
	}
	const pv_cli_sub *sub = pv_cli_sub_find(&pv_cli_info_requests, "requests", argv[1]);
	if (!sub)
		return PV_EXIT_USAGE;
	bool is_list = strcmp(sub->name, "list") == 0, is_status = strcmp(sub->name, "status") == 0;
	char command[32];
	snprintf(command, sizeof command, "requests %s", sub->name);
	pv_cli_args a;
	if (pv_cli_parse(&a, command, sub->flags, sub->formats,
			 is_list || is_status ? PV_FORMAT_TABLE : PV_FORMAT_JSON, argc, argv, 2) < 0 ||
	    pv_cli_words(&a, !is_list, !is_list, "REQUEST_ID") < 0) {
		pv_cli_args_clear(&a);
		return PV_EXIT_USAGE;
	}
	pv_broker *b;
	if (pv_cli_open_broker(cli, &b) < 0) {
		pv_cli_args_clear(&a);
		return PV_EXIT_FAIL;
	}
	int rc = PV_EXIT_OK;
	if (is_list) {
		rc = list(b, &a);
	} else {
		/* a status read refreshes from the providers: the daemon's, when one runs */
		pv_broker_choose_mode(b, command);
		pv_request_rec r;
		pv_machine_list ms = {0};
		if (pv_broker_request_status(b, a.words[0], &r, &ms) < 0) {
			pv_cli_error("%s", pv_error_last());
			rc = PV_EXIT_FAIL;
		} else if (is_status && a.format == PV_FORMAT_TABLE) {
			size_t ok = 0;
			for (size_t i = 0; i < ms.n; i++)
				ok += strcmp(ms.items[i].result, "succeed") == 0;
			printf("%s %s (%s) %zu/%lld machine(s) done%s%s\n", r.id, pv_request_state_name(r.state),
			       pv_broker_hf_status(r.state), ok, (long long)r.requested,
			       r.message[0] ? ": " : "", r.message);
		} else {
			pv_cli_output(pv_broker_request_json(&r, &ms), a.format, NULL);
		}
		pv_machine_list_clear(&ms);
	}
	pv_broker_close(b);
	pv_cli_args_clear(&a);
	return rc;
}
