/*
 * run_cli.c - see run_cli.h.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include "run_cli.h"

#ifndef PV_CLI_BIN
#define PV_CLI_BIN "provisio"
#endif

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return strdup("");
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fseek(f, 0, SEEK_SET);
	char *buf = calloc(1, (size_t)n + 1);
	if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n)
		buf[0] = '\0';
	fclose(f);
	return buf;
}

cli_run cli(const char *env, const char *args)
{
	cli_run r = {.status = -1};
	char out[] = "/tmp/pv-cli-out-XXXXXX", err[] = "/tmp/pv-cli-err-XXXXXX";
	int fo = mkstemp(out), fe = mkstemp(err);
	close(fo);
	close(fe);
	char *cmd;
	if (asprintf(&cmd, "%s %s %s >%s 2>%s </dev/null", env ? env : "", PV_CLI_BIN, args, out, err) < 0)
		return r;
	int st = system(cmd);
	free(cmd);
	r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
	r.out = slurp(out);
	r.err = slurp(err);
	r.json = json_loads(r.out, 0, NULL);
	unlink(out);
	unlink(err);
	return r;
}

void cli_free(cli_run *r)
{
	free(r->out);
	free(r->err);
	json_decref(r->json);
	memset(r, 0, sizeof *r);
}
