/*
 * aws.c - the AWS EC2 provider strategy: configuration, lifecycle, the
 * retrying call loop, health and stats.
 *
 * Every EC2 call goes through aws_do(): take a token from the client-side
 * bucket of its action class (so we rarely provoke RequestLimitExceeded),
 * sign and send, classify the answer, and retry only transient and
 * throttled failures with exponential backoff and full jitter, never past
 * the operation deadline. Throttling only delays a call: it is tried again
 * until the deadline, while transient failures get max_retries. The
 * operations themselves are in launch.c and ops.c.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "provisio/error.h"
#include "provisio/log.h"
#include "providers/aws/aws_strategy.h"
#include "providers/aws/groups.h"
#include "providers/aws/template_fields.h"

static const char *const action_names[ACT_COUNT] = {
	"RunInstances", "CreateFleet", "DescribeInstances", "TerminateInstances", "DescribeRegions",
	"CreateLaunchTemplate", "DescribeLaunchTemplates",
	"RequestSpotFleet", "DescribeSpotFleetRequests", "DescribeSpotFleetInstances", "ModifySpotFleetRequest",
	"CancelSpotFleetRequests", "DescribeFleets", "DescribeFleetInstances", "ModifyFleet", "DeleteFleets",
	"CreateAutoScalingGroup", "DescribeAutoScalingGroups", "TerminateInstanceInAutoScalingGroup",
	"SetDesiredCapacity", "DeleteAutoScalingGroup", "DeleteLaunchTemplate", "DescribeImages", "GetParameter",
	"DescribeSpotInstanceRequests",
};

static const aws_bucket_kind action_bucket[ACT_COUNT] = {
	BK_RUN, BK_MUTATING, BK_DESCRIBE, BK_TERMINATE, BK_DESCRIBE, BK_MUTATING, BK_DESCRIBE,
	/* Spot Fleet and EC2 Fleet are EC2 actions, metered by EC2's class
	 * buckets; Auto Scaling meters its own API. */
	BK_MUTATING, BK_DESCRIBE, BK_DESCRIBE, BK_MUTATING, BK_MUTATING, BK_DESCRIBE, BK_DESCRIBE, BK_MUTATING,
	BK_MUTATING, BK_AUTOSCALING, BK_AUTOSCALING, BK_AUTOSCALING, BK_AUTOSCALING, BK_AUTOSCALING,
	BK_MUTATING,
	BK_DESCRIBE, BK_DESCRIBE, /* SSM is metered apart; one describe token spares it a burst */
	BK_DESCRIBE,
};

/* Auto Scaling is its own Query API: its endpoint, signed for its service. */
static bool is_autoscaling(aws_action act)
{
	return act >= ACT_CREATE_AUTO_SCALING_GROUP && act <= ACT_DELETE_AUTO_SCALING_GROUP;
}

const char *aws_action_name(aws_action act) { return act < ACT_COUNT ? action_names[act] : "?"; }

static aws *as_aws(pv_strategy *s) { return (aws *)s; }

/* ---- configuration ------------------------------------------------------- */

static int field_error(const char *name, const char *field, const char *why)
{
	return pv_error_set(PV_EINVAL, "aws '%s': field '%s': %s", name, field, why);
}

static int get_str(aws *a, const json_t *cfg, const char *key, char **out)
{
	json_t *v = json_object_get(cfg, key);
	if (!v)
		return 0;
	if (!json_is_string(v) || json_string_length(v) == 0)
		return field_error(a->base.name, key, "must be a non-empty string");
	free(*out);
	*out = strdup(json_string_value(v));
	return *out ? 0 : pv_error_set(PV_ENOMEM, "out of memory");
}

static int get_long(aws *a, const json_t *cfg, const char *key, long lo, long hi, long *out)
{
	json_t *v = json_object_get(cfg, key);
	if (!v)
		return 0;
	if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi) {
		char why[96];
		snprintf(why, sizeof why, "must be an integer from %ld to %ld", lo, hi);
		return field_error(a->base.name, key, why);
	}
	*out = (long)json_integer_value(v);
	return 0;
}

static int get_bool(aws *a, const json_t *cfg, const char *key, bool *out)
{
	json_t *v = json_object_get(cfg, key);
	if (!v)
		return 0;
	if (!json_is_boolean(v))
		return field_error(a->base.name, key, "must be true or false");
	*out = json_is_true(v);
	return 0;
}

static const char *const bucket_keys[BK_COUNT] = {"run_instances", "mutating", "describe", "terminate",
						  "autoscaling"};
/* EC2's documented defaults: RunInstances 5 at 2/s, mutating 50 at 5/s,
 * describe 100 at 20/s, TerminateInstances 100 at 5/s. Auto Scaling
 * publishes no bucket: 20 at 4/s keeps well under what it accepts. */
static const double bucket_defaults[BK_COUNT][2] = {{5, 2}, {50, 5}, {100, 20}, {100, 5}, {20, 4}};

static int parse_throttle(aws *a, const json_t *t)
{
	char field[64];
	double cfg[BK_COUNT][2];
	memcpy(cfg, bucket_defaults, sizeof cfg);
	bool enabled = true;
	double margin = 0.1;
	a->buckets_shared = true;
	if (t && !json_is_object(t))
		return field_error(a->base.name, "throttle", "must be an object");
	if (t && get_bool(a, t, "enabled", &enabled) < 0)
		return field_error(a->base.name, "throttle.enabled", "must be true or false");
	if (t && get_bool(a, t, "shared", &a->buckets_shared) < 0)
		return field_error(a->base.name, "throttle.shared", "must be true or false");
	const char *key;
	json_t *v;
	json_object_foreach((json_t *)t, key, v) {
		bool known = strcmp(key, "enabled") == 0 || strcmp(key, "shared") == 0 ||
			     strcmp(key, "safety_margin") == 0;
		for (int k = 0; k < BK_COUNT && !known; k++)
			known = strcmp(key, bucket_keys[k]) == 0;
		if (!known) {
			snprintf(field, sizeof field, "throttle.%.50s", key);
			return field_error(a->base.name, field,
					   "is not a throttle field (enabled, shared, safety_margin, run_instances, "
					   "mutating, describe, terminate, autoscaling)");
		}
	}
	json_t *m = t ? json_object_get(t, "safety_margin") : NULL;
	if (m && !(json_is_number(m) && json_number_value(m) >= 0 && json_number_value(m) <= 0.9))
		return field_error(a->base.name, "throttle.safety_margin", "must be a number from 0 to 0.9");
	if (m)
		margin = json_number_value(m);
	for (int k = 0; t && k < BK_COUNT; k++) {
		json_t *b = json_object_get(t, bucket_keys[k]);
		if (!b)
			continue;
		json_t *cap = json_object_get(b, "capacity"), *rate = json_object_get(b, "refill_per_s");
		snprintf(field, sizeof field, "throttle.%s", bucket_keys[k]);
		if (!json_is_object(b) || (cap && !(json_is_number(cap) && json_number_value(cap) >= 1 &&
						    json_number_value(cap) <= 1e6)) ||
		    (rate && !(json_is_number(rate) && json_number_value(rate) > 0 &&
			       json_number_value(rate) <= 1e6)))
			return field_error(a->base.name, field,
					   "must be {\"capacity\": 1..1e6, \"refill_per_s\": >0..1e6}");
		if (cap)
			cfg[k][0] = json_number_value(cap);
		if (rate)
			cfg[k][1] = json_number_value(rate);
	}
	uint64_t now = pv_clock_now(a->clock);
	/* Refill a little slower than EC2 does: our bucket and EC2's cannot be
	 * in step (network jitter), and a token early is a RequestLimitExceeded. */
	for (int k = 0; k < BK_COUNT; k++) {
		aws_bucket_init(&a->buckets[k], cfg[k][0], cfg[k][1] * (1.0 - margin), now);
		a->buckets[k].enabled = enabled;
	}
	a->buckets_ready = true;
	return 0;
}

static int parse_endpoint(aws *a, const json_t *cfg)
{
	int rc = get_str(a, cfg, "endpoint_url", &a->endpoint_url);
	if (rc < 0)
		return rc;
	if (a->endpoint_url && strncmp(a->endpoint_url, "https://", 8) != 0 &&
	    strncmp(a->endpoint_url, "http://", 7) != 0)
		return field_error(a->base.name, "endpoint_url", "must start with https:// or http://");
	if (!a->endpoint_url) {
		char url[128];
		snprintf(url, sizeof url, "https://ec2.%s.amazonaws.com/", a->region);
		a->endpoint_url = strdup(url);
	}
	if (!a->endpoint_url)
		return pv_error_set(PV_ENOMEM, "out of memory");
	rc = get_str(a, cfg, "autoscaling_endpoint_url", &a->autoscaling_url);
	if (rc < 0)
		return rc;
	if (a->autoscaling_url && strncmp(a->autoscaling_url, "https://", 8) != 0 &&
	    strncmp(a->autoscaling_url, "http://", 7) != 0)
		return field_error(a->base.name, "autoscaling_endpoint_url", "must start with https:// or http://");
	if (!a->autoscaling_url) {
		/* as SSM's: a configured endpoint (the emulator, a proxy) answers
		 * Auto Scaling too, rather than calls leaving for AWS's host */
		char url[128];
		snprintf(url, sizeof url, "https://autoscaling.%s.amazonaws.com/", a->region);
		a->autoscaling_url = strdup(json_object_get(cfg, "endpoint_url") ? a->endpoint_url : url);
	}
	return a->autoscaling_url ? 0 : pv_error_set(PV_ENOMEM, "out of memory");
}

static int parse_region(aws *a, const json_t *cfg)
{
	json_t *r = json_object_get(cfg, "region");
	if (r) {
		const char *s = json_string_value(r);
		size_t n = s ? strlen(s) : 0;
		if (!n || n >= sizeof a->region || strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789-") != n)
			return field_error(a->base.name, "region",
					   "must be a region name such as us-east-1 (a-z, 0-9, -)");
		snprintf(a->region, sizeof a->region, "%s", s);
	} else if (!aws_region_resolve(a->profile, a->region, sizeof a->region)) {
		return field_error(a->base.name, "region",
				   "is required: set it, AWS_REGION / AWS_DEFAULT_REGION, or the profile's region");
	}
	return 0;
}

static int parse_numbers(aws *a, const json_t *cfg)
{
	long v;
	int rc = 0;
	/* "timeout" in seconds is the spec's and the Python original's name. */
	v = a->timeout_ms / 1000;
	if ((rc = get_long(a, cfg, "timeout", 1, 3600, &v)) < 0)
		return rc;
	a->timeout_ms = v * 1000;
	if ((rc = get_long(a, cfg, "connect_timeout_ms", 1, 600000, &a->connect_timeout_ms)) < 0 ||
	    (rc = get_long(a, cfg, "timeout_ms", 1, 3600000, &a->timeout_ms)) < 0)
		return rc;
	v = a->max_retries;
	if ((rc = get_long(a, cfg, "max_retries", 0, 20, &v)) < 0)
		return rc;
	a->max_retries = (int)v;
	v = (long)(a->retry_base_ns / PV_NS_PER_MS);
	if ((rc = get_long(a, cfg, "retry_base_ms", 1, 60000, &v)) < 0)
		return rc;
	a->retry_base_ns = (uint64_t)v * PV_NS_PER_MS;
	v = (long)(a->retry_max_ns / PV_NS_PER_MS);
	if ((rc = get_long(a, cfg, "retry_max_ms", 1, 600000, &v)) < 0)
		return rc;
	a->retry_max_ns = (uint64_t)v * PV_NS_PER_MS;
	v = a->max_per_call;
	if ((rc = get_long(a, cfg, "max_instances_per_call", 1, 1000, &v)) < 0)
		return rc;
	a->max_per_call = (int)v;
	v = a->describe_max_in_flight;
	if ((rc = get_long(a, cfg, "describe_max_in_flight", 1, 64, &v)) < 0)
		return rc;
	a->describe_max_in_flight = (int)v;
	if ((rc = get_long(a, cfg, "imds_timeout_ms", 1, 60000, &a->imds_timeout_ms)) < 0 ||
	    (rc = get_long(a, cfg, "group_fill_wait_ms", 0, 3600000, &a->group_fill_wait_ms)) < 0)
		return rc;
	v = (long)(a->ssm_ttl_ns / PV_NS_PER_S);
	if ((rc = get_long(a, cfg, "ssm_cache_ttl_s", 0, 86400, &v)) < 0)
		return rc;
	a->ssm_ttl_ns = (uint64_t)v * PV_NS_PER_S;
	json_t *seed = json_object_get(cfg, "seed");
	if (seed && !json_is_integer(seed))
		return field_error(a->base.name, "seed", "must be an integer");
	pv_rng_seed(&a->rng, seed ? (uint64_t)json_integer_value(seed) : pv_mix64((uint64_t)pv_now_ns()));
	return 0;
}

static const char *const known_keys[] = {
	"type", "name", "region", "profile", "endpoint_url", "access_key_id", "secret_access_key",
	"session_token", "proxy", "connect_timeout_ms", "timeout", "timeout_ms", "verify_tls", "max_retries",
	"retry_base_ms", "retry_max_ms", "max_instances_per_call", "describe_max_in_flight", "imds", "imds_endpoint",
	"imds_timeout_ms", "seed", "throttle", "autoscaling_endpoint_url", "group_fill_wait_ms", "templates", "ssm_cache_ttl_s", "ssm_endpoint_url", "enabled", "priority", "weight",
	"capabilities", "health_check", "description",
};

static int check_keys(aws *a, const json_t *cfg)
{
	const char *key;
	json_t *v;
	json_object_foreach((json_t *)cfg, key, v) {
		bool ok = false;
		for (size_t i = 0; i < sizeof known_keys / sizeof known_keys[0] && !ok; i++)
			ok = strcmp(key, known_keys[i]) == 0;
		if (!ok && strcmp(key, "role_arn") == 0)
			return field_error(a->base.name, key,
					   "assuming a role (STS AssumeRole) is not supported: name a "
					   "profile whose credentials already carry the role");
		if (!ok)
			return field_error(a->base.name, key,
					   "is not a field of the aws provider (see docs/aws.md)");
	}
	return 0;
}

/* SSM's endpoint: ssm_endpoint_url; else endpoint_url when the config
 * names one (the emulator answers every service there); else AWS's. */
static int parse_ssm_endpoint(aws *a, const json_t *cfg)
{
	int rc = get_str(a, cfg, "ssm_endpoint_url", &a->ssm_url);
	if (rc < 0)
		return rc;
	if (a->ssm_url && strncmp(a->ssm_url, "https://", 8) != 0 && strncmp(a->ssm_url, "http://", 7) != 0)
		return field_error(a->base.name, "ssm_endpoint_url", "must start with https:// or http://");
	if (!a->ssm_url) {
		char url[128];
		snprintf(url, sizeof url, "https://ssm.%s.amazonaws.com/", a->region);
		a->ssm_url = strdup(json_object_get(cfg, "endpoint_url") ? a->endpoint_url : url);
	}
	return a->ssm_url ? 0 : pv_error_set(PV_ENOMEM, "out of memory");
}

/* The configured templates, every field, at load: an error refuses the
 * config (all of them listed), a warning is logged. A template Host
 * Factory is offered must not fail only when it is requested. */
static int check_templates(aws *a)
{
	json_t *problems = json_array();
	size_t errors = 0, i;
	json_t *t;
	json_array_foreach(a->templates, i, t) errors += aws_template_check(t, problems);
	int rc = 0;
	char text[4096];
	json_array_foreach(problems, i, t) {
		bool error = strcmp(json_string_value(json_object_get(t, "level")), "error") == 0;
		pv_log(error ? PV_LOG_ERROR : PV_LOG_WARN, "aws '%s': template '%s': field '%s': %s", a->base.name,
		       json_string_value(json_object_get(t, "template_id")), json_string_value(json_object_get(t, "field")),
		       json_string_value(json_object_get(t, "message")));
	}
	if (errors == 1) {
		aws_template_problems_text(problems, true, false, text, sizeof text);
		rc = pv_error_set(PV_EINVAL, "aws '%s': field 'templates': %s", a->base.name, text);
	} else if (errors) {
		aws_template_problems_text(problems, true, true, text, sizeof text);
		rc = pv_error_set(PV_EINVAL, "aws '%s': field 'templates': %zu problems (each logged with its "
					     "reason), as template.field: %s", a->base.name, errors, text);
	}
	json_decref(problems);
	return rc;
}

static int parse_config(aws *a, const json_t *cfg)
{
	int rc;
	if (cfg && !json_is_object(cfg))
		return pv_error_set(PV_EINVAL, "aws '%s': config must be a JSON object", a->base.name);
	json_t *empty = cfg ? NULL : json_object();
	const json_t *c = cfg ? cfg : empty;
	if ((rc = check_keys(a, c)) < 0 || (rc = get_str(a, c, "profile", &a->profile)) < 0 ||
	    (rc = parse_region(a, c)) < 0 || (rc = parse_endpoint(a, c)) < 0 ||
	    (rc = get_str(a, c, "access_key_id", &a->cfg_access_key)) < 0 ||
	    (rc = get_str(a, c, "secret_access_key", &a->cfg_secret)) < 0 ||
	    (rc = get_str(a, c, "session_token", &a->cfg_token)) < 0 ||
	    (rc = get_str(a, c, "proxy", &a->proxy)) < 0 ||
	    (rc = get_str(a, c, "imds_endpoint", &a->imds_endpoint)) < 0 ||
	    (rc = get_bool(a, c, "verify_tls", &a->verify_tls)) < 0 ||
	    (rc = get_bool(a, c, "imds", &a->imds_enabled)) < 0 || (rc = parse_numbers(a, c)) < 0 ||
	    (rc = parse_throttle(a, json_object_get(c, "throttle"))) < 0)
		goto out;
	if (!a->cfg_access_key != !a->cfg_secret) {
		rc = field_error(a->base.name, a->cfg_access_key ? "secret_access_key" : "access_key_id",
				 "access_key_id and secret_access_key must be given together");
		goto out;
	}
	json_t *t = json_object_get(c, "templates");
	if (t && !json_is_array(t)) {
		rc = field_error(a->base.name, "templates", "must be an array of template objects");
		goto out;
	}
	a->templates = t ? json_deep_copy(t) : json_array();
	a->group_templates = aws_groups_configured(a->templates);
	rc = parse_ssm_endpoint(a, c);
	if (rc == 0)
		rc = check_templates(a);
out:
	json_decref(empty);
	return rc;
}

/* ---- credentials ------------------------------------------------------------ */

static int resolve_creds(aws *a)
{
	aws_creds_opts o = {
		.access_key_id = a->cfg_access_key, .secret_access_key = a->cfg_secret,
		.session_token = a->cfg_token, .profile = a->profile,
		.imds_endpoint = a->imds_endpoint, .imds_timeout_ms = a->imds_timeout_ms,
		.imds_enabled = a->imds_enabled,
	};
	aws_creds c;
	int rc = aws_creds_resolve(&o, &c);
	if (rc < 0)
		return pv_error_set(rc, "aws '%s': %s", a->base.name, pv_error_last());
	pthread_mutex_lock(&a->lock);
	a->creds = c;
	pthread_mutex_unlock(&a->lock);
	aws_creds_wipe(&c);
	return 0;
}

/* A copy of the credentials for one call, refreshed five minutes before
 * temporary (IMDS) credentials expire. */
static int creds_snapshot(aws *a, aws_creds *out)
{
	pthread_mutex_lock(&a->lock);
	bool stale = a->creds.expires_wall_ms && pv_wall_ms() > a->creds.expires_wall_ms - 300000;
	bool none = !a->creds.access_key_id[0];
	pthread_mutex_unlock(&a->lock);
	if ((stale || none) && resolve_creds(a) < 0 && none)
		return -1;
	pthread_mutex_lock(&a->lock);
	*out = a->creds;
	pthread_mutex_unlock(&a->lock);
	return 0;
}

static int aws_init(pv_strategy *s)
{
	if (aws_http_global_init() < 0)
		return PV_EIO;
	return resolve_creds(as_aws(s));
}

/* ---- the call loop ----------------------------------------------------------- */

void aws_call_free(aws_call *c)
{
	aws_http_reply_free(&c->reply);
	free(c->ec2_message);
	c->ec2_message = NULL;
}

/* Classifies the last answer into c. */
/* A JSON protocol error (SSM): {"__type": "[ns#]Code", "message"}. */
static void json_error(aws_call *c)
{
	json_t *j = json_loadb(c->reply.body, c->reply.len, 0, NULL);
	const char *type = json_string_value(json_object_get(j, "__type"));
	const char *msg = json_string_value(json_object_get(j, "message"));
	if (!msg)
		msg = json_string_value(json_object_get(j, "Message"));
	if (type) {
		const char *hash = strrchr(type, '#');
		snprintf(c->ec2_code, sizeof c->ec2_code, "%s", hash ? hash + 1 : type);
	}
	if (msg && *msg)
		c->ec2_message = strdup(msg);
	json_decref(j);
}

static void classify(aws_call *c)
{
	free(c->ec2_message);
	c->ec2_message = NULL;
	c->ec2_code[0] = '\0';
	c->request_id[0] = '\0';
	aws_http_reply *r = &c->reply;
	if (r->status >= 200 && r->status < 300) {
		c->ok = true;
		c->cls = PV_CLASS_NONE;
		aws_xml_request_id(r->body, r->len, c->request_id, sizeof c->request_id);
		return;
	}
	c->ok = false;
	if (r->status && r->len && r->body[0] == '{')
		json_error(c);
	else if (r->status)
		aws_xml_error(r->body, r->len, c->ec2_code, sizeof c->ec2_code, &c->ec2_message,
			      c->request_id, sizeof c->request_id);
	c->cls = aws_error_class(c->ec2_code, r->status);
}

/* Full jitter (AWS Architecture Blog, "Exponential Backoff And Jitter"):
 * sleep uniform in [0, min(cap, base * 2^attempt)). */
uint64_t aws_backoff_ns(aws *a, unsigned attempt)
{
	uint64_t ceiling = a->retry_base_ns << (attempt < 30 ? attempt : 30);
	if (ceiling > a->retry_max_ns || ceiling == 0)
		ceiling = a->retry_max_ns;
	pthread_mutex_lock(&a->lock);
	uint64_t d = pv_rng_below(&a->rng, ceiling + 1);
	pthread_mutex_unlock(&a->lock);
	return d;
}

static long call_timeout_ms(aws *a, uint64_t deadline_ns)
{
	if (!deadline_ns)
		return a->timeout_ms;
	uint64_t now = pv_clock_now(a->clock);
	long left = deadline_ns > now ? (long)((deadline_ns - now) / PV_NS_PER_MS) : 0;
	return left < 1 ? 1 : (left < a->timeout_ms ? left : a->timeout_ms);
}

bool aws_attempt_begin(aws *a, aws_action act, uint64_t deadline_ns, aws_call *c,
		       aws_creds *cr, aws_http_opts *o)
{
	aws_http_reply_free(&c->reply);
	memset(&c->reply, 0, sizeof c->reply);
	if (creds_snapshot(a, cr) < 0) {
		c->ok = false;
		c->cls = PV_CLASS_PERMANENT;
		snprintf(c->ec2_code, sizeof c->ec2_code, "NoCredentials");
		snprintf(c->reply.error, sizeof c->reply.error, "%s", pv_error_last());
		return false;
	}
	bool asg = is_autoscaling(act), ssm = act == ACT_SSM_GET_PARAMETER;
	*o = (aws_http_opts){asg ? a->autoscaling_url : ssm ? a->ssm_url : a->endpoint_url, a->region,
			     asg ? "autoscaling" : ssm ? "ssm" : NULL, a->proxy, a->connect_timeout_ms,
			     call_timeout_ms(a, deadline_ns), a->verify_tls};
	o->json_target = ssm ? "AmazonSSM.GetParameter" : NULL;
	c->attempts++;
	atomic_fetch_add_explicit(&a->calls[act], 1, memory_order_relaxed);
	return true;
}

void aws_attempt_end(aws *a, aws_action act, int http_rc, uint64_t deadline_ns, aws_call *c)
{
	if (http_rc < 0) {
		/* sent and no answer (timeout, reset): it may have been done */
		atomic_fetch_add_explicit(&a->transport_errors, 1, memory_order_relaxed);
		c->ok = false;
		c->cls = PV_CLASS_TRANSIENT;
		c->ec2_code[0] = '\0';
		c->transient++;
		c->maybe_ran = true;
		if (c->reply.timed_out && deadline_ns && pv_clock_now(a->clock) >= deadline_ns)
			c->deadline_hit = true;
		return;
	}
	classify(c);
	if (c->cls == PV_CLASS_TRANSIENT) {
		c->transient++;
		c->maybe_ran |= c->reply.status >= 500; /* an internal error may come after the work */
	}
	if (c->cls == PV_CLASS_THROTTLED) {
		c->throttled++;
		atomic_fetch_add_explicit(&a->throttled_received, 1, memory_order_relaxed);
		aws_bucket_drain(&a->buckets[action_bucket[act]], pv_clock_now(a->clock));
	}
}

aws_bucket *aws_action_bucket(aws *a, aws_action act) { return &a->buckets[action_bucket[act]]; }

void aws_throttle_waited(aws *a, uint64_t ns)
{
	atomic_fetch_add_explicit(&a->throttle_wait_ns, ns, memory_order_relaxed);
}

/* One blocking attempt: token, credentials, the signed POST. */
static void attempt_once(aws *a, aws_action act, const char *form, uint64_t deadline_ns, aws_call *c)
{
	uint64_t waited = 0;
	aws_http_reply_free(&c->reply);
	memset(&c->reply, 0, sizeof c->reply);
	int rc = aws_bucket_take(&a->buckets[action_bucket[act]], a->clock, deadline_ns, &waited);
	aws_throttle_waited(a, waited);
	if (rc < 0) {
		c->deadline_hit = true;
		c->cls = PV_CLASS_THROTTLED;
		snprintf(c->reply.error, sizeof c->reply.error, "%s", pv_error_last());
		return;
	}
	aws_creds cr;
	aws_http_opts o;
	bool go = aws_attempt_begin(a, act, deadline_ns, c, &cr, &o);
	if (go)
		rc = aws_http_post(&a->pool, &o, &cr, form, &c->reply);
	aws_creds_wipe(&cr);
	if (go)
		aws_attempt_end(a, act, rc, deadline_ns, c);
}

/* What the last call says about the endpoint: reachable and accepting our
 * credentials is healthy, whatever it thought of the request. */
static int health_of(const aws_call *c)
{
	if (c->ok)
		return 1;
	if (c->reply.status == 0 || c->reply.status >= 500)
		return 2;
	if (strncmp(c->ec2_code, "Auth", 4) == 0 || strcmp(c->ec2_code, "SignatureDoesNotMatch") == 0 ||
	    strcmp(c->ec2_code, "UnauthorizedOperation") == 0)
		return 2;
	return 1;
}

bool aws_retry_delay(aws *a, aws_call *c, unsigned attempt, uint64_t deadline_ns, uint64_t *delay_ns)
{
	if (c->ok || c->deadline_hit || !pv_error_class_retryable(c->cls))
		return false;
	/* Throttling delays a call, it does not fail it: tried again until the
	 * deadline (without one, like any other failure). Transient failures
	 * get max_retries. */
	bool patient = c->cls == PV_CLASS_THROTTLED && deadline_ns;
	if (!patient && (c->cls == PV_CLASS_TRANSIENT ? c->transient : attempt + 1) > (unsigned)a->max_retries)
		return false;
	uint64_t d = aws_backoff_ns(a, attempt);
	if (deadline_ns && pv_clock_now(a->clock) + d >= deadline_ns) {
		c->deadline_hit = true;
		return false;
	}
	atomic_fetch_add_explicit(&a->retries, 1, memory_order_relaxed);
	*delay_ns = d;
	return true;
}

void aws_call_end(aws *a, aws_call *c)
{
	if (c->attempts > 0)
		atomic_store_explicit(&a->health, health_of(c), memory_order_relaxed);
	if (!c->ok)
		atomic_fetch_add_explicit(&a->errors[c->cls <= PV_CLASS_INTERNAL ? c->cls : PV_CLASS_INTERNAL],
					  1, memory_order_relaxed);
}

bool aws_do(aws *a, aws_action act, const char *form, uint64_t deadline_ns, aws_call *c)
{
	memset(c, 0, sizeof *c);
	uint64_t d = 0;
	for (unsigned attempt = 0;; attempt++) {
		attempt_once(a, act, form, deadline_ns, c);
		if (!aws_retry_delay(a, c, attempt, deadline_ns, &d))
			break;
		pv_clock_sleep(a->clock, d);
	}
	aws_call_end(a, c);
	return c->ok;
}

void aws_call_fail(aws *a, aws_action act, const aws_call *c, pv_result *out)
{
	const char *code = c->deadline_hit ? PV_ERR_TIMEOUT : aws_error_pv_code(c->cls, c->ec2_code);
	pv_error_class cls = c->deadline_hit ? PV_CLASS_TRANSIENT : c->cls;
	const char *plural = c->attempts == 1 ? "" : "s";
	if (c->throttled && (cls == PV_CLASS_THROTTLED || c->deadline_hit))
		pv_result_fail(out, code, cls, "aws '%s': %s: throttled by EC2: RequestLimitExceeded %u "
			       "time(s) in %u call%s%s", a->base.name, aws_action_name(act), c->throttled,
			       c->attempts, plural, c->deadline_hit ? ", until the deadline" : "");
	else if (c->ec2_code[0])
		pv_result_fail(out, code, cls, "aws '%s': %s: %s: %s (%u call%s)", a->base.name,
			       aws_action_name(act), c->ec2_code,
			       c->ec2_message ? c->ec2_message : "no message", c->attempts, plural);
	else if (c->reply.status)
		pv_result_fail(out, code, cls, "aws '%s': %s: HTTP %ld (%u call%s)", a->base.name,
			       aws_action_name(act), c->reply.status, c->attempts, plural);
	else
		pv_result_fail(out, code, cls, "aws '%s': %s: %s (%u call%s)", a->base.name,
			       aws_action_name(act), c->reply.error[0] ? c->reply.error : "failed",
			       c->attempts, plural);
	if (c->ec2_code[0])
		pv_result_meta_set(out, "ec2_error_code", json_string(c->ec2_code));
	if (c->request_id[0])
		pv_result_meta_set(out, "aws_request_id", json_string(c->request_id));
	pv_result_meta_set(out, "api_calls", json_integer(c->attempts));
	if (c->attempts > 1)
		pv_result_meta_set(out, "retries", json_integer(c->attempts - 1));
	if (c->throttled)
		pv_result_meta_set(out, "throttled_by", json_string("EC2"));
}

/* ---- strategy methods ------------------------------------------------------- */

static int aws_execute(pv_strategy *s, const pv_operation *op, pv_result *out)
{
	aws *a = as_aws(s);
	switch (op->type) {
	case PV_OP_CREATE_INSTANCES:
		aws_op_create(a, op, out);
		break;
	case PV_OP_TERMINATE_INSTANCES:
		aws_op_terminate(a, op, out);
		break;
	case PV_OP_GET_INSTANCE_STATUS:
		aws_op_status(a, op, out, false);
		break;
	case PV_OP_DESCRIBE_RESOURCE_INSTANCES:
		aws_op_status(a, op, out, true);
		break;
	case PV_OP_VALIDATE_TEMPLATE:
		aws_op_validate(a, op, out);
		break;
	case PV_OP_GET_AVAILABLE_TEMPLATES:
		pv_result_ok(out, json_pack("{s:O}", "templates", a->templates));
		break;
	case PV_OP_HEALTH_CHECK:
		aws_op_health(a, op, out);
		break;
	default:
		pv_result_fail(out, PV_ERR_OPERATION_NOT_SUPPORTED, PV_CLASS_PERMANENT,
			       "aws '%s' does not support operation %d", s->name, (int)op->type);
	}
	pv_result_set_provider(out, s->name);
	return 0;
}

static int aws_capabilities(pv_strategy *s, pv_capabilities *out)
{
	aws *a = as_aws(s);
	snprintf(out->type, sizeof out->type, "aws");
	out->operations = PV_OP_SET_ALL;
	/* template_field_checks: validate_template with check_only makes no
	 * call, so the broker checks the templates file with it at every open */
	out->features = json_pack("{s:b, s:b, s:b, s:b, s:b, s:b, s:b}", "instance_management", 1, "spot", 1,
				  "fleet", 1, "idempotent_create", 1, "tagging", 1, "dry_run", 1,
				  "template_field_checks", 1);
	out->limitations = json_pack("{s:i, s:i, s:s}", "max_instances_per_request", a->max_per_call,
				     "max_terminate_batch", 1000, "region", a->region);
	return 0;
}

static int aws_health(pv_strategy *s, pv_health *out)
{
	aws *a = as_aws(s);
	pv_operation op = {.type = PV_OP_HEALTH_CHECK,
			   .deadline_ns = pv_clock_now(a->clock) + (uint64_t)a->timeout_ms * PV_NS_PER_MS};
	pv_result r = PV_RESULT_INIT;
	uint64_t t0 = pv_clock_now(a->clock);
	aws_op_health(a, &op, &r);
	out->response_ns = pv_clock_now(a->clock) - t0;
	out->checked_at_ms = pv_wall_ms();
	if (r.success)
		pv_health_set(out, true, "aws '%s': DescribeRegions answered in %llu ms", s->name,
			      (unsigned long long)(out->response_ns / PV_NS_PER_MS));
	else
		pv_health_set(out, false, "%s",
			      pv_result_message(&r) ? pv_result_message(&r) : "DescribeRegions failed");
	out->details = json_pack("{s:s, s:s}", "region", a->region, "endpoint", a->endpoint_url);
	pv_result_clear(&r);
	return 0;
}

static json_t *aws_stats(pv_strategy *s)
{
	aws *a = as_aws(s);
	static const char *const health_names[] = {"unknown", "healthy", "unhealthy"};
	json_t *calls = json_object(), *errors = json_object();
	for (int i = 0; i < ACT_COUNT; i++)
		json_object_set_new(calls, action_names[i], json_integer((json_int_t)atomic_load(&a->calls[i])));
	for (int c = PV_CLASS_TRANSIENT; c <= PV_CLASS_INTERNAL; c++)
		json_object_set_new(errors, pv_error_class_name((pv_error_class)c),
				    json_integer((json_int_t)atomic_load(&a->errors[c])));
	pthread_mutex_lock(&a->lock);
	json_t *src = json_string(a->creds.source[0] ? a->creds.source : "none");
	pthread_mutex_unlock(&a->lock);
	return json_pack("{s:o, s:o, s:I, s:I, s:I, s:I, s:s, s:s, s:o}", "calls", calls, "errors", errors,
			 "retries", (json_int_t)atomic_load(&a->retries), "throttled_received",
			 (json_int_t)atomic_load(&a->throttled_received), "transport_errors",
			 (json_int_t)atomic_load(&a->transport_errors), "throttle_wait_ms",
			 (json_int_t)(atomic_load(&a->throttle_wait_ns) / PV_NS_PER_MS), "health",
			 health_names[atomic_load(&a->health) % 3], "region", a->region,
			 "credentials_source", src);
}

/* EC2 meters an account per region: processes aimed at one endpoint and
 * region share these buckets through the limiter (one key per bucket). */
static int aws_set_limiter(pv_strategy *s, pv_limiter *l)
{
	aws *a = as_aws(s);
	for (int k = 0; a->buckets_ready && k < BK_COUNT; k++) {
		char key[256];
		snprintf(key, sizeof key, "ec2 %s %s %s", a->region,
			 k == BK_AUTOSCALING ? a->autoscaling_url : a->endpoint_url, bucket_keys[k]);
		aws_bucket_share(&a->buckets[k], a->buckets_shared ? l : NULL, key);
	}
	return 0;
}

static void free_secret(char *s)
{
	if (!s)
		return;
	volatile char *p = s;
	while (*p)
		*p++ = 0;
	free(s);
}

static void aws_destroy(pv_strategy *s)
{
	aws *a = as_aws(s);
	free(a->endpoint_url);
	free(a->autoscaling_url);
	json_decref(a->group_cache);
	json_decref(a->instance_group);
	free(a->proxy);
	free(a->profile);
	free(a->imds_endpoint);
	free_secret(a->cfg_access_key);
	free_secret(a->cfg_secret);
	free_secret(a->cfg_token);
	aws_creds_wipe(&a->creds);
	json_decref(a->templates);
	json_decref(a->lt_cache);
	json_decref(a->image_cache);
	free(a->ssm_url);
	for (int k = 0; a->buckets_ready && k < BK_COUNT; k++)
		aws_bucket_destroy(&a->buckets[k]);
	aws_http_pool_destroy(&a->pool);
	pthread_mutex_destroy(&a->lock);
}

static const pv_strategy_methods aws_methods = {
	.version = PV_STRATEGY_METHODS_VERSION,
	.init = aws_init,
	.execute = aws_execute,
	.capabilities = aws_capabilities,
	.health = aws_health,
	.destroy = aws_destroy,
	.stats = aws_stats,
	.set_limiter = aws_set_limiter,
};

uint64_t pv_aws_calls(pv_strategy *s, const char *action)
{
	aws *a = as_aws(s);
	for (int i = 0; i < ACT_COUNT; i++)
		if (action && strcmp(action, action_names[i]) == 0)
			return atomic_load(&a->calls[i]);
	return 0;
}

int pv_aws_new(pv_strategy **out, const char *name, const json_t *config, const pv_clock *clock)
{
	*out = NULL;
	aws *a = pv_strategy_alloc(sizeof *a, &aws_methods, name, "aws");
	if (!a)
		return pv_error_last_code();
	pthread_mutex_init(&a->lock, NULL);
	aws_http_pool_init(&a->pool);
	a->clock = clock;
	a->connect_timeout_ms = 3000;
	a->imds_timeout_ms = 1000;
	a->timeout_ms = 30000;
	a->verify_tls = true;
	a->imds_enabled = true;
	a->max_retries = 5;
	a->retry_base_ns = 100 * PV_NS_PER_MS;
	a->retry_max_ns = 20000 * PV_NS_PER_MS;
	a->max_per_call = 100;
	a->describe_max_in_flight = 8;
	a->lt_cache = json_object();
	a->image_cache = json_object();
	a->ssm_ttl_ns = 300 * PV_NS_PER_S;
	a->group_cache = json_object();
	a->instance_group = json_object();
	a->group_fill_wait_ms = 30000;
	int rc = parse_config(a, config);
	if (rc < 0) {
		pv_strategy_unref(&a->base);
		return rc;
	}
	*out = &a->base;
	return 0;
}
