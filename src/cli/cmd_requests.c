/*
 * cmd_requests.c - `provisio requests list|show|status`: what was asked,
 * and where each request stands.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "cli/cli.h"

static void usage(FILE *f)
{
	fprintf(f, "usage: provisio requests list [--state STATE] [--limit N]\n"
		   "       provisio requests show REQUEST_ID     (the Host Factory view, JSON)\n"
		   "       provisio requests status REQUEST_ID   (one line)\n"
		   "\n"
		   "STATE: queued, creating, running, complete, complete_with_error, failed.\n"
		   "\n"
		   "examples:\n"
		   "  provisio requests list --state running\n"
		   "  provisio requests show req-8c1f...\n");
}

static int list(pv_broker *b, int argc, char **argv)
{
	int state = -1;
	size_t limit = 50;
	for (int i = 2; i < argc; i++) {
		pv_request_state s;
		if (strcmp(argv[i], "--state") == 0 && i + 1 < argc) {
			if (pv_request_state_parse(argv[++i], &s) < 0) {
				pv_cli_error("%s", pv_error_last());
				return PV_EXIT_USAGE;
			}
			state = (int)s;
		} else if (strcmp(argv[i], "--limit") == 0 && i + 1 < argc) {
			limit = (size_t)strtoul(argv[++i], NULL, 10);
		} else {
			usage(stderr);
			return PV_EXIT_USAGE;
		}
	}
	pv_request_rec *rs = NULL;
	size_t n = 0;
	pv_store *st = pv_broker_store(b);
	if (pv_store_begin(st, false) < 0 || pv_store_request_list(st, state, limit, &rs, &n) < 0) {
		pv_store_rollback(st);
		pv_cli_error("%s", pv_error_last());
		return PV_EXIT_FAIL;
	}
	pv_store_commit(st);
	printf("%-40s %-7s %-20s %-20s %5s  %s\n", "REQUEST", "KIND", "STATE", "TEMPLATE", "COUNT", "CREATED");
	for (size_t i = 0; i < n; i++) {
		time_t t = (time_t)(rs[i].created_ms / 1000);
		struct tm tm;
		char when[32];
		strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", localtime_r(&t, &tm));
		printf("%-40s %-7s %-20s %-20s %5lld  %s\n", rs[i].id, pv_request_kind_name(rs[i].kind),
		       pv_request_state_name(rs[i].state), rs[i].template_id[0] ? rs[i].template_id : "-",
		       (long long)rs[i].requested, when);
	}
	free(rs);
	return PV_EXIT_OK;
}

int cmd_requests(const pv_cli *cli, int argc, char **argv)
{
	if (argc < 2 || pv_cli_wants_help(argc, argv)) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? PV_EXIT_USAGE : PV_EXIT_OK;
	}
	const char *sub = argv[1];
	bool is_list = strcmp(sub, "list") == 0;
	if (!is_list && strcmp(sub, "show") && strcmp(sub, "status")) {
		pv_cli_error("requests: unknown subcommand '%s' (list, show, status)", sub);
		return PV_EXIT_USAGE;
	}
	if (!is_list && argc != 3) {
		usage(stderr);
		return PV_EXIT_USAGE;
	}
	pv_broker *b;
	if (pv_cli_open_broker(cli, &b) < 0)
		return PV_EXIT_FAIL;
	int rc = PV_EXIT_OK;
	if (is_list) {
		rc = list(b, argc, argv);
	} else {
		pv_request_rec r;
		pv_machine_list ms = {0};
		if (pv_broker_request_status(b, argv[2], &r, &ms) < 0) {
			pv_cli_error("%s", pv_error_last());
			rc = PV_EXIT_FAIL;
		} else if (strcmp(sub, "status") == 0) {
			size_t ok = 0;
			for (size_t i = 0; i < ms.n; i++)
				ok += strcmp(ms.items[i].result, "succeed") == 0;
			printf("%s %s (%s) %zu/%lld machine(s) done%s%s\n", r.id, pv_request_state_name(r.state),
			       pv_broker_hf_status(r.state), ok, (long long)r.requested,
			       r.message[0] ? ": " : "", r.message);
		} else {
			json_t *machines = json_array();
			for (size_t i = 0; i < ms.n; i++)
				json_array_append_new(machines, pv_hf_machine_json(&ms.items[i]));
			pv_cli_print(json_pack("{s:s, s:s, s:s, s:s, s:s, s:I, s:s, s:o}", "requestId", r.id,
					       "kind", pv_request_kind_name(r.kind), "state",
					       pv_request_state_name(r.state), "status",
					       pv_broker_hf_status(r.state), "template", r.template_id,
					       "requested", (json_int_t)r.requested, "message", r.message,
					       "machines", machines));
		}
		pv_machine_list_clear(&ms);
	}
	pv_broker_close(b);
	return rc;
}
