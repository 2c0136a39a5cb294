/*
 * alerts.c - alert rules evaluated by the daemon (server.alerts.rules).
 *
 * Each rule fires once when its condition starts holding and resolves once
 * when it stops; each transition runs the configured command (environment
 * PROVISIO_ALERT_NAME, _KIND, _STATE, _REASON) and/or POSTs to the webhook
 * {"alert", "kind", "state", "reason", "at"}. The same conditions ship as
 * Prometheus rules in docs/alerts.yml for those who alert from Prometheus.
 */
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <event2/buffer.h>
#include <event2/http.h>
#include "server/server_internal.h"

/* Runs the command detached (double fork: no zombie, no wait on it). */
static void run_command(const char *cmd, const srv_alert_rule *ru, const srv_alert_state *st)
{
	pid_t pid = fork();
	if (pid < 0)
		return;
	if (pid == 0) {
		if (fork() == 0) {
			setenv("PROVISIO_ALERT_NAME", ru->name, 1);
			setenv("PROVISIO_ALERT_KIND", srv_alert_kind_name(ru->kind), 1);
			setenv("PROVISIO_ALERT_STATE", st->firing ? "firing" : "resolved", 1);
			setenv("PROVISIO_ALERT_REASON", st->reason, 1);
			execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
			_exit(127);
		}
		_exit(0);
	}
	waitpid(pid, NULL, 0);
}

static void webhook_done(struct evhttp_request *req, void *arg)
{
	(void)req;
	(void)arg;
}

static void post_webhook(pv_server *srv, const char *url, const srv_alert_rule *ru, const srv_alert_state *st)
{
	struct evhttp_uri *u = evhttp_uri_parse(url);
	if (!u || !evhttp_uri_get_host(u)) {
		evhttp_uri_free(u);
		return;
	}
	int port = evhttp_uri_get_port(u) > 0 ? evhttp_uri_get_port(u) : 80;
	struct evhttp_connection *c = evhttp_connection_base_new(srv->base, NULL, evhttp_uri_get_host(u),
								  (unsigned short)port);
	struct evhttp_request *req = c ? evhttp_request_new(webhook_done, NULL) : NULL;
	if (req) {
		evhttp_connection_set_timeout(c, 10);
		json_t *j = json_pack("{s:s, s:s, s:s, s:s, s:I}", "alert", ru->name, "kind",
				      srv_alert_kind_name(ru->kind), "state", st->firing ? "firing" : "resolved",
				      "reason", st->reason, "at", (json_int_t)(st->since_ms / 1000));
		char *body = json_dumps(j, JSON_COMPACT);
		json_decref(j);
		evbuffer_add(evhttp_request_get_output_buffer(req), body, strlen(body));
		free(body);
		struct evkeyvalq *h = evhttp_request_get_output_headers(req);
		evhttp_add_header(h, "Host", evhttp_uri_get_host(u));
		evhttp_add_header(h, "Content-Type", "application/json");
		const char *path = evhttp_uri_get_path(u);
		evhttp_connection_free_on_completion(c);
		evhttp_make_request(c, req, EVHTTP_REQ_POST, path && *path ? path : "/");
	}
	evhttp_uri_free(u);
}

/* Whether the rule holds for one strategy; the reason when it does. */
static bool holds(pv_server *srv, const srv_alert_rule *ru, const char *name, const json_t *info,
		  pv_context *ctx, char *why, size_t size)
{
	pv_metrics m;
	if (pv_context_metrics(ctx, name, &m) < 0)
		return false;
	uint64_t samples = 0;
	for (unsigned b = 0; b < PV_HIST_BUCKETS; b++)
		samples += m.hist[b];
	switch (ru->kind) {
	case SRV_ALERT_UNHEALTHY: {
		json_t *h = json_object_get(info, "health");
		if (!json_is_false(json_object_get(h, "healthy")))
			return false;
		const char *msg = json_string_value(json_object_get(h, "message"));
		snprintf(why, size, "strategy '%s' is unhealthy: %s", name, msg ? msg : "no message");
		return true;
	}
	case SRV_ALERT_SUCCESS_RATE_BELOW:
		if (m.total < ru->min_samples || isnan(m.success_rate) || m.success_rate >= ru->threshold)
			return false;
		snprintf(why, size, "strategy '%s' success rate %.1f%% is below %.1f%% (%llu operations)", name,
			 m.success_rate, ru->threshold, (unsigned long long)m.total);
		return true;
	case SRV_ALERT_P95_ABOVE_MS:
		if (samples < ru->min_samples || isnan(m.p95_ms) || m.p95_ms <= ru->threshold)
			return false;
		snprintf(why, size, "strategy '%s' p95 latency %.1f ms is above %.1f ms", name, m.p95_ms,
			 ru->threshold);
		return true;
	case SRV_ALERT_BREAKER_OPEN_FOR: {
		const char *child;
		json_t *v;
		json_t *cm = json_object_get(json_object_get(json_object_get(info, "stats"), "circuit_metrics"),
					     "strategies");
		int64_t now = pv_wall_ms();
		bool any = false;
		json_object_foreach(cm, child, v) {
			char key[200];
			snprintf(key, sizeof key, "%s/%s", name, child);
			const char *st = json_string_value(json_object_get(v, "state"));
			if (!st || strcmp(st, "open") != 0) {
				json_object_del(srv->breaker_open_since, key);
				continue;
			}
			json_t *since = json_object_get(srv->breaker_open_since, key);
			if (!since)
				json_object_set_new(srv->breaker_open_since, key, since = json_integer(now));
			double open_s = (double)(now - json_integer_value(since)) / 1000.0;
			if (!any && open_s >= ru->threshold) {
				snprintf(why, size, "breaker of '%s' in '%s' open for %.0f s (limit %.0f s)", child,
					 name, open_s, ru->threshold);
				any = true;
			}
		}
		return any;
	}
	default:
		return false;
	}
}

static bool evaluate(pv_server *srv, srv_world *w, const srv_alert_rule *ru, const json_t *all,
		     char *why, size_t size)
{
	if (ru->kind == SRV_ALERT_ORPHANS) {
		int n = atomic_load(&srv->last_orphans);
		if (n <= (int)ru->threshold)
			return false;
		snprintf(why, size, "%d orphan instance(s) found by the reconciler", n);
		return true;
	}
	pv_context *ctx = pv_broker_context(w->main);
	const char *name;
	json_t *info;
	bool any = false;
	json_object_foreach(json_object_get(all, "strategies"), name, info) {
		if (ru->strategy[0] && strcmp(ru->strategy, name) != 0)
			continue;
		char one[256];
		if (holds(srv, ru, name, info, ctx, one, sizeof one) && !any) {
			snprintf(why, size, "%s", one);
			any = true;
		}
	}
	return any;
}

int srv_alerts_evaluate(pv_server *srv, srv_world *w)
{
	int changed = 0;
	pthread_mutex_lock(&srv->alert_lock);
	if (srv->alerts_gen != w->gen || !srv->alerts) {
		srv_alert_state *next = calloc(w->set.n_rules + 1, sizeof *next);
		for (size_t i = 0; i < w->set.n_rules; i++) {
			snprintf(next[i].name, sizeof next[i].name, "%s", w->set.rules[i].name);
			for (size_t j = 0; j < srv->n_alerts; j++)
				if (strcmp(srv->alerts[j].name, next[i].name) == 0)
					next[i] = srv->alerts[j];
		}
		free(srv->alerts);
		srv->alerts = next;
		srv->n_alerts = w->set.n_rules;
		srv->alerts_gen = w->gen;
	}
	json_t *all = w->set.n_rules ? pv_context_to_json(pv_broker_context(w->main)) : NULL;
	for (size_t i = 0; i < w->set.n_rules; i++) {
		const srv_alert_rule *ru = &w->set.rules[i];
		srv_alert_state *st = &srv->alerts[i];
		char why[256] = "";
		bool now = evaluate(srv, w, ru, all, why, sizeof why);
		if (now == st->firing) {
			if (now)
				snprintf(st->reason, sizeof st->reason, "%s", why);
			continue;
		}
		st->firing = now;
		st->since_ms = pv_wall_ms();
		if (now)
			snprintf(st->reason, sizeof st->reason, "%s", why);
		changed++;
		srv_log(srv, now ? PV_LOG_WARN : PV_LOG_INFO, "alerts", NULL, "alert '%s' %s: %s", ru->name,
			now ? "firing" : "resolved", st->reason);
		if (w->set.alert_command[0])
			run_command(w->set.alert_command, ru, st);
		if (w->set.alert_webhook[0])
			post_webhook(srv, w->set.alert_webhook, ru, st);
	}
	json_decref(all);
	srv->alert_transitions += changed;
	pthread_mutex_unlock(&srv->alert_lock);
	return changed;
}

json_t *srv_alerts_json(pv_server *srv, srv_world *w)
{
	json_t *list = json_array();
	pthread_mutex_lock(&srv->alert_lock);
	for (size_t i = 0; i < w->set.n_rules; i++) {
		const srv_alert_rule *ru = &w->set.rules[i];
		bool known = srv->alerts && srv->alerts_gen == w->gen && i < srv->n_alerts;
		json_array_append_new(list, json_pack("{s:s, s:s, s:s, s:f, s:b, s:s, s:I}", "name", ru->name,
						      "kind", srv_alert_kind_name(ru->kind), "strategy",
						      ru->strategy, "threshold", ru->threshold, "firing",
						      known && srv->alerts[i].firing, "reason",
						      known ? srv->alerts[i].reason : "", "since",
						      (json_int_t)(known ? srv->alerts[i].since_ms / 1000 : 0)));
	}
	pthread_mutex_unlock(&srv->alert_lock);
	return json_pack("{s:o}", "alerts", list);
}
