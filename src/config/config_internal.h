/*
 * config_internal.h - what the configuration files share beyond config.h.
 */
#ifndef PV_CONFIG_INTERNAL_H
#define PV_CONFIG_INTERNAL_H

#include <stdbool.h>
#include "provisio/config.h"

/* Checks a "context" block (policy, criteria, interval, flags). */
void pv_config_check_context(const json_t *ctx, bool strict, pv_diags *diags);

/* Sets the context's criteria from a checked "selection_criteria" object. */
int pv_config_apply_criteria(pv_context *ctx, const json_t *crit);

/* Checks the "config" block of a wrapper of `kind` (fallback, balancer,
 * composite, chaos) alone, so its problems are reported even when the
 * wrapper cannot be built. 0, or PV_EINVAL naming the field. An unknown
 * kind passes (it is reported as such elsewhere). */
int pv_config_check_kind(const char *kind, const char *name, const json_t *config);

/* Makes every well-formed enabled provider of `graph` and drops it, so the
 * problems of its config are reported when the graph has others and will
 * not be built. */
void pv_config_check_providers(const json_t *graph, pv_diags *diags);

#endif
