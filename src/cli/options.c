/*
 * options.c - one option parser for every command: each command lists the
 * flags it takes, and anything else is an error naming the flag and the
 * command (a mistyped flag must not be ignored: `templates list --jsn`
 * would print a table a script then misreads). --format table|json and its
 * short form --json are the same on every command that prints data.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cli/cli.h"

static int find(const pv_cli_flag *flags, const char *name, size_t len)
{
	for (int i = 0; flags && flags[i].name; i++)
		if (strlen(flags[i].name) == len && strncmp(flags[i].name, name, len) == 0)
			return i;
	return -1;
}

/* The valid flags, for the message about an unknown one. */
static void valid_list(const pv_cli_args *a, char *buf, size_t size)
{
	size_t off = 0;
	buf[0] = '\0';
	for (int i = 0; a->flags && a->flags[i].name && off < size; i++)
		if (!a->flags[i].replaced_by)
			off += (size_t)snprintf(buf + off, size - off, "%s%s", off ? ", " : "", a->flags[i].name);
	if (a->formats && off < size)
		off += (size_t)snprintf(buf + off, size - off, "%s--format, --json", off ? ", " : "");
	if (!off)
		snprintf(buf, size, "none");
}

static int set_format(pv_cli_args *a, const char *value)
{
	if (strcmp(value, "table") == 0)
		a->format = PV_FORMAT_TABLE;
	else if (strcmp(value, "json") == 0)
		a->format = PV_FORMAT_JSON;
	else {
		pv_cli_error("%s: --format '%s' is not one of table, json", a->command, value);
		return -1;
	}
	return 0;
}

/* A word that is a value, not a flag: "-" (stdin) and negative numbers. */
static bool is_word(const char *s) { return s[0] != '-' || !s[1] || (s[1] >= '0' && s[1] <= '9'); }

int pv_cli_parse(pv_cli_args *a, const char *command, const pv_cli_flag *flags, bool formats,
		 pv_cli_format def, int argc, char **argv, int first)
{
	memset(a, 0, sizeof *a);
	for (int i = 0; flags && flags[i].name; i++)
		if (i >= PV_CLI_FLAGS_MAX)
			abort(); /* a command's table longer than pv_cli_args holds */
	a->command = command;
	a->flags = flags;
	a->formats = formats;
	a->format = def;
	a->words = calloc((size_t)(argc > 0 ? argc : 1), sizeof *a->words);
	if (!a->words) {
		pv_cli_error("out of memory");
		return -1;
	}
	bool options_end = false;
	for (int i = first; i < argc; i++) {
		const char *w = argv[i];
		if (options_end || is_word(w)) {
			a->words[a->n_words++] = argv[i];
			continue;
		}
		if (strcmp(w, "--") == 0) {
			options_end = true;
			continue;
		}
		const char *eq = strchr(w, '=');
		size_t len = eq ? (size_t)(eq - w) : strlen(w);
		if (formats && len == 6 && strncmp(w, "--json", 6) == 0 && !eq) {
			a->format = PV_FORMAT_JSON;
			continue;
		}
		if (formats && len == 8 && strncmp(w, "--format", 8) == 0) {
			const char *v = eq ? eq + 1 : i + 1 < argc ? argv[++i] : NULL;
			if (!v) {
				pv_cli_error("%s: --format needs a value (table or json)", command);
				return -1;
			}
			if (set_format(a, v) < 0)
				return -1;
			continue;
		}
		int f = find(flags, w, len);
		if (f < 0) {
			char valid[512];
			valid_list(a, valid, sizeof valid);
			pv_cli_error("%s: unknown option '%.*s' (valid: %s; see --help)", command, (int)len, w, valid);
			return -1;
		}
		const pv_cli_flag *flag = &flags[f];
		if (flag->replaced_by) {
			pv_cli_error("%s: %s is deprecated; use %s", command, flag->name, flag->replaced_by);
			f = find(flags, flag->replaced_by, strlen(flag->replaced_by));
			if (f < 0)
				abort(); /* a table naming a flag it does not have */
		}
		if (!flags[f].value_name) {
			if (eq) {
				pv_cli_error("%s: %s takes no value", command, flag->name);
				return -1;
			}
			a->values[f] = "";
			continue;
		}
		const char *v = eq ? eq + 1 : i + 1 < argc ? argv[++i] : NULL;
		if (!v) {
			pv_cli_error("%s: %s needs a value (%s)", command, flag->name, flags[f].value_name);
			return -1;
		}
		a->values[f] = v;
	}
	return 0;
}

const char *pv_cli_arg(const pv_cli_args *a, const char *name)
{
	int f = find(a->flags, name, strlen(name));
	return f < 0 ? NULL : a->values[f];
}

bool pv_cli_flag_set(const pv_cli_args *a, const char *name) { return pv_cli_arg(a, name) != NULL; }

int pv_cli_words(const pv_cli_args *a, size_t min, size_t max, const char *what)
{
	if (a->n_words < min) {
		pv_cli_error("%s: missing %s (see --help)", a->command, what);
		return -1;
	}
	if (a->n_words > max) {
		pv_cli_error("%s: unexpected argument '%s' (see --help)", a->command, a->words[max]);
		return -1;
	}
	return 0;
}

void pv_cli_args_clear(pv_cli_args *a)
{
	free(a->words);
	a->words = NULL;
	a->n_words = 0;
}
