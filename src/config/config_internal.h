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

#endif
