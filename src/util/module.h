/*
 * module.h - the parts of provisio that pull in heavy libraries, loaded as
 * shared objects on first use (util/module.c).
 *
 * A Host Factory call is one short process: every library the program
 * links is loaded, relocated and initialised in every call whatever the
 * configuration uses. So the libvirt, aws and rest providers, the
 * PostgreSQL store and `provisio serve` live in modules (provisio-NAME.so)
 * that a process loads only when its configuration or command names them.
 *
 * A module is a plugin (config.h: provisio_plugin_register) that also
 * exports the version of provisio it was built from; its code resolves
 * provisio's own functions from the program that loads it.
 */
#ifndef PV_UTIL_MODULE_H
#define PV_UTIL_MODULE_H

#include "provisio/config.h"
#include "provisio/error.h"
#include "provisio/provisio.h"

/* Module code is built with hidden visibility; what the loader looks up
 * is marked with this. */
#define PV_MODULE_EXPORT __attribute__((visibility("default")))

/*
 * Loads module `name` ("libvirt", "aws", "rest", "postgres", "serve") once
 * per process; later calls return at once. The first provisio-NAME.so of
 * the search path (docs/configuration.md, "Modules"):
 *   $PROVISIO_MODULE_PATH (folders separated by ':'), when set; else
 *   <the program's folder>/modules          (the build tree)
 *   <the program's folder>/PV_MODULE_RELDIR (installed: ../lib/provisio/modules)
 *   PV_MODULE_INSTALL_DIR                   (the configured install folder)
 * 0, or PV_ENOTFOUND naming the module, every path tried and what builds
 * it; PV_EIO when it is there but cannot be loaded (dlerror: a library it
 * needs is missing), PV_EINVAL for an unknown name or a module of another
 * version. Any thread.
 */
int pv_module_load(const char *name);

/*
 * dlopen()s `path` for good and calls its provisio_plugin_register; a
 * module (`module` names it; NULL for an out-of-tree plugin) must also be
 * of this program's version. 0 with the handle in *handle, or PV_E*.
 */
int pv_module_open(const char *path, const char *module, void **handle);

/* Loads module `name` and finds `symbol` in it (PV_MODULE_EXPORT there). */
int pv_module_symbol(const char *name, const char *symbol, void **out);

/*
 * Every module's entry point, in src/modules/NAME.c:
 *     PV_MODULE("libvirt")
 *     static int module_register(void) { ... pv_provider_register_type ... }
 */
#define PV_MODULE(name)                                                                           \
	static int module_register(void);                                                         \
	PV_MODULE_EXPORT const char provisio_module_version[] = PROVISIO_VERSION;                 \
	PV_MODULE_EXPORT int provisio_plugin_register(int abi_version)                            \
	{                                                                                         \
		if (abi_version != PV_PLUGIN_ABI_VERSION)                                         \
			return pv_error_set(PV_EINVAL, "module '%s' is built for plugin ABI %d, " \
					    "the program has %d", name, PV_PLUGIN_ABI_VERSION,    \
					    abi_version);                                         \
		return module_register();                                                 \
	}

extern PV_MODULE_EXPORT const char provisio_module_version[];
PV_MODULE_EXPORT int provisio_plugin_register(int abi_version);

#endif
