/*
 * routes.c - the route table and the operator routes: probes, /metrics,
 * the strategy graph, runtime strategy updates, exec, log levels, alerts,
 * reload. The broker routes are in routes_broker.c.
 *
 * Routing is a short list of (method, pattern) pairs matched segment by
 * segment: a dozen routes do not need a trie, and a known path with the
 * wrong method answers 405 with Allow instead of 404.
 */
#include <stdlib.h>
#include <string.h>
#include "server/server_internal.h"

typedef void (*h0)(srv_req *r);
typedef void (*h1)(srv_req *r, const char *arg);

typedef struct route {
	srv_method method;
	const char *pattern; /* "*" matches one segment, passed to h1 */
	srv_role role;
	h0 fn0;
	h1 fn1;
	bool slow;  /* calls providers: runs on a worker, not on the loop */
	bool store; /* reads the store through the loop's broker */
} route;

static void post_reload(srv_req *r);

static const route routes[] = {
	{SRV_GET, "/health", SRV_ROLE_NONE, srv_get_health, NULL},
	{SRV_GET, "/ready", SRV_ROLE_NONE, srv_get_ready, NULL, .store = true},
	{SRV_GET, "/metrics", SRV_ROLE_READ, srv_get_metrics, NULL},
	{SRV_GET, "/openapi.json", SRV_ROLE_NONE, srv_get_openapi, NULL},
	{SRV_GET, "/api/v1/templates", SRV_ROLE_READ, srv_get_templates, NULL, .store = true},
	{SRV_GET, "/api/v1/templates/*", SRV_ROLE_READ, NULL, srv_get_template, .store = true},
	{SRV_POST, "/api/v1/requests", SRV_ROLE_ADMIN, srv_post_requests, NULL, true, true},
	{SRV_GET, "/api/v1/requests", SRV_ROLE_READ, srv_get_requests, NULL, .store = true},
	{SRV_GET, "/api/v1/requests/*", SRV_ROLE_READ, NULL, srv_get_request, .store = true},
	{SRV_POST, "/api/v1/returns", SRV_ROLE_ADMIN, srv_post_returns, NULL, true, true},
	{SRV_GET, "/api/v1/machines", SRV_ROLE_READ, srv_get_machines, NULL, .store = true},
	{SRV_GET, "/api/v1/providers", SRV_ROLE_READ, srv_get_providers, NULL},
	{SRV_GET, "/api/v1/providers/*/health", SRV_ROLE_READ, NULL, srv_get_provider_health, true},
	{SRV_POST, "/api/v1/providers/*/exec", SRV_ROLE_ADMIN, NULL, srv_post_exec, true, true},
	{SRV_PUT, "/api/v1/strategy", SRV_ROLE_ADMIN, srv_put_strategy, NULL, true},
	{SRV_GET, "/api/v1/log-levels", SRV_ROLE_READ, srv_get_log_levels, NULL},
	{SRV_PUT, "/api/v1/log-levels", SRV_ROLE_ADMIN, srv_put_log_levels, NULL},
	{SRV_GET, "/api/v1/alerts", SRV_ROLE_READ, srv_get_alerts, NULL},
	{SRV_POST, "/api/v1/reload", SRV_ROLE_ADMIN, post_reload, NULL, true},
};

/* Whether `path` matches `pattern`; the "*" segment is copied to arg. */
static bool match(const char *pattern, const char *path, char *arg, size_t size)
{
	while (*pattern && *path) {
		if (*pattern == '*') {
			const char *end = strchr(path, '/');
			size_t n = end ? (size_t)(end - path) : strlen(path);
			if (n == 0 || n >= size)
				return false;
			memcpy(arg, path, n);
			arg[n] = '\0';
			path += n;
			pattern++;
			continue;
		}
		if (*pattern++ != *path++)
			return false;
	}
	return !*pattern && !*path;
}

/* 404 or 405 (with Allow) for a path no route of this method serves. */
static void no_route(srv_req *r, const char *path, const char *allow)
{
	if (allow[0]) {
		srv_add_header(r, "Allow", allow);
		srv_reply_error(r, 405, "METHOD_NOT_ALLOWED", NULL, "%s %s: allowed: %s",
				srv_method_name(r->method), path, allow);
		return;
	}
	srv_reply_error(r, 404, "NOT_FOUND", NULL, "no route %s (see docs/api.md)", path);
}

/* The route of r's method and path, its "*" segment in r->arg; NULL when
 * none (answered). */
static const route *find(srv_req *r)
{
	char allow[64] = "";
	size_t plen = strlen(r->path);
	char path[SRV_MAX_PATH];
	/* one trailing slash is forgiven */
	if (plen > 1 && r->path[plen - 1] == '/')
		plen--;
	memcpy(path, r->path, plen);
	path[plen] = '\0';
	srv_method m = r->method == SRV_HEAD ? SRV_GET : r->method;
	for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
		const route *rt = &routes[i];
		if (!match(rt->pattern, path, r->arg, sizeof r->arg))
			continue;
		if (rt->method == m)
			return rt;
		snprintf(allow + strlen(allow), sizeof allow - strlen(allow), "%s%s", allow[0] ? ", " : "",
			 srv_method_name(rt->method));
	}
	no_route(r, path, allow);
	return NULL;
}

/* The query string, split and decoded into r->query. */
static int read_query(srv_req *r)
{
	char *q = strchr(r->head->target, '?');
	if (!q || !q[1])
		return 0;
	const char *why, *key;
	/* decoded in place: the head is the connection's, and the log keeps
	 * only the path, before the '?' */
	if (srv_query_parse(q + 1, r->query, &r->n_query, &why, &key) < 0) {
		r->n_query = 0;
		srv_reply_error(r, 400, "INVALID_QUERY", key, "malformed query string: %s%s%s", why,
				key ? ": " : "", key ? key : "");
		return -1;
	}
	return 0;
}

int srv_route_prepare(srv_req *r)
{
	srv_method m = r->method;
	if (m == SRV_CONNECT || m == SRV_OPTIONS || m == SRV_TRACE || m == SRV_PATCH || m == SRV_OTHER) {
		r->close = r->close || m == SRV_CONNECT; /* whatever follows a CONNECT is not HTTP */
		srv_reply_error(r, 501, "NOT_IMPLEMENTED", NULL, "method %s is not supported here (GET, HEAD, "
				"POST, PUT, DELETE are)", m == SRV_OTHER ? "(unknown)" : srv_method_name(m));
		return -1;
	}
	const char *why = "";
	int st = srv_path_decode(r->head->target, r->path, sizeof r->path, &why);
	if (st) {
		srv_reply_error(r, st, st == 414 ? "URI_TOO_LONG" : "INVALID_PATH", NULL, "%s", why);
		return -1;
	}
	if (read_query(r) < 0)
		return -1;
	const route *rt = find(r);
	if (!rt || srv_auth(r, rt->role) < 0)
		return -1;
	/* probes and metrics answer without the store (a loop opens its
	 * connection on first use, which may be when descriptors ran out) */
	if (rt->store && !rt->slow) {
		if (!srv_thread_broker(r->t)) {
			srv_reply_error(r, 503, "UNAVAILABLE", NULL, "the store cannot be opened: %s",
					pv_error_last());
			return -1;
		}
		r->w = r->t->w; /* the same world, unless a reload just landed */
	}
	r->route = rt;
	return 0;
}

void srv_route_run(srv_req *r)
{
	const route *rt = r->route;
	if (rt->slow && srv_offload(r, rt->fn0, rt->fn1) == 0)
		return;
	if (rt->fn0)
		rt->fn0(r);
	else
		rt->fn1(r, r->arg);
}

/* ---- probes ---------------------------------------------------------------------- */

void srv_get_health(srv_req *r)
{
	double up = (double)(pv_now_ns() - r->t->srv->started_ns) / 1e9;
	srv_reply_json(r, 200, json_pack("{s:s, s:s, s:f}", "status", "ok", "version", PROVISIO_VERSION,
					 "uptime_seconds", up));
}

void srv_get_ready(srv_req *r)
{
	pv_store *st = pv_broker_store(r->t->b);
	bool store_ok = pv_store_begin(st, false) == 0;
	if (store_ok)
		store_ok = pv_store_commit(st) == 0;
	else
		pv_store_rollback(st);
	pv_context *ctx = pv_broker_context(r->w->main);
	json_t *names = pv_context_names(ctx);
	size_t i, healthy = 0;
	json_t *n;
	json_array_foreach(names, i, n) {
		pv_health h = {0};
		if (pv_context_check_health(ctx, json_string_value(n), &h) == 0 && h.healthy)
			healthy++;
		pv_health_clear(&h);
	}
	json_decref(names);
	bool ready = store_ok && healthy > 0;
	srv_reply_json(r, ready ? 200 : 503,
		       json_pack("{s:b, s:s, s:I}", "ready", ready, "store", store_ok ? "ok" : "unreachable",
				 "healthy_providers", (json_int_t)healthy));
}

void srv_get_metrics(srv_req *r)
{
	size_t len = 0;
	char *text = srv_prom_render(r->t->srv, r->w, &len);
	if (!text) {
		srv_reply_error(r, 500, "INTERNAL_ERROR", NULL, "metrics could not be rendered");
		return;
	}
	srv_reply_text(r, 200, "text/plain; version=0.0.4; charset=utf-8", text, len);
	free(text);
}

/* docs/openapi.yaml as JSON (tools/openapi/embed.py, at build time): the
 * API's description needs no token, as the docs need none. */
extern const char srv_openapi_json[];
extern const size_t srv_openapi_json_len;

void srv_get_openapi(srv_req *r)
{
	srv_reply_text(r, 200, "application/json", srv_openapi_json, srv_openapi_json_len);
}

/* ---- the strategy graph ------------------------------------------------------------- */

void srv_get_providers(srv_req *r)
{
	srv_reply_json(r, 200, pv_config_providers_view(pv_broker_context(r->w->main), r->w->graph));
}

void srv_get_provider_health(srv_req *r, const char *name)
{
	pv_health h = {0};
	if (pv_context_check_health(pv_broker_context(r->w->main), name, &h) < 0) {
		srv_reply_error(r, 404, "STRATEGY_NOT_FOUND", NULL, "no strategy or provider '%s'", name);
		return;
	}
	json_t *j = pv_health_to_json(&h);
	json_object_set_new(j, "name", json_string(name));
	pv_health_clear(&h);
	srv_reply_json(r, 200, j);
}

void srv_put_strategy(srv_req *r)
{
	json_t *body = srv_body_object(r);
	if (!body)
		return;
	static const char *const allowed[] = {"selection_policy", "selection_criteria", "weights", NULL};
	if (srv_check_fields(r, body, allowed) < 0) {
		json_decref(body);
		return;
	}
	pv_diags d;
	pv_diags_init(&d);
	int rc = pv_config_update(pv_broker_context(r->w->main), body, &d);
	json_decref(body);
	if (rc < 0) {
		const pv_diag *first = NULL;
		for (size_t i = 0; i < d.n && !first; i++)
			if (d.items[i].level == PV_DIAG_ERROR)
				first = &d.items[i];
		json_t *e = json_pack("{s:s, s:s, s:o}", "code", "INVALID_UPDATE", "message",
				      first ? first->message : pv_error_last(), "problems", pv_diags_to_json(&d));
		if (first && first->path)
			json_object_set_new(e, "field", json_string(first->path));
		pv_diags_clear(&d);
		srv_reply_json(r, 400, json_pack("{s:o}", "error", e));
		return;
	}
	pv_diags_clear(&d);
	srv_log(r->t->srv, PV_LOG_INFO, "server", r, "strategy updated by %s",
		r->token_name[0] ? r->token_name : "(auth off)");
	srv_reply_json(r, 200, pv_config_providers_view(pv_broker_context(r->w->main), r->w->graph));
}

/* ---- exec ------------------------------------------------------------------------------ */

static int exec_parse(srv_req *r, json_t *body, pv_operation *op)
{
	static const char *const allowed[] = {"operation", "params", "context", "deadline_ms", NULL};
	if (srv_check_fields(r, body, allowed) < 0)
		return -1;
	json_t *o = json_object_get(body, "operation"), *p = json_object_get(body, "params");
	json_t *c = json_object_get(body, "context"), *d = json_object_get(body, "deadline_ms");
	if (!json_is_string(o) || pv_op_parse(json_string_value(o), &op->type) < 0) {
		srv_reply_error(r, 400, "INVALID_FIELD", "operation", "operation: %s",
				json_is_string(o) ? pv_error_last() : "must be an operation name string");
		return -1;
	}
	if (p && !json_is_object(p)) {
		srv_reply_error(r, 400, "INVALID_FIELD", "params", "params: must be an object");
		return -1;
	}
	/* a template (with whatever command or image it names) comes from the
	 * templates file on disk, never from the request */
	if (json_object_get(p, "template")) {
		srv_reply_error(r, 400, "INVALID_FIELD", "params.template", "params.template: templates come "
				"only from the templates file; name one with params.template_id");
		return -1;
	}
	json_t *tid = json_object_get(p, "template_id");
	if (tid) {
		const json_t *t = json_is_string(tid) ? pv_broker_template(r->t->b, json_string_value(tid)) : NULL;
		if (!t) {
			srv_reply_error(r, 400, "INVALID_FIELD", "params.template_id", "params.template_id: %s",
					json_is_string(tid) ? "no such template in the templates file"
							    : "must be a string");
			return -1;
		}
		json_object_set_new(p, "template", json_deep_copy(t));
	}
	if (c && !json_is_object(c)) {
		srv_reply_error(r, 400, "INVALID_FIELD", "context", "context: must be an object");
		return -1;
	}
	if (d && (!json_is_integer(d) || json_integer_value(d) < 1 || json_integer_value(d) > 86400000)) {
		srv_reply_error(r, 400, "INVALID_FIELD", "deadline_ms", "deadline_ms: must be an integer "
				"from 1 to 86400000");
		return -1;
	}
	op->params = p;
	op->context = c;
	if (d)
		op->deadline_ns = pv_now_ns() + (uint64_t)json_integer_value(d) * PV_NS_PER_MS;
	return 0;
}

void srv_post_exec(srv_req *r, const char *name)
{
	if (!r->w->set.allow_exec) {
		srv_reply_error(r, 403, "EXEC_DISABLED", NULL, "running operations on providers directly is off; "
				"it is turned on by server.allow_exec: true");
		return;
	}
	pv_context *ctx = pv_broker_context(r->w->main);
	pv_strategy *s = pv_context_strategy(ctx, name);
	if (!s) {
		srv_reply_error(r, 404, "STRATEGY_NOT_FOUND", NULL, "no strategy or provider '%s'", name);
		return;
	}
	pv_strategy_unref(s);
	json_t *body = srv_body_object(r);
	if (!body)
		return;
	pv_operation op = {0};
	if (exec_parse(r, body, &op) < 0) {
		json_decref(body);
		return;
	}
	/* the operation runs under the request's trace id unless it has one */
	json_t *ctxj = op.context ? json_incref(op.context) : json_object();
	if (!json_object_get(ctxj, "trace_id"))
		json_object_set_new(ctxj, "trace_id", json_string(r->trace_id));
	op.context = ctxj;
	bool debug = json_is_true(json_object_get(ctxj, "debug"));
	if (debug)
		srv_log(r->t->srv, PV_LOG_INFO, "trace", r, "%s on '%s' starts", pv_op_name(op.type), name);
	pv_result res = PV_RESULT_INIT;
	pv_context_execute_on(ctx, name, &op, &res);
	json_t *out = pv_result_to_json(&res);
	if (debug) {
		char *meta = json_dumps(json_object_get(out, "metadata"), JSON_COMPACT | JSON_SORT_KEYS);
		srv_log(r->t->srv, PV_LOG_INFO, "trace", r, "%s on '%s' answered by '%s' after %u attempt(s): "
			"%s; path %s", pv_op_name(op.type), name, res.provider, res.attempts,
			res.success ? "success" : res.error_code, meta ? meta : "{}");
		free(meta);
	}
	pv_result_clear(&res);
	json_decref(ctxj);
	json_decref(body);
	srv_reply_json(r, 200, out);
}

/* ---- log levels, alerts, reload ---------------------------------------------------------- */

void srv_get_log_levels(srv_req *r) { srv_reply_json(r, 200, srv_log_levels()); }

void srv_put_log_levels(srv_req *r)
{
	json_t *body = srv_body_object(r);
	if (!body)
		return;
	const char *k;
	json_t *v;
	json_object_foreach(body, k, v) {
		if (!json_is_string(v) || srv_log_set_component(k, json_string_value(v)) < 0) {
			srv_reply_error(r, 400, "INVALID_FIELD", k, "%s: %s", k,
					json_is_string(v) ? pv_error_last() : "must be a level string");
			json_decref(body);
			return;
		}
	}
	json_decref(body);
	srv_reply_json(r, 200, srv_log_levels());
}

void srv_get_alerts(srv_req *r) { srv_reply_json(r, 200, srv_alerts_json(r->t->srv, r->w)); }

static void post_reload(srv_req *r)
{
	pv_diags d;
	pv_diags_init(&d);
	int rc = pv_server_reload(r->t->srv, &d);
	if (rc < 0) {
		json_t *e = json_pack("{s:s, s:s, s:o}", "code", "INVALID_CONFIGURATION", "message",
				      pv_error_last(), "problems", pv_diags_to_json(&d));
		srv_reply_json(r, 400, json_pack("{s:o}", "error", e));
	} else
		srv_reply_json(r, 200, json_pack("{s:b, s:I}", "reloaded", 1, "generation",
						 (json_int_t)atomic_load(&r->t->srv->gen)));
	pv_diags_clear(&d);
}
