/*
 * main.c - ec2-emulator: an EC2 Query API server for tests, on libevent's
 * evhttp, bound to loopback only.
 *
 * Each request: admin (/_emu/...) and IMDS (/latest/...) paths first;
 * otherwise verify SigV4, decode the form body and query, count the call,
 * apply EC2's token-bucket throttling and the injected faults, run the
 * action (emu.c) and answer, after the injected latency, from a timer so
 * slow answers do not serialise the event loop.
 *
 *   ec2-emulator [--port N] [--port-file PATH] [--region R]
 *                [--credentials AK:SECRET]... [--max-skew-s S (-1 = off)]
 *                [--latency-ms MS] [--throttle-rate P] [--error-rate P]
 *                [--drop-rate P] [--lose-rate P] [--fault-actions A,B]
 *                [--ice-types t1,t2] [--ice-azs az1,az2]
 *                [--capacity N] [--no-throttle] [--boot-ms MS]
 *                [--shutdown-ms MS] [--page-size N] [--seed N]
 *                [--launch-template-settle-ms MS] [--status-ms MS]
 *                [--launch-template ID:NAME[:IMAGE[:TYPE]]]...
 *                [--ssm-parameter NAME=VALUE]...
 *
 * Admin: GET /_emu/stats, POST /_emu/config (JSON, same names with
 * underscores, plus "faults_next" and "buckets"), POST /_emu/reset, POST
 * /_emu/launch_template (JSON id, name, image_id, instance_type), POST
 * /_emu/interrupt (JSON count or instance_ids, notice, behavior: spot
 * interruptions, or their two-minute notices), POST
 * /_emu/ssm_parameter (JSON name, value), POST /_emu/image (JSON id,
 * root_device_name: DescribeImages' answer), GET /_emu/last_request/ACTION (the
 * parameters of that action's last call: what a client sent).
 *
 * The endpoint answers three services, by the one a request is signed
 * for: ec2 (Query), autoscaling (Query) and ssm (JSON); EC2's buckets and
 * the injected faults apply to ec2 only.
 *
 * Faults: before the action, RequestLimitExceeded (--throttle-rate) and
 * 500/503 (--error-rate); after it ran, a connection reset (--drop-rate)
 * or an answer never sent (--lose-rate: the client waits until it gives
 * up), the two ways a client loses the answer of a launch that happened.
 * --fault-actions limits the dice to some actions; "faults_next" scripts
 * the faults of an action's next calls, for tests that need one exactly.
 *
 * --launch-template exists because the emulator, like EC2, refuses a
 * launch template it does not know: a test that names a template id of its
 * choosing seeds it first. Seeded templates survive /_emu/reset.
 */
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include "emu.h"
#include "sigv4.h"

/* EC2's documented buckets: RunInstances, mutating, describe, terminate. */
enum { B_RUN, B_MUTATE, B_DESCRIBE, B_TERMINATE, B_COUNT };

typedef struct bucket {
	double capacity, rate, tokens;
	uint64_t last_ms;
} bucket;

/* An injected fault: refused before the action (throttle, 5xx), or the
 * answer lost after it ran (drop: connection reset; lose: never sent). */
typedef enum fault { F_NONE = 0, F_THROTTLE, F_5XX, F_DROP, F_LOSE, F_COUNT } fault;
static const char *const fault_names[F_COUNT] = {"none", "throttle", "5xx", "drop", "lose"};

typedef struct server {
	struct event_base *base;
	emu e;
	json_t *creds;       /* array of [ak, secret] */
	long max_skew_s;
	double latency_ms, throttle_rate, error_rate, drop_rate, lose_rate;
	json_t *fault_actions; /* array: the dice apply only to these; NULL = all */
	json_t *faults_next;   /* action -> array of fault names, taken in order */
	bool throttle;
	double bucket_spec[B_COUNT][2]; /* capacity, refill per second */
	bucket buckets[B_COUNT];
	json_t *calls;       /* action -> count */
	json_t *last;        /* action -> the parameters of its last call (tests read
				what a client sent: GET /_emu/last_request/<Action>) */
	json_t *faults;      /* kind -> count */
	uint64_t requests, auth_failures, throttled;
	uint64_t fault_rng;
	struct pending *delayed; /* answers waiting for their latency timer */
	long in_flight, max_in_flight; /* EC2 requests being answered at once */
	char imds_token[64];
} server;

/* ---- helpers --------------------------------------------------------------------- */

/* Fault dice have their own stream, so the faults a seed gives do not
 * shift with how many ids the actions drew. */
static double dice(server *s)
{
	uint64_t x = (s->fault_rng += 0x9e3779b97f4a7c15ull); /* splitmix64 */
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	x ^= x >> 31;
	return (double)(x >> 11) / 9007199254740992.0;
}

static void bump(json_t *obj, const char *key)
{
	json_object_set_new(obj, key, json_integer(json_integer_value(json_object_get(obj, key)) + 1));
}

static int bucket_of(const char *action)
{
	if (strcmp(action, "RunInstances") == 0)
		return B_RUN;
	if (strcmp(action, "TerminateInstances") == 0)
		return B_TERMINATE;
	if (strncmp(action, "Describe", 8) == 0)
		return B_DESCRIBE;
	return B_MUTATE;
}

static bool bucket_take(bucket *b)
{
	uint64_t now = emu_now_ms();
	b->tokens += (double)(now - b->last_ms) * b->rate / 1000.0;
	if (b->tokens > b->capacity)
		b->tokens = b->capacity;
	b->last_ms = now;
	if (b->tokens < 1.0)
		return false;
	b->tokens -= 1.0;
	return true;
}

static const char *const bucket_names[B_COUNT] = {"run_instances", "mutating", "describe", "terminate"};

/* EC2's documented defaults: RunInstances 5 at 2/s, mutating 50 at 5/s,
 * describe 100 at 20/s, TerminateInstances 100 at 5/s. */
static void bucket_defaults(server *s)
{
	static const double def[B_COUNT][2] = {{5, 2}, {50, 5}, {100, 20}, {100, 5}};
	memcpy(s->bucket_spec, def, sizeof def);
}

static void buckets_init(server *s)
{
	for (int i = 0; i < B_COUNT; i++)
		s->buckets[i] = (bucket){s->bucket_spec[i][0], s->bucket_spec[i][1], s->bucket_spec[i][0],
					 emu_now_ms()};
}

static const char *secret_of(void *user, const char *ak, int index)
{
	server *s = user;
	size_t i;
	json_t *c;
	int seen = 0;
	json_array_foreach(s->creds, i, c) {
		if (strcmp(json_string_value(json_array_get(c, 0)), ak) == 0 && seen++ == index)
			return json_string_value(json_array_get(c, 1));
	}
	return NULL;
}

static int hexv(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Decodes application/x-www-form-urlencoded pairs into `out`. */
static void parse_form(const char *s, size_t n, json_t *out)
{
	char *key = malloc(n + 1), *val = malloc(n + 1);
	size_t i = 0;
	while (i < n) {
		char *dst = key;
		size_t k = 0;
		bool in_val = false;
		for (; i < n && s[i] != '&'; i++) {
			char c = s[i];
			if (c == '=' && !in_val) {
				dst[k] = '\0';
				dst = val;
				k = 0;
				in_val = true;
				continue;
			}
			if (c == '+')
				c = ' ';
			else if (c == '%' && i + 2 < n && hexv(s[i + 1]) >= 0 && hexv(s[i + 2]) >= 0) {
				c = (char)(hexv(s[i + 1]) * 16 + hexv(s[i + 2]));
				i += 2;
			}
			dst[k++] = c;
		}
		dst[k] = '\0';
		if (!in_val)
			val[0] = '\0';
		if (key[0])
			json_object_set_new(out, key, json_string(val));
		i++;
	}
	free(key);
	free(val);
}

/* ---- replying (possibly later) ----------------------------------------------------- */

typedef struct pending {
	struct pending *prev, *next; /* the server's list of delayed answers */
	struct evhttp_request *req;
	int status;
	char rid[40];
	struct evbuffer *body;
	const char *content_type; /* a static string */
	struct event *ev;
	bool drop;
	server *s;
} pending;

static const char *reason(int status)
{
	switch (status) {
	case 200: return "OK";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 412: return "Precondition Failed";
	case 500: return "Internal Server Error";
	case 503: return "Service Unavailable";
	default: return "Error";
	}
}

static void unlink_pending(pending *p)
{
	p->s->in_flight--;
	if (p->prev)
		p->prev->next = p->next;
	else if (p->s->delayed == p)
		p->s->delayed = p->next;
	if (p->next)
		p->next->prev = p->prev;
}

static void send_now(pending *p)
{
	unlink_pending(p);
	if (p->drop) {
		/* A connection reset after the action ran: the client cannot know
		 * whether it worked, which is what ClientToken is for. */
		struct evhttp_connection *conn = evhttp_request_get_connection(p->req);
		struct bufferevent *bev = evhttp_connection_get_bufferevent(conn);
		int fd = (int)bufferevent_getfd(bev);
		struct linger lg = {1, 0};
		setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
		shutdown(fd, SHUT_RDWR);
		evhttp_send_reply(p->req, 500, "Dropped", NULL);
	} else {
		/* evhttp writes headers and body separately: without NODELAY,
		 * Nagle holds the body for the client's delayed ACK (~40 ms). */
		struct bufferevent *bev = evhttp_connection_get_bufferevent(evhttp_request_get_connection(p->req));
		int one = 1;
		setsockopt((int)bufferevent_getfd(bev), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
		struct evkeyvalq *h = evhttp_request_get_output_headers(p->req);
		evhttp_add_header(h, "Content-Type", p->content_type);
		evhttp_add_header(h, "x-amzn-RequestId", p->rid);
		evhttp_add_header(h, "Server", "AmazonEC2");
		evhttp_send_reply(p->req, p->status, reason(p->status), p->body);
	}
	evbuffer_free(p->body);
	if (p->ev)
		event_free(p->ev);
	free(p);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	send_now(arg);
}

static void reply(server *s, struct evhttp_request *req, int status, const char *rid, const char *body,
		  size_t len, const char *content_type, bool drop)
{
	pending *p = calloc(1, sizeof *p);
	p->req = req;
	p->content_type = content_type ? content_type : "text/xml;charset=UTF-8";
	p->status = status;
	p->s = s;
	p->drop = drop;
	snprintf(p->rid, sizeof p->rid, "%s", rid);
	p->body = evbuffer_new();
	evbuffer_add(p->body, body, len);
	if (++s->in_flight > s->max_in_flight)
		s->max_in_flight = s->in_flight;
	if (s->latency_ms <= 0) {
		send_now(p);
		return;
	}
	p->next = s->delayed;
	if (s->delayed)
		s->delayed->prev = p;
	s->delayed = p;
	p->ev = evtimer_new(s->base, on_timer, p);
	struct timeval tv = {(time_t)(s->latency_ms / 1000), (suseconds_t)fmod(s->latency_ms, 1000) * 1000};
	evtimer_add(p->ev, &tv);
}

static void reply_error(server *s, struct evhttp_request *req, int status, const char *code, const char *msg,
			const char *rid)
{
	emu_reply r = {0};
	emu_error(&r, status, code, msg, rid);
	reply(s, req, status, rid, r.body.s, r.body.len, NULL, false);
	eb_free(&r.body);
}

/* ---- admin and IMDS -------------------------------------------------------------------- */

static void send_json(struct evhttp_request *req, int status, json_t *j)
{
	char *text = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
	struct evbuffer *b = evbuffer_new();
	evbuffer_add(b, text, strlen(text));
	evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", "application/json");
	evhttp_send_reply(req, status, status == 200 ? "OK" : "Bad Request", b);
	evbuffer_free(b);
	free(text);
	json_decref(j);
}

static json_t *stats(server *s)
{
	return json_pack("{s:O, s:O, s:I, s:I, s:I, s:I, s:o, s:o}", "calls", s->calls, "faults", s->faults,
			 "requests", (json_int_t)s->requests, "auth_failures", (json_int_t)s->auth_failures,
			 "throttled", (json_int_t)s->throttled, "max_in_flight", (json_int_t)s->max_in_flight,
			 "instances", emu_instance_stats(&s->e), "launch_templates",
			 json_integer((json_int_t)json_object_size(s->e.templates)));
}

static void set_list(json_t **dst, json_t *v)
{
	if (!json_is_array(v))
		return;
	json_decref(*dst);
	*dst = json_deep_copy(v);
}

/* "faults_next": {"RunInstances": ["lose", "none", "5xx"], ...}: checked
 * whole before any of it is taken. false with `err` saying why. */
static bool faults_next_ok(json_t *v, char *err, size_t size)
{
	const char *action;
	json_t *list, *f;
	size_t i;
	if (!json_is_object(v)) {
		snprintf(err, size, "faults_next must be an object {action: [fault, ...]}");
		return false;
	}
	json_object_foreach(v, action, list) {
		if (!json_is_array(list)) {
			snprintf(err, size, "faults_next.%s must be an array of fault names", action);
			return false;
		}
		json_array_foreach(list, i, f) {
			int k = 0;
			while (k < F_COUNT && !(json_is_string(f) && strcmp(json_string_value(f), fault_names[k]) == 0))
				k++;
			if (k == F_COUNT) {
				snprintf(err, size, "faults_next.%s[%zu]: not a fault (none, throttle, 5xx, drop, lose)",
					 action, i);
				return false;
			}
		}
	}
	return true;
}

/* "buckets": {"describe": {"capacity": 5, "refill_per_s": 2}, ...}. */
static bool buckets_ok(json_t *v, char *err, size_t size)
{
	const char *name;
	json_t *b;
	if (!json_is_object(v)) {
		snprintf(err, size, "buckets must be an object {run_instances|mutating|describe|terminate: {...}}");
		return false;
	}
	json_object_foreach(v, name, b) {
		int k = 0;
		while (k < B_COUNT && strcmp(name, bucket_names[k]) != 0)
			k++;
		json_t *cap = json_object_get(b, "capacity"), *rate = json_object_get(b, "refill_per_s");
		if (k == B_COUNT || !json_is_number(cap) || json_number_value(cap) < 1 || !json_is_number(rate) ||
		    json_number_value(rate) <= 0) {
			snprintf(err, size, "buckets.%s: must be one of run_instances, mutating, describe, terminate "
					    "with {\"capacity\": >= 1, \"refill_per_s\": > 0}", name);
			return false;
		}
	}
	return true;
}

/* false with `err` saying why (then nothing was applied). */
static bool apply_config(server *s, json_t *c, char *err, size_t size)
{
	json_t *v;
	json_t *fa = json_object_get(c, "fault_actions"), *fn = json_object_get(c, "faults_next");
	json_t *bk = json_object_get(c, "buckets");
	if (fa && !json_is_array(fa)) {
		snprintf(err, size, "fault_actions must be an array of action names ([] = every action)");
		return false;
	}
	if ((fn && !faults_next_ok(fn, err, size)) || (bk && !buckets_ok(bk, err, size)))
		return false;
	if ((v = json_object_get(c, "latency_ms")))
		s->latency_ms = json_number_value(v);
	if ((v = json_object_get(c, "throttle_rate")))
		s->throttle_rate = json_number_value(v);
	if ((v = json_object_get(c, "error_rate")))
		s->error_rate = json_number_value(v);
	if ((v = json_object_get(c, "drop_rate")))
		s->drop_rate = json_number_value(v);
	if ((v = json_object_get(c, "lose_rate")))
		s->lose_rate = json_number_value(v);
	if (fa) {
		json_decref(s->fault_actions);
		s->fault_actions = json_array_size(fa) ? json_deep_copy(fa) : NULL;
	}
	if (fn)
		json_object_update(s->faults_next, fn);
	if (bk) {
		const char *name;
		json_t *b;
		json_object_foreach(bk, name, b)
			for (int k = 0; k < B_COUNT; k++)
				if (strcmp(name, bucket_names[k]) == 0) {
					s->bucket_spec[k][0] = json_number_value(json_object_get(b, "capacity"));
					s->bucket_spec[k][1] = json_number_value(json_object_get(b, "refill_per_s"));
				}
		buckets_init(s);
	}
	if ((v = json_object_get(c, "throttle")))
		s->throttle = json_is_true(v);
	if ((v = json_object_get(c, "capacity")))
		s->e.capacity = json_integer_value(v);
	if ((v = json_object_get(c, "page_size")))
		s->e.page_size = (long)json_integer_value(v);
	if ((v = json_object_get(c, "max_in_flight")))
		s->max_in_flight = s->in_flight; /* any value restarts the count */
	if ((v = json_object_get(c, "boot_ms")))
		s->e.boot_ms = (uint64_t)json_integer_value(v);
	if ((v = json_object_get(c, "shutdown_ms")))
		s->e.shutdown_ms = (uint64_t)json_integer_value(v);
	if ((v = json_object_get(c, "launch_template_settle_ms")))
		s->e.lt_settle_ms = (uint64_t)json_integer_value(v);
	if ((v = json_object_get(c, "status_ms")))
		s->e.status_ms = (uint64_t)json_integer_value(v);
	set_list(&s->e.ice_types, json_object_get(c, "ice_types"));
	set_list(&s->e.ice_azs, json_object_get(c, "ice_azs"));
	return true;
}

/* POST /_emu/launch_template: {"id", "name", "image_id", "instance_type"}. */
static void admin_launch_template(server *s, struct evhttp_request *req, const char *body, size_t len)
{
	json_t *c = json_loadb(body ? body : "", len, 0, NULL);
	char err[256];
	int rc = -1;
	if (!json_is_object(c))
		snprintf(err, sizeof err, "body must be a JSON object {id, name, image_id, instance_type}");
	else
		rc = emu_add_template(&s->e, json_string_value(json_object_get(c, "id")),
				      json_string_value(json_object_get(c, "name")),
				      json_string_value(json_object_get(c, "image_id")),
				      json_string_value(json_object_get(c, "instance_type")), false, err, sizeof err);
	json_decref(c);
	if (rc < 0)
		return send_json(req, 400, json_pack("{s:s}", "error", err));
	send_json(req, 200, json_pack("{s:b}", "ok", 1));
}

/* POST /_emu/interrupt: {"count": N} (the oldest live spot instances) or
 * {"instance_ids": [...]} (each must be a live spot instance); with
 * "notice": true only the two-minute notice ("behavior": terminate, stop
 * or hibernate: the request's marked-for-… code), the instance running. */
static void admin_interrupt(server *s, struct evhttp_request *req, const char *body, size_t len)
{
	json_t *c = json_loadb(body ? body : "", len, 0, NULL);
	json_t *ids = json_object_get(c, "instance_ids"), *count = json_object_get(c, "count");
	json_t *notice = json_object_get(c, "notice"), *behaviour = json_object_get(c, "behavior");
	const char *why = NULL;
	if (notice && !json_is_boolean(notice))
		why = "notice must be true (the two-minute warning only) or false";
	else if (behaviour && (!json_is_string(behaviour) ||
			       !emu_spot_notice_behaviour_ok(json_string_value(behaviour))))
		why = "behavior must be terminate, stop or hibernate";
	else if (behaviour && !json_is_true(notice))
		why = "behavior goes with notice: true";
	size_t i;
	json_t *v;
	if (!json_is_object(c) || (!json_is_array(ids) && !json_is_integer(count)))
		why = "body must be {\"count\": N} or {\"instance_ids\": [...]}";
	json_array_foreach(ids, i, v) {
		json_t *in = json_is_string(v) ? emu_find(&s->e, json_string_value(v)) : NULL;
		const char *l = in ? json_string_value(json_object_get(in, "lifecycle")) : NULL;
		if (!why && (!in || !emu_live(in) || !l || strcmp(l, "spot") != 0))
			why = "every instance_ids item must be a live spot instance";
	}
	if (why) {
		json_decref(c);
		return send_json(req, 400, json_pack("{s:s}", "error", why));
	}
	json_t *done = emu_interrupt_spot(&s->e, (long)json_integer_value(count), json_is_array(ids) ? ids : NULL,
					  json_is_true(notice), json_string_value(behaviour));
	json_decref(c);
	send_json(req, 200, json_pack("{s:o}", "interrupted", done));
}

/* POST /_emu/ssm_parameter: {"name", "value"}. */
static void admin_ssm_parameter(server *s, struct evhttp_request *req, const char *body, size_t len)
{
	json_t *c = json_loadb(body ? body : "", len, 0, NULL);
	char err[256];
	int rc = emu_ssm_put(&s->e, json_string_value(json_object_get(c, "name")),
			     json_string_value(json_object_get(c, "value")), false, err, sizeof err);
	json_decref(c);
	if (rc < 0)
		return send_json(req, 400, json_pack("{s:s}", "error", err));
	send_json(req, 200, json_pack("{s:b}", "ok", 1));
}

static void admin(server *s, struct evhttp_request *req, const char *path, const char *body, size_t len)
{
	if (strcmp(path, "/_emu/stats") == 0)
		return send_json(req, 200, stats(s));
	if (strcmp(path, "/_emu/reset") == 0) {
		emu_reset(&s->e);
		json_object_clear(s->calls);
		json_object_clear(s->last);
		json_object_clear(s->faults);
		json_object_clear(s->faults_next);
		s->requests = s->auth_failures = s->throttled = 0;
		s->max_in_flight = s->in_flight;
		buckets_init(s);
		return send_json(req, 200, json_pack("{s:b}", "reset", 1));
	}
	if (strcmp(path, "/_emu/config") == 0) {
		json_t *c = json_loadb(body ? body : "", len, 0, NULL);
		if (!json_is_object(c)) {
			json_decref(c);
			return send_json(req, 400, json_pack("{s:s}", "error", "body must be a JSON object"));
		}
		char err[256];
		bool ok = apply_config(s, c, err, sizeof err);
		json_decref(c);
		if (!ok)
			return send_json(req, 400, json_pack("{s:s}", "error", err));
		return send_json(req, 200, json_pack("{s:b}", "ok", 1));
	}
	if (strcmp(path, "/_emu/launch_template") == 0)
		return admin_launch_template(s, req, body, len);
	if (strcmp(path, "/_emu/interrupt") == 0)
		return admin_interrupt(s, req, body, len);
	if (strcmp(path, "/_emu/ssm_parameter") == 0)
		return admin_ssm_parameter(s, req, body, len);
	if (strcmp(path, "/_emu/image") == 0) {
		json_t *c = json_loadb(body ? body : "", len, 0, NULL);
		char err[256];
		int rc = emu_image_put(&s->e, json_string_value(json_object_get(c, "id")),
				       json_string_value(json_object_get(c, "root_device_name")), err, sizeof err);
		json_decref(c);
		if (rc < 0)
			return send_json(req, 400, json_pack("{s:s}", "error", err));
		return send_json(req, 200, json_pack("{s:b}", "ok", 1));
	}
	if (strncmp(path, "/_emu/last_request/", 19) == 0) {
		json_t *p = json_object_get(s->last, path + 19);
		if (!p)
			return send_json(req, 404, json_pack("{s:s}", "error", "no call of that action since start or reset"));
		return send_json(req, 200, json_incref(p));
	}
	send_json(req, 404, json_pack("{s:s}", "error", "unknown admin path"));
}

/* IMDSv2: a session token from PUT /latest/api/token, required on GETs. */
static void imds(server *s, struct evhttp_request *req, const char *path)
{
	struct evkeyvalq *in = evhttp_request_get_input_headers(req);
	struct evbuffer *b = evbuffer_new();
	int status = 200;
	if (strcmp(path, "/latest/api/token") == 0 && evhttp_request_get_command(req) == EVHTTP_REQ_PUT &&
	    evhttp_find_header(in, "X-aws-ec2-metadata-token-ttl-seconds")) {
		snprintf(s->imds_token, sizeof s->imds_token, "emu-imds-%016llx",
			 (unsigned long long)emu_rand(&s->e));
		evbuffer_add_printf(b, "%s", s->imds_token);
	} else if (!s->imds_token[0] || !evhttp_find_header(in, "X-aws-ec2-metadata-token") ||
		   strcmp(evhttp_find_header(in, "X-aws-ec2-metadata-token"), s->imds_token) != 0) {
		status = 401;
	} else if (strcmp(path, "/latest/meta-data/iam/security-credentials/") == 0) {
		evbuffer_add_printf(b, "emu-role");
	} else if (strcmp(path, "/latest/meta-data/iam/security-credentials/emu-role") == 0) {
		json_t *c = json_array_get(s->creds, 0);
		time_t exp = time(NULL) + 6 * 3600;
		char when[32];
		strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", gmtime(&exp));
		evbuffer_add_printf(b, "{\"Code\":\"Success\",\"Type\":\"AWS-HMAC\",\"AccessKeyId\":\"%s\","
				       "\"SecretAccessKey\":\"%s\",\"Token\":\"emu-session-token\",\"Expiration\":\"%s\"}",
				    json_string_value(json_array_get(c, 0)), json_string_value(json_array_get(c, 1)),
				    when);
	} else {
		status = 404;
	}
	evhttp_send_reply(req, status, status == 200 ? "OK" : "Error", b);
	evbuffer_free(b);
}

/* ---- EC2 requests ---------------------------------------------------------------------- */

static const char *method_name(enum evhttp_cmd_type c)
{
	switch (c) {
	case EVHTTP_REQ_GET: return "GET";
	case EVHTTP_REQ_POST: return "POST";
	case EVHTTP_REQ_PUT: return "PUT";
	default: return "OTHER";
	}
}

/* The service a request is signed for, from its credential scope
 * (AK/date/region/SERVICE/aws4_request): one endpoint answers ec2,
 * autoscaling and ssm. Another or none: ec2, whose verifier then refuses. */
static void signed_service(struct evhttp_request *req, char *out, size_t size)
{
	const char *auth = evhttp_find_header(evhttp_request_get_input_headers(req), "Authorization");
	const char *cred = auth ? strstr(auth, "Credential=") : NULL;
	snprintf(out, size, "ec2");
	for (int slash = 0; cred && *cred && *cred != ',' && *cred != ' '; cred++) {
		if (*cred == '/' && ++slash == 3) {
			size_t n = strcspn(cred + 1, "/, ");
			char svc[32];
			snprintf(svc, sizeof svc, "%.*s", (int)(n < sizeof svc ? n : sizeof svc - 1), cred + 1);
			if (emu_service_known(svc))
				snprintf(out, size, "%s", svc);
			return;
		}
	}
}

/* SigV4 over what evhttp parsed, for `service`. 0 when valid, else replied. */
static int authenticate(server *s, struct evhttp_request *req, const char *service, const char *body, size_t len,
			const char *rid)
{
	struct evkeyvalq *in = evhttp_request_get_input_headers(req);
	sigv4_header hdrs[64];
	size_t n = 0;
	for (struct evkeyval *kv = in->tqh_first; kv && n < 64; kv = kv->next.tqe_next)
		hdrs[n++] = (sigv4_header){kv->key, kv->value};
	sigv4_request q = {method_name(evhttp_request_get_command(req)), evhttp_request_get_uri(req), hdrs, n,
			   (const unsigned char *)body, len};
	sigv4_verdict v;
	if (sigv4_verify(&q, secret_of, s, s->e.region, service, time(NULL), s->max_skew_s, true, &v) == 0)
		return 0;
	s->auth_failures++;
	emu_reply r = {0};
	emu_service_error(&r, service, v.http_status, v.code, v.message, rid);
	reply(s, req, r.status, rid, r.body.s, r.body.len, r.content_type, false);
	eb_free(&r.body);
	return -1;
}

/* Whether the dice apply to `action` (--fault-actions). */
static bool dice_apply(server *s, const char *action)
{
	size_t i;
	json_t *v;
	if (!s->fault_actions)
		return true;
	json_array_foreach(s->fault_actions, i, v) if (strcmp(json_string_value(v), action) == 0) return true;
	return false;
}

/* The fault of this call of `action`: the next scripted one (taken), else
 * the dice, drawn in a fixed order (throttle, 5xx, drop, lose) so a seed
 * gives the same faults whatever the actions draw. */
static fault fault_of(server *s, const char *action)
{
	json_t *script = json_object_get(s->faults_next, action);
	if (json_array_size(script)) {
		const char *name = json_string_value(json_array_get(script, 0));
		int k = 0;
		while (k < F_COUNT - 1 && strcmp(name, fault_names[k]) != 0)
			k++;
		json_array_remove(script, 0);
		return (fault)k;
	}
	if (!dice_apply(s, action))
		return F_NONE;
	if (s->throttle_rate > 0 && dice(s) < s->throttle_rate)
		return F_THROTTLE;
	if (s->error_rate > 0 && dice(s) < s->error_rate)
		return F_5XX;
	if (s->drop_rate > 0 && dice(s) < s->drop_rate)
		return F_DROP;
	if (s->lose_rate > 0 && dice(s) < s->lose_rate)
		return F_LOSE;
	return F_NONE;
}

/* EC2's bucket, then the faults that refuse before the action; true when
 * replied. A call the bucket refuses draws no fault. */
static bool refuse(server *s, struct evhttp_request *req, const char *action, fault *f, const char *rid)
{
	if (s->throttle && !bucket_take(&s->buckets[bucket_of(action)])) {
		s->throttled++;
		bump(s->faults, "bucket_throttle");
		reply_error(s, req, 503, "RequestLimitExceeded", "Request limit exceeded.", rid);
		return true;
	}
	*f = fault_of(s, action);
	if (*f == F_THROTTLE) {
		s->throttled++;
		bump(s->faults, "throttle");
		reply_error(s, req, 503, "RequestLimitExceeded", "Request limit exceeded.", rid);
		return true;
	}
	if (*f == F_5XX) {
		bump(s->faults, "5xx");
		bool unavailable = dice(s) < 0.5;
		reply_error(s, req, unavailable ? 503 : 500, unavailable ? "Unavailable" : "InternalError",
			    unavailable ? "The server is overloaded and cannot handle the request"
					: "An internal error has occurred",
			    rid);
		return true;
	}
	return false;
}

static void on_request(struct evhttp_request *req, void *arg)
{
	server *s = arg;
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	const char *path = evhttp_uri_get_path(uri);
	path = path && *path ? path : "/";
	struct evbuffer *inb = evhttp_request_get_input_buffer(req);
	size_t len = evbuffer_get_length(inb);
	char *body = malloc(len + 1);
	evbuffer_copyout(inb, body, len);
	body[len] = '\0';
	if (strncmp(path, "/_emu/", 6) == 0) {
		admin(s, req, path, body, len);
		free(body);
		return;
	}
	if (strncmp(path, "/latest/", 8) == 0) {
		imds(s, req, path);
		free(body);
		return;
	}
	s->requests++;
	char rid[40];
	uint64_t a = emu_rand(&s->e), b = emu_rand(&s->e);
	snprintf(rid, sizeof rid, "%08llx-%04llx-%04llx-%04llx-%012llx", (unsigned long long)(a >> 32),
		 (unsigned long long)(a >> 16) & 0xffff, (unsigned long long)a & 0xffff,
		 (unsigned long long)(b >> 48), (unsigned long long)b & 0xffffffffffffull);
	char service[32];
	signed_service(req, service, sizeof service);
	if (authenticate(s, req, service, body, len, rid) < 0) {
		free(body);
		return;
	}
	const char *action;
	json_t *params;
	if (strcmp(service, "ssm") == 0) {
		/* JSON protocol: the operation in X-Amz-Target, the parameters in the body. */
		const char *target = evhttp_find_header(evhttp_request_get_input_headers(req), "X-Amz-Target");
		action = target && strncmp(target, "AmazonSSM.", 10) == 0 ? target + 10 : NULL;
		params = json_loadb(body, len, 0, NULL);
		if (!params)
			params = json_null();
	} else {
		params = json_object();
		const char *query = evhttp_uri_get_query(uri);
		if (query)
			parse_form(query, strlen(query), params);
		parse_form(body, len, params);
		action = json_string_value(json_object_get(params, "Action"));
	}
	free(body);
	bump(s->calls, action ? action : "(none)");
	if (action)
		json_object_set(s->last, action, params);
	/* EC2's buckets and the injected faults are EC2's (its error envelope). */
	fault f = F_NONE;
	if (action && strcmp(service, "ec2") == 0 && refuse(s, req, action, &f, rid)) {
		json_decref(params);
		return;
	}
	emu_reply r = {0};
	emu_dispatch(&s->e, service, action, params, rid, &r);
	if (f == F_DROP || f == F_LOSE)
		bump(s->faults, fault_names[f]);
	/* lost: the action ran and no answer comes; the client's timeout
	 * ends the exchange (evhttp frees the request when it hangs up) */
	if (f != F_LOSE)
		reply(s, req, r.status, rid, r.body.s, r.body.len, r.content_type, f == F_DROP);
	eb_free(&r.body);
	json_decref(params);
}

/* ---- command line ----------------------------------------------------------------------- */

static json_t *csv(const char *s)
{
	json_t *a = json_array();
	char *buf = strdup(s), *save = NULL;
	for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save))
		json_array_append_new(a, json_string(t));
	free(buf);
	return a;
}

static int usage(void)
{
	fprintf(stderr, "usage: ec2-emulator [--port N] [--port-file PATH] [--region R] "
			"[--credentials AK:SECRET]... [--max-skew-s S] [--latency-ms MS] "
			"[--throttle-rate P] [--error-rate P] [--drop-rate P] [--lose-rate P] "
			"[--fault-actions A,B] [--ice-types a,b] "
			"[--ice-azs a,b] [--capacity N] [--no-throttle] [--boot-ms MS] "
			"[--shutdown-ms MS] [--page-size N] [--seed N] [--launch-template-settle-ms MS] [--status-ms MS] "
			"[--launch-template ID:NAME[:IMAGE[:TYPE]]]... [--ssm-parameter NAME=VALUE]...\n");
	return 2;
}

/* --launch-template ID:NAME[:IMAGE[:TYPE]]. 0, or 2 after saying why. */
static int seed_template(server *s, const char *v)
{
	char buf[512], err[256];
	char *part[4] = {NULL, NULL, NULL, NULL}, *rest = buf;
	snprintf(buf, sizeof buf, "%s", v);
	/* Split by hand, not strtok: an empty IMAGE (ID:NAME::TYPE) stays a field. */
	for (int i = 0; i < 4 && rest; i++) {
		part[i] = rest;
		rest = strchr(rest, ':');
		if (rest)
			*rest++ = '\0';
	}
	if (rest || emu_add_template(&s->e, part[0], part[1], part[2], part[3], true, err, sizeof err) < 0) {
		fprintf(stderr, "ec2-emulator: --launch-template %s: %s\n", v,
			rest ? "expected ID:NAME[:IMAGE[:TYPE]]" : err);
		return 2;
	}
	return 0;
}

static int parse_args(server *s, int argc, char **argv, int *port, const char **port_file)
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (strcmp(a, "--no-throttle") == 0) {
			s->throttle = false;
			continue;
		}
		if (!v)
			return usage();
		i++;
		if (strcmp(a, "--port") == 0)
			*port = atoi(v);
		else if (strcmp(a, "--port-file") == 0)
			*port_file = v;
		else if (strcmp(a, "--region") == 0)
			snprintf(s->e.region, sizeof s->e.region, "%s", v);
		else if (strcmp(a, "--credentials") == 0 && strchr(v, ':')) {
			const char *colon = strchr(v, ':');
			json_array_append_new(s->creds, json_pack("[s%, s]", v, (size_t)(colon - v), colon + 1));
		} else if (strcmp(a, "--max-skew-s") == 0)
			s->max_skew_s = atol(v);
		else if (strcmp(a, "--latency-ms") == 0)
			s->latency_ms = atof(v);
		else if (strcmp(a, "--throttle-rate") == 0)
			s->throttle_rate = atof(v);
		else if (strcmp(a, "--error-rate") == 0)
			s->error_rate = atof(v);
		else if (strcmp(a, "--drop-rate") == 0)
			s->drop_rate = atof(v);
		else if (strcmp(a, "--lose-rate") == 0)
			s->lose_rate = atof(v);
		else if (strcmp(a, "--fault-actions") == 0) {
			json_decref(s->fault_actions);
			s->fault_actions = csv(v);
		}
		else if (strcmp(a, "--ice-types") == 0) {
			json_t *l = csv(v);
			set_list(&s->e.ice_types, l);
			json_decref(l);
		} else if (strcmp(a, "--ice-azs") == 0) {
			json_t *l = csv(v);
			set_list(&s->e.ice_azs, l);
			json_decref(l);
		} else if (strcmp(a, "--capacity") == 0)
			s->e.capacity = atoll(v);
		else if (strcmp(a, "--page-size") == 0)
			s->e.page_size = atol(v);
		else if (strcmp(a, "--boot-ms") == 0)
			s->e.boot_ms = (uint64_t)atoll(v);
		else if (strcmp(a, "--shutdown-ms") == 0)
			s->e.shutdown_ms = (uint64_t)atoll(v);
		else if (strcmp(a, "--launch-template-settle-ms") == 0)
			s->e.lt_settle_ms = (uint64_t)atoll(v);
		else if (strcmp(a, "--status-ms") == 0)
			s->e.status_ms = (uint64_t)atoll(v);
		else if (strcmp(a, "--seed") == 0)
			s->e.rng = s->fault_rng = (uint64_t)atoll(v) | 1;
		else if (strcmp(a, "--launch-template") == 0) {
			if (seed_template(s, v))
				return 2;
		} else if (strcmp(a, "--ssm-parameter") == 0) {
			char name[2100], err[256];
			const char *eq = strchr(v, '=');
			snprintf(name, sizeof name, "%.*s", eq ? (int)(eq - v) : 0, v);
			if (!eq || emu_ssm_put(&s->e, name, eq + 1, true, err, sizeof err) < 0) {
				fprintf(stderr, "ec2-emulator: --ssm-parameter %s: %s\n", v,
					eq ? err : "expected NAME=VALUE");
				return 2;
			}
		} else
			return usage();
	}
	return 0;
}

static void on_signal(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	event_base_loopexit(arg, NULL);
}

int main(int argc, char **argv)
{
	server s;
	memset(&s, 0, sizeof s);
	emu_init(&s.e, "us-east-1", 42);
	s.creds = json_array();
	s.calls = json_object();
	s.last = json_object();
	s.faults = json_object();
	s.faults_next = json_object();
	bucket_defaults(&s);
	s.max_skew_s = 900;
	s.fault_rng = 42;
	s.throttle = true;
	s.e.boot_ms = 0;
	int port = 0;
	const char *port_file = NULL;
	int rc = parse_args(&s, argc, argv, &port, &port_file);
	if (rc)
		return rc;
	if (json_array_size(s.creds) == 0)
		json_array_append_new(s.creds, json_pack("[s, s]", "AKIDEXAMPLE",
							 "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"));
	buckets_init(&s);
	signal(SIGPIPE, SIG_IGN);
	s.base = event_base_new();
	struct evhttp *http = evhttp_new(s.base);
	evhttp_set_allowed_methods(http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_PUT);
	evhttp_set_gencb(http, on_request, &s);
	struct evhttp_bound_socket *bound = evhttp_bind_socket_with_handle(http, "127.0.0.1", (ev_uint16_t)port);
	if (!bound) {
		fprintf(stderr, "ec2-emulator: cannot listen on 127.0.0.1:%d: %s\n", port, strerror(errno));
		return 1;
	}
	struct sockaddr_storage ss;
	socklen_t sl = sizeof ss;
	getsockname((int)evhttp_bound_socket_get_fd(bound), (struct sockaddr *)&ss, &sl);
	port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
	if (port_file) {
		char tmp[1024];
		snprintf(tmp, sizeof tmp, "%s.tmp", port_file);
		FILE *f = fopen(tmp, "w");
		if (f) {
			fprintf(f, "%d\n", port);
			fclose(f);
			rename(tmp, port_file);
		}
	}
	printf("ec2-emulator listening on 127.0.0.1:%d\n", port);
	fflush(stdout);
	struct event *sigint = evsignal_new(s.base, SIGINT, on_signal, s.base);
	struct event *sigterm = evsignal_new(s.base, SIGTERM, on_signal, s.base);
	event_add(sigint, NULL);
	event_add(sigterm, NULL);
	event_base_dispatch(s.base);
	/* Answers still waiting for their timer at shutdown: drop them. */
	while (s.delayed) {
		pending *p = s.delayed;
		s.delayed = p->next;
		evbuffer_free(p->body);
		event_free(p->ev);
		free(p);
	}
	event_free(sigint);
	event_free(sigterm);
	evhttp_free(http);
	event_base_free(s.base);
	emu_free(&s.e);
	json_decref(s.creds);
	json_decref(s.calls);
	json_decref(s.last);
	json_decref(s.faults);
	json_decref(s.faults_next);
	json_decref(s.fault_actions);
	return 0;
}
