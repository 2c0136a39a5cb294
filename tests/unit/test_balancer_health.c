/*
 * test_balancer_health.c - the balancer's health handling (passive ejection
 * and probe recovery, active checks and the health thread, hybrid, panic
 * mode), connection caps, least connections under concurrent load, and
 * concurrent execution while children and weights change.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <cmocka.h>
#include "test_balancer_support.h"
#include "wait.h"

static const char *const AB[] = {"a", "b"};

static json_t *member(pv_strategy *lb, const char *name, json_t **all)
{
	*all = pv_balancer_strategy_stats(lb);
	return json_object_get(*all, name);
}

static bool healthy(pv_strategy *lb, const char *name)
{
	json_t *all;
	json_t *m = member(lb, name, &all); /* json_is_true evaluates its argument twice */
	bool h = json_is_true(json_object_get(m, "healthy"));
	json_decref(all);
	return h;
}

static long stat_int(pv_strategy *lb, const char *name, const char *key)
{
	json_t *all;
	long v = (long)json_integer_value(json_object_get(member(lb, name, &all), key));
	json_decref(all);
	return v;
}

/* Round robin over sims a and b on a manual clock, 10 s interval. */
static pv_strategy *pair(pv_lb_health_mode mode, pv_manual_clock *mc, pv_strategy **b_out)
{
	const pv_clock *clk = pv_manual_clock_get(mc);
	pv_strategy *kids[2] = {t_sim("a", NULL, clk), t_sim("b", NULL, clk)};
	*b_out = kids[1];
	pv_balancer_config c = t_cfg(PV_LB_ROUND_ROBIN);
	c.health_check_mode = mode;
	c.unhealthy_threshold = 3;
	c.recovery_threshold = 2;
	c.health_check_interval_seconds = 10;
	return t_lb(kids, NULL, 2, &c, clk);
}

static void test_passive_ejects_after_threshold_and_probes_bring_it_back(void **state)
{
	(void)state;
	pv_manual_clock *mc = pv_manual_clock_new(1);
	pv_strategy *b;
	pv_strategy *lb = pair(PV_LB_HEALTH_PASSIVE, mc, &b);
	pv_sim_set_failure_rate(b, 1);
	for (int i = 0; i < 6; i++) /* b fails three times in a row */
		t_run(lb, NULL, 0);
	assert_false(healthy(lb, "b"));
	assert_int_equal(stat_int(lb, "b", "ejections"), 1);
	long counts[2];
	t_count(lb, AB, 2, 20, counts);
	assert_int_equal(counts[1], 0); /* no traffic while ejected and not due */

	pv_sim_set_failure_rate(b, 0);
	pv_manual_clock_advance(mc, 10 * PV_NS_PER_S);
	char who[64];
	t_run(lb, who, sizeof who); /* the probe */
	assert_string_equal(who, "b");
	assert_false(healthy(lb, "b")); /* one success of two */
	t_run(lb, who, sizeof who);     /* a success makes the next a probe too */
	assert_string_equal(who, "b");
	assert_true(healthy(lb, "b"));
	t_count(lb, AB, 2, 20, counts);
	assert_int_equal(counts[1], 10);
	assert_int_equal(stat_int(lb, "b", "probes"), 2);
	pv_strategy_unref(lb);
	pv_manual_clock_free(mc);
}

static void test_failed_probe_waits_a_full_interval(void **state)
{
	(void)state;
	pv_manual_clock *mc = pv_manual_clock_new(1);
	pv_strategy *b;
	pv_strategy *lb = pair(PV_LB_HEALTH_PASSIVE, mc, &b);
	pv_sim_set_failure_rate(b, 1);
	for (int i = 0; i < 6; i++)
		t_run(lb, NULL, 0);
	pv_manual_clock_advance(mc, 10 * PV_NS_PER_S);
	char who[64];
	assert_false(t_run(lb, who, sizeof who)); /* the probe, still failing */
	assert_string_equal(who, "b");
	long counts[2];
	pv_manual_clock_advance(mc, 9 * PV_NS_PER_S);
	t_count(lb, AB, 2, 10, counts);
	assert_int_equal(counts[1], 0);
	pv_manual_clock_advance(mc, 1 * PV_NS_PER_S);
	t_run(lb, who, sizeof who);
	assert_string_equal(who, "b");
	assert_int_equal(stat_int(lb, "b", "probes"), 2);
	pv_strategy_unref(lb);
	pv_manual_clock_free(mc);
}

static void test_permanent_errors_do_not_eject(void **state)
{
	(void)state;
	pv_manual_clock *mc = pv_manual_clock_new(1);
	pv_strategy *b;
	pv_strategy *lb = pair(PV_LB_HEALTH_PASSIVE, mc, &b);
	pv_sim_script(b, "fail:INVALID_PARAMETERS*10");
	for (int i = 0; i < 20; i++)
		t_run(lb, NULL, 0);
	assert_true(healthy(lb, "b"));
	assert_int_equal(stat_int(lb, "b", "failures"), 10);
	pv_strategy_unref(lb);
	pv_manual_clock_free(mc);
}

static void test_disabled_mode_never_ejects(void **state)
{
	(void)state;
	pv_manual_clock *mc = pv_manual_clock_new(1);
	pv_strategy *b;
	pv_strategy *lb = pair(PV_LB_HEALTH_DISABLED, mc, &b);
	pv_sim_set_failure_rate(b, 1);
	long counts[2];
	t_count(lb, AB, 2, 40, counts);
	assert_int_equal(counts[1], 20);
	assert_true(healthy(lb, "b"));
	pv_strategy_unref(lb);
	pv_manual_clock_free(mc);
}

static void test_active_checks_eject_and_bring_back(void **state)
{
	(void)state;
	pv_manual_clock *mc = pv_manual_clock_new(1);
	pv_strategy *b;
	pv_strategy *lb = pair(PV_LB_HEALTH_ACTIVE, mc, &b);
	pv_sim_set_healthy(b, 0);
	assert_int_equal(pv_balancer_check_health(lb), 2);
	assert_int_equal(pv_balancer_check_health(lb), 2);
	assert_true(healthy(lb, "b"));
	pv_balancer_check_health(lb); /* third failed check */
	assert_false(healthy(lb, "b"));
	long counts[2];
	t_count(lb, AB, 2, 10, counts);
	assert_int_equal(counts[1], 0);

	pv_sim_set_healthy(b, 1);
	pv_balancer_check_health(lb);
	assert_false(healthy(lb, "b"));
	pv_balancer_check_health(lb);
	assert_true(healthy(lb, "b"));
	t_count(lb, AB, 2, 10, counts);
	assert_int_equal(counts[1], 5);
	/* Failing results do not eject in active mode: only checks do. */
	pv_sim_set_failure_rate(b, 1);
	t_count(lb, AB, 2, 20, counts);
	assert_true(healthy(lb, "b"));
	pv_strategy_unref(lb);
	pv_manual_clock_free(mc);
}

static long rounds(pv_strategy *lb)
{
	json_t *st = pv_strategy_stats(lb);
	long n = (long)json_integer_value(json_object_get(st, "health_check_rounds"));
	json_decref(st);
	return n;
}

/* Advances the clock one interval and waits for the thread's round. */
static void tick(pv_strategy *lb, pv_manual_clock *mc)
{
	long before = rounds(lb);
	pv_manual_clock_advance(mc, 10 * PV_NS_PER_S);
	PV_TEST_WAIT_UNTIL(rounds(lb) > before);
	if (rounds(lb) <= before)
		fail_msg("the health thread did not run a round");
}

static void test_health_thread_checks_every_interval_and_restores(void **state)
{
	(void)state;
	pv_manual_clock *mc = pv_manual_clock_new(1);
	pv_strategy *b;
	pv_strategy *lb = pair(PV_LB_HEALTH_ACTIVE, mc, &b);
	pv_sim_set_healthy(b, 0);
	for (int i = 0; i < 3; i++)
		tick(lb, mc);
	assert_false(healthy(lb, "b"));
	pv_sim_set_healthy(b, 1);
	tick(lb, mc);
	tick(lb, mc);
	assert_true(healthy(lb, "b"));
	assert_true(stat_int(lb, "b", "health_checks") >= 5);
	pv_strategy_unref(lb); /* stops and joins the thread */
	pv_manual_clock_free(mc);
}

static void test_hybrid_ejects_from_results_and_checks_restore(void **state)
{
	(void)state;
	pv_manual_clock *mc = pv_manual_clock_new(1);
	pv_strategy *b;
	pv_strategy *lb = pair(PV_LB_HEALTH_HYBRID, mc, &b);
	pv_sim_set_failure_rate(b, 1);
	for (int i = 0; i < 6; i++)
		t_run(lb, NULL, 0);
	assert_false(healthy(lb, "b"));
	pv_manual_clock_advance(mc, 60 * PV_NS_PER_S);
	long counts[2];
	t_count(lb, AB, 2, 10, counts);
	assert_int_equal(counts[1], 0); /* no probe traffic in hybrid mode */
	pv_sim_set_failure_rate(b, 0);
	pv_balancer_check_health(lb);
	pv_balancer_check_health(lb);
	assert_true(healthy(lb, "b"));
	pv_strategy_unref(lb);
	pv_manual_clock_free(mc);
}

static void test_panic_mode_spreads_over_all_when_every_strategy_is_ejected(void **state)
{
	(void)state;
	pv_manual_clock *mc = pv_manual_clock_new(1);
	const pv_clock *clk = pv_manual_clock_get(mc);
	pv_strategy *kids[2] = {t_sim("a", "{\"failure_rate\": 1}", clk),
				t_sim("b", "{\"failure_rate\": 1}", clk)};
	pv_balancer_config c = t_cfg(PV_LB_ROUND_ROBIN);
	c.unhealthy_threshold = 1;
	pv_strategy *lb = t_lb(kids, NULL, 2, &c, clk);
	t_run(lb, NULL, 0);
	t_run(lb, NULL, 0);
	assert_false(healthy(lb, "a"));
	assert_false(healthy(lb, "b"));
	pv_operation op = {.type = PV_OP_HEALTH_CHECK};
	long counts[2] = {0, 0};
	for (int i = 0; i < 10; i++) {
		pv_result r = PV_RESULT_INIT;
		pv_strategy_execute(lb, &op, &r, NULL);
		assert_string_equal(r.error_code, "EXECUTION_ERROR"); /* a child's answer */
		assert_true(json_is_true(json_object_get(pv_result_meta(&r), "balancer_panic")));
		counts[t_index(AB, 2, r.provider)]++;
		pv_result_clear(&r);
	}
	assert_int_equal(counts[0], 5);
	assert_int_equal(counts[1], 5);
	json_t *st = pv_strategy_stats(lb);
	assert_true(json_is_true(json_object_get(st, "panic")));
	assert_int_equal(json_integer_value(json_object_get(st, "panic_picks")), 10);
	json_decref(st);
	pv_strategy_unref(lb);
	pv_manual_clock_free(mc);
}

/* ---- caps and concurrency ------------------------------------------------ */

typedef struct runner {
	pv_strategy *lb;
	pv_result r;
	pthread_t t;
} runner;

static void *run_one(void *arg)
{
	runner *x = arg;
	pv_operation op = {.type = PV_OP_HEALTH_CHECK};
	pv_strategy_execute(x->lb, &op, &x->r, NULL);
	return NULL;
}

static void start(runner *x, pv_strategy *lb)
{
	memset(x, 0, sizeof *x);
	x->lb = lb;
	assert_int_equal(pthread_create(&x->t, NULL, run_one, x), 0);
}

static void finish(runner *x)
{
	pthread_join(x->t, NULL);
	pv_result_clear(&x->r);
}

static void test_connection_cap_skips_a_full_strategy_then_throttles(void **state)
{
	(void)state;
	pv_strategy *g[2] = {t_gate_new("a"), t_gate_new("b")};
	pv_strategy *kids[2] = {pv_strategy_ref(g[0]), pv_strategy_ref(g[1])};
	pv_balancer_config c = t_cfg(PV_LB_HASH_BASED); /* would send one key to one child */
	c.max_connections_per_strategy = 1;
	pv_strategy *lb = t_lb(kids, NULL, 2, &c, NULL);
	runner r[2];
	start(&r[0], lb);
	t_gates_wait(g, 2, 1);
	start(&r[1], lb); /* same key, but its child is full: the other one */
	t_gates_wait(g, 2, 2);
	assert_int_equal(t_gate_arrived(g[0]), 1);
	assert_int_equal(t_gate_arrived(g[1]), 1);

	pv_operation op = {.type = PV_OP_HEALTH_CHECK};
	pv_result res = PV_RESULT_INIT;
	pv_strategy_execute(lb, &op, &res, NULL);
	assert_false(res.success);
	assert_string_equal(res.error_code, PV_ERR_THROTTLED);
	assert_int_equal(res.error_class, PV_CLASS_THROTTLED);
	assert_non_null(strstr(pv_result_message(&res), "max_connections_per_strategy"));
	pv_result_clear(&res);

	t_gate_open(g[0]);
	t_gate_open(g[1]);
	finish(&r[0]);
	finish(&r[1]);
	assert_true(t_run(lb, NULL, 0)); /* room again */
	json_t *st = pv_strategy_stats(lb);
	assert_int_equal(json_integer_value(json_object_get(st, "throttled")), 1);
	json_decref(st);
	pv_strategy_unref(lb);
	pv_strategy_unref(g[0]);
	pv_strategy_unref(g[1]);
}

static void test_least_connections_balances_operations_in_flight(void **state)
{
	(void)state;
	pv_strategy *g[3] = {t_gate_new("a"), t_gate_new("b"), t_gate_new("c")};
	pv_strategy *kids[3] = {pv_strategy_ref(g[0]), pv_strategy_ref(g[1]), pv_strategy_ref(g[2])};
	pv_balancer_config c = t_cfg(PV_LB_LEAST_CONNECTIONS);
	pv_strategy *lb = t_lb(kids, NULL, 3, &c, NULL);
	runner r[9];
	for (int i = 0; i < 9; i++) { /* each arrives before the next is picked */
		start(&r[i], lb);
		t_gates_wait(g, 3, i + 1);
	}
	for (int i = 0; i < 3; i++)
		assert_int_equal(t_gate_arrived(g[i]), 3);
	json_t *st = pv_balancer_strategy_stats(lb);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(st, "b"), "active_connections")), 3);
	json_decref(st);
	/* The one that finishes first gets the next operation. */
	t_gate_open(g[1]);
	PV_TEST_WAIT_UNTIL(stat_int(lb, "b", "active_connections") == 0);
	assert_int_equal(stat_int(lb, "b", "active_connections"), 0);
	char who[64];
	t_run(lb, who, sizeof who);
	assert_string_equal(who, "b");
	t_gate_open(g[0]);
	t_gate_open(g[2]);
	for (int i = 0; i < 9; i++)
		finish(&r[i]);
	pv_strategy_unref(lb);
	for (int i = 0; i < 3; i++)
		pv_strategy_unref(g[i]);
}

typedef struct hammer {
	pv_strategy *lb;
	int ops;
	long ok;
} hammer;

static void *hammer_main(void *arg)
{
	hammer *h = arg;
	for (int i = 0; i < h->ops; i++)
		h->ok += t_run(h->lb, NULL, 0);
	return NULL;
}

static void test_concurrent_execution_while_children_and_weights_change(void **state)
{
	(void)state;
	for (int alg = 0; alg < PV_LB_ALGORITHM_COUNT; alg++) {
		pv_strategy *kids[3] = {t_sim("a", NULL, NULL), t_sim("b", NULL, NULL),
					t_sim("c", NULL, NULL)};
		pv_balancer_config c = t_cfg((pv_lb_algorithm)alg);
		c.max_connections_per_strategy = 0;
		pv_strategy *lb = t_lb(kids, NULL, 3, &c, NULL);
		hammer h[2] = {{lb, 3000, 0}, {lb, 3000, 0}};
		pthread_t t[2];
		for (int i = 0; i < 2; i++)
			assert_int_equal(pthread_create(&t[i], NULL, hammer_main, &h[i]), 0);
		for (int i = 0; i < 50; i++) {
			pv_strategy *d = t_sim("d", NULL, NULL);
			assert_int_equal(pv_balancer_add(lb, d, 2), 0);
			pv_strategy_unref(d);
			assert_int_equal(pv_balancer_set_weight(lb, "a", 1 + i % 4), 0);
			assert_int_equal(pv_balancer_remove(lb, "d"), 0);
		}
		for (int i = 0; i < 2; i++)
			pthread_join(t[i], NULL);
		assert_int_equal(h[0].ok + h[1].ok, 6000); /* every operation answered */
		json_t *st = pv_balancer_strategy_stats(lb);
		long total = 0;
		const char *k;
		json_t *v;
		json_object_foreach(st, k, v) {
			total += (long)json_integer_value(json_object_get(v, "requests"));
			assert_int_equal(json_integer_value(json_object_get(v, "active_connections")), 0);
		}
		assert_true(total <= 6000 && total > 0); /* d's share left with d */
		json_decref(st);
		pv_strategy_unref(lb);
	}
}

int main(void)
{
	pv_log_set_level(PV_LOG_OFF);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_passive_ejects_after_threshold_and_probes_bring_it_back),
		cmocka_unit_test(test_failed_probe_waits_a_full_interval),
		cmocka_unit_test(test_permanent_errors_do_not_eject),
		cmocka_unit_test(test_disabled_mode_never_ejects),
		cmocka_unit_test(test_active_checks_eject_and_bring_back),
		cmocka_unit_test(test_health_thread_checks_every_interval_and_restores),
		cmocka_unit_test(test_hybrid_ejects_from_results_and_checks_restore),
		cmocka_unit_test(test_panic_mode_spreads_over_all_when_every_strategy_is_ejected),
		cmocka_unit_test(test_connection_cap_skips_a_full_strategy_then_throttles),
		cmocka_unit_test(test_least_connections_balances_operations_in_flight),
		cmocka_unit_test(test_concurrent_execution_while_children_and_weights_change),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
