/*
 * sample_plugin.c - a small out-of-tree provider, built as a shared object
 * and loaded by test_config.c through "plugins": [...]. Its type "echo"
 * answers every operation with success and {"echo": <params>}.
 */
#include <stdio.h>
#include <stdlib.h>
#include "provisio/config.h"
#include "provisio/error.h"

static int echo_execute(pv_strategy *s, const pv_operation *op, pv_result *out)
{
	(void)s;
	pv_result_ok(out, json_pack("{s:O?}", "echo", op->params));
	return 0;
}

static int echo_caps(pv_strategy *s, pv_capabilities *out)
{
	(void)s;
	snprintf(out->type, sizeof out->type, "echo");
	out->operations = PV_OP_SET_ALL;
	return 0;
}

static int echo_health(pv_strategy *s, pv_health *out)
{
	pv_health_set(out, true, "echo '%s' is fine", s->name);
	return 0;
}

static const pv_strategy_methods echo_methods = {
	.version = PV_STRATEGY_METHODS_VERSION,
	.execute = echo_execute,
	.capabilities = echo_caps,
	.health = echo_health,
};

static int echo_new(pv_strategy **out, const char *name, const json_t *config, const pv_clock *clock)
{
	(void)clock;
	*out = NULL;
	if (config && json_object_get(config, "fail"))
		return pv_error_set(PV_EINVAL, "echo '%s': field 'fail' asks to fail", name);
	pv_strategy *s = calloc(1, sizeof *s);
	if (!s || pv_strategy_setup(s, &echo_methods, name, "echo") < 0) {
		free(s);
		return PV_ENOMEM;
	}
	*out = s;
	return 0;
}

int provisio_plugin_register(int abi_version);

int provisio_plugin_register(int abi_version)
{
	if (abi_version != PV_PLUGIN_ABI_VERSION)
		return pv_error_set(PV_EINVAL, "built for ABI %d, host has %d", PV_PLUGIN_ABI_VERSION,
				    abi_version);
	return pv_provider_register_type("echo", echo_new);
}
