/*
 * test_concurrency.c - 8 threads x 100k executes while another thread
 * switches strategies and policies and registers/unregisters a strategy;
 * every operation is accounted for exactly once in the metrics.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <cmocka.h>
#include <string.h>
#include "provisio/provisio.h"

#define THREADS 8
#define OPS_PER_THREAD 100000

static pv_context *ctx;
static atomic_int running;
static atomic_uint_fast64_t ok_results, failed_results, no_strategy;

static void *worker(void *arg)
{
	(void)arg;
	pv_operation op = {.type = PV_OP_HEALTH_CHECK};
	for (int i = 0; i < OPS_PER_THREAD; i++) {
		pv_result r;
		pv_context_execute(ctx, &op, &r);
		if (r.success)
			atomic_fetch_add(&ok_results, 1);
		else if (strcmp(r.error_code, PV_ERR_NO_STRATEGY_AVAILABLE) == 0)
			atomic_fetch_add(&no_strategy, 1);
		else
			atomic_fetch_add(&failed_results, 1);
		pv_result_clear(&r);
	}
	return NULL;
}

static void *switcher(void *arg)
{
	(void)arg;
	const char *names[] = {"a", "b", "c"};
	unsigned i = 0;
	while (atomic_load(&running)) {
		pv_context_set_strategy(ctx, names[i % 3]);
		pv_context_set_policy(ctx, (pv_policy)(i % PV_POLICY_CUSTOM));
		if (i % 7 == 0) {
			/* a short-lived fourth strategy comes and goes under load */
			pv_strategy *d;
			pv_sim_new(&d, "d", NULL, NULL);
			pv_context_register(ctx, d);
			pv_strategy_unref(d);
		} else if (i % 7 == 3) {
			pv_context_unregister(ctx, "d");
		}
		i++;
	}
	return NULL;
}

static void test_totals_add_up_under_concurrent_switching(void **state)
{
	(void)state;
	assert_int_equal(pv_context_new(&ctx, NULL), 0);
	const char *names[] = {"a", "b", "c"};
	pv_strategy *sims[3];
	for (int i = 0; i < 3; i++) {
		json_t *cfg = json_pack("{s:I, s:f}", "seed", (json_int_t)i + 1, "failure_rate", 0.1 * i);
		assert_int_equal(pv_sim_new(&sims[i], names[i], cfg, NULL), 0);
		json_decref(cfg);
		pv_context_register(ctx, sims[i]);
	}
	atomic_store(&running, 1);
	pthread_t sw, th[THREADS];
	pthread_create(&sw, NULL, switcher, NULL);
	for (int i = 0; i < THREADS; i++)
		pthread_create(&th[i], NULL, worker, NULL);
	for (int i = 0; i < THREADS; i++)
		pthread_join(th[i], NULL);
	atomic_store(&running, 0);
	pthread_join(sw, NULL);
	pv_context_unregister(ctx, "d"); /* whatever state the switcher left */

	uint64_t total = (uint64_t)THREADS * OPS_PER_THREAD;
	assert_int_equal(atomic_load(&ok_results) + atomic_load(&failed_results) + atomic_load(&no_strategy), total);
	assert_int_equal(atomic_load(&no_strategy), 0); /* a, b, c can always serve */

	/* What the metrics say of a, b and c, plus what the sims were asked. */
	uint64_t metric_total = 0, metric_ok = 0, metric_failed = 0, sim_calls = 0;
	for (int i = 0; i < 3; i++) {
		pv_metrics m;
		assert_int_equal(pv_context_metrics(ctx, names[i], &m), 0);
		assert_int_equal(m.total, m.successes + m.failures);
		assert_int_equal(m.in_flight, 0);
		metric_total += m.total;
		metric_ok += m.successes;
		metric_failed += m.failures;
		sim_calls += pv_sim_calls(sims[i], PV_OP_COUNT);
	}
	/* Calls that went to the short-lived "d" are not in a/b/c's metrics, but
	 * every call to a/b/c was counted exactly once. */
	assert_int_equal(metric_total, sim_calls);
	assert_true(metric_total <= total);
	assert_true(metric_ok <= atomic_load(&ok_results));
	assert_true(metric_failed == atomic_load(&failed_results)); /* d never fails */
	assert_int_equal(total - metric_total, atomic_load(&ok_results) - metric_ok); /* the rest went to d */
	for (int i = 0; i < 3; i++)
		pv_strategy_unref(sims[i]);
	pv_context_free(ctx);
}

int main(void)
{
	pv_log_set_level(PV_LOG_OFF);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_totals_add_up_under_concurrent_switching),
	};
	return cmocka_run_group_tests_name("concurrency", tests, NULL, NULL);
}
