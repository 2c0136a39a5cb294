/*
 * emu_harness.h - starts and stops the EC2 emulator for tests and the
 * benchmark: fork/exec on an ephemeral loopback port (read back from a
 * port file), admin calls over libcurl. Header-only so a test and the
 * benchmark can each include it without a shared library.
 */
#ifndef PV_TEST_EMU_HARNESS_H
#define PV_TEST_EMU_HARNESS_H

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <curl/curl.h>
#include <jansson.h>
#include "../support/child_process.h"
#include "provisio/aws.h"
#include "provisio/error.h"
#include "../support/wait.h"

typedef struct emu_proc {
	pid_t pid;
	int port;
	char url[64];
	char dir[64];
} emu_proc;

/* The port the emulator wrote to `path`, once it has. */
static inline bool emu_read_port(const char *path, int *port)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return false;
	bool ok = fscanf(f, "%d", port) == 1;
	fclose(f);
	return ok;
}

/* Starts the emulator with extra arguments (NULL-terminated list). 0 or -1. */
static inline int emu_start(emu_proc *e, const char *binary, const char *const *args)
{
	memset(e, 0, sizeof *e);
	snprintf(e->dir, sizeof e->dir, "/tmp/pv-emu-XXXXXX");
	if (!mkdtemp(e->dir))
		return -1;
	char port_file[128];
	snprintf(port_file, sizeof port_file, "%s/port", e->dir);
	const char *argv[64] = {binary, "--port", "0", "--port-file", port_file};
	int n = 5;
	for (int i = 0; args && args[i] && n < 62; i++)
		argv[n++] = args[i];
	argv[n] = NULL;
	pid_t parent = getpid();
	e->pid = fork();
	if (e->pid == 0) {
		pv_test_die_with_parent(parent);
		if (!freopen("/dev/null", "w", stdout))
			_exit(126);
		execv(binary, (char *const *)argv);
		_exit(127);
	}
	bool listening = false; /* the emulator writes its port once it listens */
	PV_TEST_WAIT_UNTIL((listening = emu_read_port(port_file, &e->port)));
	if (!listening)
		return -1;
	snprintf(e->url, sizeof e->url, "http://127.0.0.1:%d/", e->port);
	return 0;
}

static inline void emu_stop(emu_proc *e)
{
	if (e->pid > 0) {
		kill(e->pid, SIGTERM);
		waitpid(e->pid, NULL, 0);
	}
	char path[128];
	snprintf(path, sizeof path, "%s/port", e->dir);
	unlink(path);
	rmdir(e->dir);
	e->pid = 0;
}

static inline size_t emu_collect(char *d, size_t s, size_t n, void *u)
{
	char **buf = u;
	size_t old = *buf ? strlen(*buf) : 0;
	char *g = realloc(*buf, old + s * n + 1);
	if (!g)
		return 0;
	memcpy(g + old, d, s * n);
	g[old + s * n] = '\0';
	*buf = g;
	return s * n;
}

/* Calls an admin path (GET when body is NULL); the JSON answer, owned. */
static inline json_t *emu_admin(const emu_proc *e, const char *path, const char *body)
{
	char url[256], *out = NULL;
	snprintf(url, sizeof url, "http://127.0.0.1:%d%s", e->port, path);
	CURL *h = curl_easy_init();
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_PROXY, "");
	if (body)
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, emu_collect);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &out);
	CURLcode rc = curl_easy_perform(h);
	curl_easy_cleanup(h);
	json_t *j = rc == CURLE_OK && out ? json_loads(out, 0, NULL) : NULL;
	free(out);
	return j;
}

/* Adds a launch template with an id of the caller's choosing through the
 * admin endpoint (it does not survive /_emu/reset; --launch-template
 * ID:NAME:IMAGE:TYPE at start does). `image` / `type` may be NULL. 0 or -1. */
static inline int emu_launch_template(const emu_proc *e, const char *id, const char *name, const char *image,
				      const char *type)
{
	json_t *req = json_pack("{s:s, s:s, s:s?, s:s?}", "id", id, "name", name, "image_id", image,
				"instance_type", type);
	char *body = json_dumps(req, JSON_COMPACT);
	json_t *ans = body ? emu_admin(e, "/_emu/launch_template", body) : NULL;
	int rc = json_is_true(json_object_get(ans, "ok")) ? 0 : -1;
	json_decref(ans);
	free(body);
	json_decref(req);
	return rc;
}

/* POSTs a JSON object to /_emu/config (faults, faults_next, buckets, ...):
 * 0 when the emulator took it, -1 (its error on stderr) when not. */
static inline int emu_config(const emu_proc *e, const char *json)
{
	json_t *ans = emu_admin(e, "/_emu/config", json);
	int rc = json_is_true(json_object_get(ans, "ok")) ? 0 : -1;
	if (rc < 0)
		fprintf(stderr, "/_emu/config %s: %s\n", json,
			json_string_value(json_object_get(ans, "error")) ? json_string_value(json_object_get(ans, "error"))
									    : "no answer");
	json_decref(ans);
	return rc;
}

/* The emulator's default credentials. */
#define EMU_ACCESS_KEY "AKIDEXAMPLE"
#define EMU_SECRET "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"

/* An aws provider configuration aimed at the emulator (its credentials, no
 * IMDS, seed 7, a 5 ms retry base) with the members of the JSON object
 * text `extra` merged in (NULL: none). New reference; NULL when `extra` is
 * not a JSON object. */
static inline json_t *emu_provider_config(const emu_proc *e, const char *extra)
{
	json_t *cfg = json_pack("{s:s, s:s, s:s, s:s, s:b, s:i, s:i}", "region", "us-east-1", "endpoint_url",
				e->url, "access_key_id", EMU_ACCESS_KEY, "secret_access_key", EMU_SECRET, "imds", 0,
				"seed", 7, "retry_base_ms", 5);
	json_t *x = extra ? json_loads(extra, 0, NULL) : NULL;
	if (extra && !json_is_object(x)) {
		json_decref(x);
		json_decref(cfg);
		return NULL;
	}
	json_object_update(cfg, x);
	json_decref(x);
	return cfg;
}

/* An initialized aws provider named `name` on emu_provider_config(e, extra);
 * NULL with pv_error_last() saying why. The caller owns the reference. */
static inline pv_strategy *emu_provider(const emu_proc *e, const char *name, const char *extra)
{
	json_t *cfg = emu_provider_config(e, extra);
	pv_strategy *s = NULL;
	if (!cfg)
		pv_error_set(PV_EINVAL, "extra provider config is not a JSON object: %s", extra);
	else if (pv_aws_new(&s, name, cfg, NULL) == 0 && pv_strategy_initialize(s) != 0) {
		pv_strategy_unref(s);
		s = NULL;
	}
	json_decref(cfg);
	return s;
}

/* stats.path.to.integer, 0 when absent. */
static inline long long emu_stat(const emu_proc *e, const char *a, const char *b)
{
	json_t *s = emu_admin(e, "/_emu/stats", NULL);
	json_t *v = json_object_get(s, a);
	if (b)
		v = json_object_get(v, b);
	long long n = json_integer_value(v);
	json_decref(s);
	return n;
}

#endif
