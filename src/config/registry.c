/*
 * registry.c - provider factories by type name, and out-of-tree providers
 * loaded from shared objects.
 *
 * The providers that need heavy libraries (libvirt, libcurl, libxml2) are
 * modules (util/module.h): their types are known from the start, and the
 * first lookup of one loads its module, which registers the factory.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include "provisio/config.h"
#include "provisio/error.h"
#include "provisio/sim.h"
#include "provisio/local.h" /* broker branch: the local provider */
#include "util/module.h"

typedef struct factory {
	char *type;
	pv_provider_factory fn; /* NULL until `module` has loaded */
	const char *module;
} factory;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static factory *factories;
static size_t n_factories, cap_factories;
static bool builtins_done;

/* Built-in provider types; each provider adds its line here: its factory
 * when it is in the program, else the module that has it. */
static const struct {
	const char *type;
	pv_provider_factory fn;
	const char *module;
} builtins[] = {
	{"sim", pv_sim_new, NULL},
	{"libvirt", NULL, "libvirt"},
	{"aws", NULL, "aws"},
	{"rest", NULL, "rest"},
	{"provider1", NULL, "rest"},
	{"provider2", NULL, "rest"},
	{"local", pv_local_new, NULL},
};

static factory *find_locked(const char *type)
{
	for (size_t i = 0; type && i < n_factories; i++)
		if (strcmp(factories[i].type, type) == 0)
			return &factories[i];
	return NULL;
}

static int add_locked(const char *type, pv_provider_factory fn, const char *module)
{
	factory *known = find_locked(type);
	if (known) {
		known->fn = fn;
		return 0;
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
	factories[n_factories++] = (factory){copy, fn, module};
	return 0;
}

static void ensure_builtins_locked(void)
{
	if (builtins_done)
		return;
	builtins_done = true;
	for (size_t i = 0; i < sizeof builtins / sizeof builtins[0]; i++)
		add_locked(builtins[i].type, builtins[i].fn, builtins[i].module);
}

int pv_provider_register_type(const char *type, pv_provider_factory fn)
{
	if (!type || !*type || !fn)
		return pv_error_set(PV_EINVAL, "provider type needs a non-empty name and a factory");
	pthread_mutex_lock(&lock);
	ensure_builtins_locked();
	int rc = add_locked(type, fn, NULL);
	pthread_mutex_unlock(&lock);
	return rc;
}

bool pv_provider_type_known(const char *type)
{
	pthread_mutex_lock(&lock);
	ensure_builtins_locked();
	bool known = find_locked(type) != NULL;
	pthread_mutex_unlock(&lock);
	return known;
}

pv_provider_factory pv_provider_factory_find(const char *type)
{
	pthread_mutex_lock(&lock);
	ensure_builtins_locked();
	factory *f = find_locked(type);
	pv_provider_factory fn = f ? f->fn : NULL;
	const char *module = f ? f->module : NULL;
	pthread_mutex_unlock(&lock);
	if (fn)
		return fn;
	if (!module) {
		pv_error_set(PV_ENOTFOUND, "no factory for provider type '%s'", type ? type : "");
		return NULL;
	}
	/* Unlocked: the module registers its types as it loads. */
	if (pv_module_load(module) < 0)
		return NULL;
	pthread_mutex_lock(&lock);
	f = find_locked(type);
	fn = f ? f->fn : NULL;
	pthread_mutex_unlock(&lock);
	if (!fn)
		pv_error_set(PV_ENOTFOUND, "module '%s' did not register provider type '%s'", module, type);
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
	void *handle;
	return pv_module_open(path, NULL, &handle);
}
