/*
 * groups.c - launching through a capacity group and giving its instances
 * back: Spot Fleet, EC2 Fleet of type request or maintain, and Auto Scaling
 * groups.
 *
 * Create: one call makes the fleet / group from the launch template
 * launch.c made or named (RequestSpotFleet with LaunchTemplateConfigs,
 * CreateFleet Type=request|maintain, CreateAutoScalingGroup), tagged with
 * the request; its instances are then listed (DescribeSpotFleetInstances,
 * DescribeFleetInstances, DescribeAutoScalingGroups), watched while the
 * group is still filling (group_fill_wait_ms, within the deadline). A group
 * that filled only partly is held where it is: a maintain fleet's target
 * is lowered to what it has, a request fleet is ended without terminating,
 * an Auto Scaling group's desired capacity is set to what it has, so no
 * instance appears later that no request records.
 *
 * Idempotency: the create call carries a ClientToken derived from the
 * launch (one token, one intended launch); an Auto Scaling group, which
 * takes no token, is named after it. An answer that was lost is looked up
 * (the fleet with that clientToken, the group of that name) before the
 * call is said to have failed.
 *
 * Launch templates: one made from the template's data belongs to the one
 * group it was made for (its name ends with the group's mark,
 * aws_group_lt_mark) and is deleted when that group ends or its create
 * surely failed; a launchTemplateId the template names is the user's and
 * never deleted.
 *
 * Return: an instance's group is known from this process's launches or,
 * after a restart, from the tag EC2 / Auto Scaling put on it
 * (aws:ec2spot:fleet-request-id, aws:ec2:fleet-id,
 * aws:autoscaling:groupName), its weights and launch template then read
 * from the group's Describe answer (the template is the group's own when
 * its name carries the mark of the group's token). A group left with nothing is ended with its
 * instances (CancelSpotFleetRequests / DeleteFleets with
 * TerminateInstances, DeleteAutoScalingGroup with ForceDelete); else a
 * maintain fleet's target is lowered first (no-termination) and the
 * instances terminated, so nothing replaces them; an Auto Scaling group's
 * instances go one by one with ShouldDecrementDesiredCapacity.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "provisio/error.h"
#include "provisio/log.h"
#include "providers/aws/groups.h"

#define TAG_CLIENT_TOKEN "provisio:client-token"
#define ASG_VERSION "2011-01-01"
#define PAGE "1000"

typedef enum group_kind { GK_SPOT_FLEET = 0, GK_EC2_FLEET, GK_ASG, GK_COUNT } group_kind;

static const struct kind {
	const char *api;     /* the template's providerApi */
	const char *aws_tag; /* what EC2 / Auto Scaling tags the instances with */
} kinds[GK_COUNT] = {
	{"SpotFleet", "aws:ec2spot:fleet-request-id"},
	{"EC2Fleet", "aws:ec2:fleet-id"},
	{"ASG", "aws:autoscaling:groupName"},
};

static const char *str(const json_t *o, const char *key) { return json_string_value(json_object_get(o, key)); }

static bool eq(const char *a, const char *b) { return a && b && strcmp(a, b) == 0; }

/* ---- templates ------------------------------------------------------------- */

const char *aws_template_fleet_type(const json_t *tmpl)
{
	const char *api = str(tmpl, "providerApi"), *t = str(tmpl, "fleetType");
	if (!eq(api, "ASG") && !eq(api, "SpotFleet") && !eq(api, "EC2Fleet"))
		return t ? NULL : "instant"; /* RunInstances takes no fleet type */
	if (eq(api, "ASG"))
		return t && !eq(t, "maintain") ? NULL : "maintain";
	if (!t)
		return eq(api, "SpotFleet") ? "request" : "instant";
	if (eq(t, "request") || eq(t, "maintain") || (eq(t, "instant") && !eq(api, "SpotFleet")))
		return t;
	return NULL;
}

bool aws_template_uses_group(const json_t *tmpl)
{
	const char *api = str(tmpl, "providerApi"), *t = aws_template_fleet_type(tmpl);
	return eq(api, "SpotFleet") || eq(api, "ASG") || (eq(api, "EC2Fleet") && t && !eq(t, "instant"));
}

bool aws_groups_configured(const json_t *templates)
{
	size_t i;
	json_t *t;
	json_array_foreach(templates, i, t) if (aws_template_uses_group(t)) return true;
	return false;
}

static group_kind kind_of_api(const char *api)
{
	return eq(api, "SpotFleet") ? GK_SPOT_FLEET : eq(api, "ASG") ? GK_ASG : GK_EC2_FLEET;
}

void aws_group_token(const aws *a, const char *api, const char *fleet_type, const char *basis, char *out)
{
	char group[64];
	snprintf(group, sizeof group, "%s:%s:0", kinds[kind_of_api(api)].api, fleet_type);
	aws_client_token(out, basis, a->base.name, group);
}

void aws_group_lt_mark(const char *token, char out[AWS_LT_MARK_SIZE])
{
	uint64_t h = pv_fnv1a64(PV_FNV64_OFFSET, token, strlen(token));
	snprintf(out, AWS_LT_MARK_SIZE, "-%016llx", (unsigned long long)h);
}

/* Whether the launch template `name` was made for the group of `token`:
 * provisio's prefix and the group's mark at the end. A template the user
 * named (launchTemplateId), or one another group launches from, has not. */
static bool lt_made_for(const char *name, const char *token)
{
	char mark[AWS_LT_MARK_SIZE];
	if (!name || !token || !*token || strncmp(name, "provisio-", 9) != 0)
		return false;
	aws_group_lt_mark(token, mark);
	size_t n = strlen(name), m = strlen(mark);
	return n > m + 9 && strcmp(name + n - m, mark) == 0;
}

/* ---- calls ------------------------------------------------------------------ */

/* What the calls of one operation came to, and the failed one. */
typedef struct group_acc {
	unsigned calls, retries, throttled, found;
	bool unknown; /* a create's answer was lost and could not be looked up */
	aws_call fail;
	aws_action fail_act;
	bool failed;
} group_acc;

static void acc_count(group_acc *acc, const aws_call *c)
{
	acc->calls += c->attempts;
	acc->retries += c->attempts ? c->attempts - 1 : 0;
	acc->throttled += c->throttled;
}

/* Keeps a failed call as the operation's verdict (c is emptied). */
static void acc_fail(group_acc *acc, aws_action act, aws_call *c)
{
	if (acc->failed)
		aws_call_free(&acc->fail);
	acc->fail = *c;
	acc->fail_act = act;
	acc->failed = true;
	memset(c, 0, sizeof *c);
}

/* One call of `f` (freed here): c filled either way (an out-of-memory
 * form is a failed call that made no attempt); returns c->ok. */
static bool call(aws *a, const pv_operation *op, aws_action act, aws_form *f, group_acc *acc, aws_call *c)
{
	memset(c, 0, sizeof *c);
	if (f->oom) {
		aws_form_free(f);
		c->cls = PV_CLASS_INTERNAL;
		snprintf(c->reply.error, sizeof c->reply.error, "out of memory");
		return false;
	}
	bool ok = aws_do(a, act, f->buf, op->deadline_ns, c);
	aws_form_free(f);
	acc_count(acc, c);
	return ok;
}

static void form_asg(aws_form *f, const char *action) { aws_form_init_version(f, action, ASG_VERSION); }

static void add_int(aws_form *f, const char *key, int64_t v)
{
	char num[24];
	snprintf(num, sizeof num, "%lld", (long long)v);
	aws_form_add(f, key, num);
}

/* ---- create ------------------------------------------------------------------ */

static const char *spot_fleet_strategy(const char *s)
{
	/* Spot Fleet spells them as the ORB templates do (lowestPrice,
	 * diversified, capacityOptimized, priceCapacityOptimized). */
	return s ? s : "priceCapacityOptimized";
}

static const char *ec2_fleet_strategy(const char *s)
{
	if (!s || eq(s, "priceCapacityOptimized"))
		return "price-capacity-optimized";
	if (eq(s, "lowestPrice"))
		return "lowest-price";
	if (eq(s, "capacityOptimized"))
		return "capacity-optimized";
	return s;
}

/* On-demand units of the request: all, none, or percentOnDemand of them. */
static int64_t on_demand_units(const aws_group_launch *g)
{
	const char *pt = g->price_type ? g->price_type : "ondemand";
	if (eq(pt, "ondemand"))
		return g->count;
	if (eq(pt, "spot"))
		return 0;
	json_t *pct = json_object_get(g->tmpl, "percentOnDemand");
	return g->count * (json_is_integer(pct) ? json_integer_value(pct) : 0) / 100;
}

/* LaunchTemplateConfigs.1: the template and one override per (instance
 * type x subnet), with weights and the price cap. */
static void add_lt_config(aws_form *f, const char *lt, const aws_group_launch *g, const char *price_key)
{
	char num[24];
	aws_form_addf(f, g->lt_id, "%s.LaunchTemplateSpecification.LaunchTemplateId", lt);
	aws_form_addf(f, g->lt_version ? g->lt_version : "$Default", "%s.LaunchTemplateSpecification.Version", lt);
	size_t nsub = json_array_size(g->subnets), i;
	int k = 0;
	json_t *ty;
	json_array_foreach(g->types, i, ty) {
		for (size_t s = 0; s < (nsub ? nsub : 1); s++) {
			k++;
			aws_form_addf(f, str(ty, "type"), "%s.Overrides.%d.InstanceType", lt, k);
			snprintf(num, sizeof num, "%lld", (long long)json_integer_value(json_object_get(ty, "weight")));
			aws_form_addf(f, num, "%s.Overrides.%d.WeightedCapacity", lt, k);
			if (nsub)
				aws_form_addf(f, json_string_value(json_array_get(g->subnets, s)), "%s.Overrides.%d.SubnetId",
					      lt, k);
			if (g->max_price)
				aws_form_addf(f, g->max_price, "%s.Overrides.%d.%s", lt, k, price_key);
		}
	}
}

/* The group's own tags (its resource type): provisio's, and the token so a
 * lost answer can be matched. */
static void add_group_tags(aws_form *f, const char *prefix, const char *type, const aws_group_launch *g,
			   const char *token)
{
	const char *k;
	json_t *v;
	int n = 0;
	aws_form_addf(f, type, "%s.ResourceType", prefix);
	json_object_foreach((json_t *)g->tags, k, v) {
		n++;
		aws_form_addf(f, k, "%s.Tag.%d.Key", prefix, n);
		aws_form_addf(f, json_string_value(v), "%s.Tag.%d.Value", prefix, n);
	}
	aws_form_addf(f, TAG_CLIENT_TOKEN, "%s.Tag.%d.Key", prefix, n + 1);
	aws_form_addf(f, token, "%s.Tag.%d.Value", prefix, n + 1);
}

static void spot_fleet_form(const aws_group_launch *g, const char *token, aws_form *f)
{
#define C "SpotFleetRequestConfig."
	const char *role = str(g->tmpl, "fleetRole") ? str(g->tmpl, "fleetRole") : str(g->tmpl, "iamFleetRole");
	aws_form_init(f, "RequestSpotFleet");
	aws_form_add(f, C "ClientToken", token);
	aws_form_add(f, C "IamFleetRole", role);
	aws_form_add(f, C "Type", g->fleet_type);
	add_int(f, C "TargetCapacity", g->count);
	add_int(f, C "OnDemandTargetCapacity", on_demand_units(g));
	aws_form_add(f, C "AllocationStrategy", spot_fleet_strategy(str(g->tmpl, "allocationStrategy")));
	/* Lowering the target on a return must not pick the victims itself. */
	aws_form_add(f, C "ExcessCapacityTerminationPolicy", "noTermination");
	if (g->max_price)
		aws_form_add(f, C "SpotPrice", g->max_price);
	add_lt_config(f, C "LaunchTemplateConfigs.1", g, "SpotPrice");
	add_group_tags(f, C "TagSpecification.1", "spot-fleet-request", g, token);
#undef C
}

static void ec2_fleet_form(const aws_group_launch *g, const char *token, aws_form *f)
{
	aws_form_init(f, "CreateFleet");
	aws_form_add(f, "Type", g->fleet_type);
	aws_form_add(f, "ClientToken", token);
	add_lt_config(f, "LaunchTemplateConfigs.1", g, "MaxPrice");
	int64_t od = on_demand_units(g);
	add_int(f, "TargetCapacitySpecification.TotalTargetCapacity", g->count);
	add_int(f, "TargetCapacitySpecification.OnDemandTargetCapacity", od);
	add_int(f, "TargetCapacitySpecification.SpotTargetCapacity", g->count - od);
	aws_form_add(f, "TargetCapacitySpecification.DefaultTargetCapacityType", od == g->count ? "on-demand" : "spot");
	if (od < g->count)
		aws_form_add(f, "SpotOptions.AllocationStrategy", ec2_fleet_strategy(str(g->tmpl, "allocationStrategy")));
	if (eq(g->fleet_type, "maintain"))
		aws_form_add(f, "ExcessCapacityTerminationPolicy", "no-termination");
	/* request / maintain fleets take tags for the fleet only: the
	 * instances' come from the launch template. */
	add_group_tags(f, "TagSpecification.1", "fleet", g, token);
}

/* The Auto Scaling group's name: one launch, one name (it takes no token). */
static void asg_name(char *out, size_t size, const char *token) { snprintf(out, size, "provisio-%s", token); }

static bool weighted(const json_t *types)
{
	size_t i;
	json_t *t;
	json_array_foreach(types, i, t) if (json_integer_value(json_object_get(t, "weight")) != 1) return true;
	return false;
}

static void asg_form(const aws_group_launch *g, const char *name, aws_form *f)
{
	form_asg(f, "CreateAutoScalingGroup");
	aws_form_add(f, "AutoScalingGroupName", name);
	aws_form_add(f, "MinSize", "0");
	add_int(f, "MaxSize", g->count);
	add_int(f, "DesiredCapacity", g->count);
	const char *ver = g->lt_version ? g->lt_version : "$Default";
	int64_t od = on_demand_units(g);
	/* weights, several types or spot take the mixed policy: a plain
	 * LaunchTemplate counts every instance 1 */
	if (json_array_size(g->types) > 1 || od < g->count || weighted(g->types)) {
#define M "MixedInstancesPolicy."
		aws_form_add(f, M "LaunchTemplate.LaunchTemplateSpecification.LaunchTemplateId", g->lt_id);
		aws_form_add(f, M "LaunchTemplate.LaunchTemplateSpecification.Version", ver);
		size_t i;
		json_t *ty;
		char num[24];
		json_array_foreach(g->types, i, ty) {
			aws_form_addf(f, str(ty, "type"), M "LaunchTemplate.Overrides.member.%zu.InstanceType", i + 1);
			snprintf(num, sizeof num, "%lld", (long long)json_integer_value(json_object_get(ty, "weight")));
			aws_form_addf(f, num, M "LaunchTemplate.Overrides.member.%zu.WeightedCapacity", i + 1);
		}
		aws_form_add(f, M "InstancesDistribution.OnDemandBaseCapacity", "0");
		add_int(f, M "InstancesDistribution.OnDemandPercentageAboveBaseCapacity",
			g->count ? od * 100 / g->count : 100);
		if (od < g->count)
			aws_form_add(f, M "InstancesDistribution.SpotAllocationStrategy",
				     ec2_fleet_strategy(str(g->tmpl, "allocationStrategy")));
		if (g->max_price)
			aws_form_add(f, M "InstancesDistribution.SpotMaxPrice", g->max_price);
#undef M
	} else {
		aws_form_add(f, "LaunchTemplate.LaunchTemplateId", g->lt_id);
		aws_form_add(f, "LaunchTemplate.Version", ver);
	}
	char zones[2048] = "";
	size_t i, used = 0;
	json_t *s;
	json_array_foreach(g->subnets, i, s) used += (size_t)snprintf(zones + used, used < sizeof zones ? sizeof zones - used : 0,
								  "%s%s", i ? "," : "", json_string_value(s));
	if (used && used < sizeof zones)
		aws_form_add(f, "VPCZoneIdentifier", zones);
	else if (used)
		f->oom = true; /* never cut a subnet list silently */
	const char *k;
	json_t *v;
	int n = 0;
	json_object_foreach((json_t *)g->tags, k, v) {
		n++;
		aws_form_addf(f, k, "Tags.member.%d.Key", n);
		aws_form_addf(f, json_string_value(v), "Tags.member.%d.Value", n);
		aws_form_addf(f, "true", "Tags.member.%d.PropagateAtLaunch", n);
		aws_form_addf(f, name, "Tags.member.%d.ResourceId", n);
		aws_form_addf(f, "auto-scaling-group", "Tags.member.%d.ResourceType", n);
	}
}

/* Every page of a Describe* list; the items appended to `list`. */
static bool describe_all(aws *a, const pv_operation *op, aws_action act, const aws_form *sel, bool asg,
			 const char *set, const char *const *fields, json_t *list, group_acc *acc)
{
	char *next = NULL;
	for (;;) {
		aws_form f;
		if (asg)
			form_asg(&f, aws_action_name(act));
		else
			aws_form_init(&f, aws_action_name(act));
		aws_form_append(&f, sel);
		if (next)
			aws_form_add(&f, "NextToken", next);
		free(next);
		next = NULL;
		aws_call c;
		if (!call(a, op, act, &f, acc, &c)) {
			acc_fail(acc, act, &c);
			return false;
		}
		json_t *got = aws_xml_list(c.reply.body, c.reply.len, set, fields, &next);
		aws_call_free(&c);
		if (got)
			json_array_extend(list, got);
		json_decref(got);
		if (!next)
			return true;
	}
}

static aws_form selector(const char *key, const char *value, const char *max_key)
{
	aws_form s;
	memset(&s, 0, sizeof s); /* the pairs alone: describe_all adds Action */
	aws_form_add(&s, key, value);
	if (max_key)
		aws_form_add(&s, max_key, PAGE);
	return s;
}

/* {instance_id, instance_type, state} of the live ones among a group's
 * listed instances (fleets' activeInstanceSet, a group's Instances). */
static json_t *live_instances(const json_t *raw)
{
	json_t *out = json_array();
	size_t i;
	json_t *v;
	json_array_foreach(raw, i, v) {
		const char *id = str(v, "instanceId") ? str(v, "instanceId") : str(v, "InstanceId");
		const char *type = str(v, "instanceType") ? str(v, "instanceType") : str(v, "InstanceType");
		const char *life = str(v, "LifecycleState");
		if (!id || (life && (strncmp(life, "Terminat", 8) == 0 || strncmp(life, "Detach", 6) == 0)))
			continue;
		json_array_append_new(out, json_pack("{s:s, s:s?, s:s}", "instance_id", id, "instance_type", type,
						     "state", life && eq(life, "InService") ? "running" : "pending"));
	}
	return out;
}

/* The group's live instances: a new array of {instance_id, instance_type,
 * state}. NULL with the failure in acc. */
static json_t *group_instances(aws *a, const pv_operation *op, group_kind k, const char *gid, group_acc *acc)
{
	json_t *raw = json_array();
	bool ok;
	if (k == GK_ASG) {
		static const char *const f[] = {"InstanceId", "InstanceType", "LifecycleState", NULL};
		aws_form s = selector("AutoScalingGroupNames.member.1", gid, NULL);
		ok = describe_all(a, op, ACT_DESCRIBE_AUTO_SCALING_GROUPS, &s, true, "Instances", f, raw, acc);
		aws_form_free(&s);
	} else {
		static const char *const f[] = {"instanceId", "instanceType", NULL};
		bool spot = k == GK_SPOT_FLEET;
		aws_form s = selector(spot ? "SpotFleetRequestId" : "FleetId", gid, "MaxResults");
		ok = describe_all(a, op, spot ? ACT_DESCRIBE_SPOT_FLEET_INSTANCES : ACT_DESCRIBE_FLEET_INSTANCES, &s,
				  false, "activeInstanceSet", f, raw, acc);
		aws_form_free(&s);
	}
	json_t *out = ok ? live_instances(raw) : NULL;
	json_decref(raw);
	return out;
}

static int64_t weight_of(const json_t *weights, const char *type)
{
	json_int_t w = json_integer_value(json_object_get(weights, type ? type : ""));
	return w > 0 ? w : 1;
}

static json_t *weights_of(const json_t *types)
{
	json_t *w = json_object();
	size_t i;
	json_t *t;
	json_array_foreach(types, i, t) json_object_set(w, str(t, "type"), json_object_get(t, "weight"));
	return w;
}

static int64_t units_of(const json_t *weights, const json_t *instances)
{
	int64_t n = 0;
	size_t i;
	json_t *in;
	json_array_foreach(instances, i, in) n += weight_of(weights, str(in, "instance_type"));
	return n;
}

/* The fleet a lost RequestSpotFleet / CreateFleet made, by its clientToken. */
static bool find_by_token(aws *a, const pv_operation *op, group_kind k, const char *token, char *gid, size_t size,
			  group_acc *acc)
{
	static const char *const spot_f[] = {"spotFleetRequestId", "spotFleetRequestConfig/clientToken", NULL};
	static const char *const fleet_f[] = {"fleetId", "clientToken", NULL};
	bool spot = k == GK_SPOT_FLEET;
	json_t *list = json_array();
	aws_form s;
	memset(&s, 0, sizeof s);
	aws_form_add(&s, "MaxResults", PAGE);
	bool ok = describe_all(a, op, spot ? ACT_DESCRIBE_SPOT_FLEET_REQUESTS : ACT_DESCRIBE_FLEETS, &s, false,
			       spot ? "spotFleetRequestConfigSet" : "fleetSet", spot ? spot_f : fleet_f, list, acc);
	aws_form_free(&s);
	gid[0] = '\0';
	size_t i;
	json_t *v;
	json_array_foreach(list, i, v) if (eq(str(v, "clientToken"), token))
		snprintf(gid, size, "%s", str(v, spot ? "spotFleetRequestId" : "fleetId"));
	json_decref(list);
	return ok;
}

/* Whether the Auto Scaling group `name` exists (a lost or repeated create). */
static bool asg_exists(aws *a, const pv_operation *op, const char *name, bool *exists, group_acc *acc)
{
	static const char *const f[] = {"AutoScalingGroupName", NULL};
	json_t *list = json_array();
	aws_form s = selector("AutoScalingGroupNames.member.1", name, NULL);
	bool ok = describe_all(a, op, ACT_DESCRIBE_AUTO_SCALING_GROUPS, &s, true, "AutoScalingGroups", f, list, acc);
	aws_form_free(&s);
	*exists = json_array_size(list) > 0;
	json_decref(list);
	return ok;
}

/* The create call, its lost answer looked up. gid receives the group's id. */
static bool create_group(aws *a, const pv_operation *op, const aws_group_launch *g, group_kind k, const char *token,
			 char *gid, size_t size, group_acc *acc)
{
	static const aws_action acts[GK_COUNT] = {ACT_REQUEST_SPOT_FLEET, ACT_CREATE_FLEET,
						  ACT_CREATE_AUTO_SCALING_GROUP};
	aws_form f;
	gid[0] = '\0';
	if (k == GK_SPOT_FLEET)
		spot_fleet_form(g, token, &f);
	else if (k == GK_EC2_FLEET)
		ec2_fleet_form(g, token, &f);
	else {
		asg_name(gid, size, token);
		asg_form(g, gid, &f);
	}
	aws_call c;
	bool ok = call(a, op, acts[k], &f, acc, &c);
	if (ok) {
		if (k != GK_ASG)
			aws_xml_find_text(c.reply.body, c.reply.len, k == GK_SPOT_FLEET ? "spotFleetRequestId" : "fleetId",
					  gid, size);
		aws_call_free(&c);
		return gid[0] != '\0';
	}
	if (c.cls == PV_CLASS_INTERNAL && !c.attempts) { /* the form failed */
		acc_fail(acc, acts[k], &c);
		return false;
	}
	/* AlreadyExists: the group of this launch's name, made by an earlier
	 * attempt whose answer was lost. */
	bool lost = c.maybe_ran || (k == GK_ASG && eq(c.ec2_code, "AlreadyExists"));
	if (lost && !(op->deadline_ns && pv_clock_now(a->clock) >= op->deadline_ns)) {
		char found[128] = "";
		bool looked;
		if (k == GK_ASG) {
			bool exists = false;
			looked = asg_exists(a, op, gid, &exists, acc);
			if (exists)
				snprintf(found, sizeof found, "%s", gid);
		} else {
			looked = find_by_token(a, op, k, token, found, sizeof found, acc);
		}
		if (looked && found[0]) {
			snprintf(gid, size, "%s", found);
			acc->found++;
			aws_call_free(&c);
			return true;
		}
		acc->unknown = !looked;
	} else if (lost) {
		acc->unknown = true; /* no time left to look */
	}
	acc_fail(acc, acts[k], &c);
	return false;
}

/* ---- the group cache ---------------------------------------------------------- */

static void remember(aws *a, group_kind k, const char *gid, const char *type, int64_t target, int64_t on_demand,
		     json_t *weights, const json_t *instances, const char *lt_id, const char *lt_name)
{
	json_t *ids = json_object(); /* id -> instance type */
	size_t i;
	json_t *in;
	pthread_mutex_lock(&a->lock);
	json_array_foreach(instances, i, in) {
		json_object_set_new(ids, str(in, "instance_id"), json_string(str(in, "instance_type") ? str(in, "instance_type") : ""));
		json_object_set_new(a->instance_group, str(in, "instance_id"), json_string(gid));
	}
	json_object_set_new(a->group_cache, gid, json_pack("{s:i, s:s, s:I, s:I, s:O, s:o}", "kind", (int)k, "type",
							   type, "target", (json_int_t)target, "on_demand",
							   (json_int_t)on_demand, "weights", weights, "instances", ids));
	if (lt_id)
		json_object_set_new(json_object_get(a->group_cache, gid), "launch_template",
				    json_pack("{s:s, s:s?}", "id", lt_id, "name", lt_name));
	pthread_mutex_unlock(&a->lock);
}

static void forget(aws *a, const char *gid, const json_t *ids)
{
	size_t i;
	json_t *v;
	pthread_mutex_lock(&a->lock);
	json_t *g = json_object_get(a->group_cache, gid);
	json_array_foreach(ids, i, v) {
		json_object_del(a->instance_group, json_string_value(v));
		json_object_del(json_object_get(g, "instances"), json_string_value(v));
	}
	pthread_mutex_unlock(&a->lock);
}

/* The launch template made for one request, once its group has ended (a
 * failure only costs a template: said, not fatal). */
static void drop_launch_template(aws *a, const pv_operation *op, const char *lt_id, const char *lt_name)
{
	if (!lt_id || !*lt_id)
		return;
	if (lt_name) {
		pthread_mutex_lock(&a->lock);
		json_object_del(a->lt_cache, lt_name);
		pthread_mutex_unlock(&a->lock);
	}
	group_acc acc = {0};
	aws_form f;
	aws_form_init(&f, "DeleteLaunchTemplate");
	aws_form_add(&f, "LaunchTemplateId", lt_id);
	aws_call c;
	if (call(a, op, ACT_DELETE_LAUNCH_TEMPLATE, &f, &acc, &c))
		aws_call_free(&c);
	else {
		pv_log(PV_LOG_WARN, "aws '%s': launch template %s of an ended group was not deleted: %s", a->base.name,
		       lt_id, c.ec2_code[0] ? c.ec2_code : acc.failed ? acc.fail.ec2_code : "?");
		aws_call_free(&c);
	}
	if (acc.failed)
		aws_call_free(&acc.fail);
}

/* ---- holding a partly filled group ----------------------------------------- */

static bool modify_target(aws *a, const pv_operation *op, group_kind k, const char *gid, int64_t target,
			  int64_t on_demand, group_acc *acc);
static bool end_group(aws *a, const pv_operation *op, group_kind k, const char *gid, bool terminate,
		      group_acc *acc);

/* The group stops where it is: no instance appears later that no request
 * records (a request fleet ended without terminating, a maintain fleet's
 * target or a group's desired capacity set to what it has). */
static bool hold(aws *a, const pv_operation *op, group_kind k, const char *gid, const char *type, int64_t units,
		 int64_t on_demand, group_acc *acc)
{
	if (units == 0 || (k != GK_ASG && eq(type, "request")))
		return end_group(a, op, k, gid, false, acc);
	return modify_target(a, op, k, gid, units, on_demand, acc);
}

static const char *owned_lt(const aws_group_launch *g) { return g->lt_owned ? g->lt_id : NULL; }

/* ---- create_instances ---------------------------------------------------------- */

static void group_meta(const group_acc *acc, pv_result *out)
{
	pv_result_meta_set(out, "api_calls", json_integer(acc->calls));
	pv_result_meta_set(out, "retries", json_integer(acc->retries));
	if (acc->throttled) {
		pv_result_meta_set(out, "throttled_by", json_string("EC2"));
		pv_result_meta_set(out, "throttled_received", json_integer(acc->throttled));
	}
	if (acc->found)
		pv_result_meta_set(out, "found_after_lost_answer", json_integer(acc->found));
	if (acc->unknown)
		pv_result_meta_set(out, "outcome_unknown", json_true());
}

void aws_group_create(aws *a, const pv_operation *op, const aws_group_launch *g, json_t *data, pv_result *out)
{
	group_kind k = kind_of_api(g->api);
	group_acc acc = {0};
	char token[AWS_CLIENT_TOKEN_MAX + 1], gid[160];
	aws_group_token(a, g->api, g->fleet_type, g->basis, token);
	json_t *instances = NULL, *weights = weights_of(g->types);
	if (!create_group(a, op, g, k, token, gid, sizeof gid, &acc)) {
		/* No group was made: nothing will launch from its template.
		 * Kept when that is not sure (an answer lost, a group of this
		 * name that exists but was not found). */
		bool surely_none = !acc.unknown && !(acc.failed && (acc.fail.maybe_ran ||
								   eq(acc.fail.ec2_code, "AlreadyExists")));
		if (surely_none)
			drop_launch_template(a, op, owned_lt(g), g->lt_name);
		goto failed;
	}
	json_object_set_new(data, "group_id", json_string(gid));
	json_object_set_new(data, "fleet_type", json_string(g->fleet_type));
	if (k != GK_ASG)
		json_object_set_new(data, "fleet_id", json_string(gid));
	/* Watch it fill: EC2 and Auto Scaling launch after they answered. */
	uint64_t until = pv_clock_now(a->clock) + (uint64_t)a->group_fill_wait_ms * PV_NS_PER_MS;
	if (op->deadline_ns && op->deadline_ns < until)
		until = op->deadline_ns;
	for (unsigned attempt = 0;; attempt++) {
		json_decref(instances);
		instances = group_instances(a, op, k, gid, &acc);
		if (!instances || units_of(weights, instances) >= g->count)
			break;
		uint64_t d = aws_backoff_ns(a, attempt < 3 ? 3 : attempt);
		if (pv_clock_now(a->clock) + d >= until)
			break;
		pv_clock_sleep(a->clock, d);
	}
	if (!instances) {
		/* The group exists and its instances could not be listed: say
		 * so, with its id, rather than lose it. */
		pv_result_meta_set(out, "group_id", json_string(gid));
		acc.unknown = true;
		goto failed;
	}
	int64_t units = units_of(weights, instances);
	if (units < g->count && g->all_or_nothing) {
		if (end_group(a, op, k, gid, true, &acc))
			drop_launch_template(a, op, owned_lt(g), g->lt_name);
		pv_result_fail(out, PV_ERR_CAPACITY, PV_CLASS_CAPACITY,
			       "aws '%s': %s %s filled %lld of %lld units (all or nothing): ended with its instances",
			       a->base.name, kinds[k].api, gid, (long long)units, (long long)g->count);
		pv_result_meta_set(out, "requested", json_integer(g->count));
		group_meta(&acc, out);
		json_decref(data);
		goto done;
	}
	int64_t od = on_demand_units(g);
	bool ended = units < g->count && (units == 0 || (k != GK_ASG && eq(g->fleet_type, "request")));
	if (units < g->count) {
		if (!hold(a, op, k, gid, g->fleet_type, units, od, &acc))
			pv_log(PV_LOG_WARN, "aws '%s': %s %s filled %lld of %lld units and could not be held there: %s",
			       a->base.name, kinds[k].api, gid, (long long)units, (long long)g->count,
			       acc.failed ? acc.fail.ec2_code : "?");
		else if (ended)
			drop_launch_template(a, op, owned_lt(g), g->lt_name);
	}
	if (units > 0) {
		remember(a, k, gid, g->fleet_type, units < g->count ? units : g->count, od < units ? od : units,
			 weights, instances, ended ? NULL : owned_lt(g), g->lt_name);
		pthread_mutex_lock(&a->lock);
		if (ended)
			json_object_set_new(json_object_get(a->group_cache, gid), "ended", json_true());
		pthread_mutex_unlock(&a->lock);
	}
	const char *lifecycle = od == g->count ? "on-demand" : od == 0 ? "spot" : NULL;
	size_t i;
	json_t *in, *ids = json_array();
	json_array_foreach(instances, i, in) {
		json_object_set_new(in, "provider", json_string(a->base.name));
		if (lifecycle) /* a mixed group does not say which is which */
			json_object_set_new(in, "lifecycle", json_string(lifecycle));
		if (g->request_id)
			json_object_set_new(in, "request_id", json_string(g->request_id));
		if (g->template_id)
			json_object_set_new(in, "template_id", json_string(g->template_id));
		json_object_set_new(in, "group_id", json_string(gid));
		json_array_append(ids, json_object_get(in, "instance_id"));
	}
	if (units == 0) {
		pv_result_fail(out, PV_ERR_CAPACITY, PV_CLASS_CAPACITY, "aws '%s': %s %s launched nothing",
			       a->base.name, kinds[k].api, gid);
		pv_result_meta_set(out, "requested", json_integer(g->count));
		group_meta(&acc, out);
		json_decref(ids);
		json_decref(data);
		goto done;
	}
	json_object_set(data, "instances", instances);
	json_object_set_new(data, "instance_ids", ids);
	json_object_set_new(data, "count", json_integer((json_int_t)json_array_size(instances)));
	json_object_set_new(data, "fulfilled_capacity", json_integer(units));
	json_object_set_new(data, "requested", json_integer(g->count));
	json_object_set_new(data, "partial", json_boolean(units < g->count));
	json_object_set_new(data, "errors", json_array());
	pv_result_ok(out, data);
	group_meta(&acc, out);
	goto done;
failed:
	if (acc.failed)
		aws_call_fail(a, acc.fail_act, &acc.fail, out);
	else if (!pv_result_message(out))
		pv_result_fail(out, PV_ERR_INTERNAL, PV_CLASS_INTERNAL, "aws '%s': %s: no group id in the answer",
			       a->base.name, kinds[k].api);
	group_meta(&acc, out);
	json_decref(data);
done:
	json_decref(instances);
	json_decref(weights);
	if (acc.failed)
		aws_call_free(&acc.fail);
}

/* ---- return ------------------------------------------------------------------- */

/* The fleet's target (and its on-demand part, which may not exceed it) or
 * the group's desired capacity. */
static bool modify_target(aws *a, const pv_operation *op, group_kind k, const char *gid, int64_t target,
			  int64_t on_demand, group_acc *acc)
{
	if (on_demand > target)
		on_demand = target;
	aws_form f;
	aws_action act;
	if (k == GK_SPOT_FLEET) {
		act = ACT_MODIFY_SPOT_FLEET_REQUEST;
		aws_form_init(&f, "ModifySpotFleetRequest");
		aws_form_add(&f, "SpotFleetRequestId", gid);
		add_int(&f, "TargetCapacity", target);
		add_int(&f, "OnDemandTargetCapacity", on_demand);
		aws_form_add(&f, "ExcessCapacityTerminationPolicy", "noTermination");
	} else if (k == GK_EC2_FLEET) {
		act = ACT_MODIFY_FLEET;
		aws_form_init(&f, "ModifyFleet");
		aws_form_add(&f, "FleetId", gid);
		add_int(&f, "TargetCapacitySpecification.TotalTargetCapacity", target);
		add_int(&f, "TargetCapacitySpecification.OnDemandTargetCapacity", on_demand);
		add_int(&f, "TargetCapacitySpecification.SpotTargetCapacity", target - on_demand);
		aws_form_add(&f, "ExcessCapacityTerminationPolicy", "no-termination");
	} else {
		act = ACT_SET_DESIRED_CAPACITY;
		form_asg(&f, "SetDesiredCapacity");
		aws_form_add(&f, "AutoScalingGroupName", gid);
		add_int(&f, "DesiredCapacity", target);
	}
	aws_call c;
	bool ok = call(a, op, act, &f, acc, &c);
	if (ok)
		aws_call_free(&c);
	else
		acc_fail(acc, act, &c);
	return ok;
}

static bool end_group(aws *a, const pv_operation *op, group_kind k, const char *gid, bool terminate,
		      group_acc *acc)
{
	aws_form f;
	aws_action act;
	const char *t = terminate ? "true" : "false";
	if (k == GK_SPOT_FLEET) {
		act = ACT_CANCEL_SPOT_FLEET_REQUESTS;
		aws_form_init(&f, "CancelSpotFleetRequests");
		aws_form_add(&f, "SpotFleetRequestId.1", gid);
		aws_form_add(&f, "TerminateInstances", t);
	} else if (k == GK_EC2_FLEET) {
		act = ACT_DELETE_FLEETS;
		aws_form_init(&f, "DeleteFleets");
		aws_form_add(&f, "FleetId.1", gid);
		aws_form_add(&f, "TerminateInstances", t);
	} else {
		act = ACT_DELETE_AUTO_SCALING_GROUP;
		form_asg(&f, "DeleteAutoScalingGroup");
		aws_form_add(&f, "AutoScalingGroupName", gid);
		aws_form_add(&f, "ForceDelete", t);
	}
	aws_call c;
	bool ok = call(a, op, act, &f, acc, &c);
	if (ok && k != GK_ASG) {
		/* a fleet the answer lists as unsuccessful was not ended */
		char code[96], msg[300];
		aws_xml_find_text(c.reply.body, c.reply.len, "code", code, sizeof code);
		if (code[0]) {
			aws_xml_find_text(c.reply.body, c.reply.len, "message", msg, sizeof msg);
			snprintf(c.ec2_code, sizeof c.ec2_code, "%s", code);
			free(c.ec2_message);
			c.ec2_message = strdup(msg);
			c.ok = ok = false;
			c.cls = PV_CLASS_PERMANENT;
		}
	}
	if (ok)
		aws_call_free(&c);
	else
		acc_fail(acc, act, &c);
	return ok;
}

/* What a release needs to know of a group. */
typedef struct group_state {
	group_kind kind;
	char type[16];    /* request / maintain / instant */
	bool active;      /* still launching / maintaining */
	int64_t target, on_demand;
	json_t *weights;  /* owned */
	/* The launch template it launches from (id, and name when known) and
	 * whether it is the group's own: known when this process made it,
	 * else judged by its name (lt_made_for) against the group's token. */
	char lt_id[64], lt_name[160];
	bool lt_known_own;
	char token[AWS_CLIENT_TOKEN_MAX + 1];
	json_t *live;     /* owned: live instance id -> instance type */
} group_state;

static void state_free(group_state *s)
{
	json_decref(s->weights);
	json_decref(s->live);
}

/* From this process's launches: true when known. */
static bool state_cached(aws *a, const char *gid, group_state *s)
{
	pthread_mutex_lock(&a->lock);
	json_t *g = json_object_get(a->group_cache, gid);
	if (g) {
		s->kind = (group_kind)json_integer_value(json_object_get(g, "kind"));
		snprintf(s->type, sizeof s->type, "%s", str(g, "type"));
		s->active = !json_is_true(json_object_get(g, "ended"));
		s->target = json_integer_value(json_object_get(g, "target"));
		s->on_demand = json_integer_value(json_object_get(g, "on_demand"));
		s->weights = json_deep_copy(json_object_get(g, "weights"));
		s->live = json_deep_copy(json_object_get(g, "instances"));
		json_t *lt = json_object_get(g, "launch_template");
		snprintf(s->lt_id, sizeof s->lt_id, "%s", str(lt, "id") ? str(lt, "id") : "");
		snprintf(s->lt_name, sizeof s->lt_name, "%s", str(lt, "name") ? str(lt, "name") : "");
		s->lt_known_own = lt != NULL; /* remembered only when made for it */
	}
	pthread_mutex_unlock(&a->lock);
	return g != NULL;
}

/* The launch template and weights a Describe answer gives of the group
 * (its first launch template: provisio makes one a group). */
static void state_launch(aws *a, const char *gid, const aws_call *c, const char *set, group_state *s)
{
	json_t *got = aws_xml_group_launch(c->reply.body, c->reply.len, set);
	json_t *lt = json_array_get(json_object_get(got, "launch_templates"), 0);
	snprintf(s->lt_id, sizeof s->lt_id, "%s", str(lt, "id") ? str(lt, "id") : "");
	snprintf(s->lt_name, sizeof s->lt_name, "%s", str(lt, "name") ? str(lt, "name") : "");
	json_object_update(s->weights, json_object_get(got, "weights"));
	size_t i;
	json_t *p;
	json_array_foreach(json_object_get(got, "problems"), i, p)
		pv_log(PV_LOG_WARN, "aws '%s': group %s: %s (that type counts 1 unit on a return)", a->base.name, gid,
		       json_string_value(p));
	json_decref(got);
}

/* An Auto Scaling group from one DescribeAutoScalingGroups: its launch
 * template, weights and instances (one group's instances come whole). */
static json_t *describe_asg(aws *a, const pv_operation *op, const char *gid, group_state *s, group_acc *acc)
{
	static const char *const f[] = {"InstanceId", "InstanceType", "LifecycleState", NULL};
	aws_form form;
	form_asg(&form, "DescribeAutoScalingGroups");
	aws_form_add(&form, "AutoScalingGroupNames.member.1", gid);
	aws_call c;
	if (!call(a, op, ACT_DESCRIBE_AUTO_SCALING_GROUPS, &form, acc, &c)) {
		acc_fail(acc, ACT_DESCRIBE_AUTO_SCALING_GROUPS, &c);
		return NULL;
	}
	state_launch(a, gid, &c, "AutoScalingGroups", s);
	json_t *raw = aws_xml_list(c.reply.body, c.reply.len, "Instances", f, NULL);
	json_t *in = live_instances(raw);
	json_decref(raw);
	aws_call_free(&c);
	return in;
}

/* Asked of EC2 / Auto Scaling (after a restart). false with acc failed. */
static bool state_described(aws *a, const pv_operation *op, group_kind k, const char *gid, group_state *s,
			    group_acc *acc)
{
	s->kind = k;
	s->weights = json_object();
	char text[64];
	json_t *in;
	if (k == GK_ASG) {
		snprintf(s->type, sizeof s->type, "maintain");
		/* its name is provisio-<token> (asg_name) */
		snprintf(s->token, sizeof s->token, "%s", strncmp(gid, "provisio-", 9) == 0 ? gid + 9 : "");
		in = describe_asg(a, op, gid, s, acc);
	} else {
		bool spot = k == GK_SPOT_FLEET;
		aws_form f;
		aws_form_init(&f, spot ? "DescribeSpotFleetRequests" : "DescribeFleets");
		aws_form_add(&f, spot ? "SpotFleetRequestId.1" : "FleetId.1", gid);
		aws_call c;
		aws_action act = spot ? ACT_DESCRIBE_SPOT_FLEET_REQUESTS : ACT_DESCRIBE_FLEETS;
		if (!call(a, op, act, &f, acc, &c)) {
			if (strstr(c.ec2_code, "NotFound")) { /* gone: nothing to hold back */
				aws_call_free(&c);
				s->live = json_object();
				return true;
			}
			acc_fail(acc, act, &c);
			return false;
		}
		aws_xml_find_text(c.reply.body, c.reply.len, spot ? "spotFleetRequestState" : "fleetState", text,
				  sizeof text);
		s->active = eq(text, "active") || eq(text, "submitted") || eq(text, "modifying");
		aws_xml_find_text(c.reply.body, c.reply.len, "type", s->type, sizeof s->type);
		aws_xml_find_text(c.reply.body, c.reply.len, spot ? "targetCapacity" : "totalTargetCapacity", text,
				  sizeof text);
		s->target = atoll(text);
		aws_xml_find_text(c.reply.body, c.reply.len, "onDemandTargetCapacity",
				  text, sizeof text);
		s->on_demand = atoll(text);
		aws_xml_find_text(c.reply.body, c.reply.len, "clientToken", s->token, sizeof s->token);
		state_launch(a, gid, &c, spot ? "spotFleetRequestConfigSet" : "fleetSet", s);
		aws_call_free(&c);
		in = group_instances(a, op, k, gid, acc);
	}
	if (!in)
		return false;
	if (k == GK_ASG) {
		s->active = true; /* a group that is gone lists nothing */
		s->target = (int64_t)json_array_size(in);
	}
	s->live = json_object();
	size_t i;
	json_t *v;
	json_array_foreach(in, i, v) json_object_set_new(s->live, str(v, "instance_id"),
							 json_string(str(v, "instance_type") ? str(v, "instance_type") : ""));
	json_decref(in);
	return true;
}

/* The name of launch template `id` (DescribeLaunchTemplates), when the
 * group's answer gave only its id. false when it is gone or unknown. */
static bool lt_name_by_id(aws *a, const pv_operation *op, const char *id, char *name, size_t size)
{
	static const char *const f[] = {"launchTemplateId", "launchTemplateName", NULL};
	group_acc acc = {0};
	aws_form form;
	aws_form_init(&form, "DescribeLaunchTemplates");
	aws_form_add(&form, "LaunchTemplateId.1", id);
	aws_call c;
	bool ok = call(a, op, ACT_DESCRIBE_LAUNCH_TEMPLATES, &form, &acc, &c);
	if (ok) {
		json_t *list = aws_xml_list(c.reply.body, c.reply.len, "launchTemplates", f, NULL);
		const char *n = str(json_array_get(list, 0), "launchTemplateName");
		snprintf(name, size, "%s", n ? n : "");
		json_decref(list);
	} else if (!strstr(c.ec2_code, "NotFound")) {
		pv_log(PV_LOG_WARN, "aws '%s': the name of launch template %s could not be read (%s): it is kept",
		       a->base.name, id, c.ec2_code[0] ? c.ec2_code : c.reply.error);
	}
	aws_call_free(&c);
	if (acc.failed)
		aws_call_free(&acc.fail);
	return ok && name[0];
}

/* The group has ended: its own launch template goes with it, and only
 * that one (a user's, named by launchTemplateId, never). */
static void drop_own_launch_template(aws *a, const pv_operation *op, group_state *s)
{
	if (!s->lt_id[0])
		return;
	if (!s->lt_known_own) {
		if (!s->lt_name[0] && !lt_name_by_id(a, op, s->lt_id, s->lt_name, sizeof s->lt_name))
			return;
		if (!lt_made_for(s->lt_name, s->token))
			return;
	}
	drop_launch_template(a, op, s->lt_id, s->lt_name[0] ? s->lt_name : NULL);
}

static bool has(const json_t *ids, const char *id)
{
	size_t i;
	json_t *v;
	json_array_foreach(ids, i, v) if (eq(json_string_value(v), id)) return true;
	return false;
}

/* TerminateInstances of `ids` (batches of 1000). */
static bool terminate(aws *a, const pv_operation *op, const json_t *ids, json_t *done, group_acc *acc)
{
	for (size_t start = 0; start < json_array_size(ids); start += 1000) {
		aws_form f;
		aws_form_init(&f, "TerminateInstances");
		for (size_t i = start; i < json_array_size(ids) && i < start + 1000; i++)
			aws_form_addf(&f, json_string_value(json_array_get(ids, i)), "InstanceId.%zu", i - start + 1);
		aws_call c;
		if (!call(a, op, ACT_TERMINATE_INSTANCES, &f, acc, &c)) {
			acc_fail(acc, ACT_TERMINATE_INSTANCES, &c);
			return false;
		}
		json_t *got = aws_xml_terminated(c.reply.body, c.reply.len);
		if (got)
			json_array_extend(done, got);
		json_decref(got);
		aws_call_free(&c);
	}
	return true;
}

static void mark_done(json_t *done, const json_t *ids)
{
	size_t i;
	json_t *v;
	json_array_foreach(ids, i, v) json_array_append_new(done, json_pack("{s:O, s:s}", "instance_id", v, "state",
									    "shutting-down"));
}

/* Whether every one of `ids` is among the group's `live` instances. */
static bool knows_all(const json_t *live, const json_t *ids)
{
	size_t i;
	json_t *v;
	json_array_foreach(ids, i, v) if (!json_object_get(live, json_string_value(v))) return false;
	return true;
}

/* Gives `ids` back through their group `gid`. */
static bool release_group(aws *a, const pv_operation *op, group_kind k, const char *gid, json_t *ids, json_t *done,
			  group_acc *acc)
{
	group_state s = {0};
	bool cached = state_cached(a, gid, &s);
	if (cached && !knows_all(s.live, ids)) {
		/* an instance the group launched after this process looked (a
		 * replacement): the cache is stale, EC2 knows */
		state_free(&s);
		memset(&s, 0, sizeof s);
		cached = false;
	}
	if (!cached && !state_described(a, op, k, gid, &s, acc)) {
		state_free(&s);
		return false;
	}
	k = s.kind;
	bool all = true, ok;
	size_t i;
	json_t *v;
	const char *id;
	json_object_foreach(s.live, id, v) all = all && has(ids, id);
	if (!s.active || eq(s.type, "instant")) {
		ok = terminate(a, op, ids, done, acc);
		if (ok && all && !eq(s.type, "instant"))
			drop_own_launch_template(a, op, &s); /* ended before: its last instances gone now */
	} else if (all) {
		ok = end_group(a, op, k, gid, true, acc);
		if (!ok && acc->failed && (strstr(acc->fail.ec2_code, "NotIn") || strstr(acc->fail.ec2_code, "NotExist") ||
					   strstr(acc->fail.ec2_code, "NotFound"))) {
			/* ended or gone already (elsewhere): its instances alone */
			aws_call_free(&acc->fail);
			acc->failed = false;
			ok = terminate(a, op, ids, done, acc);
		} else if (ok) {
			mark_done(done, ids);
		}
		if (ok)
			drop_own_launch_template(a, op, &s);
		if (ok) {
			pthread_mutex_lock(&a->lock);
			json_object_del(a->group_cache, gid);
			pthread_mutex_unlock(&a->lock);
		}
	} else if (k == GK_ASG) {
		ok = true;
		json_array_foreach(ids, i, v) {
			aws_form f;
			form_asg(&f, "TerminateInstanceInAutoScalingGroup");
			aws_form_add(&f, "InstanceId", json_string_value(v));
			aws_form_add(&f, "ShouldDecrementDesiredCapacity", "true");
			aws_call c;
			if (!call(a, op, ACT_TERMINATE_INSTANCE_IN_AUTO_SCALING_GROUP, &f, acc, &c)) {
				acc_fail(acc, ACT_TERMINATE_INSTANCE_IN_AUTO_SCALING_GROUP, &c);
				ok = false;
				break;
			}
			aws_call_free(&c);
			json_array_append_new(done, json_pack("{s:O, s:s}", "instance_id", v, "state", "shutting-down"));
		}
	} else if (eq(s.type, "maintain")) {
		/* lower the target first: a maintain fleet must not replace them */
		int64_t units = 0;
		json_array_foreach(ids, i, v) units += weight_of(s.weights, str(s.live, json_string_value(v)));
		int64_t target = s.target > units ? s.target - units : 0;
		ok = modify_target(a, op, k, gid, target, s.on_demand, acc) && terminate(a, op, ids, done, acc);
		if (ok) {
			pthread_mutex_lock(&a->lock);
			json_t *g = json_object_get(a->group_cache, gid);
			if (g)
				json_object_set_new(g, "target", json_integer(target));
			if (g && s.on_demand > target)
				json_object_set_new(g, "on_demand", json_integer(target));
			pthread_mutex_unlock(&a->lock);
		}
	} else {
		ok = terminate(a, op, ids, done, acc);
	}
	if (ok)
		forget(a, gid, ids);
	state_free(&s);
	return ok;
}

/* The group of each id not known from this process's launches, by the
 * aws: tag on the instance: {gid: {"kind", "ids"}} added to `groups`; the
 * ids in no group appended to `rest`. */
static void groups_by_tag(aws *a, const pv_operation *op, json_t *unknown, json_t *groups, json_t *rest)
{
	json_t *params = json_pack("{s:O}", "instance_ids", unknown);
	pv_operation st = {.type = PV_OP_GET_INSTANCE_STATUS, .params = params, .deadline_ns = op->deadline_ns};
	pv_result r = PV_RESULT_INIT;
	aws_op_status(a, &st, &r, false);
	json_decref(params);
	json_t *seen = json_object();
	size_t i;
	json_t *in;
	json_array_foreach(json_object_get(r.data, "instances"), i, in) {
		const char *id = str(in, "instance_id");
		json_t *tags = json_object_get(in, "tags");
		for (int k = 0; id && k < GK_COUNT; k++) {
			const char *gid = str(tags, kinds[k].aws_tag);
			if (!gid)
				continue;
			json_t *g = json_object_get(groups, gid);
			if (!g) {
				g = json_pack("{s:i, s:[]}", "kind", k, "ids");
				json_object_set_new(groups, gid, g);
			}
			json_array_append_new(json_object_get(g, "ids"), json_string(id));
			json_object_set_new(seen, id, json_true());
		}
	}
	if (!r.success)
		pv_log(PV_LOG_WARN, "aws '%s': the groups of %zu instances to return could not be looked up (%s): "
				    "they are terminated directly",
		       a->base.name, json_array_size(unknown), pv_result_message(&r) ? pv_result_message(&r) : "");
	json_array_foreach(unknown, i, in) if (!json_object_get(seen, json_string_value(in)))
		json_array_append(rest, in);
	json_decref(seen);
	pv_result_clear(&r);
}

json_t *aws_groups_release(aws *a, const pv_operation *op, json_t *ids, json_t *done, unsigned *calls,
			   pv_result *out)
{
	json_t *groups = json_object(), *unknown = json_array(), *rest = json_array();
	size_t i;
	json_t *v;
	pthread_mutex_lock(&a->lock);
	json_array_foreach(ids, i, v) {
		const char *gid = str(a->instance_group, json_string_value(v));
		json_t *g = gid ? json_object_get(a->group_cache, gid) : NULL;
		if (!g) {
			json_array_append(unknown, v);
			continue;
		}
		json_t *e = json_object_get(groups, gid);
		if (!e) {
			e = json_pack("{s:O, s:[]}", "kind", json_object_get(g, "kind"), "ids");
			json_object_set_new(groups, gid, e);
		}
		json_array_append(json_object_get(e, "ids"), v);
	}
	pthread_mutex_unlock(&a->lock);
	if (json_array_size(unknown) && atomic_load(&a->group_templates))
		groups_by_tag(a, op, unknown, groups, rest);
	else
		json_array_extend(rest, unknown);
	group_acc acc = {0};
	const char *gid;
	json_t *g;
	bool ok = true;
	json_object_foreach(groups, gid, g) {
		ok = release_group(a, op, (group_kind)json_integer_value(json_object_get(g, "kind")), gid,
				   json_object_get(g, "ids"), done, &acc);
		if (!ok)
			break;
	}
	*calls += acc.calls;
	if (!ok) {
		if (acc.failed)
			aws_call_fail(a, acc.fail_act, &acc.fail, out);
		else
			pv_result_fail(out, PV_ERR_INTERNAL, PV_CLASS_INTERNAL, "aws '%s': returning through group %s failed",
				       a->base.name, gid);
		pv_result_meta_set(out, "group_id", json_string(gid));
		json_decref(rest);
		rest = NULL;
	}
	if (acc.failed)
		aws_call_free(&acc.fail);
	json_decref(groups);
	json_decref(unknown);
	return rest;
}
