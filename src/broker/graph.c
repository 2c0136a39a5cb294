/*
 * graph.c - builds the configured strategies keeping their objects (see
 * graph.h for why this is not pv_config_build).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "broker/graph.h"
#include "provisio/chaos.h"
#include "provisio/error.h"
#include "provisio/fallback.h"

static pv_graph_item *find(pv_graph *g, const char *name)
{
	for (size_t i = 0; name && i < g->n; i++)
		if (strcmp(g->items[i].name, name) == 0)
			return &g->items[i];
	return NULL;
}

static int build_provider(pv_graph *g, const json_t *p, const pv_clock *clock)
{
	const char *name = json_string_value(json_object_get(p, "name"));
	const char *type = json_string_value(json_object_get(p, "type"));
	if (json_is_false(json_object_get(p, "enabled")))
		return 0;
	pv_provider_factory f = pv_provider_factory_find(type);
	if (!f)
		return pv_error_set(PV_EINVAL, "provider '%s': no factory for type '%s'", name, type);
	pv_graph_item *it = &g->items[g->n];
	int rc = f(&it->s, name, json_object_get(p, "config"), clock);
	if (rc < 0)
		return rc;
	it->name = strdup(name);
	it->provider = true;
	g->n++;
	return it->name ? 0 : pv_error_set(PV_ENOMEM, "out of memory");
}

/* Children of a wrapper item, in order, as borrowed pointers. */
static int children(pv_graph *g, const json_t *item, pv_strategy **kids, size_t max, size_t *n)
{
	const char *kind = json_string_value(json_object_get(item, "kind"));
	json_t *names = json_array();
	if (strcmp(kind, "fallback") == 0) {
		json_array_append(names, json_object_get(item, "primary"));
		if (json_object_get(item, "fallbacks"))
			json_array_extend(names, json_object_get(item, "fallbacks"));
	} else if (strcmp(kind, "chaos") == 0) {
		json_array_append(names, json_object_get(item, "child"));
	} else {
		json_array_extend(names, json_object_get(item, "children"));
	}
	size_t i;
	json_t *v;
	int rc = 0;
	*n = 0;
	json_array_foreach(names, i, v) {
		pv_graph_item *c = find(g, json_string_value(v));
		if (!c)
			rc = pv_error_set(PV_EINVAL, "'%s' is not built (disabled, unknown, or defined "
						     "after its parent)", json_string_value(v));
		else if (*n < max)
			kids[(*n)++] = c->s;
	}
	json_decref(names);
	return rc;
}

static int build_wrapper(pv_graph *g, const json_t *item, const pv_clock *clock)
{
	const char *name = json_string_value(json_object_get(item, "name"));
	const char *kind = json_string_value(json_object_get(item, "kind"));
	const json_t *cfg = json_object_get(item, "config");
	pv_strategy *kids[64];
	size_t n;
	int rc = children(g, item, kids, 64, &n);
	if (rc < 0)
		return pv_error_set(rc, "strategy '%s': %s", name, pv_error_last());
	pv_graph_item *it = &g->items[g->n];
	if (strcmp(kind, "fallback") == 0) {
		pv_fallback_config fc;
		pv_fallback_config_default(&fc);
		if (cfg && (rc = pv_fallback_config_from_json(cfg, &fc)) < 0)
			return rc;
		rc = pv_fallback_new(&it->s, name, kids[0], kids + 1, n - 1, &fc, clock);
	} else if (strcmp(kind, "chaos") == 0) {
		rc = pv_chaos_new(&it->s, name, kids[0], cfg, clock);
	} else {
		rc = pv_error_set(PV_EINVAL, "strategy '%s': kind '%s' is not available to the broker yet",
				  name, kind);
	}
	if (rc < 0)
		return rc;
	it->name = strdup(name);
	g->n++;
	return it->name ? 0 : pv_error_set(PV_ENOMEM, "out of memory");
}

/* Wrappers in an order where children come first (the graph is acyclic:
 * normalisation checked it), by repeated passes. */
static int build_wrappers(pv_graph *g, const json_t *list, const pv_clock *clock, pv_diags *diags)
{
	size_t total = json_array_size(list), done = 0;
	bool *built = calloc(total + 1, sizeof *built);
	if (!built)
		return pv_error_set(PV_ENOMEM, "out of memory");
	for (bool progress = true; progress && done < total;) {
		progress = false;
		for (size_t i = 0; i < total; i++) {
			const json_t *item = json_array_get(list, i);
			if (built[i])
				continue;
			pv_strategy *kids[64];
			size_t n;
			if (children(g, item, kids, 64, &n) < 0)
				continue; /* a child is not built yet */
			char path[48];
			snprintf(path, sizeof path, "strategies[%zu]", i);
			if (build_wrapper(g, item, clock) < 0)
				pv_diags_add(diags, PV_DIAG_ERROR, path, "%s", pv_error_last());
			built[i] = true;
			done++;
			progress = true;
		}
	}
	for (size_t i = 0; i < total; i++)
		if (!built[i])
			pv_diags_add(diags, PV_DIAG_ERROR, "strategies", "'%s' has a child that could not be built",
				     json_string_value(json_object_get(json_array_get(list, i), "name")));
	free(built);
	return diags->errors ? PV_EINVAL : 0;
}

static int make_context(pv_graph *g, const json_t *graph, const pv_clock *clock)
{
	pv_context_options opts = {.clock = clock};
	int rc = pv_context_new(&g->ctx, &opts);
	for (size_t i = 0; rc == 0 && i < g->n; i++)
		rc = pv_context_register(g->ctx, g->items[i].s) < 0 ? PV_ERROR : 0;
	if (rc < 0)
		return rc;
	const char *deflt = json_string_value(json_object_get(graph, "default_strategy"));
	if (!deflt && g->n) /* else the last built wrapper (the top), else the first provider */
		deflt = !g->items[g->n - 1].provider ? g->items[g->n - 1].name : g->items[0].name;
	if (deflt && (rc = pv_context_set_strategy(g->ctx, deflt)) < 0)
		return rc;
	return pv_context_initialize(g->ctx, NULL);
}

int pv_graph_build(const json_t *graph, const pv_clock *clock, pv_graph **out, pv_diags *diags)
{
	*out = NULL;
	const json_t *providers = json_object_get(graph, "providers");
	const json_t *strategies = json_object_get(graph, "strategies");
	size_t cap = json_array_size(providers) + json_array_size(strategies);
	pv_graph *g = calloc(1, sizeof *g);
	if (!g || !(g->items = calloc(cap + 1, sizeof *g->items))) {
		free(g);
		return pv_error_set(PV_ENOMEM, "out of memory");
	}
	size_t i;
	json_t *p;
	json_array_foreach(providers, i, p) {
		char path[48];
		snprintf(path, sizeof path, "providers[%zu].config", i);
		if (build_provider(g, p, clock) < 0)
			pv_diags_add(diags, PV_DIAG_ERROR, path, "%s", pv_error_last());
	}
	int rc = diags->errors ? PV_EINVAL : build_wrappers(g, strategies, clock, diags);
	if (rc == 0)
		rc = make_context(g, graph, clock);
	if (rc < 0) {
		if (rc == PV_EINVAL && diags->errors)
			pv_error_set(PV_EINVAL, "%zu configuration error(s)", diags->errors);
		pv_graph_free(g);
		return rc;
	}
	*out = g;
	return 0;
}

void pv_graph_free(pv_graph *g)
{
	if (!g)
		return;
	pv_context_free(g->ctx);
	for (size_t i = 0; i < g->n; i++) {
		pv_strategy_unref(g->items[i].s);
		free(g->items[i].name);
	}
	free(g->items);
	free(g);
}
