/*
 * chaos.h - a decorator that injects latency and faults in front of any
 * strategy, to rehearse failures in staging ("Fallback Testing" of the
 * deployment checklist) without touching the provider.
 *
 * Config (every field optional):
 *   {"failure_rate": 0.2,            0..1, per call
 *    "failure_code": "EXECUTION_ERROR", "failure_class": "transient",
 *    "latency_ms": 50,               added before the call
 *    "operations": ["create_instances"],   only these (default: all)
 *    "seed": 1}
 * Injected failures never reach the wrapped strategy; the result's provider
 * is the chaos strategy's name and metadata.injected is true.
 */
#ifndef PROVISIO_CHAOS_H
#define PROVISIO_CHAOS_H

#include <jansson.h>
#include "clock.h"
#include "strategy.h"

#ifdef __cplusplus
extern "C" {
#endif

/* New chaos strategy around `child` (takes its own reference). 0 or
 * PV_EINVAL naming the field. */
int pv_chaos_new(pv_strategy **out, const char *name, pv_strategy *child, const json_t *config,
		 const pv_clock *clock);

/* Checks a chaos config alone (what pv_chaos_new would reject). */
int pv_chaos_config_check(const char *name, const json_t *config);

#ifdef __cplusplus
}
#endif
#endif
