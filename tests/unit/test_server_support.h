/*
 * test_server_support.h - what the server tests share: a temporary
 * configuration (two sim providers behind a fallback, one template, two
 * tokens), an in-process server on 127.0.0.1:0 run in a thread, and a
 * libcurl client that returns status, headers and the parsed JSON body.
 * Header-only so each test_server*.c stays one self-contained program; its
 * files and directory are made with the broker fixture's calls.
 */
#ifndef PV_TEST_SERVER_SUPPORT_H
#define PV_TEST_SERVER_SUPPORT_H

#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "provisio/provisio.h"
#include "provisio/server.h"
#include "broker_fixture.h"
#include "scratch_dir.h"

#define READ_TOKEN "reader-token-123"
#define ADMIN_TOKEN "admin-token-456"

typedef struct ts_env {
	char dir[256];
	char config[300], templates[300], store[300];
	pv_server *srv;
	pthread_t th;
	bool running;
	char url[300];
	FILE *log;
} ts_env;

typedef struct ts_resp {
	long status;
	json_t *body;    /* parsed JSON or NULL */
	char *raw;       /* the body as text */
	size_t raw_len;
	char headers[4096];
} ts_resp;

static inline size_t ts_write(char *p, size_t s, size_t n, void *u)
{
	ts_resp *r = u;
	char *grown = realloc(r->raw, r->raw_len + s * n + 1);
	if (!grown)
		return 0;
	r->raw = grown;
	memcpy(r->raw + r->raw_len, p, s * n);
	r->raw_len += s * n;
	r->raw[r->raw_len] = '\0';
	return s * n;
}

static inline size_t ts_header(char *p, size_t s, size_t n, void *u)
{
	ts_resp *r = u;
	size_t have = strlen(r->headers);
	if (have + s * n + 1 < sizeof r->headers) {
		memcpy(r->headers + have, p, s * n);
		r->headers[have + s * n] = '\0';
	}
	return s * n;
}

static inline void ts_resp_clear(ts_resp *r)
{
	json_decref(r->body);
	free(r->raw);
	memset(r, 0, sizeof *r);
}

/* One HTTP call. `extra` is one more header line or NULL. */
static inline ts_resp ts_call(const ts_env *e, const char *method, const char *path, const char *token,
		       const char *body, const char *extra)
{
	ts_resp r = {0};
	CURL *c = curl_easy_init();
	char url[1024], auth[256];
	snprintf(url, sizeof url, "%s%s", e->url, path);
	struct curl_slist *h = NULL;
	if (token) {
		snprintf(auth, sizeof auth, "Authorization: Bearer %s", token);
		h = curl_slist_append(h, auth);
	}
	if (body)
		h = curl_slist_append(h, "Content-Type: application/json");
	if (extra)
		h = curl_slist_append(h, extra);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, ts_write);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &r);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, ts_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, &r);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L);
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
	if (body) {
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
	}
	if (curl_easy_perform(c) == CURLE_OK)
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.status);
	if (r.raw)
		r.body = json_loads(r.raw, 0, NULL);
	curl_slist_free_all(h);
	curl_easy_cleanup(c);
	return r;
}

/* Writes the configuration; `server_extra` and `sim_extra` are spliced
 * into the "server" block and simA's config (start with a comma). Exec is
 * on (the tests drive providers through it); token hashes use the fewest
 * PBKDF2 iterations allowed, so runs under valgrind stay quick. */
static inline void ts_config(ts_env *e, const char *server_extra, const char *sim_extra, const char *broker_extra)
{
	char rh[PV_SERVER_TOKEN_HASH_MAX], ah[PV_SERVER_TOKEN_HASH_MAX], text[8192];
	pv_server_hash_token(READ_TOKEN, 1000, rh, sizeof rh);
	pv_server_hash_token(ADMIN_TOKEN, 1000, ah, sizeof ah);
	snprintf(text, sizeof text,
		 "{\"providers\": [{\"name\": \"simA\", \"type\": \"sim\", \"config\": {\"seed\": 1%s}},\n"
		 "  {\"name\": \"simB\", \"type\": \"sim\", \"config\": {\"seed\": 2}}],\n"
		 " \"strategies\": [{\"name\": \"main\", \"kind\": \"fallback\", \"primary\": \"simA\",\n"
		 "   \"fallbacks\": [\"simB\"], \"config\": {\"mode\": \"circuit_breaker\", \"seed\": 3}}],\n"
		 " \"default_strategy\": \"main\",\n"
		 " \"store\": {\"path\": \"%s\"},\n"
		 " \"broker\": {\"templates_file\": \"%s\", \"status_max_age_seconds\": -1%s},\n"
		 " \"server\": {\"listen\": \"127.0.0.1:0\", \"threads\": 2, \"access_log\": false,\n"
		 "   \"reconcile_interval_seconds\": 3600, \"allow_exec\": true,\n"
		 "   \"logging\": {\"level\": \"error\"},\n"
		 "   \"auth\": {\"tokens\": [{\"name\": \"reader\", \"hash\": \"%s\", \"role\": \"read\"},\n"
		 "                          {\"name\": \"admin\", \"hash\": \"%s\", \"role\": \"admin\"}]}%s}}\n",
		 sim_extra ? sim_extra : "", e->store, e->templates, broker_extra ? broker_extra : "", rh, ah,
		 server_extra ? server_extra : "");
	bf_write_file(e->config, text);
}

/* Writes a configuration of the strategy graph `graph` (its JSON members,
 * e.g. "\"providers\": [...]") with this env's store and templates, served
 * on loopback by one loop, auth off, quiet. */
static inline void ts_config_open(ts_env *e, const char *graph)
{
	char text[4096];
	snprintf(text, sizeof text,
		 "{%s, \"store\": {\"path\": \"%s\"},"
		 " \"broker\": {\"templates_file\": \"%s\"}, \"server\": {\"listen\": \"127.0.0.1:0\","
		 " \"threads\": 1, \"access_log\": false, \"logging\": {\"level\": \"error\"}, \"allow_exec\": true,"
		 " \"auth\": {\"enabled\": false}}}", graph, e->store, e->templates);
	bf_write_file(e->config, text);
}

static inline void ts_env_init(ts_env *e)
{
	memset(e, 0, sizeof *e);
	if (pv_test_scratch_make(e->dir, sizeof e->dir, "pv_srv_") < 0)
		abort();
	snprintf(e->config, sizeof e->config, "%s/provisio.json", e->dir);
	snprintf(e->templates, sizeof e->templates, "%s/templates.json", e->dir);
	snprintf(e->store, sizeof e->store, "%s/var/provisio.db", e->dir);
	bf_write_file(e->templates, "{\"templates\": [{\"templateId\": \"t1\", \"maxNumber\": 50,"
				    " \"attributes\": {\"ncpus\": [\"Numeric\", \"2\"]}},"
				    " {\"templateId\": \"small\", \"maxNumber\": 2}]}");
}

static inline void *ts_run(void *arg)
{
	ts_env *e = arg;
	pv_server_run(e->srv, false);
	return NULL;
}

/* Opens and starts the server; 0 or the PV_E* of pv_server_new. */
static inline int ts_start(ts_env *e)
{
	pv_server_options o = {0};
	o.open.config.path = e->config;
	char logpath[320];
	snprintf(logpath, sizeof logpath, "%s/server.log", e->dir);
	e->log = fopen(logpath, "a");
	o.log = e->log;
	pv_diags d;
	pv_diags_init(&d);
	int rc = pv_server_new(&e->srv, &o, &d);
	pv_diags_clear(&d);
	if (rc < 0) {
		fclose(e->log);
		e->log = NULL;
		return rc;
	}
	snprintf(e->url, sizeof e->url, "%s", pv_server_url(e->srv));
	pthread_create(&e->th, NULL, ts_run, e);
	e->running = true;
	return 0;
}

static inline void ts_stop(ts_env *e)
{
	if (e->running) {
		pv_server_stop(e->srv);
		pthread_join(e->th, NULL);
		e->running = false;
	}
	pv_server_free(e->srv);
	e->srv = NULL;
	if (e->log)
		fclose(e->log);
	e->log = NULL;
}

static inline void ts_env_clear(ts_env *e)
{
	ts_stop(e);
	if (pv_test_scratch_remove(e->dir) < 0)
		fprintf(stderr, "cannot remove %s\n", e->dir);
}

/* cmocka setup / teardown of a test that runs its own server on the default
 * configuration (*state: its ts_env). */
static inline int ts_setup_default(void **state)
{
	ts_env *e = calloc(1, sizeof *e);
	if (!e)
		return -1;
	ts_env_init(e);
	ts_config(e, NULL, NULL, NULL);
	if (ts_start(e) < 0) {
		fprintf(stderr, "server: %s\n", pv_error_last());
		ts_env_clear(e);
		free(e);
		return -1;
	}
	*state = e;
	return 0;
}

static inline int ts_teardown(void **state)
{
	ts_env_clear(*state);
	free(*state);
	return 0;
}

#endif
