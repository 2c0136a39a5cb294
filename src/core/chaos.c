/*
 * chaos.c - fault and latency injection in front of a strategy (chaos.h).
 */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "provisio/chaos.h"
#include "provisio/error.h"
#include "util/rng.h"

typedef struct chaos {
	pv_strategy base;
	pv_strategy *child;
	const pv_clock *clock;
	double failure_rate;
	char code[PV_RESULT_CODE_MAX];
	pv_error_class cls;
	uint64_t latency_ns;
	pv_op_set operations;
	pthread_mutex_t lock;
	pv_rng rng;
	atomic_uint_fast64_t injected;
} chaos;

static int chaos_init(pv_strategy *s) { return pv_strategy_initialize(((chaos *)s)->child); }

static int chaos_execute(pv_strategy *s, const pv_operation *op, pv_result *out)
{
	chaos *c = (chaos *)s;
	if (c->operations & PV_OP_BIT(op->type)) {
		if (c->latency_ns)
			pv_clock_sleep(c->clock, c->latency_ns);
		bool fail = false;
		if (c->failure_rate > 0) {
			pthread_mutex_lock(&c->lock);
			fail = pv_rng_double(&c->rng) < c->failure_rate;
			pthread_mutex_unlock(&c->lock);
		}
		if (fail) {
			atomic_fetch_add(&c->injected, 1);
			pv_result_fail(out, c->code, c->cls, "chaos '%s': injected %s", s->name, c->code);
			pv_result_meta_set(out, "injected", json_true());
			return 0;
		}
	}
	pv_strategy_execute(c->child, op, out, c->clock);
	return 0;
}

static int chaos_capabilities(pv_strategy *s, pv_capabilities *out)
{
	int rc = pv_strategy_capabilities(((chaos *)s)->child, out);
	snprintf(out->type, sizeof out->type, "chaos");
	return rc;
}

static int chaos_health(pv_strategy *s, pv_health *out)
{
	return pv_strategy_health(((chaos *)s)->child, out);
}

static json_t *chaos_stats(pv_strategy *s)
{
	chaos *c = (chaos *)s;
	return json_pack("{s:s, s:I, s:f}", "child", c->child->name,
			 "injected_failures", (json_int_t)atomic_load(&c->injected), "failure_rate",
			 c->failure_rate);
}

static void chaos_destroy(pv_strategy *s)
{
	chaos *c = (chaos *)s;
	pv_strategy_unref(c->child);
	pthread_mutex_destroy(&c->lock);
}

static const pv_strategy_methods chaos_methods = {
	.version = PV_STRATEGY_METHODS_VERSION,
	.init = chaos_init,
	.execute = chaos_execute,
	.capabilities = chaos_capabilities,
	.health = chaos_health,
	.destroy = chaos_destroy,
	.stats = chaos_stats,
};

static int parse(chaos *c, const json_t *cfg)
{
	const char *n = c->base.name;
	static const char *const keys[] = {"failure_rate", "failure_code", "failure_class",
					   "latency_ms", "operations", "seed", NULL};
	const char *key;
	json_t *v;
	if (!cfg)
		return 0;
	if (!json_is_object(cfg))
		return pv_error_set(PV_EINVAL, "chaos '%s': config must be an object", n);
	json_object_foreach((json_t *)cfg, key, v) {
		bool known = false;
		for (const char *const *k = keys; *k; k++)
			known |= strcmp(*k, key) == 0;
		if (!known)
			return pv_error_set(PV_EINVAL, "chaos '%s': unknown key '%s' (valid: failure_rate, "
					    "failure_code, failure_class, latency_ms, operations, seed)", n, key);
	}
	if ((v = json_object_get(cfg, "failure_rate"))) {
		if (!json_is_number(v) || !(json_number_value(v) >= 0 && json_number_value(v) <= 1))
			return pv_error_set(PV_EINVAL, "chaos '%s': field 'failure_rate' must be a number from 0 to 1", n);
		c->failure_rate = json_number_value(v);
	}
	if ((v = json_object_get(cfg, "failure_code"))) {
		if (!json_is_string(v) || !json_string_length(v) || json_string_length(v) >= PV_RESULT_CODE_MAX)
			return pv_error_set(PV_EINVAL, "chaos '%s': field 'failure_code' must be a non-empty string under 48 characters", n);
		snprintf(c->code, sizeof c->code, "%s", json_string_value(v));
		c->cls = pv_error_code_class(c->code);
	}
	if ((v = json_object_get(cfg, "failure_class")) &&
	    (!json_is_string(v) || pv_error_class_parse(json_string_value(v), &c->cls) < 0 || c->cls == PV_CLASS_NONE))
		return pv_error_set(PV_EINVAL, "chaos '%s': field 'failure_class' must be one of transient, "
				    "throttled, capacity, permanent, internal", n);
	if ((v = json_object_get(cfg, "latency_ms"))) {
		if (!json_is_number(v) || !(json_number_value(v) >= 0) || json_number_value(v) > 3600e3)
			return pv_error_set(PV_EINVAL, "chaos '%s': field 'latency_ms' must be a number from 0 to 3600000", n);
		c->latency_ns = (uint64_t)(json_number_value(v) * 1e6);
	}
	if ((v = json_object_get(cfg, "operations"))) {
		size_t i;
		json_t *o;
		pv_op_type t;
		if (!json_is_array(v))
			return pv_error_set(PV_EINVAL, "chaos '%s': field 'operations' must be an array of operation names", n);
		c->operations = 0;
		json_array_foreach(v, i, o) {
			if (!json_is_string(o) || pv_op_parse(json_string_value(o), &t) < 0)
				return pv_error_set(PV_EINVAL, "chaos '%s': field 'operations': item %zu is not an operation name", n, i);
			c->operations |= PV_OP_BIT(t);
		}
	}
	if ((v = json_object_get(cfg, "seed"))) {
		if (!json_is_integer(v))
			return pv_error_set(PV_EINVAL, "chaos '%s': field 'seed' must be an integer", n);
		pv_rng_seed(&c->rng, (uint64_t)json_integer_value(v));
	}
	return 0;
}

int pv_chaos_config_check(const char *name, const json_t *config)
{
	chaos probe = {.base = {.name = (char *)(name ? name : "chaos")}};
	return parse(&probe, config);
}

int pv_chaos_new(pv_strategy **out, const char *name, pv_strategy *child, const json_t *config,
		 const pv_clock *clock)
{
	*out = NULL;
	if (!child)
		return pv_error_set(PV_EINVAL, "chaos '%s': needs a strategy to wrap", name ? name : "");
	chaos *c = pv_strategy_alloc(sizeof *c, &chaos_methods, name, "chaos");
	if (!c)
		return pv_error_last_code();
	c->child = pv_strategy_ref(child);
	c->clock = clock;
	snprintf(c->code, sizeof c->code, "%s", PV_ERR_EXECUTION_ERROR);
	c->cls = PV_CLASS_TRANSIENT;
	c->operations = PV_OP_SET_ALL;
	pthread_mutex_init(&c->lock, NULL);
	pv_rng_seed(&c->rng, 1);
	int rc = parse(c, config);
	if (rc < 0) {
		pv_strategy_unref(&c->base);
		return rc;
	}
	*out = &c->base;
	return 0;
}
