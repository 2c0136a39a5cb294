/*
 * cmd_hostfactory.c - `provisio hostfactory COMMAND -f FILE`: the five
 * Host Factory calls, one short process each.
 *
 * Host Factory reads stdout and nothing else: the answer is the only thing
 * printed there, as JSON, even when the call fails ({"message": ...} and a
 * non-zero exit). Diagnostics go to a log file under HF_PROVIDER_LOGDIR
 * (stderr when it is not set).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "cli/cli.h"
#include "provisio/hostfactory.h"

static void hf_usage(FILE *f)
{
	fprintf(f,
		"usage: provisio hostfactory COMMAND [-f FILE | -d JSON]\n"
		"\n"
		"The Host Factory provider interface. COMMAND is one of:\n"
		"  getAvailableTemplates  requestMachines  getRequestStatus\n"
		"  requestReturnMachines  getReturnRequests\n"
		"The input JSON comes from FILE (-f), the argument (-d), or stdin.\n"
		"Only the JSON answer goes to stdout; logs go to $HF_PROVIDER_LOGDIR/provisio.log.\n"
		"Templates: $HF_PROVIDER_CONFDIR/*templates.json (see docs/hostfactory.md).\n"
		"\n"
		"examples:\n"
		"  provisio hostfactory getAvailableTemplates -d '{}'\n"
		"  provisio hostfactory requestMachines -d '{\"template\": {\"templateId\": \"local-small\", \"machineCount\": 3}}'\n"
		"  provisio hostfactory getRequestStatus -f /tmp/hf_in_1234\n");
}

static FILE *log_file;

static void file_sink(void *user, pv_log_level level, const char *line)
{
	(void)user;
	time_t t = time(NULL);
	struct tm tm;
	char when[32];
	strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&t, &tm));
	fprintf(log_file, "%s %d %s %s\n", when, (int)getpid(), pv_log_level_name(level), line);
}

static void open_log(const char *command)
{
	const char *dir = getenv("HF_PROVIDER_LOGDIR");
	if (!dir || !*dir)
		return;
	char path[4096];
	snprintf(path, sizeof path, "%s/provisio.log", dir);
	log_file = fopen(path, "a");
	if (!log_file)
		return; /* nowhere to log is not a reason to fail the call */
	setvbuf(log_file, NULL, _IOLBF, 0);
	pv_log_set_sink(file_sink, NULL);
	if (pv_log_get_level() > PV_LOG_INFO)
		pv_log_set_level(PV_LOG_INFO);
	pv_log(PV_LOG_INFO, "hostfactory %s", command);
}

static void answer(json_t *j)
{
	json_dumpf(j, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	fputc('\n', stdout);
	fflush(stdout);
	json_decref(j);
}

static int fail(const char *fmt, const char *arg)
{
	char text[1024];
	snprintf(text, sizeof text, fmt, arg);
	pv_log(PV_LOG_ERROR, "%s", text);
	answer(json_pack("{s:s}", "message", text));
	return PV_EXIT_FAIL;
}

static json_t *read_input(const char *file, const char *data, char *err, size_t size)
{
	json_error_t e;
	json_t *in = NULL;
	if (data)
		in = json_loads(data, 0, &e);
	else if (file && strcmp(file, "-") != 0 && access(file, R_OK) < 0) {
		snprintf(err, size, "cannot read input file %s: %s", file, strerror(errno));
		return NULL;
	} else if (file && strcmp(file, "-") != 0)
		in = json_load_file(file, 0, &e);
	else
		in = json_loadf(stdin, 0, &e);
	if (!in)
		snprintf(err, size, "input %s is not valid JSON: %s (line %d)",
			 data ? "(-d)" : file ? file : "(stdin)", e.text, e.line);
	return in;
}

/* Collects the configuration diagnostics into one line for the message. */
static void diags_line(const pv_diags *d, char *buf, size_t size)
{
	size_t off = 0;
	buf[0] = '\0';
	for (size_t i = 0; i < d->n && off + 1 < size; i++)
		if (d->items[i].level == PV_DIAG_ERROR)
			off += (size_t)snprintf(buf + off, size - off, "%s%s: %s", off ? "; " : "",
						d->items[i].path, d->items[i].message);
}

int cmd_hostfactory(const pv_cli *cli, int argc, char **argv)
{
	if (argc < 2 || pv_cli_wants_help(argc, argv)) {
		hf_usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? PV_EXIT_USAGE : PV_EXIT_OK;
	}
	pv_hf_command cmd;
	if (pv_hf_command_parse(argv[1], &cmd) < 0)
		return fail("%s", pv_error_last());
	const char *file = NULL, *data = NULL;
	for (int i = 2; i < argc; i++) {
		if (strcmp(argv[i], "-f") == 0 && i + 1 < argc)
			file = argv[++i];
		else if (strcmp(argv[i], "-d") == 0 && i + 1 < argc)
			data = argv[++i];
		else
			return fail("unexpected argument '%s' (use -f FILE or -d JSON)", argv[i]);
	}
	open_log(argv[1]);
	char err[1024];
	json_t *in = read_input(file, data, err, sizeof err);
	if (!in)
		return fail("%s", err);
	pv_diags d;
	pv_diags_init(&d);
	pv_broker_open_options o = {.config = {.path = cli->config_path, .env_name = cli->env_name,
					       .strict = cli->strict}};
	pv_broker *b = NULL;
	int rc = pv_broker_open(&b, &o, &d);
	for (size_t i = 0; i < d.n; i++)
		pv_log(d.items[i].level == PV_DIAG_ERROR ? PV_LOG_ERROR : PV_LOG_WARN, "config: %s: %s",
		       d.items[i].path, d.items[i].message);
	if (rc < 0) {
		char line[900];
		diags_line(&d, line, sizeof line);
		snprintf(err, sizeof err, "cannot start: %s%s%s", pv_error_last(), line[0] ? ": " : "", line);
		pv_diags_clear(&d);
		json_decref(in);
		return fail("%s", err);
	}
	pv_diags_clear(&d);
	static char buf[1 << 16];
	setvbuf(stdout, buf, _IOFBF, sizeof buf);
	rc = pv_hf_write(b, cmd, in, stdout);
	fflush(stdout);
	if (rc < 0)
		pv_log(PV_LOG_ERROR, "%s failed: %s", argv[1], pv_error_last());
	pv_broker_close(b);
	json_decref(in);
	if (log_file) {
		pv_log_set_sink(NULL, NULL);
		fclose(log_file);
		log_file = NULL;
	}
	return rc < 0 ? PV_EXIT_FAIL : PV_EXIT_OK;
}
