/*
 * view.c - the strategy graph as GET /api/v1/providers shows it (docs/api.md):
 * the context's state of every strategy with its kind and children from
 * the configuration. `provisio providers list --format json` prints the same.
 */
#include "provisio/config.h"
#include "provisio/context.h"

/* The names a strategy of the graph delegates to, in order. */
static json_t *graph_children(const json_t *item)
{
	json_t *kids = json_array();
	if (json_object_get(item, "primary"))
		json_array_append(kids, json_object_get(item, "primary"));
	static const char *const keys[] = {"fallbacks", "children"};
	for (int k = 0; k < 2; k++)
		if (json_is_array(json_object_get(item, keys[k])))
			json_array_extend(kids, json_object_get(item, keys[k]));
	if (json_is_string(json_object_get(item, "child")))
		json_array_append(kids, json_object_get(item, "child"));
	return kids;
}

json_t *pv_config_providers_view(pv_context *ctx, const json_t *graph)
{
	json_t *all = pv_context_to_json(ctx);
	json_t *strategies = json_object_get(all, "strategies");
	static const char *const lists[] = {"providers", "strategies"};
	for (int l = 0; l < 2; l++) {
		size_t i;
		json_t *item;
		json_array_foreach(json_object_get(graph, lists[l]), i, item) {
			json_t *s = json_object_get(strategies, json_string_value(json_object_get(item, "name")));
			if (!s)
				continue;
			json_object_set_new(s, "kind", l == 0 ? json_string("provider")
							      : json_incref(json_object_get(item, "kind")));
			json_object_set_new(s, "children", l == 0 ? json_array() : graph_children(item));
		}
	}
	return all;
}
