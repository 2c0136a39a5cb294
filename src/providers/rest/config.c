/*
 * config.c - the REST provider's JSON configuration.
 *
 * The spec's Provider1Config (endpoint_url, api_key, region, timeout,
 * max_retries) plus what a real HTTP client needs (TLS, connect timeout,
 * backoff). Everything is checked once, here, so operations never meet a bad
 * value. Messages name the field and its valid range and never quote the
 * api_key: configuration errors end up in logs.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "provisio/error.h"
#include "providers/rest/rs.h"

static const char *const known_fields[] = {
	"endpoint_url", "api_key", "region", "timeout", "max_retries", "verify_tls", "ca_file",
	"connect_timeout", "backoff", "max_instances_per_request", "max_connections",
	"max_response_bytes", "seed", NULL};

static int field_error(const char *name, const char *field, const char *why)
{
	return pv_error_set(PV_EINVAL, "rest '%s': field '%s': %s", name, field, why);
}

static int check_unknown(const json_t *cfg, const char *name)
{
	const char *key;
	json_t *v;
	json_object_foreach((json_t *)cfg, key, v) {
		bool ok = false;
		for (const char *const *k = known_fields; *k && !ok; k++)
			ok = strcmp(*k, key) == 0;
		if (!ok)
			return pv_error_set(PV_EINVAL,
					    "rest '%s': unknown field '%s' (valid: endpoint_url, api_key, "
					    "region, timeout, max_retries, verify_tls, ca_file, "
					    "connect_timeout, backoff, max_instances_per_request, "
					    "max_connections, max_response_bytes, seed)",
					    name, key);
	}
	return 0;
}

static int get_string(const json_t *obj, const char *key, const char *def, char **out,
		      const char *name)
{
	json_t *v = json_object_get(obj, key);
	if (v && (!json_is_string(v) || json_string_length(v) == 0))
		return field_error(name, key, "must be a non-empty string");
	const char *s = v ? json_string_value(v) : def;
	*out = s ? strdup(s) : NULL;
	return s && !*out ? pv_error_set(PV_ENOMEM, "out of memory") : 0;
}

static int get_int(const json_t *obj, const char *key, int64_t lo, int64_t hi, int64_t *out,
		   const char *name, const char *field)
{
	json_t *v = json_object_get(obj, key);
	if (!v)
		return 0;
	if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi) {
		char why[96];
		snprintf(why, sizeof why, "must be an integer from %lld to %lld", (long long)lo,
			 (long long)hi);
		return field_error(name, field, why);
	}
	*out = json_integer_value(v);
	return 0;
}

/* Seconds as the spec writes them (30, or 0.5), kept in milliseconds. */
static int get_seconds(const json_t *obj, const char *key, double lo, double hi, int64_t *out_ms,
		       const char *name)
{
	json_t *v = json_object_get(obj, key);
	if (!v)
		return 0;
	double s = json_number_value(v);
	if (!json_is_number(v) || !isfinite(s) || s < lo || s > hi) {
		char why[96];
		snprintf(why, sizeof why, "must be a number of seconds from %g to %g", lo, hi);
		return field_error(name, key, why);
	}
	*out_ms = (int64_t)llround(s * 1000.0);
	if (*out_ms < 1)
		*out_ms = 1;
	return 0;
}

/* http(s)://host[:port][/base], no credentials, no query: the key belongs
 * in api_key where it is kept out of logs, and a path is joined to ours. */
static int parse_endpoint(rs_config *c, const json_t *cfg, const char *name)
{
	json_t *v = json_object_get(cfg, "endpoint_url");
	if (!json_is_string(v) || json_string_length(v) == 0)
		return field_error(name, "endpoint_url", "is required: an http:// or https:// URL");
	const char *url = json_string_value(v);
	const char *rest = NULL;
	if (strncasecmp(url, "http://", 7) == 0)
		rest = url + 7;
	else if (strncasecmp(url, "https://", 8) == 0)
		rest = url + 8;
	else
		return field_error(name, "endpoint_url", "must start with http:// or https://");
	size_t host_len = strcspn(rest, "/");
	if (host_len == 0)
		return field_error(name, "endpoint_url", "has no host");
	if (memchr(rest, '@', host_len))
		return field_error(name, "endpoint_url",
				   "must not carry credentials (user:password@); use api_key");
	if (strpbrk(url, "?# \t\r\n"))
		return field_error(name, "endpoint_url", "must not have a query, fragment or spaces");
	size_t n = strlen(url);
	while (n > 0 && url[n - 1] == '/')
		n--;
	c->endpoint = strndup(url, n);
	return c->endpoint ? 0 : pv_error_set(PV_ENOMEM, "out of memory");
}

/* The bearer header is built once; the key is never copied elsewhere. */
static int parse_api_key(rs_config *c, const json_t *cfg, const char *name)
{
	json_t *v = json_object_get(cfg, "api_key");
	if (!v || json_is_null(v))
		return 0;
	if (!json_is_string(v) || json_string_length(v) == 0)
		return field_error(name, "api_key", "must be a non-empty string (e.g. \"${PROVIDER1_API_KEY}\")");
	const char *key = json_string_value(v);
	if (strstr(key, "${"))
		return field_error(name, "api_key",
				   "holds an unexpanded ${VAR}: the variable is not set in the environment");
	for (const char *k = key; *k; k++)
		if ((unsigned char)*k < 0x21 || *k == 0x7f)
			return field_error(name, "api_key",
					   "must not contain spaces or control characters");
	static const char prefix[] = "Authorization: Bearer ";
	size_t n = sizeof prefix + strlen(key);
	c->auth_header = malloc(n);
	if (!c->auth_header)
		return pv_error_set(PV_ENOMEM, "out of memory");
	snprintf(c->auth_header, n, "%s%s", prefix, key);
	return 0;
}

static int parse_backoff(rs_config *c, const json_t *cfg, const char *name)
{
	json_t *b = json_object_get(cfg, "backoff");
	if (!b)
		return 0;
	if (!json_is_object(b))
		return field_error(name, "backoff", "must be an object {base_ms, max_ms, retry_after_max_ms}");
	const char *key;
	json_t *v;
	json_object_foreach(b, key, v) {
		if (strcmp(key, "base_ms") && strcmp(key, "max_ms") && strcmp(key, "retry_after_max_ms"))
			return field_error(name, "backoff",
					   "unknown key (valid: base_ms, max_ms, retry_after_max_ms)");
	}
	int rc = get_int(b, "base_ms", 1, 600000, &c->backoff_base_ms, name, "backoff.base_ms");
	if (!rc)
		rc = get_int(b, "max_ms", 1, 3600000, &c->backoff_max_ms, name, "backoff.max_ms");
	if (!rc)
		rc = get_int(b, "retry_after_max_ms", 0, 3600000, &c->retry_after_max_ms, name,
			     "backoff.retry_after_max_ms");
	if (!rc && c->backoff_max_ms < c->backoff_base_ms)
		rc = field_error(name, "backoff.max_ms", "must be at least backoff.base_ms");
	return rc;
}

static int parse_flags(rs_config *c, const json_t *cfg, const char *name)
{
	json_t *v = json_object_get(cfg, "verify_tls");
	if (v && !json_is_boolean(v))
		return field_error(name, "verify_tls", "must be true or false");
	c->verify_tls = !json_is_false(v);
	v = json_object_get(cfg, "seed");
	if (v && (!json_is_integer(v) || json_integer_value(v) < 0))
		return field_error(name, "seed", "must be an integer >= 0 (0 = from the clock)");
	c->seed = v ? (uint64_t)json_integer_value(v) : 0;
	return 0;
}

int rs_config_parse(rs_config *c, const char *name, const json_t *cfg)
{
	if (!json_is_object(cfg))
		return pv_error_set(PV_EINVAL,
				    "rest '%s': config must be a JSON object with at least 'endpoint_url'",
				    name);
	c->timeout_ms = 30000;
	c->connect_timeout_ms = 5000;
	c->max_retries = 3;
	c->backoff_base_ms = 200;
	c->backoff_max_ms = 10000;
	c->retry_after_max_ms = 60000;
	c->max_per_request = 50;
	c->max_connections = 16;
	c->max_response_bytes = 16 * 1024 * 1024;
	int rc = check_unknown(cfg, name);
	if (!rc)
		rc = parse_endpoint(c, cfg, name);
	if (!rc)
		rc = parse_api_key(c, cfg, name);
	if (!rc)
		rc = get_string(cfg, "region", "region1", &c->region, name);
	if (!rc)
		rc = get_string(cfg, "ca_file", NULL, &c->ca_file, name);
	if (!rc)
		rc = get_seconds(cfg, "timeout", 0.001, 3600, &c->timeout_ms, name);
	if (!rc)
		rc = get_seconds(cfg, "connect_timeout", 0.001, 600, &c->connect_timeout_ms, name);
	if (!rc)
		rc = get_int(cfg, "max_retries", 0, 20, &c->max_retries, name, "max_retries");
	if (!rc)
		rc = get_int(cfg, "max_instances_per_request", 1, 10000, &c->max_per_request, name,
			     "max_instances_per_request");
	if (!rc)
		rc = get_int(cfg, "max_connections", 0, 1024, &c->max_connections, name, "max_connections");
	if (!rc)
		rc = get_int(cfg, "max_response_bytes", 1024, (int64_t)1 << 30, &c->max_response_bytes,
			     name, "max_response_bytes");
	if (!rc)
		rc = parse_backoff(c, cfg, name);
	if (!rc)
		rc = parse_flags(c, cfg, name);
	return rc;
}

void rs_config_free(rs_config *c)
{
	if (c->auth_header) {
		/* The key should not outlive the strategy in freed memory. */
		explicit_bzero(c->auth_header, strlen(c->auth_header));
		free(c->auth_header);
	}
	free(c->endpoint);
	free(c->region);
	free(c->ca_file);
	memset(c, 0, sizeof *c);
}
