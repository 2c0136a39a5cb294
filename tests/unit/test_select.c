/*
 * test_select.c - the ten selection policies, the custom callback and the
 * selection criteria.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <pthread.h>
#include <string.h>
#include <cmocka.h>
#include "provisio/provisio.h"
#include "test_strategies.h"

static pv_manual_clock *mc;

static pv_strategy *sim(const char *name, const char *json)
{
	json_t *cfg = json ? json_loads(json, 0, NULL) : NULL;
	pv_strategy *s = NULL;
	assert_int_equal(pv_sim_new(&s, name, cfg, pv_manual_clock_get(mc)), 0);
	json_decref(cfg);
	return s;
}

static void give(pv_context *ctx, pv_strategy *s, double weight)
{
	assert_true(pv_context_register_weighted(ctx, s, weight) >= 0);
	pv_strategy_unref(s);
}

static pv_context *ctx_with(pv_policy policy)
{
	pv_context *ctx;
	pv_context_options o = {.clock = pv_manual_clock_get(mc), .rng_seed = 7};
	assert_int_equal(pv_context_new(&ctx, &o), 0);
	assert_int_equal(pv_context_set_policy(ctx, policy), 0);
	return ctx;
}

static const pv_operation hc = {.type = PV_OP_HEALTH_CHECK};

/* Runs `n` health checks through selection; returns the chosen names
 * concatenated as single letters (names are one letter). */
static void picks(pv_context *ctx, int n, char *out)
{
	for (int i = 0; i < n; i++) {
		pv_result r;
		pv_context_execute(ctx, &hc, &r);
		assert_true(r.success);
		out[i] = r.provider[0];
		pv_result_clear(&r);
	}
	out[n] = '\0';
}

static void run_on(pv_context *ctx, const char *name, int n)
{
	for (int i = 0; i < n; i++) {
		pv_result r;
		pv_context_execute_on(ctx, name, &hc, &r);
		pv_result_clear(&r);
	}
}

static int setup(void **state)
{
	(void)state;
	mc = pv_manual_clock_new(1);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	pv_manual_clock_free(mc);
	return 0;
}

static void test_policy_names_parse_both_ways(void **state)
{
	(void)state;
	for (int p = 0; p < PV_POLICY_COUNT; p++) {
		pv_policy back;
		assert_int_equal(pv_policy_parse(pv_policy_name((pv_policy)p), &back), 0);
		assert_int_equal(back, p);
	}
	pv_policy p;
	assert_int_equal(pv_policy_parse("PERFORMANCE_BASED", &p), 0);
	assert_int_equal(p, PV_POLICY_PERFORMANCE_BASED);
	assert_int_equal(pv_policy_parse("least_response_time", &p), 0);
	assert_int_equal(p, PV_POLICY_FASTEST_RESPONSE);
	assert_int_equal(pv_policy_parse("cheapest", &p), PV_EINVAL);
	assert_non_null(strstr(pv_error_last(), "round_robin"));
}

static void test_first_available_skips_strategies_that_cannot_serve(void **state)
{
	(void)state;
	pv_context *ctx = ctx_with(PV_POLICY_FIRST_AVAILABLE);
	give(ctx, sim("a", "{\"operations\": [\"create_instances\"]}"), 1);
	give(ctx, sim("b", NULL), 1);
	give(ctx, sim("c", NULL), 1);
	char got[8];
	picks(ctx, 3, got);
	assert_string_equal(got, "bbb");
	pv_context_free(ctx);
}

static void test_round_robin_cycles_in_order(void **state)
{
	(void)state;
	pv_context *ctx = ctx_with(PV_POLICY_ROUND_ROBIN);
	give(ctx, sim("a", NULL), 1);
	give(ctx, sim("b", NULL), 1);
	give(ctx, sim("c", NULL), 1);
	char got[16];
	picks(ctx, 9, got);
	assert_string_equal(got, "abcabcabc");
	pv_context_free(ctx);
}

static void test_weighted_round_robin_is_smooth_for_5_1_1(void **state)
{
	(void)state;
	pv_context *ctx = ctx_with(PV_POLICY_WEIGHTED_ROUND_ROBIN);
	give(ctx, sim("a", NULL), 5);
	give(ctx, sim("b", NULL), 1);
	give(ctx, sim("c", NULL), 1);
	char got[64];
	picks(ctx, 7, got);
	assert_string_equal(got, "aabacaa"); /* nginx's smooth sequence, not aaaaabc */
	picks(ctx, 63, got);
	int count[3] = {0};
	int run = 0, longest = 0;
	for (int i = 0; i < 63; i++) {
		count[got[i] - 'a']++;
		run = got[i] == 'a' ? run + 1 : 0;
		longest = run > longest ? run : longest;
	}
	assert_int_equal(count[0], 45);
	assert_int_equal(count[1], 9);
	assert_int_equal(count[2], 9);
	assert_true(longest < 5);

	/* fractional weights as in the spec (0.6/0.3/0.1) keep their ratio */
	pv_context_set_weight(ctx, "a", 0.6);
	pv_context_set_weight(ctx, "b", 0.3);
	pv_context_set_weight(ctx, "c", 0.1);
	picks(ctx, 60, got);
	memset(count, 0, sizeof count);
	for (int i = 0; i < 60; i++)
		count[got[i] - 'a']++;
	assert_int_equal(count[0], 36);
	assert_int_equal(count[1], 18);
	assert_int_equal(count[2], 6);
	assert_int_equal(pv_context_set_weight(ctx, "a", 0), PV_EINVAL);
	assert_int_equal(pv_context_set_weight(ctx, "zz", 1), PV_ENOTFOUND);
	pv_context_free(ctx);
}

static void *call_gate(void *arg)
{
	pv_context *ctx = arg;
	pv_result r;
	pv_context_execute_on(ctx, "g", &hc, &r);
	pv_result_clear(&r);
	return NULL;
}

static void test_least_connections_avoids_busy_strategy(void **state)
{
	(void)state;
	pv_context *ctx = ctx_with(PV_POLICY_LEAST_CONNECTIONS);
	pv_strategy *gate = test_gate_strategy("g", NULL);
	give(ctx, gate, 1);
	give(ctx, sim("b", NULL), 1);
	pthread_t t[2];
	for (int i = 0; i < 2; i++)
		pthread_create(&t[i], NULL, call_gate, ctx);
	test_gate_wait_inside(gate, 2);
	char got[32];
	picks(ctx, 20, got);
	assert_string_equal(got, "bbbbbbbbbbbbbbbbbbbb");
	test_gate_open(gate);
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	/* idle again: ties rotate, so both are chosen */
	picks(ctx, 20, got);
	assert_non_null(strchr(got, 'g'));
	assert_non_null(strchr(got, 'b'));
	pv_context_free(ctx);
}

static void test_fastest_response_picks_lowest_ewma_and_tries_new_first(void **state)
{
	(void)state;
	pv_context *ctx = ctx_with(PV_POLICY_FASTEST_RESPONSE);
	give(ctx, sim("a", "{\"latency\": {\"mean_ms\": 30}}"), 1);
	give(ctx, sim("b", "{\"latency\": {\"mean_ms\": 2}}"), 1);
	give(ctx, sim("c", "{\"latency\": {\"mean_ms\": 9}}"), 1);
	run_on(ctx, "a", 3);
	run_on(ctx, "b", 3);
	char got[8];
	picks(ctx, 1, got);
	assert_string_equal(got, "c"); /* unmeasured: tried first */
	picks(ctx, 5, got);
	assert_string_equal(got, "bbbbb");
	pv_context_free(ctx);
}

static void test_highest_success_rate_prefers_reliable(void **state)
{
	(void)state;
	pv_context *ctx = ctx_with(PV_POLICY_HIGHEST_SUCCESS_RATE);
	give(ctx, sim("a", "{\"script\": [\"fail*2\", \"ok*8\"]}"), 1);
	give(ctx, sim("b", "{\"script\": [\"fail*1\", \"ok*9\"]}"), 1);
	run_on(ctx, "a", 10);
	run_on(ctx, "b", 10);
	char got[8];
	picks(ctx, 4, got);
	assert_string_equal(got, "bbbb");
	pv_context_free(ctx);
}

static void test_capability_based_picks_most_capable(void **state)
{
	(void)state;
	pv_context *ctx = ctx_with(PV_POLICY_CAPABILITY_BASED);
	give(ctx, sim("a", "{\"operations\": [\"health_check\"]}"), 1);
	give(ctx, sim("b", "{\"features\": {\"spot\": true, \"gpu\": true}}"), 1);
	give(ctx, sim("c", "{\"features\": {\"spot\": true}}"), 1);
	char got[8];
	picks(ctx, 4, got);
	assert_string_equal(got, "bbbb");
	pv_context_free(ctx);
}

static int health_checks(pv_context *ctx, const char *name)
{
	pv_metrics m;
	assert_int_equal(pv_context_metrics(ctx, name, &m), 0);
	return (int)m.health_checks;
}

static void test_health_based_skips_unhealthy(void **state)
{
	(void)state;
	pv_context *ctx = ctx_with(PV_POLICY_HEALTH_BASED);
	pv_strategy *a = sim("a", NULL);
	give(ctx, a, 1);
	give(ctx, sim("b", NULL), 1);
	char got[8];
	picks(ctx, 2, got);
	assert_string_equal(got, "aa"); /* the first healthy one */
	pv_sim_set_healthy(a, 0);
	pv_context_refresh_health(ctx, true);
	picks(ctx, 3, got);
	assert_string_equal(got, "bbb");
	pv_context_free(ctx);
}

/* A short process (one CLI or Host Factory call) has no monitor: the first
 * pick learns the health it needs, then no pick checks again until the
 * interval has passed. */
static void test_health_based_knows_health_before_the_first_pick(void **state)
{
	(void)state;
	pv_context *ctx = ctx_with(PV_POLICY_HEALTH_BASED);
	pv_strategy *a = sim("a", "{\"healthy\": false}");
	give(ctx, a, 1);
	give(ctx, sim("b", NULL), 1);
	char got[8];
	picks(ctx, 6, got);
	assert_string_equal(got, "bbbbbb");
	assert_int_equal(health_checks(ctx, "a"), 1); /* once, not once a pick */
	assert_int_equal(health_checks(ctx, "b"), 1);

	pv_sim_set_healthy(a, 1);
	picks(ctx, 2, got);
	assert_string_equal(got, "bb"); /* what is known holds for the interval (30 s) */
	pv_manual_clock_advance(mc, 31 * PV_NS_PER_S);
	picks(ctx, 2, got);
	assert_string_equal(got, "aa"); /* stale: checked again at the first pick */
	assert_int_equal(health_checks(ctx, "a"), 2);
	assert_int_equal(health_checks(ctx, "b"), 2);
	pv_context_free(ctx);
}

static void test_weighted_round_robin_require_healthy_skips_the_sick_from_the_first_pick(void **state)
{
	(void)state;
	pv_context *ctx = ctx_with(PV_POLICY_WEIGHTED_ROUND_ROBIN);
	give(ctx, sim("a", "{\"healthy\": false}"), 5);
	give(ctx, sim("b", NULL), 1);
	pv_criteria c = {.require_healthy = true};
	assert_int_equal(pv_context_set_criteria(ctx, &c), 0);
	char got[8];
	picks(ctx, 6, got);
	assert_string_equal(got, "bbbbbb");
	assert_int_equal(health_checks(ctx, "a"), 1);
	pv_context_free(ctx);
}

/* Policies that do not read health never check it. */
static void test_round_robin_checks_no_health(void **state)
{
	(void)state;
	pv_context *ctx = ctx_with(PV_POLICY_ROUND_ROBIN);
	give(ctx, sim("a", "{\"healthy\": false}"), 1);
	give(ctx, sim("b", NULL), 1);
	char got[8] = "";
	for (int i = 0; i < 4; i++) {
		char who[8];
		assert_int_equal(pv_context_select(ctx, &hc, who, sizeof who), 0);
		got[i] = who[0];
	}
	assert_string_equal(got, "abab");
	assert_int_equal(health_checks(ctx, "a"), 0);
	pv_context_free(ctx);
}

static void test_random_is_seeded_and_spreads_evenly(void **state)
{
	(void)state;
	char seq[2][64];
	for (int k = 0; k < 2; k++) {
		pv_context *ctx = ctx_with(PV_POLICY_RANDOM);
		give(ctx, sim("a", NULL), 1);
		give(ctx, sim("b", NULL), 1);
		give(ctx, sim("c", NULL), 1);
		picks(ctx, 60, seq[k]);
		if (k == 1) {
			int count[3] = {0};
			for (int i = 0; i < 30000; i++) {
				char name[8];
				assert_int_equal(pv_context_select(ctx, &hc, name, sizeof name), 0);
				count[name[0] - 'a']++;
			}
			for (int i = 0; i < 3; i++)
				assert_in_range(count[i], 9400, 10600);
		}
		pv_context_free(ctx);
	}
	assert_string_equal(seq[0], seq[1]);
}

static void test_performance_based_trades_rate_against_latency(void **state)
{
	(void)state;
	pv_context *ctx = ctx_with(PV_POLICY_PERFORMANCE_BASED);
	/* a: 100 % at 400 ms -> 1/(1+1.6) = 0.385; b: 90 % at 10 ms -> 0.9/1.04 = 0.865 */
	give(ctx, sim("a", "{\"latency\": {\"mean_ms\": 400}}"), 1);
	give(ctx, sim("b", "{\"latency\": {\"mean_ms\": 10}, \"script\": [\"fail\", \"ok*9\"]}"), 1);
	run_on(ctx, "a", 10);
	run_on(ctx, "b", 10);
	char got[8];
	picks(ctx, 3, got);
	assert_string_equal(got, "bbb");
	pv_context_free(ctx);
}

static int pick_last(void *user, const pv_candidate *c, size_t n, const pv_operation *op)
{
	(void)op;
	*(size_t *)user = n;
	return strcmp(c[n - 1].name, "c") == 0 ? (int)n - 1 : -1;
}

static void test_custom_policy_callback_chooses(void **state)
{
	(void)state;
	pv_context *ctx = ctx_with(PV_POLICY_NONE);
	give(ctx, sim("a", NULL), 1);
	give(ctx, sim("b", NULL), 1);
	give(ctx, sim("c", NULL), 1);
	size_t seen = 0;
	pv_context_set_custom_policy(ctx, pick_last, &seen);
	assert_int_equal(pv_context_policy(ctx), PV_POLICY_CUSTOM);
	char got[8];
	picks(ctx, 2, got);
	assert_string_equal(got, "cc");
	assert_int_equal(seen, 3);
	pv_context_unregister(ctx, "c");
	pv_result r;
	pv_context_execute(ctx, &hc, &r); /* callback answers -1 */
	assert_string_equal(r.error_code, "NO_STRATEGY_AVAILABLE");
	pv_result_clear(&r);
	pv_context_free(ctx);
}

static void test_custom_policy_without_a_callback_is_an_error(void **state)
{
	(void)state;
	pv_context *ctx = ctx_with(PV_POLICY_ROUND_ROBIN);
	give(ctx, sim("a", NULL), 1);
	assert_int_equal(pv_context_set_policy(ctx, PV_POLICY_CUSTOM), PV_EINVAL);
	assert_non_null(strstr(pv_error_last(), "pv_context_set_custom_policy"));
	assert_int_equal(pv_context_policy(ctx), PV_POLICY_ROUND_ROBIN); /* unchanged */
	size_t seen = 0;
	assert_int_equal(pv_context_set_custom_policy(ctx, pick_last, &seen), 0);
	assert_int_equal(pv_context_set_custom_policy(ctx, NULL, NULL), PV_EINVAL);
	assert_int_equal(pv_context_set_policy(ctx, PV_POLICY_FIRST_AVAILABLE), 0);
	assert_int_equal(pv_context_set_custom_policy(ctx, NULL, NULL), 0);
	assert_int_equal(pv_context_set_policy(ctx, PV_POLICY_CUSTOM), PV_EINVAL);
	pv_context_free(ctx);
}

static void test_criteria_min_success_rate_applies_after_min_samples(void **state)
{
	(void)state;
	pv_context *ctx = ctx_with(PV_POLICY_FIRST_AVAILABLE);
	give(ctx, sim("a", "{\"script\": [\"fail*4\"]}"), 1);
	give(ctx, sim("b", NULL), 1);
	pv_criteria c = {.min_success_rate = 90, .min_samples = 4};
	assert_int_equal(pv_context_set_criteria(ctx, &c), 0);
	run_on(ctx, "a", 3);
	char got[8];
	assert_int_equal(pv_context_select(ctx, &hc, got, sizeof got), 0);
	assert_string_equal(got, "a"); /* 0 % but 3 samples < 4: not judged yet */
	run_on(ctx, "a", 1);
	picks(ctx, 2, got);
	assert_string_equal(got, "bb"); /* 0 % over 4 samples: excluded */
	pv_context_free(ctx);
}

static void test_criteria_max_response_time_excludes_slow(void **state)
{
	(void)state;
	pv_context *ctx = ctx_with(PV_POLICY_FIRST_AVAILABLE);
	give(ctx, sim("a", "{\"latency\": {\"mean_ms\": 500}}"), 1);
	give(ctx, sim("b", "{\"latency\": {\"mean_ms\": 5}}"), 1);
	pv_criteria c = {.max_response_time_ms = 100, .min_samples = 2};
	pv_context_set_criteria(ctx, &c);
	run_on(ctx, "a", 2);
	char got[8];
	picks(ctx, 2, got);
	assert_string_equal(got, "bb");
	pv_context_set_criteria(ctx, NULL);
	picks(ctx, 1, got);
	assert_string_equal(got, "a");
	pv_context_free(ctx);
}

static void test_criteria_required_capabilities_exclude_and_prefer(void **state)
{
	(void)state;
	pv_context *ctx = ctx_with(PV_POLICY_ROUND_ROBIN);
	give(ctx, sim("a", "{\"features\": {\"gpu\": true}}"), 1);
	give(ctx, sim("b", "{\"operations\": [\"health_check\"]}"), 1);
	give(ctx, sim("c", "{\"features\": {\"gpu\": true}}"), 1);
	give(ctx, sim("d", NULL), 1);
	char got[16];
	pv_criteria c = {.required_operations = PV_OP_BIT(PV_OP_CREATE_INSTANCES)};
	pv_context_set_criteria(ctx, &c);
	picks(ctx, 6, got);
	assert_null(strchr(got, 'b'));

	json_t *gpu = json_pack("[s]", "gpu");
	pv_criteria g = {.required_features = gpu};
	pv_context_set_criteria(ctx, &g);
	json_decref(gpu); /* the context keeps its own copy */
	picks(ctx, 6, got);
	for (int i = 0; i < 6; i++)
		assert_true(got[i] == 'a' || got[i] == 'c');

	const char *excl[] = {"a", "c"};
	pv_criteria e = {.exclude = excl, .n_exclude = 2};
	pv_context_set_criteria(ctx, &e);
	picks(ctx, 6, got);
	assert_null(strchr(got, 'a'));
	assert_null(strchr(got, 'c'));

	const char *pref[] = {"d"};
	pv_criteria p = {.prefer = pref, .n_prefer = 1};
	pv_context_set_criteria(ctx, &p);
	picks(ctx, 4, got);
	assert_string_equal(got, "dddd");
	pv_criteria bad = {.min_success_rate = 120};
	assert_int_equal(pv_context_set_criteria(ctx, &bad), PV_EINVAL);
	assert_non_null(strstr(pv_error_last(), "min_success_rate"));
	pv_context_free(ctx);
}

static void test_criteria_require_healthy_skips_known_unhealthy(void **state)
{
	(void)state;
	pv_context *ctx = ctx_with(PV_POLICY_ROUND_ROBIN);
	pv_strategy *a = sim("a", NULL);
	give(ctx, a, 1);
	give(ctx, sim("b", NULL), 1);
	pv_criteria c = {.require_healthy = true};
	pv_context_set_criteria(ctx, &c);
	char got[8];
	picks(ctx, 4, got);
	assert_non_null(strchr(got, 'a')); /* healthy passes */
	pv_sim_set_healthy(a, 0);
	pv_context_refresh_health(ctx, true);
	picks(ctx, 4, got);
	assert_string_equal(got, "bbbb");
	pv_context_free(ctx);
}

int main(void)
{
	pv_log_set_level(PV_LOG_OFF);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_policy_names_parse_both_ways),
		cmocka_unit_test(test_first_available_skips_strategies_that_cannot_serve),
		cmocka_unit_test(test_round_robin_cycles_in_order),
		cmocka_unit_test(test_weighted_round_robin_is_smooth_for_5_1_1),
		cmocka_unit_test(test_least_connections_avoids_busy_strategy),
		cmocka_unit_test(test_fastest_response_picks_lowest_ewma_and_tries_new_first),
		cmocka_unit_test(test_highest_success_rate_prefers_reliable),
		cmocka_unit_test(test_capability_based_picks_most_capable),
		cmocka_unit_test(test_health_based_skips_unhealthy),
		cmocka_unit_test(test_health_based_knows_health_before_the_first_pick),
		cmocka_unit_test(test_weighted_round_robin_require_healthy_skips_the_sick_from_the_first_pick),
		cmocka_unit_test(test_round_robin_checks_no_health),
		cmocka_unit_test(test_random_is_seeded_and_spreads_evenly),
		cmocka_unit_test(test_performance_based_trades_rate_against_latency),
		cmocka_unit_test(test_custom_policy_callback_chooses),
		cmocka_unit_test(test_custom_policy_without_a_callback_is_an_error),
		cmocka_unit_test(test_criteria_min_success_rate_applies_after_min_samples),
		cmocka_unit_test(test_criteria_max_response_time_excludes_slow),
		cmocka_unit_test(test_criteria_required_capabilities_exclude_and_prefer),
		cmocka_unit_test(test_criteria_require_healthy_skips_known_unhealthy),
	};
	return cmocka_run_group_tests_name("select", tests, setup, teardown);
}
