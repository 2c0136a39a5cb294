/*
 * build.c - a normalised graph turned into strategies in a context.
 *
 * Providers come from their type's factory; wrappers (fallback, balancer,
 * composite, chaos) from the kind table below, children first. Every
 * strategy is registered in the context by name (so execute_on reaches any
 * of them); selection policies choose only among the top-level ones unless
 * an item says "selectable". The default strategy becomes current.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "config/config_internal.h"
#include "provisio/balancer.h"
#include "provisio/chaos.h"
#include "provisio/composite.h"
#include "provisio/config.h"
#include "provisio/error.h"
#include "provisio/fallback.h"

typedef int (*kind_builder)(pv_strategy **out, const char *name, pv_strategy *const *children,
			    const double *weights, size_t n, const json_t *config,
			    const pv_clock *clock);
/* Checks a kind's config alone, so its errors are reported even when the
 * strategy cannot be built because a child failed. */
typedef int (*kind_checker)(const char *name, const json_t *config);

static int build_chaos(pv_strategy **out, const char *name, pv_strategy *const *children,
		       const double *weights, size_t n, const json_t *config, const pv_clock *clock)
{
	(void)weights;
	if (n != 1)
		return pv_error_set(PV_EINVAL, "chaos '%s' wraps exactly one strategy", name);
	return pv_chaos_new(out, name, children[0], config, clock);
}

static int check_chaos(const char *name, const json_t *config)
{
	return pv_chaos_config_check(name, config);
}

static int check_fallback(const char *name, const json_t *config)
{
	(void)name;
	pv_fallback_config cfg;
	pv_fallback_config_default(&cfg);
	return config ? pv_fallback_config_from_json(config, &cfg) : 0;
}

static int build_fallback(pv_strategy **out, const char *name, pv_strategy *const *children,
			  const double *weights, size_t n, const json_t *config, const pv_clock *clock)
{
	(void)weights;
	pv_fallback_config cfg;
	pv_fallback_config_default(&cfg);
	if (config && pv_fallback_config_from_json(config, &cfg) < 0)
		return PV_EINVAL;
	return pv_fallback_new(out, name, children[0], children + 1, n - 1, &cfg, clock);
}

static int check_composite(const char *name, const json_t *config)
{
	(void)name;
	pv_composite_config cfg;
	int rc = pv_composite_config_from_json(config, &cfg);
	pv_composite_config_clear(&cfg);
	return rc;
}

static int build_composite(pv_strategy **out, const char *name, pv_strategy *const *children,
			   const double *weights, size_t n, const json_t *config, const pv_clock *clock)
{
	pv_composite_config cfg;
	pv_composite_config_default(&cfg);
	if (config && pv_composite_config_from_json(config, &cfg) < 0)
		return PV_EINVAL;
	/* Weights in the block win; else each provider's own weight. */
	int rc = pv_composite_new(out, name, children, cfg.weights ? NULL : weights, n, &cfg, clock);
	pv_composite_config_clear(&cfg);
	return rc;
}

static int check_balancer(const char *name, const json_t *config)
{
	(void)name;
	pv_balancer_config cfg;
	pv_balancer_config_default(&cfg);
	int rc = config ? pv_balancer_config_from_json(config, &cfg) : 0;
	pv_balancer_config_clear(&cfg);
	return rc;
}

static int build_balancer(pv_strategy **out, const char *name, pv_strategy *const *children,
			  const double *weights, size_t n, const json_t *config, const pv_clock *clock)
{
	pv_balancer_config cfg;
	pv_balancer_config_default(&cfg);
	if (config && pv_balancer_config_from_json(config, &cfg) < 0)
		return PV_EINVAL;
	/* The block's "weights" override these (the providers' own) by name. */
	int rc = pv_balancer_new(out, name, children, weights, n, &cfg, clock);
	pv_balancer_config_clear(&cfg);
	return rc;
}

typedef struct kind_ops {
	const char *kind;
	kind_builder build;
	kind_checker check;
} kind_ops;

static const kind_ops kinds[] = {
	{"chaos", build_chaos, check_chaos},
	{"fallback", build_fallback, check_fallback},
	{"composite", build_composite, check_composite},
	{"balancer", build_balancer, check_balancer},
};

static const kind_ops *find_kind(const char *kind)
{
	for (size_t i = 0; kind && i < sizeof kinds / sizeof kinds[0]; i++)
		if (strcmp(kinds[i].kind, kind) == 0)
			return &kinds[i];
	return NULL;
}

int pv_config_check_kind(const char *kind, const char *name, const json_t *config)
{
	const kind_ops *ops = find_kind(kind);
	return ops ? ops->check(name ? name : "", config) : 0;
}

/* The path of an item (or of its config) in the user's file. */
static void where(const json_t *item, const char *list, size_t i, bool config, char *out, size_t size)
{
	const char *at = json_string_value(json_object_get(item, config ? "_config_at" : "_at"));
	if (at)
		snprintf(out, size, "%s", at);
	else
		snprintf(out, size, "%s[%zu]%s", list, i, config ? ".config" : "");
}

typedef struct built {
	const char *name;
	pv_strategy *s; /* NULL: not built (disabled, failed) */
	double weight;
	bool is_strategy;
	bool child; /* used by some wrapper */
	int state;  /* 0 new, 1 building, 2 done */
	const json_t *item;
	size_t index;
} built;

typedef struct builder {
	built *items;
	size_t n;
	const pv_clock *clock;
	pv_diags *diags;
} builder;

static built *find(builder *b, const char *name)
{
	for (size_t i = 0; name && i < b->n; i++)
		if (strcmp(b->items[i].name, name) == 0)
			return &b->items[i];
	return NULL;
}

static json_t *child_names(const json_t *item)
{
	json_t *out = json_array();
	const char *kind = json_string_value(json_object_get(item, "kind"));
	if (strcmp(kind, "fallback") == 0) {
		json_array_append(out, json_object_get(item, "primary"));
		if (json_object_get(item, "fallbacks"))
			json_array_extend(out, json_object_get(item, "fallbacks"));
	} else if (strcmp(kind, "chaos") == 0) {
		json_array_append(out, json_object_get(item, "child"));
	} else {
		json_array_extend(out, json_object_get(item, "children"));
	}
	return out;
}

static void build_one(builder *b, built *it)
{
	if (it->state == 2 || !it->is_strategy)
		return;
	char path[128], cpath[128];
	where(it->item, "strategies", it->index, false, path, sizeof path);
	where(it->item, "strategies", it->index, true, cpath, sizeof cpath);
	if (it->state == 1) {
		pv_diags_add(b->diags, PV_DIAG_ERROR, path, "cycle through '%s'", it->name);
		return;
	}
	it->state = 1;
	const char *kind = json_string_value(json_object_get(it->item, "kind"));
	json_t *names = child_names(it->item);
	size_t n = json_array_size(names), k = 0;
	pv_strategy **kids = calloc(n ? n : 1, sizeof *kids);
	double *weights = calloc(n ? n : 1, sizeof *weights);
	bool primary_missing = false, is_fallback = strcmp(kind, "fallback") == 0;
	for (size_t i = 0; kids && weights && i < n; i++) {
		built *c = find(b, json_string_value(json_array_get(names, i)));
		if (c) {
			c->child = true;
			build_one(b, c);
		}
		if (c && c->s) {
			kids[k] = c->s;
			weights[k++] = c->weight;
		} else if (i == 0 && is_fallback) {
			primary_missing = true;
		}
	}
	const kind_ops *ops = find_kind(kind);
	const json_t *config = json_object_get(it->item, "config");
	if (!kids || !weights) {
		pv_diags_add(b->diags, PV_DIAG_ERROR, path, "out of memory");
	} else if (!ops) {
		pv_diags_add(b->diags, PV_DIAG_ERROR, path,
			     "kind '%s' is not available in this build of provisio", kind);
	} else if (primary_missing || k == 0) {
		/* (its config was checked with the graph: pv_config_check_kind) */
		pv_diags_add(b->diags, PV_DIAG_ERROR, path,
			     primary_missing ? "the primary of '%s' is disabled or failed to build"
					     : "'%s' has no usable child", it->name);
	} else if (is_fallback && k == 1) {
		pv_diags_add(b->diags, PV_DIAG_ERROR, path,
			     "'%s' has no usable fallback: each one is disabled or failed to build", it->name);
	} else if (ops->build(&it->s, it->name, kids, weights, k, config, b->clock) < 0) {
		pv_diags_add(b->diags, PV_DIAG_ERROR, cpath, "%s", pv_error_last());
	}
	free(kids);
	free(weights);
	json_decref(names);
	it->state = 2;
}

static void load_plugins(const json_t *graph, pv_diags *diags)
{
	size_t i;
	json_t *p;
	json_array_foreach(json_object_get(graph, "plugins"), i, p) {
		char path[32];
		snprintf(path, sizeof path, "plugins[%zu]", i);
		if (pv_plugin_load(json_string_value(p)) < 0)
			pv_diags_add(diags, PV_DIAG_ERROR, path, "%s", pv_error_last());
	}
}

/* Provider `i` of the graph made by its type's factory (constructors
 * validate their config; nothing connects), or NULL with the problem in
 * diags at the path of its config in the user's file. */
static pv_strategy *make_provider(const json_t *p, size_t i, const pv_clock *clock, pv_diags *diags)
{
	pv_provider_factory f = pv_provider_factory_find(json_string_value(json_object_get(p, "type")));
	pv_strategy *s = NULL;
	char path[128];
	/* no factory (its module missing): the provider is at fault, not its config */
	where(p, "providers", i, f != NULL, path, sizeof path);
	if (!f)
		pv_diags_add(diags, PV_DIAG_ERROR, path, "%s", pv_error_last());
	else if (f(&s, json_string_value(json_object_get(p, "name")), json_object_get(p, "config"),
		   clock) < 0)
		pv_diags_add(diags, PV_DIAG_ERROR, path, "%s", pv_error_last());
	return s;
}

static void build_providers(builder *b, const json_t *graph)
{
	size_t i;
	json_t *p;
	json_array_foreach(json_object_get(graph, "providers"), i, p) {
		built *it = &b->items[b->n++];
		it->name = json_string_value(json_object_get(p, "name"));
		it->item = p;
		it->index = i;
		it->state = 2;
		json_t *w = json_object_get(p, "weight");
		it->weight = w ? json_number_value(w) : 1.0;
		if (!json_is_false(json_object_get(p, "enabled")))
			it->s = make_provider(p, i, b->clock, b->diags);
	}
}

void pv_config_check_providers(const json_t *graph, pv_diags *diags)
{
	size_t i;
	json_t *p;
	json_array_foreach(json_object_get(graph, "providers"), i, p) {
		json_t *config = json_object_get(p, "config");
		if (!json_is_object(p) || !json_is_string(json_object_get(p, "name")) ||
		    !pv_provider_factory_find(json_string_value(json_object_get(p, "type"))) ||
		    json_is_false(json_object_get(p, "enabled")) || (config && !json_is_object(config)))
			continue; /* the graph's own checks reported it */
		pv_strategy_unref(make_provider(p, i, NULL, diags));
	}
}

static int apply_context(pv_context *ctx, const json_t *c)
{
	json_t *v;
	if (!c)
		return 0;
	if ((v = json_object_get(c, "metrics_collection_enabled")))
		pv_context_set_metrics_enabled(ctx, !json_is_false(v));
	pv_policy policy;
	if ((v = json_object_get(c, "selection_policy")) &&
	    pv_policy_parse(json_string_value(v), &policy) == 0 && policy != PV_POLICY_CUSTOM)
		pv_context_set_policy(ctx, policy);
	json_t *crit = json_object_get(c, "selection_criteria");
	return json_is_object(crit) ? pv_config_apply_criteria(ctx, crit) : 0;
}

int pv_config_build(const json_t *graph, const pv_clock *clock, pv_context **out, pv_diags *diags)
{
	*out = NULL;
	load_plugins(graph, diags);
	size_t np = json_array_size(json_object_get(graph, "providers"));
	size_t ns = json_array_size(json_object_get(graph, "strategies"));
	builder b = {calloc(np + ns + 1, sizeof(built)), 0, clock, diags};
	if (!b.items)
		return pv_error_set(PV_ENOMEM, "out of memory");
	build_providers(&b, graph);
	size_t i;
	json_t *s;
	json_array_foreach(json_object_get(graph, "strategies"), i, s) {
		built *it = &b.items[b.n++];
		it->name = json_string_value(json_object_get(s, "name"));
		it->item = s;
		it->index = i;
		it->is_strategy = true;
		it->weight = 1.0;
	}
	for (i = 0; i < b.n; i++)
		build_one(&b, &b.items[i]);

	pv_context *ctx = NULL;
	json_t *c = json_object_get(graph, "context");
	json_t *iv = json_object_get(c, "health_check_interval_seconds");
	pv_context_options opts = {.clock = clock, .health_interval_seconds = iv ? json_number_value(iv) : 0};
	int rc = diags->errors ? PV_EINVAL : pv_context_new(&ctx, &opts);
	for (i = 0; rc == 0 && i < b.n; i++) {
		built *it = &b.items[i];
		if (!it->s)
			continue;
		rc = pv_context_register_weighted(ctx, it->s, it->weight);
		if (rc >= 0) {
			json_t *sel = json_object_get(it->item, "selectable");
			rc = pv_context_set_selectable(ctx, it->name, sel ? json_is_true(sel) : !it->child);
		}
	}
	const char *deflt = json_string_value(json_object_get(graph, "default_strategy"));
	for (i = 0; !deflt && i < b.n; i++) /* else the first top-level strategy, then provider */
		if (b.items[i].s && b.items[i].is_strategy && !b.items[i].child)
			deflt = b.items[i].name;
	for (i = 0; !deflt && i < b.n; i++)
		if (b.items[i].s && !b.items[i].child)
			deflt = b.items[i].name;
	if (rc == 0 && deflt && pv_context_set_strategy(ctx, deflt) < 0)
		pv_diags_add(diags, PV_DIAG_ERROR, "default_strategy", "%s", pv_error_last());
	if (rc == 0 && apply_context(ctx, c) < 0)
		pv_diags_add(diags, PV_DIAG_ERROR, "context.selection_criteria", "%s", pv_error_last());
	for (i = 0; i < b.n; i++)
		pv_strategy_unref(b.items[i].s); /* the context holds its own references */
	free(b.items);
	if (rc == 0 && diags->errors)
		rc = PV_EINVAL;
	if (rc < 0) {
		pv_context_free(ctx);
		return rc == PV_EINVAL ? pv_error_set(PV_EINVAL, "%zu configuration error(s)", diags->errors)
				       : rc;
	}
	*out = ctx;
	return 0;
}

int pv_config_open(const pv_config_options *opts, pv_context **ctx, json_t **graph_out, pv_diags *diags)
{
	*ctx = NULL;
	if (graph_out)
		*graph_out = NULL;
	json_t *doc = NULL;
	int rc = pv_config_load_file(opts, &doc, diags);
	json_t *graph = NULL;
	if (doc && rc != PV_EIO && rc != PV_ENOTFOUND) {
		graph = pv_config_normalize(doc, opts && opts->strict, diags);
		if (graph && !diags->errors)
			rc = pv_config_build(graph, opts ? opts->clock : NULL, ctx, diags);
		else
			rc = pv_error_set(PV_EINVAL, "%zu configuration error(s)", diags->errors);
	}
	json_decref(doc);
	if (graph_out)
		*graph_out = graph;
	else
		json_decref(graph);
	return rc;
}
