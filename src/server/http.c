/*
 * http.c - the plumbing every route shares: answers (JSON, errors, text),
 * reading bodies and query strings strictly, request and trace ids, and
 * the JSON-line log with per-component levels.
 *
 * Every answer goes through srv_send(), which counts it for /metrics and
 * writes the access log line, so no route can forget either, and no
 * request goes unlogged, however malformed (the connection layer answers
 * its own errors through the same calls).
 */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include "server/jsonw.h"
#include "server/server_internal.h"
#include "util/utf8.h"

const double srv_http_bounds_s[12] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
				      0.05,   0.1,   0.25,   0.5,   1,    5};

static _Thread_local const srv_req *current_req;

/* ---- log levels by component ---------------------------------------------------- */

static pthread_mutex_t levels_lock = PTHREAD_MUTEX_INITIALIZER;
static json_t *levels;                   /* {"component": level as integer} */
static atomic_int default_level = PV_LOG_INFO;
static pv_server *log_server;

static int level_parse(const char *s)
{
	static const char *const names[] = {"debug", "info", "warn", "error", "off"};
	for (int i = 0; s && i < 5; i++)
		if (strcmp(s, names[i]) == 0)
			return i;
	return -1;
}

/* The level of a component: its own, else its parent's ("providers.aws"
 * then "providers"), else the default. */
static int component_level(const char *component)
{
	int lv = atomic_load_explicit(&default_level, memory_order_relaxed);
	if (!component || !levels)
		return lv;
	char name[64];
	snprintf(name, sizeof name, "%s", component);
	pthread_mutex_lock(&levels_lock);
	for (;;) {
		json_t *v = json_object_get(levels, name);
		if (v) {
			lv = (int)json_integer_value(v);
			break;
		}
		char *dot = strrchr(name, '.');
		if (!dot)
			break;
		*dot = '\0';
	}
	pthread_mutex_unlock(&levels_lock);
	return lv;
}

/* The library filters before the sink: let through the lowest level any
 * component wants. */
static void sync_library_level(void)
{
	int lo = atomic_load(&default_level);
	pthread_mutex_lock(&levels_lock);
	const char *k;
	json_t *v;
	json_object_foreach(levels, k, v) if (json_integer_value(v) < lo) lo = (int)json_integer_value(v);
	pthread_mutex_unlock(&levels_lock);
	pv_log_set_level((pv_log_level)lo);
}

int srv_log_set_component(const char *component, const char *level)
{
	int lv = level_parse(level);
	if (lv < 0)
		return pv_error_set(PV_EINVAL, "level '%s' is not one of debug, info, warn, error, off",
				    level ? level : "(null)");
	if (!component || !*component || strlen(component) > 60)
		return pv_error_set(PV_EINVAL, "component: must be a name of 1..60 characters");
	if (strcmp(component, "*") == 0)
		atomic_store(&default_level, lv);
	else {
		pthread_mutex_lock(&levels_lock);
		if (!levels)
			levels = json_object();
		json_object_set_new(levels, component, json_integer(lv));
		pthread_mutex_unlock(&levels_lock);
	}
	sync_library_level();
	return 0;
}

json_t *srv_log_levels(void)
{
	json_t *out = json_object();
	json_object_set_new(out, "*", json_string(pv_log_level_name((pv_log_level)atomic_load(&default_level))));
	pthread_mutex_lock(&levels_lock);
	const char *k;
	json_t *v;
	json_object_foreach(levels, k, v)
		json_object_set_new(out, k, json_string(pv_log_level_name((pv_log_level)json_integer_value(v))));
	pthread_mutex_unlock(&levels_lock);
	return out;
}

/* ---- the line writer ----------------------------------------------------------------- */

static void write_line(pv_server *srv, json_t *line)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	struct tm tm;
	gmtime_r(&ts.tv_sec, &tm);
	char when[40];
	size_t n = strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(when + n, sizeof when - n, ".%03ldZ", ts.tv_nsec / 1000000);
	json_t *head = json_pack("{s:s}", "ts", when);
	if (!head || !line) {
		json_decref(head);
		return;
	}
	json_object_update(head, line);
	char *text = json_dumps(head, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(6));
	json_decref(head);
	if (!text)
		return;
	pthread_mutex_lock(&srv->log_lock);
	fputs(text, srv->log);
	fputc('\n', srv->log);
	fflush(srv->log);
	pthread_mutex_unlock(&srv->log_lock);
	free(text);
}

static void add_ids(json_t *line, const srv_req *r)
{
	if (!r)
		return;
	json_object_set_new(line, "request_id", json_string(r->request_id));
	json_object_set_new(line, "trace_id", json_string(r->trace_id));
}

void srv_log(pv_server *srv, pv_log_level level, const char *component, const srv_req *r,
	     const char *fmt, ...)
{
	if ((int)level < component_level(component) || level >= PV_LOG_OFF)
		return;
	char msg[2048];
	va_list ap;
	va_start(ap, fmt);
	pv_utf8_vformat(msg, sizeof msg, fmt, ap);
	va_end(ap);
	json_t *line = json_pack("{s:s, s:s, s:s}", "level", pv_log_level_name(level), "component",
				 component, "msg", msg);
	add_ids(line, r ? r : current_req);
	write_line(srv, line);
	json_decref(line);
}

/* The library's lines: "component: message" when they start that way. */
static void sink(void *user, pv_log_level level, const char *text)
{
	char component[48] = "core";
	const char *colon = strstr(text, ": ");
	size_t len = colon ? (size_t)(colon - text) : 0;
	if (len > 0 && len < sizeof component && !memchr(text, ' ', len)) {
		memcpy(component, text, len);
		component[len] = '\0';
		text = colon + 2;
	}
	if ((int)level < component_level(component))
		return;
	char msg[2048]; /* a provider's message may carry any bytes */
	pv_utf8_clean(msg, sizeof msg, text, strlen(text));
	json_t *line = json_pack("{s:s, s:s, s:s}", "level", pv_log_level_name(level), "component",
				 component, "msg", msg);
	add_ids(line, current_req);
	write_line(user, line);
	json_decref(line);
}

void srv_log_install(pv_server *srv, const srv_settings *s)
{
	pthread_mutex_lock(&levels_lock);
	json_decref(levels);
	levels = json_object();
	const char *k;
	json_t *v;
	json_object_foreach(s->log_components, k, v)
		json_object_set_new(levels, k, json_integer(level_parse(json_string_value(v))));
	pthread_mutex_unlock(&levels_lock);
	atomic_store(&default_level, (int)s->log_level);
	/* PROVISIO_LOG="broker=debug,providers.aws=debug,*=info" wins over the file */
	const char *env = getenv("PROVISIO_LOG");
	char buf[512];
	snprintf(buf, sizeof buf, "%s", env ? env : "");
	char *save = NULL;
	for (char *item = strtok_r(buf, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(item, '=');
		if (eq) {
			*eq = '\0';
			srv_log_set_component(item, eq + 1);
		} else
			srv_log_set_component("*", item);
	}
	log_server = srv;
	pv_log_set_sink(sink, srv);
	sync_library_level();
}

void srv_log_uninstall(void)
{
	pv_log_set_sink(NULL, NULL);
	pv_log_set_level(PV_LOG_WARN);
	pthread_mutex_lock(&levels_lock);
	json_decref(levels);
	levels = NULL;
	pthread_mutex_unlock(&levels_lock);
	log_server = NULL;
}

/* ---- answers -------------------------------------------------------------------------- */

void srv_hist_observe(atomic_uint_fast64_t *hist, const double *bounds, size_t n, double seconds)
{
	for (size_t i = 0; i < n; i++)
		if (seconds <= bounds[i]) {
			atomic_fetch_add_explicit(&hist[i], 1, memory_order_relaxed);
			return;
		}
}

/* The path of the request as sent, for the log: printable ASCII, every
 * other byte %XX. */
static const char *log_path(const srv_req *r, char *buf, size_t size)
{
	if (!r->target || !*r->target)
		return "-";
	srv_escape_for_log(r->target, strcspn(r->target, "?"), buf, size);
	return buf;
}

static void access_log(srv_req *r, int status, uint64_t ns)
{
	char method[40], path[600];
	const char *m = r->method_text && *r->method_text ? r->method_text : NULL;
	if (m)
		srv_escape_for_log(m, strlen(m), method, sizeof method);
	json_t *line = json_pack("{s:s, s:s, s:s, s:s, s:s, s:i, s:f}", "level", "info", "component",
				 "http", "msg", "request", "method", m ? method : "-", "path",
				 log_path(r, path, sizeof path), "status", status, "duration_ms",
				 (double)ns / 1e6);
	if (!line)
		return;
	if (r->conn)
		json_object_set_new(line, "client", json_string(srv_conn_peer(r->conn)));
	if (r->token_name[0])
		json_object_set_new(line, "token", json_string(r->token_name));
	add_ids(line, r);
	write_line(r->t->srv, line);
	json_decref(line);
}

void srv_send(srv_req *r, int status, char *body, size_t len, bool owned)
{
	r->status = status;
	uint64_t ns = pv_now_ns() - r->start_ns;
	unsigned cls = status >= 100 && status < 600 ? (unsigned)status / 100 - 1 : 5;
	srv_http_stats *st = &r->t->stats;
	atomic_fetch_add_explicit(&st->by_class[cls], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&st->duration_ns_sum, ns, memory_order_relaxed);
	srv_hist_observe(st->hist, srv_http_bounds_s, 12, (double)ns / 1e9);
	if (r->w && r->w->set.access_log && component_level("http") <= PV_LOG_INFO)
		access_log(r, status, ns);
	srv_conn_write(r, status, body, len, owned); /* last: it may free the request */
}

/* Every answer: a worker keeps it for the loop, the loop sends it. */
static void finish(srv_req *r, int status, char *body, size_t len, bool owned)
{
	if (r->job)
		srv_job_capture(r->job, status, body, len, owned);
	else
		srv_send(r, status, body, len, owned);
}

void srv_add_header(srv_req *r, const char *key, const char *value)
{
	size_t room = sizeof r->out_headers - r->out_headers_len;
	int n = snprintf(r->out_headers + r->out_headers_len, room, "%s: %s\r\n", key, value);
	if (n > 0 && (size_t)n < room)
		r->out_headers_len += (size_t)n;
	else
		r->out_headers[r->out_headers_len] = '\0'; /* never half a header */
}

/* When even an error cannot be built (out of memory): a fixed one. */
static void reply_internal(srv_req *r)
{
	static const char text[] = "{\"error\":{\"code\":\"INTERNAL_ERROR\",\"message\":\"the answer "
				   "could not be built (out of memory?)\"}}\n";
	r->out_headers_len = 0;
	srv_add_header(r, "Content-Type", "application/json");
	finish(r, 500, (char *)text, sizeof text - 1, false);
}

void srv_reply_json(srv_req *r, int status, json_t *body)
{
	/* a json_pack that failed upstream (bad UTF-8, no memory) gives NULL:
	 * answer that, never an empty body */
	char *text = body ? json_dumps(body, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
	json_decref(body);
	if (!text) {
		srv_log(r->t->srv, PV_LOG_ERROR, "http", r, "the answer (status %d) could not be built", status);
		reply_internal(r);
		return;
	}
	size_t n = strlen(text);
	text[n] = '\n'; /* over the NUL: json_dumps' buffer has room for it */
	srv_add_header(r, "Content-Type", "application/json");
	finish(r, status, text, n + 1, true);
}

void srv_reply_owned(srv_req *r, int status, char *text, size_t len)
{
	srv_add_header(r, "Content-Type", "application/json");
	finish(r, status, text, len, true);
}

void srv_reply_error(srv_req *r, int status, const char *code, const char *field, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	pv_utf8_vformat(msg, sizeof msg, fmt, ap);
	va_end(ap);
	jsonw w = {0}; /* cannot refuse a string: invalid bytes become U+FFFD */
	jw_open(&w, '{');
	jw_key(&w, "error");
	jw_open(&w, '{');
	jw_str(&w, "code", code);
	jw_str(&w, "message", msg);
	if (field)
		jw_str(&w, "field", field);
	jw_close(&w, '}');
	jw_close(&w, '}');
	jw_raw(&w, "\n", 1);
	size_t len = 0;
	char *text = jw_take(&w, &len);
	if (!text) {
		reply_internal(r);
		return;
	}
	srv_reply_owned(r, status, text, len);
}

void srv_reply_text(srv_req *r, int status, const char *content_type, const char *text, size_t len)
{
	srv_add_header(r, "Content-Type", content_type);
	finish(r, status, (char *)text, len, false);
}

/* ---- input -------------------------------------------------------------------------------- */

json_t *srv_body_object(srv_req *r)
{
	/* any Content-Type: curl -d sends a form type, and the body says what
	 * it is; its size was checked against server.max_body_bytes before it
	 * was read */
	size_t n = r->body_len;
	if (!n) {
		srv_reply_error(r, 400, "INVALID_JSON", NULL, "the request needs a JSON object body");
		return NULL;
	}
	json_error_t err;
	json_t *j = json_loadb(r->body, n, JSON_REJECT_DUPLICATES, &err);
	if (!j) {
		srv_reply_error(r, 400, "INVALID_JSON", NULL, "malformed JSON at line %d column %d: %s",
				err.line, err.column, err.text);
		return NULL;
	}
	if (!json_is_object(j)) {
		json_decref(j);
		srv_reply_error(r, 400, "INVALID_JSON", NULL, "the body must be a JSON object");
		return NULL;
	}
	return j;
}

int srv_check_fields(srv_req *r, const json_t *obj, const char *const *allowed)
{
	const char *k;
	json_t *v;
	json_object_foreach((json_t *)obj, k, v) {
		bool ok = false;
		for (const char *const *a = allowed; *a; a++)
			ok |= strcmp(*a, k) == 0;
		if (!ok) {
			char list[256] = "";
			for (const char *const *a = allowed; *a; a++)
				snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s",
					 a == allowed ? "" : ", ", *a);
			srv_reply_error(r, 400, "UNKNOWN_FIELD", k, "unknown field '%s' (valid: %s)", k, list);
			return -1;
		}
	}
	return 0;
}

const char *srv_query(srv_req *r, const char *key)
{
	for (size_t i = 0; i < r->n_query; i++)
		if (strcmp(r->query[i].key, key) == 0)
			return r->query[i].value;
	return NULL;
}

const char *srv_header(srv_req *r, const char *key)
{
	return r->head ? srv_head_get(r->head, key) : NULL;
}

/* ---- ids ------------------------------------------------------------------------------------ */

static bool id_ok(const char *s, size_t max)
{
	size_t n = s ? strlen(s) : 0;
	if (!n || n >= max)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!(s[i] == '-' || s[i] == '_' || s[i] == '.' || (s[i] >= '0' && s[i] <= '9') ||
		      (s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z')))
			return false;
	return true;
}

/* "<start time hex>-<loop>-<sequence hex>": unique in the process and
 * across restarts; formatted by hand, it is on every request's path. */
static void format_id(srv_req *r)
{
	static const char hex[] = "0123456789abcdef";
	char *p = r->request_id;
	uint32_t start = (uint32_t)r->t->srv->started_ns;
	for (int i = 28; i >= 0; i -= 4)
		*p++ = hex[(start >> i) & 15];
	*p++ = '-';
	unsigned idx = r->t->index;
	char tmp[24];
	int n = 0;
	do
		tmp[n++] = hex[idx & 15];
	while ((idx >>= 4) && n < 8);
	while (n)
		*p++ = tmp[--n];
	*p++ = '-';
	uint64_t seq = ++r->t->seq;
	do
		tmp[n++] = hex[seq & 15];
	while ((seq >>= 4) && n < 16);
	while (n)
		*p++ = tmp[--n];
	*p = '\0';
}

/* A client's X-Request-Id when it is sane, else the thread and a counter;
 * the trace id from traceparent (W3C), X-Trace-Id, or the request id. */
void srv_req_ids(srv_req *r)
{
	const char *given = srv_header(r, "X-Request-Id");
	if (id_ok(given, sizeof r->request_id))
		snprintf(r->request_id, sizeof r->request_id, "%s", given);
	else
		format_id(r);
	const char *tp = srv_header(r, "traceparent"), *xt = srv_header(r, "X-Trace-Id");
	if (tp && strlen(tp) >= 55 && tp[2] == '-' && id_ok(tp, 80)) {
		memcpy(r->trace_id, tp + 3, 32);
		r->trace_id[32] = '\0';
	} else if (id_ok(xt, sizeof r->trace_id))
		snprintf(r->trace_id, sizeof r->trace_id, "%s", xt);
	else
		memcpy(r->trace_id, r->request_id, sizeof r->request_id); /* NUL-terminated, shorter */
	current_req = r;
}

void srv_set_current(const srv_req *r) { current_req = r; }
