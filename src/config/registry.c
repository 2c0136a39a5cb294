/*
 * registry.c - provider factories by type name, and out-of-tree providers
 * loaded from shared objects.
 */
#include <dlfcn.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include "provisio/config.h"
#include "provisio/error.h"
#include "provisio/aws.h"
#include "provisio/libvirt.h"
#include "provisio/rest.h"
#include "provisio/sim.h"
#include "provisio/local.h" /* broker branch: the local provider */

typedef struct factory {
	char *type;
	pv_provider_factory fn;
} factory;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static factory *factories;
static size_t n_factories, cap_factories;
static bool builtins_done;

/* Built-in provider types; each provider adds its line here. */
static const struct {
	const char *type;
	pv_provider_factory fn;
} builtins[] = {
	{"sim", pv_sim_new},
	{"libvirt", pv_libvirt_new},
	{"aws", pv_aws_new},
	{"rest", pv_rest_new},
	{"provider1", pv_rest_new},
	{"provider2", pv_rest_new},
	{"local", pv_local_new},
};

static int add_locked(const char *type, pv_provider_factory fn)
{
	for (size_t i = 0; i < n_factories; i++) {
		if (strcmp(factories[i].type, type) == 0) {
			factories[i].fn = fn;
			return 0;
		}
	}
	if (n_factories == cap_factories) {
		size_t cap = cap_factories ? cap_factories * 2 : 16;
		factory *grown = realloc(factories, cap * sizeof *grown);
		if (!grown)
			return pv_error_set(PV_ENOMEM, "out of memory");
		factories = grown;
		cap_factories = cap;
	}
	char *copy = strdup(type);
	if (!copy)
		return pv_error_set(PV_ENOMEM, "out of memory");
	factories[n_factories++] = (factory){copy, fn};
	return 0;
}

static void ensure_builtins_locked(void)
{
	if (builtins_done)
		return;
	builtins_done = true;
	for (size_t i = 0; i < sizeof builtins / sizeof builtins[0]; i++)
		add_locked(builtins[i].type, builtins[i].fn);
}

int pv_provider_register_type(const char *type, pv_provider_factory fn)
{
	if (!type || !*type || !fn)
		return pv_error_set(PV_EINVAL, "provider type needs a non-empty name and a factory");
	pthread_mutex_lock(&lock);
	ensure_builtins_locked();
	int rc = add_locked(type, fn);
	pthread_mutex_unlock(&lock);
	return rc;
}

pv_provider_factory pv_provider_factory_find(const char *type)
{
	pv_provider_factory fn = NULL;
	pthread_mutex_lock(&lock);
	ensure_builtins_locked();
	for (size_t i = 0; type && i < n_factories; i++)
		if (strcmp(factories[i].type, type) == 0)
			fn = factories[i].fn;
	pthread_mutex_unlock(&lock);
	return fn;
}

json_t *pv_provider_types(void)
{
	json_t *a = json_array();
	pthread_mutex_lock(&lock);
	ensure_builtins_locked();
	for (size_t i = 0; i < n_factories; i++)
		json_array_append_new(a, json_string(factories[i].type));
	pthread_mutex_unlock(&lock);
	return a;
}

int pv_plugin_load(const char *path)
{
	if (!path || !*path)
		return pv_error_set(PV_EINVAL, "plugin path is empty");
	/* The handle is kept for the life of the process: the plugin's code
	 * backs strategies that may live until exit. */
	void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (!h)
		return pv_error_set(PV_EIO, "cannot load plugin '%s': %s", path, dlerror());
	int (*reg)(int) = (int (*)(int))dlsym(h, PV_PLUGIN_SYMBOL);
	if (!reg) {
		dlclose(h);
		return pv_error_set(PV_EINVAL, "plugin '%s' does not export %s(int abi_version)", path,
				    PV_PLUGIN_SYMBOL);
	}
	int rc = reg(PV_PLUGIN_ABI_VERSION);
	if (rc < 0) {
		char why[256];
		snprintf(why, sizeof why, "%s", pv_error_last());
		dlclose(h);
		return pv_error_set(rc, "plugin '%s' refused to register (ABI version %d): %s", path,
				    PV_PLUGIN_ABI_VERSION, why[0] ? why : "no reason given");
	}
	return 0;
}
