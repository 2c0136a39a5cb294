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
/* Puts the heap of a short-lived command in huge pages; call before the
 * first malloc. cli/heap.c. */
void pv_cli_heap_in_huge_pages(void);

#endif
