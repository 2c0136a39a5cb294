/*
 * emu.c - the instance and launch template actions of the emulator, their
 * XML answers, and the table of every action.
 *
 * RunInstances, CreateFleet (type instant), DescribeInstances,
 * TerminateInstances, CreateLaunchTemplate, DescribeLaunchTemplates,
 * DeleteLaunchTemplate, DescribeRegions, DescribeAvailabilityZones, with
 * EC2's rules where a client can notice them: ClientToken idempotency
 * (same token and parameters -> the first answer, a RunInstances one with
 * the instances' states now; other parameters ->
 * IdempotentParameterMismatch), DryRun after the parameters are checked
 * (an instance type EC2 does not have is InvalidParameterValue),
 * malformed instance ids (InvalidInstanceID.Malformed), MinCount/MaxCount
 * against a capacity, InsufficientInstanceCapacity for chosen types / AZs,
 * tags, filters (filter.c), NextToken (paging.c), states that move with time
 * (pending -> running, shutting-down -> terminated), and launch templates
 * that must exist (an unknown id, name or version is a request error, as on
 * EC2: a lenient emulator would let a provider bug through). Response shapes
 * follow the EC2 service model (namespace 2016-11-15, lists as <xSet><item>).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "emu.h"

/* ---- buffer ---------------------------------------------------------------- */

static void eb_grow(emu_buf *b, size_t n)
{
	if (b->len + n + 1 <= b->cap)
		return;
	size_t cap = b->cap ? b->cap : 1024;
	while (cap < b->len + n + 1)
		cap *= 2;
	char *g = realloc(b->s, cap);
	if (!g)
		abort(); /* a test tool: running out of memory is fatal */
	b->s = g;
	b->cap = cap;
}

void eb_add(emu_buf *b, const char *s)
{
	size_t n = strlen(s);
	eb_grow(b, n);
	memcpy(b->s + b->len, s, n + 1);
	b->len += n;
}

void eb_printf(emu_buf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	eb_grow(b, (size_t)n);
	va_start(ap, fmt);
	vsnprintf(b->s + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

void eb_elem(emu_buf *b, const char *name, const char *text)
{
	if (!text || !*text) {
		eb_printf(b, "<%s/>", name);
		return;
	}
	eb_printf(b, "<%s>", name);
	for (const char *p = text; *p; p++) {
		switch (*p) {
		case '<': eb_add(b, "&lt;"); break;
		case '>': eb_add(b, "&gt;"); break;
		case '&': eb_add(b, "&amp;"); break;
		case '"': eb_add(b, "&quot;"); break;
		default: {
			char c[2] = {*p, 0};
			eb_add(b, c);
		}
		}
	}
	eb_printf(b, "</%s>", name);
}

void eb_free(emu_buf *b)
{
	free(b->s);
	memset(b, 0, sizeof *b);
}

/* ---- state --------------------------------------------------------------------- */

uint64_t emu_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

uint64_t emu_rand(emu *e)
{
	/* xorshift64*: enough for ids and fault dice. */
	e->rng ^= e->rng >> 12;
	e->rng ^= e->rng << 25;
	e->rng ^= e->rng >> 27;
	return e->rng * 0x2545F4914F6CDD1Dull;
}

void emu_init(emu *e, const char *region, uint64_t seed)
{
	memset(e, 0, sizeof *e);
	snprintf(e->region, sizeof e->region, "%s", region);
	e->capacity = -1;
	e->ice_types = json_array();
	e->ice_azs = json_array();
	e->instances = json_array();
	e->by_id = json_object();
	e->tokens = json_object();
	e->templates = json_object();
	e->seeds = json_array();
	e->groups = json_object();
	e->ssm = json_object();
	e->ssm_seeds = json_object();
	e->images = json_object();
	e->rng = seed ? seed : 0x9e3779b97f4a7c15ull;
	emu_paging_init(e);
}

void emu_reset(emu *e)
{
	json_array_clear(e->instances);
	json_object_clear(e->by_id);
	json_object_clear(e->tokens);
	json_object_clear(e->templates);
	json_object_clear(e->groups);
	size_t i;
	json_t *t;
	json_array_foreach(e->seeds, i, t)
		json_object_set_new(e->templates, json_string_value(json_object_get(t, "name")), json_deep_copy(t));
	json_object_clear(e->ssm);
	json_object_update(e->ssm, e->ssm_seeds);
	json_object_clear(e->images);
}

void emu_free(emu *e)
{
	json_decref(e->ice_types);
	json_decref(e->ice_azs);
	json_decref(e->instances);
	json_decref(e->by_id);
	json_decref(e->tokens);
	json_decref(e->templates);
	json_decref(e->seeds);
	json_decref(e->groups);
	json_decref(e->ssm);
	json_decref(e->ssm_seeds);
	json_decref(e->images);
}

void emu_error(emu_reply *r, int status, const char *code, const char *message, const char *request_id)
{
	r->status = status;
	snprintf(r->code, sizeof r->code, "%s", code);
	eb_free(&r->body);
	eb_add(&r->body, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response><Errors><Error>");
	eb_elem(&r->body, "Code", code);
	eb_elem(&r->body, "Message", message);
	eb_add(&r->body, "</Error></Errors>");
	eb_elem(&r->body, "RequestID", request_id);
	eb_add(&r->body, "</Response>");
}

static bool in_list(json_t *arr, const char *s)
{
	size_t i;
	json_t *v;
	json_array_foreach(arr, i, v) if (s && strcmp(json_string_value(v), s) == 0) return true;
	return false;
}

/* Current state of an instance from its timestamps. */
const char *emu_state_of(emu *e, json_t *in, int *code)
{
	uint64_t now = emu_now_ms();
	json_t *term = json_object_get(in, "terminate_ms");
	if (term) {
		bool done = now >= (uint64_t)json_integer_value(term) + e->shutdown_ms;
		*code = done ? 48 : 32;
		return done ? "terminated" : "shutting-down";
	}
	bool up = now >= (uint64_t)json_integer_value(json_object_get(in, "launch_ms")) + e->boot_ms;
	*code = up ? 16 : 0;
	return up ? "running" : "pending";
}

bool emu_live(json_t *in) { return !json_object_get(in, "terminate_ms"); }

static int64_t live_count(emu *e)
{
	int64_t n = 0;
	size_t i;
	json_t *in;
	json_array_foreach(e->instances, i, in) if (emu_live(in)) n++;
	return n;
}

void emu_terminate(emu *e, json_t *in, const char *reason_code, const char *reason_message)
{
	(void)e;
	if (!emu_live(in))
		return;
	json_object_set_new(in, "terminate_ms", json_integer((json_int_t)emu_now_ms()));
	json_object_set_new(in, "state_reason", json_pack("{s:s, s:s}", "code", reason_code, "message", reason_message));
}

void emu_time_now(char *out, size_t size)
{
	time_t now = time(NULL);
	strftime(out, size, "%Y-%m-%dT%H:%M:%S.000Z", gmtime(&now));
}

void emu_uuid(emu *e, const char *prefix, char *out, size_t size)
{
	uint64_t x = emu_rand(e), y = emu_rand(e);
	snprintf(out, size, "%s%08llx-%04llx-%04llx-%04llx-%012llx", prefix, (unsigned long long)(x >> 32),
		 (unsigned long long)(x >> 16) & 0xffff, (unsigned long long)x & 0xffff,
		 (unsigned long long)(y >> 48), (unsigned long long)(y >> 16) & 0xffffffffffffull);
}

/* ---- instance XML ------------------------------------------------------------- */

static void state_xml(emu_buf *b, const char *elem, const char *name, int code)
{
	eb_printf(b, "<%s><code>%d</code><name>%s</name></%s>", elem, code, name, elem);
}

static void instance_xml(emu *e, emu_buf *b, json_t *in)
{
	int code;
	const char *st = emu_state_of(e, in, &code);
	eb_add(b, "<item>");
	eb_elem(b, "instanceId", param(in, "id"));
	eb_elem(b, "imageId", param(in, "image"));
	state_xml(b, "instanceState", st, code);
	bool gone = strcmp(st, "terminated") == 0;
	eb_elem(b, "privateDnsName", gone ? NULL : param(in, "dns"));
	eb_elem(b, "dnsName", NULL);
	if (param(in, "key"))
		eb_elem(b, "keyName", param(in, "key"));
	eb_printf(b, "<amiLaunchIndex>%lld</amiLaunchIndex>",
		  (long long)json_integer_value(json_object_get(in, "index")));
	eb_elem(b, "instanceType", param(in, "type"));
	eb_elem(b, "launchTime", param(in, "launch_time"));
	eb_add(b, "<placement>");
	eb_elem(b, "availabilityZone", param(in, "az"));
	eb_add(b, "<tenancy>default</tenancy></placement><monitoring><state>disabled</state></monitoring>");
	if (param(in, "subnet"))
		eb_elem(b, "subnetId", param(in, "subnet"));
	if (!gone) {
		eb_elem(b, "privateIpAddress", param(in, "ip"));
		eb_elem(b, "ipAddress", param(in, "public_ip"));
	}
	if (param(in, "lifecycle") && strcmp(param(in, "lifecycle"), "spot") == 0)
		eb_elem(b, "instanceLifecycle", "spot");
	if (param(in, "sir"))
		eb_elem(b, "spotInstanceRequestId", param(in, "sir"));
	if (param(in, "token"))
		eb_elem(b, "clientToken", param(in, "token"));
	json_t *reason = json_object_get(in, "state_reason");
	if (reason) {
		eb_add(b, "<stateReason>");
		eb_elem(b, "code", param(reason, "code"));
		eb_elem(b, "message", param(reason, "message"));
		eb_add(b, "</stateReason>");
	}
	json_t *tags = json_object_get(in, "tags");
	if (json_object_size(tags)) {
		const char *k;
		json_t *v;
		eb_add(b, "<tagSet>");
		json_object_foreach(tags, k, v) {
			eb_add(b, "<item>");
			eb_elem(b, "key", k);
			eb_elem(b, "value", json_string_value(v));
			eb_add(b, "</item>");
		}
		eb_add(b, "</tagSet>");
	}
	eb_add(b, "</item>");
}

void emu_head(emu_buf *b, const char *action, const char *request_id)
{
	eb_printf(b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<%sResponse xmlns=\"" EMU_NS "\">", action);
	eb_elem(b, "requestId", request_id);
}

/* ---- launching ------------------------------------------------------------------ */

/* Tags from <prefix>TagSpecification.N (ResourceType instance). */
static json_t *read_tags_at(json_t *p, const char *prefix)
{
	json_t *tags = json_object();
	for (int s = 1; s < 10; s++) {
		const char *rt = paramf(p, "%sTagSpecification.%d.ResourceType", prefix, s);
		if (!rt)
			break;
		if (strcmp(rt, "instance") != 0)
			continue;
		for (int t = 1;; t++) {
			const char *k = paramf(p, "%sTagSpecification.%d.Tag.%d.Key", prefix, s, t);
			if (!k)
				break;
			const char *v = paramf(p, "%sTagSpecification.%d.Tag.%d.Value", prefix, s, t);
			json_object_set_new(tags, k, json_string(v ? v : ""));
		}
	}
	return tags;
}

static json_t *read_tags(json_t *p) { return read_tags_at(p, ""); }

/* The launch template with this id, or NULL. */
static json_t *template_by_id(emu *e, const char *id)
{
	const char *name;
	json_t *t;
	json_object_foreach(e->templates, name, t) if (id && strcmp(param(t, "id"), id) == 0) return t;
	return NULL;
}

/* A version a template with one version has: its number, $Default, $Latest. */
static bool version_exists(const char *v)
{
	return strcmp(v, "$Default") == 0 || strcmp(v, "$Latest") == 0 || strcmp(v, "1") == 0;
}

json_t *emu_template_find(emu *e, const char *id, const char *name)
{
	json_t *t = id ? template_by_id(e, id) : json_object_get(e->templates, name ? name : "");
	return t && (uint64_t)json_integer_value(json_object_get(t, "usable_ms")) <= emu_now_ms() ? t : NULL;
}

bool emu_template_version_ok(const char *v) { return !v || version_exists(v); }

/*
 * The launch template named by <prefix>LaunchTemplateId or
 * <prefix>LaunchTemplateName, at <prefix>Version. EC2 refuses the whole
 * request when it does not exist, for RunInstances and for CreateFleet
 * (instant) alike: it is a request error, not a per-override launch error
 * in CreateFleet's errorSet. Codes and messages as EC2 sends them. True with
 * *out set (NULL when the request names none); false with r filled.
 */
static bool template_param(emu *e, json_t *p, const char *prefix, const char *rid, emu_reply *r, json_t **out)
{
	const char *id = paramf(p, "%sLaunchTemplateId", prefix);
	const char *name = paramf(p, "%sLaunchTemplateName", prefix);
	const char *version = paramf(p, "%sVersion", prefix);
	char msg[400];
	*out = NULL;
	if (!id && !name)
		return true;
	json_t *t = emu_template_find(e, id, name); /* one made a moment ago is not visible yet */
	if (!t && id) {
		snprintf(msg, sizeof msg, "The specified launch template, with template ID %.128s, does not exist.", id);
		emu_error(r, 400, "InvalidLaunchTemplateId.NotFound", msg, rid);
		return false;
	}
	if (!t) {
		snprintf(msg, sizeof msg, "The specified launch template, with template name %.128s, does not exist.",
			 name);
		emu_error(r, 400, "InvalidLaunchTemplateName.NotFoundException", msg, rid);
		return false;
	}
	if (version && !version_exists(version)) {
		snprintf(msg, sizeof msg, "Could not find the specified version %.64s for the launch template with ID %s.",
			 version, param(t, "id"));
		emu_error(r, 400, "InvalidLaunchTemplateId.VersionNotFound", msg, rid);
		return false;
	}
	*out = t;
	return true;
}

const char *emu_az_of(emu *e, const char *subnet, char *buf, size_t size)
{
	/* A subnet lives in one AZ: pick it from the subnet id, stably. */
	unsigned h = 0;
	for (const char *p = subnet ? subnet : ""; *p; p++)
		h = h * 31 + (unsigned char)*p;
	snprintf(buf, size, "%s%c", e->region, subnet ? 'a' + (char)(h % 3) : 'a');
	return buf;
}

json_t *emu_launch(emu *e, const emu_launch_spec *spec, const char *token, const char *lifecycle, json_t *tags,
		   const char *reservation, int index)
{
	uint64_t n = ++e->next_id;
	char id[32], ip[32], dns[64], pub[32], az[48], when[32], res[32];
	snprintf(id, sizeof id, "i-%017llx", (unsigned long long)(0x0e00000000000000ull + n));
	snprintf(ip, sizeof ip, "10.0.%u.%u", (unsigned)(n >> 8) & 255, (unsigned)n & 255);
	snprintf(dns, sizeof dns, "ip-10-0-%u-%u.ec2.internal", (unsigned)(n >> 8) & 255, (unsigned)n & 255);
	snprintf(pub, sizeof pub, "54.%u.%u.%u", (unsigned)(n >> 16) & 255, (unsigned)(n >> 8) & 255,
		 (unsigned)n & 255);
	emu_time_now(when, sizeof when);
	if (!reservation) {
		snprintf(res, sizeof res, "r-%017llx", (unsigned long long)emu_rand(e) >> 4);
		reservation = res;
	}
	/* Each instance its own tags: CreateTags changes one, not its siblings. */
	json_t *in = json_pack("{s:s, s:s?, s:s, s:s?, s:s?, s:s?, s:s?, s:s, s:s, s:s, s:s, s:s, s:I, s:i, s:o, s:s, s:I}",
			       "id", id, "image", spec->image, "type", spec->type, "subnet", spec->subnet, "key",
			       spec->key, "token", token, "lifecycle", lifecycle, "ip", ip, "dns", dns, "public_ip",
			       pub, "az", emu_az_of(e, spec->subnet, az, sizeof az), "launch_time", when, "launch_ms",
			       (json_int_t)emu_now_ms(), "index", index, "tags", tags ? json_deep_copy(tags) : json_object(),
			       "reservation", reservation, "weight", (json_int_t)(spec->weight > 0 ? spec->weight : 1));
	if (!in)
		abort(); /* a bug in the format above */
	if (lifecycle && strcmp(lifecycle, "spot") == 0)
		emu_spot_request_new(e, in);
	json_object_set(e->by_id, id, in);
	json_array_append_new(e->instances, in);
	return in;
}

static long int_param(json_t *p, const char *key, long dflt)
{
	const char *v = param(p, key);
	if (!v)
		return dflt;
	char *end;
	long n = strtol(v, &end, 10);
	return *end || end == v ? -1 : n;
}

/* The canonical form of the parameters for ClientToken comparison. */
static char *params_hash(json_t *p)
{
	json_t *copy = json_deep_copy(p);
	json_object_del(copy, "DryRun");
	char *s = json_dumps(copy, JSON_SORT_KEYS | JSON_COMPACT);
	json_decref(copy);
	return s;
}

/* By id through the index: a 200-id describe over thousands of instances
 * must not cost 200 scans. */
json_t *emu_find(emu *e, const char *id) { return json_object_get(e->by_id, id); }

static void reservation_xml(emu *e, const char *reservation, json_t *instances, const char *rid, emu_reply *r);

/* EC2 answers a replayed RunInstances with the instances' states now, not
 * those of the first answer. */
bool emu_replay(emu *e, const char *action, json_t *p, const char *token, const char *rid, emu_reply *r)
{
	json_t *seen = token ? json_object_get(e->tokens, token) : NULL;
	if (!seen)
		return false;
	char *h = params_hash(p);
	bool same = strcmp(h, param(seen, "hash")) == 0 && strcmp(action, param(seen, "action")) == 0;
	free(h);
	if (!same) {
		emu_error(r, 400, "IdempotentParameterMismatch",
			  "Client token is already used with different parameters", rid);
		return true;
	}
	json_t *ids = json_object_get(seen, "instance_ids");
	if (ids) {
		json_t *list = json_array();
		size_t i;
		json_t *id;
		json_array_foreach(ids, i, id) json_array_append(list, emu_find(e, json_string_value(id)));
		reservation_xml(e, param(seen, "reservation"), list, rid, r);
		json_decref(list);
		return true;
	}
	emu_head(&r->body, action, rid);
	eb_add(&r->body, param(seen, "tail"));
	r->status = 200;
	return true;
}

json_t *emu_remember(emu *e, const char *action, json_t *p, const char *token, emu_reply *r)
{
	if (!token)
		return NULL;
	const char *tail = strstr(r->body.s, "</requestId>");
	char *h = params_hash(p);
	json_t *seen = json_pack("{s:s, s:s, s:s}", "action", action, "hash", h, "tail",
				 tail ? tail + strlen("</requestId>") : "");
	free(h);
	json_object_set_new(e->tokens, token, seen);
	return seen;
}

void emu_dry_run_ok(emu_reply *r, const char *rid)
{
	emu_error(r, 412, "DryRunOperation", "Request would have succeeded, but DryRun flag is set.", rid);
}

static bool ice(emu *e, const char *type, const char *az)
{
	return in_list(e->ice_types, type) || in_list(e->ice_azs, az);
}

bool emu_can_launch(emu *e, const char *type, const char *subnet)
{
	char az[48];
	return !ice(e, type, emu_az_of(e, subnet, az, sizeof az)) && (e->capacity < 0 || e->capacity > live_count(e));
}

static void reservation_xml(emu *e, const char *reservation, json_t *instances, const char *rid, emu_reply *r)
{
	emu_head(&r->body, "RunInstances", rid);
	eb_elem(&r->body, "reservationId", reservation);
	eb_add(&r->body, "<ownerId>123456789012</ownerId><groupSet/><instancesSet>");
	size_t i;
	json_t *in;
	json_array_foreach(instances, i, in) instance_xml(e, &r->body, in);
	eb_add(&r->body, "</instancesSet></RunInstancesResponse>");
	r->status = 200;
}

static void run_instances(emu *e, json_t *p, const char *rid, emu_reply *r)
{
	json_t *tmpl;
	if (!template_param(e, p, "LaunchTemplate.", rid, r, &tmpl))
		return;
	/* The request's own parameters override the launch template's. */
	json_t *ltd = json_object_get(tmpl, "data");
	const char *image = param(p, "ImageId") ? param(p, "ImageId") : param(ltd, "ImageId");
	const char *type = param(p, "InstanceType") ? param(p, "InstanceType") : param(ltd, "InstanceType");
	if (!type)
		type = "m1.small";
	long minc = int_param(p, "MinCount", 0), maxc = int_param(p, "MaxCount", 0);
	char msg[300];
	if (!image)
		return emu_error(r, 400, "MissingParameter", "The request must contain the parameter ImageId", rid);
	if (strncmp(image, "ami-", 4) != 0) {
		snprintf(msg, sizeof msg, "Invalid id: \"%.200s\" (expecting \"ami-...\")", image);
		return emu_error(r, 400, "InvalidAMIID.Malformed", msg, rid);
	}
	if (minc < 1 || maxc < 1 || minc > maxc)
		return emu_error(r, 400, "InvalidParameterValue",
				 "MinCount and MaxCount must be integers >= 1 with MinCount <= MaxCount", rid);
	/* Validated before DryRun: a dry run answers whether the launch would
	 * be accepted, so a type EC2 does not have is not DryRunOperation. */
	if (!emu_instance_type_known(type)) {
		snprintf(msg, sizeof msg, "Invalid value '%.200s' for InstanceType.", type);
		return emu_error(r, 400, "InvalidParameterValue", msg, rid);
	}
	if (!emu_tag_specs_ok(p, "", rid, r))
		return;
	if (is_true(p, "DryRun"))
		return emu_dry_run_ok(r, rid);
	if (emu_replay(e, "RunInstances", p, param(p, "ClientToken"), rid, r))
		return;
	const char *subnet = param(p, "SubnetId") ? param(p, "SubnetId") : param(ltd, "SubnetId");
	const char *key = param(p, "KeyName") ? param(p, "KeyName") : param(ltd, "KeyName");
	char az[48];
	if (ice(e, type, emu_az_of(e, subnet, az, sizeof az)))
		return emu_error(r, 500, "InsufficientInstanceCapacity",
				 "We currently do not have sufficient capacity in the Availability Zone you requested", rid);
	int64_t room = e->capacity < 0 ? maxc : e->capacity - live_count(e);
	if (room < minc)
		return emu_error(r, 500, "InsufficientInstanceCapacity",
				 "There is not enough capacity to fulfill your request (MinCount)", rid);
	long n = maxc < room ? maxc : (long)room;
	char res[32];
	snprintf(res, sizeof res, "r-%017llx", (unsigned long long)emu_rand(e) >> 4);
	const char *market = param(p, "InstanceMarketOptions.MarketType");
	json_t *tags = json_deep_copy(json_object_get(ltd, "tags")), *own = read_tags(p);
	if (!tags)
		tags = json_object();
	json_object_update(tags, own);
	json_decref(own);
	json_t *launched = json_array(), *ids = json_array();
	for (long i = 0; i < n; i++) {
		emu_launch_spec spec = {image, type, subnet, key, 1};
		json_t *in = emu_launch(e, &spec, param(p, "ClientToken"),
					market && strcmp(market, "spot") == 0 ? "spot" : NULL, tags, res, (int)i);
		json_array_append(launched, in);
		json_array_append(ids, json_object_get(in, "id"));
	}
	json_decref(tags);
	reservation_xml(e, res, launched, rid, r);
	json_decref(launched);
	json_t *seen = emu_remember(e, "RunInstances", p, param(p, "ClientToken"), r);
	if (seen) {
		json_object_set_new(seen, "reservation", json_string(res));
		json_object_set(seen, "instance_ids", ids);
	}
	json_decref(ids);
}

/* ---- CreateFleet (instant) --------------------------------------------------------- */

typedef struct fleet_override {
	const char *type, *subnet, *image; /* image: the override's, else the template's */
	long weight;
} fleet_override;

static void fleet_error_xml(emu_buf *b, const char *lt, const fleet_override *o, const char *lifecycle,
			    const char *code, const char *msg, const char *az)
{
	eb_add(b, "<item><launchTemplateAndOverrides><launchTemplateSpecification>");
	eb_elem(b, "launchTemplateId", lt);
	eb_add(b, "<version>1</version></launchTemplateSpecification><overrides>");
	eb_elem(b, "instanceType", o->type);
	if (o->subnet)
		eb_elem(b, "subnetId", o->subnet);
	eb_elem(b, "availabilityZone", az);
	eb_add(b, "</overrides></launchTemplateAndOverrides>");
	eb_elem(b, "lifecycle", lifecycle);
	eb_elem(b, "errorCode", code);
	eb_elem(b, "errorMessage", msg);
	eb_add(b, "</item>");
}

/* Launches `target` units over the overrides in order; writes errorSet
 * items into `errs` and fleetInstanceSet items into `insts`, appends the
 * instance ids to `ids`. */
static void fleet_fill(emu *e, json_t *p, const char *lt, json_t *ltd, fleet_override *ov, int nov,
		       long target, const char *lifecycle, const char *fleet_id, json_t *tags, emu_buf *errs,
		       emu_buf *insts, json_t *ids)
{
	for (int k = 0; k < nov && target > 0; k++) {
		char az[48];
		emu_az_of(e, ov[k].subnet, az, sizeof az);
		int64_t room = e->capacity < 0 ? INT64_MAX : e->capacity - live_count(e);
		if (ice(e, ov[k].type, az) || room <= 0) {
			fleet_error_xml(errs, lt, &ov[k], lifecycle, "InsufficientInstanceCapacity",
					"We currently do not have sufficient capacity in the Availability Zone you requested",
					az);
			continue;
		}
		long w = ov[k].weight > 0 ? ov[k].weight : 1;
		long n = (target + w - 1) / w;
		if (n > room)
			n = (long)room;
		char res[32];
		snprintf(res, sizeof res, "r-%017llx", (unsigned long long)emu_rand(e) >> 4);
		eb_add(insts, "<item><launchTemplateAndOverrides><launchTemplateSpecification>");
		eb_elem(insts, "launchTemplateId", lt);
		eb_add(insts, "<version>1</version></launchTemplateSpecification><overrides>");
		eb_elem(insts, "instanceType", ov[k].type);
		if (ov[k].subnet)
			eb_elem(insts, "subnetId", ov[k].subnet);
		eb_elem(insts, "availabilityZone", az);
		eb_add(insts, "</overrides></launchTemplateAndOverrides>");
		eb_elem(insts, "lifecycle", lifecycle);
		eb_add(insts, "<instanceIds>");
		for (long i = 0; i < n; i++) {
			emu_launch_spec spec = {ov[k].image, ov[k].type,
						ov[k].subnet ? ov[k].subnet : param(ltd, "SubnetId"), param(ltd, "KeyName"), w};
			json_t *in = emu_launch(e, &spec, param(p, "ClientToken"), lifecycle, tags, res, (int)i);
			json_object_set_new(in, "group", json_string(fleet_id));
			json_array_append(ids, json_object_get(in, "id"));
			eb_elem(insts, "item", param(in, "id"));
		}
		eb_add(insts, "</instanceIds>");
		eb_elem(insts, "instanceType", ov[k].type);
		eb_add(insts, "</item>");
		target -= n * w;
	}
}

/* LaunchTemplateConfigs.1.Overrides.N (the template's type alone when none);
 * false with r filled when one has no image from anywhere. */
static bool fleet_overrides(json_t *p, json_t *ltd, fleet_override *ov, int *nov, const char *rid, emu_reply *r)
{
	const char *pre = "LaunchTemplateConfigs.1.Overrides";
	*nov = 0;
	for (int k = 1; *nov < 64; k++) {
		const char *t = paramf(p, "%s.%d.InstanceType", pre, k);
		if (!t)
			break;
		const char *w = paramf(p, "%s.%d.WeightedCapacity", pre, k);
		const char *image = paramf(p, "%s.%d.ImageId", pre, k);
		ov[(*nov)++] = (fleet_override){t, paramf(p, "%s.%d.SubnetId", pre, k),
						image ? image : param(ltd, "ImageId"), w ? (long)atof(w) : 1};
	}
	if (*nov == 0)
		ov[(*nov)++] = (fleet_override){param(ltd, "InstanceType") ? param(ltd, "InstanceType") : "m5.large",
						NULL, param(ltd, "ImageId"), 1};
	for (int k = 0; k < *nov; k++) {
		if (!ov[k].image) {
			emu_error(r, 400, "MissingParameter", "The request must contain the parameter ImageId", rid);
			return false;
		}
	}
	return true;
}

/* The instance tags of a fleet: the launch template's, the request's, and
 * EC2's aws:ec2:fleet-id. */
static json_t *fleet_tags(json_t *p, json_t *ltd, const char *fleet_id)
{
	json_t *tags = json_deep_copy(json_object_get(ltd, "tags"));
	json_t *own = read_tags(p);
	if (!tags)
		tags = json_object();
	json_object_update(tags, own);
	json_decref(own);
	json_object_set_new(tags, "aws:ec2:fleet-id", json_string(fleet_id));
	return tags;
}

/* A fleet of any type is kept as a group (groups.c): DescribeFleets,
 * DeleteFleets and, for maintain, replacement work on it. */
static json_t *fleet_group(emu *e, json_t *p, const char *fleet_id, const char *type, json_t *tmpl,
			   fleet_override *ov, int nov, long total, long od, json_t *tags)
{
	json_t *ltd = json_object_get(tmpl, "data");
	json_t *g = emu_group_new(e, "fleet", fleet_id, type);
	json_t *specs = json_object_get(g, "specs");
	for (int k = 0; k < nov; k++)
		json_array_append_new(specs, json_pack("{s:s, s:s, s:s?, s:s?, s:I, s:s}", "image", ov[k].image, "type",
						       ov[k].type, "subnet",
						       ov[k].subnet ? ov[k].subnet : param(ltd, "SubnetId"), "key",
						       param(ltd, "KeyName"), "weight",
						       (json_int_t)(ov[k].weight > 0 ? ov[k].weight : 1), "lt_id",
						       param(tmpl, "id")));
	const char *dflt = param(p, "TargetCapacitySpecification.DefaultTargetCapacityType");
	const char *excess = param(p, "ExcessCapacityTerminationPolicy");
	/* DescribeFleets gives the template back as the request named it */
	json_object_set_new(g, "lt_spec", json_pack("{s:s?, s:s?}", "id",
						    param(p, "LaunchTemplateConfigs.1.LaunchTemplateSpecification.LaunchTemplateId"),
						    "name",
						    param(p, "LaunchTemplateConfigs.1.LaunchTemplateSpecification.LaunchTemplateName")));
	json_object_update_new(g, json_pack("{s:I, s:I, s:O, s:s?, s:s, s:s, s:s, s:s}", "target", (json_int_t)total,
					"on_demand", (json_int_t)od, "tags", tags, "token", param(p, "ClientToken"),
					"lt_id", param(tmpl, "id"), "lt_version",
					param(p, "LaunchTemplateConfigs.1.LaunchTemplateSpecification.Version")
						? param(p, "LaunchTemplateConfigs.1.LaunchTemplateSpecification.Version")
						: "$Default",
					"default_type", dflt ? dflt : "on-demand", "excess",
					excess ? excess : "termination"));
	return g;
}

static void create_fleet(emu *e, json_t *p, const char *rid, emu_reply *r)
{
	const char *type = param(p, "Type");
	long total = int_param(p, "TargetCapacitySpecification.TotalTargetCapacity", 0);
	if (!type)
		type = "maintain"; /* EC2's default */
	if (strcmp(type, "instant") != 0 && strcmp(type, "request") != 0 && strcmp(type, "maintain") != 0) {
		char msg[200];
		snprintf(msg, sizeof msg, "The fleet type '%.64s' is not valid: instant, request or maintain", type);
		return emu_error(r, 400, "InvalidParameterValue", msg, rid);
	}
	json_t *tmpl;
	if (!template_param(e, p, "LaunchTemplateConfigs.1.LaunchTemplateSpecification.", rid, r, &tmpl))
		return;
	if (!tmpl)
		return emu_error(r, 400, "MissingParameter",
				 "LaunchTemplateConfigs.1.LaunchTemplateSpecification.LaunchTemplateId is required", rid);
	const char *lt = param(tmpl, "id");
	json_t *ltd = json_object_get(tmpl, "data");
	if (total < 1)
		return emu_error(r, 400, "InvalidTargetCapacitySpecification",
				 "TotalTargetCapacity must be an integer >= 1", rid);
	fleet_override ov[64];
	int nov;
	if (!fleet_overrides(p, ltd, ov, &nov, rid, r))
		return;
	if (!emu_tag_specs_ok(p, "", rid, r))
		return;
	if (is_true(p, "DryRun"))
		return emu_dry_run_ok(r, rid);
	if (emu_replay(e, "CreateFleet", p, param(p, "ClientToken"), rid, r))
		return;
	const char *dflt = param(p, "TargetCapacitySpecification.DefaultTargetCapacityType");
	long od = int_param(p, "TargetCapacitySpecification.OnDemandTargetCapacity", -1);
	long spot = int_param(p, "TargetCapacitySpecification.SpotTargetCapacity", -1);
	bool dflt_spot = dflt && strcmp(dflt, "spot") == 0;
	if (od < 0 && spot < 0) {
		od = dflt_spot ? 0 : total;
		spot = total - od;
	} else if (od < 0) {
		od = total - spot;
	} else {
		spot = total - od;
	}
	char fleet_id[64];
	emu_uuid(e, "fleet-", fleet_id, sizeof fleet_id);
	json_t *tags = fleet_tags(p, ltd, fleet_id);
	json_t *g = fleet_group(e, p, fleet_id, type, tmpl, ov, nov, total, od, tags);
	emu_buf errs = {0}, insts = {0};
	eb_add(&errs, "");
	eb_add(&insts, "");
	if (strcmp(type, "instant") == 0) {
		/* instant answers what it launched and what failed, per override. */
		json_t *ids = json_object_get(g, "instances");
		if (od > 0)
			fleet_fill(e, p, lt, ltd, ov, nov, od, "on-demand", fleet_id, tags, &errs, &insts, ids);
		if (spot > 0)
			fleet_fill(e, p, lt, ltd, ov, nov, spot, "spot", fleet_id, tags, &errs, &insts, ids);
	} else {
		emu_group_fill(e, g, NULL);
	}
	json_decref(tags);
	emu_head(&r->body, "CreateFleet", rid);
	eb_elem(&r->body, "fleetId", fleet_id);
	eb_printf(&r->body, "<errorSet>%s</errorSet><fleetInstanceSet>%s</fleetInstanceSet>", errs.s, insts.s);
	eb_add(&r->body, "</CreateFleetResponse>");
	eb_free(&errs);
	eb_free(&insts);
	r->status = 200;
	emu_remember(e, "CreateFleet", p, param(p, "ClientToken"), r);
}

/* A launch spec from a launch template, with an override's type, subnet and
 * weight (NULL: the template's own). */
static bool template_spec(json_t *specs, json_t *tmpl, const char *type, const char *subnet, const char *weight,
			  const char *rid, emu_reply *r)
{
	json_t *ltd = json_object_get(tmpl, "data");
	type = type ? type : param(ltd, "InstanceType");
	if (!type || !param(ltd, "ImageId")) {
		emu_error(r, 400, "MissingParameter",
			  "A launch template without an ImageId or InstanceType needs them in Overrides", rid);
		return false;
	}
	json_array_append_new(specs, json_pack("{s:s, s:s, s:s?, s:s?, s:I, s:O, s:s}", "image", param(ltd, "ImageId"),
					       "type", type, "subnet", subnet ? subnet : param(ltd, "SubnetId"), "key",
					       param(ltd, "KeyName"), "weight",
					       (json_int_t)(weight && atof(weight) >= 1 ? atof(weight) : 1), "tags",
					       json_object_get(ltd, "tags"), "lt_id", param(tmpl, "id")));
	return true;
}

bool emu_template_configs(emu *e, json_t *p, const char *prefix, json_t *specs, const char *rid, emu_reply *r)
{
	for (int c = 1;; c++) {
		char pre[200];
		snprintf(pre, sizeof pre, "%sLaunchTemplateConfigs.%d.", prefix, c);
		char spec[240];
		snprintf(spec, sizeof spec, "%sLaunchTemplateSpecification.", pre);
		json_t *tmpl;
		if (!template_param(e, p, spec, rid, r, &tmpl))
			return false;
		if (!tmpl)
			return true;
		if (!paramf(p, "%sOverrides.1.InstanceType", pre) && !template_spec(specs, tmpl, NULL, NULL, NULL, rid, r))
			return false;
		for (int k = 1; paramf(p, "%sOverrides.%d.InstanceType", pre, k); k++)
			if (!template_spec(specs, tmpl, paramf(p, "%sOverrides.%d.InstanceType", pre, k),
					   paramf(p, "%sOverrides.%d.SubnetId", pre, k),
					   paramf(p, "%sOverrides.%d.WeightedCapacity", pre, k), rid, r))
				return false;
	}
}

/* ---- launch templates ------------------------------------------------------------------ */

static bool template_name_ok(const char *n)
{
	size_t len = n ? strlen(n) : 0;
	return len >= 3 && len <= 128 &&
	       strspn(n, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789().-/_") == len;
}

/* LaunchTemplateData.* as an object: the members this emulator uses. */
static json_t *template_data(json_t *p)
{
	static const char *const scalars[] = {"ImageId", "InstanceType", "KeyName", "UserData"};
	json_t *d = json_object();
	for (size_t i = 0; i < sizeof scalars / sizeof scalars[0]; i++) {
		const char *v = paramf(p, "LaunchTemplateData.%s", scalars[i]);
		if (v)
			json_object_set_new(d, scalars[i], json_string(v));
	}
	const char *subnet = param(p, "LaunchTemplateData.NetworkInterface.1.SubnetId");
	if (subnet)
		json_object_set_new(d, "SubnetId", json_string(subnet));
	json_t *groups = json_array();
	for (int k = 1;; k++) {
		const char *g = paramf(p, "LaunchTemplateData.SecurityGroupId.%d", k);
		if (!g)
			break;
		json_array_append_new(groups, json_string(g));
	}
	json_object_set_new(d, "SecurityGroupIds", groups);
	json_object_set_new(d, "tags", read_tags_at(p, "LaunchTemplateData."));
	return d;
}

static void template_xml(emu_buf *b, json_t *t)
{
	eb_elem(b, "launchTemplateId", param(t, "id"));
	eb_elem(b, "launchTemplateName", param(t, "name"));
	eb_elem(b, "createTime", param(t, "created"));
	eb_elem(b, "createdBy", "arn:aws:iam::123456789012:root");
	eb_add(b, "<defaultVersionNumber>1</defaultVersionNumber><latestVersionNumber>1</latestVersionNumber>");
}

/* Stores a template under its name (taking `data`); the stored object. */
static json_t *template_add(emu *e, const char *id, const char *name, json_t *data)
{
	char when[32];
	time_t now = time(NULL);
	strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S.000Z", gmtime(&now));
	json_t *t = json_pack("{s:s, s:s, s:s, s:I, s:o}", "id", id, "name", name, "created", when,
			      "usable_ms", (json_int_t)(emu_now_ms() + e->lt_settle_ms), "data", data);
	if (!t)
		abort(); /* a bug in the format above */
	json_object_set_new(e->templates, name, t);
	return t;
}

static bool template_id_ok(const char *id)
{
	size_t len = id ? strlen(id) : 0;
	return len > 3 && len <= 20 && strncmp(id, "lt-", 3) == 0 && strspn(id + 3, "0123456789abcdef") == len - 3;
}

int emu_add_template(emu *e, const char *id, const char *name, const char *image, const char *type, bool seed,
		     char *err, size_t size)
{
	const char *why = NULL;
	if (!template_id_ok(id))
		why = "id must be lt- followed by 1 to 17 lowercase hex digits";
	else if (!template_name_ok(name))
		why = "name must be 3 to 128 of A-Z a-z 0-9 ( ) . - / _";
	else if (image && *image && strncmp(image, "ami-", 4) != 0)
		why = "image must start with ami-";
	else if (template_by_id(e, id) || json_object_get(e->templates, name))
		why = "a launch template with this id or name already exists";
	if (why) {
		snprintf(err, size, "launch template %s:%s: %s", id ? id : "", name ? name : "", why);
		return -1;
	}
	json_t *d = json_pack("{s:[], s:{}}", "SecurityGroupIds", "tags");
	if (image && *image)
		json_object_set_new(d, "ImageId", json_string(image));
	if (type && *type)
		json_object_set_new(d, "InstanceType", json_string(type));
	json_t *t = template_add(e, id, name, d);
	if (seed)
		json_array_append_new(e->seeds, json_deep_copy(t));
	return 0;
}

static void create_launch_template(emu *e, json_t *p, const char *rid, emu_reply *r)
{
	const char *name = param(p, "LaunchTemplateName");
	if (!name)
		return emu_error(r, 400, "MissingParameter",
				 "The request must contain the parameter LaunchTemplateName", rid);
	if (!template_name_ok(name))
		return emu_error(r, 400, "InvalidLaunchTemplateName.MalformedException",
				 "A launch template name must be between 3 and 128 characters, and may contain "
				 "letters, numbers, and the following characters: - ( ) . / _.'", rid);
	if (!emu_tag_specs_ok(p, "LaunchTemplateData.", rid, r))
		return;
	if (is_true(p, "DryRun"))
		return emu_dry_run_ok(r, rid);
	if (emu_replay(e, "CreateLaunchTemplate", p, param(p, "ClientToken"), rid, r))
		return;
	if (json_object_get(e->templates, name))
		return emu_error(r, 400, "InvalidLaunchTemplateName.AlreadyExistsException",
				 "Launch template name already in use.", rid);
	char id[32];
	snprintf(id, sizeof id, "lt-%017llx", (unsigned long long)emu_rand(e) >> 4);
	json_t *t = template_add(e, id, name, template_data(p));
	emu_head(&r->body, "CreateLaunchTemplate", rid);
	eb_add(&r->body, "<launchTemplate>");
	template_xml(&r->body, t);
	eb_add(&r->body, "</launchTemplate></CreateLaunchTemplateResponse>");
	r->status = 200;
	emu_remember(e, "CreateLaunchTemplate", p, param(p, "ClientToken"), r);
}

/* The templates named by LaunchTemplateId.N / LaunchTemplateName.N (all
 * when neither is given); NULL with r filled when one does not exist. */
static json_t *templates_param(emu *e, json_t *p, const char *rid, emu_reply *r)
{
	json_t *list = json_array();
	bool any = false;
	for (int k = 1;; k++) {
		const char *id = paramf(p, "LaunchTemplateId.%d", k), *name = paramf(p, "LaunchTemplateName.%d", k);
		if (!id && !name)
			break;
		any = true;
		json_t *t = id ? template_by_id(e, id) : NULL, *u = name ? json_object_get(e->templates, name) : NULL;
		if ((id && !t) || (name && !u)) {
			json_decref(list);
			emu_error(r, 400, id && !t ? "InvalidLaunchTemplateId.NotFound" : "InvalidLaunchTemplateName.NotFoundException",
				  "At least one of the launch templates specified in the request does not exist.", rid);
			return NULL;
		}
		if (t)
			json_array_append(list, t);
		if (u && u != t)
			json_array_append(list, u);
	}
	if (!any) {
		const char *name;
		json_t *t;
		json_object_foreach(e->templates, name, t) json_array_append(list, t);
	}
	return list;
}

static void describe_launch_templates(emu *e, json_t *p, const char *rid, emu_reply *r)
{
	json_t *list = templates_param(e, p, rid, r);
	if (!list)
		return;
	emu_head(&r->body, "DescribeLaunchTemplates", rid);
	eb_add(&r->body, "<launchTemplates>");
	size_t i;
	json_t *t;
	json_array_foreach(list, i, t) {
		eb_add(&r->body, "<item>");
		template_xml(&r->body, t);
		eb_add(&r->body, "</item>");
	}
	eb_add(&r->body, "</launchTemplates></DescribeLaunchTemplatesResponse>");
	json_decref(list);
	r->status = 200;
}

static void delete_launch_template(emu *e, json_t *p, const char *rid, emu_reply *r)
{
	const char *id = param(p, "LaunchTemplateId"), *name = param(p, "LaunchTemplateName");
	json_t *t = id ? template_by_id(e, id) : json_object_get(e->templates, name ? name : "");
	if (!id && !name)
		return emu_error(r, 400, "MissingParameter",
				 "The request must contain the parameter LaunchTemplateId or LaunchTemplateName", rid);
	if (!t)
		return emu_error(r, 400, id ? "InvalidLaunchTemplateId.NotFound" : "InvalidLaunchTemplateName.NotFoundException",
				 "The specified launch template does not exist.", rid);
	if (is_true(p, "DryRun"))
		return emu_dry_run_ok(r, rid);
	emu_head(&r->body, "DeleteLaunchTemplate", rid);
	eb_add(&r->body, "<launchTemplate>");
	template_xml(&r->body, t);
	eb_add(&r->body, "</launchTemplate></DeleteLaunchTemplateResponse>");
	json_object_del(e->templates, param(t, "name"));
	r->status = 200;
}

/* ---- describe / terminate ------------------------------------------------------------- */

bool emu_instance_id_ok(const char *id)
{
	size_t n = strlen(id);
	return strncmp(id, "i-", 2) == 0 && (n == 10 || n == 19) && strspn(id + 2, "0123456789abcdef") == n - 2;
}

json_t *emu_ids_param(emu *e, json_t *p, const char *rid, emu_reply *r)
{
	/* A malformed id is refused before any lookup, as EC2 does. */
	for (int k = 1;; k++) {
		const char *id = paramf(p, "InstanceId.%d", k);
		if (!id)
			break;
		if (!emu_instance_id_ok(id)) {
			char msg[300];
			snprintf(msg, sizeof msg, "Invalid id: \"%.200s\"", id);
			emu_error(r, 400, "InvalidInstanceID.Malformed", msg, rid);
			return NULL;
		}
	}
	json_t *list = json_array();
	emu_buf missing = {0};
	for (int k = 1;; k++) {
		const char *id = paramf(p, "InstanceId.%d", k);
		if (!id)
			break;
		json_t *in = emu_find(e, id);
		if (in) {
			json_array_append(list, in);
		} else {
			if (missing.len)
				eb_add(&missing, ", ");
			eb_printf(&missing, "'%s'", id);
		}
	}
	if (missing.len) {
		char msg[600];
		snprintf(msg, sizeof msg, "The instance ID%s %.500s do%s not exist",
			 strchr(missing.s, ',') ? "s" : "", missing.s, strchr(missing.s, ',') ? "" : "es");
		emu_error(r, 400, "InvalidInstanceID.NotFound", msg, rid);
		eb_free(&missing);
		json_decref(list);
		return NULL;
	}
	return list;
}

/* DescribeInstances' filters this emulator models (EC2 has more). */
static const char *const instance_filters[] = {
	"availability-zone", "client-token", "image-id", "instance-id", "instance-lifecycle",
	"instance-state-code", "instance-state-name", "instance-type", "ip-address", "key-name",
	"launch-index", "launch-time", "owner-id", "private-dns-name", "private-ip-address",
	"reservation-id", "subnet-id", "tag:", "tag-key", "tag-value", NULL,
};

const char *emu_instance_field(emu *e, json_t *in, const char *name, char *buf, size_t size)
{
	static const struct {
		const char *filter, *member;
	} plain[] = {
		{"availability-zone", "az"}, {"client-token", "token"}, {"image-id", "image"},
		{"instance-id", "id"}, {"instance-lifecycle", "lifecycle"}, {"instance-type", "type"},
		{"ip-address", "public_ip"}, {"key-name", "key"}, {"launch-time", "launch_time"},
		{"private-dns-name", "dns"}, {"private-ip-address", "ip"}, {"reservation-id", "reservation"},
		{"subnet-id", "subnet"},
	};
	for (size_t i = 0; i < sizeof plain / sizeof plain[0]; i++)
		if (strcmp(name, plain[i].filter) == 0)
			return param(in, plain[i].member);
	int code;
	const char *state = emu_state_of(e, in, &code);
	if (strcmp(name, "instance-state-name") == 0)
		return state;
	if (strcmp(name, "instance-state-code") == 0)
		snprintf(buf, size, "%d", code);
	else if (strcmp(name, "launch-index") == 0)
		snprintf(buf, size, "%lld", (long long)json_integer_value(json_object_get(in, "index")));
	else if (strcmp(name, "owner-id") == 0)
		snprintf(buf, size, "123456789012");
	else
		return NULL;
	return buf;
}

long emu_max_results(json_t *p, const char *rid, emu_reply *r)
{
	if (!param(p, "MaxResults"))
		return -1;
	if (param(p, "InstanceId.1")) {
		emu_error(r, 400, "InvalidParameterCombination",
			  "The parameter instancesSet cannot be used with the parameter maxResults", rid);
		return 0;
	}
	long max = int_param(p, "MaxResults", 0);
	if (max < 5 || max > 1000) {
		emu_error(r, 400, "InvalidParameterValue", "MaxResults must be from 5 to 1000", rid);
		return 0;
	}
	return max;
}

static void describe_instances(emu *e, json_t *p, const char *rid, emu_reply *r)
{
	long max = emu_max_results(p, rid, r);
	if (max == 0)
		return;
	/* EC2 may page even an id query when the answer is large. */
	long page = max > 0 ? max : e->page_size;
	json_t *filters = emu_filters(p, instance_filters, rid, r);
	if (!filters)
		return;
	json_t *pool = param(p, "InstanceId.1") ? emu_ids_param(e, p, rid, r) : json_incref(e->instances);
	long start = pool ? emu_describe_start(e, "DescribeInstances", p, rid, r) : -1, shown = 0, i = 0;
	if (start < 0) {
		json_decref(pool);
		json_decref(filters);
		return;
	}
	emu_head(&r->body, "DescribeInstances", rid);
	eb_add(&r->body, "<reservationSet>");
	const char *open_res = NULL;
	size_t k;
	json_t *in;
	long next = -1;
	json_array_foreach(pool, k, in) {
		if (!emu_filters_match(e, filters, in, emu_instance_field))
			continue;
		if (i++ < start)
			continue;
		if (page > 0 && shown == page) {
			next = i - 1;
			break;
		}
		const char *res = param(in, "reservation");
		if (!open_res || strcmp(open_res, res) != 0) {
			if (open_res)
				eb_add(&r->body, "</instancesSet></item>");
			eb_add(&r->body, "<item>");
			eb_elem(&r->body, "reservationId", res);
			eb_add(&r->body, "<ownerId>123456789012</ownerId><groupSet/><instancesSet>");
			open_res = res;
		}
		instance_xml(e, &r->body, in);
		shown++;
	}
	if (open_res)
		eb_add(&r->body, "</instancesSet></item>");
	eb_add(&r->body, "</reservationSet>");
	emu_page_next(e, "DescribeInstances", p, next, &r->body);
	eb_add(&r->body, "</DescribeInstancesResponse>");
	json_decref(pool);
	json_decref(filters);
	r->status = 200;
}

static void terminate_instances(emu *e, json_t *p, const char *rid, emu_reply *r)
{
	if (!param(p, "InstanceId.1"))
		return emu_error(r, 400, "MissingParameter", "The request must contain the parameter InstanceId", rid);
	json_t *list = emu_ids_param(e, p, rid, r);
	if (!list)
		return;
	if (is_true(p, "DryRun")) {
		json_decref(list);
		return emu_dry_run_ok(r, rid);
	}
	emu_head(&r->body, "TerminateInstances", rid);
	eb_add(&r->body, "<instancesSet>");
	size_t i;
	json_t *in;
	json_array_foreach(list, i, in) {
		int before, after;
		const char *prev = emu_state_of(e, in, &before);
		emu_terminate(e, in, EMU_USER_SHUTDOWN);
		const char *cur = emu_state_of(e, in, &after);
		eb_add(&r->body, "<item>");
		eb_elem(&r->body, "instanceId", param(in, "id"));
		state_xml(&r->body, "currentState", cur, after);
		state_xml(&r->body, "previousState", prev, before);
		eb_add(&r->body, "</item>");
	}
	eb_add(&r->body, "</instancesSet></TerminateInstancesResponse>");
	json_decref(list);
	r->status = 200;
}

static void describe_regions(emu *e, json_t *p, const char *rid, emu_reply *r)
{
	(void)p;
	const char *regions[] = {"us-east-1", "us-east-2", "us-west-2", "eu-west-1", e->region};
	emu_head(&r->body, "DescribeRegions", rid);
	eb_add(&r->body, "<regionInfo>");
	for (int i = 0; i < 5; i++) {
		if (i == 4 && (strcmp(e->region, "us-east-1") == 0 || strcmp(e->region, "us-east-2") == 0 ||
			       strcmp(e->region, "us-west-2") == 0 || strcmp(e->region, "eu-west-1") == 0))
			break;
		eb_add(&r->body, "<item>");
		eb_elem(&r->body, "regionName", regions[i]);
		eb_printf(&r->body, "<regionEndpoint>ec2.%s.amazonaws.com</regionEndpoint>", regions[i]);
		eb_add(&r->body, "<optInStatus>opt-in-not-required</optInStatus></item>");
	}
	eb_add(&r->body, "</regionInfo></DescribeRegionsResponse>");
	r->status = 200;
}

static void describe_azs(emu *e, json_t *p, const char *rid, emu_reply *r)
{
	(void)p;
	emu_head(&r->body, "DescribeAvailabilityZones", rid);
	eb_add(&r->body, "<availabilityZoneInfo>");
	for (char c = 'a'; c <= 'c'; c++) {
		char az[48];
		snprintf(az, sizeof az, "%s%c", e->region, c);
		eb_add(&r->body, "<item>");
		eb_elem(&r->body, "zoneName", az);
		eb_add(&r->body, "<zoneState>available</zoneState>");
		eb_elem(&r->body, "regionName", e->region);
		eb_add(&r->body, "</item>");
	}
	eb_add(&r->body, "</availabilityZoneInfo></DescribeAvailabilityZonesResponse>");
	r->status = 200;
}

/* The actions this emulator serves: one table for the three services one
 * endpoint answers (a request names its service by what it is signed for). */
static const struct {
	const char *service, *name;
	void (*run)(emu *e, json_t *p, const char *rid, emu_reply *r);
} actions[] = {
	{"ec2", "RunInstances", run_instances},
	{"ec2", "CreateFleet", create_fleet},
	{"ec2", "DescribeInstances", describe_instances},
	{"ec2", "TerminateInstances", terminate_instances},
	{"ec2", "CreateLaunchTemplate", create_launch_template},
	{"ec2", "DescribeLaunchTemplates", describe_launch_templates},
	{"ec2", "DeleteLaunchTemplate", delete_launch_template},
	{"ec2", "DescribeRegions", describe_regions},
	{"ec2", "DescribeAvailabilityZones", describe_azs},
	{"ec2", "CreateTags", emu_create_tags},
	{"ec2", "DeleteTags", emu_delete_tags},
	{"ec2", "DescribeTags", emu_describe_tags},
	{"ec2", "DescribeInstanceStatus", emu_describe_instance_status},
	{"ec2", "DescribeSpotInstanceRequests", emu_describe_spot_instance_requests},
	{"ec2", "DescribeImages", emu_describe_images},
	{"ec2", "DescribeFleets", emu_describe_fleets},
	{"ec2", "DescribeFleetInstances", emu_describe_fleet_instances},
	{"ec2", "DeleteFleets", emu_delete_fleets},
	{"ec2", "ModifyFleet", emu_modify_fleet},
	{"ec2", "RequestSpotFleet", emu_request_spot_fleet},
	{"ec2", "DescribeSpotFleetRequests", emu_describe_spot_fleet_requests},
	{"ec2", "DescribeSpotFleetInstances", emu_describe_spot_fleet_instances},
	{"ec2", "CancelSpotFleetRequests", emu_cancel_spot_fleet_requests},
	{"ec2", "ModifySpotFleetRequest", emu_modify_spot_fleet_request},
	{"autoscaling", "CreateAutoScalingGroup", emu_create_auto_scaling_group},
	{"autoscaling", "SetDesiredCapacity", emu_set_desired_capacity},
	{"autoscaling", "TerminateInstanceInAutoScalingGroup", emu_terminate_instance_in_asg},
	{"autoscaling", "DescribeAutoScalingGroups", emu_describe_auto_scaling_groups},
	{"autoscaling", "DescribeAutoScalingInstances", emu_describe_auto_scaling_instances},
	{"autoscaling", "DeleteAutoScalingGroup", emu_delete_auto_scaling_group},
	{"ssm", "GetParameter", emu_get_parameter},
};

bool emu_service_known(const char *service)
{
	return strcmp(service, "ec2") == 0 || strcmp(service, "autoscaling") == 0 || strcmp(service, "ssm") == 0;
}

void emu_service_error(emu_reply *r, const char *service, int status, const char *code, const char *message,
		       const char *rid)
{
	if (strcmp(service, "autoscaling") == 0)
		emu_asg_error(r, status, code, message, rid);
	else if (strcmp(service, "ssm") == 0)
		emu_ssm_error(r, status, code, message, rid);
	else
		emu_error(r, status, code, message, rid);
}

void emu_dispatch(emu *e, const char *service, const char *action, json_t *params, const char *rid, emu_reply *r)
{
	bool query = strcmp(service, "ssm") != 0; /* ssm speaks JSON: no Version */
	if (!action)
		return emu_service_error(r, service, 400, query ? "MissingAction" : "UnknownOperationException",
					 query ? "The request must contain the parameter Action"
					       : "The request must name the operation in X-Amz-Target",
					 rid);
	if (query && !param(params, "Version"))
		return emu_service_error(r, service, 400, "MissingParameter",
					 "The request must contain the parameter Version", rid);
	emu_groups_reconcile(e);
	for (size_t i = 0; i < sizeof actions / sizeof actions[0]; i++)
		if (strcmp(service, actions[i].service) == 0 && strcmp(action, actions[i].name) == 0) {
			actions[i].run(e, params, rid, r);
			return;
		}
	if (query)
		return emu_service_error(r, service, 400, "InvalidAction",
					 "The action is not valid for this web service", rid);
	emu_ssm_error(r, 400, "UnknownOperationException", "", rid);
}

json_t *emu_instance_stats(emu *e)
{
	json_t *by_token = json_object(), *by_state = json_object();
	size_t i;
	json_t *in;
	json_array_foreach(e->instances, i, in) {
		int code;
		const char *st = emu_state_of(e, in, &code);
		json_object_set_new(by_state, st, json_integer(json_integer_value(json_object_get(by_state, st)) + 1));
		const char *t = param(in, "token");
		if (t)
			json_object_set_new(by_token, t, json_integer(json_integer_value(json_object_get(by_token, t)) + 1));
	}
	return json_pack("{s:I, s:I, s:o, s:o, s:I}", "total", (json_int_t)json_array_size(e->instances), "live",
			 (json_int_t)live_count(e), "by_state", by_state, "by_client_token", by_token, "groups",
			 (json_int_t)json_object_size(e->groups));
}
