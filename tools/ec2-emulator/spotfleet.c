/*
 * spotfleet.c - Spot Fleet: RequestSpotFleet, DescribeSpotFleetRequests,
 * DescribeSpotFleetInstances, CancelSpotFleetRequests,
 * ModifySpotFleetRequest.
 *
 * A Spot Fleet is a group (groups.c) of kind "spot-fleet": launched from
 * SpotFleetRequestConfig.LaunchSpecifications.N (a SubnetId may list
 * several, "subnet-a, subnet-b": one spec each) or .LaunchTemplateConfigs.N,
 * OnDemandTargetCapacity on-demand and the rest spot, its instances tagged
 * aws:ec2spot:fleet-request-id as EC2 does. Type maintain (the default)
 * replaces what it loses, request does not. Cancelling with
 * TerminateInstances ends in cancelled_terminating ("cancelled" once none is
 * left), without in cancelled_running. ModifySpotFleetRequest changes a
 * maintain fleet's target: ExcessCapacityTerminationPolicy default
 * terminates the newest above it, noTermination keeps them. The config is
 * checked before DryRun and ClientToken (SpotFleetRequestConfig.ClientToken)
 * replays the first answer. Not modelled: prices (SpotPrice is accepted
 * and ignored: capacity is decided by --ice-types / --ice-azs /
 * --capacity), ValidFrom / ValidUntil, load balancers.
 */
#include <stdlib.h>
#include <string.h>
#include "emu.h"

#define CFG "SpotFleetRequestConfig."

static void config_error(emu_reply *r, const char *msg, const char *rid)
{
	emu_error(r, 400, "InvalidSpotFleetRequestConfig", msg, rid);
}

/* Tags of <prefix>TagSpecificationSet.N / TagSpecification.N (`set`) of
 * resource type `type`. */
static json_t *spec_tags(json_t *p, const char *prefix, const char *set, const char *type)
{
	json_t *tags = json_object();
	for (int s = 1; paramf(p, "%s%s.%d.ResourceType", prefix, set, s); s++) {
		if (strcmp(paramf(p, "%s%s.%d.ResourceType", prefix, set, s), type) != 0)
			continue;
		for (int t = 1; paramf(p, "%s%s.%d.Tag.%d.Key", prefix, set, s, t); t++) {
			const char *v = paramf(p, "%s%s.%d.Tag.%d.Value", prefix, set, s, t);
			json_object_set_new(tags, paramf(p, "%s%s.%d.Tag.%d.Key", prefix, set, s, t), json_string(v ? v : ""));
		}
	}
	return tags;
}

/* LaunchSpecifications.N as specs; false with r filled. */
static bool launch_specs(json_t *p, json_t *specs, const char *rid, emu_reply *r)
{
	char pre[100], msg[300];
	for (int k = 1;; k++) {
		snprintf(pre, sizeof pre, CFG "LaunchSpecifications.%d.", k);
		const char *image = paramf(p, "%sImageId", pre), *type = paramf(p, "%sInstanceType", pre);
		if (!image && !type)
			return true;
		if (!image || !type) {
			snprintf(msg, sizeof msg, "LaunchSpecifications.%d needs an ImageId and an InstanceType", k);
			config_error(r, msg, rid);
			return false;
		}
		if (strncmp(image, "ami-", 4) != 0) {
			snprintf(msg, sizeof msg, "Invalid id: \"%.200s\" (expecting \"ami-...\")", image);
			emu_error(r, 400, "InvalidAMIID.Malformed", msg, rid);
			return false;
		}
		if (!emu_instance_type_known(type)) {
			snprintf(msg, sizeof msg, "Invalid value '%.200s' for InstanceType.", type);
			emu_error(r, 400, "InvalidParameterValue", msg, rid);
			return false;
		}
		json_t *tags = spec_tags(p, pre, "TagSpecificationSet", "instance");
		if (!emu_tags_ok(tags, rid, r)) {
			json_decref(tags);
			return false;
		}
		const char *w = paramf(p, "%sWeightedCapacity", pre), *subnets = paramf(p, "%sSubnetId", pre);
		char *list = strdup(subnets ? subnets : ""), *save = NULL;
		char *sub = strtok_r(list, ", ", &save);
		do {
			json_array_append_new(specs, json_pack("{s:s, s:s, s:s?, s:s?, s:I, s:O}", "image", image, "type",
							       type, "subnet", sub, "key", paramf(p, "%sKeyName", pre),
							       "weight", (json_int_t)(w && atof(w) >= 1 ? atof(w) : 1),
							       "tags", tags));
		} while ((sub = strtok_r(NULL, ", ", &save)));
		free(list);
		json_decref(tags);
	}
}

/* LaunchTemplateConfigs.N as the request gave them, for
 * DescribeSpotFleetRequests: [{id, name, version, overrides: [{type,
 * subnet, weight}]}] (what was not given is left out). */
static json_t *lt_configs_given(json_t *p)
{
	json_t *all = json_array();
	char pre[100];
	for (int c = 1;; c++) {
		snprintf(pre, sizeof pre, CFG "LaunchTemplateConfigs.%d.", c);
		const char *id = paramf(p, "%sLaunchTemplateSpecification.LaunchTemplateId", pre);
		const char *name = paramf(p, "%sLaunchTemplateSpecification.LaunchTemplateName", pre);
		if (!id && !name)
			return all;
		json_t *ov = json_array();
		for (int k = 1; paramf(p, "%sOverrides.%d.InstanceType", pre, k); k++)
			json_array_append_new(ov, json_pack("{s:s, s:s?, s:s?}", "type",
							    paramf(p, "%sOverrides.%d.InstanceType", pre, k), "subnet",
							    paramf(p, "%sOverrides.%d.SubnetId", pre, k), "weight",
							    paramf(p, "%sOverrides.%d.WeightedCapacity", pre, k)));
		json_array_append_new(all, json_pack("{s:s?, s:s?, s:s?, s:o}", "id", id, "name", name, "version",
						     paramf(p, "%sLaunchTemplateSpecification.Version", pre),
						     "overrides", ov));
	}
}

void emu_request_spot_fleet(emu *e, json_t *p, const char *rid, emu_reply *r)
{
	const char *type = param(p, CFG "Type") ? param(p, CFG "Type") : "maintain";
	const char *target = param(p, CFG "TargetCapacity"), *od = param(p, CFG "OnDemandTargetCapacity");
	const char *excess = param(p, CFG "ExcessCapacityTerminationPolicy");
	if (!param(p, CFG "IamFleetRole"))
		return emu_error(r, 400, "MissingParameter", "The request must contain the parameter IamFleetRole", rid);
	if (!target)
		return emu_error(r, 400, "MissingParameter", "The request must contain the parameter TargetCapacity", rid);
	if (strcmp(type, "maintain") != 0 && strcmp(type, "request") != 0)
		return config_error(r, "Type must be request or maintain", rid);
	if (atol(target) < 1 || (od && (atol(od) < 0 || atol(od) > atol(target))))
		return config_error(r, "TargetCapacity must be >= 1 and OnDemandTargetCapacity from 0 to it", rid);
	if (excess && strcmp(excess, "default") != 0 && strcmp(excess, "noTermination") != 0)
		return config_error(r, "ExcessCapacityTerminationPolicy must be default or noTermination", rid);
	bool by_spec = param(p, CFG "LaunchSpecifications.1.ImageId") || param(p, CFG "LaunchSpecifications.1.InstanceType");
	bool by_template = param(p, CFG "LaunchTemplateConfigs.1.LaunchTemplateSpecification.LaunchTemplateId") ||
			   param(p, CFG "LaunchTemplateConfigs.1.LaunchTemplateSpecification.LaunchTemplateName");
	if (by_spec == by_template)
		return config_error(r, "Give either LaunchSpecifications or LaunchTemplateConfigs", rid);
	json_t *specs = json_array(), *fleet_tags = spec_tags(p, CFG, "TagSpecification", "spot-fleet-request");
	bool go = (by_spec ? launch_specs(p, specs, rid, r) : emu_template_configs(e, p, CFG, specs, rid, r)) &&
		  emu_tags_ok(fleet_tags, rid, r);
	if (go && is_true(p, "DryRun")) {
		emu_dry_run_ok(r, rid);
		go = false;
	}
	if (!go || emu_replay(e, "RequestSpotFleet", p, param(p, CFG "ClientToken"), rid, r)) {
		json_decref(specs);
		json_decref(fleet_tags);
		return;
	}
	char id[64];
	emu_uuid(e, "sfr-", id, sizeof id);
	json_t *g = emu_group_new(e, "spot-fleet", id, type);
	const char *strategy = param(p, CFG "AllocationStrategy") ? param(p, CFG "AllocationStrategy") : "lowestPrice";
	json_object_update_new(g, json_pack("{s:I, s:I, s:o, s:b, s:{s:s}, s:s?, s:s, s:s, s:s, s:o, s:o}", "target",
					    (json_int_t)atol(target), "on_demand", (json_int_t)(od ? atol(od) : 0),
					    "specs", specs, "spread", strcmp(strategy, "diversified") == 0, "tags",
					    "aws:ec2spot:fleet-request-id", id, "token", param(p, CFG "ClientToken"),
					    "excess", excess ? excess : "default", "role", param(p, CFG "IamFleetRole"),
					    "strategy", strategy, "fleet_tags", fleet_tags, "lt_configs",
					    lt_configs_given(p)));
	emu_group_fill(e, g, NULL);
	emu_head(&r->body, "RequestSpotFleet", rid);
	eb_elem(&r->body, "spotFleetRequestId", id);
	eb_add(&r->body, "</RequestSpotFleetResponse>");
	r->status = 200;
	emu_remember(e, "RequestSpotFleet", p, param(p, CFG "ClientToken"), r);
}

/* The Spot Fleet `id`, or NULL with r filled. */
static json_t *spot_fleet_of(emu *e, const char *id, const char *rid, emu_reply *r)
{
	return emu_group_named(e, id, "spot-fleet", "SpotFleetRequestId", "spot fleet request ID",
			       "InvalidSpotFleetRequestId.NotFound", rid, r);
}

static const char *spot_fleet_state(emu *e, json_t *g)
{
	return emu_group_state(e, g, "cancelled_terminating", "cancelled");
}

/* <launchTemplateConfigs>: each template as the request named it, with its
 * overrides (SpotFleetRequestConfigData.LaunchTemplateConfigs). */
static void lt_configs_xml(emu_buf *b, json_t *configs)
{
	eb_add(b, "<launchTemplateConfigs>");
	size_t i, k;
	json_t *c, *o;
	json_array_foreach(configs, i, c) {
		eb_add(b, "<item><launchTemplateSpecification>");
		if (param(c, "id"))
			eb_elem(b, "launchTemplateId", param(c, "id"));
		if (param(c, "name"))
			eb_elem(b, "launchTemplateName", param(c, "name"));
		eb_elem(b, "version", param(c, "version") ? param(c, "version") : "$Default");
		eb_add(b, "</launchTemplateSpecification>");
		if (json_array_size(json_object_get(c, "overrides")))
			eb_add(b, "<overrides>");
		json_array_foreach(json_object_get(c, "overrides"), k, o) {
			eb_add(b, "<item>");
			eb_elem(b, "instanceType", param(o, "type"));
			if (param(o, "subnet"))
				eb_elem(b, "subnetId", param(o, "subnet"));
			if (param(o, "weight"))
				eb_printf(b, "<weightedCapacity>%.1f</weightedCapacity>", atof(param(o, "weight")));
			eb_add(b, "</item>");
		}
		if (json_array_size(json_object_get(c, "overrides")))
			eb_add(b, "</overrides>");
		eb_add(b, "</item>");
	}
	eb_add(b, "</launchTemplateConfigs>");
}

static void spot_fleet_xml(emu *e, emu_buf *b, json_t *g)
{
	long od, spot;
	emu_group_fulfilled(e, g, &od, &spot);
	eb_add(b, "<item>");
	eb_elem(b, "activityStatus", emu_group_activity(e, g));
	eb_elem(b, "createTime", param(g, "created"));
	eb_add(b, "<spotFleetRequestConfig>");
	eb_elem(b, "allocationStrategy", param(g, "strategy"));
	eb_elem(b, "excessCapacityTerminationPolicy", param(g, "excess"));
	eb_printf(b, "<fulfilledCapacity>%ld.0</fulfilledCapacity><onDemandFulfilledCapacity>%ld.0</onDemandFulfilledCapacity>",
		  od + spot, od);
	eb_elem(b, "iamFleetRole", param(g, "role"));
	if (param(g, "token"))
		eb_elem(b, "clientToken", param(g, "token"));
	json_t *configs = json_object_get(g, "lt_configs");
	if (!json_array_size(configs)) {
		eb_add(b, "<launchSpecifications>");
		size_t i;
		json_t *s;
		json_array_foreach(json_object_get(g, "specs"), i, s) {
			eb_add(b, "<item>");
			eb_elem(b, "imageId", param(s, "image"));
			eb_elem(b, "instanceType", param(s, "type"));
			if (param(s, "subnet"))
				eb_elem(b, "subnetId", param(s, "subnet"));
			if (param(s, "key"))
				eb_elem(b, "keyName", param(s, "key"));
			eb_printf(b, "<weightedCapacity>%lld.0</weightedCapacity></item>",
				  (long long)json_integer_value(json_object_get(s, "weight")));
		}
		eb_add(b, "</launchSpecifications>");
	} else {
		lt_configs_xml(b, configs);
	}
	eb_printf(b, "<targetCapacity>%lld</targetCapacity><onDemandTargetCapacity>%lld</onDemandTargetCapacity>",
		  (long long)json_integer_value(json_object_get(g, "target")),
		  (long long)json_integer_value(json_object_get(g, "on_demand")));
	eb_elem(b, "type", param(g, "type"));
	eb_add(b, "</spotFleetRequestConfig>");
	eb_elem(b, "spotFleetRequestId", param(g, "id"));
	eb_elem(b, "spotFleetRequestState", spot_fleet_state(e, g));
	eb_add(b, "<tagSet>");
	const char *k;
	json_t *v;
	json_object_foreach(json_object_get(g, "fleet_tags"), k, v) {
		eb_add(b, "<item>");
		eb_elem(b, "key", k);
		eb_elem(b, "value", json_string_value(v));
		eb_add(b, "</item>");
	}
	eb_add(b, "</tagSet></item>");
}

void emu_describe_spot_fleet_requests(emu *e, json_t *p, const char *rid, emu_reply *r)
{
	long max = emu_max_results(p, rid, r);
	if (max == 0)
		return;
	json_t *pool = json_array();
	const char *id;
	json_t *g;
	if (param(p, "SpotFleetRequestId.1")) {
		for (int k = 1; (id = paramf(p, "SpotFleetRequestId.%d", k)); k++) {
			if (!(g = spot_fleet_of(e, id, rid, r))) {
				json_decref(pool);
				return;
			}
			json_array_append(pool, g);
		}
	} else {
		json_object_foreach(e->groups, id, g) if (strcmp(param(g, "kind"), "spot-fleet") == 0) json_array_append(pool, g);
	}
	long start = emu_describe_start(e, "DescribeSpotFleetRequests", p, rid, r), next = -1;
	if (start < 0) {
		json_decref(pool);
		return;
	}
	emu_head(&r->body, "DescribeSpotFleetRequests", rid);
	eb_add(&r->body, "<spotFleetRequestConfigSet>");
	size_t i;
	json_array_foreach(pool, i, g) {
		if ((long)i < start)
			continue;
		if (max > 0 && (long)i - start == max) {
			next = (long)i;
			break;
		}
		spot_fleet_xml(e, &r->body, g);
	}
	eb_add(&r->body, "</spotFleetRequestConfigSet>");
	emu_page_next(e, "DescribeSpotFleetRequests", p, next, &r->body);
	eb_add(&r->body, "</DescribeSpotFleetRequestsResponse>");
	json_decref(pool);
	r->status = 200;
}

void emu_describe_spot_fleet_instances(emu *e, json_t *p, const char *rid, emu_reply *r)
{
	json_t *g = spot_fleet_of(e, param(p, "SpotFleetRequestId"), rid, r);
	if (g)
		emu_active_instances(e, g, "DescribeSpotFleetInstances", "spotFleetRequestId", p, rid, r);
}

void emu_cancel_spot_fleet_requests(emu *e, json_t *p, const char *rid, emu_reply *r)
{
	static const emu_end_words words = {
		"CancelSpotFleetRequests", "spot-fleet", "spot fleet request ID", "SpotFleetRequestId",
		"spotFleetRequestId", "successfulFleetRequestSet", "unsuccessfulFleetRequestSet",
		"currentSpotFleetRequestState", "previousSpotFleetRequestState", "fleetRequestIdDoesNotExist",
		"fleetRequestNotInCancellableState", "cancelled_terminating", "cancelled_running", spot_fleet_state,
	};
	emu_end_groups(e, p, &words, rid, r);
}

void emu_modify_spot_fleet_request(emu *e, json_t *p, const char *rid, emu_reply *r)
{
	json_t *g = spot_fleet_of(e, param(p, "SpotFleetRequestId"), rid, r);
	if (!g)
		return;
	const char *target = param(p, "TargetCapacity"), *od = param(p, "OnDemandTargetCapacity");
	const char *policy = param(p, "ExcessCapacityTerminationPolicy");
	if (strcmp(param(g, "type"), "maintain") != 0 || strcmp(param(g, "state"), "active") != 0)
		return emu_error(r, 400, "UnsupportedOperation",
				 "Only an active Spot Fleet request of type maintain can be modified", rid);
	long t = target ? atol(target) : (long)json_integer_value(json_object_get(g, "target"));
	long o = od ? atol(od) : (long)json_integer_value(json_object_get(g, "on_demand"));
	if (t < 0 || o < 0 || o > t)
		return config_error(r, "TargetCapacity must be >= 0 and OnDemandTargetCapacity from 0 to it", rid);
	if (policy && strcmp(policy, "default") != 0 && strcmp(policy, "noTermination") != 0)
		return config_error(r, "ExcessCapacityTerminationPolicy must be default or noTermination", rid);
	if (is_true(p, "DryRun"))
		return emu_dry_run_ok(r, rid);
	if (policy)
		json_object_set_new(g, "excess", json_string(policy));
	emu_group_resize(e, g, t, o, strcmp(param(g, "excess"), "default") == 0);
	emu_head(&r->body, "ModifySpotFleetRequest", rid);
	eb_add(&r->body, "<return>true</return></ModifySpotFleetRequestResponse>");
	r->status = 200;
}
