/*
 * run_cli.h - runs the real `provisio` program for CLI tests and captures
 * its exit status, stdout (parsed as JSON when it is JSON) and stderr.
 */
#ifndef PV_TEST_RUN_CLI_H
#define PV_TEST_RUN_CLI_H

#include <jansson.h>

typedef struct cli_run {
	int status;   /* exit status, or -1 */
	char *out;    /* stdout text */
	char *err;    /* stderr text */
	json_t *json; /* stdout as JSON, or NULL */
} cli_run;

/* Runs PV_CLI_BIN with the shell-quoted argument string `args` (and
 * optional environment assignments in `env`, e.g. "A=1 B=2"). */
cli_run cli(const char *env, const char *args);
void cli_free(cli_run *r);

#endif
