/* cmd_top.c - placeholder replaced below */
#include "cli/cli.h"
int cmd_top(const pv_cli *cli, int argc, char **argv)
{
	(void)cli; (void)argc; (void)argv;
	return PV_EXIT_FAIL;
}
