/*
 * rest.c - provisio-rest.so: the rest provider (providers/rest) and the
 * spec's provider1/provider2 types it serves, so libcurl loads only where
 * a configuration names one of them.
 */
#include "provisio/rest.h"
#include "util/module.h"

PV_MODULE("rest")

static int module_register(void)
{
	static const char *const types[] = {"rest", "provider1", "provider2"};
	for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
		int rc = pv_provider_register_type(types[i], pv_rest_new);
		if (rc < 0)
			return rc;
	}
	return 0;
}
