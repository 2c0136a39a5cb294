/*
 * http.c - one signed EC2 call over libcurl.
 *
 * libcurl (7.75+) signs requests itself with CURLOPT_AWS_SIGV4, so the
 * provider carries no hand-written signer. We POST the form body because
 * libcurl 7.88 puts a GET query string into the canonical request
 * unsorted, which EC2 rejects; a POST to "/" has an empty query. Session
 * tokens travel as X-Amz-Security-Token, which libcurl signs too.
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
	p->n = 0;
}

void aws_http_pool_destroy(aws_http_pool *p)
{
	for (int i = 0; i < p->n; i++)
		curl_easy_cleanup(p->idle[i]);
	p->n = 0;
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

int aws_http_post(aws_http_pool *pool, const aws_http_opts *o, const aws_creds *c, const char *form,
		  aws_http_reply *r)
{
	memset(r, 0, sizeof *r);
	if (aws_http_global_init() < 0)
		return PV_EIO;
	CURL *h = pool_get(pool);
	if (!h) {
		snprintf(r->error, sizeof r->error, "curl_easy_init failed");
		return PV_EIO;
	}
	char sigv4[96], errbuf[CURL_ERROR_SIZE] = "";
	snprintf(sigv4, sizeof sigv4, "aws:amz:%s:ec2", o->region);
	struct curl_slist *hdr = curl_slist_append(NULL, "Content-Type: application/x-www-form-urlencoded; charset=utf-8");
	hdr = curl_slist_append(hdr, "Expect:");
	if (c->session_token[0]) {
		/* Built on the stack and wiped: the token is a secret. */
		char tok[sizeof c->session_token + 32];
		snprintf(tok, sizeof tok, "X-Amz-Security-Token: %s", c->session_token);
		hdr = curl_slist_append(hdr, tok);
		memset(tok, 0, sizeof tok);
	}
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
	curl_easy_setopt(h, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(h, CURLOPT_USERAGENT, "provisio/0.1 (aws provider)");
	CURLcode rc = curl_easy_perform(h);
	int ret = finish(h, rc, r, errbuf);
	curl_slist_free_all(hdr);
	/* A failed transfer may leave a broken connection: do not keep it. */
	if (rc == CURLE_OK)
		pool_put(pool, h);
	else
		curl_easy_cleanup(h);
	return ret;
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
