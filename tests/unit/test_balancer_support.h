/*
 * test_balancer_support.h - helpers shared by the balancer tests: sims on a
 * manual clock, a "gate" strategy that blocks until released (to hold
 * operations in flight deterministically), and counting picks by name.
 * Header-only so each test_balancer_*.c stays one self-contained program.
 */
#ifndef TEST_BALANCER_SUPPORT_H
#define TEST_BALANCER_SUPPORT_H

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "provisio/balancer.h"
#include "provisio/provisio.h"
#include "wait.h"

static inline pv_strategy *t_sim(const char *name, const char *json, const pv_clock *clock)
{
	json_error_t err;
	json_t *cfg = json ? json_loads(json, 0, &err) : NULL;
	pv_strategy *s = NULL;
	assert_int_equal(pv_sim_new(&s, name, cfg, clock), 0);
	json_decref(cfg);
	return s;
}

/* A balancer over `kids` that takes over the caller's references. */
static inline pv_strategy *t_lb(pv_strategy **kids, const double *w, size_t n,
				const pv_balancer_config *cfg, const pv_clock *clock)
{
	pv_strategy *lb = NULL;
	int rc = pv_balancer_new(&lb, "lb", kids, w, n, cfg, clock);
	if (rc)
		fprintf(stderr, "pv_balancer_new: %s\n", pv_error_last());
	assert_int_equal(rc, 0);
	for (size_t i = 0; i < n; i++)
		pv_strategy_unref(kids[i]);
	assert_int_equal(pv_strategy_initialize(lb), 0);
	return lb;
}

static inline pv_balancer_config t_cfg(pv_lb_algorithm alg)
{
	pv_balancer_config c;
	pv_balancer_config_default(&c);
	c.algorithm = alg;
	c.seed = 12345;
	return c;
}

/* Runs a health_check operation; returns the leaf that answered in `who`. */
static inline bool t_run(pv_strategy *lb, char *who, size_t size)
{
	pv_operation op = {.type = PV_OP_HEALTH_CHECK};
	pv_result r = PV_RESULT_INIT;
	pv_strategy_execute(lb, &op, &r, NULL);
	if (who)
		snprintf(who, size, "%s", r.provider);
	bool ok = r.success;
	pv_result_clear(&r);
	return ok;
}

/* The index of `name` in names[n], or -1. */
static inline int t_index(const char *const *names, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(names[i], name) == 0)
			return (int)i;
	return -1;
}

/* Runs `ops` operations and counts the answers per name. */
static inline void t_count(pv_strategy *lb, const char *const *names, size_t n, int ops,
			   long *counts)
{
	memset(counts, 0, n * sizeof *counts);
	char who[64];
	for (int i = 0; i < ops; i++) {
		t_run(lb, who, sizeof who);
		int k = t_index(names, n, who);
		assert_true(k >= 0);
		counts[k]++;
	}
}

/* ---- the gate strategy ---------------------------------------------------- */

typedef struct t_gate {
	pv_strategy base;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int arrived, open;
	int refuse_init; /* for the initable variant */
} t_gate;

static inline int gate_execute(pv_strategy *s, const pv_operation *op, pv_result *out)
{
	(void)op;
	t_gate *g = (t_gate *)s;
	struct timespec until;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += PV_TEST_PATIENCE_S; /* never hang a test run */
	pthread_mutex_lock(&g->mu);
	g->arrived++;
	pthread_cond_broadcast(&g->cv);
	while (!g->open && pthread_cond_timedwait(&g->cv, &g->mu, &until) == 0)
		;
	pthread_mutex_unlock(&g->mu);
	pv_result_ok(out, NULL);
	return 0;
}

static inline int gate_caps(pv_strategy *s, pv_capabilities *out)
{
	(void)s;
	snprintf(out->type, sizeof out->type, "gate");
	out->operations = PV_OP_SET_ALL;
	return 0;
}

static inline int gate_health(pv_strategy *s, pv_health *out)
{
	(void)s;
	pv_health_set(out, true, "gate");
	return 0;
}

static inline void gate_destroy(pv_strategy *s)
{
	t_gate *g = (t_gate *)s;
	pthread_mutex_destroy(&g->mu);
	pthread_cond_destroy(&g->cv);
}

static const pv_strategy_methods gate_methods = {
	.version = PV_STRATEGY_METHODS_VERSION,
	.execute = gate_execute,
	.capabilities = gate_caps,
	.health = gate_health,
	.destroy = gate_destroy,
};

static inline int gate_init(pv_strategy *s)
{
	return ((t_gate *)s)->refuse_init ? pv_error_set(PV_ESTATE, "gate refuses to start") : 0;
}

static const pv_strategy_methods gate_init_methods = {
	.version = PV_STRATEGY_METHODS_VERSION,
	.init = gate_init,
	.execute = gate_execute,
	.capabilities = gate_caps,
	.health = gate_health,
	.destroy = gate_destroy,
};

static inline pv_strategy *t_gate_make(const char *name, const pv_strategy_methods *methods)
{
	t_gate *g = calloc(1, sizeof *g);
	assert_non_null(g);
	assert_int_equal(pv_strategy_setup(&g->base, methods, name, "gate"), 0);
	pthread_mutex_init(&g->mu, NULL);
	pthread_cond_init(&g->cv, NULL);
	return &g->base;
}

/* A gate with an init method that succeeds unless `refuse`. */
static inline pv_strategy *t_gate_new_initable(const char *name, int refuse)
{
	pv_strategy *s = t_gate_make(name, &gate_init_methods);
	((t_gate *)s)->refuse_init = refuse;
	return s;
}

static inline pv_strategy *t_gate_new(const char *name)
{
	return t_gate_make(name, &gate_methods);
}

static inline int t_gates_arrived(pv_strategy **gates, size_t ng)
{
	int total = 0;
	for (size_t i = 0; i < ng; i++) {
		t_gate *g = (t_gate *)gates[i];
		pthread_mutex_lock(&g->mu);
		total += g->arrived;
		pthread_mutex_unlock(&g->mu);
	}
	return total;
}

/* Waits until `n` operations in total have arrived at the gates. */
static inline void t_gates_wait(pv_strategy **gates, size_t ng, int n)
{
	PV_TEST_WAIT_UNTIL(t_gates_arrived(gates, ng) >= n);
	if (t_gates_arrived(gates, ng) < n)
		fail_msg("gates: %d operations never arrived", n);
}

static inline void t_gate_open(pv_strategy *s)
{
	t_gate *g = (t_gate *)s;
	pthread_mutex_lock(&g->mu);
	g->open = 1;
	pthread_cond_broadcast(&g->cv);
	pthread_mutex_unlock(&g->mu);
}

static inline int t_gate_arrived(pv_strategy *s)
{
	t_gate *g = (t_gate *)s;
	pthread_mutex_lock(&g->mu);
	int n = g->arrived;
	pthread_mutex_unlock(&g->mu);
	return n;
}

#endif
