/*
 * manual.c - `provisio help [COMMAND]` and the manual pages.
 *
 * provisio(1) is made from main.c's command table, each command's
 * descriptor (cli.h: the flag tables its parser reads) and the very
 * --help texts the commands print; provisio.json(5) from the keys the
 * configuration's validators accept (config/keys.h). The build runs
 * `provisio help --man 1` and `--man 5` and installs what they print, so
 * the pages say what the program does. `help --flags` lists every flag the
 * parsers accept, one a line, for the tests that hold the help, the pages
 * and the completion to them.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cli/cli.h"
#include "config/keys.h"
#include "util/paths.h"

/* What the program reads from its environment (a test checks that every
 * PROVISIO_* and HF_* name the code reads is here). */
static const struct {
	const char *name, *about;
} environment[] = {
	{"PROVISIO_CONFIG", "the configuration file, when --config is not given"},
	{"PROVISIO_ENV", "the overlay NAME.json merged over the configuration, when --env is not given"},
	{"PROVISIO_TEMPLATES", "the templates file, when broker.templates_file is not set"},
	{"PROVISIO_LOG", "per-component log levels of provisio serve, over the file's "
			 "(\"broker=debug,providers.aws=debug,*=info\")"},
	{"PROVISIO_MODULE_PATH", "':'-separated folders to load the modules from (libvirt, aws, rest, "
				 "postgres, serve)"},
	{"PROVISIO_HUGE_PAGES", "0 keeps a short command's heap out of huge pages"},
	{"PROVISIO_HF_LOG_MAX_BYTES", "size at which the Host Factory log is rotated (default 10 MiB)"},
	{"PROVISIO_HF_LOG_KEEP", "rotated Host Factory logs kept (default 5)"},
	{"PROVISIO_URL", "the server provisio top reads (default http://127.0.0.1:8080)"},
	{"PROVISIO_TOKEN", "the token provisio top sends"},
	{"HF_PROVIDER_CONFDIR", "Host Factory's provider configuration folder: provisio.json and "
				"*templates.json are looked for there"},
	{"HF_PROVIDER_WORKDIR", "Host Factory's work folder: the default store, provisio.db, is kept there"},
	{"HF_PROVIDER_LOGDIR", "where the Host Factory commands write provisio.log (stderr when unset)"},
	{"AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_PROFILE",
	 "AWS credentials, as the AWS CLI reads them (docs/aws.md)"},
	{"NOTIFY_SOCKET, WATCHDOG_USEC", "set by systemd: provisio serve reports READY, RELOADING, STOPPING "
					 "and pets the watchdog"},
};

/* Text as roff reads it literally: backslashes and minus signs escaped, a
 * line starting with a control character made plain text. */
static void roff(FILE *out, const char *text)
{
	bool line_start = true;
	for (const char *p = text; *p; p++) {
		if (line_start && (*p == '.' || *p == '\''))
			fputs("\\&", out);
		if (*p == '\\')
			fputs("\\e", out);
		else if (*p == '-')
			fputs("\\-", out);
		else
			fputc(*p, out);
		line_start = *p == '\n';
	}
}

/* A --help text, as printed, in a no-fill block. */
static int usage_block(FILE *out, void (*usage)(FILE *))
{
	char *text = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&text, &len);
	if (!m) {
		pv_cli_error("help: out of memory");
		return -1;
	}
	usage(m);
	fclose(m);
	fputs(".PP\n.nf\n", out);
	roff(out, text);
	if (len && text[len - 1] != '\n')
		fputc('\n', out);
	fputs(".fi\n", out);
	free(text);
	return 0;
}

static void flag_list(FILE *out, const pv_cli_flag *flags, bool formats)
{
	bool first = true;
	for (const pv_cli_flag *f = flags; f && f->name; f++) {
		fputs(first ? "" : ", ", out);
		fputs("\\fB", out);
		roff(out, f->name);
		fputs("\\fR", out);
		if (f->value_name) {
			fputs(" \\fI", out);
			roff(out, f->value_name);
			fputs("\\fR", out);
		}
		if (f->replaced_by) {
			fputs(" (deprecated: ", out);
			roff(out, f->replaced_by);
			fputs(")", out);
		}
		first = false;
	}
	if (formats)
		fprintf(out, "%s\\fB\\-\\-format\\fR \\fItable\\fR|\\fIjson\\fR, \\fB\\-\\-json\\fR", first ? "" : ", ");
	else if (first)
		fputs("none", out);
	fputc('\n', out);
}

/* One command: its summary, its --help text, and what its parser takes. */
static int command_section(FILE *out, const pv_cli_command_entry *e)
{
	const pv_cli_command_info *info = pv_cli_command_info_of(e);
	if (!info)
		return -1;
	fprintf(out, ".SS \"provisio %s\"\n", e->name);
	roff(out, e->summary);
	fputs(".\n", out);
	if (usage_block(out, info->usage) < 0)
		return -1;
	if (!info->subs) {
		fputs(".PP\nOptions: ", out);
		flag_list(out, info->flags, info->formats);
		return 0;
	}
	fputs(".PP\nSubcommands and their options:\n", out);
	for (const pv_cli_sub *s = info->subs; s->name; s++) {
		fprintf(out, ".TP\n.B %s\n", s->name);
		flag_list(out, s->flags, s->formats);
	}
	return 0;
}

static int man_provisio(FILE *out)
{
	fprintf(out, ".TH PROVISIO 1 \"\" \"provisio %s\" \"User Commands\"\n.nh\n", PROVISIO_VERSION);
	fputs(".SH NAME\nprovisio \\- get compute machines from many providers at once\n"
	      ".SH SYNOPSIS\n.B provisio\n", out);
	for (const pv_cli_flag *f = pv_cli_global_flags; f->name; f++) {
		fputs("[\\fB", out);
		roff(out, f->name);
		fputs(f->value_name ? "\\fR \\fI" : "\\fR", out);
		if (f->value_name)
			roff(out, f->value_name);
		fputs(f->value_name ? "\\fR]\n" : "]\n", out);
	}
	fputs("\\fICOMMAND\\fR [\\fISUBCOMMAND\\fR] [\\fIOPTIONS\\fR] [\\fIARGUMENTS\\fR]\n", out);
	fputs(".SH DESCRIPTION\n"
	      "provisio gets compute machines from several providers (AWS EC2, libvirt, a REST service, the\n"
	      "local machine, a simulator) through one strategy graph: fallback chains, balancers and\n"
	      "composites keep requests working when a provider fails. It keeps templates, requests and\n"
	      "machines in SQLite or PostgreSQL, answers the IBM Spectrum Symphony and LSF Host Factory\n"
	      "provider calls, and runs as a daemon with a REST API (\\fBprovisio serve\\fR).\n"
	      ".PP\n"
	      "Commands that print data print a table for people or, with \\fB\\-\\-format json\\fR\n"
	      "(\\fB\\-\\-json\\fR), the REST API's JSON document. Unknown options are errors.\n"
	      ".SH OPTIONS\n"
	      "The global options come before the command; this is \\fBprovisio \\-\\-help\\fR:\n",
	      out);
	if (usage_block(out, pv_cli_usage) < 0)
		return -1;
	fputs(".SH COMMANDS\n"
	      "Each command's text is what \\fBprovisio\\fR \\fICOMMAND\\fR \\fB\\-\\-help\\fR prints.\n", out);
	size_t n;
	const pv_cli_command_entry *cmds = pv_cli_commands(&n);
	for (size_t i = 0; i < n; i++)
		if (command_section(out, &cmds[i]) < 0)
			return -1;
	fputs(".SH FILES\n", out);
	fputs(".TP\n.I ", out);
	roff(out, pv_paths_config_dir());
	fputs("/provisio.json\nThe configuration (provisio.json(5)) of an installation. The file read is the\n"
	      "first of: \\fB\\-\\-config\\fR \\fIFILE\\fR, \\fB$PROVISIO_CONFIG\\fR,\n"
	      "\\fB$HF_PROVIDER_CONFDIR\\fR/provisio.json, ./config/provisio.json, then this one.\n"
	      "An overlay \\fINAME\\fR.json beside it is merged over it with \\fB\\-\\-env\\fR \\fINAME\\fR.\n",
	      out);
	fputs(".TP\n.I ", out);
	roff(out, pv_paths_config_dir());
	fputs("/templates.json\nThe machine templates (else \\fB$PROVISIO_TEMPLATES\\fR,\n"
	      "\\fB$HF_PROVIDER_CONFDIR\\fR/*templates.json, or broker.templates_file).\n", out);
	fputs(".TP\n.I ", out);
	roff(out, pv_paths_installed_state_dir());
	fputs("/provisio.db\nThe store of an installation (SQLite): requests and machines. Else\n"
	      "store.url or store.path, or \\fB$HF_PROVIDER_WORKDIR\\fR/provisio.db; ./var/provisio.db\n"
	      "when run from the source tree.\n", out);
	fputs(".SH ENVIRONMENT\n", out);
	for (size_t i = 0; i < sizeof environment / sizeof environment[0]; i++) {
		fprintf(out, ".TP\n.B %s\n", environment[i].name);
		roff(out, environment[i].about);
		fputs(".\n", out);
	}
	fprintf(out, ".SH \"EXIT STATUS\"\n.TP\n.B %d\nSuccess.\n.TP\n.B %d\nThe command failed (the reason is on "
		     "stderr; the Host Factory commands also answer {\"message\": ...} on stdout).\n"
		     ".TP\n.B %d\nA usage error: an unknown command, subcommand or option, or a bad or missing "
		     "argument.\n",
		PV_EXIT_OK, PV_EXIT_FAIL, PV_EXIT_USAGE);
	fputs(".SH \"SEE ALSO\"\n.BR provisio.json (5),\n.BR systemctl (1),\n.BR journalctl (1)\n.PP\n"
	      "Shell completion: \\fBprovisio completion bash\\fR, \\fBprovisio completion zsh\\fR.\n", out);
	return 0;
}

static int man_config(FILE *out)
{
	fprintf(out, ".TH PROVISIO.JSON 5 \"\" \"provisio %s\" \"File Formats\"\n.nh\n", PROVISIO_VERSION);
	fputs(".SH NAME\nprovisio.json \\- configuration of provisio\n.SH SYNOPSIS\n.I ", out);
	roff(out, pv_paths_config_dir());
	fputs("/provisio.json\n"
	      ".SH DESCRIPTION\n"
	      "A JSON object. The providers and how they combine come in one of three formats: the\n"
	      "specification's \\fBprovider\\fR block (format 1), provisio's explicit graph of\n"
	      "\\fBproviders\\fR and \\fBstrategies\\fR (format 2), or the original project's\n"
	      "\\fBprovider.providers\\fR list (format 3). \\fB${VAR}\\fR and \\fB${VAR:\\-default}\\fR in\n"
	      "strings are read from the environment, so secrets stay out of the file; an overlay\n"
	      "\\fINAME\\fR.json beside the file is merged over it with \\fB\\-\\-env\\fR \\fINAME\\fR.\n"
	      ".PP\n"
	      "\\fBprovisio config validate\\fR checks a file, every problem named by its JSON path;\n"
	      "\\fBprovisio config show\\fR prints the effective configuration with secrets redacted.\n"
	      "Unknown keys are warnings, or errors with \\fB\\-\\-strict\\fR (in \\fBserver\\fR,\n"
	      "\\fBstore\\fR and \\fBbroker\\fR they are always errors).\n"
	      ".SH SECTIONS\n"
	      "Each block and the keys its validator accepts.\n",
	      out);
	size_t n;
	const pv_config_section *sections = pv_config_sections(&n);
	for (size_t i = 0; i < n; i++) {
		fputs(".SS \"", out);
		roff(out, *sections[i].path ? sections[i].path : "top level");
		fputs("\"\n", out);
		roff(out, sections[i].about);
		fputs("\n.br\nKeys: ", out);
		bool first = true;
		for (const char *const *k = sections[i].keys; *k; k++)
			if (**k != '_') {
				fprintf(out, "%s\\fB", first ? "" : ", ");
				roff(out, *k);
				fputs("\\fR", out);
				first = false;
			}
		fputs(".\n", out);
	}
	fputs(".SH \"PROVIDER TYPES\"\nThe \\fBtype\\fR of a provider: ", out);
	json_t *types = pv_provider_types();
	size_t i;
	json_t *t;
	json_array_foreach(types, i, t) {
		fprintf(out, "%s\\fB", i ? ", " : "");
		roff(out, json_string_value(t));
		fputs("\\fR", out);
	}
	json_decref(types);
	fputs(".\nEach type's own keys (in \\fBconfig\\fR) are checked by its provider: see\n"
	      "docs/aws.md, docs/libvirt.md, docs/local.md and docs/configuration.md in the project.\n"
	      ".SH EXAMPLE\n.nf\n"
	      "{\n"
	      "  \"providers\": [\n"
	      "    {\"name\": \"primary\", \"type\": \"sim\"},\n"
	      "    {\"name\": \"spare\", \"type\": \"local\"}\n"
	      "  ],\n"
	      "  \"strategies\": [\n"
	      "    {\"name\": \"main\", \"kind\": \"fallback\", \"primary\": \"primary\",\n"
	      "     \"fallbacks\": [\"spare\"]}\n"
	      "  ],\n"
	      "  \"default_strategy\": \"main\"\n"
	      "}\n"
	      ".fi\n"
	      ".SH \"SEE ALSO\"\n.BR provisio (1)\n",
	      out);
	return 0;
}

/* One line a flag the parsers accept: "COMMAND SUBCOMMAND FLAG VALUE"
 * ("-" when there is none), and the flag it stands for when deprecated. */
static void flag_lines(const char *cmd, const char *sub, const pv_cli_flag *flags, bool formats)
{
	for (const pv_cli_flag *f = flags; f && f->name; f++)
		printf("%s %s %s %s%s%s\n", cmd, sub, f->name, f->value_name ? f->value_name : "-",
		       f->replaced_by ? " " : "", f->replaced_by ? f->replaced_by : "");
	if (formats)
		printf("%s %s --format table|json\n%s %s --json -\n", cmd, sub, cmd, sub);
	if (!(flags && flags->name) && !formats)
		printf("%s %s - -\n", cmd, sub);
}

static int list_flags(void)
{
	size_t n;
	const pv_cli_command_entry *cmds = pv_cli_commands(&n);
	flag_lines("-", "-", pv_cli_global_flags, false);
	for (size_t i = 0; i < n; i++) {
		const pv_cli_command_info *info = pv_cli_command_info_of(&cmds[i]);
		if (!info)
			return PV_EXIT_FAIL;
		if (!info->subs)
			flag_lines(cmds[i].name, "-", info->flags, info->formats);
		for (const pv_cli_sub *s = info->subs; s && s->name; s++)
			flag_lines(cmds[i].name, s->name, s->flags, s->formats);
	}
	return PV_EXIT_OK;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: provisio help [COMMAND]\n"
		   "       provisio help --man 1|5\n"
		   "       provisio help --flags\n"
		   "\n"
		   "help COMMAND prints what 'provisio COMMAND --help' prints. --man 1 prints the\n"
		   "provisio(1) manual page and --man 5 provisio.json(5), as roff (the build installs\n"
		   "them; read one with 'provisio help --man 1 | man -l -'). --flags lists every option\n"
		   "each command accepts, one a line: COMMAND SUBCOMMAND OPTION VALUE, and the option\n"
		   "a deprecated one stands for.\n");
}

static const pv_cli_flag help_flags[] = {{"--man", "SECTION", NULL}, {"--flags", NULL, NULL}, {NULL, NULL, NULL}};

const pv_cli_command_info pv_cli_info_help = {.usage = usage, .flags = help_flags, .words = PV_WORDS_COMMAND};

int cmd_help(const pv_cli *cli, int argc, char **argv)
{
	(void)cli;
	if (pv_cli_wants_help(argc, argv)) {
		usage(stdout);
		return PV_EXIT_OK;
	}
	pv_cli_args a;
	if (pv_cli_parse(&a, "help", help_flags, false, PV_FORMAT_TABLE, argc, argv, 1) < 0 ||
	    pv_cli_words(&a, 0, 1, "") < 0) {
		pv_cli_args_clear(&a);
		return PV_EXIT_USAGE;
	}
	const char *man = pv_cli_arg(&a, "--man"), *topic = a.n_words ? a.words[0] : NULL;
	bool flags = pv_cli_flag_set(&a, "--flags");
	pv_cli_args_clear(&a);
	if ((man != NULL) + flags + (topic != NULL) > 1) {
		pv_cli_error("help: give one of COMMAND, --man or --flags");
		return PV_EXIT_USAGE;
	}
	if (flags)
		return list_flags();
	if (man) {
		if (strcmp(man, "1") && strcmp(man, "5")) {
			pv_cli_error("help: --man '%s' is not one of 1 (provisio), 5 (provisio.json)", man);
			return PV_EXIT_USAGE;
		}
		int rc = strcmp(man, "1") == 0 ? man_provisio(stdout) : man_config(stdout);
		return rc < 0 || fflush(stdout) != 0 ? PV_EXIT_FAIL : PV_EXIT_OK;
	}
	if (!topic) {
		pv_cli_usage(stdout);
		return PV_EXIT_OK;
	}
	size_t n;
	const pv_cli_command_entry *cmds = pv_cli_commands(&n);
	for (size_t i = 0; i < n; i++)
		if (strcmp(cmds[i].name, topic) == 0) {
			const pv_cli_command_info *info = pv_cli_command_info_of(&cmds[i]);
			if (!info)
				return PV_EXIT_FAIL;
			info->usage(stdout);
			return PV_EXIT_OK;
		}
	pv_cli_error("help: unknown command '%s' (run 'provisio --help')", topic);
	return PV_EXIT_USAGE;
}
