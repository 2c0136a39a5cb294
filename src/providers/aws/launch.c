/*
 * launch.c - create_instances and validate_template for the AWS provider.
 *
 * Two EC2 APIs here, chosen by the template's providerApi (and fleetType);
 * SpotFleet, ASG and EC2Fleet request / maintain launch through a group
 * (groups.c) from the same launch template data:
 *  - RunInstances: one call per batch of at most max_instances_per_call
 *    (MaxCount = batch, MinCount = 1, or the whole batch when all-or-nothing),
 *    falling over to the template's next instance type on a capacity error;
 *  - CreateFleet type instant: one call with every (instance type x subnet)
 *    override, weights, on-demand / spot / mixed capacity and allocation
 *    strategies; per-override errors come back with a partial fleet.
 * A fleet template without launchTemplateId gets one made on the fly
 * (CreateLaunchTemplate, named after the template and a hash of its launch
 * parameters, so later requests reuse it).
 * Every launch call carries a ClientToken derived from the caller's
 * client_token (the broker makes one per round: one intended launch),
 * the provider and the attempt group (batch, type, size), and tags the
 * instances at launch: a retry of the call never launches twice, a new
 * round launches anew, and every instance can be found by its request.
 * A call whose answer was lost (no answer, a reset, a 5xx: EC2 may have
 * launched) is looked up by its token before it is called failed, and
 * what the lookup finds is the call's answer.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "provisio/error.h"
#include "providers/aws/aws_strategy.h"
#include "providers/aws/template_fields.h"
#include "providers/aws/groups.h"

#define TAG_MANAGED "provisio:managed"
#define TAG_REQUEST "provisio:request-id"
#define TAG_TEMPLATE "provisio:template-id"
#define TAG_PROVIDER "provisio:provider"
/* CreateFleet's token on its instances: EC2 gives fleet instances a token
 * of its own, so a lost fleet answer is found by this tag instead. */
#define TAG_CLIENT_TOKEN "provisio:client-token"

/* What a launch needs, read from the template and the parameters. All
 * strings borrowed from the operation's JSON. */
typedef struct launch {
	const json_t *tmpl;
	const char *template_id, *request_id;
	const char *basis; /* what the tokens derive from: client_token, request_id or nonce */
	const char *image_id, *key_name, *user_data, *api, *price_type;
	const char *lt_id, *lt_version, *max_price;
	const char *instance_profile;
	json_t *types;   /* owned: [{"type":..,"weight":..}] in preference order */
	json_t *subnets; /* owned: array of subnet ids */
	json_t *groups;  /* owned: array of security group ids */
	json_t *tags;    /* owned: object */
	int64_t count;
	bool all_or_nothing;
	char nonce[40]; /* stands for the client token when the caller gave none */
	char lt_made[64]; /* the launch template made (or found) for EC2Fleet */
	char lt_name[128];
	const char *lt_how; /* created, existing, cached */
	char *user_data_buf;  /* owned: userDataScript's text */
	char price[32];       /* maxSpotPrice / spotPrice as EC2 takes it */
	char image_buf[128];  /* the image an SSM parameter named */
	char root_device[64]; /* the image's root device ("" = none asked) */
	int64_t on_demand;    /* RunInstances heterogeneous: how many on-demand */
	json_t *warnings;     /* owned: the template's warnings */
} launch;

static const char *tstr(const json_t *t, const char *key)
{
	return json_string_value(json_object_get(t, key));
}

static void launch_free(launch *l)
{
	json_decref(l->types);
	json_decref(l->subnets);
	json_decref(l->groups);
	json_decref(l->tags);
	json_decref(l->warnings);
	free(l->user_data_buf);
}

static int bad(pv_result *out, const char *fmt, const char *field)
{
	pv_result_fail(out, PV_ERR_INVALID_PARAMETERS, PV_CLASS_PERMANENT, fmt, field);
	return -1;
}

/* vmTypes (object type -> weight, or array) else vmType. */
static int read_types(launch *l, pv_result *out)
{
	l->types = json_array();
	json_t *vt = json_object_get(l->tmpl, "vmTypes");
	const char *k;
	json_t *v;
	size_t i;
	if (json_is_object(vt)) {
		json_object_foreach(vt, k, v)
			json_array_append_new(l->types, json_pack("{s:s, s:I}", "type", k, "weight",
								  json_is_integer(v) ? json_integer_value(v) : 1));
	} else if (json_is_array(vt)) {
		json_array_foreach(vt, i, v)
			if (json_is_string(v))
				json_array_append_new(l->types, json_pack("{s:s, s:i}", "type",
									  json_string_value(v), "weight", 1));
	}
	const char *one = tstr(l->tmpl, "vmType");
	if (one && json_array_size(l->types) == 0)
		json_array_append_new(l->types, json_pack("{s:s, s:i}", "type", one, "weight", 1));
	if (json_array_size(l->types) == 0)
		return bad(out, "template field '%s' (or vmTypes) is required", "vmType");
	return 0;
}

/* A list of ids: a string (comma separated list allowed) or an array. */
static json_t *read_ids(const json_t *s)
{
	json_t *ids = json_array();
	size_t i;
	json_t *v;
	if (json_is_array(s)) {
		json_array_foreach(s, i, v) if (json_is_string(v)) json_array_append(ids, v);
	} else if (json_is_string(s)) {
		char *buf = strdup(json_string_value(s)), *save = NULL;
		for (char *t = buf ? strtok_r(buf, ", ", &save) : NULL; t; t = strtok_r(NULL, ", ", &save))
			json_array_append_new(ids, json_string(t));
		free(buf);
	}
	return ids;
}

/* subnetId or subnetIds; securityGroupIds. */
static void read_subnets(launch *l)
{
	json_t *s = json_object_get(l->tmpl, "subnetId");
	l->subnets = read_ids(s ? s : json_object_get(l->tmpl, "subnetIds"));
	l->groups = read_ids(json_object_get(l->tmpl, "securityGroupIds"));
}

/* The template's instanceTags ("k=v;k2=v2") plus provisio's own. */
static int read_tags(aws *a, launch *l, pv_result *out)
{
	l->tags = json_object();
	const char *it = tstr(l->tmpl, "instanceTags");
	if (it) {
		char *buf = strdup(it), *save = NULL;
		for (char *t = strtok_r(buf, ";", &save); t; t = strtok_r(NULL, ";", &save)) {
			char *eq = strchr(t, '=');
			if (!eq || eq == t) {
				free(buf);
				return bad(out, "template field '%s' must look like k=v;k2=v2", "instanceTags");
			}
			*eq = '\0';
			json_object_set_new(l->tags, t, json_string(eq + 1));
		}
		free(buf);
	}
	/* tags: {k: v} or [{Key, Value}] (checked by aws_template_check) */
	json_t *tg = json_object_get(l->tmpl, "tags");
	const char *k;
	json_t *v;
	size_t i;
	if (json_is_object(tg))
		json_object_foreach(tg, k, v) json_object_set(l->tags, k, v);
	else if (json_is_array(tg))
		json_array_foreach(tg, i, v) json_object_set(l->tags, tstr(v, "Key"), json_object_get(v, "Value"));
	json_object_set_new(l->tags, TAG_MANAGED, json_string("true"));
	json_object_set_new(l->tags, TAG_PROVIDER, json_string(a->base.name));
	if (l->request_id)
		json_object_set_new(l->tags, TAG_REQUEST, json_string(l->request_id));
	if (l->template_id)
		json_object_set_new(l->tags, TAG_TEMPLATE, json_string(l->template_id));
	return 0;
}

/* Every field checked before any call (template_fields.c): errors refuse
 * the launch, all of them listed; warnings ride along in the result. */
static int check_template(launch *l, pv_result *out)
{
	json_t *problems = json_array();
	size_t errors = aws_template_check(l->tmpl, problems);
	if (errors) {
		char text[2048];
		aws_template_problems_text(problems, true, false, text, sizeof text);
		pv_result_fail(out, PV_ERR_INVALID_PARAMETERS, PV_CLASS_PERMANENT, "%s", text);
		pv_result_meta_set(out, "problems", problems);
		return -1;
	}
	l->warnings = problems;
	return 0;
}

/* maxSpotPrice, or its other name spotPrice: a string or a number. */
static void read_price(launch *l)
{
	json_t *p = json_object_get(l->tmpl, "maxSpotPrice");
	if (!p)
		p = json_object_get(l->tmpl, "spotPrice");
	if (json_is_string(p))
		snprintf(l->price, sizeof l->price, "%s", json_string_value(p));
	else if (json_is_number(p))
		snprintf(l->price, sizeof l->price, "%.6g", json_number_value(p));
	l->max_price = l->price[0] ? l->price : NULL;
}

static int read_launch(aws *a, const pv_operation *op, launch *l, pv_result *out)
{
	memset(l, 0, sizeof *l);
	json_t *p = op->params;
	json_t *jc = json_object_get(p, "count");
	if (jc && (!json_is_integer(jc) || json_integer_value(jc) < 1 || json_integer_value(jc) > 100000))
		return bad(out, "parameter '%s' must be an integer from 1 to 100000", "count");
	l->count = jc ? json_integer_value(jc) : 1;
	l->all_or_nothing = json_is_true(json_object_get(p, "all_or_nothing"));
	l->tmpl = aws_template(a, op, out);
	if (!l->tmpl)
		return -1;
	if (check_template(l, out) < 0)
		return -1;
	l->template_id = json_string_value(json_object_get(p, "template_id"));
	if (!l->template_id)
		l->template_id = tstr(l->tmpl, "templateId");
	l->request_id = json_string_value(json_object_get(p, "request_id"));
	json_t *ct = json_object_get(p, "client_token");
	if (ct && (!json_is_string(ct) || json_string_length(ct) == 0))
		return bad(out, "parameter '%s' must be a non-empty string", "client_token");
	l->basis = ct ? json_string_value(ct) : l->request_id;
	if (!l->basis) {
		/* Without a token or a request id there is no cross-call
		 * idempotency, but retries of this call still share one token. */
		pthread_mutex_lock(&a->lock);
		uint64_t r1 = pv_rng_next(&a->rng), r2 = pv_rng_next(&a->rng);
		pthread_mutex_unlock(&a->lock);
		snprintf(l->nonce, sizeof l->nonce, "op-%016llx%016llx", (unsigned long long)r1,
			 (unsigned long long)r2);
		l->basis = l->nonce;
	}
	l->image_id = tstr(l->tmpl, "imageId");
	l->key_name = tstr(l->tmpl, "keyName");
	l->user_data = tstr(l->tmpl, "userData");
	if (tstr(l->tmpl, "userDataScript")) {
		char why[512];
		l->user_data_buf = aws_read_user_data_script(tstr(l->tmpl, "userDataScript"), why, sizeof why);
		if (!l->user_data_buf) {
			pv_result_fail(out, PV_ERR_INVALID_PARAMETERS, PV_CLASS_PERMANENT,
				       "template field 'userDataScript': %s", why);
			return -1;
		}
		l->user_data = l->user_data_buf;
	}
	l->instance_profile = tstr(l->tmpl, "instanceProfile");
	l->api = tstr(l->tmpl, "providerApi");
	l->price_type = tstr(l->tmpl, "priceType");
	l->lt_id = tstr(l->tmpl, "launchTemplateId");
	l->lt_version = tstr(l->tmpl, "launchTemplateVersion");
	read_price(l);
	if (l->api && strcmp(l->api, "RunInstances") != 0 && strcmp(l->api, "EC2Fleet") != 0 &&
	    strcmp(l->api, "SpotFleet") != 0 && strcmp(l->api, "ASG") != 0)
		return bad(out, "template field '%s' must be RunInstances, EC2Fleet, SpotFleet or ASG", "providerApi");
	if (!aws_template_fleet_type(l->tmpl))
		return bad(out, "template field '%s' must be request or maintain for SpotFleet, instant, request "
				"or maintain for EC2Fleet, maintain for ASG; RunInstances takes none", "fleetType");
	if (l->api && strcmp(l->api, "SpotFleet") == 0 && !tstr(l->tmpl, "fleetRole") &&
	    !tstr(l->tmpl, "iamFleetRole"))
		return bad(out, "template field '%s' (the IAM role Spot Fleet launches with, its ARN) is required "
				"for providerApi SpotFleet", "fleetRole");
	if (l->price_type && strcmp(l->price_type, "ondemand") != 0 && strcmp(l->price_type, "spot") != 0 &&
	    strcmp(l->price_type, "heterogeneous") != 0)
		return bad(out, "template field '%s' must be ondemand, spot or heterogeneous", "priceType");
	if (read_types(l, out) < 0)
		return -1;
	read_subnets(l);
	if (l->price_type && strcmp(l->price_type, "heterogeneous") == 0) {
		json_t *pct = json_object_get(l->tmpl, "percentOnDemand");
		l->on_demand = l->count * (json_is_integer(pct) ? json_integer_value(pct) : 0) / 100;
	} else {
		l->on_demand = l->price_type && strcmp(l->price_type, "spot") == 0 ? 0 : l->count;
	}
	if (read_tags(a, l, out) < 0)
		return -1;
	bool fleet = (l->api && strcmp(l->api, "EC2Fleet") == 0) || aws_template_uses_group(l->tmpl);
	if (fleet && !l->lt_id && !l->image_id)
		return bad(out, "template field '%s' (or launchTemplateId) is required for a fleet or group",
			   "imageId");
	if (!fleet && !l->image_id && !l->lt_id)
		return bad(out, "template field '%s' is required for RunInstances", "imageId");
	return 0;
}

/* The instance TagSpecification: `tags`, and the (key, value) pair
 * `more_key` = `more_value` when more_key is not NULL. */
static void add_tags(aws_form *f, const char *prefix, const json_t *tags, const char *more_key,
		     const char *more_value)
{
	const char *k;
	json_t *v;
	int n = 0;
	aws_form_addf(f, "instance", "%s.ResourceType", prefix);
	json_object_foreach((json_t *)tags, k, v) {
		n++;
		aws_form_addf(f, k, "%s.Tag.%d.Key", prefix, n);
		aws_form_addf(f, json_string_value(v), "%s.Tag.%d.Value", prefix, n);
	}
	if (more_key) {
		n++;
		aws_form_addf(f, more_key, "%s.Tag.%d.Key", prefix, n);
		aws_form_addf(f, more_value, "%s.Tag.%d.Value", prefix, n);
	}
}

static void add_user_data(aws_form *f, const char *ud)
{
	if (!ud)
		return;
	char *b = aws_base64((const unsigned char *)ud, strlen(ud));
	aws_form_add(f, "UserData", b);
	free(b);
}

/* IamInstanceProfile.Arn for an ARN, .Name for a name. */
static void add_instance_profile(aws_form *f, const char *prefix, const char *profile)
{
	if (profile)
		aws_form_addf(f, profile, "%sIamInstanceProfile.%s", prefix,
			      strncmp(profile, "arn:", 4) == 0 ? "Arn" : "Name");
}

/* The root volume's size / type / iops / throughput as a mapping of the
 * image's root device (another device name would add a second volume). */
static void add_root_volume(aws_form *f, const char *prefix, const launch *l)
{
	if (!l->root_device[0])
		return;
	static const char *const keys[][2] = {{"rootDeviceVolumeSize", "VolumeSize"}, {"volumeType", "VolumeType"},
					      {"iops", "Iops"}, {"throughput", "Throughput"}};
	aws_form_addf(f, l->root_device, "%sBlockDeviceMapping.1.DeviceName", prefix);
	for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
		json_t *v = json_object_get(l->tmpl, keys[i][0]);
		char num[32];
		if (json_is_integer(v))
			snprintf(num, sizeof num, "%lld", (long long)json_integer_value(v));
		else if (json_is_string(v))
			snprintf(num, sizeof num, "%s", json_string_value(v));
		else
			continue;
		aws_form_addf(f, num, "%sBlockDeviceMapping.1.Ebs.%s", prefix, keys[i][1]);
	}
}

/* The RunInstances body of one batch: `subnet` may be NULL, `spot` asks
 * for spot instances. */
static void run_form(aws *a, const launch *l, aws_form *f, const char *type, int64_t n,
		     const char *token, bool dry_run, const char *subnet, bool spot)
{
	char num[24];
	(void)a;
	aws_form_init(f, "RunInstances");
	if (l->image_id)
		aws_form_add(f, "ImageId", l->image_id);
	if (l->lt_id) {
		aws_form_add(f, "LaunchTemplate.LaunchTemplateId", l->lt_id);
		aws_form_add(f, "LaunchTemplate.Version", l->lt_version ? l->lt_version : "$Default");
	}
	aws_form_add(f, "InstanceType", type);
	snprintf(num, sizeof num, "%lld", (long long)(l->all_or_nothing ? n : 1));
	aws_form_add(f, "MinCount", num);
	snprintf(num, sizeof num, "%lld", (long long)n);
	aws_form_add(f, "MaxCount", num);
	if (token)
		aws_form_add(f, "ClientToken", token);
	if (l->key_name)
		aws_form_add(f, "KeyName", l->key_name);
	if (subnet)
		aws_form_add(f, "SubnetId", subnet);
	size_t i;
	json_t *v;
	json_array_foreach(l->groups, i, v)
		aws_form_addf(f, json_string_value(v), "SecurityGroupId.%zu", i + 1);
	add_user_data(f, l->user_data);
	add_instance_profile(f, "", l->instance_profile);
	add_root_volume(f, "", l);
	if (spot) {
		aws_form_add(f, "InstanceMarketOptions.MarketType", "spot");
		if (l->max_price)
			aws_form_add(f, "InstanceMarketOptions.SpotOptions.MaxPrice", l->max_price);
	}
	add_tags(f, "TagSpecification.1", l->tags, NULL, NULL);
	if (dry_run)
		aws_form_add(f, "DryRun", "true");
}

typedef struct launch_acc {
	json_t *instances; /* array */
	json_t *errors;    /* array of {code, message, instance_type} */
	aws_call last;     /* the last failed call */
	aws_action last_act; /* its action */
	bool have_fail;
	unsigned calls, retries, throttled;
	unsigned found;    /* instances of lost answers found by their token */
	bool unknown;      /* a launch whose answer was lost could not be looked up */
} launch_acc;

/* Counts a finished call's attempts. */
static void acc_count(launch_acc *acc, const aws_call *c)
{
	acc->calls += c->attempts;
	acc->retries += c->attempts ? c->attempts - 1 : 0;
	acc->throttled += c->throttled;
}

/*
 * A launch call that failed after an attempt whose answer was lost: EC2
 * may have launched. Its instances are looked up by the call's token
 * (`filter` = `token`); what is found is the call's answer. Returns the
 * instances found (a new array, maybe empty: the launch did not happen),
 * or NULL when the lookup could not be made (no time left, or it failed
 * too): then nobody knows, and the result says so (outcome_unknown).
 */
static json_t *lost_launch(aws *a, const pv_operation *op, launch_acc *acc, const char *filter,
			   const char *token)
{
	if (op->deadline_ns && pv_clock_now(a->clock) >= op->deadline_ns) {
		acc->unknown = true;
		return NULL;
	}
	const char *const filters[] = {filter, token, NULL};
	json_t *list = json_array();
	unsigned calls = 0;
	pv_result r = PV_RESULT_INIT;
	bool ok = aws_describe_filters(a, op, filters, list, &calls, &r);
	acc->calls += calls;
	pv_result_clear(&r);
	if (!ok) {
		json_decref(list);
		acc->unknown = true;
		return NULL;
	}
	acc->found += (unsigned)json_array_size(list);
	return list;
}

static void record_failure(launch_acc *acc, aws_call *c, const char *type)
{
	json_array_append_new(acc->errors, json_pack("{s:s, s:s, s:s?}", "code",
						     c->ec2_code[0] ? c->ec2_code : "TransportError",
						     "message", c->ec2_message ? c->ec2_message : c->reply.error,
						     "instance_type", type));
	if (acc->have_fail)
		aws_call_free(&acc->last);
	acc->last = *c;
	acc->have_fail = true;
	memset(c, 0, sizeof *c);
}

/* One RunInstances call; returns instances launched (>0), 0 on failure. */
static int64_t run_batch(aws *a, const launch *l, const pv_operation *op, launch_acc *acc,
			 const char *type, int64_t n, int batch, const char *subnet, bool spot)
{
	char group[320], token[AWS_CLIENT_TOKEN_MAX + 1];
	int w = snprintf(group, sizeof group, "run:%d:%s:%lld", batch, type, (long long)n);
	if (subnet || spot)
		snprintf(group + w, sizeof group - (size_t)w, ":%s:%s", subnet ? subnet : "", spot ? "spot" : "");
	aws_client_token(token, l->basis, a->base.name, group);
	aws_form f;
	run_form(a, l, &f, type, n, token, false, subnet, spot);
	aws_call c;
	if (f.oom) {
		aws_form_free(&f);
		return 0;
	}
	bool ok = aws_do(a, ACT_RUN_INSTANCES, f.buf, op->deadline_ns, &c);
	aws_form_free(&f);
	acc_count(acc, &c);
	json_t *got = NULL;
	if (!ok && c.maybe_ran)
		got = lost_launch(a, op, acc, "client-token", token);
	if (!ok && json_array_size(got) == 0) {
		json_decref(got);
		record_failure(acc, &c, type);
		return 0;
	}
	if (ok)
		got = aws_xml_instances(c.reply.body, c.reply.len, NULL);
	int64_t k = got ? (int64_t)json_array_size(got) : 0;
	if (got)
		json_array_extend(acc->instances, got);
	json_decref(got);
	aws_call_free(&c);
	return k;
}

/* Batches through RunInstances; on a capacity error moves on to the next
 * instance type of the template. */
/* `want` instances of one market (on-demand or spot) through RunInstances
 * batches, spread over the subnets in turn (one subnet a batch). A
 * capacity error moves to the next subnet, and when every subnet failed
 * for a type, to the next type. Returns how many launched; false in *go_on
 * when a failure other than capacity stops the launch. */
static int64_t run_market(aws *a, const launch *l, const pv_operation *op, launch_acc *acc, int64_t want,
			  bool spot, int *batch, bool *go_on)
{
	int64_t left = want;
	size_t t = 0, nsub = json_array_size(l->subnets), sub = 0, failed_subnets = 0;
	while (left > 0 && t < json_array_size(l->types)) {
		const char *type = json_string_value(json_object_get(json_array_get(l->types, t), "type"));
		const char *subnet = nsub ? json_string_value(json_array_get(l->subnets, sub % nsub)) : NULL;
		int64_t n = left < a->max_per_call ? left : a->max_per_call;
		int64_t got = run_batch(a, l, op, acc, type, n, *batch, subnet, spot);
		sub++;
		if (got == 0) {
			if (acc->last.cls != PV_CLASS_CAPACITY || acc->last.deadline_hit) {
				*go_on = false;
				break;
			}
			/* capacity: the next subnet, then the next type */
			if (++failed_subnets >= (nsub ? nsub : 1)) {
				t++;
				failed_subnets = 0;
			}
			continue;
		}
		failed_subnets = 0;
		left -= got;
		(*batch)++;
		if (got < n && nsub <= 1)
			t++; /* EC2 gave what it had of this type */
	}
	return want - left;
}

/* Batches through RunInstances: the on-demand part, then the spot part
 * (priceType spot: all; heterogeneous: what percentOnDemand leaves). */
static void create_run(aws *a, const launch *l, const pv_operation *op, launch_acc *acc)
{
	int batch = 0;
	bool go_on = true;
	if (l->on_demand > 0)
		run_market(a, l, op, acc, l->on_demand, false, &batch, &go_on);
	if (go_on && l->count - l->on_demand > 0)
		run_market(a, l, op, acc, l->count - l->on_demand, true, &batch, &go_on);
}

static const char *spot_strategy(const char *s)
{
	if (!s)
		return "price-capacity-optimized";
	if (strcmp(s, "lowestPrice") == 0)
		return "lowest-price";
	if (strcmp(s, "capacityOptimized") == 0)
		return "capacity-optimized";
	if (strcmp(s, "priceCapacityOptimized") == 0)
		return "price-capacity-optimized";
	return s; /* already in EC2's spelling (diversified, ...) */
}

static void fleet_form(aws *a, const launch *l, aws_form *f, const char *token, bool dry_run)
{
	char num[32];
	aws_form_init(f, "CreateFleet");
	aws_form_add(f, "Type", "instant");
	if (token)
		aws_form_add(f, "ClientToken", token);
	const char *lt = "LaunchTemplateConfigs.1";
	aws_form_addf(f, l->lt_id, "%s.LaunchTemplateSpecification.LaunchTemplateId", lt);
	aws_form_addf(f, l->lt_version ? l->lt_version : "$Default",
		      "%s.LaunchTemplateSpecification.Version", lt);
	int k = 0;
	size_t nsub = json_array_size(l->subnets), i;
	json_t *ty;
	json_array_foreach(l->types, i, ty) {
		for (size_t s = 0; s < (nsub ? nsub : 1); s++) {
			k++;
			aws_form_addf(f, json_string_value(json_object_get(ty, "type")),
				      "%s.Overrides.%d.InstanceType", lt, k);
			snprintf(num, sizeof num, "%lld", (long long)json_integer_value(json_object_get(ty, "weight")));
			aws_form_addf(f, num, "%s.Overrides.%d.WeightedCapacity", lt, k);
			if (nsub)
				aws_form_addf(f, json_string_value(json_array_get(l->subnets, s)),
					      "%s.Overrides.%d.SubnetId", lt, k);
			if (l->max_price)
				aws_form_addf(f, l->max_price, "%s.Overrides.%d.MaxPrice", lt, k);
		}
	}
	const char *pt = l->price_type ? l->price_type : "ondemand";
	snprintf(num, sizeof num, "%lld", (long long)l->count);
	aws_form_add(f, "TargetCapacitySpecification.TotalTargetCapacity", num);
	if (strcmp(pt, "heterogeneous") == 0) {
		json_t *pct = json_object_get(l->tmpl, "percentOnDemand");
		int64_t od = l->count * (json_is_integer(pct) ? json_integer_value(pct) : 0) / 100;
		snprintf(num, sizeof num, "%lld", (long long)od);
		aws_form_add(f, "TargetCapacitySpecification.OnDemandTargetCapacity", num);
		snprintf(num, sizeof num, "%lld", (long long)(l->count - od));
		aws_form_add(f, "TargetCapacitySpecification.SpotTargetCapacity", num);
	}
	aws_form_add(f, "TargetCapacitySpecification.DefaultTargetCapacityType",
		     strcmp(pt, "ondemand") == 0 ? "on-demand" : "spot");
	if (strcmp(pt, "ondemand") != 0)
		aws_form_add(f, "SpotOptions.AllocationStrategy",
			     spot_strategy(tstr(l->tmpl, "allocationStrategy")));
	const char *ods = tstr(l->tmpl, "allocationStrategyOnDemand");
	aws_form_add(f, "OnDemandOptions.AllocationStrategy",
		     ods && strcmp(ods, "prioritized") == 0 ? "prioritized" : "lowest-price");
	add_tags(f, "TagSpecification.1", l->tags, token ? TAG_CLIENT_TOKEN : NULL, token);
	if (dry_run)
		aws_form_add(f, "DryRun", "true");
	(void)a;
}

/* ---- a launch template on the fly (EC2Fleet without launchTemplateId) ---------- */

/* CreateLaunchTemplate's input, from the EC2 model (botocore ec2
 * 2016-11-15): the members we send, with their ec2Query names. */
static const char lt_model_text[] =
	"{\"CreateLaunchTemplateRequest\": {\"type\": \"structure\", \"members\": {"
	" \"DryRun\": {\"target\": \"Boolean\"}, \"ClientToken\": {\"target\": \"String\"},"
	" \"LaunchTemplateName\": {\"target\": \"String\"},"
	" \"LaunchTemplateData\": {\"target\": \"RequestLaunchTemplateData\"}}},"
	" \"RequestLaunchTemplateData\": {\"type\": \"structure\", \"members\": {"
	" \"ImageId\": {\"target\": \"String\"}, \"InstanceType\": {\"target\": \"String\"},"
	" \"KeyName\": {\"target\": \"String\"}, \"UserData\": {\"target\": \"String\"},"
	" \"SecurityGroupIds\": {\"target\": \"SecurityGroupIdStringList\","
	" \"traits\": {\"ec2QueryName\": \"SecurityGroupId\"}},"
	" \"IamInstanceProfile\": {\"target\": \"LaunchTemplateIamInstanceProfileSpecificationRequest\"},"
	" \"BlockDeviceMappings\": {\"target\": \"LaunchTemplateBlockDeviceMappingRequestList\","
	" \"traits\": {\"ec2QueryName\": \"BlockDeviceMapping\"}},"
	" \"TagSpecifications\": {\"target\": \"LaunchTemplateTagSpecificationRequestList\","
	" \"traits\": {\"ec2QueryName\": \"TagSpecification\"}}}},"
	" \"SecurityGroupIdStringList\": {\"type\": \"list\", \"member\": {\"target\": \"String\"}},"
	" \"LaunchTemplateIamInstanceProfileSpecificationRequest\": {\"type\": \"structure\", \"members\": {"
	" \"Arn\": {\"target\": \"String\"}, \"Name\": {\"target\": \"String\"}}},"
	" \"LaunchTemplateBlockDeviceMappingRequestList\": {\"type\": \"list\","
	" \"member\": {\"target\": \"LaunchTemplateBlockDeviceMappingRequest\"}},"
	" \"LaunchTemplateBlockDeviceMappingRequest\": {\"type\": \"structure\", \"members\": {"
	" \"DeviceName\": {\"target\": \"String\"},"
	" \"Ebs\": {\"target\": \"LaunchTemplateEbsBlockDeviceRequest\"}}},"
	" \"LaunchTemplateEbsBlockDeviceRequest\": {\"type\": \"structure\", \"members\": {"
	" \"VolumeSize\": {\"target\": \"Integer\"}, \"VolumeType\": {\"target\": \"String\"},"
	" \"Iops\": {\"target\": \"Integer\"}, \"Throughput\": {\"target\": \"Integer\"}}},"
	" \"LaunchTemplateTagSpecificationRequestList\": {\"type\": \"list\","
	" \"member\": {\"target\": \"LaunchTemplateTagSpecificationRequest\"}},"
	" \"LaunchTemplateTagSpecificationRequest\": {\"type\": \"structure\", \"members\": {"
	" \"ResourceType\": {\"target\": \"String\"},"
	" \"Tags\": {\"target\": \"TagList\", \"traits\": {\"ec2QueryName\": \"Tag\"}}}},"
	" \"TagList\": {\"type\": \"list\", \"member\": {\"target\": \"Tag\"}},"
	" \"Tag\": {\"type\": \"structure\", \"members\": {\"Key\": {\"target\": \"String\"},"
	" \"Value\": {\"target\": \"String\"}}}}";

/* LaunchTemplateData from the template: what does not change between
 * requests (the request id tag goes on CreateFleet itself). A fleet or
 * group that is not instant can tag its instances only from the launch
 * template: its data carries the request's tag (and its name the group's
 * mark: one template a group, lt_name_of). */
static json_t *lt_data(const launch *l)
{
	json_t *d = json_pack("{s:s, s:s}", "ImageId", l->image_id, "InstanceType",
			      json_string_value(json_object_get(json_array_get(l->types, 0), "type")));
	if (l->key_name)
		json_object_set_new(d, "KeyName", json_string(l->key_name));
	if (l->user_data) {
		char *b = aws_base64((const unsigned char *)l->user_data, strlen(l->user_data));
		json_object_set_new(d, "UserData", json_string(b ? b : ""));
		free(b);
	}
	if (json_array_size(l->groups))
		json_object_set_new(d, "SecurityGroupIds", json_deep_copy(l->groups));
	if (l->instance_profile)
		json_object_set_new(d, "IamInstanceProfile",
				    json_pack("{s:s}", strncmp(l->instance_profile, "arn:", 4) == 0 ? "Arn" : "Name",
					      l->instance_profile));
	if (l->root_device[0]) {
		json_t *ebs = json_object();
		static const char *const keys[][2] = {{"rootDeviceVolumeSize", "VolumeSize"},
						      {"volumeType", "VolumeType"},
						      {"iops", "Iops"},
						      {"throughput", "Throughput"}};
		for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
			if (json_object_get(l->tmpl, keys[i][0]))
				json_object_set(ebs, keys[i][1], json_object_get(l->tmpl, keys[i][0]));
		json_object_set_new(d, "BlockDeviceMappings",
				    json_pack("[{s:s, s:o}]", "DeviceName", l->root_device, "Ebs", ebs));
	}
	json_t *tags = json_array();
	const char *k;
	json_t *v;
	bool per_request = aws_template_uses_group(l->tmpl);
	json_object_foreach(l->tags, k, v)
		if (per_request || strcmp(k, TAG_REQUEST) != 0)
			json_array_append_new(tags, json_pack("{s:s, s:O}", "Key", k, "Value", v));
	json_object_set_new(d, "TagSpecifications",
			    json_pack("[{s:s, s:o}]", "ResourceType", "instance", "Tags", tags));
	return d;
}

/* provisio-<template id>-<hash of the data>: the same template with the
 * same parameters names the same launch template, in any process; other
 * parameters make another one instead of silently changing the first.
 * A group's launch template is its alone (deleted when the group ends,
 * while another group of the same data may still launch from its own):
 * `mark` (aws_group_lt_mark of the group's token) ends its name; NULL for
 * EC2Fleet instant, which shares one and never deletes it. At most
 * 9 + 64 + 17 + 17 = 107 characters (EC2 takes 128). */
static void lt_name_of(launch *l, const json_t *data, const char *mark)
{
	char *text = json_dumps(data, JSON_SORT_KEYS | JSON_COMPACT);
	uint64_t h = pv_fnv1a64(PV_FNV64_OFFSET, text ? text : "", text ? strlen(text) : 0);
	free(text);
	char id[80];
	size_t n = 0;
	for (const char *p = l->template_id ? l->template_id : "template"; *p && n < 64; p++) {
		char c = *p;
		bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
			  c == '-' || c == '_' || c == '.' || c == '(' || c == ')' || c == '/';
		id[n++] = ok ? c : '_';
	}
	id[n] = '\0';
	snprintf(l->lt_name, sizeof l->lt_name, "provisio-%s-%016llx%s", id, (unsigned long long)h, mark ? mark : "");
}

/* The CreateLaunchTemplate body. NULL-free: f.oom tells. */
static void lt_form(const launch *l, json_t *data, const char *token, bool dry_run, aws_form *f)
{
	json_t *model = json_loads(lt_model_text, 0, NULL);
	json_t *req = json_pack("{s:s, s:O}", "LaunchTemplateName", l->lt_name, "LaunchTemplateData", data);
	if (token)
		json_object_set_new(req, "ClientToken", json_string(token));
	if (dry_run)
		json_object_set_new(req, "DryRun", json_true());
	aws_form_init(f, "CreateLaunchTemplate");
	if (!model || aws_query_add(f, model, "CreateLaunchTemplateRequest", "", req) < 0)
		f->oom = true;
	json_decref(req);
	json_decref(model);
}

/* The id of the launch template named l->lt_name, which exists already. */
static bool lt_lookup(aws *a, launch *l, const pv_operation *op, launch_acc *acc)
{
	aws_form f;
	aws_form_init(&f, "DescribeLaunchTemplates");
	aws_form_add(&f, "LaunchTemplateName.1", l->lt_name);
	aws_call c;
	bool ok = !f.oom && aws_do(a, ACT_DESCRIBE_LAUNCH_TEMPLATES, f.buf, op->deadline_ns, &c);
	aws_form_free(&f);
	acc_count(acc, &c);
	if (ok)
		aws_xml_launch_template_id(c.reply.body, c.reply.len, l->lt_made, sizeof l->lt_made);
	if (!ok || !l->lt_made[0]) {
		record_failure(acc, &c, NULL);
		acc->last_act = ACT_DESCRIBE_LAUNCH_TEMPLATES;
		return false;
	}
	aws_call_free(&c);
	return true;
}

/* Sets l->lt_id to a launch template with the template's parameters:
 * known to this provider, made now, or made before (AlreadyExists) and
 * looked up. The ClientToken makes a retried CreateLaunchTemplate
 * idempotent; the name makes the next request reuse it (instant), or the
 * retried launch of one group find its own (`mark`, see lt_name_of). */
static bool ensure_launch_template(aws *a, launch *l, const pv_operation *op, launch_acc *acc, const char *mark)
{
	json_t *data = lt_data(l);
	lt_name_of(l, data, mark);
	pthread_mutex_lock(&a->lock);
	const char *known = json_string_value(json_object_get(a->lt_cache, l->lt_name));
	snprintf(l->lt_made, sizeof l->lt_made, "%s", known ? known : "");
	pthread_mutex_unlock(&a->lock);
	l->lt_how = "cached";
	bool ok = l->lt_made[0] != '\0';
	if (!ok) {
		char group[160], token[AWS_CLIENT_TOKEN_MAX + 1];
		snprintf(group, sizeof group, "lt:%s", l->lt_name);
		aws_client_token(token, l->basis, a->base.name, group);
		aws_form f;
		lt_form(l, data, token, false, &f);
		aws_call c;
		ok = !f.oom && aws_do(a, ACT_CREATE_LAUNCH_TEMPLATE, f.buf, op->deadline_ns, &c);
		aws_form_free(&f);
		acc_count(acc, &c);
		l->lt_how = "created";
		if (ok) {
			aws_xml_launch_template_id(c.reply.body, c.reply.len, l->lt_made, sizeof l->lt_made);
			aws_call_free(&c);
		} else if (strcmp(c.ec2_code, "InvalidLaunchTemplateName.AlreadyExistsException") == 0) {
			aws_call_free(&c);
			l->lt_how = "existing";
			ok = lt_lookup(a, l, op, acc);
		} else {
			record_failure(acc, &c, NULL);
			acc->last_act = ACT_CREATE_LAUNCH_TEMPLATE;
		}
	}
	json_decref(data);
	if (!ok || !l->lt_made[0])
		return false;
	pthread_mutex_lock(&a->lock);
	json_object_set_new(a->lt_cache, l->lt_name, json_string(l->lt_made));
	pthread_mutex_unlock(&a->lock);
	l->lt_id = l->lt_made;
	return true;
}

static void create_fleet(aws *a, const launch *l, const pv_operation *op, launch_acc *acc,
			 json_t *data)
{
	char token[AWS_CLIENT_TOKEN_MAX + 1];
	aws_client_token(token, l->basis, a->base.name, "fleet:0");
	aws_form f;
	fleet_form(a, l, &f, token, false);
	aws_call c;
	bool ok = !f.oom && aws_do(a, ACT_CREATE_FLEET, f.buf, op->deadline_ns, &c);
	aws_form_free(&f);
	acc_count(acc, &c);
	if (!ok && c.maybe_ran) {
		json_t *got = lost_launch(a, op, acc, "tag:" TAG_CLIENT_TOKEN, token);
		if (json_array_size(got)) {
			json_array_extend(acc->instances, got);
			json_decref(got);
			aws_call_free(&c);
			return;
		}
		json_decref(got);
	}
	if (!ok) {
		record_failure(acc, &c, NULL);
		return;
	}
	json_t *fl = aws_xml_fleet(c.reply.body, c.reply.len);
	if (fl) {
		json_array_extend(acc->instances, json_object_get(fl, "instances"));
		json_array_extend(acc->errors, json_object_get(fl, "errors"));
		json_object_set(data, "fleet_id", json_object_get(fl, "fleet_id"));
		/* Keep the first per-override error as the call's verdict when
		 * nothing launched. */
		json_t *e0 = json_array_get(json_object_get(fl, "errors"), 0);
		if (e0 && json_array_size(acc->instances) == 0) {
			snprintf(c.ec2_code, sizeof c.ec2_code, "%s", tstr(e0, "code") ? tstr(e0, "code") : "");
			free(c.ec2_message);
			c.ec2_message = tstr(e0, "message") ? strdup(tstr(e0, "message")) : NULL;
			c.cls = aws_error_class(c.ec2_code, 400);
			c.ok = false;
			acc->last = c;
			acc->have_fail = true;
			memset(&c, 0, sizeof c);
		}
	}
	json_decref(fl);
	aws_call_free(&c);
}

/* The result's word on the launch template made or found for the fleet. */
static void note_launch_template(json_t *data, const launch *l)
{
	json_object_set_new(data, "launch_template", json_pack("{s:s, s:s, s:s}", "id", l->lt_made, "name",
							       l->lt_name, "source", l->lt_how));
}

static bool lt_not_found(const launch_acc *acc)
{
	const char *code = acc->have_fail ? acc->last.ec2_code : "";
	return strncmp(code, "InvalidLaunchTemplate", 21) == 0 && strstr(code, "NotFound");
}

/* Forgets the failed CreateFleet, to try again. */
static void acc_forget_failure(launch_acc *acc)
{
	aws_call_free(&acc->last);
	acc->have_fail = false;
	json_array_clear(acc->errors);
}

/*
 * CreateFleet with the launch template, tried again when EC2 does not know
 * a template this provider made or found itself: one made a moment ago may
 * not be visible yet (EC2 is eventually consistent: wait, within the
 * deadline, and retry), and one cached from an earlier request may have
 * been deleted by someone else (forget it and make it anew). A template
 * named by the provisio template itself is the user's: its NotFound stands.
 */
static void fleet_launch(aws *a, launch *l, const pv_operation *op, launch_acc *acc, json_t *data)
{
	for (unsigned attempt = 0;; attempt++) {
		create_fleet(a, l, op, acc, data);
		if (!l->lt_how || !lt_not_found(acc) || attempt >= (unsigned)a->max_retries)
			return;
		if (strcmp(l->lt_how, "cached") == 0) {
			pthread_mutex_lock(&a->lock);
			json_object_del(a->lt_cache, l->lt_name);
			pthread_mutex_unlock(&a->lock);
			acc_forget_failure(acc);
			if (!ensure_launch_template(a, l, op, acc, NULL))
				return;
			note_launch_template(data, l);
			continue;
		}
		uint64_t d = aws_backoff_ns(a, attempt);
		if (op->deadline_ns && pv_clock_now(a->clock) + d >= op->deadline_ns)
			return;
		acc_forget_failure(acc);
		pv_clock_sleep(a->clock, d);
	}
}

/* Terminates what an all-or-nothing request launched before it failed. */
static void roll_back(aws *a, const pv_operation *op, json_t *instances)
{
	json_t *ids = json_array();
	size_t i;
	json_t *v;
	json_array_foreach(instances, i, v) json_array_append(ids, json_object_get(v, "instance_id"));
	json_t *params = json_pack("{s:o}", "instance_ids", ids);
	pv_operation t = {.type = PV_OP_TERMINATE_INSTANCES, .params = params, .deadline_ns = op->deadline_ns};
	pv_result r = PV_RESULT_INIT;
	aws_op_terminate(a, &t, &r);
	pv_result_clear(&r);
	json_decref(params);
}

/* Capacity units the instances stand for: CreateFleet counts weighted
 * capacity (an instance of weight 2 is two units), RunInstances one each. */
static int64_t units_of(const launch *l, json_t *instances, bool fleet)
{
	if (!fleet)
		return (int64_t)json_array_size(instances);
	int64_t units = 0;
	size_t i, k;
	json_t *in, *ty;
	json_array_foreach(instances, i, in) {
		int64_t w = 1;
		const char *type = json_string_value(json_object_get(in, "instance_type"));
		json_array_foreach(l->types, k, ty)
			if (type && strcmp(type, json_string_value(json_object_get(ty, "type"))) == 0)
				w = json_integer_value(json_object_get(ty, "weight"));
		units += w > 0 ? w : 1;
	}
	return units;
}

/* What the caller needs to judge the outcome: calls and retries, whether
 * EC2 throttled us, lost answers found by their token, and whether a lost
 * answer could not be looked up (instances may exist that this result does
 * not list: look for them by the request's tag). */
static void launch_meta(const launch_acc *acc, pv_result *out)
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

static void finish_create(aws *a, const launch *l, const pv_operation *op, launch_acc *acc,
			  json_t *data, pv_result *out)
{
	bool fleet = l->api && strcmp(l->api, "EC2Fleet") == 0;
	int64_t n = units_of(l, acc->instances, fleet);
	aws_annotate(a, acc->instances);
	if (n == 0 || (l->all_or_nothing && n < l->count)) {
		if (n > 0)
			roll_back(a, op, acc->instances);
		if (acc->have_fail)
			aws_call_fail(a, acc->last_act, &acc->last, out);
		else
			pv_result_fail(out, PV_ERR_CAPACITY, PV_CLASS_CAPACITY,
				       "aws '%s': launched %lld of %lld instances (all or nothing)",
				       a->base.name, (long long)n, (long long)l->count);
		pv_result_meta_set(out, "errors", json_incref(acc->errors));
		pv_result_meta_set(out, "requested", json_integer(l->count));
		launch_meta(acc, out);
		json_decref(data);
		return;
	}
	json_t *ids = json_array();
	size_t i;
	json_t *v;
	json_array_foreach(acc->instances, i, v) json_array_append(ids, json_object_get(v, "instance_id"));
	json_object_set(data, "instances", acc->instances);
	json_object_set_new(data, "instance_ids", ids);
	json_object_set_new(data, "count", json_integer((json_int_t)json_array_size(acc->instances)));
	json_object_set_new(data, "fulfilled_capacity", json_integer(n));
	json_object_set_new(data, "requested", json_integer(l->count));
	json_object_set_new(data, "partial", json_boolean(n < l->count));
	json_object_set(data, "errors", acc->errors);
	pv_result_ok(out, data);
	launch_meta(acc, out);
}

static void dry_run_create(aws *a, const launch *l, const pv_operation *op, pv_result *out);

/* What the fields need from AWS before the launch call: the image an SSM
 * parameter names, and the image's root device for the root volume. */
static int resolve_image(aws *a, const pv_operation *op, launch *l, pv_result *out)
{
	const char *ssm = aws_image_ssm_name(l->image_id);
	if (ssm) {
		if (aws_ssm_image(a, op, ssm, l->image_buf, sizeof l->image_buf, out) < 0)
			return -1;
		l->image_id = l->image_buf;
	}
	static const char *const volume[] = {"rootDeviceVolumeSize", "volumeType", "iops", "throughput"};
	const char *asked = NULL;
	for (size_t i = 0; i < sizeof volume / sizeof volume[0] && !asked; i++)
		if (json_object_get(l->tmpl, volume[i]))
			asked = volume[i];
	if (!asked)
		return 0;
	if (!l->image_id)
		return bad(out, "template field '%s' needs imageId: the root device of a launch template's "
				"image is not looked up (set the volume in the launch template)", asked);
	return aws_image_root_device(a, op, l->image_id, l->root_device, sizeof l->root_device, out);
}

/* The template's warnings, in the result: nothing is dropped unsaid. */
static void note_warnings(const launch *l, pv_result *out)
{
	if (json_array_size(l->warnings))
		pv_result_meta_set(out, "template_warnings", json_incref(l->warnings));
}

/* The mark of the group this launch makes (aws_group_lt_mark). */
static void group_mark(const aws *a, const launch *l, char mark[AWS_LT_MARK_SIZE])
{
	char token[AWS_CLIENT_TOKEN_MAX + 1];
	aws_group_token(a, l->api, aws_template_fleet_type(l->tmpl), l->basis, token);
	aws_group_lt_mark(token, mark);
}

/* SpotFleet, ASG, EC2Fleet request / maintain: the launch template (the
 * template's, or one made from its data for this group alone), then
 * groups.c. */
static void create_in_group(aws *a, launch *l, const pv_operation *op, pv_result *out)
{
	launch_acc acc = {.instances = json_array(), .errors = json_array(), .last_act = ACT_CREATE_LAUNCH_TEMPLATE};
	json_t *data = json_pack("{s:s}", "api", l->api);
	char mark[AWS_LT_MARK_SIZE];
	group_mark(a, l, mark);
	if (!l->lt_id && ensure_launch_template(a, l, op, &acc, mark))
		note_launch_template(data, l);
	if (!l->lt_id) {
		finish_create(a, l, op, &acc, data, out); /* the launch template's failure */
	} else {
		aws_group_launch g = {
			.api = l->api, .fleet_type = aws_template_fleet_type(l->tmpl), .tmpl = l->tmpl,
			.template_id = l->template_id, .request_id = l->request_id, .basis = l->basis,
			.lt_id = l->lt_id, .lt_version = l->lt_version, .types = l->types, .subnets = l->subnets,
			.tags = l->tags, .price_type = l->price_type, .max_price = l->max_price, .count = l->count,
			.all_or_nothing = l->all_or_nothing,
			.lt_owned = l->lt_how != NULL, .lt_name = l->lt_name,
		};
		aws_group_create(a, op, &g, data, out);
		if (acc.calls)
			pv_result_meta_set(out, "api_calls", json_integer(acc.calls + json_integer_value(json_object_get(
										     pv_result_meta(out), "api_calls"))));
	}
	json_decref(acc.instances);
	json_decref(acc.errors);
	if (acc.have_fail)
		aws_call_free(&acc.last);
}

void aws_op_create(aws *a, const pv_operation *op, pv_result *out)
{
	launch l;
	if (read_launch(a, op, &l, out) < 0 || resolve_image(a, op, &l, out) < 0) {
		launch_free(&l);
		return;
	}
	if (pv_operation_dry_run(op)) {
		dry_run_create(a, &l, op, out);
		launch_free(&l);
		return;
	}
	if (aws_template_uses_group(l.tmpl)) {
		create_in_group(a, &l, op, out);
		note_warnings(&l, out);
		launch_free(&l);
		return;
	}
	bool fleet = l.api && strcmp(l.api, "EC2Fleet") == 0;
	launch_acc acc = {.instances = json_array(), .errors = json_array(),
			  .last_act = fleet ? ACT_CREATE_FLEET : ACT_RUN_INSTANCES};
	json_t *data = json_object();
	json_object_set_new(data, "api", json_string(fleet ? "EC2Fleet" : "RunInstances"));
	if (fleet && !l.lt_id && ensure_launch_template(a, &l, op, &acc, NULL))
		note_launch_template(data, &l);
	if (fleet && l.lt_id)
		fleet_launch(a, &l, op, &acc, data);
	else if (!fleet)
		create_run(a, &l, op, &acc);
	finish_create(a, &l, op, &acc, data, out);
	note_warnings(&l, out);
	json_decref(acc.instances);
	json_decref(acc.errors);
	if (acc.have_fail)
		aws_call_free(&acc.last);
	launch_free(&l);
}

/* ---- DryRun ------------------------------------------------------------------ */

/* Asks EC2 whether the launch would be allowed: DryRunOperation = yes. */
static bool dry_run_call(aws *a, const launch *l, const pv_operation *op, pv_result *out)
{
	aws_form f;
	bool fleet = l->api && strcmp(l->api, "EC2Fleet") == 0;
	const char *type = json_string_value(json_object_get(json_array_get(l->types, 0), "type"));
	aws_action act = fleet ? ACT_CREATE_FLEET : ACT_RUN_INSTANCES;
	if ((fleet || aws_template_uses_group(l->tmpl)) && !l->lt_id) {
		/* No launch template yet: ask whether we could make one. */
		json_t *data = lt_data(l);
		launch named = *l;
		char mark[AWS_LT_MARK_SIZE];
		bool group = aws_template_uses_group(l->tmpl);
		if (group)
			group_mark(a, l, mark);
		lt_name_of(&named, data, group ? mark : NULL);
		lt_form(&named, data, NULL, true, &f);
		json_decref(data);
		act = ACT_CREATE_LAUNCH_TEMPLATE;
	} else if (fleet) {
		fleet_form(a, l, &f, NULL, true);
	} else {
		run_form(a, l, &f, type, 1, NULL, true,
			 json_array_size(l->subnets) ? json_string_value(json_array_get(l->subnets, 0)) : NULL,
			 l->on_demand < l->count);
	}
	aws_call c;
	bool ok = !f.oom && aws_do(a, act, f.buf, op->deadline_ns, &c);
	aws_form_free(&f);
	bool valid = !ok && strcmp(c.ec2_code, "DryRunOperation") == 0;
	if (!valid) {
		if (ok)
			pv_result_fail(out, PV_ERR_INTERNAL, PV_CLASS_INTERNAL,
				       "aws '%s': a DryRun call launched instead of answering DryRunOperation",
				       a->base.name);
		else
			aws_call_fail(a, act, &c, out);
	}
	aws_call_free(&c);
	return valid;
}

static void dry_run_create(aws *a, const launch *l, const pv_operation *op, pv_result *out)
{
	if (dry_run_call(a, l, op, out))
		pv_result_ok(out, json_pack("{s:b, s:I, s:I}", "dry_run", 1, "would_create",
					    (json_int_t)l->count, "requested", (json_int_t)l->count));
}

void aws_op_validate(aws *a, const pv_operation *op, pv_result *out)
{
	launch l;
	if (read_launch(a, op, &l, out) < 0) {
		launch_free(&l);
		return;
	}
	/* check_only: the fields alone, no call (templates validate without
	 * --dry-run) */
	bool call = !json_is_true(json_object_get(op->params, "check_only"));
	if (aws_template_uses_group(l.tmpl))
		atomic_store(&a->group_templates, true);
	if (call && resolve_image(a, op, &l, out) < 0) {
		launch_free(&l);
		return;
	}
	if (!call || dry_run_call(a, &l, op, out))
		pv_result_ok(out, json_pack("{s:b, s:s?, s:b, s:O}", "valid", 1, "template_id", l.template_id,
					    "dry_run", call, "problems", l.warnings));
	else if (strcmp(out->error_code, PV_ERR_EXECUTION_ERROR) == 0 &&
		 out->error_class == PV_CLASS_PERMANENT)
		snprintf(out->error_code, sizeof out->error_code, "%s", PV_ERR_INVALID_PARAMETERS);
	launch_free(&l);
}
