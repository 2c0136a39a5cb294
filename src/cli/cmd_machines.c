/*
 * cmd_machines.c - `provisio machines request|list|return`: the Host
 * Factory cycle for people, with --wait and a progress bar on a terminal.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "cli/cli.h"

static void usage(FILE *f)
{
	fprintf(f, "usage: provisio machines request TEMPLATE_ID COUNT [--wait] [--timeout SECONDS]\n"
		   "       provisio machines list [--all]\n"
		   "       provisio machines return MACHINE_ID|NAME... [--wait] [--timeout SECONDS]\n"
		   "\n"
		   "request asks the template's strategy for COUNT machines; return terminates machines\n"
		   "through the provider that owns them. --wait follows the request until it is done.\n"
		   "\n"
		   "examples:\n"
		   "  provisio machines request local-small 3 --wait\n"
		   "  provisio machines list\n"
		   "  provisio machines return local-1 local-2 --wait\n");
}

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
static int wait_for(pv_broker *b, const char *id, double timeout)
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
			json_t *machines = json_array();
			for (size_t i = 0; i < ms.n; i++)
				json_array_append_new(machines, pv_hf_machine_json(&ms.items[i]));
			pv_cli_print(json_pack("{s:s, s:s, s:s, s:o}", "requestId", r.id, "status",
					       pv_broker_hf_status(r.state), "message", r.message,
					       "machines", machines));
			pv_machine_list_clear(&ms);
			if (!done)
				pv_cli_error("%s is still running after %.0f s", id, timeout);
			return done && r.state == PV_REQ_COMPLETE ? PV_EXIT_OK : PV_EXIT_FAIL;
		}
		pv_machine_list_clear(&ms);
		usleep(500 * 1000);
	}
}

static int opts(int argc, char **argv, int first, bool *wait, double *timeout, bool *all)
{
	for (int i = first; i < argc; i++) {
		if (strcmp(argv[i], "--wait") == 0)
			*wait = true;
		else if (strcmp(argv[i], "--all") == 0 && all)
			*all = true;
		else if (strcmp(argv[i], "--timeout") == 0 && i + 1 < argc)
			*timeout = atof(argv[++i]);
		else if (argv[i][0] == '-')
			return -1;
	}
	return 0;
}

static int request(pv_broker *b, int argc, char **argv)
{
	bool wait = false;
	double timeout = 300;
	char *end;
	long long count = argc >= 4 ? strtoll(argv[3], &end, 10) : 0;
	if (argc < 4 || *end || opts(argc, argv, 4, &wait, &timeout, NULL) < 0) {
		usage(stderr);
		return PV_EXIT_USAGE;
	}
	char id[PV_STORE_SHORT_MAX];
	if (pv_broker_request_machines(b, argv[2], count, id) < 0) {
		pv_cli_error("%s", pv_error_last());
		return PV_EXIT_FAIL;
	}
	if (wait)
		return wait_for(b, id, timeout);
	pv_cli_print(json_pack("{s:s}", "requestId", id));
	/* printed: the id is the person's now (else its machines are reclaimed) */
	if (fflush(stdout) == 0 && pv_broker_request_delivered(b, id) < 0)
		pv_cli_error("%s", pv_error_last());
	return PV_EXIT_OK;
}

static int give_back(pv_broker *b, int argc, char **argv)
{
	bool wait = false;
	double timeout = 300;
	if (opts(argc, argv, 2, &wait, &timeout, NULL) < 0) {
		usage(stderr);
		return PV_EXIT_USAGE;
	}
	/* as many references as words: no cap on what a person may return */
	pv_machine_ref *refs = calloc((size_t)argc, sizeof *refs);
	size_t n = 0;
	if (!refs) {
		pv_cli_error("out of memory");
		return PV_EXIT_FAIL;
	}
	for (int i = 2; i < argc; i++) {
		if (strcmp(argv[i], "--timeout") == 0)
			i++;
		else if (argv[i][0] != '-')
			refs[n++] = (pv_machine_ref){argv[i], NULL};
	}
	/* a word may be a machine id or a host name */
	for (size_t i = 0; i < n; i++) {
		pv_machine_rec m;
		if (pv_store_machine_get(pv_broker_store(b), refs[i].machine_id, NULL, &m) == PV_ENOTFOUND)
			refs[i] = (pv_machine_ref){NULL, refs[i].machine_id};
	}
	char id[PV_STORE_SHORT_MAX];
	int rc = pv_broker_return_machines(b, refs, n, id);
	free(refs);
	if (rc < 0) {
		pv_cli_error("%s", pv_error_last());
		return PV_EXIT_FAIL;
	}
	if (wait)
		return wait_for(b, id, timeout);
	pv_cli_print(json_pack("{s:s}", "requestId", id));
	return PV_EXIT_OK;
}

static int list(pv_broker *b, int argc, char **argv)
{
	bool all = false, wait = false;
	double timeout = 0;
	if (opts(argc, argv, 2, &wait, &timeout, &all) < 0) {
		usage(stderr);
		return PV_EXIT_USAGE;
	}
	pv_machine_list ms = {0};
	pv_store *st = pv_broker_store(b);
	pv_store_begin(st, false);
	int rc = pv_store_machine_list(st, all ? PV_MF_ALL : PV_MF_ALIVE, NULL, &ms);
	pv_store_commit(st);
	if (rc < 0) {
		pv_cli_error("%s", pv_error_last());
		return PV_EXIT_FAIL;
	}
	printf("%-28s %-28s %-14s %-10s %-16s %-16s %s\n", "MACHINE", "NAME", "STATUS", "RESULT",
	       "PROVIDER", "TEMPLATE", "IP");
	for (size_t i = 0; i < ms.n; i++) {
		const pv_machine_rec *m = &ms.items[i];
		printf("%-28s %-28s %-14s %-10s %-16s %-16s %s\n", m->machine_id, m->name, m->status,
		       m->result, m->provider, m->template_id, m->private_ip);
	}
	pv_machine_list_clear(&ms);
	return PV_EXIT_OK;
}

int cmd_machines(const pv_cli *cli, int argc, char **argv)
{
	if (argc < 2 || pv_cli_wants_help(argc, argv)) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? PV_EXIT_USAGE : PV_EXIT_OK;
	}
	int (*fn)(pv_broker *, int, char **) = strcmp(argv[1], "request") == 0  ? request
					       : strcmp(argv[1], "return") == 0 ? give_back
					       : strcmp(argv[1], "list") == 0   ? list
										: NULL;
	if (!fn) {
		pv_cli_error("machines: unknown subcommand '%s' (request, list, return)", argv[1]);
		return PV_EXIT_USAGE;
	}
	pv_broker *b;
	if (pv_cli_open_broker(cli, &b) < 0)
		return PV_EXIT_FAIL;
	int rc = fn(b, argc, argv);
	pv_broker_close(b);
	return rc;
}
