/*
 * completion.c - `provisio completion bash|zsh`: the shell completion
 * script, written from the same tables the parsers read (main.c's command
 * table and each command's descriptor), so it completes exactly the
 * commands, subcommands and options the program accepts.
 *
 * Both shells share one generated function, _provisio_candidates, in the
 * syntax bash and zsh have in common: given the current word and the words
 * before it, it prints the candidates, or "@files" / "@dirs" for a file or
 * folder name. Template, request and machine ids come from the program
 * itself (`templates list`, `requests list`, `machines list`, their first
 * column), with the --config and --env already typed.
 */
#include <stdio.h>
#include <string.h>
#include "cli/cli.h"

/* How a flag's value is completed, from its value name. */
static const char *value_kind(const pv_cli_flag *f)
{
	const char *v = f->value_name;
	if (strcmp(v, "FILE") == 0 || strcmp(v, "FILE|URL") == 0)
		return "echo @files";
	if (strcmp(v, "DIR") == 0)
		return "echo @dirs";
	if (strcmp(v, "LEVEL") == 0)
		return "echo debug info warn error off";
	if (strcmp(v, "SECTION") == 0)
		return "echo 1 5";
	return ":"; /* a value to type: nothing to offer */
}

static const char *words_action(pv_cli_words_kind k)
{
	switch (k) {
	case PV_WORDS_TEMPLATE: return "_provisio_ids templates list";
	case PV_WORDS_REQUEST: return "_provisio_ids requests list --limit 100";
	case PV_WORDS_MACHINE: return "_provisio_ids machines list";
	case PV_WORDS_FILE: return "echo @files";
	case PV_WORDS_OPERATION: return NULL; /* written out below */
	case PV_WORDS_COMMAND: return NULL;
	case PV_WORDS_SHELL: return "echo bash zsh";
	case PV_WORDS_NONE: return ":";
	}
	return ":";
}

static void print_words(const char *cmd, const char *sub, pv_cli_words_kind k, const char *commands)
{
	printf("\t\t\"%s/%s\") ", cmd, sub);
	if (k == PV_WORDS_OPERATION) {
		printf("echo");
		for (int op = 0; op < PV_OP_COUNT; op++)
			printf(" %s", pv_op_name((pv_op_type)op));
		printf(" ;;\n");
	} else if (k == PV_WORDS_COMMAND) {
		printf("echo%s ;;\n", commands);
	} else {
		printf("%s ;;\n", words_action(k));
	}
}

static void print_flags(const char *cmd, const char *sub, const pv_cli_flag *flags, bool formats)
{
	printf("\t\t\"%s/%s\") echo", cmd, sub);
	for (const pv_cli_flag *f = flags; f && f->name; f++)
		if (!f->replaced_by)
			printf(" %s", f->name);
	printf("%s ;;\n", formats ? " --format --json" : "");
}

/* Every flag that takes a value, once: what completes its value. */
static void print_value_case(const pv_cli_flag *flags, char *seen, size_t size)
{
	for (const pv_cli_flag *f = flags; f && f->name; f++) {
		char key[80];
		snprintf(key, sizeof key, " %s ", f->name);
		if (!f->value_name || strstr(seen, key))
			continue;
		size_t len = strlen(seen);
		snprintf(seen + len, size - len, "%s", key);
		printf("\t\t%s) echo '%s' ;;\n", f->name, value_kind(f));
	}
}

/* The shared function; -1 when a module's command cannot be described. */
static int print_candidates(void)
{
	size_t n;
	const pv_cli_command_entry *cmds = pv_cli_commands(&n);
	const pv_cli_command_info *infos[64];
	if (n > 64)
		return -1;
	char commands[1024] = "";
	for (size_t i = 0; i < n; i++) {
		if (!(infos[i] = pv_cli_command_info_of(&cmds[i])))
			return -1;
		snprintf(commands + strlen(commands), sizeof commands - strlen(commands), " %s", cmds[i].name);
	}
	printf("# The candidates for the current word $1, after the words $2...\n"
	       "_provisio_candidates() {\n"
	       "\tlocal cur=\"$1\" cmd=\"\" sub=\"\" value_of=\"\" w cfg=\"\" env=\"\" last=\"\"\n"
	       "\tshift\n"
	       "\tfor w in \"$@\"; do\n"
	       "\t\tif [ -n \"$value_of\" ]; then\n"
	       "\t\t\tcase \"$value_of\" in --config) [ -z \"$cmd\" ] && cfg=\"$w\" ;; --env) [ -z \"$cmd\" ] && env=\"$w\" ;; esac\n"
	       "\t\t\tvalue_of=\"\"\n"
	       "\t\t\tcontinue\n"
	       "\t\tfi\n"
	       "\t\tcase \"$w\" in\n"
	       "\t\t--*=*) continue ;;\n"
	       "\t\t-*) [ \"$(_provisio_value \"$w\")\" != \"\" ] && value_of=\"$w\"; continue ;;\n"
	       "\t\tesac\n"
	       "\t\tif [ -z \"$cmd\" ]; then cmd=\"$w\"\n"
	       "\t\telif [ -z \"$sub\" ] && _provisio_has_subs \"$cmd\"; then sub=\"$w\"\n"
	       "\t\tfi\n"
	       "\tdone\n"
	       "\tif [ -n \"$value_of\" ]; then\n"
	       "\t\teval \"$(_provisio_value \"$value_of\")\"\n"
	       "\t\treturn\n"
	       "\tfi\n"
	       "\t# seen by _provisio_ids (both shells scope local variables dynamically)\n"
	       "\tlocal _PROVISIO_CFG=\"$cfg\" _PROVISIO_ENV=\"$env\"\n"
	       "\tif [ -z \"$cmd\" ]; then\n"
	       "\t\tcase \"$cur\" in -*) _provisio_flags - - ;; *) echo%s ;; esac\n"
	       "\telif [ -z \"$sub\" ] && _provisio_has_subs \"$cmd\"; then\n"
	       "\t\tcase \"$cur\" in -*) echo --help ;; *) _provisio_subs \"$cmd\" ;; esac\n"
	       "\telse\n"
	       "\t\t[ -z \"$sub\" ] && sub=-\n"
	       "\t\tcase \"$cur\" in -*) _provisio_flags \"$cmd\" \"$sub\"; echo --help ;; *) _provisio_words \"$cmd\" \"$sub\" ;; esac\n"
	       "\tfi\n"
	       "}\n\n",
	       commands);

	/* the code that prints the candidates for the value of each flag that takes
	 * one (nothing for a switch) */
	char seen[4096] = "";
	printf("_provisio_value() {\n\tcase \"$1\" in\n");
	print_value_case(pv_cli_global_flags, seen, sizeof seen);
	printf("\t\t--format) echo 'echo table json' ;;\n");
	for (size_t i = 0; i < n; i++) {
		print_value_case(infos[i]->flags, seen, sizeof seen);
		for (const pv_cli_sub *s = infos[i]->subs; s && s->name; s++)
			print_value_case(s->flags, seen, sizeof seen);
	}
	printf("\tesac\n}\n\n");
	
	printf("_provisio_has_subs() {\n\tcase \"$1\" in\n");
	for (size_t i = 0; i < n; i++)
		if (infos[i]->subs)
			printf("\t\t%s) return 0 ;;\n", cmds[i].name);
	printf("\tesac\n\treturn 1\n}\n\n");

	printf("_provisio_subs() {\n\tcase \"$1\" in\n");
	for (size_t i = 0; i < n; i++) {
		if (!infos[i]->subs)
			continue;
		printf("\t\t%s) echo", cmds[i].name);
		for (const pv_cli_sub *s = infos[i]->subs; s->name; s++)
			printf(" %s", s->name);
		printf(" ;;\n");
	}
	printf("\tesac\n}\n\n");

	printf("_provisio_flags() {\n\tcase \"$1/$2\" in\n");
	print_flags("-", "-", pv_cli_global_flags, false);
	for (size_t i = 0; i < n; i++) {
		if (!infos[i]->subs)
			print_flags(cmds[i].name, "-", infos[i]->flags, infos[i]->formats);
		for (const pv_cli_sub *s = infos[i]->subs; s && s->name; s++)
			print_flags(cmds[i].name, s->name, s->flags, s->formats);
	}
	printf("\tesac\n}\n\n");

	printf("_provisio_words() {\n\tcase \"$1/$2\" in\n");
	for (size_t i = 0; i < n; i++) {
		if (!infos[i]->subs && infos[i]->words)
			print_words(cmds[i].name, "-", infos[i]->words, commands);
		for (const pv_cli_sub *s = infos[i]->subs; s && s->name; s++)
			if (s->words)
				print_words(cmds[i].name, s->name, s->words, commands);
	}
	printf("\tesac\n}\n\n");

	printf("# The first column of a listing (its header skipped), from the configuration typed.\n"
	       "_provisio_ids() {\n"
	       "\tset -- provisio ${_PROVISIO_CFG:+--config} ${_PROVISIO_CFG:+\"$_PROVISIO_CFG\"} "
	       "${_PROVISIO_ENV:+--env} ${_PROVISIO_ENV:+\"$_PROVISIO_ENV\"} \"$@\" --format table\n"
	       "\t\"$@\" 2>/dev/null </dev/null | awk 'NR > 1 { print $1 }'\n"
	       "}\n\n");
	return 0;
}

static int bash(void)
{
	printf("# bash completion for provisio; generated by `provisio completion bash`.\n"
	       "# Load it with: source <(provisio completion bash)\n\n");
	if (print_candidates() < 0)
		return -1;
	printf("_provisio() {\n"
	       "\tlocal cur=\"${COMP_WORDS[COMP_CWORD]}\" c IFS=$' \\t\\n'\n"
	       "\tCOMPREPLY=()\n"
	       "\tfor c in $(_provisio_candidates \"$cur\" \"${COMP_WORDS[@]:1:COMP_CWORD-1}\"); do\n"
	       "\t\tcase \"$c\" in\n"
	       "\t\t@files) COMPREPLY+=($(compgen -f -- \"$cur\")) ;;\n"
	       "\t\t@dirs) COMPREPLY+=($(compgen -d -- \"$cur\")) ;;\n"
	       "\t\t\"$cur\"*) COMPREPLY+=(\"$c\") ;;\n"
	       "\t\tesac\n"
	       "\tdone\n"
	       "}\n"
	       "complete -o filenames -F _provisio provisio\n");
	return 0;
}

static int zsh(void)
{
	printf("#compdef provisio\n"
	       "# zsh completion for provisio; generated by `provisio completion zsh`.\n"
	       "# Install it as _provisio in a folder of $fpath, or: source <(provisio completion zsh)\n\n");
	if (print_candidates() < 0)
		return -1;
	printf("_provisio() {\n"
	       "\tlocal c\n"
	       "\tlocal -a found\n"
	       "\tfor c in ${=\"$(_provisio_candidates \"$PREFIX\" \"${(@)words[2,CURRENT-1]}\")\"}; do\n"
	       "\t\tcase \"$c\" in\n"
	       "\t\t@files) _files ;;\n"
	       "\t\t@dirs) _files -/ ;;\n"
	       "\t\t*) found+=(\"$c\") ;;\n"
	       "\t\tesac\n"
	       "\tdone\n"
	       "\t(( ${#found} )) && compadd -a found\n"
	       "\treturn 0\n"
	       "}\n"
	       "if [ \"$funcstack[1]\" = _provisio ]; then\n"
	       "\t_provisio \"$@\"\n"
	       "else\n"
	       "\tcompdef _provisio provisio\n"
	       "fi\n");
	return 0;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: provisio completion bash|zsh\n"
		   "\n"
		   "Prints the shell completion script: commands, subcommands, options, --format values,\n"
		   "and template, request and machine ids (read with 'templates list', 'requests list'\n"
		   "and 'machines list' on the configuration typed).\n"
		   "\n"
		   "examples:\n"
		   "  source <(provisio completion bash)\n"
		   "  provisio completion zsh > ~/.zfunc/_provisio\n"
		   "Packages install them in /usr/share/bash-completion/completions/provisio and\n"
		   "/usr/share/zsh/vendor-completions/_provisio.\n");
}

const pv_cli_command_info pv_cli_info_completion = {.usage = usage, .words = PV_WORDS_SHELL};

int cmd_completion(const pv_cli *cli, int argc, char **argv)
{
	(void)cli;
	if (pv_cli_wants_help(argc, argv)) {
		usage(stdout);
		return PV_EXIT_OK;
	}
	pv_cli_args a;
	if (pv_cli_parse(&a, "completion", NULL, false, PV_FORMAT_TABLE, argc, argv, 1) < 0 ||
	    pv_cli_words(&a, 1, 1, "the shell (bash or zsh)") < 0) {
		pv_cli_args_clear(&a);
		return PV_EXIT_USAGE;
	}
	const char *shell = a.words[0];
	int rc = strcmp(shell, "bash") == 0 ? bash() : strcmp(shell, "zsh") == 0 ? zsh() : -2;
	if (rc == -2)
		pv_cli_error("completion: unknown shell '%s' (bash, zsh)", shell);
	pv_cli_args_clear(&a);
	return rc == -2 ? PV_EXIT_USAGE : rc < 0 || fflush(stdout) != 0 ? PV_EXIT_FAIL : PV_EXIT_OK;
}
