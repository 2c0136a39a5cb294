/*
 * http.c - one HTTP exchange over libcurl's easy interface, with a pool of
 * easy handles per strategy.
 *
 * A pooled handle keeps its live connection, so a burst of calls to the same
 * endpoint reuses TCP (and TLS) sessions instead of paying a handshake per
 * call (bench/bench_rest.c measures both; max_connections = 0 turns the pool
 * off). The pool's lock guards only the free list and is never held during
 * I/O: each call owns its handle for the exchange. Redirects are not
 * followed, so the bearer token never travels to another host.
 */
#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "provisio/error.h"
#include "providers/rest/rs.h"

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static CURLcode global_rc = CURLE_OK;

static void global_init_once(void) { global_rc = curl_global_init(CURL_GLOBAL_DEFAULT); }

int rs_global_init(void)
{
	pthread_once(&global_once, global_init_once);
	return global_rc == CURLE_OK ? 0
				      : pv_error_set(PV_ERROR, "libcurl failed to initialize: %s",
						     curl_easy_strerror(global_rc));
}

void rs_http_init(rs_http *h, const rs_config *cfg)
{
	memset(h, 0, sizeof *h);
	h->cfg = cfg;
	pthread_mutex_init(&h->lock, NULL);
}

void rs_http_fini(rs_http *h)
{
	for (size_t i = 0; i < h->n_idle; i++)
		curl_easy_cleanup(h->idle[i]);
	free(h->idle);
	pthread_mutex_destroy(&h->lock);
	h->idle = NULL;
	h->n_idle = 0;
}

size_t rs_http_idle(rs_http *h)
{
	pthread_mutex_lock(&h->lock);
	size_t n = h->n_idle;
	pthread_mutex_unlock(&h->lock);
	return n;
}

static CURL *handle_take(rs_http *h)
{
	CURL *c = NULL;
	pthread_mutex_lock(&h->lock);
	if (h->n_idle > 0)
		c = h->idle[--h->n_idle];
	pthread_mutex_unlock(&h->lock);
	if (c) {
		/* Keeps live connections and caches; forgets every option. */
		curl_easy_reset(c);
		return c;
	}
	c = curl_easy_init();
	if (c)
		atomic_fetch_add_explicit(&h->handles_created, 1, memory_order_relaxed);
	return c;
}

static void handle_give(rs_http *h, CURL *c)
{
	size_t cap = (size_t)h->cfg->max_connections;
	pthread_mutex_lock(&h->lock);
	if (!h->idle && cap > 0)
		h->idle = calloc(cap, sizeof *h->idle);
	if (h->idle && h->n_idle < cap) {
		h->idle[h->n_idle++] = c;
		c = NULL;
	}
	pthread_mutex_unlock(&h->lock);
	if (c)
		curl_easy_cleanup(c);
}

/* ---- callbacks ------------------------------------------------------------ */

typedef struct exchange {
	rs_reply *rep;
	size_t limit;
} exchange;

static size_t on_body(char *data, size_t size, size_t n, void *user)
{
	exchange *x = user;
	rs_reply *r = x->rep;
	size_t len = size * n;
	if (r->len + len > x->limit) {
		r->too_large = true;
		return 0; /* aborts the transfer with CURLE_WRITE_ERROR */
	}
	if (r->len + len + 1 > r->cap) {
		size_t cap = r->cap ? r->cap : 4096;
		while (cap < r->len + len + 1)
			cap *= 2;
		char *grown = realloc(r->body, cap);
		if (!grown)
			return 0;
		r->body = grown;
		r->cap = cap;
	}
	memcpy(r->body + r->len, data, len);
	r->len += len;
	r->body[r->len] = '\0';
	return len;
}

/* Retry-After: delta-seconds or an HTTP-date (RFC 9110 10.2.3). */
static int64_t parse_retry_after(const char *v, size_t len)
{
	char buf[96];
	while (len > 0 && isspace((unsigned char)v[len - 1]))
		len--;
	while (len > 0 && isspace((unsigned char)*v)) {
		v++;
		len--;
	}
	if (len == 0 || len >= sizeof buf)
		return -1;
	memcpy(buf, v, len);
	buf[len] = '\0';
	char *end = NULL;
	long long s = strtoll(buf, &end, 10);
	if (end && *end == '\0' && end != buf)
		return s < 0 ? -1 : (s > 86400 ? 86400000 : s * 1000);
	time_t at = curl_getdate(buf, NULL);
	if (at < 0)
		return -1;
	int64_t ms = (int64_t)at * 1000 - pv_wall_ms();
	return ms < 0 ? 0 : ms;
}

static size_t on_header(char *data, size_t size, size_t n, void *user)
{
	exchange *x = user;
	size_t len = size * n;
	static const char ra[] = "retry-after:";
	/* A new status line (after a 100 Continue) starts a new answer. */
	if (len > 5 && strncmp(data, "HTTP/", 5) == 0)
		x->rep->retry_after_ms = -1;
	else if (len > sizeof ra - 1 && strncasecmp(data, ra, sizeof ra - 1) == 0)
		x->rep->retry_after_ms = parse_retry_after(data + sizeof ra - 1, len - (sizeof ra - 1));
	return len;
}

/* ---- one exchange ----------------------------------------------------------- */

static struct curl_slist *build_headers(const rs_config *cfg, const rs_request *rq)
{
	struct curl_slist *l = NULL, *t;
	char idem[300];
#define ADD(s)                                             \
	do {                                               \
		t = curl_slist_append(l, (s));             \
		if (!t) {                                  \
			curl_slist_free_all(l);            \
			return NULL;                       \
		}                                          \
		l = t;                                     \
	} while (0)
	ADD("Accept: application/json");
	ADD("Expect:"); /* no 100-continue round trip on small POSTs */
	if (rq->body)
		ADD("Content-Type: application/json");
	if (cfg->auth_header)
		ADD(cfg->auth_header);
	if (rq->idempotency_key) {
		snprintf(idem, sizeof idem, "Idempotency-Key: %s", rq->idempotency_key);
		ADD(idem);
	}
#undef ADD
	return l;
}

static void set_options(CURL *c, const rs_config *cfg, const rs_request *rq, exchange *x,
			struct curl_slist *headers)
{
	curl_easy_setopt(c, CURLOPT_URL, rq->url);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)rq->timeout_ms);
	long connect_ms = (long)(cfg->connect_timeout_ms < rq->timeout_ms ? cfg->connect_timeout_ms
									  : rq->timeout_ms);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, connect_ms);
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, cfg->verify_tls ? 1L : 0L);
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, cfg->verify_tls ? 2L : 0L);
	if (cfg->ca_file)
		curl_easy_setopt(c, CURLOPT_CAINFO, cfg->ca_file);
	curl_easy_setopt(c, CURLOPT_USERAGENT, "provisio-rest/1");
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, x);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, x);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, x->rep->curl_msg);
	if (strcmp(rq->method, "POST") == 0) {
		curl_easy_setopt(c, CURLOPT_POST, 1L);
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, rq->body ? rq->body : "");
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)(rq->body ? strlen(rq->body) : 0));
	} else {
		curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
	}
}

void rs_http_do(rs_http *h, const rs_request *rq, rs_reply *rep)
{
	rep->retry_after_ms = -1;
	CURL *c = handle_take(h);
	struct curl_slist *headers = c ? build_headers(h->cfg, rq) : NULL;
	if (!c || !headers) {
		rep->curl = CURLE_OUT_OF_MEMORY;
		snprintf(rep->curl_msg, sizeof rep->curl_msg, "out of memory");
		if (c)
			curl_easy_cleanup(c);
		return;
	}
	exchange x = {rep, (size_t)h->cfg->max_response_bytes};
	set_options(c, h->cfg, rq, &x, headers);
	rep->curl = curl_easy_perform(c);
	if (rep->curl == CURLE_OK) {
		char *ct = NULL;
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &rep->status);
		if (curl_easy_getinfo(c, CURLINFO_CONTENT_TYPE, &ct) == CURLE_OK && ct)
			snprintf(rep->content_type, sizeof rep->content_type, "%s", ct);
	} else if (!rep->curl_msg[0]) {
		snprintf(rep->curl_msg, sizeof rep->curl_msg, "%s", curl_easy_strerror(rep->curl));
	}
	/* The error buffer and header list die here; the handle must not
	 * point at them when it waits in the pool. */
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, NULL);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, NULL);
	curl_slist_free_all(headers);
	if (rep->curl == CURLE_OK || rep->status != 0)
		handle_give(h, c);
	else
		curl_easy_cleanup(c); /* a broken exchange: start the next one fresh */
}

void rs_reply_clear(rs_reply *rep)
{
	free(rep->body);
	memset(rep, 0, sizeof *rep);
}
