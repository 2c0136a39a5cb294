/*
 * test_strategies.c - see test_strategies.h.
 */
#include <pthread.h>
#include <stdlib.h>
#include "provisio/error.h"
#include "test_strategies.h"

typedef struct test_strategy {
	pv_strategy base;
	bool fail_init;
	bool *destroyed;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool open;
	int inside;
} test_strategy;

static int t_init(pv_strategy *s)
{
	test_strategy *t = (test_strategy *)s;
	if (t->fail_init)
		return pv_error_set(PV_EIO, "cannot reach endpoint of '%s'", s->name);
	return 0;
}

static int t_execute(pv_strategy *s, const pv_operation *op, pv_result *out)
{
	(void)op;
	test_strategy *t = (test_strategy *)s;
	if (s->type[0] == 'g') {
		pthread_mutex_lock(&t->lock);
		t->inside++;
		pthread_cond_broadcast(&t->cond);
		while (!t->open)
			pthread_cond_wait(&t->cond, &t->lock);
		t->inside--;
		pthread_mutex_unlock(&t->lock);
	}
	pv_result_ok(out, NULL);
	return 0;
}

static int t_caps(pv_strategy *s, pv_capabilities *out)
{
	snprintf(out->type, sizeof out->type, "%s", s->type);
	out->operations = PV_OP_SET_ALL;
	return 0;
}

static int t_health(pv_strategy *s, pv_health *out)
{
	pv_health_set(out, true, "%s ok", s->name);
	return 0;
}

static void t_destroy(pv_strategy *s)
{
	test_strategy *t = (test_strategy *)s;
	if (t->destroyed)
		*t->destroyed = true;
	pthread_mutex_destroy(&t->lock);
	pthread_cond_destroy(&t->cond);
}

static const pv_strategy_methods with_init = {
	.version = 1, .init = t_init, .execute = t_execute, .capabilities = t_caps,
	.health = t_health, .destroy = t_destroy,
};

static pv_strategy *make(const char *name, const char *type, bool fail_init, bool *destroyed)
{
	test_strategy *t = calloc(1, sizeof *t);
	if (!t || pv_strategy_setup(&t->base, &with_init, name, type) < 0)
		abort();
	t->fail_init = fail_init;
	t->destroyed = destroyed;
	if (destroyed)
		*destroyed = false;
	pthread_mutex_init(&t->lock, NULL);
	pthread_cond_init(&t->cond, NULL);
	return &t->base;
}

pv_strategy *test_init_strategy(const char *name, bool fail_init, bool *destroyed)
{
	return make(name, "initest", fail_init, destroyed);
}

pv_strategy *test_gate_strategy(const char *name, bool *destroyed)
{
	pv_strategy *s = make(name, "gate", false, destroyed);
	atomic_store(&s->initialized, 1);
	return s;
}

void test_gate_wait_inside(pv_strategy *gate, int n)
{
	test_strategy *t = (test_strategy *)gate;
	pthread_mutex_lock(&t->lock);
	while (t->inside < n)
		pthread_cond_wait(&t->cond, &t->lock);
	pthread_mutex_unlock(&t->lock);
}

void test_gate_open(pv_strategy *gate)
{
	test_strategy *t = (test_strategy *)gate;
	pthread_mutex_lock(&t->lock);
	t->open = true;
	pthread_cond_broadcast(&t->cond);
	pthread_mutex_unlock(&t->lock);
}
