/*
 * cmd_top.c - `provisio top`: the spec's real-time dashboard in a terminal.
 *
 * Reads a running `provisio serve` (GET /api/v1/providers and
 * GET /api/v1/requests?status=running) and prints a table of strategies
 * (health, operations, success %, p50/p95, breakers, in flight) and of the
 * active requests. On a terminal it redraws every interval until Ctrl-C;
 * otherwise (or with --once) it prints plain text once, for scripts and
 * logs. HTTP through libevent's client, which the library links already.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include "cli/cli.h"

static void help(FILE *f)
{
	fprintf(f,
		"usage: provisio top [--url URL] [--token TOKEN] [--interval SECONDS] [--once]\n"
		"                    [--format table|json] [--json]\n"
		"\n"
		"A live table of a running server's strategies (health, operations, success %%,\n"
		"p50/p95 latency, breaker states, in flight) and active requests. Redraws every\n"
		"interval on a terminal; prints once when not on a terminal or with --once.\n"
		"\n"
		"  --url URL         the server (default $PROVISIO_URL, else http://127.0.0.1:8080)\n"
		"  --token TOKEN     a read token (default $PROVISIO_TOKEN)\n"
		"  --interval S      seconds between refreshes, 0.2..3600 (default 2)\n"
		"  --once            print once and exit\n"
		"  --json            print once, as JSON: {\"providers\": GET /api/v1/providers,\n"
		"                    \"requests\": GET /api/v1/requests?status=running&limit=20}\n"
		"\n"
		"example:\n"
		"  PROVISIO_TOKEN=... provisio top --url http://127.0.0.1:8080\n");
}

static const pv_cli_flag flags[] = {
	{"--url", "URL", NULL},           {"--token", "TOKEN", NULL},
	{"--interval", "SECONDS", NULL},  {"--once", NULL, NULL},
	{NULL, NULL, NULL},
};

PV_MODULE_EXPORT const pv_cli_command_info pv_cli_info_top = {.usage = help, .flags = flags, .formats = true};

typedef struct fetch {
	int status;
	json_t *body;
	char error[256];
} fetch;

static void on_done(struct evhttp_request *req, void *arg)
{
	fetch *f = arg;
	if (!req) {
		snprintf(f->error, sizeof f->error, "no answer (connection refused or timed out)");
		return;
	}
	f->status = evhttp_request_get_response_code(req);
	struct evbuffer *b = evhttp_request_get_input_buffer(req);
	size_t n = evbuffer_get_length(b);
	f->body = json_loadb((const char *)evbuffer_pullup(b, -1), n, 0, NULL);
}

/* GET url+path; 0 with f->body, or -1 with f->error. */
static int get(const char *url, const char *token, const char *path, fetch *f)
{
	memset(f, 0, sizeof *f);
	struct evhttp_uri *u = evhttp_uri_parse(url);
	const char *scheme = u ? evhttp_uri_get_scheme(u) : NULL;
	if (!u || !evhttp_uri_get_host(u) || !scheme || strcmp(scheme, "http") != 0) {
		snprintf(f->error, sizeof f->error, "--url '%s': expected http://HOST:PORT (https: use curl)", url);
		evhttp_uri_free(u);
		return -1;
	}
	struct event_base *base = event_base_new();
	int port = evhttp_uri_get_port(u) > 0 ? evhttp_uri_get_port(u) : 80;
	struct evhttp_connection *c = evhttp_connection_base_new(base, NULL, evhttp_uri_get_host(u),
								  (unsigned short)port);
	evhttp_connection_set_timeout(c, 10);
	struct evhttp_request *req = evhttp_request_new(on_done, f);
	struct evkeyvalq *h = evhttp_request_get_output_headers(req);
	evhttp_add_header(h, "Host", evhttp_uri_get_host(u));
	char auth[512];
	if (token && *token) {
		snprintf(auth, sizeof auth, "Bearer %s", token);
		evhttp_add_header(h, "Authorization", auth);
	}
	evhttp_make_request(c, req, EVHTTP_REQ_GET, path);
	event_base_dispatch(base);
	evhttp_connection_free(c);
	event_base_free(base);
	evhttp_uri_free(u);
	if (!f->error[0] && f->status != 200) {
		json_t *e = json_object_get(f->body, "error");
		snprintf(f->error, sizeof f->error, "GET %s: HTTP %d %s", path, f->status,
			 json_string_value(json_object_get(e, "message")) ? json_string_value(json_object_get(e, "message")) : "");
	}
	return f->error[0] ? -1 : 0;
}

static void num(char *buf, size_t n, const json_t *v, const char *fmt)
{
	if (json_is_number(v))
		snprintf(buf, n, fmt, json_number_value(v));
	else
		snprintf(buf, n, "-");
}

static void breakers(char *buf, size_t n, const json_t *stats)
{
	buf[0] = '\0';
	const char *child;
	json_t *v;
	json_object_foreach(json_object_get(json_object_get(stats, "circuit_metrics"), "strategies"), child, v) {
		size_t len = strlen(buf);
		snprintf(buf + len, n - len, "%s%s:%s", len ? " " : "", child,
			 json_string_value(json_object_get(v, "state")));
	}
	if (!buf[0])
		snprintf(buf, n, "-");
}

static const char *str_or(const json_t *v)
{
	return json_is_string(v) ? json_string_value(v) : "-";
}

static void print_strategies(FILE *o, const json_t *view)
{
	fprintf(o, "STRATEGIES  current: %s   policy: %s\n",
		str_or(json_object_get(view, "current")),
		str_or(json_object_get(view, "policy")));
	fprintf(o, "%-20s %-9s %9s %8s %9s %9s %6s  %s\n", "NAME", "HEALTH", "OPS", "OK%", "P50 ms", "P95 ms",
		"FLIGHT", "BREAKERS");
	const char *name;
	json_t *s;
	json_object_foreach(json_object_get(view, "strategies"), name, s) {
		json_t *m = json_object_get(s, "metrics"), *h = json_object_get(s, "health");
		const char *health = !json_is_object(h) ? "unknown"
				     : json_is_true(json_object_get(h, "healthy")) ? "healthy" : "UNHEALTHY";
		char rate[16], p50[16], p95[16], brk[256];
		num(rate, sizeof rate, json_object_get(m, "success_rate"), "%.1f");
		num(p50, sizeof p50, json_object_get(m, "p50_ms"), "%.2f");
		num(p95, sizeof p95, json_object_get(m, "p95_ms"), "%.2f");
		breakers(brk, sizeof brk, json_object_get(s, "stats"));
		fprintf(o, "%-20.20s %-9s %9lld %8s %9s %9s %6lld  %s\n", name, health,
			(long long)json_integer_value(json_object_get(m, "total_operations")), rate, p50, p95,
			(long long)json_integer_value(json_object_get(m, "in_flight")), brk);
	}
}

static void print_requests(FILE *o, const json_t *list)
{
	fprintf(o, "\nACTIVE REQUESTS\n%-42s %-14s %6s %9s %-10s %7s\n", "ID", "TEMPLATE", "COUNT", "MACHINES",
		"STATE", "AGE s");
	size_t i;
	json_t *r;
	long long now = (long long)time(NULL);
	json_array_foreach(json_object_get(list, "requests"), i, r)
		fprintf(o, "%-42.42s %-14.14s %6lld %9zu %-10s %7lld\n",
			json_string_value(json_object_get(r, "request_id")),
			json_string_value(json_object_get(r, "template_id")),
			(long long)json_integer_value(json_object_get(r, "count")),
			json_array_size(json_object_get(r, "machines")),
			json_string_value(json_object_get(r, "state")),
			now - (long long)json_integer_value(json_object_get(r, "created_at")));
	if (!json_array_size(json_object_get(list, "requests")))
		fprintf(o, "(none)\n");
}

static volatile sig_atomic_t interrupted;
static void on_sigint(int sig) { (void)sig; interrupted = 1; }

static int draw(const char *url, const char *token, bool tty, bool json)
{
	fetch p, r;
	if (get(url, token, "/api/v1/providers", &p) < 0) {
		pv_cli_error("top: %s", p.error);
		json_decref(p.body);
		return -1;
	}
	if (get(url, token, "/api/v1/requests?status=running&limit=20", &r) < 0) {
		pv_cli_error("top: %s", r.error);
		json_decref(p.body);
		json_decref(r.body);
		return -1;
	}
	if (json) { /* the two REST documents top reads, as they came */
		pv_cli_print(json_pack("{s:o, s:o}", "providers", p.body, "requests", r.body));
		return 0;
	}
	if (tty)
		fputs("\033[H\033[2J", stdout);
	char when[32];
	time_t t = time(NULL);
	strftime(when, sizeof when, "%H:%M:%S", localtime(&t));
	printf("provisio top  %s  %s\n\n", url, when);
	print_strategies(stdout, p.body);
	print_requests(stdout, r.body);
	fflush(stdout);
	json_decref(p.body);
	json_decref(r.body);
	return 0;
}

int cmd_top(const pv_cli *cli, int argc, char **argv)
{
	(void)cli;
	if (pv_cli_wants_help(argc, argv)) {
		help(stdout);
		return PV_EXIT_OK;
	}
	pv_cli_args a;
	if (pv_cli_parse(&a, "top", flags, true, PV_FORMAT_TABLE, argc, argv, 1) < 0 ||
	    pv_cli_words(&a, 0, 0, "") < 0) {
		pv_cli_args_clear(&a);
		return PV_EXIT_USAGE;
	}
	const char *url = pv_cli_arg(&a, "--url"), *token = pv_cli_arg(&a, "--token");
	const char *every = pv_cli_arg(&a, "--interval");
	bool once = pv_cli_flag_set(&a, "--once"), json = a.format == PV_FORMAT_JSON;
	pv_cli_args_clear(&a); /* the values point into argv */
	if (!url)
		url = getenv("PROVISIO_URL");
	if (!token)
		token = getenv("PROVISIO_TOKEN");
	double interval = 2;
	if (every) {
		char *end;
		interval = strtod(every, &end);
		if (!*every || *end || !(interval >= 0.2 && interval <= 3600)) {
			pv_cli_error("--interval: '%s' is not a number from 0.2 to 3600", every);
			return PV_EXIT_USAGE;
		}
	}
	if (!url)
		url = "http://127.0.0.1:8080";
	bool tty = isatty(STDOUT_FILENO) && !once && !json;
	if (!tty)
		return draw(url, token, false, json) < 0 ? PV_EXIT_FAIL : PV_EXIT_OK;
	signal(SIGINT, on_sigint);
	while (!interrupted) {
		draw(url, token, true, false); /* a failed refresh is shown and retried */
		struct timespec ts = {(time_t)interval, (long)((interval - (time_t)interval) * 1e9)};
		nanosleep(&ts, NULL);
	}
	return PV_EXIT_OK;
}
