/*
 * main.c - the `provisio` program: global options, then one command group.
 */
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cli/cli.h"

/* A command is in this program (run), or cmd_<name> in a module: libevent
 * and OpenSSL load only for the daemon (util/module.h). */
static const struct {
	const char *name;
	pv_cli_command run;
	const char *module;
	const char *summary;
} commands[] = {
	{"config", cmd_config, NULL, "validate or show the configuration"},
	{"providers", cmd_providers, NULL, "list, check, measure and exercise the strategy graph"},
	/* --- server --- */
	{"serve", NULL, "serve", "run the REST API, /metrics, the reconciler and alerts (daemon)"},
	{"top", NULL, "serve", "live table of strategies and requests from a running server"},
	/* --- end server --- */
	/* broker branch */
	{"hostfactory", cmd_hostfactory, NULL, "the five Host Factory provider calls (JSON in, JSON out)"},
	{"templates", cmd_templates, NULL, "list, show and validate the machine templates"},
	{"machines", cmd_machines, NULL, "request, list and return machines"},
	{"requests", cmd_requests, NULL, "list requests, show one, follow its status"},
	{"migrate", cmd_migrate, NULL, "convert the original project's config directory (--from-orb DIR)"},
};

static int run_command(size_t i, const pv_cli *cli, int argc, char **argv)
{
	pv_cli_command run = commands[i].run;
	if (run)
		pv_cli_heap_in_huge_pages(); /* a short command: one process per call */
	if (!run) {
		char symbol[64];
		void *found;
		snprintf(symbol, sizeof symbol, "cmd_%s", commands[i].name);
		if (pv_module_symbol(commands[i].module, symbol, &found) < 0) {
			pv_cli_error("%s: %s", commands[i].name, pv_error_last());
			return PV_EXIT_FAIL;
		}
		run = (pv_cli_command)found;
	}
	return run(cli, argc, argv);
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: provisio [--config FILE] [--env NAME] [--strict] [--log-level LEVEL] COMMAND ...\n"
		"\n"
		"provisio gets compute machines from many providers and keeps working when they fail.\n"
		"\n"
		"commands:\n");
	for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
		fprintf(f, "  %-12s %s\n", commands[i].name, commands[i].summary);
	fprintf(f,
		"\n"
		"global options:\n"
		"  --config FILE      configuration file; else $PROVISIO_CONFIG, then\n"
		"                     $HF_PROVIDER_CONFDIR/provisio.json, then ./config/provisio.json\n"
		"  --env NAME         deep-merge NAME.json from the config's folder over it\n"
		"                     (default $PROVISIO_ENV)\n"
		"  --strict           unknown configuration keys are errors, not warnings\n"
		"  --log-level LEVEL  debug, info, warn (default), error, off\n"
		"  --version          print the version\n"
		"\n"
		"Run 'provisio COMMAND --help' for a command's options and examples.\n");
}

void pv_cli_print(json_t *j)
{
	if (!j)
		return;
	json_dumpf(j, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	fputc('\n', stdout);
	json_decref(j);
}

void pv_cli_error(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("provisio: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

void pv_cli_print_diags(const pv_diags *d)
{
	char *text = pv_diags_format(d);
	if (text)
		fputs(text, stderr);
	free(text);
}

int pv_cli_open(const pv_cli *cli, pv_context **ctx, json_t **graph)
{
	pv_diags d;
	pv_diags_init(&d);
	pv_config_options o = {.path = cli->config_path, .env_name = cli->env_name, .strict = cli->strict};
	int rc = pv_config_open(&o, ctx, graph, &d);
	pv_cli_print_diags(&d);
	if (rc < 0 && !d.errors)
		pv_cli_error("%s", pv_error_last());
	pv_diags_clear(&d);
	return rc;
}

bool pv_cli_wants_help(int argc, char **argv)
{
	for (int i = 1; i < argc; i++)
		if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0)
			return true;
	return false;
}

int main(int argc, char **argv)
{
	pv_cli cli = {.prog = argv[0]};
	static const struct option opts[] = {
		{"config", required_argument, NULL, 'c'}, {"env", required_argument, NULL, 'e'},
		{"strict", no_argument, NULL, 's'},       {"log-level", required_argument, NULL, 'l'},
		{"help", no_argument, NULL, 'h'},         {"version", no_argument, NULL, 'V'},
		{NULL, 0, NULL, 0},
	};
	int c;
	/* '+' stops at the first non-option: the command's own options follow it. */
	while ((c = getopt_long(argc, argv, "+hc:e:", opts, NULL)) != -1) {
		switch (c) {
		case 'c': cli.config_path = optarg; break;
		case 'e': cli.env_name = optarg; break;
		case 's': cli.strict = true; break;
		case 'l': {
			static const char *const levels[] = {"debug", "info", "warn", "error", "off"};
			int lv = -1;
			for (int i = 0; i < 5; i++)
				if (strcmp(optarg, levels[i]) == 0)
					lv = i;
			if (lv < 0) {
				pv_cli_error("--log-level '%s' is not one of debug, info, warn, error, off", optarg);
				return PV_EXIT_USAGE;
			}
			pv_log_set_level((pv_log_level)lv);
			break;
		}
		case 'h': usage(stdout); return PV_EXIT_OK;
		case 'V': printf("provisio %s\n", PROVISIO_VERSION); return PV_EXIT_OK;
		default: usage(stderr); return PV_EXIT_USAGE;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return PV_EXIT_USAGE;
	}
	int first = optind;
	const char *name = argv[first];
	for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
		if (strcmp(commands[i].name, name) == 0) {
			optind = 0; /* the command parses its own options from its argv[0] on */
			return run_command(i, &cli, argc - first, argv + first);
		}
	pv_cli_error("unknown command '%s' (run 'provisio --help')", name);
	return PV_EXIT_USAGE;
}
