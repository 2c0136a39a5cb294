/*
 * cmd_machines.c - `provisio machines request|list|return`: the Host
 * Factory cycle for people, with --wait and a progress bar on a terminal.
 *
 * Like the Host Factory commands, request and return leave the providers
 * to a live `provisio serve` on the same store (pv_broker_choose_mode): the
 * request is queued and the daemon does it; without one this process
 * calls the providers itself. The JSON printed is the REST API's document
 * for the same thing (POST /api/v1/requests, /returns, GET /machines).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "cli/cli.h"

static void usage(FILE *f)
{
	fprintf(f, "usage: provisio machines request TEMPLATE_ID COUNT [--wait] [--timeout SECONDS] [--json]\n"
		   "       provisio machines list [--all] [--state STATE] [--request-id ID]\n"
		   "                              [--format table|json] [--json]\n"
		   "       provisio machines return MACHINE_ID|NAME... [--wait] [--timeout SECONDS] [--json]\n"
		   "\n"
		   "request asks the template's strategy for COUNT machines; return terminates machines\n"
		   "through the provider that owns them. --wait follows the request until it is done.\n"
		   "Both print the request's document (as POST /api/v1/requests does; default json).\n"
		   "With `provisio serve` running on the same store they queue the work for it and\n"
		   "call no provider themselves.\n"
		   "list shows live machines (default table); --all, --state or --request-id read every\n"
		   "machine, as GET /api/v1/machines does. STATE: pending, running, stopping, stopped,\n"
		   "shutting-down, terminated.\n"
		   "\n"
		   "examples:\n"
		   "  provisio machines request local-small 3 --wait\n"
		   "  provisio machines list --state running --json\n"
		   "  provisio machines return local-1 local-2 --wait\n");
}

static const pv_cli_flag cycle_flags[] = {
	{"--wait", NULL, NULL},
	{"--timeout", "SECONDS", NULL},
	{NULL, NULL, NULL},
};

static const pv_cli_flag list_flags[] = {
	{"--all", NULL, NULL},
	{"--state", "STATE", NULL},
	{"--request-id", "ID", NULL},
	{NULL, NULL, NULL},
};

static void progress(const pv_request_rec *r, const pv_machine_list *ms, bool tty)
{
	size_t done = 0;
	for (size_t i = 0; i < ms->n; i++)
		done += strcmp(ms->items[i].result, "executing") != 0;
	size_t total = r->requested > 0 ? (size_t)r->requested : 1;
	if (!tty) {
		fprintf(stderr, "%s: %s %zu/%zu\n", r->id, pv_request_state_name(r->state), done, total);
		return;
	}
	int width = 30, fill = (int)(done * (size_t)width / total);
	fprintf(stderr, "\r%s [%.*s%*s] %zu/%zu %-20s", r->id, fill, "##############################",
		width - fill, "", done, total, pv_request_state_name(r->state));
}

/* Follows a request until it leaves running; prints its final view. */
static int wait_for(pv_broker *b, const char *id, double timeout, pv_cli_format format)
{
	bool tty = isatty(STDERR_FILENO);
	uint64_t end = pv_now_ns() + (uint64_t)(timeout * 1e9);
	for (;;) {
		pv_request_rec r;
		pv_machine_list ms = {0};
		if (pv_broker_request_status(b, id, &r, &ms) < 0) {
			pv_cli_error("%s", pv_error_last());
			return PV_EXIT_FAIL;
		}
		progress(&r, &ms, tty);
		bool done = pv_request_state_final(r.state);
		if (done || pv_now_ns() >= end) {
			if (tty)
				fputc('\n', stderr);
			pv_cli_output(pv_broker_request_json(&r, &ms), format, NULL);
			pv_machine_list_clear(&ms);
			if (!done)
				pv_cli_error("%s is still running after %.0f s", id, timeout);
			return done && r.state == PV_REQ_COMPLETE ? PV_EXIT_OK : PV_EXIT_FAIL;
		}
		pv_machine_list_clear(&ms);
		usleep(500 * 1000);
	}
}

/* The request as stored, without asking anyone: what POST answers. */
static int print_stored(pv_broker *b, const char *id, pv_cli_format format)
{
	pv_store *st = pv_broker_store(b);
	pv_request_rec r;
	pv_machine_list ms = {0};
	int rc = pv_store_begin(st, false);
	if (rc == 0) {
		rc = pv_store_request_get(st, id, &r);
		if (rc == 0)
			rc = pv_store_machine_list(st, r.kind == PV_REQ_ACQUIRE ? PV_MF_REQUEST : PV_MF_RETURN, id,
						   &ms);
		pv_store_commit(st);
	}
	if (rc < 0) {
		/* the request is made: its id must reach the person anyway */
		pv_cli_error("%s made, but cannot be read back: %s", id, pv_error_last());
		pv_cli_print(json_pack("{s:s}", "request_id", id));
	} else {
		pv_cli_output(pv_broker_request_json(&r, &ms), format, NULL);
	}
	pv_machine_list_clear(&ms);
	return rc;
}

static int timeout_of(const pv_cli_args *a, double *out)
{
	const char *t = pv_cli_arg(a, "--timeout");
	char *end = NULL;
	*out = t ? strtod(t, &end) : 300;
	if (t && (!*t || *end || *out <= 0 || *out > 86400)) {
		pv_cli_error("%s: --timeout '%s': seconds, more than 0 and at most 86400", a->command, t);
		return -1;
	}
	return 0;
}

static int request(pv_broker *b, const pv_cli_args *a)
{
	double timeout;
	if (pv_cli_words(a, 2, 2, "TEMPLATE_ID COUNT") < 0 || timeout_of(a, &timeout) < 0)
		return PV_EXIT_USAGE;
	char *end;
	long long count = strtoll(a->words[1], &end, 10);
	if (!*a->words[1] || *end) {
		pv_cli_error("machines request: COUNT '%s' is not an integer", a->words[1]);
		return PV_EXIT_USAGE;
	}
	pv_broker_choose_mode(b, "machines request");
	char id[PV_STORE_SHORT_MAX];
	if (pv_broker_request_machines(b, a->words[0], count, id) < 0) {
		pv_cli_error("%s", pv_error_last());
		return PV_EXIT_FAIL;
	}
	if (pv_cli_flag_set(a, "--wait"))
		return wait_for(b, id, timeout, a->format);
	print_stored(b, id, a->format);
	/* printed: the id is the person's now (else its machines are reclaimed) */
	if (fflush(stdout) == 0 && pv_broker_request_delivered(b, id) < 0)
		pv_cli_error("%s", pv_error_last());
	return PV_EXIT_OK;
}

static int give_back(pv_broker *b, const pv_cli_args *a)
{
	double timeout;
	if (pv_cli_words(a, 1, a->n_words, "MACHINE_ID|NAME") < 0 || timeout_of(a, &timeout) < 0)
		return PV_EXIT_USAGE;
	/* as many references as words: no cap on what a person may return */
	pv_machine_ref *refs = calloc(a->n_words, sizeof *refs);
	if (!refs) {
		pv_cli_error("out of memory");
		return PV_EXIT_FAIL;
	}
	pv_broker_choose_mode(b, "machines return");
	/* a word may be a machine id or a host name */
	pv_store *st = pv_broker_store(b);
	pv_store_begin(st, false);
	for (size_t i = 0; i < a->n_words; i++) {
		pv_machine_rec m;
		if (pv_store_machine_get(st, a->words[i], NULL, &m) == PV_ENOTFOUND)
			refs[i] = (pv_machine_ref){NULL, a->words[i]};
		else
			refs[i] = (pv_machine_ref){a->words[i], NULL};
	}
	pv_store_commit(st);
	char id[PV_STORE_SHORT_MAX];
	int rc = pv_broker_return_machines(b, refs, a->n_words, id);
	free(refs);
	if (rc < 0) {
		pv_cli_error("%s", pv_error_last());
		return PV_EXIT_FAIL;
	}
	if (pv_cli_flag_set(a, "--wait"))
		return wait_for(b, id, timeout, a->format);
	print_stored(b, id, a->format);
	return PV_EXIT_OK;
}

static const pv_cli_column columns[] = {
	{"MACHINE", "machine_id", PV_COL_TEXT}, {"NAME", "name", PV_COL_TEXT},
	{"STATE", "state", PV_COL_TEXT},        {"RESULT", "result", PV_COL_TEXT},
	{"PROVIDER", "provider", PV_COL_TEXT},  {"TEMPLATE", "template_id", PV_COL_TEXT},
	{"IP", "private_ip", PV_COL_TEXT},      {NULL, NULL, 0},
};

static int list(pv_broker *b, const pv_cli_args *a)
{
	const char *state = pv_cli_arg(a, "--state"), *req = pv_cli_arg(a, "--request-id");
	if (pv_cli_words(a, 0, 0, "") < 0)
		return PV_EXIT_USAGE;
	if (state && !pv_broker_machine_state_valid(state)) {
		pv_cli_error("machines list: --state '%s': valid: pending, running, stopping, stopped, "
			     "shutting-down, terminated", state);
		return PV_EXIT_USAGE;
	}
	bool all = pv_cli_flag_set(a, "--all") || state || req;
	pv_machine_list ms = {0};
	pv_store *st = pv_broker_store(b);
	pv_store_begin(st, false);
	int rc = req ? pv_store_machine_list(st, PV_MF_REQUEST, req, &ms)
		     : pv_store_machine_list(st, all ? PV_MF_ALL : PV_MF_ALIVE, NULL, &ms);
	pv_store_commit(st);
	if (rc < 0) {
		pv_machine_list_clear(&ms);
		pv_cli_error("%s", pv_error_last());
		return PV_EXIT_FAIL;
	}
	json_t *list = json_array();
	for (size_t i = 0; i < ms.n; i++)
		if (!state || strcmp(ms.items[i].status, state) == 0)
			json_array_append_new(list, pv_broker_machine_json(&ms.items[i]));
	pv_machine_list_clear(&ms);
	pv_cli_output(json_pack("{s:o}", "machines", list), a->format, &(pv_cli_table){"machines", columns});
	return PV_EXIT_OK;
}

static const pv_cli_sub subs[] = {
	{"request", cycle_flags, true, PV_WORDS_TEMPLATE},
	{"list", list_flags, true, PV_WORDS_NONE},
	{"return", cycle_flags, true, PV_WORDS_MACHINE},
	{NULL, NULL, false, PV_WORDS_NONE},
};

const pv_cli_command_info pv_cli_info_machines = {.usage = usage, .subs = subs};

int cmd_machines(const pv_cli *cli, int argc, char **argv)
{
	if (argc < 2 || pv_cli_wants_help(argc, argv)) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? PV_EXIT_USAGE : PV_EXIT_OK;
	}
	const pv_cli_sub *sub = pv_cli_sub_find(&pv_cli_info_machines, "machines", argv[1]);
	if (!sub)
		return PV_EXIT_USAGE;
	bool is_list = strcmp(sub->name, "list") == 0;
	int (*run)(pv_broker *, const pv_cli_args *) = is_list ? list
						      : strcmp(sub->name, "request") == 0 ? request : give_back;
	char command[32];
	snprintf(command, sizeof command, "machines %s", sub->name);
	pv_cli_args a;
	if (pv_cli_parse(&a, command, sub->flags, sub->formats, is_list ? PV_FORMAT_TABLE : PV_FORMAT_JSON, argc,
			 argv, 2) < 0) {
		pv_cli_args_clear(&a);
		return PV_EXIT_USAGE;
	}
	pv_broker *b;
	if (pv_cli_open_broker(cli, &b) < 0) {
		pv_cli_args_clear(&a);
		return PV_EXIT_FAIL;
	}
	int rc = run(b, &a);
	pv_broker_close(b);
	pv_cli_args_clear(&a);
	return rc;
}
