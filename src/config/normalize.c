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
#include "config/keys.h"
#include "provisio/config.h"
#include "provisio/context.h"
#include "provisio/error.h"
#include "provisio/fallback.h"

#define KINDS "fallback, balancer, composite, chaos"

typedef struct norm {
	pv_diags *diags;
	bool strict;
} norm;

static void validate_context(norm *n, const json_t *ctx, bool in_file);

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

/* Where an item's "config" came from ("_config_at"), else <path>.config. */
static void item_config_path(const json_t *item, const char *path, char *out, size_t size)
{
	const char *at = json_string_value(json_object_get(item, "_config_at"));
	if (at)
		snprintf(out, size, "%s", at);
	else
		snprintf(out, size, "%s.config", path);
}


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

static void check_names_array(norm *n, const json_t *a, const char *path)
{
	size_t i;
	json_t *v;
	if (!json_is_array(a) || json_array_size(a) == 0) {
		pv_diags_add(n->diags, PV_DIAG_ERROR, path, "must be a non-empty array of strategy names");
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

static void validate_criteria(norm *n, const json_t *c, const char *at)
{
	char path[160], sub[256];
	snprintf(path, sizeof path, "%s.selection_criteria", at);
	if (!json_is_object(c)) {
		pv_diags_add(n->diags, PV_DIAG_ERROR, path, "must be an object");
		return;
	}
	unknown_keys(n, c, path, pv_config_keys_criteria);
	json_t *v;
#define CRITERION(key) (snprintf(sub, sizeof sub, "%s." key, path), sub)
	if ((v = json_object_get(c, "min_success_rate")) &&
	    (!json_is_number(v) || json_number_value(v) < 0 || json_number_value(v) > 100))
		pv_diags_add(n->diags, PV_DIAG_ERROR, CRITERION("min_success_rate"),
			     "must be a percentage from 0 to 100");
	if ((v = json_object_get(c, "max_response_time_ms")) &&
	    (!json_is_number(v) || json_number_value(v) < 0))
		pv_diags_add(n->diags, PV_DIAG_ERROR, CRITERION("max_response_time_ms"),
			     "must be a number of milliseconds >= 0");
	if ((v = json_object_get(c, "min_samples")) &&
	    (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > 1000000))
		pv_diags_add(n->diags, PV_DIAG_ERROR, CRITERION("min_samples"),
			     "must be an integer from 0 to 1000000");
	if ((v = json_object_get(c, "require_healthy")) && !json_is_boolean(v))
		pv_diags_add(n->diags, PV_DIAG_ERROR, CRITERION("require_healthy"), "must be true or false");
#undef CRITERION
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
	validate_context(&n, ctx, false);
}

/* A policy name: 0 and *out, or the reason it is not one (pv_error_last). */
static int check_policy(const json_t *v, bool in_file, pv_policy *out)
{
	if (!json_is_string(v))
		return pv_error_set(PV_EINVAL, "must be a policy name (string)");
	int rc = pv_policy_parse(json_string_value(v), out);
	if (rc == 0 && in_file && *out == PV_POLICY_CUSTOM)
		return pv_error_set(PV_EINVAL, "'%s' needs a selection callback registered in code "
					       "(pv_context_set_custom_policy): a file cannot name one",
				    json_string_value(v));
	return rc;
}

static bool good_interval(const json_t *v)
{
	return json_is_number(v) && json_number_value(v) > 0 && json_number_value(v) <= 86400;
}

#define INTERVAL_RANGE "must be a number of seconds > 0 and <= 86400"

/* The "context" block; its paths are where it came from in the user's file
 * ("_at": provider.strategy in the spec format), "context" by default. */
static void validate_context(norm *n, const json_t *ctx, bool in_file)
{
	if (!ctx)
		return;
	if (!json_is_object(ctx)) {
		pv_diags_add(n->diags, PV_DIAG_ERROR, "context", "must be an object");
		return;
	}
	const char *at = json_string_value(json_object_get(ctx, "_at"));
	if (!at)
		at = "context";
	char sub[160];
	unknown_keys(n, ctx, at, pv_config_keys_context);
	json_t *v = json_object_get(ctx, "selection_policy");
	pv_policy p;
	snprintf(sub, sizeof sub, "%s.selection_policy", at);
	if (v && check_policy(v, in_file, &p) < 0)
		pv_diags_add(n->diags, PV_DIAG_ERROR, sub, "%s", pv_error_last());
	v = json_object_get(ctx, "health_check_interval_seconds");
	snprintf(sub, sizeof sub, "%s.health_check_interval_seconds", at);
	if (v && !good_interval(v))
		pv_diags_add(n->diags, PV_DIAG_ERROR, sub, INTERVAL_RANGE);
	const char *bools[] = {"metrics_collection_enabled", "failover_enabled"};
	for (int b = 0; b < 2; b++) {
		snprintf(sub, sizeof sub, "%s.%s", at, bools[b]);
		if ((v = json_object_get(ctx, bools[b])) && !json_is_boolean(v))
			pv_diags_add(n->diags, PV_DIAG_ERROR, sub, "must be true or false");
	}
	if ((v = json_object_get(ctx, "selection_criteria")))
		validate_criteria(n, v, at);
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
		unknown_keys(n, p, path, pv_config_keys_provider);
		const char *name = json_string_value(json_object_get(p, "name"));
		const char *type = json_string_value(json_object_get(p, "type"));
		char sub[160];
		check_name(n, graph, name, path);
		snprintf(sub, sizeof sub, "%s.type", path);
		if (!type)
			pv_diags_add(n->diags, PV_DIAG_ERROR, sub, "is required (a provider type)");
		else if (!pv_provider_type_known(type)) {
			json_t *types = pv_provider_types();
			char *list = json_dumps(types, JSON_COMPACT);
			pv_diags_add(n->diags, PV_DIAG_ERROR, sub, "'%s' is not a known provider type (known: %s)",
				     type, list ? list : "?");
			free(list);
			json_decref(types);
		}
		json_t *v;
#define FIELD_AT(key) (snprintf(sub, sizeof sub, "%s." key, path), sub)
		if ((v = json_object_get(p, "enabled")) && !json_is_boolean(v))
			pv_diags_add(n->diags, PV_DIAG_ERROR, FIELD_AT("enabled"), "must be true or false");
		if ((v = json_object_get(p, "selectable")) && !json_is_boolean(v))
			pv_diags_add(n->diags, PV_DIAG_ERROR, FIELD_AT("selectable"), "must be true or false");
		if ((v = json_object_get(p, "priority")) && !json_is_integer(v))
			pv_diags_add(n->diags, PV_DIAG_ERROR, FIELD_AT("priority"), "must be an integer");
		if ((v = json_object_get(p, "weight")) &&
		    (!json_is_number(v) || !(json_number_value(v) > 0) || json_number_value(v) > 1e9))
			pv_diags_add(n->diags, PV_DIAG_ERROR, FIELD_AT("weight"),
				     "must be a number > 0 and <= 1e9");
		if ((v = json_object_get(p, "config")) && !json_is_object(v))
			pv_diags_add(n->diags, PV_DIAG_ERROR, FIELD_AT("config"), "must be an object");
#undef FIELD_AT
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
		unknown_keys(n, s, path, pv_config_keys_strategy);
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
		json_t *v, *config = json_object_get(s, "config");
		char cpath[192];
		item_config_path(s, path, cpath, sizeof cpath);
		if (config && !json_is_object(config))
			pv_diags_add(n->diags, PV_DIAG_ERROR, cpath, "must be an object");
		else if (pv_config_check_kind(kind, name, config) < 0)
			pv_diags_add(n->diags, PV_DIAG_ERROR, cpath, "%s", pv_error_last());
		snprintf(sub, sizeof sub, "%s.selectable", path);
		if ((v = json_object_get(s, "selectable")) && !json_is_boolean(v))
			pv_diags_add(n->diags, PV_DIAG_ERROR, sub, "must be true or false");
		if (strcmp(kind, "fallback") == 0) {
			snprintf(sub, sizeof sub, "%s.primary", path);
			if (!json_is_string(json_object_get(s, "primary")))
				pv_diags_add(n->diags, PV_DIAG_ERROR, sub, "is required: the name of the primary strategy");
			snprintf(sub, sizeof sub, "%s.fallbacks", path);
			v = json_object_get(s, "fallbacks");
			if (!v || (json_is_array(v) && json_array_size(v) == 0))
				pv_diags_add(n->diags, PV_DIAG_ERROR, sub,
					     "%s: a fallback needs at least one strategy to fall back to (a "
					     "primary alone needs no fallback: name it directly)",
					     v ? "is empty" : "is required");
			else
				check_names_array(n, v, sub);
		} else if (strcmp(kind, "chaos") == 0) {
			snprintf(sub, sizeof sub, "%s.child", path);
			if (!json_is_string(json_object_get(s, "child")))
				pv_diags_add(n->diags, PV_DIAG_ERROR, sub, "is required: the name of the wrapped strategy");
		} else {
			snprintf(sub, sizeof sub, "%s.children", path);
			check_names_array(n, json_object_get(s, "children"), sub);
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
	unknown_keys(n, graph, "", pv_config_keys_graph);
	validate_providers(n, graph);
	validate_strategies(n, graph);
	validate_context(n, json_object_get(graph, "context"), true);
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


static bool is_reserved(const char *key)
{
	for (const char *const *r = pv_config_keys_spec; *r; r++)
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
	json_object_foreach((json_t *)prov, key, v) {
		if (is_reserved(key))
			continue;
		snprintf(path, sizeof path, "provider.%s", key);
		if (!json_is_object(v)) {
			pv_diags_add(n->diags, PV_DIAG_ERROR, path, "a provider block must be an object");
			continue;
		}
		const char *type = json_string_value(json_object_get(v, "type"));
		if (!type && pv_provider_type_known(key))
			type = key;
		if (!type) {
			pv_diags_add(n->diags, PV_DIAG_ERROR, path,
				     "'type' is required: '%s' is not a known provider type", key);
			continue;
		}
		json_t *item = json_pack("{s:s, s:s, s:o, s:s, s:s}", "name", key, "type", type, "config",
					 strip_keys(v, pv_config_keys_spec_provider), "_at", path, "_config_at", path);
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
			json_object_set_new(ctx, "_at", json_string("provider.strategy"));
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
		if (fallbacks && !json_is_array(fallbacks)) {
			json_decref(fbs); /* kept as written: validation says what is wrong */
			fbs = json_incref(fallbacks);
		} else if (fallbacks) {
			json_array_extend(fbs, fallbacks);
		} else {
			size_t i;
			json_t *nm;
			json_array_foreach(names, i, nm) if (strcmp(json_string_value(nm), pname) != 0)
				json_array_append(fbs, nm);
		}
		static const char *const fb_struct[] = {"primary", "fallbacks", NULL};
		json_t *fb_config = strip_keys(fb, fb_struct);
		bool built = failover && (fallbacks || json_array_size(fbs) > 0);
		if (!built && pv_config_check_kind("fallback", "fallback", fb_config) < 0)
			pv_diags_add(n->diags, PV_DIAG_ERROR, "provider.fallback", "%s", pv_error_last());
		if (!failover) {
			pv_diags_add(n->diags, PV_DIAG_WARNING, "provider.fallback",
				     "not used: strategy.failover_enabled is false, so '%s' serves alone", pname);
			deflt = pname;
			json_decref(fbs);
		} else if (!fallbacks && json_array_size(fbs) == 0) {
			/* an explicit empty list is reported at provider.fallback.fallbacks */
			pv_diags_add(n->diags, PV_DIAG_ERROR, "provider.fallback",
				     "no strategy to fall back to: '%s' is the only enabled provider", pname);
			json_decref(fbs);
		} else {
			json_array_append_new(strategies,
					      json_pack("{s:s, s:s, s:s, s:o, s:O, s:s, s:s}", "name", "fallback",
							"kind", "fallback", "primary", pname, "fallbacks", fbs,
							"config", fb_config, "_at", "provider.fallback",
							"_config_at", "provider.fallback"));
			deflt = "fallback";
		}
		json_decref(fb_config);
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


/* The original's circuit_breaker keys and the fallback fields they set. */
static const char *const breaker_keys[][2] = {
	{"failure_threshold", "circuit_breaker_threshold"},
	{"recovery_timeout", "circuit_breaker_timeout_seconds"},
	{"half_open_max_calls", "circuit_breaker_half_open_probes"},
};
#define N_BREAKER_KEYS (sizeof breaker_keys / sizeof breaker_keys[0])

/* The reason of a fallback field error without provisio's field name
 * ("fallback config: field 'x': must be ..." -> "must be ..."). */
static const char *field_reason(const char *msg, const char *field)
{
	char prefix[128];
	snprintf(prefix, sizeof prefix, "fallback config: field '%s': ", field);
	size_t len = strlen(prefix);
	return strncmp(msg, prefix, len) == 0 ? msg + len : msg;
}

/* The failover chain's config from a circuit_breaker block: each of the
 * user's keys checked alone, so a problem is reported at that key in the
 * user's words; only valid values are passed on. */
static json_t *legacy_breaker_config(norm *n, const json_t *cb)
{
	unknown_keys(n, cb, "provider.circuit_breaker", pv_config_keys_breaker);
	json_t *cfg = json_pack("{s:s}", "mode", "circuit_breaker");
	for (size_t i = 0; i < N_BREAKER_KEYS; i++) {
		json_t *v = json_object_get(cb, breaker_keys[i][0]);
		if (!v)
			continue;
		char path[96];
		snprintf(path, sizeof path, "provider.circuit_breaker.%s", breaker_keys[i][0]);
		json_t *one = json_pack("{s:O}", breaker_keys[i][1], v);
		pv_fallback_config fc;
		if (pv_fallback_config_from_json(one, &fc) < 0)
			pv_diags_add(n->diags, PV_DIAG_ERROR, path, "%s",
				     field_reason(pv_error_last(), breaker_keys[i][1]));
		else
			json_object_set(cfg, breaker_keys[i][1], v);
		json_decref(one);
	}
	return cfg;
}

static bool enabled_item(const json_t *p) { return !json_is_false(json_object_get(p, "enabled")); }

/* The provider of the list that provider.<key> names: its name, or NULL
 * when the key is absent or wrong (reported: unknown names, disabled ones). */
static const char *legacy_provider_ref(norm *n, const json_t *prov, const json_t *providers,
				       const char *key)
{
	json_t *v = json_object_get(prov, key);
	if (!v)
		return NULL;
	char path[64];
	snprintf(path, sizeof path, "provider.%s", key);
	const char *name = json_string_value(v);
	size_t i;
	json_t *p;
	json_array_foreach(providers, i, p) {
		const char *nm = json_string_value(json_object_get(p, "name"));
		if (!name || !nm || strcmp(nm, name) != 0)
			continue;
		if (enabled_item(p))
			return name;
		pv_diags_add(n->diags, PV_DIAG_ERROR, path, "'%s' is disabled (provider.providers[%zu])",
			     name, i);
		return NULL;
	}
	char known[512] = "";
	json_array_foreach(providers, i, p) {
		const char *nm = json_string_value(json_object_get(p, "name"));
		size_t len = strlen(known);
		if (nm && len + strlen(nm) + 3 < sizeof known)
			snprintf(known + len, sizeof known - len, "%s%s", len ? ", " : "", nm);
	}
	if (name)
		pv_diags_add(n->diags, PV_DIAG_ERROR, path,
			     "'%s' names no provider of provider.providers (known: %s)", name, known);
	else
		pv_diags_add(n->diags, PV_DIAG_ERROR, path,
			     "must be the name of a provider of provider.providers (known: %s)", known);
	return NULL;
}

/* The enabled providers in priority order (a stable sort: equal priorities
 * keep their file order). A new array. */
static json_t *by_priority(const json_t *providers)
{
	json_t *sorted = json_array();
	size_t i;
	json_t *p;
	json_array_foreach(providers, i, p) {
		if (!json_is_object(p) || !enabled_item(p))
			continue;
		json_int_t pr = json_integer_value(json_object_get(p, "priority"));
		size_t at = json_array_size(sorted);
		while (at > 0 && json_integer_value(json_object_get(json_array_get(sorted, at - 1),
								    "priority")) > pr)
			at--;
		json_array_insert(sorted, at, p);
	}
	return sorted;
}

/* selection_policy: a policy name in any case; NULL when absent or wrong. */
static const char *legacy_policy(norm *n, const json_t *prov, char *lower, size_t size)
{
	json_t *v = json_object_get(prov, "selection_policy");
	pv_policy p;
	if (!v)
		return NULL;
	if (check_policy(v, true, &p) < 0) {
		pv_diags_add(n->diags, PV_DIAG_ERROR, "provider.selection_policy", "%s", pv_error_last());
		return NULL;
	}
	snprintf(lower, size, "%s", pv_policy_name(p));
	return lower;
}

/* "providers": the list, each item's path in the user's file kept. */
static json_t *legacy_providers(norm *n, const json_t *prov)
{
	json_t *list = json_object_get(prov, "providers");
	if (!json_is_array(list) || json_array_size(list) == 0) {
		pv_diags_add(n->diags, PV_DIAG_ERROR, "provider.providers", "%s",
			     json_is_array(list) ? "is empty: configure at least one provider"
						 : "must be a list of provider objects");
		return json_array();
	}
	json_t *providers = json_deep_copy(list);
	size_t i;
	json_t *p;
	json_array_foreach(providers, i, p) {
		char at[64], cat[80];
		snprintf(at, sizeof at, "provider.providers[%zu]", i);
		snprintf(cat, sizeof cat, "%s.config", at);
		if (json_is_object(p)) {
			json_object_set_new(p, "_at", json_string(at));
			json_object_set_new(p, "_config_at", json_string(cat));
		}
	}
	return providers;
}

static void unused_beside_active(norm *n, const char *path, const char *active)
{
	pv_diags_add(n->diags, PV_DIAG_WARNING, path,
		     "not used: active_provider '%s' serves every operation", active);
}

static json_t *from_legacy(norm *n, const json_t *prov)
{
	unknown_keys(n, prov, "provider", pv_config_keys_legacy);
	json_t *graph = json_object(), *providers = legacy_providers(n, prov);
	json_object_set_new(graph, "providers", providers);
	json_t *ctx = json_pack("{s:s}", "_at", "provider");
	json_object_set_new(graph, "context", ctx);
	if (json_object_get(prov, "plugins"))
		json_object_set(graph, "plugins", json_object_get(prov, "plugins"));
	static const char *const unused[] = {"default_provider_type", "provider_defaults"};
	for (int u = 0; u < 2; u++)
		if (json_object_get(prov, unused[u]))
			pv_diags_add(n->diags, PV_DIAG_WARNING, "provider",
				     "'%s' is not used by provisio (ignored): a template names its "
				     "provider, or the selection policy picks one", unused[u]);

	char lower[64];
	const char *policy = legacy_policy(n, prov, lower, sizeof lower);
	json_t *interval = json_object_get(prov, "health_check_interval");
	if (interval && !good_interval(interval))
		pv_diags_add(n->diags, PV_DIAG_ERROR, "provider.health_check_interval", INTERVAL_RANGE);
	else if (interval)
		json_object_set(ctx, "health_check_interval_seconds", interval);
	json_t *cb = json_object_get(prov, "circuit_breaker");
	if (cb && !json_is_object(cb)) {
		pv_diags_add(n->diags, PV_DIAG_ERROR, "provider.circuit_breaker", "must be an object");
		cb = NULL;
	}
	json_t *cb_on = json_object_get(cb, "enabled");
	if (cb_on && !json_is_boolean(cb_on))
		pv_diags_add(n->diags, PV_DIAG_ERROR, "provider.circuit_breaker.enabled", "must be true or false");
	json_t *breaker = cb ? legacy_breaker_config(n, cb) : NULL;
	bool chain = cb && !json_is_false(cb_on);

	const char *active = legacy_provider_ref(n, prov, providers, "active_provider");
	const char *deflt = legacy_provider_ref(n, prov, providers, "default_provider_instance");
	if (active) {
		/* single-provider mode: the original's active_provider serves alone */
		if (policy)
			unused_beside_active(n, "provider.selection_policy", active);
		if (chain)
			unused_beside_active(n, "provider.circuit_breaker", active);
		if (deflt && strcmp(deflt, active) != 0)
			unused_beside_active(n, "provider.default_provider_instance", active);
		json_object_set_new(graph, "default_strategy", json_string(active));
		json_decref(breaker);
		return graph;
	}
	if (policy)
		json_object_set_new(ctx, "selection_policy", json_string(policy));
	bool first_available = !policy || strcmp(policy, "first_available") == 0;

	json_t *sorted = by_priority(providers);
	if (chain && json_array_size(sorted) < 2) {
		pv_diags_add(n->diags, PV_DIAG_WARNING, "provider.circuit_breaker",
			     "not used: with %zu enabled provider there is nothing to fail over to",
			     json_array_size(sorted));
		chain = false;
	}
	if (chain) {
		/* the enabled providers behind one breaker-guarded chain, in priority
		 * order, starting at default_provider_instance when it is given */
		const char *primary = deflt ? deflt
					    : json_string_value(json_object_get(json_array_get(sorted, 0), "name"));
		json_t *fbs = json_array();
		size_t i;
		json_t *p;
		json_array_foreach(sorted, i, p) {
			json_t *nm = json_object_get(p, "name");
			if (json_is_string(nm) && primary && strcmp(json_string_value(nm), primary) != 0)
				json_array_append(fbs, nm);
		}
		json_object_set_new(graph, "strategies",
				    json_pack("[{s:s, s:s, s:s?, s:o, s:O, s:b, s:s, s:s}]", "name", "failover",
					      "kind", "fallback", "primary", primary, "fallbacks", fbs,
					      "config", breaker, "selectable", first_available, "_at",
					      "provider.circuit_breaker", "_config_at", "provider.circuit_breaker"));
		if (first_available) {
			json_object_set_new(graph, "default_strategy", json_string("failover"));
			json_object_del(ctx, "selection_policy");
		} else {
			/* the policy chooses among the providers themselves */
			json_array_foreach(providers, i, p) if (json_is_object(p))
				json_object_set_new(p, "selectable", json_true());
		}
	} else if (deflt) {
		json_object_set_new(graph, "default_strategy", json_string(deflt));
		if (policy && first_available) /* first available, trying the default first */
			json_object_set_new(ctx, "selection_criteria", json_pack("{s:[s]}", "prefer", deflt));
	}
	if (chain && deflt && !first_available)
		json_object_set_new(graph, "default_strategy", json_string(deflt));
	json_decref(sorted);
	json_decref(breaker);
	return graph;
}

/* ---- entry point ------------------------------------------------------------------------ */


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
		graph = json_object();
		for (const char *const *k = pv_config_keys_graph; *k; k++)
			if (json_object_get(doc, *k))
				json_object_set(graph, *k, json_object_get(doc, *k));
		json_t *list = json_object_get(graph, "providers");
		if (!list)
			json_object_set_new(graph, "providers", json_array());
		else if (json_is_array(list) && json_array_size(list) == 0)
			pv_diags_add(diags, PV_DIAG_ERROR, "providers",
				     "is empty: configure at least one provider");
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
		for (const char *const *k = pv_config_keys_top; *k && !known; k++)
			known = strcmp(*k, key) == 0;
		if (!known && strlen(list) + strlen(key) + 3 < sizeof list)
			snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", *list ? ", " : "", key);
	}
	if (*list)
		pv_diags_add(diags, strict ? PV_DIAG_ERROR : PV_DIAG_WARNING, "",
			     "unknown top-level section(s) %s%s", list, strict ? "" : " (ignored)");
	validate_graph(&n, graph);
	if (diags->errors) /* nothing will be built: the providers' own checks run here */
		pv_config_check_providers(graph, diags);
	return graph;
}
