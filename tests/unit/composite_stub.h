/*
 * composite_stub.h - a scriptable child strategy for the composite tests.
 *
 * The sim provider covers capacity, failures and latency on a clock; the
 * composite tests also need children that answer with given data, report a
 * given latency (best_performance), finish only after another child did
 * (completion order), ignore the deadline (late finishers), or forward to a
 * sim after a real delay (late creates). Header-only, static: each test
 * program gets its own copy.
 */
#ifndef COMPOSITE_STUB_H
#define COMPOSITE_STUB_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "provisio/provisio.h"
#include "wait.h"

typedef struct stub {
	pv_strategy base;
	json_t *data;                /* answer on success (copied out); NULL = none */
	char fail_code[PV_RESULT_CODE_MAX]; /* "" = succeed */
	pv_error_class fail_class;
	uint64_t report_latency_ns;  /* set on the result when non-zero */
	unsigned sleep_ms;           /* real sleep that ignores the deadline */
	atomic_int *wait_for;        /* answer only once *wait_for != 0 (PV_TEST_PATIENCE_S at most) */
	atomic_int *signal;          /* set to 1 after answering */
	pv_strategy *delegate;       /* forward to it (deadline dropped) */
	pv_op_set ops;
	bool healthy;
	atomic_int calls;
	_Atomic(pthread_t) ran_on;   /* the thread of the last call */
} stub;

static __attribute__((unused)) void stub_sleep_ms(unsigned ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

static int stub_execute(pv_strategy *s, const pv_operation *op, pv_result *out)
{
	stub *st = (stub *)s;
	atomic_fetch_add(&st->calls, 1);
	atomic_store(&st->ran_on, pthread_self());
	if (st->wait_for)
		PV_TEST_WAIT_UNTIL(atomic_load(st->wait_for));
	if (st->sleep_ms)
		stub_sleep_ms(st->sleep_ms);
	if (st->delegate) {
		pv_operation fwd = *op;
		fwd.deadline_ns = 0;
		pv_strategy_execute(st->delegate, &fwd, out, NULL);
		out->latency_ns = 0;
	} else if (st->fail_code[0]) {
		pv_result_fail(out, st->fail_code, st->fail_class, "stub '%s' fails", s->name);
	} else {
		pv_result_ok(out, st->data ? json_deep_copy(st->data) : NULL);
	}
	out->latency_ns = st->report_latency_ns;
	if (st->signal)
		atomic_store(st->signal, 1);
	return 0;
}

static int stub_caps(pv_strategy *s, pv_capabilities *out)
{
	stub *st = (stub *)s;
	snprintf(out->type, sizeof out->type, "stub");
	out->operations = st->ops;
	out->features = json_pack("{s:b}", s->name, 1);
	return 0;
}

static int stub_health(pv_strategy *s, pv_health *out)
{
	stub *st = (stub *)s;
	pv_health_set(out, st->healthy, "stub %s", st->healthy ? "up" : "down");
	return 0;
}

static void stub_destroy(pv_strategy *s)
{
	stub *st = (stub *)s;
	json_decref(st->data);
	pv_strategy_unref(st->delegate);
}

static const pv_strategy_methods stub_methods = {
	.version = PV_STRATEGY_METHODS_VERSION,
	.execute = stub_execute,
	.capabilities = stub_caps,
	.health = stub_health,
	.destroy = stub_destroy,
};

/* A stub answering `data_json` (NULL = no data); see the fields above. */
static __attribute__((unused)) stub *stub_new(const char *name, const char *data_json)
{
	stub *st = calloc(1, sizeof *st);
	if (!st || pv_strategy_setup(&st->base, &stub_methods, name, "stub") < 0)
		abort();
	st->data = data_json ? json_loads(data_json, JSON_DECODE_ANY, NULL) : NULL;
	st->ops = PV_OP_SET_ALL;
	st->healthy = true;
	return st;
}

static __attribute__((unused)) stub *stub_failing(const char *name, const char *code)
{
	stub *st = stub_new(name, NULL);
	snprintf(st->fail_code, sizeof st->fail_code, "%s", code);
	st->fail_class = pv_error_code_class(code);
	return st;
}

#endif
