/*
 * libvirt.h - the libvirt provider: machines as domains on KVM/QEMU (or any
 * libvirt driver) hosts on premises.
 *
 * HPC sites burst into their own hypervisors before paying for cloud. This
 * strategy turns provisio operations into libvirt calls on a pool of hosts:
 * create_instances renders a domain XML template, optionally gives each
 * machine a copy-on-write overlay of a base image, defines and starts the
 * domain; terminate destroys, undefines and removes the overlay. Domain names
 * are derived from the request id and the index in the request, so a retried
 * create finds and reuses what the first attempt made instead of defining
 * twice. The instance id is the domain name.
 *
 * Configuration (JSON; docs/libvirt.md lists defaults and ranges):
 *
 *   {
 *     "uri": "qemu:///system",                  one host, or
 *     "hosts": ["qemu+ssh://kvm1/system",       several, each a URI or
 *               {"uri": "...", "name": "kvm2", "capacity": 8}],
 *     "capacity": -1,                           default per-host limit of
 *                                               provisio domains; -1 = none
 *     "placement": "spread" | "pack",
 *     "name_prefix": "pv-<name>-",
 *     "domain_type": "auto" | "kvm" | "qemu" | "test" | ...,
 *     "domain_xml": "<domain type='{{domain_type}}'>...", or
 *     "domain_xml_file": "/etc/provisio/domain.xml",
 *     "memory_mb": 1024, "vcpus": 1, "network": "default",
 *     "storage": {"pool": "default", "base_image": "base.qcow2",
 *                 "format": "qcow2", "overlay": "auto" | "required" | "off"},
 *     "ip_sources": ["lease", "agent"],
 *     "max_instances_per_request": 100,
 *     "templates": [{Host Factory template}, ...]
 *   }
 *
 * Template placeholders: {{name}} {{memory_mb}} {{memory_kib}} {{vcpus}}
 * {{disk}} {{disk_format}} {{disk_xml}} {{network}} {{domain_type}}
 * {{request_id}} {{template_id}} {{index}}.
 *
 * libvirt prints its errors to stderr by default; creating a provider
 * installs a quiet process-wide handler (virSetErrorFunc) and reports
 * libvirt's errors in results instead.
 */
#ifndef PROVISIO_LIBVIRT_H
#define PROVISIO_LIBVIRT_H

#include <jansson.h>
#include "clock.h"
#include "strategy.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * New libvirt strategy (one reference; release with pv_strategy_unref).
 * Connections open in init (pv_strategy_initialize) and again on demand
 * after a failure, so an unreachable host does not make the strategy
 * unusable. `clock` NULL = system. Returns 0, PV_EINVAL (the message names
 * the field and its valid values) or PV_ENOMEM.
 */
int pv_libvirt_new(pv_strategy **out, const char *name, const json_t *config,
		   const pv_clock *clock);

/* The provisio machine state ("pending", "running", "stopping", "stopped",
 * "terminated") for a libvirt domain state and reason (virDomainGetState).
 * Static string. */
const char *pv_libvirt_machine_state(int vir_state, int reason);

#ifdef __cplusplus
}
#endif
#endif
