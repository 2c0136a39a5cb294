/*
 * fallback_config.c - the fallback strategy's configuration: defaults,
 * validation, JSON in and out.
 *
 * One table describes every field (JSON key, kind, offset, valid range), so
 * the defaults, the validation messages, the JSON parser and the printer
 * cannot disagree about a name or a range.
 */
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include "provisio/error.h"
#include "provisio/fallback.h"
#include "util/names.h"

static const char *const mode_names[PV_FALLBACK_MODE_COUNT] = {
	"immediate", "retry_then_fallback", "circuit_breaker", "health_based",
};

static const char *const jitter_names[PV_JITTER_COUNT] = {"equal", "full", "none"};

const char *pv_retry_jitter_name(pv_retry_jitter j)
{
	return (unsigned)j < PV_JITTER_COUNT ? jitter_names[j] : "unknown";
}

const char *pv_fallback_mode_name(pv_fallback_mode mode)
{
	return (unsigned)mode < PV_FALLBACK_MODE_COUNT ? mode_names[mode] : "unknown";
}

int pv_fallback_mode_parse(const char *name, pv_fallback_mode *out)
{
	int i = pv_names_find(mode_names, PV_FALLBACK_MODE_COUNT, name, "fallback mode");
	if (i < 0)
		return i;
	*out = (pv_fallback_mode)i;
	return 0;
}

void pv_fallback_config_default(pv_fallback_config *cfg)
{
	*cfg = (pv_fallback_config){
		.mode = PV_FALLBACK_CIRCUIT_BREAKER,
		.max_retries = 3,
		.retry_delay_seconds = 1.0,
		.retry_max_delay_seconds = 20.0,
		.retry_jitter = PV_JITTER_EQUAL,
		.circuit_breaker_threshold = 5,
		.circuit_breaker_timeout_seconds = 60.0,
		.circuit_breaker_max_timeout_seconds = 600.0,
		.circuit_breaker_jitter = 0.1,
		.circuit_breaker_window_size = 20,
		.circuit_breaker_min_calls = 10,
		.circuit_breaker_failure_rate_threshold = 50.0,
		.circuit_breaker_slow_call_seconds = 0.0,
		.circuit_breaker_half_open_probes = 1,
		.health_check_interval_seconds = 30.0,
		.enable_graceful_degradation = true,
		.retry_budget_ratio = 0.2,
		.retry_budget_min_retries_per_second = 1.0,
		.retry_budget_window_seconds = 10.0,
		.seed = 0,
	};
}

typedef enum { F_MODE, F_JITTER, F_UINT, F_REAL, F_BOOL, F_SEED } field_kind;

typedef struct field {
	const char *key;
	field_kind kind;
	size_t off;
	double lo, hi;
	bool lo_open; /* lo itself is not allowed */
} field;

#define FIELD(k, kind, lo, hi, open) {#k, kind, offsetof(pv_fallback_config, k), lo, hi, open}

static const field fields[] = {
	FIELD(mode, F_MODE, 0, 0, false),
	FIELD(max_retries, F_UINT, 0, 100, false),
	FIELD(retry_delay_seconds, F_REAL, 0, 3600, false),
	FIELD(retry_max_delay_seconds, F_REAL, 0, 3600, false),
	FIELD(retry_jitter, F_JITTER, 0, 0, false),
	FIELD(circuit_breaker_threshold, F_UINT, 1, 1000000, false),
	FIELD(circuit_breaker_timeout_seconds, F_REAL, 0, 86400, true),
	FIELD(circuit_breaker_max_timeout_seconds, F_REAL, 0, 604800, true),
	FIELD(circuit_breaker_jitter, F_REAL, 0, 1, false),
	FIELD(circuit_breaker_window_size, F_UINT, 1, 10000, false),
	FIELD(circuit_breaker_min_calls, F_UINT, 1, 10000, false),
	FIELD(circuit_breaker_failure_rate_threshold, F_REAL, 0, 100, true),
	FIELD(circuit_breaker_slow_call_seconds, F_REAL, 0, 3600, false),
	FIELD(circuit_breaker_half_open_probes, F_UINT, 1, 1000, false),
	FIELD(health_check_interval_seconds, F_REAL, 0, 86400, true),
	FIELD(enable_graceful_degradation, F_BOOL, 0, 0, false),
	FIELD(retry_budget_ratio, F_REAL, 0, 1, false),
	FIELD(retry_budget_min_retries_per_second, F_REAL, 0, 1000000, false),
	FIELD(retry_budget_window_seconds, F_REAL, 0.01, 3600, false),
	FIELD(seed, F_SEED, 0, 9007199254740991.0, false),
};
#define N_FIELDS (sizeof fields / sizeof fields[0])

/* Keys of the spec's configuration block that name the graph, not settings. */
static const char *const structural_keys[] = {"primary", "fallbacks", "type", "name"};

static int range_error(const field *f, const char *what, double got)
{
	return pv_error_set(PV_EINVAL,
			    "fallback config: field '%s': must be %s %s %g to %g (got %g)", f->key,
			    what, f->lo_open ? "greater than" : "from", f->lo, f->hi, got);
}

static int check_field(const pv_fallback_config *cfg, const field *f)
{
	const char *p = (const char *)cfg + f->off;
	double v;
	switch (f->kind) {
	case F_MODE:
		if ((unsigned)cfg->mode >= PV_FALLBACK_MODE_COUNT)
			return pv_error_set(PV_EINVAL,
					    "fallback config: field 'mode': must be one of immediate, "
					    "retry_then_fallback, circuit_breaker, health_based");
		return 0;
	case F_JITTER:
		if ((unsigned)cfg->retry_jitter >= PV_JITTER_COUNT)
			return pv_error_set(PV_EINVAL, "fallback config: field 'retry_jitter': must be one "
						       "of equal, full, none");
		return 0;
	case F_BOOL:
		return 0;
	case F_UINT:
		v = *(const unsigned *)(const void *)p;
		return v >= f->lo && v <= f->hi ? 0 : range_error(f, "an integer", v);
	case F_SEED:
		v = (double)*(const uint64_t *)(const void *)p;
		return v <= f->hi ? 0 : range_error(f, "an integer", v);
	case F_REAL:
		v = *(const double *)(const void *)p;
		if ((f->lo_open ? v > f->lo : v >= f->lo) && v <= f->hi)
			return 0;
		return range_error(f, "a number", v);
	}
	return 0;
}

int pv_fallback_config_validate(const pv_fallback_config *cfg)
{
	int rc;
	if (!cfg)
		return pv_error_set(PV_EINVAL, "fallback config: NULL");
	for (size_t i = 0; i < N_FIELDS; i++)
		if ((rc = check_field(cfg, &fields[i])) < 0)
			return rc;
	if (cfg->retry_max_delay_seconds < cfg->retry_delay_seconds)
		return pv_error_set(PV_EINVAL,
				    "fallback config: field 'retry_max_delay_seconds': must be >= "
				    "retry_delay_seconds (%g) and <= 3600 (got %g)",
				    cfg->retry_delay_seconds, cfg->retry_max_delay_seconds);
	if (cfg->circuit_breaker_max_timeout_seconds < cfg->circuit_breaker_timeout_seconds)
		return pv_error_set(PV_EINVAL,
				    "fallback config: field 'circuit_breaker_max_timeout_seconds': must "
				    "be >= circuit_breaker_timeout_seconds (%g) and <= 604800 (got %g)",
				    cfg->circuit_breaker_timeout_seconds,
				    cfg->circuit_breaker_max_timeout_seconds);
	if (cfg->circuit_breaker_min_calls > cfg->circuit_breaker_window_size)
		return pv_error_set(PV_EINVAL,
				    "fallback config: field 'circuit_breaker_min_calls': must be from 1 "
				    "to circuit_breaker_window_size (%u) (got %u)",
				    cfg->circuit_breaker_window_size, cfg->circuit_breaker_min_calls);
	return 0;
}

static const field *find_field(const char *key)
{
	for (size_t i = 0; i < N_FIELDS; i++)
		if (strcmp(fields[i].key, key) == 0)
			return &fields[i];
	return NULL;
}

static int unknown_key(const char *key)
{
	char names[1024];
	size_t len = 0;
	for (size_t i = 0; i < N_FIELDS && len < sizeof names; i++)
		len += (size_t)snprintf(names + len, sizeof names - len, "%s%s", i ? ", " : "",
					fields[i].key);
	return pv_error_set(PV_EINVAL, "fallback config: unknown field '%s': valid fields are %s", key,
			    names);
}

static int type_error(const char *key, const char *what)
{
	return pv_error_set(PV_EINVAL, "fallback config: field '%s': must be %s", key, what);
}

/* Stores one JSON value into its field; ranges are checked afterwards. */
static int set_field(pv_fallback_config *cfg, const field *f, const json_t *v)
{
	char *p = (char *)cfg + f->off;
	switch (f->kind) {
	case F_MODE:
		if (!json_is_string(v))
			return type_error(f->key, "a string: immediate, retry_then_fallback, "
						  "circuit_breaker or health_based");
		if (pv_fallback_mode_parse(json_string_value(v), &cfg->mode) < 0) {
			char why[512]; /* the parse's message names the valid modes */
			snprintf(why, sizeof why, "%s", pv_error_last());
			return pv_error_set(PV_EINVAL, "fallback config: field 'mode': %s", why);
		}
		return 0;
	case F_JITTER: {
		int i = json_is_string(v) ? pv_names_find(jitter_names, PV_JITTER_COUNT,
							  json_string_value(v), "retry jitter")
					  : type_error(f->key, "a string: equal, full or none");
		if (i < 0 && json_is_string(v)) {
			char why[256]; /* the parse's message names the valid values */
			snprintf(why, sizeof why, "%s", pv_error_last());
			return pv_error_set(PV_EINVAL, "fallback config: field 'retry_jitter': %s", why);
		}
		if (i < 0)
			return i;
		cfg->retry_jitter = (pv_retry_jitter)i;
		return 0;
	}
	case F_BOOL:
		if (!json_is_boolean(v))
			return type_error(f->key, "true or false");
		*(bool *)(void *)p = json_is_true(v);
		return 0;
	case F_UINT:
	case F_SEED: {
		if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > f->hi)
			return pv_error_set(PV_EINVAL,
					    "fallback config: field '%s': must be an integer from %g to %g",
					    f->key, f->lo, f->hi);
		json_int_t n = json_integer_value(v);
		if (f->kind == F_SEED)
			*(uint64_t *)(void *)p = (uint64_t)n;
		else
			*(unsigned *)(void *)p = (unsigned)n;
		return 0;
	}
	case F_REAL:
		if (!json_is_number(v))
			return type_error(f->key, "a number");
		*(double *)(void *)p = json_number_value(v);
		return 0;
	}
	return 0;
}

static bool is_structural(const char *key)
{
	for (size_t i = 0; i < sizeof structural_keys / sizeof structural_keys[0]; i++)
		if (strcmp(key, structural_keys[i]) == 0)
			return true;
	return false;
}

/* A cap left at its default follows a base set above it (timeout 3600 s
 * with no max_timeout means "at least an hour", not an error about a field
 * the user never wrote). Caps given explicitly are validated as given. */
static void raise_unset_caps(pv_fallback_config *c, const json_t *obj)
{
	if (!json_object_get(obj, "retry_max_delay_seconds") &&
	    c->retry_max_delay_seconds < c->retry_delay_seconds)
		c->retry_max_delay_seconds = c->retry_delay_seconds;
	if (!json_object_get(obj, "circuit_breaker_max_timeout_seconds") &&
	    c->circuit_breaker_max_timeout_seconds < c->circuit_breaker_timeout_seconds) {
		double cap = c->circuit_breaker_timeout_seconds * 10;
		c->circuit_breaker_max_timeout_seconds = cap < 604800 ? cap : 604800;
	}
	if (!json_object_get(obj, "circuit_breaker_min_calls") &&
	    c->circuit_breaker_min_calls > c->circuit_breaker_window_size)
		c->circuit_breaker_min_calls = c->circuit_breaker_window_size;
}

int pv_fallback_config_from_json(const json_t *obj, pv_fallback_config *cfg)
{
	pv_fallback_config c;
	pv_fallback_config_default(&c);
	if (obj && !json_is_object(obj))
		return pv_error_set(PV_EINVAL, "fallback config: must be a JSON object");
	const char *key;
	json_t *v;
	int rc;
	json_object_foreach((json_t *)obj, key, v) {
		if (is_structural(key))
			continue;
		const field *f = find_field(key);
		if (!f)
			return unknown_key(key);
		if ((rc = set_field(&c, f, v)) < 0)
			return rc;
	}
	raise_unset_caps(&c, obj);
	if ((rc = pv_fallback_config_validate(&c)) < 0)
		return rc;
	*cfg = c;
	return 0;
}

json_t *pv_fallback_config_to_json(const pv_fallback_config *cfg)
{
	json_t *j = json_object();
	for (size_t i = 0; j && i < N_FIELDS; i++) {
		const field *f = &fields[i];
		const char *p = (const char *)cfg + f->off;
		json_t *v = NULL;
		switch (f->kind) {
		case F_MODE:
			v = json_string(pv_fallback_mode_name(cfg->mode));
			break;
		case F_JITTER:
			v = json_string(pv_retry_jitter_name(cfg->retry_jitter));
			break;
		case F_BOOL:
			v = json_boolean(*(const bool *)(const void *)p);
			break;
		case F_UINT:
			v = json_integer(*(const unsigned *)(const void *)p);
			break;
		case F_SEED:
			v = json_integer((json_int_t) * (const uint64_t *)(const void *)p);
			break;
		case F_REAL:
			v = json_real(*(const double *)(const void *)p);
			break;
		}
		json_object_set_new(j, f->key, v);
	}
	return j;
}
