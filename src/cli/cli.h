/*
 * cli.h - what the command files of the `provisio` program share.
 *
 * Each command group lives in its own file (cmd_<group>.c) and is listed
 * once in main.c's table; serve and top are in the serve module. Commands print JSON on stdout, diagnostics on
 * stderr, and exit non-zero on failure.
 */
#ifndef PV_CLI_H
#define PV_CLI_H

#include <stdbool.h>
#include <stdio.h>
#include <jansson.h>
#include "provisio/provisio.h"
#include "provisio/broker.h"
#include "provisio/hostfactory.h"
#include "util/module.h"

typedef struct pv_cli {
	const char *config_path; /* --config */
	const char *env_name;    /* --env */
	bool strict;             /* --strict */
	const char *prog;        /* argv[0] of the program */
} pv_cli;

/* Exit statuses. */
enum { PV_EXIT_OK = 0, PV_EXIT_FAIL = 1, PV_EXIT_USAGE = 2 };

typedef int (*pv_cli_command)(const pv_cli *cli, int argc, char **argv);

int cmd_config(const pv_cli *cli, int argc, char **argv);
int cmd_providers(const pv_cli *cli, int argc, char **argv);
int cmd_migrate(const pv_cli *cli, int argc, char **argv);
/* --- server --- */
/* In the serve module (util/module.h): main.c finds them by name. */
PV_MODULE_EXPORT int cmd_serve(const pv_cli *cli, int argc, char **argv);
PV_MODULE_EXPORT int cmd_top(const pv_cli *cli, int argc, char **argv);
/* --- end server --- */
/* broker branch */
int cmd_hostfactory(const pv_cli *cli, int argc, char **argv);
int cmd_templates(const pv_cli *cli, int argc, char **argv);
int cmd_machines(const pv_cli *cli, int argc, char **argv);
int cmd_requests(const pv_cli *cli, int argc, char **argv);
/* Opens the broker from the configuration named by the global options;
 * prints what is wrong on stderr on failure. cmd_templates.c. */
int pv_cli_open_broker(const pv_cli *cli, pv_broker **out);

/* Prints `j` (indented) on stdout and a newline; takes the reference. */
void pv_cli_print(json_t *j);
/* Prints "provisio: MESSAGE" on stderr. */
void pv_cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Prints every diagnostic on stderr. */
void pv_cli_print_diags(const pv_diags *d);
/* Opens the configuration named by the global options into a context and
 * its graph (both owned by the caller); prints what is wrong on failure. */
int pv_cli_open(const pv_cli *cli, pv_context **ctx, json_t **graph);
/* True when argv holds -h or --help. */
bool pv_cli_wants_help(int argc, char **argv);
/* ---- options (cli/options.c) and output (cli/output.c) ---- */

/* How a command prints its data: a table for people, or the REST API's
 * JSON document (--format json, --json). */
typedef enum pv_cli_format { PV_FORMAT_TABLE = 0, PV_FORMAT_JSON } pv_cli_format;

/* One flag a command takes. A table of them ends with {NULL}. */
typedef struct pv_cli_flag {
	const char *name;        /* "--limit" */
	const char *value_name;  /* "N" when it takes a value, NULL for a switch */
	const char *replaced_by; /* a deprecated spelling: the flag it stands for
				    (used, with a warning naming both) */
} pv_cli_flag;

#define PV_CLI_FLAGS_MAX 16

/* A command line read against a command's flags. */
typedef struct pv_cli_args {
	const char *command;                  /* "requests list", for messages */
	const pv_cli_flag *flags;
	bool formats;                         /* --format/--json accepted */
	const char *values[PV_CLI_FLAGS_MAX]; /* per flag: its value, "" for a
						 switch, NULL when absent */
	char **words;                         /* the other arguments, in order */
	size_t n_words;
	pv_cli_format format;
} pv_cli_args;

/*
 * Reads argv[first..argc) against `flags` ("--flag VALUE", "--flag=VALUE",
 * "--" ends the flags); with `formats`, also --format table|json and
 * --json, the format defaulting to `def`. An unknown flag, a missing value
 * or a bad format prints an error naming it and the command: -1 (exit
 * PV_EXIT_USAGE). Free with pv_cli_args_clear either way.
 */
int pv_cli_parse(pv_cli_args *a, const char *command, const pv_cli_flag *flags, bool formats,
		 pv_cli_format def, int argc, char **argv, int first);
/* The value of flag `name` ("" for a switch), NULL when not given. */
const char *pv_cli_arg(const pv_cli_args *a, const char *name);
bool pv_cli_flag_set(const pv_cli_args *a, const char *name);
/* Checks min <= words <= max; else prints what is missing (`what`) or the
 * first extra word: -1. */
int pv_cli_words(const pv_cli_args *a, size_t min, size_t max, const char *what);
void pv_cli_args_clear(pv_cli_args *a);

typedef enum pv_cli_column_kind {
	PV_COL_TEXT = 0,
	PV_COL_TIME,      /* epoch seconds, shown as local time */
	PV_COL_UNLIMITED, /* a negative number is "unlimited" */
} pv_cli_column_kind;

typedef struct pv_cli_column {
	const char *title;
	const char *path; /* dotted path in a row ("attributes.ncpus.1"); "" is
			     the row's key when the rows are an object */
	pv_cli_column_kind kind;
} pv_cli_column;

/* A table: the rows are doc[rows] (an array, or an object of rows), or
 * the document itself when rows is NULL; columns end with {NULL}. */
typedef struct pv_cli_table {
	const char *rows;
	const pv_cli_column *columns;
} pv_cli_table;

/* Prints `doc` (taken) as JSON, or as `table`; a document with no table
 * is shown as one "path value" line per leaf. */
void pv_cli_output(json_t *doc, pv_cli_format format, const pv_cli_table *table);

/* ---- what each command takes (cli/manual.c, cli/completion.c) ---- */

/* What the words of a subcommand name, for shell completion. */
typedef enum pv_cli_words_kind {
	PV_WORDS_NONE = 0,
	PV_WORDS_TEMPLATE, /* template ids */
	PV_WORDS_REQUEST,  /* request ids */
	PV_WORDS_MACHINE,  /* machine ids */
	PV_WORDS_FILE,     /* file names */
	PV_WORDS_OPERATION, /* kernel operations (providers exec) */
	PV_WORDS_COMMAND,   /* provisio's commands (help) */
	PV_WORDS_SHELL      /* bash, zsh (completion) */
} pv_cli_words_kind;

/* One subcommand: its flags (the very table its parser reads) and whether
 * it takes --format table|json and --json. A table ends with {NULL}. */
typedef struct pv_cli_sub {
	const char *name;
	const pv_cli_flag *flags;
	bool formats;
	pv_cli_words_kind words;
} pv_cli_sub;

/*
 * What a command is made of: its --help text and the subcommands and flags
 * its parser accepts. The parser, `--help`, the man page and the shell
 * completion all read this one descriptor, so they cannot drift apart. A
 * command without subcommands has `subs` NULL and its own `flags`.
 */
typedef struct pv_cli_command_info {
	void (*usage)(FILE *f);
	const pv_cli_sub *subs;
	const pv_cli_flag *flags;
	bool formats;
	pv_cli_words_kind words;
} pv_cli_command_info;

/* The subcommand `name` of `info`; NULL after an error naming the valid
 * ones (`command` is the command's name, for the message). */
const pv_cli_sub *pv_cli_sub_find(const pv_cli_command_info *info, const char *command, const char *name);

/* The command table of main.c, for the man page and the completion. */
typedef struct pv_cli_command_entry {
	const char *name;
	pv_cli_command run;                /* NULL: cmd_<name> in `module` */
	const char *module;
	const char *summary;
	const pv_cli_command_info *info;   /* NULL: pv_cli_info_<name> in `module` */
} pv_cli_command_entry;

const pv_cli_command_entry *pv_cli_commands(size_t *n);
/* The descriptor of a command, loading its module when it is in one;
 * NULL after printing why. */
const pv_cli_command_info *pv_cli_command_info_of(const pv_cli_command_entry *e);
/* The global options (before the command), as a flag table. */
extern const pv_cli_flag pv_cli_global_flags[];
/* main.c's --help text. */
void pv_cli_usage(FILE *f);

extern const pv_cli_command_info pv_cli_info_config, pv_cli_info_providers, pv_cli_info_migrate,
	pv_cli_info_hostfactory, pv_cli_info_templates, pv_cli_info_machines, pv_cli_info_requests,
	pv_cli_info_help, pv_cli_info_completion;
/* --- server --- */
PV_MODULE_EXPORT extern const pv_cli_command_info pv_cli_info_serve, pv_cli_info_top;
/* --- end server --- */

/* `provisio help [COMMAND]`, `help --man 1|5` (cli/manual.c) and
 * `provisio completion bash|zsh` (cli/completion.c). */
int cmd_help(const pv_cli *cli, int argc, char **argv);
int cmd_completion(const pv_cli *cli, int argc, char **argv);

/* Puts the heap of a short-lived command in huge pages; call before the
 * first malloc. cli/heap.c. */
void pv_cli_heap_in_huge_pages(void);

#endif
