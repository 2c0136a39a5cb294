/*
 * cmd_hostfactory.c - `provisio hostfactory COMMAND -f FILE`: the five
 * Host Factory calls, one short process each.
 *
 * Host Factory reads stdout and nothing else: the answer is the only thing
 * printed there, as JSON, even when the call fails ({"message": ...} and a
 * non-zero exit). Diagnostics go to a log file under HF_PROVIDER_LOGDIR
 * (stderr when it is not set), JSON lines like serve's, rotated at
 * $PROVISIO_HF_LOG_MAX_BYTES (10 MiB) keeping $PROVISIO_HF_LOG_KEEP (5).
 */
#include <errno.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
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
		"Only the JSON answer goes to stdout; logs go to $HF_PROVIDER_LOGDIR/provisio.log as JSON\n"
		"lines, rotated at $PROVISIO_HF_LOG_MAX_BYTES (default 10 MiB) keeping\n"
		"$PROVISIO_HF_LOG_KEEP older files (default 5).\n"
		"Templates: $HF_PROVIDER_CONFDIR/*templates.json (see docs/hostfactory.md).\n"
		"\n"
		"examples:\n"
		"  provisio hostfactory getAvailableTemplates -d '{}'\n"
		"  provisio hostfactory requestMachines -d '{\"template\": {\"templateId\": \"local-small\", \"machineCount\": 3}}'\n"
		"  provisio hostfactory getRequestStatus -f /tmp/hf_in_1234\n");
}

/* Where the input comes from; the loop below reads these two. */
static const pv_cli_flag input_flags[] = {{"-f", "FILE", NULL}, {"-d", "JSON", NULL}, {NULL, NULL, NULL}};

/* In pv_hf_command order (the library's names, which the parser takes). */
static const pv_cli_sub subs[] = {
	{"getAvailableTemplates", input_flags, false, PV_WORDS_NONE},
	{"requestMachines", input_flags, false, PV_WORDS_NONE},
	{"getRequestStatus", input_flags, false, PV_WORDS_NONE},
	{"requestReturnMachines", input_flags, false, PV_WORDS_NONE},
	{"getReturnRequests", input_flags, false, PV_WORDS_NONE},
	{NULL, NULL, false, PV_WORDS_NONE},
};
_Static_assert(sizeof subs / sizeof subs[0] == PV_HF_COMMAND_COUNT + 1, "one subcommand a Host Factory call");

const pv_cli_command_info pv_cli_info_hostfactory = {.usage = hf_usage, .subs = subs};

static FILE *log_file;
static const char *log_command;

/* One JSON line a message, as `provisio serve` writes them (docs/serve.md):
 * ts, level, component, msg, and which call of which process. */
static void file_sink(void *user, pv_log_level level, const char *text)
{
	(void)user;
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	struct tm tm;
	gmtime_r(&ts.tv_sec, &tm);
	char when[40], component[48] = "hostfactory";
	size_t n = strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(when + n, sizeof when - n, ".%03ldZ", ts.tv_nsec / 1000000);
	/* "component: message", as the server splits the library's lines */
	const char *colon = strstr(text, ": ");
	size_t len = colon ? (size_t)(colon - text) : 0;
	if (len > 0 && len < sizeof component && !memchr(text, ' ', len)) {
		memcpy(component, text, len);
		component[len] = '\0';
		text = colon + 2;
	}
	json_t *line = json_pack("{s:s, s:s, s:s, s:s, s:s, s:I}", "ts", when, "level", pv_log_level_name(level),
				 "component", component, "msg", text, "command", log_command ? log_command : "",
				 "pid", (json_int_t)getpid());
	char *out = line ? json_dumps(line, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
	if (out) {
		fputs(out, log_file);
		fputc('\n', log_file);
	}
	free(out);
	json_decref(line);
}

/* A size from the environment, or `def`; a bad one is said on stderr
 * (Host Factory reads only stdout) and the default used. */
static long long env_number(const char *name, long long def, long long lo, long long hi)
{
	const char *v = getenv(name);
	if (!v || !*v)
		return def;
	char *end;
	long long n = strtoll(v, &end, 10);
	if (*end || n < lo || n > hi) {
		pv_cli_error("%s '%s': an integer from %lld to %lld; using %lld", name, v, lo, hi, def);
		return def;
	}
	return n;
}

/* Keeps the log bounded: when provisio.log has reached `max` bytes it
 * becomes provisio.log.1 (.1 becomes .2, ... up to `keep`; the oldest is
 * dropped). Many calls run at once: one rotates, under a lock, and the
 * others see the fresh file. */
static void rotate(const char *path, long long max, long long keep)
{
	struct stat sb;
	if (stat(path, &sb) < 0 || sb.st_size < max)
		return;
	char lock[4200];
	snprintf(lock, sizeof lock, "%s.lock", path);
	int fd = open(lock, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0 || flock(fd, LOCK_EX) < 0) {
		if (fd >= 0)
			close(fd);
		return;
	}
	if (stat(path, &sb) == 0 && sb.st_size >= max) { /* not rotated by another call meanwhile */
		char from[4200], to[4200];
		for (long long i = keep; i >= 1; i--) {
			if (i == 1)
				snprintf(from, sizeof from, "%s", path);
			else
				snprintf(from, sizeof from, "%s.%lld", path, i - 1);
			snprintf(to, sizeof to, "%s.%lld", path, i);
			rename(from, to);
		}
		if (keep == 0)
			unlink(path);
	}
	flock(fd, LOCK_UN);
	close(fd);
}

static void open_log(const char *command)
{
	const char *dir = getenv("HF_PROVIDER_LOGDIR");
	if (!dir || !*dir)
		return;
	char path[4096];
	snprintf(path, sizeof path, "%s/provisio.log", dir);
	rotate(path, env_number("PROVISIO_HF_LOG_MAX_BYTES", 10LL << 20, 1024, 1LL << 40),
	       env_number("PROVISIO_HF_LOG_KEEP", 5, 0, 100));
	log_file = fopen(path, "a");
	if (!log_file)
		return; /* nowhere to log is not a reason to fail the call */
	setvbuf(log_file, NULL, _IOLBF, 0);
	log_command = command;
	pv_log_set_sink(file_sink, NULL);
	if (pv_log_get_level() > PV_LOG_INFO)
		pv_log_set_level(PV_LOG_INFO);
	pv_log(PV_LOG_INFO, "hostfactory: %s", command);
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
		if (strcmp(argv[i], input_flags[0].name) == 0 && i + 1 < argc)
			file = argv[++i];
		else if (strcmp(argv[i], input_flags[1].name) == 0 && i + 1 < argc)
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
		pv_log(PV_LOG_ERROR, "hostfactory: %s failed: %s", argv[1], pv_error_last());
	pv_broker_close(b);
	json_decref(in);
	if (log_file) {
		pv_log_set_sink(NULL, NULL);
		fclose(log_file);
		log_file = NULL;
	}
	return rc < 0 ? PV_EXIT_FAIL : PV_EXIT_OK;
}
