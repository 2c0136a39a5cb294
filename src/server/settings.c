/*
 * settings.c - the "server" block of the configuration: listener, limits,
 * TLS, tokens, reconciler, alert rules and log levels (docs/serve.md).
 *
 * Every problem is reported with its JSON path, all at once, so a reload
 * that fails says everything that is wrong with the new file; nothing is
 * half-applied because the caller swaps a whole new world or nothing.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "server/server_internal.h"
#include "util/names.h"
#include "config/keys.h"

static const char *const role_names[] = {"none", "read", "admin"};

const char *srv_role_name(srv_role r) { return (unsigned)r <= SRV_ROLE_ADMIN ? role_names[r] : "unknown"; }

int srv_role_parse(const char *name, srv_role *out)
{
	for (int i = SRV_ROLE_READ; i <= SRV_ROLE_ADMIN; i++)
		if (name && strcmp(name, role_names[i]) == 0) {
			*out = (srv_role)i;
			return 0;
		}
	return pv_error_set(PV_EINVAL, "role '%s' is not one of read, admin", name ? name : "(null)");
}

static const char *const kind_names[] = {"unhealthy", "success_rate_below", "p95_above_ms",
					 "breaker_open_for", "orphans"};

const char *srv_alert_kind_name(srv_alert_kind k)
{
	return (unsigned)k < SRV_ALERT_KIND_COUNT ? kind_names[k] : "unknown";
}

int srv_alert_kind_parse(const char *name, srv_alert_kind *out)
{
	int i = pv_names_find(kind_names, SRV_ALERT_KIND_COUNT, name, "alert kind");
	if (i < 0)
		return i;
	*out = (srv_alert_kind)i;
	return 0;
}

bool srv_host_is_loopback(const char *host)
{
	struct in_addr a4;
	struct in6_addr a6;
	if (strcmp(host, "localhost") == 0)
		return true;
	if (inet_pton(AF_INET, host, &a4) == 1)
		return (ntohl(a4.s_addr) >> 24) == 127;
	if (inet_pton(AF_INET6, host, &a6) == 1)
		return IN6_IS_ADDR_LOOPBACK(&a6);
	return false;
}

/* "HOST:PORT" or "[V6]:PORT" into host and port. */
static int split_listen(const char *text, char *host, size_t hsize, int *port)
{
	const char *colon = strrchr(text, ':');
	if (!colon || colon == text)
		return -1;
	const char *h = text;
	size_t hl = (size_t)(colon - text);
	if (*h == '[' && hl >= 2 && h[hl - 1] == ']') {
		h++;
		hl -= 2;
	}
	if (hl == 0 || hl >= hsize)
		return -1;
	char *end;
	long p = strtol(colon + 1, &end, 10);
	if (*end || end == colon + 1 || p < 0 || p > 65535)
		return -1;
	memcpy(host, h, hl);
	host[hl] = '\0';
	*port = (int)p;
	return 0;
}

int srv_parse_listen(const char *text, char *host, size_t hsize, int *port);
int srv_parse_listen(const char *text, char *host, size_t hsize, int *port)
{
	if (split_listen(text, host, hsize, port) < 0)
		return pv_error_set(PV_EINVAL, "listen '%s': expected HOST:PORT with PORT 0..65535", text);
	return 0;
}

typedef struct reader {
	pv_diags *d;
	const char *base; /* "server" */
} reader;

static void unknown_keys(reader *rd, const json_t *obj, const char *path, const char *const *keys)
{
	const char *k;
	json_t *v;
	json_object_foreach((json_t *)obj, k, v) {
		bool ok = false;
		for (const char *const *p = keys; *p; p++)
			ok |= strcmp(*p, k) == 0;
		if (!ok) {
			char list[512] = "";
			for (const char *const *p = keys; *p; p++)
				snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s",
					 p == keys ? "" : ", ", *p);
			pv_diags_add(rd->d, PV_DIAG_ERROR, path, "unknown key '%s' (valid: %s)", k, list);
		}
	}
}

static double get_num(reader *rd, const json_t *o, const char *path, const char *key, double dflt,
		      double lo, double hi)
{
	json_t *v = json_object_get(o, key);
	if (!v)
		return dflt;
	double x = json_is_number(v) ? json_number_value(v) : NAN;
	if (!(x >= lo && x <= hi)) {
		char full[128];
		snprintf(full, sizeof full, "%s.%s", path, key);
		pv_diags_add(rd->d, PV_DIAG_ERROR, full, "must be a number from %g to %g", lo, hi);
		return dflt;
	}
	return x;
}

static bool get_bool(reader *rd, const json_t *o, const char *path, const char *key, bool dflt)
{
	json_t *v = json_object_get(o, key);
	if (!v)
		return dflt;
	if (!json_is_boolean(v)) {
		char full[128];
		snprintf(full, sizeof full, "%s.%s", path, key);
		pv_diags_add(rd->d, PV_DIAG_ERROR, full, "must be true or false");
		return dflt;
	}
	return json_is_true(v);
}

static void get_str(reader *rd, const json_t *o, const char *path, const char *key, char *buf,
		    size_t size)
{
	json_t *v = json_object_get(o, key);
	if (!v)
		return;
	if (!json_is_string(v) || json_string_length(v) >= size) {
		char full[128];
		snprintf(full, sizeof full, "%s.%s", path, key);
		pv_diags_add(rd->d, PV_DIAG_ERROR, full, "must be a string shorter than %zu bytes", size);
		return;
	}
	snprintf(buf, size, "%s", json_string_value(v));
}

static void read_tokens(reader *rd, const json_t *auth, srv_settings *s)
{
	json_t *list = json_object_get(auth, "tokens");
	if (!list)
		return;
	if (!json_is_array(list)) {
		pv_diags_add(rd->d, PV_DIAG_ERROR, "server.auth.tokens", "must be an array of "
			     "{\"name\", \"hash\", \"role\"}");
		return;
	}
	s->tokens = calloc(json_array_size(list) + 1, sizeof *s->tokens);
	size_t i;
	json_t *t;
	json_array_foreach(list, i, t) {
		char path[64];
		snprintf(path, sizeof path, "server.auth.tokens[%zu]", i);
		if (!json_is_object(t)) {
			pv_diags_add(rd->d, PV_DIAG_ERROR, path, "must be an object");
			continue;
		}
		unknown_keys(rd, t, path, pv_config_keys_server_token);
		srv_token *tk = &s->tokens[s->n_tokens];
		get_str(rd, t, path, "name", tk->name, sizeof tk->name);
		if (json_object_get(t, "sha256")) {
			pv_diags_add(rd->d, PV_DIAG_ERROR, path, "sha256: unsalted SHA-256 token hashes are no "
				     "longer accepted; hash the token again with 'provisio serve --hash-token "
				     "TOKEN' and put the result in \"hash\"");
			continue;
		}
		if (srv_token_hash_parse(json_string_value(json_object_get(t, "hash")), tk) < 0) {
			pv_diags_add(rd->d, PV_DIAG_ERROR, path, "hash: %s", pv_error_last());
			continue;
		}
		if (srv_role_parse(json_string_value(json_object_get(t, "role")), &tk->role) < 0) {
			pv_diags_add(rd->d, PV_DIAG_ERROR, path, "role: must be \"read\" or \"admin\"");
			continue;
		}
		s->n_tokens++;
	}
}

static void read_rules(reader *rd, const json_t *alerts, srv_settings *s)
{
	json_t *list = json_object_get(alerts, "rules");
	if (!list)
		return;
	if (!json_is_array(list)) {
		pv_diags_add(rd->d, PV_DIAG_ERROR, "server.alerts.rules", "must be an array");
		return;
	}
	s->rules = calloc(json_array_size(list) + 1, sizeof *s->rules);
	size_t i;
	json_t *o;
	json_array_foreach(list, i, o) {
		char path[64];
		snprintf(path, sizeof path, "server.alerts.rules[%zu]", i);
		if (!json_is_object(o)) {
			pv_diags_add(rd->d, PV_DIAG_ERROR, path, "must be an object");
			continue;
		}
		unknown_keys(rd, o, path, pv_config_keys_server_rule);
		srv_alert_rule *ru = &s->rules[s->n_rules];
		if (srv_alert_kind_parse(json_string_value(json_object_get(o, "kind")), &ru->kind) < 0) {
			pv_diags_add(rd->d, PV_DIAG_ERROR, path, "kind: %s", pv_error_last());
			continue;
		}
		get_str(rd, o, path, "name", ru->name, sizeof ru->name);
		if (!ru->name[0])
			snprintf(ru->name, sizeof ru->name, "%s", srv_alert_kind_name(ru->kind));
		get_str(rd, o, path, "strategy", ru->strategy, sizeof ru->strategy);
		static const double dflt[] = {0, 95, 2000, 300, 0};
		ru->threshold = get_num(rd, o, path, "threshold", dflt[ru->kind], 0, 1e9);
		if (ru->kind == SRV_ALERT_SUCCESS_RATE_BELOW && ru->threshold > 100)
			pv_diags_add(rd->d, PV_DIAG_ERROR, path, "threshold: a success rate is 0..100 percent");
		ru->min_samples = (unsigned)get_num(rd, o, path, "min_samples", 10, 0, 1e9);
		s->n_rules++;
	}
}

static void read_alerts(reader *rd, const json_t *a, srv_settings *s)
{
	if (!a)
		return;
	if (!json_is_object(a)) {
		pv_diags_add(rd->d, PV_DIAG_ERROR, "server.alerts", "must be an object");
		return;
	}
	unknown_keys(rd, a, "server.alerts", pv_config_keys_server_alerts);
	s->alert_interval_s = get_num(rd, a, "server.alerts", "interval_seconds", 15, 0.01, 86400);
	get_str(rd, a, "server.alerts", "command", s->alert_command, sizeof s->alert_command);
	get_str(rd, a, "server.alerts", "webhook", s->alert_webhook, sizeof s->alert_webhook);
	if (s->alert_webhook[0] && strncmp(s->alert_webhook, "http://", 7) != 0)
		pv_diags_add(rd->d, PV_DIAG_ERROR, "server.alerts.webhook", "must be an http:// URL");
	read_rules(rd, a, s);
}

static void read_logging(reader *rd, const json_t *l, srv_settings *s)
{
	if (!l)
		return;
	if (!json_is_object(l)) {
		pv_diags_add(rd->d, PV_DIAG_ERROR, "server.logging", "must be an object");
		return;
	}
	unknown_keys(rd, l, "server.logging", pv_config_keys_server_logging);
	static const char *const levels[] = {"debug", "info", "warn", "error", "off"};
	const char *lv = json_string_value(json_object_get(l, "level"));
	if (json_object_get(l, "level")) {
		int found = -1;
		for (int i = 0; i < 5; i++)
			if (lv && strcmp(lv, levels[i]) == 0)
				found = i;
		if (found < 0)
			pv_diags_add(rd->d, PV_DIAG_ERROR, "server.logging.level",
				     "must be one of debug, info, warn, error, off");
		else
			s->log_level = (pv_log_level)found;
	}
	json_t *c = json_object_get(l, "components");
	if (!c)
		return;
	const char *k;
	json_t *v;
	bool ok = json_is_object(c);
	if (ok)
		json_object_foreach(c, k, v) {
			bool good = false;
			for (int i = 0; i < 5; i++)
				good |= json_is_string(v) && strcmp(json_string_value(v), levels[i]) == 0;
			if (!good) {
				pv_diags_add(rd->d, PV_DIAG_ERROR, "server.logging.components",
					     "%s: must be one of debug, info, warn, error, off", k);
				ok = false;
			}
		}
	else
		pv_diags_add(rd->d, PV_DIAG_ERROR, "server.logging.components",
			     "must be an object {\"component\": \"level\"}");
	if (ok)
		s->log_components = json_deep_copy(c);
}

static void defaults(srv_settings *s)
{
	memset(s, 0, sizeof *s);
	snprintf(s->host, sizeof s->host, "127.0.0.1");
	s->port = 8080;
	s->max_body_bytes = 1u << 20;
	s->max_header_bytes = 16384;
	s->max_connections = 10000;
	s->max_connections_per_client = 256;
	s->header_timeout_s = 10;
	s->body_timeout_s = 30;
	s->idle_timeout_s = 60;
	s->shutdown_timeout_s = 30;
	s->access_log = true;
	s->auth_enabled = true;
	s->auth_max_failures = 10;
	s->auth_failure_window_s = 60;
	s->reconcile_interval_s = 10;
	s->queue_poll_s = 0.25;
	s->alert_interval_s = 15;
	s->log_level = PV_LOG_INFO;
}

int srv_settings_read(const json_t *b, srv_settings *s, pv_diags *diags)
{
	defaults(s);
	size_t before = diags->errors;
	reader rd = {.d = diags, .base = "server"};
	if (!b)
		return 0;
	if (!json_is_object(b)) {
		pv_diags_add(diags, PV_DIAG_ERROR, "server", "must be an object");
		return PV_EINVAL;
	}
	unknown_keys(&rd, b, "server", pv_config_keys_server);
	json_t *l = json_object_get(b, "listen");
	if (l && (!json_is_string(l) || split_listen(json_string_value(l), s->host, sizeof s->host, &s->port) < 0))
		pv_diags_add(diags, PV_DIAG_ERROR, "server.listen", "must be \"HOST:PORT\" with PORT 0..65535");
	s->reuse_port = get_bool(&rd, b, "server", "reuse_port", false);
	s->threads = (unsigned)get_num(&rd, b, "server", "threads", 0, 0, 256);
	s->max_body_bytes = (size_t)get_num(&rd, b, "server", "max_body_bytes", 1u << 20, 64, 1u << 30);
	s->max_header_bytes = (size_t)get_num(&rd, b, "server", "max_header_bytes", 16384, 1024, 1u << 20);
	s->max_connections = (unsigned)get_num(&rd, b, "server", "max_connections", 10000, 1, 1000000);
	s->max_connections_per_client = (unsigned)get_num(&rd, b, "server", "max_connections_per_client", 256,
							  1, 1000000);
	s->header_timeout_s = get_num(&rd, b, "server", "header_timeout_seconds", 10, 0.01, 3600);
	s->body_timeout_s = get_num(&rd, b, "server", "body_timeout_seconds", 30, 0.01, 3600);
	s->idle_timeout_s = get_num(&rd, b, "server", "idle_timeout_seconds", 60, 0.01, 86400);
	s->allow_exec = get_bool(&rd, b, "server", "allow_exec", false);
	s->shutdown_timeout_s = get_num(&rd, b, "server", "shutdown_timeout_seconds", 30, 0, 3600);
	s->access_log = get_bool(&rd, b, "server", "access_log", true);
	s->reconcile_interval_s = get_num(&rd, b, "server", "reconcile_interval_seconds", 10, 0.01, 86400);
	s->queue_poll_s = get_num(&rd, b, "server", "queue_poll_seconds", 0.25, 0.01, 60);
	s->terminate_orphans = get_bool(&rd, b, "server", "terminate_orphans", false);
	json_t *tls = json_object_get(b, "tls");
	if (tls) {
		unknown_keys(&rd, tls, "server.tls", pv_config_keys_server_tls);
		get_str(&rd, tls, "server.tls", "cert_file", s->tls_cert, sizeof s->tls_cert);
		get_str(&rd, tls, "server.tls", "key_file", s->tls_key, sizeof s->tls_key);
		if (!s->tls_cert[0] != !s->tls_key[0])
			pv_diags_add(diags, PV_DIAG_ERROR, "server.tls", "cert_file and key_file go together");
	}
	json_t *auth = json_object_get(b, "auth");
	if (auth) {
		unknown_keys(&rd, auth, "server.auth", pv_config_keys_server_auth);
		s->auth_enabled = get_bool(&rd, auth, "server.auth", "enabled", true);
		s->auth_max_failures = (unsigned)get_num(&rd, auth, "server.auth", "max_failures", 10, 1, 1e6);
		s->auth_failure_window_s = get_num(&rd, auth, "server.auth", "failure_window_seconds", 60, 1,
						   86400);
		read_tokens(&rd, auth, s);
	}
	read_alerts(&rd, json_object_get(b, "alerts"), s);
	read_logging(&rd, json_object_get(b, "logging"), s);
	return diags->errors > before ? PV_EINVAL : 0;
}

void srv_settings_clear(srv_settings *s)
{
	free(s->tokens);
	free(s->rules);
	json_decref(s->log_components);
	memset(s, 0, sizeof *s);
}
