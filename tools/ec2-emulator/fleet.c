/*
 * fleet.c - EC2 Fleet after CreateFleet (emu.c): DescribeFleets,
 * DescribeFleetInstances, DeleteFleets, ModifyFleet.
 *
 * A fleet of any type is a group (groups.c). A maintain fleet replaces what
 * it loses (a terminate, a spot interruption); a request fleet launches
 * once. DeleteFleets with TerminateInstances ends in deleted_terminating
 * (its instances shut down; "deleted" once none is left), without in
 * deleted_running (they keep running, nothing replaces them). ModifyFleet
 * changes a maintain fleet's target: more launches, less terminates the
 * newest unless ExcessCapacityTerminationPolicy is no-termination.
 */
#include <stdlib.h>
#include <string.h>
#include "emu.h"

/* The fleet `id`, or NULL with r filled (InvalidFleetId.NotFound). */
static json_t *fleet_of(emu *e, const char *id, const char *rid, emu_reply *r)
{
	return emu_group_named(e, id, "fleet", "FleetId", "fleet ID", "InvalidFleetId.NotFound", rid, r);
}

static const char *fleet_state(emu *e, json_t *g)
{
	return emu_group_state(e, g, "deleted_terminating", "deleted");
}

static const char *fleet_field(emu *e, json_t *g, const char *name, char *buf, size_t size)
{
	(void)buf;
	(void)size;
	if (strcmp(name, "fleet-state") == 0)
		return fleet_state(e, g);
	if (strcmp(name, "activity-status") == 0)
		return emu_group_activity(e, g);
	if (strcmp(name, "excess-capacity-termination-policy") == 0)
		return param(g, "excess");
	if (strcmp(name, "replace-unhealthy-instances") == 0)
		return "false";
	return param(g, "type");
}

static void fleet_xml(emu *e, emu_buf *b, json_t *g)
{
	long od, spot;
	emu_group_fulfilled(e, g, &od, &spot);
	long target = (long)json_integer_value(json_object_get(g, "target"));
	long want_od = (long)json_integer_value(json_object_get(g, "on_demand"));
	eb_add(b, "<item>");
	eb_elem(b, "activityStatus", emu_group_activity(e, g));
	eb_elem(b, "createTime", param(g, "created"));
	eb_elem(b, "fleetId", param(g, "id"));
	eb_elem(b, "fleetState", fleet_state(e, g));
	if (param(g, "token"))
		eb_elem(b, "clientToken", param(g, "token"));
	eb_elem(b, "excessCapacityTerminationPolicy", param(g, "excess"));
	eb_printf(b, "<fulfilledCapacity>%ld.0</fulfilledCapacity><fulfilledOnDemandCapacity>%ld.0</fulfilledOnDemandCapacity>",
		  od + spot, od);
	json_t *spec = json_object_get(g, "lt_spec");
	eb_add(b, "<launchTemplateConfigs><item><launchTemplateSpecification>");
	if (param(spec, "id"))
		eb_elem(b, "launchTemplateId", param(spec, "id"));
	if (param(spec, "name"))
		eb_elem(b, "launchTemplateName", param(spec, "name"));
	eb_elem(b, "version", param(g, "lt_version"));
	eb_add(b, "</launchTemplateSpecification><overrides>");
	size_t i;
	json_t *s;
	json_array_foreach(json_object_get(g, "specs"), i, s) {
		eb_add(b, "<item>");
		eb_elem(b, "instanceType", param(s, "type"));
		if (param(s, "subnet"))
			eb_elem(b, "subnetId", param(s, "subnet"));
		eb_printf(b, "<weightedCapacity>%lld.0</weightedCapacity></item>",
			  (long long)json_integer_value(json_object_get(s, "weight")));
	}
	eb_add(b, "</overrides></item></launchTemplateConfigs>");
	eb_printf(b, "<targetCapacitySpecification><totalTargetCapacity>%ld</totalTargetCapacity>"
		     "<onDemandTargetCapacity>%ld</onDemandTargetCapacity><spotTargetCapacity>%ld</spotTargetCapacity>",
		  target, want_od, target - want_od);
	eb_elem(b, "defaultTargetCapacityType", param(g, "default_type"));
	eb_add(b, "</targetCapacitySpecification>");
	eb_elem(b, "type", param(g, "type"));
	eb_add(b, "</item>");
}

void emu_describe_fleets(emu *e, json_t *p, const char *rid, emu_reply *r)
{
	long max = emu_max_results(p, rid, r);
	if (max == 0)
		return;
	static const char *const names[] = {"activity-status", "excess-capacity-termination-policy", "fleet-state",
					    "replace-unhealthy-instances", "type", NULL};
	json_t *filters = emu_filters(p, names, rid, r);
	if (!filters)
		return;
	json_t *pool = json_array();
	const char *id;
	json_t *g;
	if (param(p, "FleetId.1")) {
		for (int k = 1; (id = paramf(p, "FleetId.%d", k)); k++) {
			if (!(g = fleet_of(e, id, rid, r)))
				goto out;
			json_array_append(pool, g);
		}
	} else {
		json_object_foreach(e->groups, id, g) if (strcmp(param(g, "kind"), "fleet") == 0) json_array_append(pool, g);
	}
	long start = emu_describe_start(e, "DescribeFleets", p, rid, r);
	if (start < 0)
		goto out;
	emu_head(&r->body, "DescribeFleets", rid);
	eb_add(&r->body, "<fleetSet>");
	long seen = 0, shown = 0, next = -1;
	size_t i;
	json_array_foreach(pool, i, g) {
		if (!emu_filters_match(e, filters, g, fleet_field) || seen++ < start)
			continue;
		if (max > 0 && shown == max) {
			next = seen - 1;
			break;
		}
		fleet_xml(e, &r->body, g);
		shown++;
	}
	eb_add(&r->body, "</fleetSet>");
	emu_page_next(e, "DescribeFleets", p, next, &r->body);
	eb_add(&r->body, "</DescribeFleetsResponse>");
	r->status = 200;
out:
	json_decref(pool);
	json_decref(filters);
}

void emu_describe_fleet_instances(emu *e, json_t *p, const char *rid, emu_reply *r)
{
	json_t *g = fleet_of(e, param(p, "FleetId"), rid, r);
	if (g)
		emu_active_instances(e, g, "DescribeFleetInstances", "fleetId", p, rid, r);
}

void emu_delete_fleets(emu *e, json_t *p, const char *rid, emu_reply *r)
{
	static const emu_end_words words = {
		"DeleteFleets", "fleet", "fleet ID", "FleetId", "fleetId", "successfulFleetDeletionSet",
		"unsuccessfulFleetDeletionSet", "currentFleetState", "previousFleetState", "fleetIdDoesNotExist",
		"fleetNotInDeletableState", "deleted_terminating", "deleted_running", fleet_state,
	};
	emu_end_groups(e, p, &words, rid, r);
}

void emu_modify_fleet(emu *e, json_t *p, const char *rid, emu_reply *r)
{
	json_t *g = fleet_of(e, param(p, "FleetId"), rid, r);
	if (!g)
		return;
	const char *total = param(p, "TargetCapacitySpecification.TotalTargetCapacity");
	const char *od = param(p, "TargetCapacitySpecification.OnDemandTargetCapacity");
	const char *policy = param(p, "ExcessCapacityTerminationPolicy");
	if (strcmp(param(g, "type"), "maintain") != 0 || strcmp(param(g, "state"), "active") != 0)
		return emu_error(r, 400, "UnsupportedOperation",
				 "Only an active EC2 Fleet of type maintain can be modified", rid);
	if (!total || atol(total) < 0 || (od && (atol(od) < 0 || atol(od) > atol(total))))
		return emu_error(r, 400, "InvalidTargetCapacitySpecification",
				 "TotalTargetCapacity must be an integer >= 0, OnDemandTargetCapacity at most that", rid);
	if (policy && strcmp(policy, "no-termination") != 0 && strcmp(policy, "termination") != 0)
		return emu_error(r, 400, "InvalidParameterValue",
				 "ExcessCapacityTerminationPolicy must be no-termination or termination", rid);
	if (is_true(p, "DryRun"))
		return emu_dry_run_ok(r, rid);
	if (policy)
		json_object_set_new(g, "excess", json_string(policy));
	/* Without OnDemandTargetCapacity the default type takes the change. */
	long t = atol(total), old_t = (long)json_integer_value(json_object_get(g, "target"));
	long old_od = (long)json_integer_value(json_object_get(g, "on_demand")), new_od = od ? atol(od) : old_od;
	if (!od && strcmp(param(g, "default_type"), "spot") != 0)
		new_od = t - (old_t - old_od) > 0 ? t - (old_t - old_od) : 0;
	emu_group_resize(e, g, t, new_od < t ? new_od : t, strcmp(param(g, "excess"), "termination") == 0);
	emu_head(&r->body, "ModifyFleet", rid);
	eb_add(&r->body, "<return>true</return></ModifyFleetResponse>");
	r->status = 200;
}
