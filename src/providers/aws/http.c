/*
 * http.c - one signed EC2 call over libcurl.
 *
 * libcurl (7.75+) signs requests itself with CURLOPT_AWS_SIGV4, so the
 * provider carries no hand-written signer. We POST the form body because
 * libcurl 7.88 puts a GET query string into the canonical request
 * unsorted, which EC2 rejects; a POST to "/" has an empty query. Session
 * tokens travel as X-Amz-Security-Token, which libcurl signs too.
 *
 * One function prepares the signed easy handle (aws_http_xfer_begin) and
 * one reads its outcome (aws_http_xfer_end); a single call runs it with
 * curl_easy_perform, and the multi helpers below run many of them from one
 * thread (DescribeInstances batches), so both paths send identical requests.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <curl/curl.h>
#include "provisio/error.h"
#include "providers/aws/aws_internal.h"

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static int curl_init_rc;

static void curl_init_once(void)
{
	curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : -1;
}

int aws_http_global_init(void)
{
	pthread_once(&curl_once, curl_init_once);
	return curl_init_rc == 0 ? 0 : pv_error_set(PV_EIO, "libcurl failed to initialise");
}

static size_t on_body(char *data, size_t size, size_t n, void *user)
{
	aws_http_reply *r = user;
	size_t add = size * n;
	char *grown = realloc(r->body, r->len + add + 1);
	if (!grown)
		return 0; /* aborts the transfer */
	memcpy(grown + r->len, data, add);
	r->len += add;
	grown[r->len] = '\0';
	r->body = grown;
	return add;
}

static int finish(CURL *h, CURLcode rc, aws_http_reply *r, const char *errbuf)
{
	r->curl_code = (int)rc;
	if (rc != CURLE_OK) {
		r->timed_out = rc == CURLE_OPERATION_TIMEDOUT;
		snprintf(r->error, sizeof r->error, "%s", *errbuf ? errbuf : curl_easy_strerror(rc));
		r->status = 0;
		return PV_EIO;
	}
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r->status);
	return 0;
}

void aws_http_pool_init(aws_http_pool *p)
{
	pthread_mutex_init(&p->lock, NULL);
	p->n = p->nmulti = 0;
}

void aws_http_pool_destroy(aws_http_pool *p)
{
	for (int i = 0; i < p->n; i++)
		curl_easy_cleanup(p->idle[i]);
	for (int i = 0; i < p->nmulti; i++)
		curl_multi_cleanup(p->multi_idle[i]);
	p->n = p->nmulti = 0;
	pthread_mutex_destroy(&p->lock);
}

static CURL *pool_get(aws_http_pool *p)
{
	CURL *h = NULL;
	if (p) {
		pthread_mutex_lock(&p->lock);
		if (p->n > 0)
			h = p->idle[--p->n];
		pthread_mutex_unlock(&p->lock);
	}
	return h ? h : curl_easy_init();
}

/* Back to the pool with its options (credentials included) reset; the
 * connection cache survives curl_easy_reset. */
static void pool_put(aws_http_pool *p, CURL *h)
{
	curl_easy_reset(h);
	if (p) {
		pthread_mutex_lock(&p->lock);
		if (p->n < AWS_HTTP_POOL_MAX) {
			p->idle[p->n++] = h;
			h = NULL;
		}
		pthread_mutex_unlock(&p->lock);
	}
	if (h)
		curl_easy_cleanup(h);
}

/* The session token rides in a header: wipe the list's copy before it is
 * freed. */
static void free_headers(struct curl_slist *hdr)
{
	for (struct curl_slist *h = hdr; h; h = h->next) {
		volatile char *p = h->data;
		while (*p)
			*p++ = 0;
	}
	curl_slist_free_all(hdr);
}

int aws_http_xfer_begin(aws_http_xfer *x, aws_http_pool *pool, const aws_http_opts *o,
			const aws_creds *c, const char *form)
{
	memset(x, 0, sizeof *x);
	if (aws_http_global_init() < 0)
		return PV_EIO;
	CURL *h = pool_get(pool);
	if (!h) {
		snprintf(x->reply.error, sizeof x->reply.error, "curl_easy_init failed");
		return PV_EIO;
	}
	char sigv4[96];
	snprintf(sigv4, sizeof sigv4, "aws:amz:%s:%s", o->region, o->service ? o->service : "ec2");
	struct curl_slist *hdr = curl_slist_append(NULL, "Content-Type: application/x-www-form-urlencoded; charset=utf-8");
	hdr = curl_slist_append(hdr, "Expect:");
	if (c->session_token[0]) {
		/* Built on the stack and wiped: the token is a secret. */
		char tok[sizeof c->session_token + 32];
		snprintf(tok, sizeof tok, "X-Amz-Security-Token: %s", c->session_token);
		hdr = curl_slist_append(hdr, tok);
		memset(tok, 0, sizeof tok);
	}
	x->handle = h;
	x->headers = hdr;
	curl_easy_setopt(h, CURLOPT_URL, o->endpoint_url);
	curl_easy_setopt(h, CURLOPT_POST, 1L);
	curl_easy_setopt(h, CURLOPT_POSTFIELDS, form);
	curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)strlen(form));
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
	curl_easy_setopt(h, CURLOPT_AWS_SIGV4, sigv4);
	curl_easy_setopt(h, CURLOPT_USERNAME, c->access_key_id);
	curl_easy_setopt(h, CURLOPT_PASSWORD, c->secret_access_key);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, o->connect_timeout_ms);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, o->timeout_ms);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, o->verify_tls ? 1L : 0L);
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, o->verify_tls ? 2L : 0L);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	if (o->proxy)
		curl_easy_setopt(h, CURLOPT_PROXY, o->proxy);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &x->reply);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, x->errbuf);
	curl_easy_setopt(h, CURLOPT_USERAGENT, "provisio/0.1 (aws provider)");
	curl_easy_setopt(h, CURLOPT_PRIVATE, x);
	return 0;
}

int aws_http_xfer_end(aws_http_xfer *x, aws_http_pool *pool, int curl_code)
{
	CURL *h = x->handle;
	if (!h)
		return PV_EIO;
	int ret = finish(h, (CURLcode)curl_code, &x->reply, x->errbuf);
	free_headers(x->headers);
	x->headers = NULL;
	x->handle = NULL;
	/* A failed transfer may leave a broken connection: do not keep it. */
	if (curl_code == CURLE_OK)
		pool_put(pool, h);
	else
		curl_easy_cleanup(h);
	return ret;
}

int aws_http_post(aws_http_pool *pool, const aws_http_opts *o, const aws_creds *c, const char *form,
		  aws_http_reply *r)
{
	aws_http_xfer x;
	int ret = aws_http_xfer_begin(&x, pool, o, c, form);
	if (ret == 0)
		ret = aws_http_xfer_end(&x, pool, (int)curl_easy_perform(x.handle));
	*r = x.reply;
	return ret;
}

/* ---- many transfers from one thread ------------------------------------------ */

void *aws_http_multi_get(aws_http_pool *p)
{
	void *m = NULL;
	if (aws_http_global_init() < 0)
		return NULL;
	pthread_mutex_lock(&p->lock);
	if (p->nmulti > 0)
		m = p->multi_idle[--p->nmulti];
	pthread_mutex_unlock(&p->lock);
	return m ? m : curl_multi_init();
}

void aws_http_multi_put(aws_http_pool *p, void *m)
{
	if (!m)
		return;
	pthread_mutex_lock(&p->lock);
	if (p->nmulti < AWS_HTTP_MULTI_POOL_MAX) {
		p->multi_idle[p->nmulti++] = m;
		m = NULL;
	}
	pthread_mutex_unlock(&p->lock);
	if (m)
		curl_multi_cleanup(m);
}

int aws_http_multi_add(void *m, aws_http_xfer *x)
{
	if (curl_multi_add_handle(m, x->handle) != CURLM_OK) {
		snprintf(x->reply.error, sizeof x->reply.error, "curl_multi_add_handle failed");
		return PV_EIO;
	}
	return 0;
}

void aws_http_multi_abort(void *m, aws_http_xfer *x, aws_http_pool *pool)
{
	curl_multi_remove_handle(m, x->handle);
	aws_http_xfer_end(x, pool, CURLE_ABORTED_BY_CALLBACK);
	snprintf(x->reply.error, sizeof x->reply.error, "aborted");
}

/* A finished transfer, taken out of the multi handle, or NULL. */
static aws_http_xfer *take_done(CURLM *m)
{
	int left = 0;
	CURLMsg *msg;
	while ((msg = curl_multi_info_read(m, &left)) != NULL) {
		if (msg->msg != CURLMSG_DONE)
			continue;
		CURL *h = msg->easy_handle;
		char *priv = NULL;
		curl_easy_getinfo(h, CURLINFO_PRIVATE, &priv);
		aws_http_xfer *x = (aws_http_xfer *)priv;
		x->curl_code = (int)msg->data.result;
		curl_multi_remove_handle(m, h);
		return x;
	}
	return NULL;
}

aws_http_xfer *aws_http_multi_step(void *m, long wait_ms)
{
	int running = 0;
	aws_http_xfer *x = take_done(m);
	if (x)
		return x;
	curl_multi_perform(m, &running);
	if ((x = take_done(m)) != NULL)
		return x;
	if (running > 0 && wait_ms > 0) {
		curl_multi_poll(m, NULL, 0, (int)(wait_ms < 1000 ? wait_ms : 1000), NULL);
		curl_multi_perform(m, &running);
	}
	return take_done(m);
}

int aws_http_plain(const char *method, const char *url, const char *header1, long timeout_ms,
		   aws_http_reply *r)
{
	memset(r, 0, sizeof *r);
	if (aws_http_global_init() < 0)
		return PV_EIO;
	CURL *h = curl_easy_init();
	if (!h)
		return PV_EIO;
	char errbuf[CURL_ERROR_SIZE] = "";
	struct curl_slist *hdr = header1 ? curl_slist_append(NULL, header1) : NULL;
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
	if (strcmp(method, "PUT") == 0) {
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, "");
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, 0L);
	}
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, timeout_ms);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_PROXY, ""); /* IMDS is link-local: never via a proxy */
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
	CURLcode rc = curl_easy_perform(h);
	int ret = finish(h, rc, r, errbuf);
	curl_slist_free_all(hdr);
	curl_easy_cleanup(h);
	return ret;
}

void aws_http_reply_free(aws_http_reply *r)
{
	free(r->body);
	r->body = NULL;
	r->len = 0;
}
