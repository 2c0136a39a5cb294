/*
 * module.c - finds and loads provisio's modules (module.h says why they
 * exist) and out-of-tree plugins.
 *
 * Modules are found relative to the program, so one layout serves the
 * build tree (build/provisio, build/modules/) and an installation
 * (bin/provisio, lib/provisio/modules/) wherever its prefix is; the
 * configured install folder comes last for a program copied elsewhere.
 */
#include <dlfcn.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "util/module.h"

#ifndef PV_MODULE_RELDIR
#define PV_MODULE_RELDIR "../lib/provisio/modules"
#endif
#ifndef PV_MODULE_INSTALL_DIR
#define PV_MODULE_INSTALL_DIR "/usr/local/lib/provisio/modules"
#endif

/* What each module provides and what it takes to build it: the error of a
 * missing module says both. */
static const struct module_info {
	const char *name;
	const char *provides;
	const char *needs;
} modules[] = {
	{"libvirt", "the libvirt provider", "libvirt-dev, libxml2-dev"},
	{"aws", "the aws provider", "libcurl4-openssl-dev, libxml2-dev"},
	{"rest", "the rest provider", "libcurl4-openssl-dev"},
	{"postgres", "the PostgreSQL store", "libpq-dev"},
	{"serve", "the serve and top commands", "libevent-dev, libssl-dev"},
};
#define N_MODULES (sizeof modules / sizeof modules[0])

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
/* Kept for the life of the process: module code backs strategies, stores
 * and commands that may live until exit. */
static void *handles[N_MODULES];

int pv_module_open(const char *path, const char *module, void **handle)
{
	void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (!h)
		return pv_error_set(PV_EIO, "cannot load %s '%s': %s", module ? "module" : "plugin",
				    path, dlerror());
	const char *version = module ? dlsym(h, "provisio_module_version") : NULL;
	if (module && (!version || strcmp(version, PROVISIO_VERSION) != 0)) {
		int rc = pv_error_set(PV_EINVAL, "module '%s' is from provisio %s, this program is %s",
				      path, version ? version : "(no version)", PROVISIO_VERSION);
		dlclose(h);
		return rc;
	}
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
		return pv_error_set(rc, "%s '%s' refused to register (ABI version %d): %s",
				    module ? "module" : "plugin", path, PV_PLUGIN_ABI_VERSION,
				    why[0] ? why : "no reason given");
	}
	*handle = h;
	return 0;
}

/* The folder of the running program ("" when /proc is not there). */
static void program_dir(char *dir, size_t size)
{
	ssize_t n = readlink("/proc/self/exe", dir, size - 1);
	dir[n > 0 ? n : 0] = '\0';
	char *slash = strrchr(dir, '/');
	if (slash)
		*slash = '\0';
}

/* The folders to search, ':'-separated, in `out`; says where they came from. */
static const char *search_path(char *out, size_t size)
{
	const char *env = getenv("PROVISIO_MODULE_PATH");
	if (env && *env) {
		snprintf(out, size, "%s", env);
		return " (PROVISIO_MODULE_PATH)";
	}
	char dir[PATH_MAX];
	program_dir(dir, sizeof dir);
	if (dir[0])
		snprintf(out, size, "%s/modules:%s/%s:%s", dir, dir, PV_MODULE_RELDIR,
			 PV_MODULE_INSTALL_DIR);
	else
		snprintf(out, size, "%s", PV_MODULE_INSTALL_DIR);
	return "";
}

/* The path of provisio-NAME.so in the first folder that has it; or
 * PV_ENOTFOUND listing every path tried. */
static int find(const struct module_info *m, char *path, size_t size)
{
	char dirs[3 * PATH_MAX + 64], tried[3 * PATH_MAX + 256] = "";
	const char *from = search_path(dirs, sizeof dirs);
	for (char *save, *dir = strtok_r(dirs, ":", &save); dir; dir = strtok_r(NULL, ":", &save)) {
		snprintf(path, size, "%s/provisio-%s.so", dir, m->name);
		if (access(path, F_OK) == 0)
			return 0;
		size_t used = strlen(tried);
		snprintf(tried + used, sizeof tried - used, "%s%s", used ? ", " : "", path);
	}
	return pv_error_set(PV_ENOTFOUND,
			    "module '%s' (%s) is not installed: tried %s%s; it is built with provisio "
			    "(CMake target provisio-%s, needs %s) and installed in "
			    "<libdir>/provisio/modules",
			    m->name, m->provides, tried, from, m->name, m->needs);
}

static const struct module_info *lookup(const char *name, size_t *index)
{
	for (size_t i = 0; name && i < N_MODULES; i++)
		if (strcmp(modules[i].name, name) == 0) {
			*index = i;
			return &modules[i];
		}
	return NULL;
}

static int load(const char *name, void **handle)
{
	size_t i;
	const struct module_info *m = lookup(name, &i);
	if (!m) {
		char names[128] = "";
		for (size_t k = 0, used = 0; k < N_MODULES; k++, used = strlen(names))
			snprintf(names + used, sizeof names - used, "%s%s", k ? ", " : "", modules[k].name);
		return pv_error_set(PV_EINVAL, "no module '%s' (modules: %s)", name ? name : "", names);
	}
	/* The lock covers registration too: a second thread asking for the
	 * same module waits until its types are there. */
	pthread_mutex_lock(&lock);
	int rc = 0;
	if (!handles[i]) {
		char path[PATH_MAX + 64];
		rc = find(m, path, sizeof path);
		if (rc == 0)
			rc = pv_module_open(path, m->name, &handles[i]);
	}
	*handle = handles[i];
	pthread_mutex_unlock(&lock);
	return rc;
}

int pv_module_load(const char *name)
{
	void *h;
	return load(name, &h);
}

int pv_module_symbol(const char *name, const char *symbol, void **out)
{
	void *h;
	int rc = load(name, &h);
	if (rc < 0)
		return rc;
	*out = dlsym(h, symbol);
	return *out ? 0 : pv_error_set(PV_EINVAL, "module '%s' has no symbol '%s'", name, symbol);
}
