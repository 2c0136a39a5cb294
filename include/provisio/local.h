/*
 * local.h - the `local` provider: machines are supervised processes on
 * this host.
 *
 * The embedded default and the provider of the demo: no cloud, yet real
 * machines that start, run, and must really be stopped. Each machine is a
 * detached supervisor process (its own session, reparented to init, stdio
 * on /dev/null so it never holds Host Factory's pipe) that runs the
 * configured command and, asked to stop with SIGTERM, passes SIGTERM to the
 * command's process group and sends SIGKILL after the grace period. The
 * provider remembers each machine as a JSON file in its work directory
 * (pid + process start time, so a reused pid is never mistaken for a
 * machine), which is what lets one short process create a machine and the
 * next one find, check and stop it. The record is written before the
 * process exists and the command runs only once the record names it, so a
 * creator killed at any point leaves no machine the records do not know
 * (docs/local.md).
 *
 * Configuration (every field optional):
 *   {
 *     "workdir": "./var/local",      default $HF_PROVIDER_WORKDIR/local, else ./var/local
 *     "capacity": 16,                live machines at most; -1 = unlimited
 *     "command": "sleep 86400",      what a machine runs
 *     "template_commands": false,    true: a template's "command" replaces it
 *                                    (off: a template with one is refused)
 *     "grace_period_ms": 2000,       SIGTERM -> SIGKILL delay, 0..600000
 *     "hostname": "node",            default gethostname(); machines are <hostname>-<n>
 *     "answer_delay_ms": 0           waits after creating, before answering (tests
 *                                    use it to kill a caller mid-call), 0..600000
 *   }
 *
 * create_instances {"count", "template_id", "request_id", "client_token",
 * "template": {... "command" ...}} is idempotent per client_token: asked
 * again with the same token it answers with the machines it already made.
 * Beyond capacity it makes what fits (data.partial) or fails with CAPACITY.
 * Instances: {"instance_id", "provider", "state", "name", "private_ip":
 * "127.0.0.1", "launch_time_ms", "template_id", "request_id", "pid"}.
 */
#ifndef PROVISIO_LOCAL_H
#define PROVISIO_LOCAL_H

#include <jansson.h>
#include "clock.h"
#include "strategy.h"

#ifdef __cplusplus
extern "C" {
#endif

/* New local provider (one reference). 0, PV_EINVAL naming the field,
 * PV_EIO (work directory cannot be created) or PV_ENOMEM. */
int pv_local_new(pv_strategy **out, const char *name, const json_t *config, const pv_clock *clock);

#ifdef __cplusplus
}
#endif
#endif
