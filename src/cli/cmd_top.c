/*
 * cmd_top.c - `provisio top`: the live dashboard of a running server.
 *
 * Not built yet (issue 9, item 4): until it is, the same numbers are at
 * GET /api/v1/providers and GET /metrics of `provisio serve`.
 */
#include <stdio.h>
#include "cli/cli.h"

int cmd_top(const pv_cli *cli, int argc, char **argv)
{
	(void)cli;
	(void)argc;
	(void)argv;
	pv_cli_error("top: not implemented yet; read GET /api/v1/providers or GET /metrics of "
		     "'provisio serve' (docs/serve.md)");
	return PV_EXIT_FAIL;
}
