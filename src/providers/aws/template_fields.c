/*
 * template_fields.c - every field of a Host Factory / ORB AWS template,
 * with what the aws provider does with it.
 *
 * A template written for the original project must not half-work: a field
 * that reaches EC2 is checked here before any call, a field the provider
 * does not support is refused by name with the reason, and a field nobody
 * knows is a warning (it is not sent anywhere). One table, read by the
 * provider at load (its configured templates), at every launch, by
 * validate_template, and documented field by field in docs/aws.md.
 */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "providers/aws/template_fields.h"
#include "util/utf8.h"

typedef enum field_use {
	FIELD_SENT,    /* reaches EC2 (checked by its function) */
	FIELD_BROKER,  /* read by the broker / Host Factory, not by EC2 */
	FIELD_REFUSED, /* known, not supported: an error with the reason */
} field_use;

typedef struct check_ctx {
	const json_t *tmpl;
	const char *id;
	json_t *problems;
	size_t errors;
} check_ctx;

typedef void (*field_fn)(check_ctx *c, const char *field, const json_t *v);

typedef struct field_def {
	const char *name;
	field_use use;
	field_fn check;   /* FIELD_SENT: the value's check (NULL: a string) */
	const char *why;  /* FIELD_REFUSED: the reason */
} field_def;

static void problem(check_ctx *c, bool error, const char *field, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void problem(check_ctx *c, bool error, const char *field, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	pv_utf8_vformat(msg, sizeof msg, fmt, ap); /* a cut never splits a character */
	va_end(ap);
	json_array_append_new(c->problems, json_pack("{s:s, s:s, s:s, s:s}", "template_id", c->id, "field", field,
						     "level", error ? "error" : "warning", "message", msg));
	if (error)
		c->errors++;
}

static const char *str(const json_t *t, const char *key)
{
	return json_string_value(json_object_get(t, key));
}

static bool eq(const char *a, const char *b) { return a && b && strcmp(a, b) == 0; }

static bool one_of(const char *s, const char *const *set)
{
	for (; *set; set++)
		if (eq(s, *set))
			return true;
	return false;
}

/* ---- which launch paths exist ---------------------------------------------------- */

static const struct {
	const char *api, *fleet_type;
	bool supported;
} launch_paths[] = {
	{"RunInstances", NULL, true},
	{"EC2Fleet", "instant", true},
	/* issue 15 part A: launched through a group (groups.c) */
	{"EC2Fleet", "request", true},
	{"EC2Fleet", "maintain", true},
	{"SpotFleet", "request", true},
	{"SpotFleet", "maintain", true},
	{"ASG", "maintain", true},
};

static const char *default_fleet_type(const char *api)
{
	if (eq(api, "SpotFleet"))
		return "request";
	if (eq(api, "ASG"))
		return "maintain";
	if (eq(api, "EC2Fleet"))
		return "instant";
	return NULL;
}

/* The row of (api, fleet type), NULL when there is no such launch path. */
static int launch_path(const char *api, const char *fleet_type)
{
	if (!api)
		api = "RunInstances";
	if (!fleet_type)
		fleet_type = default_fleet_type(api);
	for (size_t i = 0; i < sizeof launch_paths / sizeof launch_paths[0]; i++)
		if (eq(api, launch_paths[i].api) &&
		    (launch_paths[i].fleet_type ? eq(fleet_type, launch_paths[i].fleet_type) : !fleet_type))
			return (int)i;
	return -1;
}

bool aws_launch_supported(const char *api, const char *fleet_type)
{
	int i = launch_path(api, fleet_type);
	return i >= 0 && launch_paths[i].supported;
}

/* ---- value checks ----------------------------------------------------------------- */

static bool need_string(check_ctx *c, const char *f, const json_t *v)
{
	if (json_is_string(v) && json_string_length(v) > 0)
		return true;
	problem(c, true, f, "must be a non-empty string");
	return false;
}

static bool need_int(check_ctx *c, const char *f, const json_t *v, long long lo, long long hi)
{
	if (json_is_integer(v) && json_integer_value(v) >= lo && json_integer_value(v) <= hi)
		return true;
	problem(c, true, f, "must be an integer from %lld to %lld", lo, hi);
	return false;
}

static void check_string(check_ctx *c, const char *f, const json_t *v) { need_string(c, f, v); }

const char *aws_image_ssm_name(const char *image_id)
{
	if (!image_id)
		return NULL;
	if (strncmp(image_id, "resolve:ssm:", 12) == 0)
		return image_id + 12;
	return image_id[0] == '/' ? image_id : NULL;
}

static void check_image(check_ctx *c, const char *f, const json_t *v)
{
	if (!need_string(c, f, v))
		return;
	const char *s = json_string_value(v), *ssm = aws_image_ssm_name(s);
	if (ssm && !*ssm)
		problem(c, true, f, "'resolve:ssm:' must be followed by an SSM parameter name");
	else if (!ssm && strncmp(s, "ami-", 4) != 0)
		problem(c, true, f, "'%s' is neither an image id (ami-...) nor an SSM parameter "
				    "(/aws/service/... or resolve:ssm:NAME)", s);
}

static void check_vm_types(check_ctx *c, const char *f, const json_t *v)
{
	const char *k;
	json_t *w;
	size_t i;
	if (json_is_object(v) && json_object_size(v)) {
		json_object_foreach((json_t *)v, k, w)
			if (!json_is_integer(w) || json_integer_value(w) < 1 || json_integer_value(w) > 1000)
				problem(c, true, f, "weight of '%s' must be an integer from 1 to 1000", k);
		return;
	}
	if (json_is_array(v) && json_array_size(v)) {
		json_array_foreach(v, i, w) if (!json_is_string(w) || !json_string_length(w))
		{
			problem(c, true, f, "must list instance types (strings); item %zu is not one", i);
			return;
		}
		return;
	}
	problem(c, true, f, "must be an object {type: weight} or an array of instance types, not empty");
}

static void check_string_list(check_ctx *c, const char *f, const json_t *v, const char *prefix)
{
	size_t i;
	json_t *s;
	if (json_is_string(v) && json_string_length(v))
		return; /* a comma separated list */
	if (!json_is_array(v) || !json_array_size(v)) {
		problem(c, true, f, "must be an array of %s... ids (or one comma separated string)", prefix);
		return;
	}
	json_array_foreach(v, i, s) if (!json_is_string(s) || strncmp(json_string_value(s), prefix, strlen(prefix)))
	{
		problem(c, true, f, "item %zu must be a %s... id", i, prefix);
		return;
	}
}

static void check_subnets(check_ctx *c, const char *f, const json_t *v) { check_string_list(c, f, v, "subnet-"); }
static void check_groups(check_ctx *c, const char *f, const json_t *v) { check_string_list(c, f, v, "sg-"); }

static bool reserved_tag(const char *k) { return strncasecmp(k, "aws:", 4) == 0; }

static void check_instance_tags(check_ctx *c, const char *f, const json_t *v)
{
	if (!need_string(c, f, v))
		return;
	char *buf = strdup(json_string_value(v)), *save = NULL;
	for (char *t = strtok_r(buf, ";", &save); t; t = strtok_r(NULL, ";", &save)) {
		char *eq_ = strchr(t, '=');
		if (!eq_ || eq_ == t) {
			problem(c, true, f, "must look like k=v;k2=v2 ('%s' has no key=value)", t);
			break;
		}
		*eq_ = '\0';
		if (reserved_tag(t))
			problem(c, true, f, "tag key '%s': keys starting with aws: are reserved by AWS", t);
	}
	free(buf);
}

static void check_tags(check_ctx *c, const char *f, const json_t *v)
{
	const char *k;
	json_t *x;
	size_t i;
	if (json_is_object(v)) {
		json_object_foreach((json_t *)v, k, x) {
			if (!json_is_string(x))
				problem(c, true, f, "value of tag '%s' must be a string", k);
			if (reserved_tag(k))
				problem(c, true, f, "tag key '%s': keys starting with aws: are reserved by AWS", k);
		}
		return;
	}
	if (json_is_array(v)) {
		json_array_foreach(v, i, x) {
			const char *key = str(x, "Key");
			if (!key || !*key || !json_is_string(json_object_get(x, "Value")))
				problem(c, true, f, "item %zu must be {\"Key\": string, \"Value\": string}", i);
			else if (reserved_tag(key))
				problem(c, true, f, "tag key '%s': keys starting with aws: are reserved by AWS", key);
		}
		return;
	}
	problem(c, true, f, "must be an object {key: value} or an array of {Key, Value}");
}

static void check_user_data(check_ctx *c, const char *f, const json_t *v)
{
	if (!need_string(c, f, v))
		return;
	if (json_object_get(c->tmpl, "userDataScript"))
		problem(c, true, f, "give userData or userDataScript, not both");
	else if (json_string_length(v) > AWS_USER_DATA_MAX)
		problem(c, true, f, "is %zu bytes; EC2 takes at most %d bytes of user data", json_string_length(v),
			AWS_USER_DATA_MAX);
}

char *aws_read_user_data_script(const char *path, char *why, size_t why_size)
{
	FILE *fp = fopen(path, "rb");
	if (!fp) {
		snprintf(why, why_size, "cannot read '%s': %s", path, strerror(errno));
		return NULL;
	}
	char *buf = malloc(AWS_USER_DATA_MAX + 2);
	size_t n = buf ? fread(buf, 1, AWS_USER_DATA_MAX + 1, fp) : 0;
	bool err = ferror(fp);
	fclose(fp);
	if (!buf || err) {
		snprintf(why, why_size, "cannot read '%s'", path);
		free(buf);
		return NULL;
	}
	if (n > AWS_USER_DATA_MAX) {
		snprintf(why, why_size, "'%s' is over %d bytes, the most user data EC2 takes", path,
			 AWS_USER_DATA_MAX);
		free(buf);
		return NULL;
	}
	buf[n] = '\0';
	if (memchr(buf, '\0', n)) {
		snprintf(why, why_size, "'%s' holds a NUL byte: user data is text here", path);
		free(buf);
		return NULL;
	}
	return buf;
}

static void check_user_data_script(check_ctx *c, const char *f, const json_t *v)
{
	if (!need_string(c, f, v))
		return;
	char why[512];
	char *text = aws_read_user_data_script(json_string_value(v), why, sizeof why);
	if (!text)
		problem(c, true, f, "%s", why);
	free(text);
}

/* An instance profile's ARN, or its name ([\w+=,.@-], 1 to 128). */
static void check_instance_profile(check_ctx *c, const char *f, const json_t *v)
{
	if (!need_string(c, f, v))
		return;
	const char *s = json_string_value(v);
	if (strncmp(s, "arn:", 4) == 0) {
		if (!strstr(s, ":iam::") || !strstr(s, ":instance-profile/"))
			problem(c, true, f, "'%s' is not an instance profile ARN "
					    "(arn:aws:iam::ACCOUNT:instance-profile/NAME)", s);
		return;
	}
	size_t n = strlen(s);
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && !strchr("_+=,.@-", s[i])) {
			problem(c, true, f, "'%s' is neither an ARN nor an instance profile name "
					    "(letters, digits, _+=,.@-)", s);
			return;
		}
	if (n > 128)
		problem(c, true, f, "an instance profile name has at most 128 characters");
}

static void check_root_size(check_ctx *c, const char *f, const json_t *v) { need_int(c, f, v, 1, 65536); }

static const char *const volume_types[] = {"standard", "gp2", "gp3", "io1", "io2", "st1", "sc1", NULL};

static void check_volume_type(check_ctx *c, const char *f, const json_t *v)
{
	if (need_string(c, f, v) && !one_of(json_string_value(v), volume_types))
		problem(c, true, f, "'%s' is not an EBS volume type (standard, gp2, gp3, io1, io2, st1, sc1)",
			json_string_value(v));
}

static void check_iops(check_ctx *c, const char *f, const json_t *v)
{
	const char *vt = str(c->tmpl, "volumeType");
	if (need_int(c, f, v, 100, 256000) && !eq(vt, "io1") && !eq(vt, "io2") && !eq(vt, "gp3"))
		problem(c, true, f, "applies to volumeType io1, io2 or gp3 only (volumeType is %s)", vt ? vt : "not set");
}

static void check_throughput(check_ctx *c, const char *f, const json_t *v)
{
	if (need_int(c, f, v, 125, 1000) && !eq(str(c->tmpl, "volumeType"), "gp3"))
		problem(c, true, f, "applies to volumeType gp3 only");
}

static bool is_spot_template(const check_ctx *c)
{
	const char *pt = str(c->tmpl, "priceType");
	return eq(pt, "spot") || eq(pt, "heterogeneous");
}

/* A price: a positive decimal, as a string or a number. */
static void check_price(check_ctx *c, const char *f, const json_t *v)
{
	double d = -1;
	if (json_is_number(v))
		d = json_number_value(v);
	else if (json_is_string(v)) {
		char *end;
		d = strtod(json_string_value(v), &end);
		if (*end || end == json_string_value(v))
			d = -1;
	}
	if (!(d > 0)) {
		problem(c, true, f, "must be a positive price in USD an hour (\"0.05\")");
		return;
	}
	if (eq(f, "spotPrice") && json_object_get(c->tmpl, "maxSpotPrice"))
		problem(c, true, f, "give maxSpotPrice or spotPrice (the same field), not both");
	else if (!is_spot_template(c))
		problem(c, false, f, "not sent: priceType is not spot or heterogeneous, so no spot price applies");
}

static void check_price_type(check_ctx *c, const char *f, const json_t *v)
{
	static const char *const ok[] = {"ondemand", "spot", "heterogeneous", NULL};
	if (need_string(c, f, v) && !one_of(json_string_value(v), ok))
		problem(c, true, f, "must be ondemand, spot or heterogeneous");
}

static void check_percent(check_ctx *c, const char *f, const json_t *v)
{
	if (need_int(c, f, v, 0, 100) && !eq(str(c->tmpl, "priceType"), "heterogeneous"))
		problem(c, false, f, "not used: it splits heterogeneous templates only (priceType is %s)",
			str(c->tmpl, "priceType") ? str(c->tmpl, "priceType") : "ondemand");
}

static const char *const spot_strategies[] = {
	"lowestPrice", "capacityOptimized", "priceCapacityOptimized", "diversified", "capacityOptimizedPrioritized",
	"lowest-price", "capacity-optimized", "price-capacity-optimized", "capacity-optimized-prioritized", NULL};

static bool is_fleet(const check_ctx *c)
{
	const char *api = str(c->tmpl, "providerApi");
	return api && !eq(api, "RunInstances");
}

static void check_allocation(check_ctx *c, const char *f, const json_t *v)
{
	if (need_string(c, f, v) && !one_of(json_string_value(v), spot_strategies))
		problem(c, true, f, "'%s' is not a spot allocation strategy (lowestPrice, capacityOptimized, "
				    "priceCapacityOptimized, diversified, or EC2's spelling)", json_string_value(v));
	else if (!is_fleet(c))
		problem(c, false, f, "not sent: RunInstances has no allocation strategy (the instance types "
				     "are tried in order)");
}

static void check_allocation_od(check_ctx *c, const char *f, const json_t *v)
{
	static const char *const ok[] = {"lowestPrice", "prioritized", "lowest-price", NULL};
	if (need_string(c, f, v) && !one_of(json_string_value(v), ok))
		problem(c, true, f, "must be lowestPrice or prioritized");
	else if (!is_fleet(c))
		problem(c, false, f, "not sent: RunInstances has no allocation strategy");
}

static void check_api(check_ctx *c, const char *f, const json_t *v)
{
	static const char *const apis[] = {"RunInstances", "EC2Fleet", "SpotFleet", "ASG", NULL};
	if (!need_string(c, f, v))
		return;
	const char *api = json_string_value(v), *ft = str(c->tmpl, "fleetType");
	if (!one_of(api, apis))
		problem(c, true, f, "must be RunInstances, EC2Fleet, SpotFleet or ASG");
	else if (launch_path(api, ft) >= 0 && !aws_launch_supported(api, ft))
		problem(c, true, f, "%s%s%s is not supported by the aws provider yet: Host Factory would be "
				    "offered a template that fails when requested", api, ft ? " fleetType " : "",
			ft ? ft : "");
}

static void check_fleet_type(check_ctx *c, const char *f, const json_t *v)
{
	static const char *const ok[] = {"instant", "request", "maintain", NULL};
	const char *api = str(c->tmpl, "providerApi");
	if (!need_string(c, f, v))
		return;
	if (!one_of(json_string_value(v), ok))
		problem(c, true, f, "must be instant, request or maintain");
	else if (!api || eq(api, "RunInstances"))
		problem(c, true, f, "RunInstances takes no fleetType (it applies to EC2Fleet, SpotFleet, ASG)");
	else if (eq(api, "SpotFleet") && eq(json_string_value(v), "instant"))
		problem(c, true, f, "a Spot Fleet is request or maintain, not instant");
	else if (eq(api, "ASG") && !eq(json_string_value(v), "maintain"))
		problem(c, true, f, "an Auto Scaling group is maintain");
}

static void check_fleet_role(check_ctx *c, const char *f, const json_t *v)
{
	if (need_string(c, f, v) && !eq(str(c->tmpl, "providerApi"), "SpotFleet"))
		problem(c, false, f, "not sent: only a Spot Fleet launches with a fleet role");
	else if (eq(f, "iamFleetRole") && json_object_get(c->tmpl, "fleetRole"))
		problem(c, true, f, "give fleetRole or iamFleetRole (the same field), not both");
}

static void check_lt_id(check_ctx *c, const char *f, const json_t *v)
{
	if (need_string(c, f, v) && strncmp(json_string_value(v), "lt-", 3) != 0)
		problem(c, true, f, "must be a launch template id (lt-...)");
}

static void check_lt_version(check_ctx *c, const char *f, const json_t *v)
{
	if (json_is_integer(v) && json_integer_value(v) >= 1)
		return;
	check_string(c, f, v);
}

static const field_def fields[] = {
	{"templateId", FIELD_BROKER, NULL, NULL},
	{"maxNumber", FIELD_BROKER, NULL, NULL},
	{"attributes", FIELD_BROKER, NULL, NULL},
	{"provider", FIELD_BROKER, NULL, NULL},
	{"priority", FIELD_BROKER, NULL, NULL},
	{"imageId", FIELD_SENT, check_image, NULL},
	{"vmType", FIELD_SENT, check_string, NULL},
	{"vmTypes", FIELD_SENT, check_vm_types, NULL},
	{"subnetId", FIELD_SENT, check_subnets, NULL},
	{"subnetIds", FIELD_SENT, check_subnets, NULL},
	{"securityGroupIds", FIELD_SENT, check_groups, NULL},
	{"keyName", FIELD_SENT, check_string, NULL},
	{"instanceTags", FIELD_SENT, check_instance_tags, NULL},
	{"tags", FIELD_SENT, check_tags, NULL},
	{"userData", FIELD_SENT, check_user_data, NULL},
	{"userDataScript", FIELD_SENT, check_user_data_script, NULL},
	{"instanceProfile", FIELD_SENT, check_instance_profile, NULL},
	{"rootDeviceVolumeSize", FIELD_SENT, check_root_size, NULL},
	{"volumeType", FIELD_SENT, check_volume_type, NULL},
	{"iops", FIELD_SENT, check_iops, NULL},
	{"throughput", FIELD_SENT, check_throughput, NULL},
	{"providerApi", FIELD_SENT, check_api, NULL},
	{"fleetType", FIELD_SENT, check_fleet_type, NULL},
	{"fleetRole", FIELD_SENT, check_fleet_role, NULL},
	{"iamFleetRole", FIELD_SENT, check_fleet_role, NULL},
	{"priceType", FIELD_SENT, check_price_type, NULL},
	{"percentOnDemand", FIELD_SENT, check_percent, NULL},
	{"allocationStrategy", FIELD_SENT, check_allocation, NULL},
	{"allocationStrategyOnDemand", FIELD_SENT, check_allocation_od, NULL},
	{"maxSpotPrice", FIELD_SENT, check_price, NULL},
	{"spotPrice", FIELD_SENT, check_price, NULL},
	{"launchTemplateId", FIELD_SENT, check_lt_id, NULL},
	{"launchTemplateVersion", FIELD_SENT, check_lt_version, NULL},
	{"launch_template_spec_file", FIELD_REFUSED, NULL,
	 "ORB's native spec files are not read: put the launch parameters in the template's own fields"},
	{"provider_api_spec_file", FIELD_REFUSED, NULL,
	 "ORB's native spec files are not read: put the launch parameters in the template's own fields"},
	{"spotFleetRequestExpiry", FIELD_REFUSED, NULL,
	 "not supported: provisio ends a fleet when its machines are returned, not at a date"},
	{"vmTypesOnDemand", FIELD_REFUSED, NULL,
	 "not supported: one list of types (vmTypes) serves on-demand and spot"},
	{"vmTypesPriority", FIELD_REFUSED, NULL,
	 "not supported: the order of vmTypes is the priority (allocationStrategyOnDemand prioritized)"},
	{"instanceRequirements", FIELD_REFUSED, NULL,
	 "not supported: attribute-based instance selection; list the types in vmTypes"},
	{"abisInstanceRequirements", FIELD_REFUSED, NULL,
	 "not supported: attribute-based instance selection; list the types in vmTypes"},
	{"placementGroupName", FIELD_REFUSED, NULL, "not supported by the aws provider"},
	{"tenancy", FIELD_REFUSED, NULL, "not supported by the aws provider (instances use the default tenancy)"},
	{"ebsOptimized", FIELD_REFUSED, NULL, "not supported by the aws provider (the instance type's default)"},
	{"interfaceType", FIELD_REFUSED, NULL, "not supported by the aws provider (EFA interfaces)"},
	{"contextId", FIELD_REFUSED, NULL, "not supported by the aws provider"},
};

size_t aws_template_check(const json_t *tmpl, json_t *problems)
{
	check_ctx c = {.tmpl = tmpl, .problems = problems};
	c.id = str(tmpl, "templateId") ? str(tmpl, "templateId") : "(no templateId)";
	if (!json_is_object(tmpl)) {
		problem(&c, true, "template", "must be a JSON object");
		return c.errors;
	}
	const char *key;
	json_t *v;
	json_object_foreach((json_t *)tmpl, key, v) {
		const field_def *d = NULL;
		for (size_t i = 0; i < sizeof fields / sizeof fields[0] && !d; i++)
			if (strcmp(key, fields[i].name) == 0)
				d = &fields[i];
		if (!d)
			problem(&c, false, key, "not a field the aws provider knows: not sent to EC2");
		else if (d->use == FIELD_REFUSED)
			problem(&c, true, key, "%s", d->why);
		else if (d->use == FIELD_SENT)
			(d->check ? d->check : check_string)(&c, key, v);
	}
	if (!json_object_get(tmpl, "vmType") && !json_object_get(tmpl, "vmTypes"))
		problem(&c, true, "vmType", "is required (or vmTypes)");
	if (!json_object_get(tmpl, "imageId") && !json_object_get(tmpl, "launchTemplateId"))
		problem(&c, true, "imageId", "is required (or launchTemplateId)");
	if (json_object_get(tmpl, "subnetId") && json_object_get(tmpl, "subnetIds"))
		problem(&c, true, "subnetIds", "give subnetId or subnetIds (the same field), not both");
	/* listed with the others (ORB's own SpotFleet templates have none) */
	if (eq(str(tmpl, "providerApi"), "SpotFleet") && !json_object_get(tmpl, "fleetRole") &&
	    !json_object_get(tmpl, "iamFleetRole"))
		problem(&c, true, "fleetRole",
			"is required for providerApi SpotFleet: the ARN of the IAM role Spot Fleet launches with "
			"(e.g. arn:aws:iam::ACCOUNT:role/aws-ec2-spot-fleet-tagging-role)");
	return c.errors;
}

void aws_template_problems_text(const json_t *problems, bool errors_only, bool brief, char *out, size_t size)
{
	size_t n = 0, i;
	json_t *p;
	out[0] = '\0';
	json_array_foreach(problems, i, p) {
		if (errors_only && !eq(str(p, "level"), "error"))
			continue;
		int w = brief ? snprintf(out + n, size - n, "%s%s.%s", n ? ", " : "",
					 str(p, "template_id"), str(p, "field"))
			      : snprintf(out + n, size - n, "%stemplate '%s': field '%s': %s", n ? "; " : "",
					 str(p, "template_id"), str(p, "field"), str(p, "message"));
		if (w < 0 || (size_t)w >= size - n)
			break;
		n += (size_t)w;
	}
}
