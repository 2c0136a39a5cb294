/*
 * update.c - runtime changes to a live graph: selection policy, criteria
 * and weights, checked like the configuration file before anything moves.
 */
#include <math.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include "provisio/config.h"
#include "config/config_internal.h"
#include "provisio/balancer.h"
#include "provisio/composite.h"
#include "provisio/error.h"

/* A wrapper that takes child weights at run time (balancer, composite). */
typedef int (*weight_setter)(pv_strategy *s, const char *child, double weight);

static const struct {
	const char *type;
	weight_setter set;
} weighted_kinds[] = {
	{"composite", pv_composite_set_weight},
	{"balancer", pv_balancer_set_weight},
};

static weight_setter setter_for(const pv_strategy *s)
{
	for (size_t i = 0; i < sizeof weighted_kinds / sizeof weighted_kinds[0]; i++)
		if (weighted_kinds[i].set && strcmp(weighted_kinds[i].type, s->type) == 0)
			return weighted_kinds[i].set;
	return NULL;
}

static bool good_weight(const json_t *w)
{
	return json_is_number(w) && json_number_value(w) > 0 && json_number_value(w) <= 1e9 &&
	       isfinite(json_number_value(w));
}

static void check_weights(pv_context *ctx, const json_t *weights, pv_diags *d)
{
	const char *target;
	json_t *children;
	if (!json_is_object(weights)) {
		pv_diags_add(d, PV_DIAG_ERROR, "weights", "must be an object {strategy: {child: weight}}");
		return;
	}
	json_object_foreach((json_t *)weights, target, children) {
		char path[160];
		snprintf(path, sizeof path, "weights.%s", target);
		if (!json_is_object(children)) {
			pv_diags_add(d, PV_DIAG_ERROR, path, "must be an object {child: weight}");
			continue;
		}
		pv_strategy *s = strcmp(target, "context") ? pv_context_strategy(ctx, target) : NULL;
		if (strcmp(target, "context") && !s) {
			pv_diags_add(d, PV_DIAG_ERROR, path, "'%s' is not a strategy of this graph", target);
			continue;
		}
		if (s && !setter_for(s))
			pv_diags_add(d, PV_DIAG_ERROR, path, "'%s' (%s) takes no weights", target, s->type);
		const char *child;
		json_t *w;
		json_object_foreach(children, child, w) {
			char sub[256];
			snprintf(sub, sizeof sub, "%s.%s", path, child);
			if (!good_weight(w))
				pv_diags_add(d, PV_DIAG_ERROR, sub, "must be a number > 0 and <= 1e9");
			pv_strategy *c = pv_context_strategy(ctx, child);
			if (!c)
				pv_diags_add(d, PV_DIAG_ERROR, sub, "'%s' is not a strategy of this graph", child);
			pv_strategy_unref(c);
		}
		pv_strategy_unref(s);
	}
}

int pv_config_apply_criteria(pv_context *ctx, const json_t *crit)
{
	pv_criteria pc = {0};
	json_t *exclude = json_object_get(crit, "exclude"), *prefer = json_object_get(crit, "prefer");
	/* as long as the lists given: every name counts */
	const char **ex = calloc(json_array_size(exclude) + 1, sizeof *ex);
	const char **pr = calloc(json_array_size(prefer) + 1, sizeof *pr);
	size_t i;
	json_t *x;
	if (!ex || !pr) {
		free(ex);
		free(pr);
		return pv_error_set(PV_ENOMEM, "out of memory");
	}
	pc.min_success_rate = json_number_value(json_object_get(crit, "min_success_rate"));
	pc.max_response_time_ms = json_number_value(json_object_get(crit, "max_response_time_ms"));
	pc.min_samples = (unsigned)json_integer_value(json_object_get(crit, "min_samples"));
	pc.require_healthy = json_is_true(json_object_get(crit, "require_healthy"));
	pc.required_features = json_object_get(crit, "required_features");
	json_array_foreach(json_object_get(crit, "required_operations"), i, x) {
		pv_op_type t;
		if (pv_op_parse(json_string_value(x), &t) == 0)
			pc.required_operations |= PV_OP_BIT(t);
	}
	json_array_foreach(exclude, i, x) ex[pc.n_exclude++] = json_string_value(x);
	json_array_foreach(prefer, i, x) pr[pc.n_prefer++] = json_string_value(x);
	pc.exclude = ex;
	pc.prefer = pr;
	int rc = pv_context_set_criteria(ctx, &pc); /* copies the names */
	free(ex);
	free(pr);
	return rc;
}

int pv_config_update(pv_context *ctx, const json_t *update, pv_diags *d)
{
	static const char *const keys[] = {"selection_policy", "selection_criteria", "weights", NULL};
	if (!json_is_object(update)) {
		pv_diags_add(d, PV_DIAG_ERROR, "", "an update must be a JSON object");
		return pv_error_set(PV_EINVAL, "invalid update");
	}
	const char *key;
	json_t *v;
	json_object_foreach((json_t *)update, key, v) {
		bool known = false;
		for (const char *const *k = keys; *k && !known; k++)
			known = strcmp(*k, key) == 0;
		if (!known)
			pv_diags_add(d, PV_DIAG_ERROR, key, "unknown key (valid: selection_policy, "
				     "selection_criteria, weights)");
	}
	/* Policy and criteria are checked as the file's "context" block is. */
	json_t *as_context = json_object();
	if ((v = json_object_get(update, "selection_policy")))
		json_object_set(as_context, "selection_policy", v);
	if ((v = json_object_get(update, "selection_criteria")))
		json_object_set(as_context, "selection_criteria", v);
	pv_diags local;
	pv_diags_init(&local);
	pv_config_check_context(as_context, true, &local);
	for (size_t i = 0; i < local.n; i++) /* report the update's own paths */
		pv_diags_add(d, local.items[i].level, local.items[i].path + (strncmp(local.items[i].path, "context.", 8) ? 0 : 8),
			     "%s", local.items[i].message);
	pv_diags_clear(&local);
	json_decref(as_context);
	if ((v = json_object_get(update, "weights")))
		check_weights(ctx, v, d);
	if (d->errors)
		return pv_error_set(PV_EINVAL, "%zu error(s) in the update: nothing was changed", d->errors);

	/* Apply: every value was checked above; only the context can still
	 * refuse the policy (custom without its callback), so it goes first and
	 * a refusal leaves everything as it was. */
	pv_policy policy;
	if ((v = json_object_get(update, "selection_policy")) &&
	    pv_policy_parse(json_string_value(v), &policy) == 0 && pv_context_set_policy(ctx, policy) < 0) {
		pv_diags_add(d, PV_DIAG_ERROR, "selection_policy", "%s", pv_error_last());
		return pv_error_set(PV_EINVAL, "1 error(s) in the update: nothing was changed");
	}
	json_t *crit = json_object_get(update, "selection_criteria");
	if (crit && pv_config_apply_criteria(ctx, crit) < 0)
		return PV_EINVAL;
	const char *target;
	json_t *children;
	json_object_foreach(json_object_get(update, "weights"), target, children) {
		const char *child;
		json_t *w;
		pv_strategy *s = strcmp(target, "context") ? pv_context_strategy(ctx, target) : NULL;
		json_object_foreach(children, child, w) {
			int rc = s ? setter_for(s)(s, child, json_number_value(w))
				   : pv_context_set_weight(ctx, child, json_number_value(w));
			if (rc < 0)
				pv_diags_add(d, PV_DIAG_ERROR, target, "%s", pv_error_last());
		}
		pv_strategy_unref(s);
	}
	return d->errors ? pv_error_set(PV_EINVAL, "%zu weight(s) not applied", d->errors) : 0;
}
