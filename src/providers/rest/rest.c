/*
 * rest.c - the REST provider as a strategy (see include/provisio/rest.h).
 *
 * Each operation is one logical call (call.c) to the provider-facing subset
 * of docs/api.md, and its answer is turned into the same result shapes the
 * other providers give (instances with instance_id, provider, state, ...),
 * so a broker, a fallback or a balancer cannot tell a remote provisio from a
 * local provider. Every instance names *this* strategy as its provider:
 * status and termination of a machine must come back here, whatever the
 * remote used behind its own API.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "provisio/error.h"
#include "providers/rest/rs.h"

static rs_provider *as_rs(pv_strategy *s) { return (rs_provider *)s; }

static void bad_param(pv_result *out, const char *fmt, const char *field)
{
	pv_result_fail(out, PV_ERR_INVALID_PARAMETERS, PV_CLASS_PERMANENT, fmt, field);
}

/* Finishes an operation whose call failed. */
static void call_failed(rs_call *c, pv_result *out)
{
	rs_err_to_result(&c->err, out);
	rs_call_annotate(c, out);
}

/* ---- machines -> instances ----------------------------------------------- */

static void copy_key(json_t *dst, const char *dkey, const json_t *src, const char *skey)
{
	json_t *v = json_object_get(src, skey);
	if (v && !json_is_null(v))
		json_object_set(dst, dkey, v);
}

/* The instance view of a remote machine M, or NULL when M has no id. */
static json_t *instance_of(rs_provider *p, const json_t *m)
{
	const char *id = json_string_value(json_object_get(m, "machine_id"));
	if (!id || !*id)
		return NULL;
	const char *state = json_string_value(json_object_get(m, "state"));
	json_t *v = json_pack("{s:s, s:s, s:s, s:s}", "instance_id", id, "provider", p->base.name,
			      "state", state ? state : "pending", "region", p->cfg.region);
	copy_key(v, "name", m, "name");
	copy_key(v, "private_ip", m, "private_ip");
	copy_key(v, "public_ip", m, "public_ip");
	copy_key(v, "template_id", m, "template_id");
	copy_key(v, "result", m, "result");
	copy_key(v, "remote_provider", m, "provider");
	copy_key(v, "remote_request_id", m, "request_id");
	copy_key(v, "message", m, "message");
	json_t *lt = json_object_get(m, "launch_time");
	if (json_is_integer(lt)) {
		json_object_set(v, "launch_time", lt);
		json_object_set_new(v, "launch_time_ms", json_integer(json_integer_value(lt) * 1000));
	}
	/* Our own request id when we made it, so the broker recognises it. */
	const char *rid = json_string_value(json_object_get(m, "request_id"));
	char ours[128];
	if (rid && rs_reqmap_ours(&p->reqmap, rid, ours, sizeof ours))
		json_object_set_new(v, "request_id", json_string(ours));
	else if (rid)
		json_object_set_new(v, "request_id", json_string(rid));
	return v;
}

/* Appends the instances of a machines array; false when it is not one. */
static bool add_instances(rs_provider *p, const json_t *machines, json_t *list, json_t *seen_ids)
{
	size_t i;
	json_t *m;
	if (!json_is_array(machines))
		return false;
	json_array_foreach(machines, i, m) {
		json_t *v = instance_of(p, m);
		if (!v)
			continue;
		if (seen_ids)
			json_object_set_new(seen_ids, json_string_value(json_object_get(v, "instance_id")),
					    json_true());
		json_array_append_new(list, v);
	}
	return true;
}

static void bad_shape(rs_provider *p, rs_call *c, const char *what, pv_result *out)
{
	rs_err_set(&c->err, RS_ERR_BAD_RESPONSE, PV_CLASS_TRANSIENT,
		   "rest '%s': %s %s answered JSON without %s", p->base.name, c->method, c->path, what);
	atomic_fetch_add_explicit(&p->bad_responses, 1, memory_order_relaxed);
	call_failed(c, out);
}

/* ---- parameters ------------------------------------------------------------ */

/* template_id, or the templateId of a template object. */
static const char *template_param(const pv_operation *op, pv_result *out)
{
	json_t *tid = json_object_get(op->params, "template_id");
	json_t *t = json_object_get(op->params, "template");
	if (tid && (!json_is_string(tid) || json_string_length(tid) == 0)) {
		bad_param(out, "parameter '%s' must be a non-empty string", "template_id");
		return NULL;
	}
	const char *id = tid ? json_string_value(tid) : json_string_value(json_object_get(t, "templateId"));
	if (!id || !*id)
		bad_param(out, "parameter '%s' (or template.templateId) is required", "template_id");
	return id && *id ? id : NULL;
}

/* A non-empty-or-absent string parameter. */
static bool string_param(const pv_operation *op, const char *key, const char **val, pv_result *out)
{
	json_t *v = json_object_get(op->params, key);
	*val = NULL;
	if (!v)
		return true;
	if (!json_is_string(v) || json_string_length(v) == 0 || json_string_length(v) > 200) {
		bad_param(out, "parameter '%s' must be a string of 1 to 200 characters", key);
		return false;
	}
	*val = json_string_value(v);
	return true;
}

static bool ids_param(const pv_operation *op, json_t **ids, bool required, pv_result *out)
{
	size_t i;
	json_t *v;
	*ids = json_object_get(op->params, "instance_ids");
	if (!*ids && !required)
		return true;
	if (!json_is_array(*ids)) {
		bad_param(out, "parameter '%s' must be an array of instance id strings", "instance_ids");
		return false;
	}
	json_array_foreach(*ids, i, v) {
		if (!json_is_string(v) || json_string_length(v) == 0) {
			bad_param(out, "parameter '%s' must be an array of instance id strings", "instance_ids");
			return false;
		}
	}
	return true;
}

/* `s` percent-encoded for a URL path segment or query value. */
static bool escape(const char *s, char *buf, size_t len)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t o = 0;
	for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
		bool plain = (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
			     (*c >= '0' && *c <= '9') || *c == '-' || *c == '_' || *c == '.' || *c == '~';
		if (o + (plain ? 1 : 3) >= len)
			return false;
		if (plain) {
			buf[o++] = (char)*c;
		} else {
			buf[o++] = '%';
			buf[o++] = hex[*c >> 4];
			buf[o++] = hex[*c & 15];
		}
	}
	buf[o] = '\0';
	return true;
}

/* ---- create ------------------------------------------------------------------ */

/* The broker writes a failed request's message as "CODE: text"; keep the
 * code (and its class) when it is one. */
static void fail_from_request(rs_provider *p, const json_t *r, pv_result *out)
{
	const char *msg = json_string_value(json_object_get(r, "message"));
	const char *status = json_string_value(json_object_get(r, "status"));
	char code[PV_RESULT_CODE_MAX] = PV_ERR_EXECUTION_ERROR;
	size_t n = msg ? strspn(msg, "ABCDEFGHIJKLMNOPQRSTUVWXYZ_") : 0;
	if (n >= 3 && n < sizeof code && msg[n] == ':')
		snprintf(code, sizeof code, "%.*s", (int)n, msg);
	pv_error_class cls = strcmp(code, PV_ERR_EXECUTION_ERROR) == 0 ? PV_CLASS_TRANSIENT
									: pv_error_code_class(code);
	if (strcmp(code, RS_ERR_CONNECTION) == 0 || strcmp(code, RS_ERR_UNHEALTHY) == 0 ||
	    strcmp(code, "CIRCUIT_OPEN") == 0)
		cls = PV_CLASS_TRANSIENT;
	pv_result_fail(out, code, cls, "rest '%s': the remote made no machine (request %s): %s",
		       p->base.name, status ? status : "?", msg && *msg ? msg : "no message");
}

static void create_answer(rs_provider *p, rs_call *c, int64_t count, const char *request_id,
			  pv_result *out)
{
	const json_t *r = c->json;
	const json_t *machines = json_object_get(r, "machines");
	const char *remote_id = json_string_value(json_object_get(r, "request_id"));
	if (!json_is_object(r) || !json_is_array(machines)) {
		bad_shape(p, c, "a request with a 'machines' array", out);
		return;
	}
	if (request_id && remote_id)
		rs_reqmap_put(&p->reqmap, request_id, remote_id);
	json_t *instances = json_array(), *ids = json_array();
	add_instances(p, machines, instances, NULL);
	size_t i;
	json_t *v;
	json_array_foreach(instances, i, v) json_array_append(ids, json_object_get(v, "instance_id"));
	size_t made = json_array_size(instances);
	if (made == 0) {
		json_decref(instances);
		json_decref(ids);
		fail_from_request(p, r, out);
	} else {
		json_t *data = json_pack("{s:o, s:o, s:I, s:I, s:b, s:s?, s:s?, s:O?}", "instances",
					 instances, "instance_ids", ids, "count", (json_int_t)made,
					 "requested", (json_int_t)count, "partial", (int64_t)made < count,
					 "request_id", request_id, "remote_request_id", remote_id,
					 "status", json_object_get(r, "status"));
		if (!c->idempotency_key)
			json_object_set_new(data, "idempotent", json_false());
		if (c->status == 200)
			json_object_set_new(data, "replayed", json_true());
		pv_result_ok(out, data);
	}
	if (remote_id)
		pv_result_meta_set(out, "remote_request_id", json_string(remote_id));
}

static void op_validate(rs_provider *p, const pv_operation *op, pv_result *out);

static void op_create(rs_provider *p, const pv_operation *op, pv_result *out)
{
	json_t *jc = json_object_get(op->params, "count");
	if (jc && (!json_is_integer(jc) || json_integer_value(jc) < 1 ||
		   json_integer_value(jc) > p->cfg.max_per_request)) {
		pv_result_fail(out, PV_ERR_INVALID_PARAMETERS, PV_CLASS_PERMANENT,
			       "parameter 'count' must be an integer from 1 to %" PRId64, p->cfg.max_per_request);
		return;
	}
	int64_t count = jc ? json_integer_value(jc) : 1;
	const char *tid = template_param(op, out), *request_id, *token;
	if (!tid || !string_param(op, "request_id", &request_id, out) ||
	    !string_param(op, "client_token", &token, out))
		return;
	if (pv_operation_dry_run(op)) {
		op_validate(p, op, out);
		if (out->success)
			pv_result_ok(out, json_pack("{s:b, s:I, s:I, s:s}", "dry_run", 1, "would_create",
						    (json_int_t)count, "requested", (json_int_t)count,
						    "template_id", tid));
		return;
	}
	/* One key per create call: the broker's client_token changes between
	 * its spill-over rounds (whose counts differ), the request id does
	 * not, and the same key with another body is a 409. */
	char key[300];
	const char *basis = token ? token : request_id;
	if (basis)
		snprintf(key, sizeof key, "%s:%s", p->base.name, basis);
	json_t *body = json_pack("{s:s, s:I}", "template_id", tid, "count", (json_int_t)count);
	rs_call c = {.method = "POST", .path = "/api/v1/requests", .body = body,
		     .idempotency_key = basis ? key : NULL};
	if (!rs_call_run(p, op, &c)) {
		if (c.status == 409)
			snprintf(c.err.message + strlen(c.err.message),
				 sizeof c.err.message - strlen(c.err.message),
				 " (the idempotency key was used before with another body)");
		call_failed(&c, out);
	} else {
		create_answer(p, &c, count, request_id, out);
		rs_call_annotate(&c, out);
	}
	json_decref(c.json);
	json_decref(body);
}

/* ---- status, describe --------------------------------------------------------- */

#define IDS_PER_CALL 50

/* GET /api/v1/machines?<query>, appending instances. False with out failed. */
static bool list_machines(rs_provider *p, const pv_operation *op, const char *query, json_t *list,
			  json_t *seen, pv_result *out, unsigned *attempts)
{
	char path[3072];
	snprintf(path, sizeof path, "/api/v1/machines%s%s", query[0] ? "?" : "", query);
	rs_call c = {.method = "GET", .path = path};
	bool ok = rs_call_run(p, op, &c);
	if (!ok)
		call_failed(&c, out);
	else if (!(ok = add_instances(p, json_object_get(c.json, "machines"), list, seen)))
		bad_shape(p, &c, "a 'machines' array", out);
	*attempts += c.attempts;
	json_decref(c.json);
	return ok;
}

/* Builds "ids=a,b,c" from ids[from..] up to IDS_PER_CALL or the buffer;
 * returns the next index. Ids with a comma cannot be asked for: skipped. */
static size_t ids_query(const json_t *ids, size_t from, char *q, size_t len)
{
	size_t o = (size_t)snprintf(q, len, "ids="), i = from;
	for (; i < json_array_size(ids) && i - from < IDS_PER_CALL; i++) {
		char enc[600];
		const char *id = json_string_value(json_array_get(ids, i));
		if (strchr(id, ',') || !escape(id, enc, sizeof enc))
			continue;
		if (o + strlen(enc) + 2 >= len)
			break;
		o += (size_t)snprintf(q + o, len - o, "%s%s", q[o - 1] == '=' ? "" : ",", enc);
	}
	return i;
}

static void op_status(rs_provider *p, const pv_operation *op, pv_result *out)
{
	json_t *ids;
	if (!ids_param(op, &ids, false, out))
		return;
	json_t *list = json_array(), *seen = json_object();
	unsigned attempts = 0;
	bool ok = true;
	if (!ids) {
		ok = list_machines(p, op, "", list, seen, out, &attempts);
	} else {
		for (size_t i = 0; ok && i < json_array_size(ids);) {
			char q[3000];
			size_t next = ids_query(ids, i, q, sizeof q);
			if (next == i)
				next = i + 1; /* an id that cannot be encoded: not found */
			else if (strcmp(q, "ids=") != 0)
				ok = list_machines(p, op, q, list, seen, out, &attempts);
			i = next;
		}
	}
	if (ok) {
		json_t *missing = json_array();
		size_t i;
		json_t *v;
		json_array_foreach(ids, i, v) if (!json_object_get(seen, json_string_value(v)))
			json_array_append(missing, v);
		pv_result_ok(out, json_pack("{s:O, s:o}", "instances", list, "not_found", missing));
	}
	if (attempts > 0)
		out->attempts = attempts;
	json_decref(list);
	json_decref(seen);
}

static void op_describe(rs_provider *p, const pv_operation *op, pv_result *out)
{
	const char *rid;
	if (!string_param(op, "request_id", &rid, out))
		return;
	char remote[128], enc[640], q[700] = "";
	bool mapped = rid && rs_reqmap_remote(&p->reqmap, rid, remote, sizeof remote);
	if (rid) {
		escape(mapped ? remote : rid, enc, sizeof enc);
		snprintf(q, sizeof q, "request_id=%s", enc);
	}
	json_t *list = json_array();
	unsigned attempts = 0;
	if (list_machines(p, op, q, list, NULL, out, &attempts)) {
		/* Only what belongs to the asked request (the remote filtered
		 * by its id; ours is what callers compare). */
		json_t *data = json_pack("{s:O, s:s?}", "instances", list, "request_id", rid);
		if (mapped)
			json_object_set_new(data, "remote_request_id", json_string(remote));
		pv_result_ok(out, data);
	}
	out->attempts = attempts ? attempts : 1;
	json_decref(list);
}

/* ---- terminate ------------------------------------------------------------------ */

static void op_terminate(rs_provider *p, const pv_operation *op, pv_result *out)
{
	json_t *ids;
	if (!ids_param(op, &ids, true, out))
		return;
	if (json_array_size(ids) == 0) {
		pv_result_ok(out, json_pack("{s:[], s:[]}", "terminated", "not_found"));
		return;
	}
	if (pv_operation_dry_run(op)) {
		/* Which of them the remote knows, nothing changed. */
		op_status(p, op, out);
		if (out->success) {
			json_t *would = json_array(), *inst;
			size_t i;
			json_array_foreach(json_object_get(out->data, "instances"), i, inst)
				json_array_append(would, json_object_get(inst, "instance_id"));
			json_t *nf = json_incref(json_object_get(out->data, "not_found"));
			pv_result_ok(out, json_pack("{s:o, s:o, s:b}", "terminated", would, "not_found", nf,
						    "dry_run", 1));
		}
		return;
	}
	json_t *machines = json_array(), *v;
	size_t i;
	json_array_foreach(ids, i, v) json_array_append_new(machines, json_pack("{s:O}", "machine_id", v));
	json_t *body = json_pack("{s:o}", "machines", machines);
	rs_call c = {.method = "POST", .path = "/api/v1/returns", .body = body};
	if (!rs_call_run(p, op, &c)) {
		/* The remote refuses a return naming machines it does not
		 * know: for the caller, they are not found. */
		if (c.status == 400 || c.status == 404)
			snprintf(c.err.code, sizeof c.err.code, "%s", PV_ERR_NOT_FOUND);
		call_failed(&c, out);
		pv_result_meta_set(out, "not_found", json_incref(ids));
	} else if (!json_is_object(c.json)) {
		bad_shape(p, &c, "a return request object", out);
	} else {
		/* a provisio remote returns the machines it knows and lists
		 * them (naming the others in its message); a remote that lists
		 * none took them all */
		json_t *done = json_array(), *missing = json_array(), *m;
		json_t *listed = json_object_get(c.json, "machines");
		json_array_foreach(ids, i, v) {
			size_t k;
			bool found = json_array_size(listed) == 0;
			json_array_foreach(listed, k, m) found |= json_equal(json_object_get(m, "machine_id"), v);
			json_array_append(found ? done : missing, v);
		}
		pv_result_ok(out, json_pack("{s:o, s:o, s:b, s:O?, s:O?}", "terminated", done, "not_found",
					    missing, "dry_run", 0, "return_request_id",
					    json_object_get(c.json, "request_id"), "status",
					    json_object_get(c.json, "status")));
		rs_call_annotate(&c, out);
	}
	json_decref(c.json);
	json_decref(body);
}

/* ---- templates, validate, health ---------------------------------------------- */

static void op_templates(rs_provider *p, const pv_operation *op, pv_result *out)
{
	rs_call c = {.method = "GET", .path = "/api/v1/templates"};
	json_t *t;
	if (!rs_call_run(p, op, &c))
		call_failed(&c, out);
	else if (!json_is_array(t = json_object_get(c.json, "templates")))
		bad_shape(p, &c, "a 'templates' array", out);
	else {
		pv_result_ok(out, json_pack("{s:O}", "templates", t));
		rs_call_annotate(&c, out);
	}
	json_decref(c.json);
}

static void op_validate(rs_provider *p, const pv_operation *op, pv_result *out)
{
	const char *tid = template_param(op, out);
	if (!tid)
		return;
	char enc[640], path[700];
	if (!escape(tid, enc, sizeof enc)) {
		bad_param(out, "parameter '%s' is too long", "template_id");
		return;
	}
	snprintf(path, sizeof path, "/api/v1/templates/%s", enc);
	rs_call c = {.method = "GET", .path = path};
	if (!rs_call_run(p, op, &c)) {
		if (c.status == 404)
			rs_err_set(&c.err, PV_ERR_INVALID_PARAMETERS, PV_CLASS_PERMANENT,
				   "template '%s' is not offered by rest '%s'", tid, p->base.name);
		call_failed(&c, out);
	} else if (!json_is_object(c.json)) {
		bad_shape(p, &c, "a template object", out);
	} else {
		pv_result_ok(out, json_pack("{s:b, s:s, s:O}", "valid", 1, "template_id", tid, "template",
					    c.json));
		rs_call_annotate(&c, out);
	}
	json_decref(c.json);
}

/* GET /ready: true when the remote says it can serve. `details` gets the
 * remote's answer (or the error). */
static bool check_ready(rs_provider *p, const pv_operation *op, rs_call *c, json_t **details)
{
	c->method = "GET";
	c->path = "/ready";
	c->no_retry = true;
	bool ok = rs_call_run(p, op, c);
	json_t *ready = json_object_get(c->json, "ready");
	bool is_ready = ok && json_is_true(ready);
	/* 503 with the /ready shape is an answer, not a transport failure. */
	if (!ok && c->status == 503 && json_is_object(c->json) && ready) {
		rs_err_set(&c->err, RS_ERR_UNHEALTHY, PV_CLASS_TRANSIENT,
			   "rest '%s': the remote is not ready (store %s, %" JSON_INTEGER_FORMAT
			   " healthy providers)", p->base.name,
			   json_is_string(json_object_get(c->json, "store"))
				   ? json_string_value(json_object_get(c->json, "store")) : "?",
			   json_integer_value(json_object_get(c->json, "healthy_providers")));
	} else if (ok && !is_ready) {
		rs_err_set(&c->err, RS_ERR_UNHEALTHY, PV_CLASS_TRANSIENT,
			   "rest '%s': the remote answered /ready without \"ready\": true", p->base.name);
	}
	*details = json_is_object(c->json) ? json_deep_copy(c->json) : json_object();
	json_object_set_new(*details, "endpoint", json_string(p->cfg.endpoint));
	json_object_set_new(*details, "region", json_string(p->cfg.region));
	if (!is_ready)
		json_object_set_new(*details, "error", json_string(c->err.message));
	return is_ready;
}

static void op_health(rs_provider *p, const pv_operation *op, pv_result *out)
{
	rs_call c = {0};
	json_t *details;
	if (check_ready(p, op, &c, &details)) {
		pv_result_ok(out, details);
	} else {
		call_failed(&c, out);
		pv_result_meta_set(out, "health", details);
	}
	json_decref(c.json);
}

static int rs_execute(pv_strategy *s, const pv_operation *op, pv_result *out)
{
	rs_provider *p = as_rs(s);
	if ((unsigned)op->type >= PV_OP_COUNT) {
		pv_result_fail(out, PV_ERR_INVALID_PARAMETERS, PV_CLASS_PERMANENT,
			       "unknown operation type %d", (int)op->type);
		return 0;
	}
	atomic_fetch_add_explicit(&p->calls[op->type], 1, memory_order_relaxed);
	if (op->params && !json_is_object(op->params)) {
		pv_result_fail(out, PV_ERR_INVALID_PARAMETERS, PV_CLASS_PERMANENT, "parameters must be an object");
		return 0;
	}
	switch (op->type) {
	case PV_OP_CREATE_INSTANCES: op_create(p, op, out); break;
	case PV_OP_TERMINATE_INSTANCES: op_terminate(p, op, out); break;
	case PV_OP_GET_INSTANCE_STATUS: op_status(p, op, out); break;
	case PV_OP_DESCRIBE_RESOURCE_INSTANCES: op_describe(p, op, out); break;
	case PV_OP_VALIDATE_TEMPLATE: op_validate(p, op, out); break;
	case PV_OP_GET_AVAILABLE_TEMPLATES: op_templates(p, op, out); break;
	case PV_OP_HEALTH_CHECK: op_health(p, op, out); break;
	default: break;
	}
	if (!out->provider[0])
		pv_result_set_provider(out, s->name);
	return 0;
}

/* ---- the strategy -------------------------------------------------------------- */

static int rs_capabilities(pv_strategy *s, pv_capabilities *out)
{
	rs_provider *p = as_rs(s);
	snprintf(out->type, sizeof out->type, "rest");
	out->operations = PV_OP_SET_ALL;
	out->features = json_pack("{s:b, s:b, s:b, s:[s], s:s, s:b}", "instance_management", 1,
				  "idempotent_create", 1, "remote", 1, "regions", p->cfg.region, "endpoint",
				  p->cfg.endpoint, "tls", strncmp(p->cfg.endpoint, "https:", 6) == 0);
	out->limitations = json_pack("{s:I, s:I, s:I}", "max_instances_per_request",
				     (json_int_t)p->cfg.max_per_request, "timeout_ms",
				     (json_int_t)p->cfg.timeout_ms, "max_retries",
				     (json_int_t)p->cfg.max_retries);
	return 0;
}

static int rs_health(pv_strategy *s, pv_health *out)
{
	rs_provider *p = as_rs(s);
	uint64_t t0 = pv_clock_now(p->clock);
	pv_operation op = {.type = PV_OP_HEALTH_CHECK,
			   .deadline_ns = t0 + (uint64_t)p->cfg.timeout_ms * PV_NS_PER_MS};
	rs_call c = {0};
	json_t *details;
	bool ok = check_ready(p, &op, &c, &details);
	out->response_ns = pv_clock_now(p->clock) - t0;
	if (ok)
		pv_health_set(out, true, "rest '%s': %s is ready (%.1f ms)", s->name, p->cfg.endpoint,
			      (double)out->response_ns / 1e6);
	else
		pv_health_set(out, false, "%s", c.err.message);
	out->details = details;
	out->checked_at_ms = pv_wall_ms();
	json_decref(c.json);
	return 0;
}

static json_t *rs_stats(pv_strategy *s)
{
	rs_provider *p = as_rs(s);
	json_t *calls = json_object();
	for (unsigned i = 0; i < PV_OP_COUNT; i++)
		json_object_set_new(calls, pv_op_name((pv_op_type)i),
				    json_integer((json_int_t)atomic_load(&p->calls[i])));
#define LOAD(x) (json_int_t) atomic_load_explicit(&p->x, memory_order_relaxed)
	return json_pack("{s:o, s:{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}, s:{s:I, s:I}, "
			 "s:s, s:s, s:I}",
			 "calls", calls, "http", "requests", LOAD(requests), "retries", LOAD(retries),
			 "throttled", LOAD(throttled), "server_errors", LOAD(server_errors),
			 "transport_errors", LOAD(transport_errors), "timeouts", LOAD(timeouts),
			 "bad_responses", LOAD(bad_responses), "auth_failures", LOAD(auth_failures),
			 "backoff_ms", LOAD(slept_ms), "handles", "created",
			 (json_int_t)atomic_load(&p->http.handles_created), "idle",
			 (json_int_t)rs_http_idle(&p->http), "endpoint", p->cfg.endpoint, "region",
			 p->cfg.region, "known_requests", (json_int_t)rs_reqmap_count(&p->reqmap));
#undef LOAD
}

static json_t *rs_state_save(pv_strategy *s)
{
	return json_pack("{s:o}", "requests", rs_reqmap_save(&as_rs(s)->reqmap));
}

static int rs_state_load(pv_strategy *s, const json_t *state)
{
	json_t *r = json_object_get(state, "requests");
	return r ? rs_reqmap_load(&as_rs(s)->reqmap, r) : 0;
}

static void rs_destroy(pv_strategy *s)
{
	rs_provider *p = as_rs(s);
	rs_http_fini(&p->http);
	rs_reqmap_fini(&p->reqmap);
	rs_config_free(&p->cfg);
}

static const pv_strategy_methods rs_methods = {
	.version = PV_STRATEGY_METHODS_VERSION,
	.execute = rs_execute,
	.capabilities = rs_capabilities,
	.health = rs_health,
	.destroy = rs_destroy,
	.stats = rs_stats,
	.state_save = rs_state_save,
	.state_load = rs_state_load,
};

int pv_rest_new(pv_strategy **out, const char *name, const json_t *config, const pv_clock *clock)
{
	*out = NULL;
	int rc = rs_global_init();
	if (rc < 0)
		return rc;
	rs_provider *p = pv_strategy_alloc(sizeof *p, &rs_methods, name, "rest");
	if (!p)
		return pv_error_last_code();
	p->clock = clock;
	rs_http_init(&p->http, &p->cfg);
	rs_reqmap_init(&p->reqmap);
	if ((rc = rs_config_parse(&p->cfg, name, config)) < 0) {
		pv_strategy_unref(&p->base);
		return rc;
	}
	if (p->cfg.seed == 0)
		p->cfg.seed = (uint64_t)pv_wall_ms() ^ (uint64_t)(uintptr_t)p;
	*out = &p->base;
	return 0;
}
