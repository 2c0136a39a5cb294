/*
 * conn.c - HTTP/1.1 connections: reading a request head under a deadline, deciding who the caller is
 * before any body is read, reading the body within its limit, writing the
 * answer, keep-alive, and closing.
 *
 * Why not evhttp: it buffered bodies before a route could refuse the
 * caller, kept a connection alive as long as a byte trickled in now and
 * then, answered its own errors in HTML, sent HEAD bodies, spun on
 * accept() once descriptors ran out, and never told the access log about
 * requests it refused. Every one of those is a decision this file makes.
 *
 * One connection lives on one loop thread; it is never touched elsewhere,
 * except that a worker reads the request it holds while the connection
 * waits (state BUSY: the loop neither reads nor writes it then).
 *
 * Accepting them is listen.c's.
 */
#include <errno.h>
#include <malloc.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include "server/server_internal.h"
#include "util/utf8.h"

/* ---- what a connection is --------------------------------------------------------- */

enum conn_state {
	C_HEAD,   /* reading a request head (or waiting for its first byte) */
	C_BODY,   /* reading its body */
	C_BUSY,   /* a route (or a worker) has the request */
	C_WRITE,  /* the answer is being written */
	C_LINGER  /* answered before the client finished sending: draining, then close */
};

struct srv_conn {
	srv_thread *t;
	struct bufferevent *bev;
	struct event *timer;
	srv_addr addr;
	char peer[64];
	enum conn_state state;
	bool idle;         /* no byte of the next request yet */
	bool fresh;        /* no request yet: the header deadline runs from accept */
	bool body_unread;  /* the request announced a body not read (yet) */
	bool close_after;  /* close once the answer is out */
	bool dead;         /* the client failed while a worker had the request */
	bool counted;      /* a request begun and not finished (t->pending_writes) */
	char *head;
	size_t head_cap, head_len, head_scan;
	srv_head h;
	char *body;
	size_t body_len, body_cap;
	srv_chunked ch;
	size_t discarded;  /* bytes drained while lingering */
	srv_req r;
	TAILQ_ENTRY(srv_conn) link;
};

#define LINGER_SECONDS 2.0
#define LINGER_MAX_BYTES (1u << 20)
#define HEAD_START 1024

static void conn_free(srv_conn *c);
static void read_head(srv_conn *c);
static void read_body(srv_conn *c);

const char *srv_conn_peer(const srv_conn *c) { return c->peer; }
const srv_addr *srv_conn_addr(const srv_conn *c) { return &c->addr; }

static const srv_settings *settings(srv_thread *t)
{
	srv_world *w = srv_thread_world(t);
	return w ? &w->set : NULL;
}

static void arm(srv_conn *c, double seconds)
{
	struct timeval tv = {(time_t)seconds, (suseconds_t)((seconds - (double)(time_t)seconds) * 1e6)};
	event_add(c->timer, &tv);
}

/* ---- answers --------------------------------------------------------------------------- */

static const char *reason(int status)
{
	switch (status) {
	case 100: return "Continue";
	case 200: return "OK";
	case 201: return "Created";
	case 202: return "Accepted";
	case 204: return "No Content";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 408: return "Request Timeout";
	case 409: return "Conflict";
	case 411: return "Length Required";
	case 413: return "Content Too Large";
	case 414: return "URI Too Long";
	case 415: return "Unsupported Media Type";
	case 417: return "Expectation Failed";
	case 422: return "Unprocessable Content";
	case 429: return "Too Many Requests";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 501: return "Not Implemented";
	case 502: return "Bad Gateway";
	case 503: return "Service Unavailable";
	case 504: return "Gateway Timeout";
	case 505: return "HTTP Version Not Supported";
	default: return "Unknown";
	}
}

/* The Date header's value, formatted when the second changes. */
static const char *http_date(srv_thread *t)
{
	time_t now = time(NULL);
	if (now != t->date_s) {
		struct tm tm;
		gmtime_r(&now, &tm);
		strftime(t->date, sizeof t->date, "%a, %d %b %Y %H:%M:%S GMT", &tm);
		t->date_s = now;
	}
	return t->date;
}

static void free_ref(const void *data, size_t len, void *extra)
{
	(void)len;
	(void)extra;
	free((void *)data);
}

static void start_linger(srv_conn *c);
static void next_request(srv_conn *c);

/* The answer is out: the next request, lingering, or the end. */
static void answered(srv_conn *c)
{
	if (c->counted) {
		atomic_fetch_sub_explicit(&c->t->pending_writes, 1, memory_order_relaxed);
		c->counted = false;
	}
	if (!c->close_after)
		next_request(c);
	else if (c->body_unread && !c->t->srv->ssl)
		start_linger(c);
	else
		conn_free(c);
}

void srv_conn_write(srv_req *r, int status, char *body, size_t len, bool owned)
{
	srv_conn *c = r->conn;
	if (c->dead) {
		if (owned)
			free(body);
		conn_free(c);
		return;
	}
	if (c->body_unread || r->close || atomic_load_explicit(&c->t->srv->stopping, memory_order_relaxed))
		c->close_after = true;
	bool keep_10 = !c->close_after && r->head && r->head->minor == 0;
	char head[1024];
	int n = snprintf(head, sizeof head,
			 "HTTP/1.1 %d %s\r\nDate: %s\r\nContent-Length: %zu\r\nX-Request-Id: %s\r\n%s%.*s\r\n",
			 status, reason(status), http_date(c->t), len, r->request_id,
			 c->close_after ? "Connection: close\r\n" : keep_10 ? "Connection: keep-alive\r\n" : "",
			 (int)r->out_headers_len, r->out_headers);
	struct evbuffer *out = bufferevent_get_output(c->bev);
	evbuffer_add(out, head, n > 0 && (size_t)n < sizeof head ? (size_t)n : 0);
	/* HEAD: the length a GET would have, and no body */
	bool send_body = len && r->method != SRV_HEAD;
	if (send_body && owned)
		evbuffer_add_reference(out, body, len, free_ref, NULL);
	else {
		if (send_body)
			evbuffer_add(out, body, len);
		if (owned)
			free(body);
	}
	c->state = C_WRITE;
	bufferevent_disable(c->bev, EV_READ);
	bufferevent_enable(c->bev, EV_WRITE);
	const srv_settings *s = settings(c->t);
	arm(c, s ? s->idle_timeout_s : 60); /* a client that does not read its answer */
	/* on_write calls answered() once the output drained: never from here,
	 * so pipelined requests do not recurse */
}

/* ---- requests -------------------------------------------------------------------------- */

/* For the log of a head that could not be parsed: its first two words. */
static void salvage_request_line(srv_conn *c, srv_req *r)
{
	if (!c->head || !c->head_len)
		return;
	char *p = c->head, *end = c->head + (c->head_len < c->head_cap ? c->head_len : c->head_cap - 1);
	*end = '\0';
	char *eol = strpbrk(p, "\r\n");
	if (eol)
		*eol = '\0';
	char *sp = strchr(p, ' ');
	if (sp) {
		*sp = '\0';
		char *sp2 = strchr(sp + 1, ' ');
		if (sp2)
			*sp2 = '\0';
		r->target = sp + 1;
	}
	r->method_text = p;
}

/* A new request on c: ids, the clock, counted until answered. */
static srv_req *begin(srv_conn *c)
{
	srv_req *r = &c->r;
	memset(r, 0, offsetof(srv_req, path) + 1);
	memset(&r->n_query, 0, sizeof *r - offsetof(srv_req, n_query));
	r->t = c->t;
	r->conn = c;
	r->w = srv_thread_world(c->t);
	r->method_text = "";
	r->target = "";
	r->method = SRV_OTHER;
	r->start_ns = pv_now_ns();
	c->fresh = false;
	if (!c->counted) {
		atomic_fetch_add_explicit(&c->t->pending_writes, 1, memory_order_relaxed);
		c->counted = true;
	}
	return r;
}

/* Answers a request that never got to a route (a head too large or too
 * slow, a body too slow) and closes. */
static void fail(srv_conn *c, int status, const char *code, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static void fail(srv_conn *c, int status, const char *code, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	pv_utf8_vformat(msg, sizeof msg, fmt, ap);
	va_end(ap);
	srv_req *r = &c->r;
	if (c->state != C_BODY) {
		r = begin(c);
		salvage_request_line(c, r);
		srv_req_ids(r);
	}
	r->close = true;
	c->body_unread = true;
	srv_reply_error(r, status, code, NULL, "%s", msg);
	srv_set_current(NULL);
}

static void run(srv_conn *c)
{
	srv_req *r = &c->r;
	c->state = C_BUSY;
	c->body_unread = false;
	event_del(c->timer);
	bufferevent_disable(c->bev, EV_READ);
	r->body = c->body ? c->body : "";
	r->body_len = c->body_len;
	srv_route_run(r);
	srv_set_current(NULL);
}

static const char *code_for(int status)
{
	switch (status) {
	case 413: return "BODY_TOO_LARGE";
	case 414: return "URI_TOO_LONG";
	case 417: return "EXPECTATION_FAILED";
	case 431: return "HEADERS_TOO_LARGE";
	case 501: return "NOT_IMPLEMENTED";
	case 505: return "HTTP_VERSION_NOT_SUPPORTED";
	default: return "BAD_REQUEST";
	}
}

/* The head is in c->head[0..end): parse, route, authenticate, then read
 * the body (only now) or run. */
static void head_done(srv_conn *c, size_t end)
{
	srv_req *r = begin(c);
	const char *why = "";
	int st = srv_head_parse(c->head, end, &c->h, &why);
	if (st) {
		if (c->h.method_text)
			r->method_text = c->h.method_text;
		else
			salvage_request_line(c, r);
		r->target = c->h.target ? c->h.target : r->target;
		srv_req_ids(r);
		r->close = true;
		c->body_unread = true;
		srv_reply_error(r, st, code_for(st), NULL, "%s", why);
		srv_set_current(NULL);
		return;
	}
	r->head = &c->h;
	r->method = c->h.method;
	r->method_text = c->h.method_text;
	r->target = c->h.target;
	r->close = !c->h.keep_alive;
	c->body_unread = c->h.chunked || c->h.content_length > 0;
	srv_req_ids(r);
	if (srv_route_prepare(r) < 0) {
		srv_set_current(NULL);
		return;
	}
	if (!c->body_unread) {
		run(c);
		return;
	}
	const srv_settings *s = &r->w->set;
	if (c->h.content_length > (int64_t)s->max_body_bytes) {
		srv_reply_error(r, 413, "BODY_TOO_LARGE", NULL, "the request body of %lld bytes is over the "
				"limit of %zu bytes (server.max_body_bytes)", (long long)c->h.content_length,
				s->max_body_bytes);
		srv_set_current(NULL);
		return;
	}
	size_t cap = c->h.chunked ? (s->max_body_bytes < 4096 ? s->max_body_bytes : 4096)
				  : (size_t)c->h.content_length;
	c->body = malloc(cap + 1);
	if (!c->body) {
		srv_reply_error(r, 503, "UNAVAILABLE", NULL, "out of memory for the request body");
		srv_set_current(NULL);
		return;
	}
	c->body_cap = cap;
	c->body_len = 0;
	memset(&c->ch, 0, sizeof c->ch);
	if (c->h.expect_continue)
		bufferevent_write(c->bev, "HTTP/1.1 100 Continue\r\n\r\n", 25);
	c->state = C_BODY;
	arm(c, s->body_timeout_s);
	srv_set_current(NULL);
	read_body(c);
}

static void read_head(srv_conn *c)
{
	struct evbuffer *in = bufferevent_get_input(c->bev);
	const srv_settings *s = settings(c->t);
	size_t limit = s ? s->max_header_bytes : 16384;
	if (c->head_len == 0) { /* empty lines before a request are allowed (and ignored) */
		unsigned char ch;
		while (evbuffer_copyout(in, &ch, 1) == 1 && (ch == '\r' || ch == '\n'))
			evbuffer_drain(in, 1);
	}
	size_t avail = evbuffer_get_length(in);
	if (!avail)
		return;
	if (c->idle) { /* the first byte of a request: its head has a deadline */
		c->idle = false;
		if (!c->fresh) /* a new connection's deadline runs from accept */
			arm(c, s ? s->header_timeout_s : 10);
	}
	size_t want = avail < limit ? avail : limit;
	if (want > c->head_len) {
		if (want + 1 > c->head_cap) {
			size_t cap = c->head_cap ? c->head_cap : HEAD_START;
			while (cap < want + 1)
				cap *= 2;
			char *grown = realloc(c->head, cap);
			if (!grown) {
				conn_free(c);
				return;
			}
			c->head = grown;
			c->head_cap = cap;
		}
		struct evbuffer_ptr pos;
		evbuffer_ptr_set(in, &pos, c->head_len, EVBUFFER_PTR_SET);
		evbuffer_copyout_from(in, &pos, c->head + c->head_len, want - c->head_len);
		c->head_len = want;
	}
	size_t end = srv_head_end(c->head, c->head_len, &c->head_scan);
	if (end) {
		evbuffer_drain(in, end);
		head_done(c, end);
		return;
	}
	if (c->head_len >= limit)
		fail(c, 431, "HEADERS_TOO_LARGE", "the request head is over %zu bytes (server.max_header_bytes)",
		     limit);
}

/* Room for more of a chunked body, up to the limit. */
static bool body_grow(srv_conn *c, size_t limit)
{
	if (c->body_cap >= limit)
		return false;
	size_t cap = c->body_cap * 2 < limit ? c->body_cap * 2 : limit;
	char *grown = realloc(c->body, cap + 1);
	if (!grown)
		return false;
	c->body = grown;
	c->body_cap = cap;
	return true;
}

static void read_body(srv_conn *c)
{
	struct evbuffer *in = bufferevent_get_input(c->bev);
	if (!c->h.chunked) {
		size_t need = (size_t)c->h.content_length - c->body_len;
		size_t n = evbuffer_remove(in, c->body + c->body_len, need);
		c->body_len += n > 0 ? n : 0;
		if (c->body_len == (size_t)c->h.content_length) {
			c->body[c->body_len] = '\0';
			run(c);
		}
		return;
	}
	size_t limit = c->r.w->set.max_body_bytes;
	for (;;) {
		struct evbuffer_iovec v;
		if (evbuffer_peek(in, -1, NULL, &v, 1) < 1 || !v.iov_len)
			return;
		size_t used = 0, wrote = 0;
		int rc = srv_chunked_feed(&c->ch, v.iov_base, v.iov_len, &used, c->body + c->body_len,
					  c->body_cap - c->body_len, &wrote);
		c->body_len += wrote;
		evbuffer_drain(in, used);
		if (rc == SRV_CHUNKED_DONE) {
			c->body[c->body_len] = '\0';
			run(c);
			return;
		}
		if (rc == SRV_CHUNKED_BAD) {
			srv_reply_error(&c->r, 400, "BAD_REQUEST", NULL, "malformed chunked request body");
			srv_set_current(NULL);
			return;
		}
		if (rc == SRV_CHUNKED_FULL && !body_grow(c, limit)) {
			srv_reply_error(&c->r, 413, "BODY_TOO_LARGE", NULL, "the chunked request body is over the "
					"limit of %zu bytes (server.max_body_bytes)", limit);
			srv_set_current(NULL);
			return;
		}
	}
}

static void next_request(srv_conn *c)
{
	free(c->body);
	c->body = NULL;
	c->body_len = c->body_cap = 0;
	if (c->head_cap > 4 * HEAD_START) { /* a big head once: give the memory back */
		free(c->head);
		c->head = NULL;
		c->head_cap = 0;
	}
	c->head_len = c->head_scan = 0;
	c->state = C_HEAD;
	c->idle = true;
	c->body_unread = false;
	const srv_settings *s = settings(c->t);
	arm(c, s ? s->idle_timeout_s : 60);
	bufferevent_enable(c->bev, EV_READ);
	if (evbuffer_get_length(bufferevent_get_input(c->bev)))
		read_head(c); /* pipelined */
}

/* Answered before the client finished sending: stop writing, read and
 * drop what it still sends for a moment, then close, so the answer is not
 * lost to a reset of unread data. */
static void start_linger(srv_conn *c)
{
	c->state = C_LINGER;
	shutdown(bufferevent_getfd(c->bev), SHUT_WR);
	evbuffer_drain(bufferevent_get_input(c->bev), (size_t)-1);
	bufferevent_enable(c->bev, EV_READ);
	arm(c, LINGER_SECONDS);
}

/* ---- libevent's callbacks --------------------------------------------------------------- */

static void on_read(struct bufferevent *bev, void *arg)
{
	srv_conn *c = arg;
	switch (c->state) {
	case C_HEAD: read_head(c); break;
	case C_BODY: read_body(c); break;
	case C_LINGER: {
		struct evbuffer *in = bufferevent_get_input(bev);
		c->discarded += evbuffer_get_length(in);
		evbuffer_drain(in, (size_t)-1);
		if (c->discarded > LINGER_MAX_BYTES)
			conn_free(c);
		break;
	}
	default: break;
	}
}

static void on_write(struct bufferevent *bev, void *arg)
{
	srv_conn *c = arg;
	if (c->state == C_WRITE && evbuffer_get_length(bufferevent_get_output(bev)) == 0)
		answered(c);
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
	(void)bev;
	srv_conn *c = arg;
	if (what & BEV_EVENT_CONNECTED) /* the TLS handshake is done */
		return;
	if ((what & BEV_EVENT_EOF) && (c->state == C_BUSY || c->state == C_WRITE)) {
		c->close_after = true; /* the client is done sending; it may still read */
		return;
	}
	if (c->state == C_BUSY) {
		c->dead = true; /* the worker's answer frees the connection */
		return;
	}
	conn_free(c);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	srv_conn *c = arg;
	const srv_settings *s = settings(c->t);
	pv_server *srv = c->t->srv;
	if (c->state == C_HEAD && !c->idle) {
		atomic_fetch_add(&srv->header_timeouts, 1);
		fail(c, 408, "REQUEST_TIMEOUT", "the request head did not arrive within %g s "
		     "(server.header_timeout_seconds)", s ? s->header_timeout_s : 0);
	} else if (c->state == C_BODY) {
		atomic_fetch_add(&srv->body_timeouts, 1);
		fail(c, 408, "REQUEST_TIMEOUT", "the request body did not arrive within %g s "
		     "(server.body_timeout_seconds)", s ? s->body_timeout_s : 0);
	} else if (c->state != C_BUSY)
		conn_free(c); /* idle, not reading its answer, or done lingering */
}

/* ---- connections on a loop ------------------------------------------------------------------ */

static void trim_memory(srv_thread *t)
{
	unsigned n = atomic_load_explicit(&t->n_conns, memory_order_relaxed);
	if (t->peak_conns >= 16 && n <= t->peak_conns / 4) {
		/* many connections went away: give their memory back to the system */
		malloc_trim(0);
		t->peak_conns = n;
	}
}

static void conn_free(srv_conn *c)
{
	srv_thread *t = c->t;
	pv_server *srv = t->srv;
	if (c->counted)
		atomic_fetch_sub_explicit(&t->pending_writes, 1, memory_order_relaxed);
	if (c->timer)
		event_free(c->timer);
	if (c->bev)
		bufferevent_free(c->bev); /* closes the socket */
	free(c->head);
	free(c->body);
	srv_clients_close(srv->clients, &c->addr);
	atomic_fetch_sub(&srv->conns_open, 1);
	atomic_fetch_sub(&t->n_conns, 1);
	TAILQ_REMOVE(&t->conns, c, link);
	free(c);
	trim_memory(t);
}

void srv_conn_new(srv_thread *t, evutil_socket_t fd, const srv_addr *a, const char *peer)
{
	pv_server *srv = t->srv;
	srv_conn *c = calloc(1, sizeof *c);
	struct bufferevent *bev = NULL;
	if (c) {
		if (srv->ssl) {
			SSL *ssl = SSL_new(srv->ssl);
			bev = ssl ? bufferevent_openssl_socket_new(t->base, fd, ssl, BUFFEREVENT_SSL_ACCEPTING,
								   BEV_OPT_CLOSE_ON_FREE)
				  : NULL;
			if (bev)
				bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
		} else
			bev = bufferevent_socket_new(t->base, fd, BEV_OPT_CLOSE_ON_FREE);
	}
	struct event *timer = c ? evtimer_new(t->base, on_timer, c) : NULL;
	if (!c || !bev || !timer) {
		if (bev)
			bufferevent_free(bev);
		else
			close(fd);
		if (timer)
			event_free(timer);
		free(c);
		srv_clients_close(srv->clients, a);
		atomic_fetch_sub(&srv->conns_open, 1);
		return;
	}
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	c->t = t;
	c->bev = bev;
	c->timer = timer;
	c->addr = *a;
	snprintf(c->peer, sizeof c->peer, "%s", peer);
	c->state = C_HEAD;
	c->idle = c->fresh = true;
	TAILQ_INSERT_TAIL(&t->conns, c, link);
	unsigned n = atomic_fetch_add(&t->n_conns, 1) + 1;
	if (n > t->peak_conns)
		t->peak_conns = n;
	bufferevent_setcb(bev, on_read, on_write, on_event, c);
	bufferevent_enable(bev, EV_READ);
	/* a new connection owes its first request head (and its TLS
	 * handshake) within the header deadline; one that sent nothing by then
	 * is closed quietly, one that sent part of a head is answered 408 */
	const srv_settings *s = settings(t);
	arm(c, s ? s->header_timeout_s : 10);
}

void srv_conns_close_idle(srv_thread *t)
{
	srv_conn *c, *next;
	for (c = TAILQ_FIRST(&t->conns); c; c = next) {
		next = TAILQ_NEXT(c, link);
		if (c->state == C_HEAD || c->state == C_LINGER)
			conn_free(c);
	}
}

void srv_conns_free(srv_thread *t)
{
	if (!t->conns.tqh_last) /* never set up */
		return;
	while (!TAILQ_EMPTY(&t->conns))
		conn_free(TAILQ_FIRST(&t->conns));
}
