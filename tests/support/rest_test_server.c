/*
 * rest_test_server.c - see rest_test_server.h.
 *
 * One listener thread accepts; each connection gets a thread that reads
 * requests (keep-alive), routes them and writes answers. All state sits
 * behind one mutex; no answer is written while it is held except for the
 * copying of a prepared buffer. Stopping shuts every socket down so blocked
 * reads return, then joins every thread: nothing leaks under valgrind.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <jansson.h>
#include "rest_test_server.h"

typedef enum fault_kind { FK_OK, FK_STATUS, FK_SLOW, FK_MALFORMED, FK_HTML, FK_WRONGSHAPE, FK_CLOSE } fault_kind;

typedef struct fault {
	fault_kind kind;
	int status, retry_after, slow_ms;
	bool retry_after_date; /* send Retry-After as an HTTP date */
	unsigned times;
} fault;

typedef struct conn {
	int fd;
	pthread_t thread;
	bool done;
	rts_server *srv;
	struct conn *next;
} conn;

struct rts_server {
	int listen_fd;
	char url[64];
	pthread_t acceptor;
	pthread_mutex_t lock;
	bool stopping;
	conn *conns;
	fault *faults;
	size_t n_faults, cap_faults;
	char *token;
	bool not_ready;
	int capacity;
	json_t *machines;   /* machine_id -> M */
	json_t *idem;       /* key -> {"body": canonical body, "r": R} */
	json_t *counts;     /* "METHOD /path" -> n */
	json_t *last_headers; /* lower-case name -> value */
	unsigned next_id;
	int live;
};

/* ---- HTTP plumbing --------------------------------------------------------- */

typedef struct http_req {
	char method[8];
	char path[2048];  /* without the query */
	char query[4096];
	json_t *headers;  /* lower-case name -> value */
	char *body;
	size_t body_len;
	bool close;
} http_req;

typedef struct http_resp {
	int status;
	const char *content_type;
	char *body; /* owned */
	int retry_after;
	bool retry_after_date;
	bool www_auth;
} http_resp;

static const char *reason(int st)
{
	switch (st) {
	case 200: return "OK";
	case 202: return "Accepted";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 404: return "Not Found";
	case 409: return "Conflict";
	case 429: return "Too Many Requests";
	case 500: return "Internal Server Error";
	case 502: return "Bad Gateway";
	case 503: return "Service Unavailable";
	default: return "Status";
	}
}

static bool write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return false;
		p += w;
		n -= (size_t)w;
	}
	return true;
}

static bool send_resp(int fd, const http_resp *r)
{
	size_t blen = r->body ? strlen(r->body) : 0;
	char head[512], ra[48] = "";
	if (r->retry_after >= 0 && r->retry_after_date) {
		time_t at = time(NULL) + r->retry_after;
		struct tm tm;
		gmtime_r(&at, &tm);
		strftime(ra, sizeof ra, "Retry-After: %a, %d %b %Y %H:%M:%S GMT\r\n", &tm);
	} else if (r->retry_after >= 0) {
		snprintf(ra, sizeof ra, "Retry-After: %d\r\n", r->retry_after);
	}
	int n = snprintf(head, sizeof head,
			 "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%s%s\r\n",
			 r->status, reason(r->status), r->content_type ? r->content_type : "application/json",
			 blen, r->www_auth ? "WWW-Authenticate: Bearer\r\n" : "", ra);
	return write_all(fd, head, (size_t)n) && (blen == 0 || write_all(fd, r->body, blen));
}

static void url_decode(const char *in, size_t len, char *out, size_t size)
{
	size_t o = 0;
	for (size_t i = 0; i < len && o + 1 < size; i++) {
		if (in[i] == '%' && i + 2 < len && isxdigit((unsigned char)in[i + 1]) &&
		    isxdigit((unsigned char)in[i + 2])) {
			char hex[3] = {in[i + 1], in[i + 2], 0};
			out[o++] = (char)strtol(hex, NULL, 16);
			i += 2;
		} else {
			out[o++] = in[i] == '+' ? ' ' : in[i];
		}
	}
	out[o] = '\0';
}

/* The decoded value of a query parameter, or false. */
static bool query_get(const char *q, const char *key, char *out, size_t size)
{
	size_t kl = strlen(key);
	for (const char *p = q; p && *p;) {
		const char *amp = strchr(p, '&');
		size_t len = amp ? (size_t)(amp - p) : strlen(p);
		if (len > kl && strncmp(p, key, kl) == 0 && p[kl] == '=') {
			url_decode(p + kl + 1, len - kl - 1, out, size);
			return true;
		}
		p = amp ? amp + 1 : NULL;
	}
	return false;
}

/* Reads one request into r. buf/len carry bytes across keep-alive requests.
 * false when the peer closed or sent garbage. */
static bool read_req(int fd, char *buf, size_t cap, size_t *len, http_req *r)
{
	char *end;
	while (!(end = memmem(buf, *len, "\r\n\r\n", 4))) {
		if (*len >= cap)
			return false;
		ssize_t n = recv(fd, buf + *len, cap - *len, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return false;
		*len += (size_t)n;
	}
	size_t head_len = (size_t)(end - buf) + 4;
	char target[6200];
	if (sscanf(buf, "%7s %6199s", r->method, target) != 2)
		return false;
	char *q = strchr(target, '?');
	if (q)
		*q++ = '\0';
	if (strlen(target) >= sizeof r->path || (q && strlen(q) >= sizeof r->query))
		return false;
	strcpy(r->path, target);
	strcpy(r->query, q ? q : "");
	r->headers = json_object();
	size_t content_length = 0;
	for (char *line = strstr(buf, "\r\n") + 2; line < end; line = strstr(line, "\r\n") + 2) {
		char *colon = memchr(line, ':', (size_t)(strstr(line, "\r\n") - line));
		if (!colon)
			continue;
		char name[64], value[1024];
		size_t nl = (size_t)(colon - line) < sizeof name - 1 ? (size_t)(colon - line) : sizeof name - 1;
		for (size_t i = 0; i < nl; i++)
			name[i] = (char)tolower((unsigned char)line[i]);
		name[nl] = '\0';
		const char *v = colon + 1;
		while (*v == ' ')
			v++;
		size_t vl = (size_t)(strstr(v, "\r\n") - v);
		snprintf(value, sizeof value, "%.*s", (int)vl, v);
		json_object_set_new(r->headers, name, json_string(value));
		if (strcmp(name, "content-length") == 0)
			content_length = (size_t)strtoul(value, NULL, 10);
		if (strcmp(name, "connection") == 0 && strcasecmp(value, "close") == 0)
			r->close = true;
	}
	if (content_length > cap - head_len)
		return false;
	while (*len < head_len + content_length) {
		ssize_t n = recv(fd, buf + *len, cap - *len, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return false;
		*len += (size_t)n;
	}
	r->body = strndup(buf + head_len, content_length);
	r->body_len = content_length;
	memmove(buf, buf + head_len + content_length, *len - head_len - content_length);
	*len -= head_len + content_length;
	return true;
}

/* ---- the API ------------------------------------------------------------------ */

static char *dump(json_t *j)
{
	char *s = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	return s;
}

static void error_resp(http_resp *r, int status, const char *code, const char *msg, const char *field)
{
	r->status = status;
	r->body = dump(json_pack("{s:{s:s, s:s, s:s?}}", "error", "code", code, "message", msg, "field", field));
}

static json_t *templates(void)
{
	return json_pack("[{s:s, s:i, s:{s:[s,s], s:[s,s]}, s:s}, {s:s, s:i, s:{s:[s,s]}, s:s}]",
			 "templateId", "t-small", "maxNumber", 100, "attributes", "ncpus", "Numeric",
			 "1", "nram", "Numeric", "1024", "provider", "sim-a", "templateId", "t-large",
			 "maxNumber", 10, "attributes", "ncpus", "Numeric", "8", "provider", "sim-a");
}

static json_t *find_template(const char *id)
{
	json_t *all = templates(), *t, *found = NULL;
	size_t i;
	json_array_foreach(all, i, t) if (strcmp(json_string_value(json_object_get(t, "templateId")), id) == 0)
		found = json_incref(t);
	json_decref(all);
	return found;
}

static void do_create(rts_server *s, const http_req *rq, http_resp *r)
{
	json_t *body = json_loadb(rq->body ? rq->body : "", rq->body_len, 0, NULL);
	json_t *tid = json_object_get(body, "template_id"), *cnt = json_object_get(body, "count");
	if (!json_is_object(body) || json_object_size(body) != 2 || !json_is_string(tid) ||
	    !json_is_integer(cnt) || json_integer_value(cnt) < 1) {
		error_resp(r, 400, "INVALID_PARAMETERS", "body must be {template_id, count}", "count");
		json_decref(body);
		return;
	}
	json_t *t = find_template(json_string_value(tid));
	if (!t) {
		error_resp(r, 400, "INVALID_PARAMETERS", "unknown template", "template_id");
		json_decref(body);
		return;
	}
	json_decref(t);
	char *canon = json_dumps(body, JSON_COMPACT | JSON_SORT_KEYS);
	json_t *key = json_object_get(rq->headers, "idempotency-key");
	json_t *seen = key ? json_object_get(s->idem, json_string_value(key)) : NULL;
	if (seen) {
		if (strcmp(json_string_value(json_object_get(seen, "body")), canon) == 0) {
			r->status = 200;
			r->body = json_dumps(json_object_get(seen, "r"), JSON_COMPACT);
		} else {
			error_resp(r, 409, "IDEMPOTENCY_CONFLICT", "key reused with another body", NULL);
		}
		free(canon);
		json_decref(body);
		return;
	}
	char rid[32];
	snprintf(rid, sizeof rid, "req-%u", ++s->next_id);
	json_t *list = json_array();
	int64_t want = json_integer_value(cnt);
	for (int64_t i = 0; i < want && (s->capacity < 0 || s->live < s->capacity); i++) {
		char id[32], name[48], ip[32];
		unsigned n = ++s->next_id;
		snprintf(id, sizeof id, "i-%06u", n);
		snprintf(name, sizeof name, "host-%u.test", n);
		snprintf(ip, sizeof ip, "10.0.%u.%u", (n >> 8) & 255, n & 255);
		json_t *m = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:n, s:i, s:s}", "machine_id",
				      id, "name", name, "provider", "sim-a", "template_id",
				      json_string_value(tid), "request_id", rid, "state", "running", "result",
				      "succeed", "private_ip", ip, "public_ip", "launch_time", 1764230000,
				      "message", "");
		json_object_set(s->machines, id, m);
		json_array_append_new(list, m);
		s->live++;
	}
	bool none = json_array_size(list) == 0;
	if (none) {
		/* What provisio serve answers when no provider made anything. */
		json_decref(list);
		error_resp(r, 502, "PROVISIONING_FAILED",
			   "no machine of template 't-small' could be provisioned: CAPACITY: no room", NULL);
		free(canon);
		json_decref(body);
		return;
	}
	json_t *R = json_pack("{s:s, s:s, s:O, s:O, s:s, s:s, s:s, s:i, s:o}", "request_id", rid, "kind",
			      "acquire", "template_id", tid, "count", cnt, "status",
			      none ? "complete_with_error" : "complete", "state", none ? "failed" : "complete",
			      "message", none ? "CAPACITY: no room for any machine" : "", "created_at",
			      1764230000, "machines", list);
	if (key)
		json_object_set_new(s->idem, json_string_value(key), json_pack("{s:s, s:O}", "body", canon, "r", R));
	r->status = 202;
	r->body = dump(R);
	free(canon);
	json_decref(body);
}

static void do_machines(rts_server *s, const http_req *rq, http_resp *r)
{
	char ids[4096], rid[256];
	bool by_ids = query_get(rq->query, "ids", ids, sizeof ids);
	bool by_req = query_get(rq->query, "request_id", rid, sizeof rid);
	json_t *list = json_array();
	if (by_ids) {
		for (char *save = NULL, *id = strtok_r(ids, ",", &save); id; id = strtok_r(NULL, ",", &save)) {
			json_t *m = json_object_get(s->machines, id);
			if (m && (!by_req || strcmp(json_string_value(json_object_get(m, "request_id")), rid) == 0))
				json_array_append(list, m);
		}
	} else {
		const char *k;
		json_t *m;
		json_object_foreach(s->machines, k, m) {
			if (!by_req || strcmp(json_string_value(json_object_get(m, "request_id")), rid) == 0)
				json_array_append(list, m);
		}
	}
	r->status = 200;
	r->body = dump(json_pack("{s:o}", "machines", list));
}

static void do_returns(rts_server *s, const http_req *rq, http_resp *r)
{
	json_t *body = json_loadb(rq->body ? rq->body : "", rq->body_len, 0, NULL);
	json_t *ms = json_object_get(body, "machines"), *e;
	size_t i;
	if (!json_is_array(ms)) {
		error_resp(r, 400, "INVALID_PARAMETERS", "machines must be an array", "machines");
		json_decref(body);
		return;
	}
	/* as provisio does: the known machines are returned and listed, the
	 * others left out; none known is a 400 */
	json_t *known = json_array();
	json_array_foreach(ms, i, e) {
		json_t *m = json_object_get(s->machines, json_string_value(json_object_get(e, "machine_id")));
		if (!m)
			continue;
		if (strcmp(json_string_value(json_object_get(m, "state")), "terminated") != 0)
			s->live--;
		json_object_set_new(m, "state", json_string("terminated"));
		json_array_append(known, m);
	}
	if (json_array_size(known) == 0) {
		error_resp(r, 400, "INVALID_PARAMETERS", "unknown machine", "machines[].machine_id");
		json_decref(known);
		json_decref(body);
		return;
	}
	char rid[32];
	snprintf(rid, sizeof rid, "ret-%u", ++s->next_id);
	r->status = 202;
	r->body = dump(json_pack("{s:s, s:s, s:s, s:o}", "request_id", rid, "kind", "return", "status",
				 "running", "machines", known));
	json_decref(body);
}

static void route(rts_server *s, const http_req *rq, http_resp *r)
{
	bool get = strcmp(rq->method, "GET") == 0, post = strcmp(rq->method, "POST") == 0;
	if (get && strcmp(rq->path, "/health") == 0) {
		r->status = 200;
		r->body = strdup("{\"status\":\"ok\",\"version\":\"test\",\"uptime_seconds\":1}");
		return;
	}
	const char *auth = json_string_value(json_object_get(rq->headers, "authorization"));
	if (s->token && (!auth || strncmp(auth, "Bearer ", 7) != 0 || strcmp(auth + 7, s->token) != 0)) {
		error_resp(r, 401, "UNAUTHORIZED", "missing or unknown token", NULL);
		r->www_auth = true;
		return;
	}
	if (get && strcmp(rq->path, "/ready") == 0) {
		r->status = s->not_ready ? 503 : 200;
		r->body = dump(json_pack("{s:b, s:s, s:i}", "ready", !s->not_ready, "store", "ok",
					 "healthy_providers", s->not_ready ? 0 : 1));
	} else if (get && strcmp(rq->path, "/api/v1/templates") == 0) {
		r->status = 200;
		r->body = dump(json_pack("{s:o}", "templates", templates()));
	} else if (get && strncmp(rq->path, "/api/v1/templates/", 18) == 0) {
		char id[256];
		url_decode(rq->path + 18, strlen(rq->path + 18), id, sizeof id);
		json_t *t = find_template(id);
		if (t) {
			r->status = 200;
			r->body = dump(t);
		} else {
			error_resp(r, 404, "NOT_FOUND", "unknown template", NULL);
		}
	} else if (post && strcmp(rq->path, "/api/v1/requests") == 0) {
		do_create(s, rq, r);
	} else if (get && strcmp(rq->path, "/api/v1/machines") == 0) {
		do_machines(s, rq, r);
	} else if (post && strcmp(rq->path, "/api/v1/returns") == 0) {
		do_returns(s, rq, r);
	} else {
		error_resp(r, 404, "NOT_FOUND", "no such route", NULL);
	}
}

/* ---- faults ----------------------------------------------------------------------- */

static fault next_fault(rts_server *s)
{
	fault f = {.kind = FK_OK};
	if (s->n_faults == 0)
		return f;
	f = s->faults[0];
	if (--s->faults[0].times == 0) {
		memmove(s->faults, s->faults + 1, (s->n_faults - 1) * sizeof *s->faults);
		s->n_faults--;
	}
	return f;
}

int rts_script(rts_server *s, const char *entry)
{
	fault f = {.retry_after = -1, .times = 1};
	char kind[32] = "";
	const char *star = strchr(entry, '*');
	if (star)
		f.times = (unsigned)atoi(star + 1);
	sscanf(entry, "%31[a-z]", kind);
	if (strcmp(kind, "status") == 0) {
		f.kind = FK_STATUS;
		if (sscanf(entry, "status:%d:@%d", &f.status, &f.retry_after) == 2)
			f.retry_after_date = true;
		else if (sscanf(entry, "status:%d:%d", &f.status, &f.retry_after) < 1)
			return -1;
	} else if (strcmp(kind, "slow") == 0) {
		f.kind = FK_SLOW;
		if (sscanf(entry, "slow:%d", &f.slow_ms) != 1)
			return -1;
	} else if (strcmp(kind, "malformed") == 0) {
		f.kind = FK_MALFORMED;
	} else if (strcmp(kind, "html") == 0) {
		f.kind = FK_HTML;
	} else if (strcmp(kind, "wrongshape") == 0) {
		f.kind = FK_WRONGSHAPE;
	} else if (strcmp(kind, "close") == 0) {
		f.kind = FK_CLOSE;
	} else if (strcmp(kind, "ok") != 0) {
		return -1;
	}
	if (f.times == 0)
		return -1;
	pthread_mutex_lock(&s->lock);
	if (s->n_faults == s->cap_faults) {
		size_t cap = s->cap_faults ? s->cap_faults * 2 : 8;
		fault *g = realloc(s->faults, cap * sizeof *g);
		if (!g) {
			pthread_mutex_unlock(&s->lock);
			return -1;
		}
		s->faults = g;
		s->cap_faults = cap;
	}
	s->faults[s->n_faults++] = f;
	pthread_mutex_unlock(&s->lock);
	return 0;
}

static void sleep_ms(rts_server *s, int ms)
{
	for (int i = 0; i < ms; i += 10) {
		pthread_mutex_lock(&s->lock);
		bool stop = s->stopping;
		pthread_mutex_unlock(&s->lock);
		if (stop)
			return;
		struct timespec ts = {0, 10 * 1000000L};
		nanosleep(&ts, NULL);
	}
}

/* Answers one request; false when the connection must close. */
static bool serve_one(rts_server *s, int fd, http_req *rq)
{
	http_resp r = {.retry_after = -1};
	pthread_mutex_lock(&s->lock);
	char key[2100];
	snprintf(key, sizeof key, "%s %s", rq->method, rq->path);
	json_object_set_new(s->counts, key, json_integer(json_integer_value(json_object_get(s->counts, key)) + 1));
	json_decref(s->last_headers);
	s->last_headers = json_incref(rq->headers);
	fault f = next_fault(s);
	if (f.kind == FK_OK || f.kind == FK_SLOW)
		route(s, rq, &r);
	pthread_mutex_unlock(&s->lock);
	switch (f.kind) {
	case FK_CLOSE: return false;
	case FK_SLOW: sleep_ms(s, f.slow_ms); break;
	case FK_STATUS:
		error_resp(&r, f.status, f.status == 429 ? "THROTTLED" : "FAULT", "scripted fault", NULL);
		r.retry_after = f.retry_after;
		r.retry_after_date = f.retry_after_date;
		break;
	case FK_MALFORMED:
		r.status = 200;
		r.body = strdup("{\"machines\": [{\"machine_id\": \"i-1\", ");
		break;
	case FK_HTML:
		r.status = 200;
		r.content_type = "text/html";
		r.body = strdup("<html><body>Welcome to nginx!</body></html>");
		break;
	case FK_WRONGSHAPE:
		r.status = 200;
		r.body = strdup("{\"unexpected\": [1, 2, 3]}");
		break;
	default: break;
	}
	bool ok = send_resp(fd, &r);
	free(r.body);
	return ok && !rq->close;
}

static void *conn_main(void *arg)
{
	conn *c = arg;
	size_t cap = 1 << 20, len = 0;
	char *buf = malloc(cap);
	for (bool go = buf != NULL; go;) {
		http_req rq = {0};
		go = read_req(c->fd, buf, cap, &len, &rq) && serve_one(c->srv, c->fd, &rq);
		json_decref(rq.headers);
		free(rq.body);
	}
	free(buf);
	pthread_mutex_lock(&c->srv->lock);
	close(c->fd);
	c->fd = -1;
	c->done = true;
	pthread_mutex_unlock(&c->srv->lock);
	return NULL;
}

/* Joins finished connection threads (caller holds no lock). */
static void reap(rts_server *s, bool all)
{
	for (;;) {
		conn *found = NULL;
		pthread_mutex_lock(&s->lock);
		for (conn **pp = &s->conns; *pp; pp = &(*pp)->next) {
			if ((*pp)->done || all) {
				found = *pp;
				*pp = found->next;
				break;
			}
		}
		pthread_mutex_unlock(&s->lock);
		if (!found)
			return;
		pthread_join(found->thread, NULL);
		free(found);
	}
}

static void *accept_main(void *arg)
{
	rts_server *s = arg;
	for (;;) {
		int fd = accept(s->listen_fd, NULL, NULL);
		pthread_mutex_lock(&s->lock);
		bool stop = s->stopping;
		pthread_mutex_unlock(&s->lock);
		if (stop) {
			if (fd >= 0)
				close(fd);
			return NULL;
		}
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			return NULL;
		}
		int one = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
		reap(s, false);
		conn *c = calloc(1, sizeof *c);
		c->fd = fd;
		c->srv = s;
		pthread_mutex_lock(&s->lock);
		c->next = s->conns;
		s->conns = c;
		if (pthread_create(&c->thread, NULL, conn_main, c) != 0) {
			s->conns = c->next;
			close(fd);
			free(c);
		}
		pthread_mutex_unlock(&s->lock);
	}
}

static int listen_loopback(int *port)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t al = sizeof a;
	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) < 0 || listen(fd, 128) < 0 ||
	    getsockname(fd, (struct sockaddr *)&a, &al) < 0) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	*port = ntohs(a.sin_port);
	return fd;
}

int rts_start(rts_server **out)
{
	rts_server *s = calloc(1, sizeof *s);
	int port = 0;
	if (!s || (s->listen_fd = listen_loopback(&port)) < 0) {
		free(s);
		return -1;
	}
	snprintf(s->url, sizeof s->url, "http://127.0.0.1:%d", port);
	pthread_mutex_init(&s->lock, NULL);
	s->capacity = -1;
	s->machines = json_object();
	s->idem = json_object();
	s->counts = json_object();
	s->last_headers = json_object();
	if (pthread_create(&s->acceptor, NULL, accept_main, s) != 0) {
		close(s->listen_fd);
		free(s);
		return -1;
	}
	*out = s;
	return 0;
}

void rts_stop(rts_server *s)
{
	if (!s)
		return;
	pthread_mutex_lock(&s->lock);
	s->stopping = true;
	for (conn *c = s->conns; c; c = c->next)
		if (c->fd >= 0)
			shutdown(c->fd, SHUT_RDWR);
	pthread_mutex_unlock(&s->lock);
	shutdown(s->listen_fd, SHUT_RDWR);
	pthread_join(s->acceptor, NULL);
	close(s->listen_fd);
	reap(s, true);
	pthread_mutex_destroy(&s->lock);
	json_decref(s->machines);
	json_decref(s->idem);
	json_decref(s->counts);
	json_decref(s->last_headers);
	free(s->faults);
	free(s->token);
	free(s);
}

const char *rts_url(const rts_server *s) { return s->url; }

void rts_require_token(rts_server *s, const char *token)
{
	pthread_mutex_lock(&s->lock);
	free(s->token);
	s->token = token ? strdup(token) : NULL;
	pthread_mutex_unlock(&s->lock);
}

void rts_set_ready(rts_server *s, bool ready)
{
	pthread_mutex_lock(&s->lock);
	s->not_ready = !ready;
	pthread_mutex_unlock(&s->lock);
}

void rts_set_capacity(rts_server *s, int capacity)
{
	pthread_mutex_lock(&s->lock);
	s->capacity = capacity;
	pthread_mutex_unlock(&s->lock);
}

unsigned rts_count(rts_server *s, const char *prefix)
{
	unsigned n = 0;
	const char *k;
	json_t *v;
	pthread_mutex_lock(&s->lock);
	json_object_foreach(s->counts, k, v) if (strncmp(k, prefix, strlen(prefix)) == 0)
		n += (unsigned)json_integer_value(v);
	pthread_mutex_unlock(&s->lock);
	return n;
}

void rts_last_header(rts_server *s, const char *name, char *buf, size_t len)
{
	char lower[64];
	size_t i = 0;
	for (; name[i] && i < sizeof lower - 1; i++)
		lower[i] = (char)tolower((unsigned char)name[i]);
	lower[i] = '\0';
	pthread_mutex_lock(&s->lock);
	const char *v = json_string_value(json_object_get(s->last_headers, lower));
	snprintf(buf, len, "%s", v ? v : "");
	pthread_mutex_unlock(&s->lock);
}

int rts_live(rts_server *s)
{
	pthread_mutex_lock(&s->lock);
	int n = s->live;
	pthread_mutex_unlock(&s->lock);
	return n;
}

int rts_closed_port(void)
{
	int port = 0;
	int fd = listen_loopback(&port);
	if (fd < 0)
		return 1;
	close(fd);
	return port;
}
