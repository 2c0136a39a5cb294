/*
 * autoscaling.c - Auto Scaling groups: the Auto Scaling Query API (version
 * 2011-01-01, signed for service "autoscaling", at the same endpoint):
 * CreateAutoScalingGroup, SetDesiredCapacity,
 * TerminateInstanceInAutoScalingGroup, DescribeAutoScalingGroups,
 * DescribeAutoScalingInstances, DeleteAutoScalingGroup.
 *
 * A group is a groups.c group of kind "asg" (type maintain, spread over its
 * subnets) at DesiredCapacity: what it loses it replaces, and it holds the
 * desired capacity both ways. It launches from a launch template
 * (LaunchTemplate, or MixedInstancesPolicy.LaunchTemplate with Overrides and
 * an InstancesDistribution: OnDemandBaseCapacity, then
 * OnDemandPercentageAboveBaseCapacity on-demand, the rest spot), in
 * VPCZoneIdentifier's subnets, instances tagged aws:autoscaling:groupName
 * and the group's tags with PropagateAtLaunch. Answers in Auto Scaling's
 * XML (<XResult>, lists of <member>, <ResponseMetadata>) and errors in its
 * envelope (<ErrorResponse><Error><Type>Sender</Type>…), codes and
 * messages as Auto Scaling words them. Not modelled: launch configurations,
 * lifecycle hooks, scaling policies, cooldowns, warm pools, Filters.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "emu.h"

#define ASG_NS "http://autoscaling.amazonaws.com/doc/2011-01-01/"
#define MIXED "MixedInstancesPolicy."

void emu_asg_error(emu_reply *r, int status, const char *code, const char *message, const char *rid)
{
	r->status = status;
	snprintf(r->code, sizeof r->code, "%s", code);
	eb_free(&r->body);
	eb_add(&r->body, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ErrorResponse xmlns=\"" ASG_NS "\"><Error>");
	eb_elem(&r->body, "Type", status >= 500 ? "Receiver" : "Sender");
	eb_elem(&r->body, "Code", code);
	eb_elem(&r->body, "Message", message);
	eb_add(&r->body, "</Error>");
	eb_elem(&r->body, "RequestId", rid);
	eb_add(&r->body, "</ErrorResponse>");
}

static void invalid(emu_reply *r, const char *rid, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void invalid(emu_reply *r, const char *rid, const char *fmt, ...)
{
	char msg[400];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	emu_asg_error(r, 400, "ValidationError", msg, rid);
}

/* <ActionResponse><ActionResult> (without a result: the response only). */
static void asg_head(emu_buf *b, const char *action, bool result)
{
	eb_printf(b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<%sResponse xmlns=\"" ASG_NS "\">", action);
	if (result)
		eb_printf(b, "<%sResult>", action);
}

static void asg_tail(emu_reply *r, const char *action, bool result, const char *rid)
{
	if (result)
		eb_printf(&r->body, "</%sResult>", action);
	eb_add(&r->body, "<ResponseMetadata>");
	eb_elem(&r->body, "RequestId", rid);
	eb_printf(&r->body, "</ResponseMetadata></%sResponse>", action);
	r->status = 200;
}

static long geti(json_t *o, const char *key) { return (long)json_integer_value(json_object_get(o, key)); }

/* An integer parameter, or `dflt` when absent; -1 when not a number. */
static long int_arg(json_t *p, const char *key, long dflt)
{
	const char *v = param(p, key);
	char *end;
	if (!v)
		return dflt;
	long n = strtol(v, &end, 10);
	return *v && !*end ? n : -1;
}

static json_t *group_of(emu *e, const char *name, const char *rid, emu_reply *r)
{
	json_t *g = emu_group_get(e, name, "asg");
	if (g)
		return g;
	invalid(r, rid, "AutoScalingGroup name not found - AutoScalingGroup %.200s not found", name ? name : "null");
	return NULL;
}

/* On-demand units of `desired`: the base, then the percentage above it. */
static long on_demand_of(json_t *g, long desired)
{
	long base = geti(g, "od_base"), pct = geti(g, "od_pct");
	if (desired <= base)
		return desired;
	return base + (long)ceil((double)(desired - base) * (double)pct / 100.0);
}

static void set_desired(emu *e, json_t *g, long desired)
{
	emu_group_resize(e, g, desired, on_demand_of(g, desired), true);
}

/* The group's tags: Tags.member.N; false with r filled for an aws: key. */
static bool read_group_tags(json_t *p, json_t *g, const char *rid, emu_reply *r)
{
	json_t *all = json_array(), *propagate = json_object_get(g, "tags");
	for (int k = 1; paramf(p, "Tags.member.%d.Key", k); k++) {
		const char *key = paramf(p, "Tags.member.%d.Key", k), *v = paramf(p, "Tags.member.%d.Value", k);
		if (emu_tag_key_reserved(key)) {
			invalid(r, rid, "Tag keys starting with 'aws:' are reserved for internal use: %.140s", key);
			json_decref(all);
			return false;
		}
		const char *pv = paramf(p, "Tags.member.%d.PropagateAtLaunch", k);
		bool prop = pv && strcmp(pv, "true") == 0;
		json_array_append_new(all, json_pack("{s:s, s:s, s:b}", "key", key, "value", v ? v : "", "propagate", prop));
		if (prop)
			json_object_set_new(propagate, key, json_string(v ? v : ""));
	}
	json_object_set_new(g, "group_tags", all);
	return true;
}

/* The launch template (LaunchTemplate or MixedInstancesPolicy's) and the
 * specs: each instance type (the Overrides, or the template's) in each
 * subnet. False with r filled. */
static bool read_launch(emu *e, json_t *p, json_t *g, const char *rid, emu_reply *r)
{
	bool mixed = param(p, MIXED "LaunchTemplate.LaunchTemplateSpecification.LaunchTemplateId") ||
		     param(p, MIXED "LaunchTemplate.LaunchTemplateSpecification.LaunchTemplateName");
	const char *pre = mixed ? MIXED "LaunchTemplate.LaunchTemplateSpecification." : "LaunchTemplate.";
	const char *id = paramf(p, "%sLaunchTemplateId", pre), *name = paramf(p, "%sLaunchTemplateName", pre);
	const char *version = paramf(p, "%sVersion", pre);
	json_t *t = emu_template_find(e, id, name), *ltd = json_object_get(t, "data");
	if (param(p, "LaunchConfigurationName") || param(p, "InstanceId"))
		invalid(r, rid, "Launch configurations and InstanceId are not modelled by this emulator: "
				"give LaunchTemplate or MixedInstancesPolicy");
	else if (!id && !name)
		invalid(r, rid, "Valid requests must contain either LaunchTemplate, LaunchConfigurationName, "
				"InstanceId or MixedInstancesPolicy parameter.");
	else if (!t)
		invalid(r, rid, "You must use a valid fully-formed launch template. The specified launch template, "
				"with template %s %.128s, does not exist.", id ? "ID" : "name", id ? id : name);
	else if (!emu_template_version_ok(version))
		invalid(r, rid, "You must use a valid fully-formed launch template. Could not find the specified "
				"version %.64s for the launch template with ID %s.", version, param(t, "id"));
	else if (!param(ltd, "ImageId"))
		invalid(r, rid, "You must use a valid fully-formed launch template. The launch template %s has no "
				"ImageId", param(t, "id"));
	if (r->status)
		return false;
	json_object_set_new(g, "lt", json_pack("{s:s, s:s, s:s}", "id", param(t, "id"), "name", param(t, "name"),
					       "version", version ? version : "$Default"));
	json_object_set_new(g, "mixed", json_boolean(mixed));
	json_t *types = json_array();
	for (int k = 1; paramf(p, MIXED "LaunchTemplate.Overrides.member.%d.InstanceType", k); k++) {
		const char *w = paramf(p, MIXED "LaunchTemplate.Overrides.member.%d.WeightedCapacity", k);
		json_array_append_new(types, json_pack("{s:s, s:I}", "type",
						       paramf(p, MIXED "LaunchTemplate.Overrides.member.%d.InstanceType", k),
						       "weight", (json_int_t)(w && atol(w) > 0 ? atol(w) : 1)));
	}
	if (json_array_size(types) == 0 && param(ltd, "InstanceType"))
		json_array_append_new(types, json_pack("{s:s, s:i}", "type", param(ltd, "InstanceType"), "weight", 1));
	json_object_set_new(g, "overrides", types);
	if (json_array_size(types) == 0) {
		invalid(r, rid, "The launch template %s has no InstanceType and there are no Overrides", param(t, "id"));
		return false;
	}
	json_t *subnets = json_array();
	const char *zones = param(p, "VPCZoneIdentifier");
	char *list = strdup(zones ? zones : ""), *save = NULL;
	for (char *s = strtok_r(list, ", ", &save); s; s = strtok_r(NULL, ", ", &save))
		json_array_append_new(subnets, json_string(s));
	free(list);
	if (json_array_size(subnets) == 0 && param(ltd, "SubnetId"))
		json_array_append_new(subnets, json_string(param(ltd, "SubnetId")));
	if (json_array_size(subnets) == 0)
		json_array_append_new(subnets, json_null()); /* the default subnet of the first AZ */
	json_t *specs = json_object_get(g, "specs");
	size_t i, j;
	json_t *ty, *sub;
	json_array_foreach(subnets, j, sub) json_array_foreach(types, i, ty)
		json_array_append_new(specs, json_pack("{s:s, s:s, s:s?, s:s?, s:I, s:O, s:s}", "image",
						       param(ltd, "ImageId"), "type", param(ty, "type"), "subnet",
						       json_string_value(sub), "key", param(ltd, "KeyName"), "weight",
						       (json_int_t)geti(ty, "weight"), "tags", json_object_get(ltd, "tags"),
						       "lt_id", param(t, "id")));
	json_object_set_new(g, "subnets", subnets);
	return true;
}

void emu_create_auto_scaling_group(emu *e, json_t *p, const char *rid, emu_reply *r)
{
	const char *name = param(p, "AutoScalingGroupName");
	long min = int_arg(p, "MinSize", -1), max = int_arg(p, "MaxSize", -1);
	long desired = int_arg(p, "DesiredCapacity", min);
	if (!name || !*name || strlen(name) > 255)
		return invalid(r, rid, "AutoScalingGroupName must be 1 to 255 characters");
	if (min < 0 || max < 0 || min > max)
		return invalid(r, rid, "MinSize and MaxSize must be integers >= 0 with MinSize <= MaxSize");
	if (desired < min || desired > max)
		return invalid(r, rid, "Desired capacity:%ld must be between the specified min size:%ld and max size:%ld",
			       desired, min, max);
	if (json_object_get(e->groups, name))
		return emu_asg_error(r, 400, "AlreadyExists", "AutoScalingGroup by this name already exists", rid);
	/* Built aside, stored only when whole. */
	json_t *g = json_pack("{s:s, s:s, s:s, s:s, s:i, s:i, s:[], s:b, s:{s:s}, s:[], s:i}", "kind", "asg", "id", name,
			      "type", "maintain", "state", "active", "target", 0, "on_demand", 0, "specs", "spread", 1,
			      "tags", "aws:autoscaling:groupName", name, "instances", "next", 0);
	long base = int_arg(p, MIXED "InstancesDistribution.OnDemandBaseCapacity", 0);
	long pct = int_arg(p, MIXED "InstancesDistribution.OnDemandPercentageAboveBaseCapacity", 100);
	if (base < 0 || pct < 0 || pct > 100) {
		json_decref(g);
		return invalid(r, rid, "OnDemandBaseCapacity must be >= 0, OnDemandPercentageAboveBaseCapacity 0 to 100");
	}
	if (!read_launch(e, p, g, rid, r) || !read_group_tags(p, g, rid, r)) {
		json_decref(g);
		return;
	}
	char when[32], uuid[64], arn[512];
	emu_time_now(when, sizeof when);
	emu_uuid(e, "", uuid, sizeof uuid);
	snprintf(arn, sizeof arn, "arn:aws:autoscaling:%s:123456789012:autoScalingGroup:%s:autoScalingGroupName/%s",
		 e->region, uuid, name);
	json_object_update_new(g, json_pack("{s:s, s:s, s:I, s:I, s:I, s:I}", "created", when, "arn", arn, "min",
					    (json_int_t)min, "max", (json_int_t)max, "od_base", (json_int_t)base,
					    "od_pct", (json_int_t)pct));
	json_object_set_new(e->groups, name, g);
	set_desired(e, g, desired);
	asg_head(&r->body, "CreateAutoScalingGroup", false);
	asg_tail(r, "CreateAutoScalingGroup", false, rid);
}

void emu_set_desired_capacity(emu *e, json_t *p, const char *rid, emu_reply *r)
{
	json_t *g = group_of(e, param(p, "AutoScalingGroupName"), rid, r);
	if (!g)
		return;
	long desired = int_arg(p, "DesiredCapacity", -1);
	if (desired > geti(g, "max"))
		return invalid(r, rid, "New SetDesiredCapacity value %ld is above max value %ld for the AutoScalingGroup.",
			       desired, geti(g, "max"));
	if (desired < geti(g, "min"))
		return invalid(r, rid, "New SetDesiredCapacity value %ld is below min value %ld for the AutoScalingGroup.",
			       desired, geti(g, "min"));
	set_desired(e, g, desired);
	asg_head(&r->body, "SetDesiredCapacity", false);
	asg_tail(r, "SetDesiredCapacity", false, rid);
}

void emu_terminate_instance_in_asg(emu *e, json_t *p, const char *rid, emu_reply *r)
{
	const char *id = param(p, "InstanceId"), *dec = param(p, "ShouldDecrementDesiredCapacity");
	json_t *in = id ? emu_find(e, id) : NULL;
	json_t *g = in && emu_live(in) ? json_object_get(e->groups, param(in, "group") ? param(in, "group") : "") : NULL;
	if (!dec)
		return invalid(r, rid, "ShouldDecrementDesiredCapacity is required");
	if (!g || strcmp(param(g, "kind"), "asg") != 0)
		return invalid(r, rid, "Instance Id not found - No managed instance found for instance ID: %.40s",
			       id ? id : "null");
	bool decrement = strcmp(dec, "true") == 0;
	/* the desired capacity is in units: an instance takes its weight away */
	long desired = geti(g, "target"), after = desired - (geti(in, "weight") > 0 ? geti(in, "weight") : 1);
	if (after < 0)
		after = 0;
	if (decrement && desired <= geti(g, "min"))
		return invalid(r, rid, "Currently, desiredCapacity (%ld) is not greater than minSize (%ld): %s cannot be "
				       "terminated with ShouldDecrementDesiredCapacity", desired, geti(g, "min"), id);
	emu_terminate(e, in, EMU_USER_SHUTDOWN);
	if (decrement) {
		json_object_set_new(g, "target", json_integer(after));
		json_object_set_new(g, "on_demand", json_integer(on_demand_of(g, after)));
	}
	char when[32], activity[64], cause[400];
	emu_time_now(when, sizeof when);
	emu_uuid(e, "", activity, sizeof activity);
	if (decrement)
		snprintf(cause, sizeof cause, "At %s instance %s was taken out of service in response to a user "
					      "request, shrinking the capacity from %ld to %ld.", when, id, desired, after);
	else
		snprintf(cause, sizeof cause, "At %s instance %s was taken out of service in response to a user request.",
			 when, id);
	asg_head(&r->body, "TerminateInstanceInAutoScalingGroup", true);
	eb_add(&r->body, "<Activity>");
	eb_elem(&r->body, "ActivityId", activity);
	eb_elem(&r->body, "AutoScalingGroupName", param(g, "id"));
	eb_printf(&r->body, "<Description>Terminating EC2 instance: %s</Description>", id);
	eb_elem(&r->body, "Cause", cause);
	eb_elem(&r->body, "StartTime", when);
	eb_add(&r->body, "<StatusCode>InProgress</StatusCode><Progress>0</Progress><Details>{}</Details></Activity>");
	asg_tail(r, "TerminateInstanceInAutoScalingGroup", true, rid);
}

/* What a group's instance is doing, in Auto Scaling's words; NULL when it
 * has left the group (terminated). */
static const char *lifecycle_state(emu *e, json_t *in)
{
	int code;
	emu_state_of(e, in, &code);
	return code == 0 ? "Pending" : code == 16 ? "InService" : code == 32 ? "Terminating" : NULL;
}

static void launch_template_xml(emu_buf *b, json_t *lt, const char *elem)
{
	eb_printf(b, "<%s>", elem);
	eb_elem(b, "LaunchTemplateId", param(lt, "id"));
	eb_elem(b, "LaunchTemplateName", param(lt, "name"));
	eb_elem(b, "Version", param(lt, "version"));
	eb_printf(b, "</%s>", elem);
}

static void group_xml(emu *e, emu_buf *b, json_t *g)
{
	json_t *lt = json_object_get(g, "lt");
	eb_add(b, "<member>");
	eb_elem(b, "AutoScalingGroupName", param(g, "id"));
	eb_elem(b, "AutoScalingGroupARN", param(g, "arn"));
	if (json_is_true(json_object_get(g, "mixed"))) {
		eb_add(b, "<MixedInstancesPolicy><LaunchTemplate>");
		launch_template_xml(b, lt, "LaunchTemplateSpecification");
		eb_add(b, "<Overrides>");
		size_t i;
		json_t *o;
		json_array_foreach(json_object_get(g, "overrides"), i, o) {
			eb_add(b, "<member>");
			eb_elem(b, "InstanceType", param(o, "type"));
			eb_printf(b, "<WeightedCapacity>%ld</WeightedCapacity></member>", geti(o, "weight"));
		}
		eb_printf(b, "</Overrides></LaunchTemplate><InstancesDistribution><OnDemandBaseCapacity>%ld"
			     "</OnDemandBaseCapacity><OnDemandPercentageAboveBaseCapacity>%ld"
			     "</OnDemandPercentageAboveBaseCapacity></InstancesDistribution></MixedInstancesPolicy>",
			  geti(g, "od_base"), geti(g, "od_pct"));
	} else {
		launch_template_xml(b, lt, "LaunchTemplate");
	}
	eb_printf(b, "<MinSize>%ld</MinSize><MaxSize>%ld</MaxSize><DesiredCapacity>%ld</DesiredCapacity>"
		     "<DefaultCooldown>300</DefaultCooldown><AvailabilityZones>",
		  geti(g, "min"), geti(g, "max"), geti(g, "target"));
	json_t *seen = json_object();
	size_t i;
	json_t *s, *id;
	json_array_foreach(json_object_get(g, "specs"), i, s) {
		char az[64];
		emu_az_of(e, param(s, "subnet"), az, sizeof az);
		if (!json_object_get(seen, az)) {
			json_object_set_new(seen, az, json_true());
			eb_elem(b, "member", az);
		}
	}
	json_decref(seen);
	eb_add(b, "</AvailabilityZones><LoadBalancerNames/><TargetGroupARNs/><HealthCheckType>EC2</HealthCheckType>"
		  "<HealthCheckGracePeriod>0</HealthCheckGracePeriod><Instances>");
	json_array_foreach(json_object_get(g, "instances"), i, id) {
		json_t *in = emu_find(e, json_string_value(id));
		const char *state = in ? lifecycle_state(e, in) : NULL;
		if (!state)
			continue;
		eb_add(b, "<member>");
		eb_elem(b, "InstanceId", param(in, "id"));
		eb_elem(b, "InstanceType", param(in, "type"));
		eb_elem(b, "AvailabilityZone", param(in, "az"));
		eb_elem(b, "LifecycleState", state);
		eb_add(b, "<HealthStatus>Healthy</HealthStatus>");
		launch_template_xml(b, lt, "LaunchTemplate");
		eb_printf(b, "<ProtectedFromScaleIn>false</ProtectedFromScaleIn><WeightedCapacity>%ld</WeightedCapacity>"
			     "</member>", geti(in, "weight"));
	}
	eb_add(b, "</Instances>");
	eb_elem(b, "CreatedTime", param(g, "created"));
	eb_add(b, "<SuspendedProcesses/>");
	json_t *subnets = json_object_get(g, "subnets");
	emu_buf zones = {0};
	eb_add(&zones, "");
	json_array_foreach(subnets, i, s) if (json_is_string(s)) eb_printf(&zones, "%s%s", zones.len ? "," : "",
									     json_string_value(s));
	eb_elem(b, "VPCZoneIdentifier", zones.s);
	eb_free(&zones);
	eb_add(b, "<EnabledMetrics/><Tags>");
	json_array_foreach(json_object_get(g, "group_tags"), i, s) {
		eb_add(b, "<member>");
		eb_elem(b, "ResourceId", param(g, "id"));
		eb_add(b, "<ResourceType>auto-scaling-group</ResourceType>");
		eb_elem(b, "Key", param(s, "key"));
		eb_elem(b, "Value", param(s, "value"));
		eb_printf(b, "<PropagateAtLaunch>%s</PropagateAtLaunch></member>",
			  json_is_true(json_object_get(s, "propagate")) ? "true" : "false");
	}
	eb_add(b, "</Tags><TerminationPolicies><member>Default</member></TerminationPolicies>"
		  "<NewInstancesProtectedFromScaleIn>false</NewInstancesProtectedFromScaleIn>");
	eb_printf(b, "<ServiceLinkedRoleARN>arn:aws:iam::123456789012:role/aws-service-role/autoscaling.amazonaws.com/"
		     "AWSServiceRoleForAutoScaling</ServiceLinkedRoleARN></member>");
}

/* NextToken as Auto Scaling refuses one (InvalidNextToken); -1 when refused. */
static long asg_page_start(emu *e, const char *action, json_t *p, const char *rid, emu_reply *r)
{
	long start = emu_describe_start(e, action, p, rid, r);
	if (start < 0) {
		char msg[300];
		snprintf(msg, sizeof msg, "The token '%.200s' was invalid", param(p, "NextToken"));
		emu_asg_error(r, 400, "InvalidNextToken", msg, rid);
	}
	return start;
}

/* MaxRecords from 1 to `limit` (default `dflt`); 0 with r filled. */
static long max_records(json_t *p, long dflt, long limit, const char *rid, emu_reply *r)
{
	long max = int_arg(p, "MaxRecords", dflt);
	if (max < 1 || max > limit) {
		invalid(r, rid, "MaxRecords must be from 1 to %ld", limit);
		return 0;
	}
	return max;
}

void emu_describe_auto_scaling_groups(emu *e, json_t *p, const char *rid, emu_reply *r)
{
	if (paramf(p, "Filters.member.1.Name"))
		return invalid(r, rid, "Filters are not modelled by this emulator: name the groups");
	long max = max_records(p, 50, 100, rid, r), start;
	if (max == 0 || (start = asg_page_start(e, "DescribeAutoScalingGroups", p, rid, r)) < 0)
		return;
	json_t *pool = json_array();
	const char *name;
	json_t *g;
	if (param(p, "AutoScalingGroupNames.member.1")) {
		/* As Auto Scaling: a name without a group is left out, not an error. */
		for (int k = 1; (name = paramf(p, "AutoScalingGroupNames.member.%d", k)); k++)
			if ((g = json_object_get(e->groups, name)) && strcmp(param(g, "kind"), "asg") == 0)
				json_array_append(pool, g);
	} else {
		json_object_foreach(e->groups, name, g) if (strcmp(param(g, "kind"), "asg") == 0) json_array_append(pool, g);
	}
	asg_head(&r->body, "DescribeAutoScalingGroups", true);
	eb_add(&r->body, "<AutoScalingGroups>");
	long next = -1;
	size_t i;
	json_array_foreach(pool, i, g) {
		if ((long)i < start)
			continue;
		if ((long)i - start == max) {
			next = (long)i;
			break;
		}
		group_xml(e, &r->body, g);
	}
	eb_add(&r->body, "</AutoScalingGroups>");
	emu_page_next(e, "DescribeAutoScalingGroups", p, next, &r->body);
	json_decref(pool);
	asg_tail(r, "DescribeAutoScalingGroups", true, rid);
}

void emu_describe_auto_scaling_instances(emu *e, json_t *p, const char *rid, emu_reply *r)
{
	long max = max_records(p, 50, 50, rid, r), start;
	if (max == 0 || (start = asg_page_start(e, "DescribeAutoScalingInstances", p, rid, r)) < 0)
		return;
	json_t *pool = json_array();
	json_t *in;
	size_t i;
	if (param(p, "InstanceIds.member.1")) {
		const char *id;
		for (int k = 1; (id = paramf(p, "InstanceIds.member.%d", k)); k++)
			if ((in = emu_find(e, id)))
				json_array_append(pool, in);
	} else {
		json_array_extend(pool, e->instances);
	}
	asg_head(&r->body, "DescribeAutoScalingInstances", true);
	eb_add(&r->body, "<AutoScalingInstances>");
	long seen = 0, shown = 0, next = -1;
	json_array_foreach(pool, i, in) {
		json_t *g = param(in, "group") ? json_object_get(e->groups, param(in, "group")) : NULL;
		const char *state = lifecycle_state(e, in);
		if (!g || strcmp(param(g, "kind"), "asg") != 0 || !state || seen++ < start)
			continue;
		if (shown == max) {
			next = seen - 1;
			break;
		}
		eb_add(&r->body, "<member>");
		eb_elem(&r->body, "InstanceId", param(in, "id"));
		eb_elem(&r->body, "InstanceType", param(in, "type"));
		eb_elem(&r->body, "AutoScalingGroupName", param(g, "id"));
		eb_elem(&r->body, "AvailabilityZone", param(in, "az"));
		eb_elem(&r->body, "LifecycleState", state);
		eb_add(&r->body, "<HealthStatus>HEALTHY</HealthStatus>");
		launch_template_xml(&r->body, json_object_get(g, "lt"), "LaunchTemplate");
		eb_printf(&r->body, "<ProtectedFromScaleIn>false</ProtectedFromScaleIn><WeightedCapacity>%ld"
				    "</WeightedCapacity></member>", geti(in, "weight"));
		shown++;
	}
	eb_add(&r->body, "</AutoScalingInstances>");
	emu_page_next(e, "DescribeAutoScalingInstances", p, next, &r->body);
	json_decref(pool);
	asg_tail(r, "DescribeAutoScalingInstances", true, rid);
}

void emu_delete_auto_scaling_group(emu *e, json_t *p, const char *rid, emu_reply *r)
{
	json_t *g = group_of(e, param(p, "AutoScalingGroupName"), rid, r);
	if (!g)
		return;
	long od, spot;
	emu_group_fulfilled(e, g, &od, &spot);
	bool force = is_true(p, "ForceDelete");
	if (od + spot > 0 && !force)
		return emu_asg_error(r, 400, "ResourceInUse",
				     "You cannot delete an AutoScalingGroup while there are instances or pending Spot "
				     "instance request(s) still in the group.", rid);
	emu_group_terminate_all(e, g);
	json_object_del(e->groups, param(p, "AutoScalingGroupName"));
	asg_head(&r->body, "DeleteAutoScalingGroup", false);
	asg_tail(r, "DeleteAutoScalingGroup", false, rid);
}
