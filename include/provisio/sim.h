/*
 * sim.h - the simulated provider: a real strategy with no outside world.
 *
 * For tests, benchmarks and demos. Everything is seeded and, with a manual
 * clock, deterministic. Configuration (JSON, every field optional):
 *
 *   {
 *     "seed": 42,
 *     "latency": {"distribution": "fixed|normal|lognormal",
 *                 "mean_ms": 5, "stddev_ms": 1},
 *     "failure_rate": 0.1,                 0..1, per call
 *     "failure_code": "EXECUTION_ERROR",   code of random failures
 *     "failure_class": "transient",
 *     "capacity": 100,                     live instances it can hold; -1 = unlimited
 *     "boot_delay_ms": 0,                  pending -> running after this
 *     "healthy": true,
 *     "operations": ["create_instances", ...],   default: all seven
 *     "features": {...}, "templates": [{...}],
 *     "script": ["fail:THROTTLED:throttled*5", "ok"]   see pv_sim_script
 *   }
 *
 * Scripted outcomes run before random ones: each entry is
 * "ok", "fail:CODE[:class]", or "latency:MS", optionally suffixed "*N" to
 * repeat it N times. An empty script leaves behaviour to the config.
 *
 * create_instances takes params {"count": N, "template_id": "...",
 * "request_id": "..."}; beyond capacity it creates what fits and reports
 * partial fulfilment (data.requested, data.count, data.partial: true); with
 * no room at all it fails with CAPACITY. Instances are
 * {"instance_id", "provider", "state", "template_id", "request_id",
 * "launch_time_ms", "private_ip"}.
 */
#ifndef PROVISIO_SIM_H
#define PROVISIO_SIM_H

#include <stdint.h>
#include <jansson.h>
#include "clock.h"
#include "strategy.h"

#ifdef __cplusplus
extern "C" {
#endif

/* New sim strategy (one reference). `config` may be NULL; `clock` NULL =
 * system. 0, PV_EINVAL (message names the field) or PV_ENOMEM. */
int pv_sim_new(pv_strategy **out, const char *name, const json_t *config,
	       const pv_clock *clock);

/* Appends scripted outcomes (same syntax as the config's "script"). */
int pv_sim_script(pv_strategy *s, const char *entry);
/* Changes behaviour at run time (thread-safe). */
void pv_sim_set_failure_rate(pv_strategy *s, double rate);
void pv_sim_set_latency_ms(pv_strategy *s, double mean_ms);
void pv_sim_set_healthy(pv_strategy *s, int healthy);
/* Calls received, per operation type or all (PV_OP_COUNT). */
uint64_t pv_sim_calls(pv_strategy *s, pv_op_type type);
/* Live (not terminated) instances it holds now. */
int64_t pv_sim_live_instances(pv_strategy *s);

#ifdef __cplusplus
}
#endif
#endif
