/*
 * serve.c - provisio-serve.so: `provisio serve` and `provisio top`
 * (server/, cli/cmd_serve.c, cli/cmd_top.c), so libevent and OpenSSL load
 * only in the daemon and its viewer. The program finds the commands by
 * name (cli.h: cmd_serve, cmd_top); there is nothing to register.
 */
#include "util/module.h"

PV_MODULE("serve")

static int module_register(void) { return 0; }
