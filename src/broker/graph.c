/*
 * graph.c - the configured strategies with their objects in hand: the
 * configuration builds and registers them (pv_config_build); the broker
 * keeps a reference on each, to load and save kernel state around every
 * Host Factory process and to know the leaf providers.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "broker/graph.h"
#include "provisio/error.h"

/* Takes every built item of one list of the graph into g->items. */
static int take(pv_graph *g, const json_t *list, bool provider)
{
	size_t i;
	json_t *item;
	json_array_foreach(list, i, item) {
		const char *name = json_string_value(json_object_get(item, "name"));
		if (json_is_false(json_object_get(item, "enabled"))) {
			if (!(g->disabled[g->n_disabled] = strdup(name)))
				return pv_error_set(PV_ENOMEM, "out of memory");
			g->n_disabled++;
			continue;
		}
		pv_strategy *s = pv_context_strategy(g->ctx, name);
		if (!s)
			continue;
		pv_graph_item *it = &g->items[g->n];
		it->s = s;
		it->provider = provider;
		if (!(it->name = strdup(name))) {
			pv_strategy_unref(s);
			return pv_error_set(PV_ENOMEM, "out of memory");
		}
		g->n++;
	}
	return 0;
}

int pv_graph_build(const json_t *graph, const pv_clock *clock, pv_graph **out, pv_diags *diags)
{
	*out = NULL;
	const json_t *providers = json_object_get(graph, "providers");
	const json_t *strategies = json_object_get(graph, "strategies");
	size_t cap = json_array_size(providers) + json_array_size(strategies);
	pv_graph *g = calloc(1, sizeof *g);
	if (!g || !(g->items = calloc(cap + 1, sizeof *g->items)) ||
	    !(g->disabled = calloc(cap + 1, sizeof *g->disabled))) {
		if (g)
			free(g->items);
		free(g);
		return pv_error_set(PV_ENOMEM, "out of memory");
	}
	int rc = pv_config_build(graph, clock, &g->ctx, diags);
	if (rc == 0)
		rc = take(g, providers, true);
	if (rc == 0)
		rc = take(g, strategies, false);
	if (rc == 0)
		rc = pv_context_initialize(g->ctx, NULL);
	if (rc < 0) {
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
	for (size_t i = 0; i < g->n_disabled; i++)
		free(g->disabled[i]);
	free(g->disabled);
	free(g);
}
