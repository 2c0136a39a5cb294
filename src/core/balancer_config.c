/*
 * balancer_config.c - the balancer's enum names and its JSON configuration
 * (the spec's "load_balancing" block). Every rejection names the field and
 * the valid range, because this is what an operator reads when a config
 * file is wrong.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include "provisio/balancer.h"
#include "provisio/error.h"
#include "util/names.h"

static const char *const alg_names[PV_LB_ALGORITHM_COUNT] = {
	"round_robin", "weighted_round_robin", "least_connections", "least_response_time",
	"random",      "weighted_random",      "hash_based",        "adaptive",
};

static const char *const mode_names[PV_LB_HEALTH_MODE_COUNT] = {
	"disabled", "passive", "active", "hybrid",
};

const char *pv_lb_algorithm_name(pv_lb_algorithm a)
{
	return (unsigned)a < PV_LB_ALGORITHM_COUNT ? alg_names[a] : "unknown";
}

int pv_lb_algorithm_parse(const char *name, pv_lb_algorithm *out)
{
	int i = pv_names_find(alg_names, PV_LB_ALGORITHM_COUNT, name, "load-balancing algorithm");
	if (i < 0)
		return i;
	*out = (pv_lb_algorithm)i;
	return 0;
}

const char *pv_lb_health_mode_name(pv_lb_health_mode m)
{
	return (unsigned)m < PV_LB_HEALTH_MODE_COUNT ? mode_names[m] : "unknown";
}

int pv_lb_health_mode_parse(const char *name, pv_lb_health_mode *out)
{
	int i = pv_names_find(mode_names, PV_LB_HEALTH_MODE_COUNT, name, "health_check_mode");
	if (i < 0)
		return i;
	*out = (pv_lb_health_mode)i;
	return 0;
}

void pv_balancer_config_default(pv_balancer_config *cfg)
{
	memset(cfg, 0, sizeof *cfg);
	cfg->algorithm = PV_LB_ROUND_ROBIN;
	cfg->health_check_mode = PV_LB_HEALTH_PASSIVE;
	cfg->max_connections_per_strategy = 100;
	cfg->weight_adjustment_factor = 0.1;
	cfg->health_check_interval_seconds = 30;
	cfg->unhealthy_threshold = 3;
	cfg->recovery_threshold = 2;
	cfg->result_metadata = true;
}

void pv_balancer_config_clear(pv_balancer_config *cfg)
{
	json_decref(cfg->weights);
	cfg->weights = NULL;
}

static int bad(const char *field, const char *why)
{
	return pv_error_set(PV_EINVAL, "load_balancing: field '%s': %s", field, why);
}

/* An integer field in [lo, hi]. */
static int get_uint(const json_t *v, const char *field, long long lo, long long hi, unsigned *out,
		    const char *why)
{
	if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi)
		return bad(field, why);
	*out = (unsigned)json_integer_value(v);
	return 0;
}

/* A number field in (lo, hi]. */
static int get_real(const json_t *v, const char *field, double lo, double hi, double *out,
		    const char *why)
{
	double d = json_number_value(v);
	if (!json_is_number(v) || !isfinite(d) || d <= lo || d > hi)
		return bad(field, why);
	*out = d;
	return 0;
}

static int get_weights(const json_t *v, json_t **out)
{
	if (!json_is_object(v))
		return bad("weights", "must be an object {strategy name: weight >= 0}");
	const char *k;
	json_t *w;
	json_object_foreach((json_t *)v, k, w) {
		if (!json_is_number(w) || !isfinite(json_number_value(w)) || json_number_value(w) < 0)
			return pv_error_set(PV_EINVAL,
					    "load_balancing: field 'weights.%s': must be a finite number >= 0",
					    k);
	}
	*out = json_deep_copy(v);
	return *out ? 0 : pv_error_set(PV_ENOMEM, "out of memory");
}

static int set_field(pv_balancer_config *c, const char *key, const json_t *v)
{
	if (strcmp(key, "algorithm") == 0)
		return json_is_string(v) ? pv_lb_algorithm_parse(json_string_value(v), &c->algorithm)
					 : bad(key, "must be a string naming an algorithm");
	if (strcmp(key, "health_check_mode") == 0)
		return json_is_string(v) ? pv_lb_health_mode_parse(json_string_value(v),
								   &c->health_check_mode)
					 : bad(key, "must be one of disabled, passive, active, hybrid");
	if (strcmp(key, "max_connections_per_strategy") == 0)
		return get_uint(v, key, 0, 1000000, &c->max_connections_per_strategy,
				"must be an integer from 0 (no cap) to 1000000");
	if (strcmp(key, "unhealthy_threshold") == 0)
		return get_uint(v, key, 1, 1000, &c->unhealthy_threshold,
				"must be an integer from 1 to 1000");
	if (strcmp(key, "recovery_threshold") == 0)
		return get_uint(v, key, 1, 1000, &c->recovery_threshold,
				"must be an integer from 1 to 1000");
	if (strcmp(key, "weight_adjustment_factor") == 0)
		return get_real(v, key, 0, 1, &c->weight_adjustment_factor,
				"must be a number > 0 and <= 1");
	if (strcmp(key, "health_check_interval_seconds") == 0)
		return get_real(v, key, 0, 86400, &c->health_check_interval_seconds,
				"must be a number > 0 and <= 86400");
	if (strcmp(key, "seed") == 0) {
		if (!json_is_integer(v) || json_integer_value(v) < 0)
			return bad(key, "must be an integer >= 0 (0 = seeded from time)");
		c->seed = (uint64_t)json_integer_value(v);
		return 0;
	}
	if (strcmp(key, "result_metadata") == 0) {
		if (!json_is_boolean(v))
			return bad(key, "must be true or false");
		c->result_metadata = json_is_true(v);
		return 0;
	}
	if (strcmp(key, "weights") == 0) {
		json_decref(c->weights);
		c->weights = NULL;
		return get_weights(v, &c->weights);
	}
	return pv_error_set(PV_EINVAL,
			    "load_balancing: unknown field '%s': valid fields are algorithm, "
			    "health_check_mode, max_connections_per_strategy, weight_adjustment_factor, "
			    "health_check_interval_seconds, unhealthy_threshold, recovery_threshold, "
			    "weights, seed, result_metadata",
			    key);
}

int pv_balancer_config_from_json(const json_t *json, pv_balancer_config *cfg)
{
	pv_balancer_config c;
	pv_balancer_config_default(&c);
	if (!json_is_object(json))
		return pv_error_set(PV_EINVAL, "load_balancing: config must be a JSON object");
	const char *key;
	json_t *v;
	json_object_foreach((json_t *)json, key, v) {
		int rc = set_field(&c, key, v);
		if (rc < 0) {
			pv_balancer_config_clear(&c);
			return rc;
		}
	}
	*cfg = c;
	return 0;
}

json_t *pv_balancer_config_to_json(const pv_balancer_config *cfg)
{
	json_t *j = json_pack("{s:s, s:s, s:I, s:f, s:f, s:I, s:I, s:I, s:b}", "algorithm",
			      pv_lb_algorithm_name(cfg->algorithm), "health_check_mode",
			      pv_lb_health_mode_name(cfg->health_check_mode),
			      "max_connections_per_strategy",
			      (json_int_t)cfg->max_connections_per_strategy,
			      "weight_adjustment_factor", cfg->weight_adjustment_factor,
			      "health_check_interval_seconds", cfg->health_check_interval_seconds,
			      "unhealthy_threshold", (json_int_t)cfg->unhealthy_threshold,
			      "recovery_threshold", (json_int_t)cfg->recovery_threshold, "seed",
			      (json_int_t)cfg->seed, "result_metadata", cfg->result_metadata);
	if (j && cfg->weights)
		json_object_set_new(j, "weights", json_deep_copy(cfg->weights));
	return j;
}
