/*
 * normalize.c - the three accepted formats, turned into one explicit graph
 * and validated (docs/configuration.md says how the blocks combine).
 *
 *   explicit  {"providers": [...], "strategies": [...], "default_strategy": ...}
 *   spec      {"provider": {"type", "strategy", "<name>": {...},
 *                           "load_balancing", "fallback", "composite"}}
 *   legacy    {"provider": {"providers": [...], "selection_policy": "UPPER", ...}}
 *
 * Every problem is reported with its JSON path; nothing stops at the first.
 */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "config/config_internal.h"
#include "provisio/config.h"
#include "provisio/context.h"
#include "provisio/error.h"

#define KINDS "fallback, balancer, composite, chaos"

typedef struct norm {
	pv_diags *diags;
	bool strict;
} norm;

static void validate_context(norm *n, const json_t *ctx);

static void unknown_keys(norm *n, const json_t *obj, const char *path, const char *const *known)
{
	const char *key;
	json_t *v;
	json_object_foreach((json_t *)obj, key, v) {
		bool ok = false;
		for (const char *const *k = known; *k && !ok; k++)
			ok = strcmp(*k, key) == 0;
		if (!ok)
			pv_diags_add(n->diags, n->strict ? PV_DIAG_ERROR : PV_DIAG_WARNING, path,
				     "unknown key '%s'%s", key, n->strict ? "" : " (ignored)");
	}
}

static bool valid_name(const char *s)
{
	if (!s || !*s || strlen(s) > 63)
		return false;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && !strchr("_.-", *s))
			return false;
	return true;
}

static bool is_known_type(const char *type) { return pv_provider_factory_find(type) != NULL; }

/* ---- explicit format: validation of the graph ------------------------------- */

/* Where an item came from in the user's file: items made from the spec or
 * legacy formats carry "_at"; the explicit format's own path otherwise. */
static void item_path(const json_t *item, const char *list, size_t i, char *out, size_t size)
{
	const char *at = json_string_value(json_object_get(item, "_at"));
	if (at)
		snprintf(out, size, "%s", at);
	else
		snprintf(out, size, "%s[%zu]", list, i);
}

static const char *const provider_keys[] = {"name", "type", "enabled", "priority", "weight",
					    "config", "selectable", "capabilities", "_at",
					    "_config_at", NULL};
static const char *const strategy_keys[] = {"name", "kind", "children", "primary", "fallbacks",
					    "child", "config", "selectable", "_at",
					    "_config_at", NULL};
static const char *const context_keys[] = {"selection_policy", "selection_criteria",
					   "health_check_interval_seconds",
					   "metrics_collection_enabled", "failover_enabled", NULL};
static const char *const criteria_keys[] = {"min_success_rate", "max_response_time_ms",
					    "require_healthy", "min_samples", "required_operations",
					    "required_features", "exclude", "prefer", NULL};

/* Name -> index in a list (providers then strategies); -1 when absent. */
static long lookup(const json_t *graph, const char *name, bool *is_strategy)
{
	const char *lists[] = {"providers", "strategies"};
	for (int l = 0; l < 2; l++) {
		size_t i;
		json_t *item;
		json_array_foreach(json_object_get(graph, lists[l]), i, item) {
			const char *nm = json_string_value(json_object_get(item, "name"));
			if (nm && name && strcmp(nm, name) == 0) {
				if (is_strategy)
					*is_strategy = l == 1;
				return (long)i;
			}
		}
	}
	return -1;
}

/* How many providers and strategies carry `name`. */
static size_t count_name(const json_t *graph, const char *name)
{
	const char *lists[] = {"providers", "strategies"};
	size_t count = 0;
	for (int l = 0; l < 2; l++) {
		size_t i;
		json_t *item;
		json_array_foreach(json_object_get(graph, lists[l]), i, item) {
			const char *nm = json_string_value(json_object_get(item, "name"));
			count += nm && strcmp(nm, name) == 0;
		}
	}
	return count;
}

static void check_names_array(norm *n, const json_t *a, const char *path, bool allow_empty)
{
	size_t i;
	json_t *v;
	if (!json_is_array(a) || (!allow_empty && json_array_size(a) == 0)) {
		pv_diags_add(n->diags, PV_DIAG_ERROR, path, "must be a %sarray of strategy names",
			     allow_empty ? "" : "non-empty ");
		return;
	}
	json_array_foreach(a, i, v) if (!json_is_string(v))
		pv_diags_add(n->diags, PV_DIAG_ERROR, path, "item %zu must be a name (string)", i);
}

static void check_ref(norm *n, const json_t *graph, const char *name, const char *path)
{
	bool strat;
	long i = lookup(graph, name, &strat);
	if (i < 0) {
		pv_diags_add(n->diags, PV_DIAG_ERROR, path, "'%s' names no provider or strategy", name);
		return;
	}
	if (!strat) {
		json_t *p = json_array_get(json_object_get(graph, "providers"), (size_t)i);
		if (json_is_false(json_object_get(p, "enabled")))
			pv_diags_add(n->diags, PV_DIAG_WARNING, path,
				     "'%s' is disabled: it is left out", name);
	}
}

/* Append the string items of a (possibly bad) names array: the others are
 * reported by check_names_array, and every later pass may treat each child
 * as a name. */
static void append_names(json_t *out, const json_t *names)
{
	size_t i;
	json_t *v;
	if (json_is_string(names))
		json_array_append(out, (json_t *)names);
	else
		json_array_foreach(names, i, v) if (json_is_string(v))
			json_array_append(out, v);
}

/* Children names of a strategy item, as a new array of strings. */
static json_t *children_of(const json_t *s)
{
	json_t *out = json_array();
	const char *kind = json_string_value(json_object_get(s, "kind"));
	if (kind && strcmp(kind, "fallback") == 0) {
		append_names(out, json_object_get(s, "primary"));
		append_names(out, json_object_get(s, "fallbacks"));
	} else if (kind && strcmp(kind, "chaos") == 0) {
		append_names(out, json_object_get(s, "child"));
	} else {
		append_names(out, json_object_get(s, "children"));
	}
	return out;
}

/* Appends the providers under `name` to `out` (once each); `depth`
 * bounds a cycle the checks would report anyway. */
static void add_leaves(const json_t *graph, const char *name, json_t *out, int depth)
{
	bool strat = false;
	long i = lookup(graph, name, &strat);
	if (i < 0 || depth > 64)
		return;
	if (!strat) {
		size_t k;
		json_t *v;
		json_array_foreach(out, k, v) if (strcmp(json_string_value(v), name) == 0) return;
		json_array_append_new(out, json_string(name));
		return;
	}
	json_t *kids = children_of(json_array_get(json_object_get(graph, "strategies"), (size_t)i));
	size_t k;
	json_t *v;
	json_array_foreach(kids, k, v) add_leaves(graph, json_string_value(v), out, depth + 1);
	json_decref(kids);
}

json_t *pv_config_leaves(const json_t *graph)
{
	json_t *out = json_object();
	const char *lists[] = {"providers", "strategies"};
	for (int l = 0; l < 2; l++) {
		size_t i;
		json_t *item;
		json_array_foreach(json_object_get(graph, lists[l]), i, item) {
			const char *name = json_string_value(json_object_get(item, "name"));
			json_t *leaves = json_array();
			if (name)
				add_leaves(graph, name, leaves, 0);
			json_object_set_new(out, name ? name : "", leaves);
		}
	}
	return out;
}

/* Depth-first cycle search: state 0 new, 1 on the stack, 2 done. */
static bool has_cycle(const json_t *graph, size_t i, int *state, char *trail, size_t size)
{
	json_t *strategies = json_object_get(graph, "strategies");
	state[i] = 1;
	json_t *kids = children_of(json_array_get(strategies, i));
	size_t k;
	json_t *v;
	bool cyc = false;
	json_array_foreach(kids, k, v) {
		bool strat;
		long j = lookup(graph, json_string_value(v), &strat);
		if (j < 0 || !strat)
			continue;
		if (state[j] == 1 || (state[j] == 0 && has_cycle(graph, (size_t)j, state, trail, size))) {
			size_t len = strlen(trail);
			snprintf(trail + len, size - len, "%s%s", len ? " <- " : "", json_string_value(v));
			cyc = true;
			break;
		}
	}
	json_decref(kids);
	state[i] = cyc ? 1 : 2;
	return cyc;
}

static void validate_criteria(norm *n, const json_t *c)
{
	const char *path = "context.selection_criteria";
	if (!json_is_object(c)) {
		pv_diags_add(n->diags, PV_DIAG_ERROR, path, "must be an object");
		return;
	}
	unknown_keys(n, c, path, criteria_keys);
	json_t *v;
	char sub[256];
	if ((v = json_object_get(c, "min_success_rate")) &&
	    (!json_is_number(v) || json_number_value(v) < 0 || json_number_value(v) > 100))
		pv_diags_add(n->diags, PV_DIAG_ERROR, "context.selection_criteria.min_success_rate",
			     "must be a percentage from 0 to 100");
	if ((v = json_object_get(c, "max_response_time_ms")) &&
	    (!json_is_number(v) || json_number_value(v) < 0))
		pv_diags_add(n->diags, PV_DIAG_ERROR, "context.selection_criteria.max_response_time_ms",
			     "must be a number of milliseconds >= 0");
	if ((v = json_object_get(c, "min_samples")) &&
	    (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > 1000000))
		pv_diags_add(n->diags, PV_DIAG_ERROR, "context.selection_criteria.min_samples",
			     "must be an integer from 0 to 1000000");
	if ((v = json_object_get(c, "require_healthy")) && !json_is_boolean(v))
		pv_diags_add(n->diags, PV_DIAG_ERROR, "context.selection_criteria.require_healthy",
			     "must be true or false");
	const char *lists[] = {"required_operations", "required_features", "exclude", "prefer"};
	for (int l = 0; l < 4; l++) {
		snprintf(sub, sizeof sub, "%s.%s", path, lists[l]);
		if ((v = json_object_get(c, lists[l]))) {
			size_t i;
			json_t *x;
			if (!json_is_array(v)) {
				pv_diags_add(n->diags, PV_DIAG_ERROR, sub, "must be an array of strings");
				continue;
			}
			json_array_foreach(v, i, x) {
				pv_op_type t;
				if (!json_is_string(x))
					pv_diags_add(n->diags, PV_DIAG_ERROR, sub, "item %zu must be a string", i);
				else if (l == 0 && pv_op_parse(json_string_value(x), &t) < 0)
					pv_diags_add(n->diags, PV_DIAG_ERROR, sub, "%s", pv_error_last());
			}
		}
	}
}

void pv_config_check_context(const json_t *ctx, bool strict, pv_diags *diags)
{
	norm n = {diags, strict};
	validate_context(&n, ctx);
}

static void validate_context(norm *n, const json_t *ctx)
{
	if (!ctx)
		return;
	if (!json_is_object(ctx)) {
		pv_diags_add(n->diags, PV_DIAG_ERROR, "context", "must be an object");
		return;
	}
	unknown_keys(n, ctx, "context", context_keys);
	json_t *v = json_object_get(ctx, "selection_policy");
	pv_policy p;
	if (v && (!json_is_string(v) || pv_policy_parse(json_string_value(v), &p) < 0))
		pv_diags_add(n->diags, PV_DIAG_ERROR, "context.selection_policy", "%s",
			     json_is_string(v) ? pv_error_last() : "must be a policy name (string)");
	v = json_object_get(ctx, "health_check_interval_seconds");
	if (v && (!json_is_number(v) || !(json_number_value(v) > 0) || json_number_value(v) > 86400))
		pv_diags_add(n->diags, PV_DIAG_ERROR, "context.health_check_interval_seconds",
			     "must be a number of seconds > 0 and <= 86400");
	const char *bools[] = {"metrics_collection_enabled", "failover_enabled"};
	for (int b = 0; b < 2; b++)
		if ((v = json_object_get(ctx, bools[b])) && !json_is_boolean(v))
			pv_diags_add(n->diags, PV_DIAG_ERROR, "context", "'%s' must be true or false", bools[b]);
	if ((v = json_object_get(ctx, "selection_criteria")))
		validate_criteria(n, v);
}

/* A provider's or strategy's name: well formed and unique in the graph. */
static void check_name(norm *n, const json_t *graph, const char *name, const char *item)
{
	char path[192];
	snprintf(path, sizeof path, "%s.name", item);
	if (!valid_name(name))
		pv_diags_add(n->diags, PV_DIAG_ERROR, path,
			     "must be 1-63 characters of letters, digits, '_', '.', '-'");
	else if (count_name(graph, name) > 1)
		pv_diags_add(n->diags, PV_DIAG_ERROR, path, "'%s' is used twice: names must be unique", name);
}

static void validate_providers(norm *n, const json_t *graph)
{
	json_t *providers = json_object_get(graph, "providers");
	char path[128];
	size_t i;
	json_t *p;
	if (!json_is_array(providers)) {
		pv_diags_add(n->diags, PV_DIAG_ERROR, "providers", "must be an array of provider objects");
		return;
	}
	json_array_foreach(providers, i, p) {
		item_path(p, "providers", i, path, sizeof path);
		if (!json_is_object(p)) {
			pv_diags_add(n->diags, PV_DIAG_ERROR, path, "must be an object");
			continue;
		}
		unknown_keys(n, p, path, provider_keys);
		const char *name = json_string_value(json_object_get(p, "name"));
		const char *type = json_string_value(json_object_get(p, "type"));
		char sub[160];
		check_name(n, graph, name, path);
		snprintf(sub, sizeof sub, "%s.type", path);
		if (!type)
			pv_diags_add(n->diags, PV_DIAG_ERROR, sub, "is required (a provider type)");
		else if (!is_known_type(type)) {
			json_t *types = pv_provider_types();
			char *list = json_dumps(types, JSON_COMPACT);
			pv_diags_add(n->diags, PV_DIAG_ERROR, sub, "'%s' is not a known provider type (known: %s)",
				     type, list ? list : "?");
			free(list);
			json_decref(types);
		}
		json_t *v;
		if ((v = json_object_get(p, "enabled")) && !json_is_boolean(v))
			pv_diags_add(n->diags, PV_DIAG_ERROR, path, "'enabled' must be true or false");
		if ((v = json_object_get(p, "selectable")) && !json_is_boolean(v))
			pv_diags_add(n->diags, PV_DIAG_ERROR, path, "'selectable' must be true or false");
		if ((v = json_object_get(p, "priority")) && !json_is_integer(v))
			pv_diags_add(n->diags, PV_DIAG_ERROR, path, "'priority' must be an integer");
		if ((v = json_object_get(p, "weight")) &&
		    (!json_is_number(v) || !(json_number_value(v) > 0) || json_number_value(v) > 1e9))
			pv_diags_add(n->diags, PV_DIAG_ERROR, path, "'weight' must be a number > 0 and <= 1e9");
		if ((v = json_object_get(p, "config")) && !json_is_object(v))
			pv_diags_add(n->diags, PV_DIAG_ERROR, path, "'config' must be an object");
	}
}

static void validate_strategies(norm *n, const json_t *graph)
{
	json_t *strategies = json_object_get(graph, "strategies");
	char path[128], sub[192];
	size_t i;
	json_t *s;
	if (!strategies)
		return;
	if (!json_is_array(strategies)) {
		pv_diags_add(n->diags, PV_DIAG_ERROR, "strategies", "must be an array of strategy objects");
		return;
	}
	json_array_foreach(strategies, i, s) {
		item_path(s, "strategies", i, path, sizeof path);
		if (!json_is_object(s)) {
			pv_diags_add(n->diags, PV_DIAG_ERROR, path, "must be an object");
			continue;
		}
		unknown_keys(n, s, path, strategy_keys);
		const char *name = json_string_value(json_object_get(s, "name"));
		const char *kind = json_string_value(json_object_get(s, "kind"));
		check_name(n, graph, name, path);
		snprintf(sub, sizeof sub, "%s.kind", path);
		if (!kind || (strcmp(kind, "fallback") && strcmp(kind, "balancer") &&
			      strcmp(kind, "composite") && strcmp(kind, "chaos"))) {
			pv_diags_add(n->diags, PV_DIAG_ERROR, sub, "%s%s%s is not one of " KINDS,
				     kind ? "'" : "", kind ? kind : "(missing)", kind ? "'" : "");
			continue;
		}
		if (json_object_get(s, "config") && !json_is_object(json_object_get(s, "config")))
			pv_diags_add(n->diags, PV_DIAG_ERROR, path, "'config' must be an object");
		json_t *v;
		if ((v = json_object_get(s, "selectable")) && !json_is_boolean(v))
			pv_diags_add(n->diags, PV_DIAG_ERROR, path, "'selectable' must be true or false");
		if (strcmp(kind, "fallback") == 0) {
			snprintf(sub, sizeof sub, "%s.primary", path);
			if (!json_is_string(json_object_get(s, "primary")))
				pv_diags_add(n->diags, PV_DIAG_ERROR, sub, "is required: the name of the primary strategy");
			snprintf(sub, sizeof sub, "%s.fallbacks", path);
			if (json_object_get(s, "fallbacks"))
				check_names_array(n, json_object_get(s, "fallbacks"), sub, true);
		} else if (strcmp(kind, "chaos") == 0) {
			snprintf(sub, sizeof sub, "%s.child", path);
			if (!json_is_string(json_object_get(s, "child")))
				pv_diags_add(n->diags, PV_DIAG_ERROR, sub, "is required: the name of the wrapped strategy");
		} else {
			snprintf(sub, sizeof sub, "%s.children", path);
			check_names_array(n, json_object_get(s, "children"), sub, false);
		}
		json_t *kids = children_of(s);
		size_t k;
		json_t *c;
		json_array_foreach(kids, k, c) {
			bool is_primary = k == 0 && json_is_string(json_object_get(s, "primary"));
			snprintf(sub, sizeof sub, "%s.%s", path, strcmp(kind, "fallback") == 0
					 ? (is_primary ? "primary" : "fallbacks") : strcmp(kind, "chaos") == 0 ? "child" : "children");
			if (name && strcmp(json_string_value(c), name) == 0)
				pv_diags_add(n->diags, PV_DIAG_ERROR, sub, "'%s' cannot contain itself", name);
			else
				check_ref(n, graph, json_string_value(c), sub);
		}
		json_decref(kids);
	}
	size_t count = json_array_size(strategies);
	int *state = calloc(count ? count : 1, sizeof *state);
	for (size_t j = 0; state && j < count; j++) {
		char trail[512] = "";
		if (state[j] == 0 && has_cycle(graph, j, state, trail, sizeof trail)) {
			item_path(json_array_get(strategies, j), "strategies", j, path, sizeof path);
			pv_diags_add(n->diags, PV_DIAG_ERROR, path, "cycle in the strategy graph: %s <- %s",
				     json_string_value(json_object_get(json_array_get(strategies, j), "name")), trail);
		}
	}
	free(state);
}

static void validate_graph(norm *n, json_t *graph)
{
	static const char *const top_keys[] = {"providers", "strategies", "default_strategy",
					       "context", "plugins", NULL};
	unknown_keys(n, graph, "", top_keys);
	validate_providers(n, graph);
	validate_strategies(n, graph);
	validate_context(n, json_object_get(graph, "context"));
	json_t *d = json_object_get(graph, "default_strategy");
	if (d && !json_is_string(d))
		pv_diags_add(n->diags, PV_DIAG_ERROR, "default_strategy", "must be a strategy name");
	else if (d)
		check_ref(n, graph, json_string_value(d), "default_strategy");
	json_t *plugins = json_object_get(graph, "plugins");
	size_t i;
	json_t *v;
	if (plugins && !json_is_array(plugins))
		pv_diags_add(n->diags, PV_DIAG_ERROR, "plugins", "must be an array of shared-object paths");
	json_array_foreach(plugins, i, v) if (!json_is_string(v))
		pv_diags_add(n->diags, PV_DIAG_ERROR, "plugins", "item %zu must be a path (string)", i);
	if (json_array_size(json_object_get(graph, "providers")) == 0 && !n->diags->errors)
		pv_diags_add(n->diags, PV_DIAG_WARNING, "providers",
			     "no provider is configured: this file looks like an overlay; "
			     "load it with --env over a base file");
}

/* ---- spec format ------------------------------------------------------------------ */

static const char *const spec_reserved[] = {"type", "strategy", "load_balancing", "fallback",
					    "composite", "default_strategy", "plugins", NULL};

static bool is_reserved(const char *key)
{
	for (const char *const *r = spec_reserved; *r; r++)
		if (strcmp(*r, key) == 0)
			return true;
	return false;
}

static json_t *strip_keys(const json_t *obj, const char *const *keys)
{
	json_t *copy = json_deep_copy(obj);
	for (const char *const *k = keys; *k; k++)
		json_object_del(copy, *k);
	return copy;
}

static json_t *enabled_provider_names(const json_t *providers)
{
	json_t *names = json_array();
	size_t i;
	json_t *p;
	json_array_foreach(providers, i, p) if (!json_is_false(json_object_get(p, "enabled")))
		json_array_append(names, json_object_get(p, "name"));
	return names;
}

static json_t *from_spec(norm *n, const json_t *prov)
{
	json_t *graph = json_object(), *providers = json_array(), *strategies = json_array();
	json_object_set_new(graph, "providers", providers);
	json_object_set_new(graph, "strategies", strategies);
	const char *key;
	json_t *v;
	char path[160];
	static const char *const meta_keys[] = {"type", "enabled", "weight", "priority", NULL};
	json_object_foreach((json_t *)prov, key, v) {
		if (is_reserved(key))
			continue;
		snprintf(path, sizeof path, "provider.%s", key);
		if (!json_is_object(v)) {
			pv_diags_add(n->diags, PV_DIAG_ERROR, path, "a provider block must be an object");
			continue;
		}
		const char *type = json_string_value(json_object_get(v, "type"));
		if (!type && is_known_type(key))
			type = key;
		if (!type) {
			pv_diags_add(n->diags, PV_DIAG_ERROR, path,
				     "'type' is required: '%s' is not a known provider type", key);
			continue;
		}
		json_t *item = json_pack("{s:s, s:s, s:o, s:s, s:s}", "name", key, "type", type, "config",
					 strip_keys(v, meta_keys), "_at", path, "_config_at", path);
		const char *copy_keys[] = {"enabled", "weight", "priority"};
		for (int k = 0; k < 3; k++)
			if (json_object_get(v, copy_keys[k]))
				json_object_set(item, copy_keys[k], json_object_get(v, copy_keys[k]));
		json_array_append_new(providers, item);
	}

	json_t *names = enabled_provider_names(providers);
	const char *deflt = NULL;
	json_t *ctx = json_object();
	json_t *strategy = json_object_get(prov, "strategy");
	bool failover = true;
	if (strategy) {
		if (!json_is_object(strategy)) {
			pv_diags_add(n->diags, PV_DIAG_ERROR, "provider.strategy", "must be an object");
		} else {
			json_object_update(ctx, strategy);
			failover = !json_is_false(json_object_get(strategy, "failover_enabled"));
		}
	}
	json_object_set_new(graph, "context", ctx);

	json_t *lb = json_object_get(prov, "load_balancing");
	if (lb && json_is_object(lb) && json_array_size(names)) {
		json_t *weights = json_object_get(lb, "weights");
		json_t *kids = json_array();
		if (json_is_object(weights) && json_object_size(weights)) {
			const char *wk;
			json_t *wv;
			json_object_foreach(weights, wk, wv) json_array_append_new(kids, json_string(wk));
		} else {
			json_array_extend(kids, names);
		}
		json_array_append_new(strategies, json_pack("{s:s, s:s, s:o, s:O, s:s, s:s}", "name",
							     "load_balancing", "kind", "balancer", "children", kids,
							     "config", lb, "_at", "provider.load_balancing",
							     "_config_at", "provider.load_balancing"));
		deflt = "load_balancing";
	} else if (lb && !json_is_object(lb)) {
		pv_diags_add(n->diags, PV_DIAG_ERROR, "provider.load_balancing", "must be an object");
	}

	json_t *comp = json_object_get(prov, "composite");
	if (comp && json_is_object(comp) && json_array_size(names)) {
		json_t *kids = json_object_get(comp, "strategies");
		static const char *const comp_struct[] = {"strategies", NULL};
		json_array_append_new(strategies,
				      json_pack("{s:s, s:s, s:O, s:o, s:s, s:s}", "name", "composite", "kind",
						"composite", "children", json_is_array(kids) ? kids : names, "config",
						strip_keys(comp, comp_struct), "_at", "provider.composite",
						"_config_at", "provider.composite"));
		deflt = "composite";
	}

	json_t *fb = json_object_get(prov, "fallback");
	if (fb && json_is_object(fb) && json_array_size(names)) {
		const char *type = json_string_value(json_object_get(prov, "type"));
		json_t *primary = json_object_get(fb, "primary");
		json_t *fallbacks = json_object_get(fb, "fallbacks");
		const char *pname = json_string_value(primary);
		if (!pname)
			pname = lookup(graph, "load_balancing", NULL) >= 0 ? "load_balancing"
				: (type && lookup(graph, type, NULL) >= 0) ? type
				: json_string_value(json_array_get(names, 0));
		json_t *fbs = json_array();
		if (!failover)
			; /* failover_enabled: false keeps the primary alone */
		else if (fallbacks)
			json_array_extend(fbs, fallbacks);
		else {
			size_t i;
			json_t *nm;
			json_array_foreach(names, i, nm) if (strcmp(json_string_value(nm), pname) != 0)
				json_array_append(fbs, nm);
		}
		static const char *const fb_struct[] = {"primary", "fallbacks", NULL};
		json_array_append_new(strategies,
				      json_pack("{s:s, s:s, s:s, s:o, s:o, s:s, s:s}", "name", "fallback", "kind",
						"fallback", "primary", pname, "fallbacks", fbs, "config",
						strip_keys(fb, fb_struct), "_at", "provider.fallback", "_config_at",
						"provider.fallback"));
		deflt = "fallback";
	} else if (fb && !json_is_object(fb)) {
		pv_diags_add(n->diags, PV_DIAG_ERROR, "provider.fallback", "must be an object");
	}

	json_t *explicit_default = json_object_get(prov, "default_strategy");
	const char *type = json_string_value(json_object_get(prov, "type"));
	if (json_is_string(explicit_default))
		deflt = json_string_value(explicit_default);
	else if (!deflt && type && lookup(graph, type, NULL) >= 0)
		deflt = type;
	if (deflt)
		json_object_set_new(graph, "default_strategy", json_string(deflt));
	if (json_object_get(prov, "plugins"))
		json_object_set(graph, "plugins", json_object_get(prov, "plugins"));
	json_decref(names);
	return graph;
}

/* ---- legacy format (the Python original's provider.providers[]) -------------------- */

static const char *const legacy_keys[] = {"providers", "selection_policy", "health_check_interval",
					  "circuit_breaker", "default_provider_type", "default_provider_instance",
					  "provider_defaults", "active_provider", "plugins", NULL};

static int by_priority(const void *a, const void *b)
{
	json_int_t pa = json_integer_value(json_object_get(*(json_t *const *)a, "priority"));
	json_int_t pb = json_integer_value(json_object_get(*(json_t *const *)b, "priority"));
	return (pa > pb) - (pa < pb);
}

static json_t *from_legacy(norm *n, const json_t *prov)
{
	unknown_keys(n, prov, "provider", legacy_keys);
	json_t *graph = json_object(), *providers = json_deep_copy(json_object_get(prov, "providers"));
	json_object_set_new(graph, "providers", providers);
	size_t pi;
	json_t *pitem;
	json_array_foreach(providers, pi, pitem) {
		char at[64], cat[80];
		snprintf(at, sizeof at, "provider.providers[%zu]", pi);
		snprintf(cat, sizeof cat, "%s.config", at);
		if (json_is_object(pitem)) {
			json_object_set_new(pitem, "_at", json_string(at));
			json_object_set_new(pitem, "_config_at", json_string(cat));
		}
	}
	json_t *ctx = json_object();
	json_object_set_new(graph, "context", ctx);
	json_t *policy = json_object_get(prov, "selection_policy");
	char lower[64] = "first_available";
	if (json_is_string(policy)) {
		snprintf(lower, sizeof lower, "%s", json_string_value(policy));
		for (char *c = lower; *c; c++)
			*c = (char)tolower((unsigned char)*c);
		json_object_set_new(ctx, "selection_policy", json_string(lower));
	}
	json_t *interval = json_object_get(prov, "health_check_interval");
	if (interval)
		json_object_set(ctx, "health_check_interval_seconds", interval);

	json_t *cb = json_object_get(prov, "circuit_breaker");
	if (json_is_object(cb) && !json_is_false(json_object_get(cb, "enabled")) &&
	    json_array_size(providers) > 0) {
		/* Providers in priority order behind one breaker-guarded failover chain. */
		size_t np = json_array_size(providers);
		json_t **sorted = calloc(np, sizeof *sorted);
		for (size_t i = 0; sorted && i < np; i++)
			sorted[i] = json_array_get(providers, i);
		if (sorted)
			qsort(sorted, np, sizeof *sorted, by_priority);
		json_t *fbs = json_array();
		for (size_t i = 1; sorted && i < np; i++)
			if (!json_is_false(json_object_get(sorted[i], "enabled")))
				json_array_append(fbs, json_object_get(sorted[i], "name"));
		json_t *cfg = json_pack("{s:s}", "mode", "circuit_breaker");
		if (json_object_get(cb, "failure_threshold"))
			json_object_set(cfg, "circuit_breaker_threshold", json_object_get(cb, "failure_threshold"));
		if (json_object_get(cb, "recovery_timeout"))
			json_object_set(cfg, "circuit_breaker_timeout_seconds", json_object_get(cb, "recovery_timeout"));
		if (json_object_get(cb, "half_open_max_calls"))
			json_object_set(cfg, "circuit_breaker_half_open_probes", json_object_get(cb, "half_open_max_calls"));
		bool chain_serves = strcmp(lower, "first_available") == 0;
		json_object_set_new(graph, "strategies",
				    json_pack("[{s:s, s:s, s:O, s:o, s:o, s:b, s:s, s:s}]", "name", "failover",
					      "kind", "fallback", "primary",
					      sorted ? json_object_get(sorted[0], "name") : json_null(),
					      "fallbacks", fbs, "config", cfg, "selectable", chain_serves, "_at",
					      "provider.circuit_breaker", "_config_at", "provider.circuit_breaker"));
		if (chain_serves) {
			json_object_set_new(graph, "default_strategy", json_string("failover"));
			json_object_del(ctx, "selection_policy");
		} else {
			/* the policy chooses among the providers themselves */
			size_t i;
			json_t *p;
			json_array_foreach(providers, i, p) json_object_set_new(p, "selectable", json_true());
		}
		free(sorted);
	}
	if (json_object_get(prov, "plugins"))
		json_object_set(graph, "plugins", json_object_get(prov, "plugins"));
	return graph;
}

/* ---- entry point ------------------------------------------------------------------------ */

static const char *const top_known[] = {"version", "provider", "providers", "strategies",
					"default_strategy", "context", "plugins", "broker", "store",
					"server", "templates", "logging", "hostfactory", NULL};

json_t *pv_config_normalize(const json_t *doc, bool strict, pv_diags *diags)
{
	norm n = {diags, strict};
	if (!json_is_object(doc)) {
		pv_diags_add(diags, PV_DIAG_ERROR, "", "the configuration must be a JSON object");
		return NULL;
	}
	json_t *graph;
	json_t *prov = json_object_get(doc, "provider");
	if (json_object_get(doc, "providers") || json_object_get(doc, "strategies")) {
		static const char *const graph_keys[] = {"providers", "strategies", "default_strategy",
							 "context", "plugins", NULL};
		graph = json_object();
		for (const char *const *k = graph_keys; *k; k++)
			if (json_object_get(doc, *k))
				json_object_set(graph, *k, json_object_get(doc, *k));
		if (!json_object_get(graph, "providers"))
			json_object_set_new(graph, "providers", json_array());
		if (prov)
			pv_diags_add(diags, PV_DIAG_ERROR, "provider",
				     "a file uses either the 'provider' block or 'providers'/'strategies', not both");
	} else if (json_is_object(prov) && json_object_get(prov, "providers")) {
		graph = from_legacy(&n, prov);
	} else if (json_is_object(prov)) {
		graph = from_spec(&n, prov);
	} else {
		pv_diags_add(diags, PV_DIAG_ERROR, "",
			     "no 'provider' block and no 'providers' list: nothing to configure");
		return NULL;
	}
	/* Unknown top-level sections are listed in one line: files brought from
	 * the Python original carry several (storage, server, ...). */
	char list[512] = "";
	const char *key;
	json_t *v;
	json_object_foreach((json_t *)doc, key, v) {
		bool known = false;
		for (const char *const *k = top_known; *k && !known; k++)
			known = strcmp(*k, key) == 0;
		if (!known && strlen(list) + strlen(key) + 3 < sizeof list)
			snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", *list ? ", " : "", key);
	}
	if (*list)
		pv_diags_add(diags, strict ? PV_DIAG_ERROR : PV_DIAG_WARNING, "",
			     "unknown top-level section(s) %s%s", list, strict ? "" : " (ignored)");
	validate_graph(&n, graph);
	return graph;
}
