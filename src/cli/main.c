/*
 * main.c - the `provisio` program: global options, then one command group.
 */
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cli/cli.h"
#include "util/paths.h"

/* A command is in this program (run), or cmd_<name> in a module: libevent
 * and OpenSSL load only for the daemon (util/module.h). Each command's
 * descriptor (cli.h) says what it takes: --help, the man page and the
 * completion read it. */
static const pv_cli_command_entry commands[] = {
	{"config", cmd_config, NULL, "validate or show the configuration", &pv_cli_info_config},
	{"providers", cmd_providers, NULL, "list, check, measure and exercise the strategy graph",
	 &pv_cli_info_providers},
	/* --- server --- */
	{"serve", NULL, "serve", "run the REST API, /metrics, the reconciler and alerts (daemon)", NULL},
	{"top", NULL, "serve", "live table of strategies and requests from a running server", NULL},
	/* --- end server --- */
	/* broker branch */
	{"hostfactory", cmd_hostfactory, NULL, "the five Host Factory provider calls (JSON in, JSON out)",
	 &pv_cli_info_hostfactory},
	{"templates", cmd_templates, NULL, "list, show and validate the machine templates", &pv_cli_info_templates},
	{"machines", cmd_machines, NULL, "request, list and return machines", &pv_cli_info_machines},
	{"requests", cmd_requests, NULL, "list requests, show one, follow its status", &pv_cli_info_requests},
	{"migrate", cmd_migrate, NULL, "convert the original project's config directory (--from-orb DIR)",
	 &pv_cli_info_migrate},
	{"help", cmd_help, NULL, "a command's help; the manual pages (help --man 1|5)", &pv_cli_info_help},
	{"completion", cmd_completion, NULL, "the bash or zsh completion script", &pv_cli_info_completion},
};

#define N_COMMANDS (sizeof commands / sizeof commands[0])

const pv_cli_command_entry *pv_cli_commands(size_t *n)
{
	*n = N_COMMANDS;
	return commands;
}

/* The options before the command; getopt's table is made from it. */
const pv_cli_flag pv_cli_global_flags[] = {
	{"--config", "FILE", NULL}, {"--env", "NAME", NULL}, {"--strict", NULL, NULL},
	{"--log-level", "LEVEL", NULL}, {"--version", NULL, NULL}, {"--help", NULL, NULL},
	{NULL, NULL, NULL},
};

static pv_cli_command resolve(const pv_cli_command_entry *e)
{
	if (e->run)
		return e->run;
	char symbol[64];
	void *found;
	snprintf(symbol, sizeof symbol, "cmd_%s", e->name);
	if (pv_module_symbol(e->module, symbol, &found) < 0) {
		pv_cli_error("%s: %s", e->name, pv_error_last());
		return NULL;
	}
	return (pv_cli_command)found;
}

const pv_cli_command_info *pv_cli_command_info_of(const pv_cli_command_entry *e)
{
	if (e->info)
		return e->info;
	char symbol[64];
	void *found;
	snprintf(symbol, sizeof symbol, "pv_cli_info_%s", e->name);
	if (pv_module_symbol(e->module, symbol, &found) < 0) {
		pv_cli_error("%s: %s", e->name, pv_error_last());
		return NULL;
	}
	return found;
}

const pv_cli_sub *pv_cli_sub_find(const pv_cli_command_info *info, const char *command, const char *name)
{
	char valid[256] = "";
	size_t off = 0;
	for (const pv_cli_sub *s = info->subs; s && s->name; s++) {
		if (strcmp(s->name, name) == 0)
			return s;
		if (off < sizeof valid)
			off += (size_t)snprintf(valid + off, sizeof valid - off, "%s%s", off ? ", " : "", s->name);
	}
	pv_cli_error("%s: unknown subcommand '%s' (%s)", command, name, valid);
	return NULL;
}

static int run_command(size_t i, const pv_cli *cli, int argc, char **argv)
{
	if (commands[i].run)
		pv_cli_heap_in_huge_pages(); /* a short command: one process per call */
	pv_cli_command run = resolve(&commands[i]);
	return run ? run(cli, argc, argv) : PV_EXIT_FAIL;
}

void pv_cli_usage(FILE *f)
{
	fprintf(f,
		"usage: provisio [--config FILE] [--env NAME] [--strict] [--log-level LEVEL] COMMAND ...\n"
		"\n"
		"provisio gets compute machines from many providers and keeps working when they fail.\n"
		"\n"
		"commands:\n");
	for (size_t i = 0; i < N_COMMANDS; i++)
		fprintf(f, "  %-12s %s\n", commands[i].name, commands[i].summary);
	fprintf(f,
		"\n"
		"global options:\n"
		"  --config FILE      configuration file; else $PROVISIO_CONFIG, then\n"
		"                     $HF_PROVIDER_CONFDIR/provisio.json, then ./config/provisio.json,\n"
		"                     then %s/provisio.json\n"
		"  --env NAME         deep-merge NAME.json from the config's folder over it\n"
		"                     (default $PROVISIO_ENV)\n"
		"  --strict           unknown configuration keys are errors, not warnings\n"
		"  --log-level LEVEL  debug, info, warn (default), error, off\n"
		"  --version          print the version\n"
		"  --help             print this help\n"
		"\n"
		"Run 'provisio COMMAND --help' for a command's options and examples.\n",
		pv_paths_config_dir());
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
	struct option opts[sizeof pv_cli_global_flags / sizeof pv_cli_global_flags[0]];
	for (size_t i = 0; i < sizeof opts / sizeof opts[0]; i++) {
		const pv_cli_flag *f = &pv_cli_global_flags[i];
		opts[i] = (struct option){f->name ? f->name + 2 : NULL,
					  f->value_name ? required_argument : no_argument, NULL, (int)(256 + i)};
	}
	int c;
	/* '+' stops at the first non-option: the command's own options follow it. */
	while ((c = getopt_long(argc, argv, "+hc:e:", opts, NULL)) != -1) {
		const char *name = c >= 256 ? pv_cli_global_flags[c - 256].name
				 : c == 'c' ? "--config" : c == 'e' ? "--env" : c == 'h' ? "--help" : "?";
		if (strcmp(name, "--config") == 0) {
			cli.config_path = optarg;
		} else if (strcmp(name, "--env") == 0) {
			cli.env_name = optarg;
		} else if (strcmp(name, "--strict") == 0) {
			cli.strict = true;
		} else if (strcmp(name, "--log-level") == 0) {
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
		} else if (strcmp(name, "--help") == 0) {
			pv_cli_usage(stdout);
			return PV_EXIT_OK;
		} else if (strcmp(name, "--version") == 0) {
			printf("provisio %s\n", PROVISIO_VERSION);
			return PV_EXIT_OK;
		} else {
			pv_cli_usage(stderr);
			return PV_EXIT_USAGE;
		}
	}
	if (optind >= argc) {
		pv_cli_usage(stderr);
		return PV_EXIT_USAGE;
	}
	int first = optind;
	const char *name = argv[first];
	for (size_t i = 0; i < N_COMMANDS; i++)
		if (strcmp(commands[i].name, name) == 0) {
			optind = 0; /* the command parses its own options from its argv[0] on */
			return run_command(i, &cli, argc - first, argv + first);
		}
	pv_cli_error("unknown command '%s' (run 'provisio --help')", name);
	return PV_EXIT_USAGE;
}
