/*
 * cmd_serve.c - `provisio serve`: the daemon (REST API, /metrics, probes,
 * reconciler, alerts) until SIGTERM; SIGHUP reloads. docs/serve.md.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "cli/cli.h"
#include "provisio/server.h"

static void help(FILE *f)
{
	fprintf(f,
		"usage: provisio serve [--listen HOST:PORT] [--threads N] [--templates FILE]\n"
		"                      [--store FILE|URL] [--url-file FILE]\n"
		"       provisio serve --hash-token TOKEN\n"
		"\n"
		"Serves the REST API (docs/api.md), GET /metrics, /health and /ready, and runs the\n"
		"reconciler and the alert rules, until SIGTERM or SIGINT (graceful: requests in\n"
		"progress finish, kernel state is saved). SIGHUP reloads the configuration; a bad\n"
		"one is rejected with the reason logged and the running one kept. Logs are JSON\n"
		"lines on stderr.\n"
		"\n"
		"  --listen HOST:PORT  overrides server.listen (default 127.0.0.1:8080; port 0 = any)\n"
		"  --threads N         event loops (default: one a core)\n"
		"  --templates FILE    templates file (else as for the Host Factory commands)\n"
		"  --store FILE|URL    SQLite file or postgresql:// URL (else store.url, store.path,\n"
		"                      $HF_PROVIDER_WORKDIR/provisio.db, ./var/provisio.db)\n"
		"  --url-file FILE     writes the URL (and a generated admin token) there once\n"
		"                      listening, readable by its owner only (scripts, tests)\n"
		"  --hash-token TOKEN  prints the salted hash to put in server.auth.tokens[].hash\n"
		"\n"
		"When auth is on and no token is configured, an admin token is generated and\n"
		"printed once on stdout.\n"
		"\n"
		"examples:\n"
		"  provisio --config config/provisio.json serve --listen 127.0.0.1:8080\n"
		"  provisio serve --hash-token \"$(openssl rand -hex 24)\"\n");
}

static const pv_cli_flag flags[] = {
	{"--listen", "HOST:PORT", NULL}, {"--threads", "N", NULL},  {"--templates", "FILE", NULL},
	{"--store", "FILE|URL", NULL},   {"--url-file", "FILE", NULL}, {"--hash-token", "TOKEN", NULL},
	{NULL, NULL, NULL},
};

PV_MODULE_EXPORT const pv_cli_command_info pv_cli_info_serve = {.usage = help, .flags = flags};

/* The URL and the generated admin token: a secret, so the file is the
 * owner's alone (0600 even when it existed with other permissions). */
static int write_url_file(const char *path, pv_server *srv)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || fchmod(fd, 0600) < 0) {
		pv_cli_error("serve: --url-file %s: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	const char *tok = pv_server_generated_token(srv);
	char text[512];
	int n = snprintf(text, sizeof text, "%s\n%s\n", pv_server_url(srv), tok ? tok : "");
	bool ok = n > 0 && (size_t)n < sizeof text && write(fd, text, (size_t)n) == n;
	if (!ok)
		pv_cli_error("serve: --url-file %s: cannot write it", path);
	close(fd);
	return ok ? 0 : -1;
}

static void banner(pv_server *srv)
{
	const char *url = pv_server_url(srv), *tok = pv_server_generated_token(srv);
	printf("provisio serve: listening on %s\n", url);
	if (tok) {
		printf("admin token (generated; configure server.auth.tokens to choose your own):\n  %s\n", tok);
		printf("try:\n");
		printf("  curl -s %s/health\n", url);
		printf("  curl -s -H 'Authorization: Bearer %s' %s/api/v1/templates\n", tok, url);
		const char *tmpl = pv_server_first_template_id(srv);
		if (tmpl)
			printf("  curl -s -H 'Authorization: Bearer %s' -H 'Content-Type: application/json' \\\n"
			       "       -d '{\"template_id\": \"%s\", \"count\": 1}' %s/api/v1/requests\n",
			       tok, tmpl, url);
	}
	fflush(stdout);
}

int cmd_serve(const pv_cli *cli, int argc, char **argv)
{
	if (pv_cli_wants_help(argc, argv)) {
		help(stdout);
		return PV_EXIT_OK;
	}
	pv_cli_args a;
	if (pv_cli_parse(&a, "serve", flags, false, PV_FORMAT_TABLE, argc, argv, 1) < 0 ||
	    pv_cli_words(&a, 0, 0, "") < 0) {
		pv_cli_args_clear(&a);
		return PV_EXIT_USAGE;
	}
	const char *token = pv_cli_arg(&a, "--hash-token"), *threads = pv_cli_arg(&a, "--threads");
	pv_server_options o = {0};
	o.open.config.path = cli->config_path;
	o.open.config.env_name = cli->env_name;
	o.open.config.strict = cli->strict;
	o.listen = pv_cli_arg(&a, "--listen");
	o.open.templates_path = pv_cli_arg(&a, "--templates");
	o.open.store_path = pv_cli_arg(&a, "--store");
	const char *url_file = pv_cli_arg(&a, "--url-file");
	pv_cli_args_clear(&a); /* the values point into argv, not into `a` */
	if (token) {
		char hash[PV_SERVER_TOKEN_HASH_MAX];
		if (pv_server_hash_token(token, 0, hash, sizeof hash) < 0) {
			pv_cli_error("serve: --hash-token: %s", pv_error_last());
			return PV_EXIT_FAIL;
		}
		printf("%s\n", hash);
		return PV_EXIT_OK;
	}
	if (threads) {
		char *end;
		long n = strtol(threads, &end, 10);
		if (!*threads || *end || n < 1 || n > 256) {
			pv_cli_error("--threads: '%s' is not an integer from 1 to 256", threads);
			return PV_EXIT_USAGE;
		}
		o.threads = (unsigned)n;
	}
	pv_diags d;
	pv_diags_init(&d);
	pv_server *srv = NULL;
	int rc = pv_server_new(&srv, &o, &d);
	pv_cli_print_diags(&d);
	pv_diags_clear(&d);
	if (rc < 0) {
		pv_cli_error("serve: %s", pv_error_last());
		return PV_EXIT_FAIL;
	}
	banner(srv);
	if (url_file && write_url_file(url_file, srv) < 0) {
		pv_server_free(srv);
		return PV_EXIT_FAIL;
	}
	rc = pv_server_run(srv, true);
	pv_server_free(srv);
	return rc < 0 ? PV_EXIT_FAIL : PV_EXIT_OK;
}
