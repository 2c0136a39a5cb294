/*
 * libvirt.c - provisio-libvirt.so: the libvirt provider (providers/libvirt),
 * so libvirt, glib, GnuTLS and libxml2 load only where a configuration
 * names a libvirt provider.
 */
#include "provisio/libvirt.h"
#include "util/module.h"

PV_MODULE("libvirt")

static int module_register(void) { return pv_provider_register_type("libvirt", pv_libvirt_new); }
