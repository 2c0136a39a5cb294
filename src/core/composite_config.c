/*
 * composite_config.c - the composite's configuration: defaults, the JSON
 * reader that names the bad field, and the mode and policy names.
 *
 * Kept apart from the strategy so that config/ (the file loader) can
 * validate a composite block without building one.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "core/composite_internal.h"
#include "provisio/error.h"
#include "util/names.h"

/* ---- names ------------------------------------------------------------- */

static const char *const mode_names[PV_COMPOSITE_MODE_COUNT] = {"parallel", "sequential",
								 "redundant"};
static const char *const agg_names[PV_AGG_COUNT] = {"merge_all", "first_success",
						    "best_performance", "majority_wins"};

const char *pv_composite_mode_name(pv_composite_mode m)
{
	return (unsigned)m < PV_COMPOSITE_MODE_COUNT ? mode_names[m] : "unknown";
}

int pv_composite_mode_parse(const char *name, pv_composite_mode *out)
{
	int i = pv_names_find(mode_names, PV_COMPOSITE_MODE_COUNT, name, "composite mode");
	if (i < 0)
		return i;
	*out = (pv_composite_mode)i;
	return 0;
}

const char *pv_aggregation_name(pv_aggregation a)
{
	return (unsigned)a < PV_AGG_COUNT ? agg_names[a] : "unknown";
}

int pv_aggregation_parse(const char *name, pv_aggregation *out)
{
	int i = pv_names_find(agg_names, PV_AGG_COUNT, name, "aggregation policy");
	if (i < 0)
		return i;
	*out = (pv_aggregation)i;
	return 0;
}

/* ---- config ------------------------------------------------------------ */

void pv_composite_config_default(pv_composite_config *cfg)
{
	*cfg = (pv_composite_config){
		.mode = PV_COMPOSITE_PARALLEL,
		.aggregation_policy = PV_AGG_MERGE_ALL,
		.max_concurrent_operations = 10,
		.timeout_seconds = 30.0,
		.failure_threshold = 1.0,
		.min_success_count = 1,
		.require_all_success = false,
		.healthy_fraction = 0.5,
	};
}

void pv_composite_config_clear(pv_composite_config *cfg)
{
	json_decref(cfg->weights);
	json_decref(cfg->volatile_fields);
	pv_composite_config_default(cfg);
}

static int cfg_error(const char *field, const char *range)
{
	return pv_error_set(PV_EINVAL, "composite config: field '%s' must be %s", field, range);
}

static int check_weights(const json_t *w)
{
	const char *k;
	json_t *v;
	if (!json_is_object(w))
		return cfg_error("weights", "an object {child name: weight > 0}");
	json_object_foreach((json_t *)w, k, v)
		if (!json_is_number(v) || !pv_composite_valid_weight(json_number_value(v)))
			return pv_error_set(PV_EINVAL,
					    "composite config: field 'weights.%s' must be a number > 0", k);
	return 0;
}

static int check_volatile(const json_t *v)
{
	size_t i;
	json_t *e;
	if (!json_is_array(v))
		return cfg_error("volatile_fields", "an array of key names");
	json_array_foreach(v, i, e)
		if (!json_is_string(e))
			return cfg_error("volatile_fields", "an array of key names (strings)");
	return 0;
}

int pv_composite_config_check(const pv_composite_config *cfg)
{
	if ((unsigned)cfg->mode >= PV_COMPOSITE_MODE_COUNT)
		return cfg_error("mode", "one of parallel, sequential, redundant");
	if ((unsigned)cfg->aggregation_policy >= PV_AGG_COUNT)
		return cfg_error("aggregation_policy",
				 "one of merge_all, first_success, best_performance, majority_wins");
	if (cfg->max_concurrent_operations < 1 || cfg->max_concurrent_operations > 1024)
		return cfg_error("max_concurrent_operations", "an integer from 1 to 1024");
	if (!(cfg->timeout_seconds > 0 && cfg->timeout_seconds <= 86400))
		return cfg_error("timeout_seconds", "a number > 0 and <= 86400");
	if (!(cfg->failure_threshold >= 0 && cfg->failure_threshold <= 1))
		return cfg_error("failure_threshold", "a number from 0 to 1");
	if (cfg->min_success_count < 1 || cfg->min_success_count > 1024)
		return cfg_error("min_success_count", "an integer from 1 to 1024");
	if (!(cfg->healthy_fraction >= 0 && cfg->healthy_fraction <= 1))
		return cfg_error("healthy_fraction", "a number from 0 to 1");
	if (cfg->weights && check_weights(cfg->weights) < 0)
		return PV_EINVAL;
	if (cfg->volatile_fields && check_volatile(cfg->volatile_fields) < 0)
		return PV_EINVAL;
	return 0;
}

static int read_enum(const json_t *v, const char *field, int (*parse)(const char *, int *),
		     int *out)
{
	if (json_is_string(v) && parse(json_string_value(v), out) == 0)
		return 0;
	char why[256]; /* the parser's message, copied: pv_error_set overwrites it */
	snprintf(why, sizeof why, "%s", json_is_string(v) ? pv_error_last() : "must be a string");
	return pv_error_set(PV_EINVAL, "composite config: field '%s': %s", field, why);
}

static int parse_mode(const char *s, int *out)
{
	pv_composite_mode m;
	int rc = pv_composite_mode_parse(s, &m);
	if (rc == 0)
		*out = (int)m;
	return rc;
}

static int parse_agg(const char *s, int *out)
{
	pv_aggregation a;
	int rc = pv_aggregation_parse(s, &a);
	if (rc == 0)
		*out = (int)a;
	return rc;
}

static int read_uint(const json_t *v, const char *field, unsigned *out)
{
	if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > 1024)
		return cfg_error(field, "an integer from 1 to 1024");
	*out = (unsigned)json_integer_value(v);
	return 0;
}

static int read_fraction(const json_t *v, const char *field, double *out)
{
	if (!json_is_number(v) || !(json_number_value(v) >= 0 && json_number_value(v) <= 1))
		return cfg_error(field, "a number from 0 to 1");
	*out = json_number_value(v);
	return 0;
}

static int read_key(pv_composite_config *cfg, const char *key, const json_t *v)
{
	int e = 0;
	if (strcmp(key, "mode") == 0) {
		int rc = read_enum(v, key, parse_mode, &e);
		cfg->mode = (pv_composite_mode)e;
		return rc;
	}
	if (strcmp(key, "aggregation_policy") == 0) {
		int rc = read_enum(v, key, parse_agg, &e);
		cfg->aggregation_policy = (pv_aggregation)e;
		return rc;
	}
	if (strcmp(key, "max_concurrent_operations") == 0)
		return read_uint(v, key, &cfg->max_concurrent_operations);
	if (strcmp(key, "min_success_count") == 0)
		return read_uint(v, key, &cfg->min_success_count);
	if (strcmp(key, "timeout_seconds") == 0) {
		if (!json_is_number(v) || !(json_number_value(v) > 0 && json_number_value(v) <= 86400))
			return cfg_error(key, "a number > 0 and <= 86400");
		cfg->timeout_seconds = json_number_value(v);
		return 0;
	}
	if (strcmp(key, "failure_threshold") == 0)
		return read_fraction(v, key, &cfg->failure_threshold);
	if (strcmp(key, "healthy_fraction") == 0)
		return read_fraction(v, key, &cfg->healthy_fraction);
	if (strcmp(key, "require_all_success") == 0) {
		if (!json_is_boolean(v))
			return cfg_error(key, "true or false");
		cfg->require_all_success = json_is_true(v);
		return 0;
	}
	if (strcmp(key, "weights") == 0) {
		if (check_weights(v) < 0)
			return PV_EINVAL;
		cfg->weights = json_deep_copy(v);
		return cfg->weights ? 0 : pv_error_set(PV_ENOMEM, "out of memory");
	}
	if (strcmp(key, "volatile_fields") == 0) {
		if (check_volatile(v) < 0)
			return PV_EINVAL;
		cfg->volatile_fields = json_deep_copy(v);
		return cfg->volatile_fields ? 0 : pv_error_set(PV_ENOMEM, "out of memory");
	}
	return pv_error_set(PV_EINVAL,
			    "composite config: unknown field '%s': valid fields are mode, "
			    "aggregation_policy, max_concurrent_operations, timeout_seconds, "
			    "failure_threshold, min_success_count, require_all_success, "
			    "healthy_fraction, weights, volatile_fields",
			    key);
}

int pv_composite_config_from_json(const json_t *json, pv_composite_config *cfg)
{
	pv_composite_config_default(cfg);
	if (!json)
		return 0;
	if (!json_is_object(json))
		return pv_error_set(PV_EINVAL, "composite config must be a JSON object");
	const char *key;
	json_t *v;
	json_object_foreach((json_t *)json, key, v) {
		int rc = read_key(cfg, key, v);
		if (rc < 0) {
			pv_composite_config_clear(cfg);
			return rc;
		}
	}
	return 0;
}

json_t *pv_composite_config_to_json(const pv_composite_config *cfg)
{
	return json_pack("{s:s, s:s, s:i, s:f, s:f, s:i, s:b, s:f, s:o, s:o?}", "mode",
			 pv_composite_mode_name(cfg->mode), "aggregation_policy",
			 pv_aggregation_name(cfg->aggregation_policy), "max_concurrent_operations",
			 (int)cfg->max_concurrent_operations, "timeout_seconds", cfg->timeout_seconds,
			 "failure_threshold", cfg->failure_threshold, "min_success_count",
			 (int)cfg->min_success_count, "require_all_success", cfg->require_all_success,
			 "healthy_fraction", cfg->healthy_fraction, "weights",
			 cfg->weights ? json_deep_copy(cfg->weights) : json_object(),
			 "volatile_fields",
			 cfg->volatile_fields ? json_deep_copy(cfg->volatile_fields) : NULL);
}

int pv_composite_config_copy(pv_composite_config *dst, const pv_composite_config *src)
{
	*dst = *src;
	dst->weights = src->weights ? json_deep_copy(src->weights) : NULL;
	dst->volatile_fields = src->volatile_fields ? json_deep_copy(src->volatile_fields) : NULL;
	if ((src->weights && !dst->weights) || (src->volatile_fields && !dst->volatile_fields)) {
		pv_composite_config_clear(dst);
		return pv_error_set(PV_ENOMEM, "out of memory");
	}
	return 0;
}

