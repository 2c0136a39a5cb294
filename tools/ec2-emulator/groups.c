/*
 * groups.c - what EC2 Fleet, Spot Fleet and Auto Scaling groups share: a
 * set of instances kept at a target capacity.
 *
 * A group is a JSON object in e->groups, by id (fleet-…, sfr-…, the Auto
 * Scaling group's name):
 *   kind       "fleet", "spot-fleet" or "asg"
 *   id, type   instant / request / maintain (an Auto Scaling group maintains)
 *   state      "active", or the kind's word for deleted / cancelled
 *   target     capacity units wanted; on_demand: how many of them on-demand,
 *              the rest spot
 *   specs      [{image, type, subnet, key, weight, tags, lt_id}] to launch from
 *              (lt_id: the launch template each launch, replacements too, needs)
 *   spread     true: take the specs in turn (Auto Scaling spreads over its
 *              subnets), false: the first that has capacity (a fleet's order)
 *   tags       instance tags (the kind's aws: tag among them)
 *   instances  every instance id the group launched, in order
 *   created, token, and what the kind's own file adds.
 * Each instance launched for a group has "group" (its id) and "weight".
 *
 * EC2 fulfils and replaces in the background; here a maintain group is
 * topped up before every request is answered (emu_groups_reconcile), so a
 * client sees an instance go (terminated, interrupted) and its replacement
 * on its next call: deterministic, and no client-visible delay to wait out.
 */
#include <stdlib.h>
#include <string.h>
#include "emu.h"

json_t *emu_group_new(emu *e, const char *kind, const char *id, const char *type)
{
	char when[32];
	emu_time_now(when, sizeof when);
	json_t *g = json_pack("{s:s, s:s, s:s, s:s, s:i, s:i, s:[], s:b, s:{}, s:[], s:s, s:i}", "kind", kind, "id", id,
			      "type", type, "state", "active", "target", 0, "on_demand", 0, "specs", "spread", 0, "tags",
			      "instances", "created", when, "next", 0);
	if (!g)
		abort(); /* a bug in the format above */
	json_object_set_new(e->groups, id, g);
	return g;
}

static long geti(json_t *g, const char *key) { return (long)json_integer_value(json_object_get(g, key)); }

json_t *emu_group_live(emu *e, json_t *g)
{
	json_t *live = json_array();
	size_t i;
	json_t *id;
	json_array_foreach(json_object_get(g, "instances"), i, id) {
		json_t *in = emu_find(e, json_string_value(id));
		if (in && emu_live(in))
			json_array_append(live, in);
	}
	return live;
}

static bool is_spot(json_t *in)
{
	const char *l = param(in, "lifecycle");
	return l && strcmp(l, "spot") == 0;
}

void emu_group_fulfilled(emu *e, json_t *g, long *on_demand, long *spot)
{
	*on_demand = *spot = 0;
	json_t *live = emu_group_live(e, g);
	size_t i;
	json_t *in;
	json_array_foreach(live, i, in) *(is_spot(in) ? spot : on_demand) += geti(in, "weight");
	json_decref(live);
}

/* Whether the spec's launch template still exists. EC2 launches every
 * instance, replacements too, from the template itself: one deleted under
 * the group fails the launch (InvalidLaunchTemplateId.NotFound in the
 * group's history) and the group stays short. */
static bool template_there(emu *e, json_t *g, json_t *spec)
{
	const char *lt = param(spec, "lt_id");
	if (!lt || emu_template_find(e, lt, NULL))
		return true;
	char why[200];
	snprintf(why, sizeof why, "InvalidLaunchTemplateId.NotFound: the launch template %s does not exist", lt);
	json_object_set_new(g, "launch_error", json_string(why));
	return false;
}

/* Launches `need` units of one lifecycle; stops when no spec has capacity
 * (or its launch template). */
static void fill_part(emu *e, json_t *g, long need, const char *lifecycle, json_t *launched)
{
	json_t *specs = json_object_get(g, "specs");
	size_t n = json_array_size(specs);
	bool spread = json_is_true(json_object_get(g, "spread"));
	while (need > 0 && n > 0) {
		size_t first = spread ? (size_t)geti(g, "next") % n : 0, k;
		json_t *s = NULL;
		for (k = 0; k < n; k++) {
			json_t *c = json_array_get(specs, (first + k) % n);
			if (template_there(e, g, c) && emu_can_launch(e, param(c, "type"), param(c, "subnet"))) {
				s = c;
				break;
			}
		}
		if (!s)
			return; /* no capacity anywhere: the group stays short, as EC2's would */
		json_object_set_new(g, "next", json_integer((json_int_t)((first + k + 1) % n)));
		emu_launch_spec spec = {param(s, "image"), param(s, "type"), param(s, "subnet"), param(s, "key"),
					geti(s, "weight")};
		/* The spec's tags (its launch template's, its own), then the group's. */
		json_t *tags = json_deep_copy(json_object_get(s, "tags"));
		if (!tags)
			tags = json_object();
		json_object_update(tags, json_object_get(g, "tags"));
		json_t *in = emu_launch(e, &spec, param(g, "token"), lifecycle, tags, NULL, 0);
		json_decref(tags);
		json_object_set_new(in, "group", json_string(param(g, "id")));
		json_array_append(json_object_get(g, "instances"), json_object_get(in, "id"));
		if (launched)
			json_array_append(launched, json_object_get(in, "id"));
		need -= spec.weight > 0 ? spec.weight : 1;
	}
}

void emu_group_fill(emu *e, json_t *g, json_t *launched)
{
	long od, spot, target = geti(g, "target"), want_od = geti(g, "on_demand");
	if (want_od > target)
		want_od = target;
	emu_group_fulfilled(e, g, &od, &spot);
	fill_part(e, g, want_od - od, NULL, launched);
	fill_part(e, g, target - want_od - spot, "spot", launched);
}

void emu_group_trim(emu *e, json_t *g)
{
	long od, spot, target = geti(g, "target");
	emu_group_fulfilled(e, g, &od, &spot);
	long have = od + spot;
	json_t *live = emu_group_live(e, g);
	for (size_t i = json_array_size(live); i-- > 0;) {
		json_t *in = json_array_get(live, i);
		if (have - geti(in, "weight") < target)
			continue;
		emu_terminate(e, in, EMU_USER_SHUTDOWN);
		have -= geti(in, "weight");
	}
	json_decref(live);
}

void emu_group_terminate_all(emu *e, json_t *g)
{
	json_t *live = emu_group_live(e, g);
	size_t i;
	json_t *in;
	json_array_foreach(live, i, in) emu_terminate(e, in, EMU_USER_SHUTDOWN);
	json_decref(live);
}

void emu_groups_reconcile(emu *e)
{
	const char *id;
	json_t *g;
	json_object_foreach(e->groups, id, g) {
		if (strcmp(param(g, "type"), "maintain") != 0 || strcmp(param(g, "state"), "active") != 0)
			continue;
		emu_group_fill(e, g, NULL);
		if (strcmp(param(g, "kind"), "asg") == 0)
			emu_group_trim(e, g); /* a group holds its desired capacity both ways */
	}
}

const char *emu_group_activity(emu *e, json_t *g)
{
	long od, spot;
	emu_group_fulfilled(e, g, &od, &spot);
	if (strcmp(param(g, "state"), "active") != 0)
		return od + spot > 0 ? "pending_termination" : "fulfilled";
	if (od + spot >= geti(g, "target"))
		return "fulfilled";
	return param(g, "launch_error") ? "error" : "pending_fulfillment";
}

void emu_group_resize(emu *e, json_t *g, long target, long on_demand, bool terminate_excess)
{
	json_object_set_new(g, "target", json_integer(target));
	if (on_demand >= 0)
		json_object_set_new(g, "on_demand", json_integer(on_demand));
	if (terminate_excess)
		emu_group_trim(e, g);
	emu_group_fill(e, g, NULL);
}

void emu_group_end(emu *e, json_t *g, bool terminate, const char *state)
{
	if (terminate)
		emu_group_terminate_all(e, g);
	json_object_set_new(g, "state", json_string(state));
}

void emu_active_instances(emu *e, json_t *g, const char *action, const char *id_elem, json_t *p, const char *rid,
			  emu_reply *r)
{
	long max = emu_max_results(p, rid, r);
	if (max == 0)
		return;
	static const char *const names[] = {"instance-type", NULL};
	json_t *filters = emu_filters(p, names, rid, r);
	long start = filters ? emu_describe_start(e, action, p, rid, r) : -1;
	if (start < 0) {
		json_decref(filters);
		return;
	}
	json_t *live = emu_group_live(e, g);
	emu_head(&r->body, action, rid);
	eb_add(&r->body, "<activeInstanceSet>");
	long seen = 0, shown = 0, next = -1;
	size_t i;
	json_t *in;
	json_array_foreach(live, i, in) {
		if (!emu_filters_match(e, filters, in, emu_instance_field) || seen++ < start)
			continue;
		if (max > 0 && shown == max) {
			next = seen - 1;
			break;
		}
		eb_add(&r->body, "<item>");
		eb_elem(&r->body, "instanceId", param(in, "id"));
		eb_elem(&r->body, "instanceType", param(in, "type"));
		eb_add(&r->body, "<instanceHealth>healthy</instanceHealth></item>");
		shown++;
	}
	eb_add(&r->body, "</activeInstanceSet>");
	emu_page_next(e, action, p, next, &r->body);
	eb_elem(&r->body, id_elem, param(g, "id"));
	eb_printf(&r->body, "</%sResponse>", action);
	json_decref(live);
	json_decref(filters);
	r->status = 200;
}

json_t *emu_group_get(emu *e, const char *id, const char *kind)
{
	json_t *g = id ? json_object_get(e->groups, id) : NULL;
	return g && strcmp(param(g, "kind"), kind) == 0 ? g : NULL;
}

json_t *emu_group_named(emu *e, const char *id, const char *kind, const char *id_param, const char *noun,
			const char *not_found, const char *rid, emu_reply *r)
{
	json_t *g = emu_group_get(e, id, kind);
	char msg[300];
	if (!g && !id) {
		snprintf(msg, sizeof msg, "The request must contain the parameter %s", id_param);
		emu_error(r, 400, "MissingParameter", msg, rid);
	} else if (!g) {
		snprintf(msg, sizeof msg, "The %s '%.200s' does not exist", noun, id);
		emu_error(r, 400, not_found, msg, rid);
	}
	return g;
}

const char *emu_group_state(emu *e, json_t *g, const char *terminating, const char *ended)
{
	long od, spot;
	const char *state = param(g, "state");
	emu_group_fulfilled(e, g, &od, &spot);
	return strcmp(state, terminating) == 0 && od + spot == 0 ? ended : state;
}

void emu_end_groups(emu *e, json_t *p, const emu_end_words *w, const char *rid, emu_reply *r)
{
	const char *term = param(p, "TerminateInstances");
	char msg[300];
	if (!paramf(p, "%s.1", w->id_param) || !term) {
		snprintf(msg, sizeof msg, "The request must contain the parameter %s",
			 term ? w->id_param : "TerminateInstances");
		return emu_error(r, 400, "MissingParameter", msg, rid);
	}
	if (is_true(p, "DryRun"))
		return emu_dry_run_ok(r, rid);
	bool terminate = strcmp(term, "true") == 0;
	emu_buf ok = {0}, bad = {0};
	eb_add(&ok, "");
	eb_add(&bad, "");
	const char *id;
	for (int k = 1; (id = paramf(p, "%s.%d", w->id_param, k)); k++) {
		json_t *g = emu_group_get(e, id, w->kind);
		char prev[32]; /* a copy: ending the group replaces its state */
		snprintf(prev, sizeof prev, "%s", g ? w->state(e, g) : "");
		if (!g || strcmp(prev, "active") != 0) {
			snprintf(msg, sizeof msg, "The %s '%.200s' %s", w->noun, id, g ? "is not active" : "does not exist");
			eb_add(&bad, "<item><error>");
			eb_elem(&bad, "code", g ? w->not_active_code : w->missing_code);
			eb_elem(&bad, "message", msg);
			eb_add(&bad, "</error>");
			eb_elem(&bad, w->id_elem, id);
			eb_add(&bad, "</item>");
			continue;
		}
		emu_group_end(e, g, terminate, terminate ? w->terminating_state : w->running_state);
		eb_add(&ok, "<item>");
		eb_elem(&ok, w->current_elem, param(g, "state"));
		eb_elem(&ok, w->previous_elem, prev);
		eb_elem(&ok, w->id_elem, id);
		eb_add(&ok, "</item>");
	}
	emu_head(&r->body, w->action, rid);
	eb_printf(&r->body, "<%s>%s</%s><%s>%s</%s></%sResponse>", w->ok_set, ok.s, w->ok_set, w->bad_set, bad.s,
		  w->bad_set, w->action);
	eb_free(&ok);
	eb_free(&bad);
	r->status = 200;
}
