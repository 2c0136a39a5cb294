/*
 * graph.h - the configured strategies with their objects in hand.
 *
 * The broker needs more than a context: the strategy objects themselves, to
 * load and save each one's kernel state (breakers) around every Host
 * Factory process, and the list of leaf providers, to find machines by
 * request id after a crash. The configuration builds the graph; this keeps
 * a reference on every object it built.
 */
#ifndef PV_BROKER_GRAPH_H
#define PV_BROKER_GRAPH_H

#include <stdbool.h>
#include <stddef.h>
#include <jansson.h>
#include "provisio/config.h"
#include "provisio/context.h"

typedef struct pv_graph_item {
	char *name;
	pv_strategy *s;  /* one reference held by the graph */
	bool provider;   /* a leaf (from "providers") */
} pv_graph_item;

typedef struct pv_graph {
	pv_context *ctx; /* every item registered; default strategy current */
	pv_graph_item *items;
	size_t n;
	char **disabled; /* providers configured with "enabled": false */
	size_t n_disabled;
} pv_graph;

/* Builds a normalised, valid graph (pv_config_normalize's output) and
 * initializes it. 0, or PV_E* with the problems in diags. *out owned by the
 * caller: pv_graph_free. */
int pv_graph_build(const json_t *graph, const pv_clock *clock, pv_graph **out, pv_diags *diags);
void pv_graph_free(pv_graph *g);

#endif
