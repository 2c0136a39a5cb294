/*
 * test_balancer.c - the load-balancing strategy: configuration, every
 * algorithm's distribution (seeded, exact where the algorithm is exact),
 * consistent hashing across processes, run-time weights and membership,
 * stats, state and result metadata. Health, caps and concurrency are in
 * test_balancer_health.c.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>
#include "test_balancer_support.h"

static const char *const ABC[] = {"a", "b", "c"};
static char self_path[4096]; /* this program, resolved at start (valgrind-safe) */

static pv_strategy *three_sims(const pv_balancer_config *cfg, const double *w, const pv_clock *clk)
{
	pv_strategy *kids[3] = {t_sim("a", NULL, clk), t_sim("b", NULL, clk), t_sim("c", NULL, clk)};
	return t_lb(kids, w, 3, cfg, clk);
}

/* ---- configuration ---------------------------------------------------- */

static void test_config_from_json_reads_every_field(void **state)
{
	(void)state;
	json_t *j = json_loads("{\"algorithm\": \"adaptive\", \"health_check_mode\": \"hybrid\","
			       " \"max_connections_per_strategy\": 50, \"weight_adjustment_factor\": 0.2,"
			       " \"health_check_interval_seconds\": 5, \"unhealthy_threshold\": 4,"
			       " \"recovery_threshold\": 3, \"seed\": 9,"
			       " \"weights\": {\"aws\": 0.6, \"p1\": 0.4}}",
			       0, NULL);
	pv_balancer_config c;
	assert_int_equal(pv_balancer_config_from_json(j, &c), 0);
	assert_int_equal(c.algorithm, PV_LB_ADAPTIVE);
	assert_int_equal(c.health_check_mode, PV_LB_HEALTH_HYBRID);
	assert_int_equal(c.max_connections_per_strategy, 50);
	assert_true(c.weight_adjustment_factor == 0.2);
	assert_true(c.health_check_interval_seconds == 5);
	assert_int_equal(c.unhealthy_threshold, 4);
	assert_int_equal(c.recovery_threshold, 3);
	assert_int_equal(c.seed, 9);
	assert_true(json_number_value(json_object_get(c.weights, "aws")) == 0.6);
	json_t *back = pv_balancer_config_to_json(&c);
	assert_string_equal(json_string_value(json_object_get(back, "algorithm")), "adaptive");
	assert_true(json_equal(json_object_get(back, "weights"), json_object_get(j, "weights")));
	json_decref(back);
	pv_balancer_config_clear(&c);
	json_decref(j);
}

static void expect_config_error(const char *json, const char *needle)
{
	json_t *j = json_loads(json, 0, NULL);
	assert_non_null(j);
	pv_balancer_config c;
	pv_balancer_config_default(&c);
	assert_int_equal(pv_balancer_config_from_json(j, &c), PV_EINVAL);
	if (!strstr(pv_error_last(), needle))
		fail_msg("error '%s' does not mention '%s'", pv_error_last(), needle);
	assert_null(c.weights);
	json_decref(j);
}

static void test_config_rejects_unknown_keys_and_bad_values_naming_the_field(void **state)
{
	(void)state;
	expect_config_error("{\"algoritm\": \"random\"}", "algoritm");
	expect_config_error("{\"algorithm\": \"fastest\"}", "weighted_round_robin");
	expect_config_error("{\"health_check_mode\": \"sometimes\"}", "hybrid");
	expect_config_error("{\"max_connections_per_strategy\": -1}", "max_connections_per_strategy");
	expect_config_error("{\"weight_adjustment_factor\": 0}", "weight_adjustment_factor");
	expect_config_error("{\"weight_adjustment_factor\": 1.5}", "weight_adjustment_factor");
	expect_config_error("{\"health_check_interval_seconds\": 0}", "health_check_interval_seconds");
	expect_config_error("{\"unhealthy_threshold\": 0}", "unhealthy_threshold");
	expect_config_error("{\"recovery_threshold\": 1001}", "recovery_threshold");
	expect_config_error("{\"weights\": {\"a\": -1}}", "weights.a");
	expect_config_error("{\"weights\": [1, 2]}", "weights");
	expect_config_error("{\"seed\": \"x\"}", "seed");
	expect_config_error("{\"weights\": {\"a\": 1}, \"bogus\": 1}", "bogus"); /* frees weights */
}

static void test_enum_names_round_trip_and_unknown_lists_valid_values(void **state)
{
	(void)state;
	for (int a = 0; a < PV_LB_ALGORITHM_COUNT; a++) {
		pv_lb_algorithm back;
		assert_int_equal(pv_lb_algorithm_parse(pv_lb_algorithm_name((pv_lb_algorithm)a), &back), 0);
		assert_int_equal(back, a);
	}
	for (int m = 0; m < PV_LB_HEALTH_MODE_COUNT; m++) {
		pv_lb_health_mode back;
		assert_int_equal(pv_lb_health_mode_parse(pv_lb_health_mode_name((pv_lb_health_mode)m), &back), 0);
		assert_int_equal(back, m);
	}
	pv_lb_algorithm a;
	assert_int_equal(pv_lb_algorithm_parse("HASH_BASED", &a), 0);
	assert_int_equal(a, PV_LB_HASH_BASED);
	assert_int_equal(pv_lb_algorithm_parse("nope", &a), PV_EINVAL);
	assert_non_null(strstr(pv_error_last(), "least_response_time"));
}

static void test_new_rejects_bad_weights_duplicates_and_unknown_weight_names(void **state)
{
	(void)state;
	pv_strategy *a = t_sim("a", NULL, NULL), *a2 = t_sim("a", NULL, NULL), *lb = NULL;
	pv_strategy *kids[2] = {a, a2};
	assert_int_equal(pv_balancer_new(&lb, "lb", kids, NULL, 2, NULL, NULL), PV_EEXISTS);
	double bad[1] = {-1};
	assert_int_equal(pv_balancer_new(&lb, "lb", kids, bad, 1, NULL, NULL), PV_EINVAL);
	pv_balancer_config c;
	pv_balancer_config_default(&c);
	c.weights = json_pack("{s:f}", "zz", 1.0);
	assert_int_equal(pv_balancer_new(&lb, "lb", kids, NULL, 1, &c, NULL), PV_EINVAL);
	assert_non_null(strstr(pv_error_last(), "weights.zz"));
	pv_balancer_config_clear(&c);
	c.unhealthy_threshold = 0;
	assert_int_equal(pv_balancer_new(&lb, "lb", kids, NULL, 1, &c, NULL), PV_EINVAL);
	assert_non_null(strstr(pv_error_last(), "unhealthy_threshold"));
	assert_null(lb);
	pv_strategy_unref(a);
	pv_strategy_unref(a2);
}

static void test_config_weights_apply_by_name(void **state)
{
	(void)state;
	json_t *j = json_loads("{\"algorithm\": \"weighted_round_robin\","
			       " \"weights\": {\"a\": 0.6, \"c\": 0.1}}", 0, NULL);
	pv_balancer_config c;
	assert_int_equal(pv_balancer_config_from_json(j, &c), 0);
	json_decref(j);
	double w[3] = {1, 0.3, 1}; /* b keeps its array weight; a and c are overridden */
	pv_strategy *lb = three_sims(&c, w, NULL);
	pv_balancer_config_clear(&c);
	long counts[3];
	t_count(lb, ABC, 3, 1000, counts);
	assert_int_equal(counts[0], 600);
	assert_int_equal(counts[1], 300);
	assert_int_equal(counts[2], 100);
	pv_strategy_unref(lb);
}

/* ---- algorithms ------------------------------------------------------- */

static void test_round_robin_visits_children_in_order(void **state)
{
	(void)state;
	pv_balancer_config c = t_cfg(PV_LB_ROUND_ROBIN);
	pv_strategy *lb = three_sims(&c, NULL, NULL);
	char who[64];
	for (int i = 0; i < 9; i++) {
		assert_true(t_run(lb, who, sizeof who));
		assert_string_equal(who, ABC[i % 3]);
	}
	pv_strategy_unref(lb);
}

static void test_weighted_round_robin_matches_weights_exactly_every_cycle(void **state)
{
	(void)state;
	pv_balancer_config c = t_cfg(PV_LB_WEIGHTED_ROUND_ROBIN);
	double w[3] = {0.5, 0.3, 0.2}; /* cycle of 10: 5, 3, 2 */
	pv_strategy *lb = three_sims(&c, w, NULL);
	char who[64], prev[64] = "";
	int run = 0, longest = 0;
	for (int cycle = 0; cycle < 50; cycle++) {
		long counts[3] = {0, 0, 0};
		for (int i = 0; i < 10; i++) {
			t_run(lb, who, sizeof who);
			counts[t_index(ABC, 3, who)]++;
			run = strcmp(who, prev) == 0 ? run + 1 : 1;
			longest = run > longest ? run : longest;
			snprintf(prev, sizeof prev, "%s", who);
		}
		assert_int_equal(counts[0], 5);
		assert_int_equal(counts[1], 3);
		assert_int_equal(counts[2], 2);
	}
	/* Smooth: the heaviest child never gets a burst longer than 2. */
	assert_in_range(longest, 1, 2);
	pv_strategy_unref(lb);
}

static void test_weighted_random_is_within_one_percent_over_100k_picks(void **state)
{
	(void)state;
	pv_balancer_config c = t_cfg(PV_LB_WEIGHTED_RANDOM);
	double w[3] = {6, 3, 1};
	pv_strategy *lb = three_sims(&c, w, NULL);
	long counts[3];
	t_count(lb, ABC, 3, 100000, counts);
	assert_in_range(counts[0], 59000, 61000);
	assert_in_range(counts[1], 29000, 31000);
	assert_in_range(counts[2], 9000, 11000);
	pv_strategy_unref(lb);
}

static void test_random_is_uniform_and_repeatable_with_a_seed(void **state)
{
	(void)state;
	long counts[2][3];
	char seq[2][200];
	for (int k = 0; k < 2; k++) {
		pv_balancer_config c = t_cfg(PV_LB_RANDOM);
		pv_strategy *lb = three_sims(&c, NULL, NULL);
		char who[64];
		for (int i = 0; i < 199; i++) {
			t_run(lb, who, sizeof who);
			seq[k][i] = who[0];
		}
		seq[k][199] = '\0';
		t_count(lb, ABC, 3, 30000, counts[k]);
		pv_strategy_unref(lb);
	}
	assert_string_equal(seq[0], seq[1]);
	for (int i = 0; i < 3; i++)
		assert_in_range(counts[0][i], 9500, 10500);
}

static void test_least_connections_spreads_ties_instead_of_list_order(void **state)
{
	(void)state;
	pv_balancer_config c = t_cfg(PV_LB_LEAST_CONNECTIONS);
	pv_strategy *lb = three_sims(&c, NULL, NULL);
	long counts[3];
	t_count(lb, ABC, 3, 3000, counts); /* sequential: every pick is a tie at 0 */
	for (int i = 0; i < 3; i++)
		assert_in_range(counts[i], 900, 1100);
	pv_strategy_unref(lb);
}

static void test_least_response_time_tries_unmeasured_first_then_the_fastest(void **state)
{
	(void)state;
	pv_manual_clock *mc = pv_manual_clock_new(1);
	const pv_clock *clk = pv_manual_clock_get(mc);
	pv_strategy *kids[3] = {
		t_sim("a", "{\"latency\": {\"mean_ms\": 5}}", clk),
		t_sim("b", "{\"latency\": {\"mean_ms\": 1}}", clk),
		t_sim("c", "{\"latency\": {\"mean_ms\": 9}}", clk),
	};
	pv_balancer_config c = t_cfg(PV_LB_LEAST_RESPONSE_TIME);
	pv_strategy *lb = t_lb(kids, NULL, 3, &c, clk);
	char who[64];
	int seen[3] = {0, 0, 0};
	for (int i = 0; i < 3; i++) {
		t_run(lb, who, sizeof who);
		seen[t_index(ABC, 3, who)]++;
	}
	assert_int_equal(seen[0] + seen[1] + seen[2], 3);
	assert_true(seen[0] == 1 && seen[1] == 1 && seen[2] == 1);
	for (int i = 0; i < 20; i++) {
		t_run(lb, who, sizeof who);
		assert_string_equal(who, "b");
	}
	/* b slows down past a: traffic moves to a once b's EWMA passes 5 ms. */
	pv_sim_set_latency_ms(kids[1], 50);
	int to_a = 0;
	for (int i = 0; i < 40; i++) {
		t_run(lb, who, sizeof who);
		to_a += strcmp(who, "a") == 0;
	}
	assert_true(to_a >= 35);
	pv_strategy_unref(lb);
	pv_manual_clock_free(mc);
}

/* ---- consistent hashing ------------------------------------------------- */

#define HASH_KIDS 10
#define HASH_KEYS 5000

static pv_strategy *hash_balancer(size_t n)
{
	pv_strategy *kids[HASH_KIDS];
	char name[16];
	for (size_t i = 0; i < n; i++) {
		snprintf(name, sizeof name, "node-%u", (unsigned)i);
		kids[i] = t_sim(name, NULL, NULL);
	}
	pv_balancer_config c = t_cfg(PV_LB_HASH_BASED);
	return t_lb(kids, NULL, n, &c, NULL);
}

/* Which child answers routing key "user-<i>". */
static void route_key(pv_strategy *lb, int i, char *who, size_t size)
{
	char key[32];
	snprintf(key, sizeof key, "user-%d", i);
	json_t *ctx = json_pack("{s:s}", "routing_key", key);
	pv_operation op = {.type = PV_OP_HEALTH_CHECK, .context = ctx};
	pv_result r = PV_RESULT_INIT;
	pv_strategy_execute(lb, &op, &r, NULL);
	snprintf(who, size, "%s", r.provider);
	pv_result_clear(&r);
	json_decref(ctx);
}

static void test_hash_routes_a_key_to_the_same_strategy_every_time(void **state)
{
	(void)state;
	pv_strategy *lb = hash_balancer(HASH_KIDS);
	char a[64], b[64];
	long per[HASH_KIDS] = {0};
	for (int i = 0; i < HASH_KEYS; i++) {
		route_key(lb, i, a, sizeof a);
		route_key(lb, i, b, sizeof b);
		assert_string_equal(a, b);
		per[atoi(a + 5)]++;
	}
	for (int k = 0; k < HASH_KIDS; k++) /* about 500 each */
		assert_in_range(per[k], 380, 620);
	/* Without a routing key: the type and parameters decide, stably. */
	json_t *p = json_pack("{s:s}", "template_id", "t1");
	pv_operation op = {.type = PV_OP_GET_INSTANCE_STATUS, .params = p};
	pv_result r1 = PV_RESULT_INIT, r2 = PV_RESULT_INIT;
	pv_strategy_execute(lb, &op, &r1, NULL);
	pv_strategy_execute(lb, &op, &r2, NULL);
	assert_string_equal(r1.provider, r2.provider);
	pv_result_clear(&r1);
	pv_result_clear(&r2);
	json_decref(p);
	pv_strategy_unref(lb);
}

/* Run by the re-executed test binary: prints the child for every key. */
static int hash_child_main(void)
{
	pv_strategy *kids[HASH_KIDS];
	char name[16], who[64];
	for (size_t i = 0; i < HASH_KIDS; i++) {
		snprintf(name, sizeof name, "node-%u", (unsigned)i);
		pv_sim_new(&kids[i], name, NULL, NULL);
	}
	pv_balancer_config c;
	pv_balancer_config_default(&c);
	c.algorithm = PV_LB_HASH_BASED;
	pv_strategy *lb;
	if (pv_balancer_new(&lb, "lb", kids, NULL, HASH_KIDS, &c, NULL) ||
	    pv_strategy_initialize(lb))
		return 1;
	for (size_t i = 0; i < HASH_KIDS; i++)
		pv_strategy_unref(kids[i]);
	for (int i = 0; i < HASH_KEYS; i++) {
		route_key(lb, i, who, sizeof who);
		printf("%s\n", who);
	}
	pv_strategy_unref(lb);
	return 0;
}

static void test_hash_routes_keys_identically_in_another_process(void **state)
{
	(void)state;
	int fd[2];
	assert_int_equal(pipe(fd), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) { /* a fresh process image: nothing shared but the program */
		dup2(fd[1], 1);
		close(fd[0]);
		close(fd[1]);
		execl(self_path, "test_balancer", "--hash-child", (char *)NULL);
		_exit(127);
	}
	close(fd[1]);
	FILE *in = fdopen(fd[0], "r");
	pv_strategy *lb = hash_balancer(HASH_KIDS);
	char line[64], who[64];
	int same = 0;
	for (int i = 0; i < HASH_KEYS && fgets(line, sizeof line, in); i++) {
		line[strcspn(line, "\n")] = '\0';
		route_key(lb, i, who, sizeof who);
		same += strcmp(line, who) == 0;
	}
	fclose(in);
	int status;
	waitpid(pid, &status, 0);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	assert_int_equal(same, HASH_KEYS);
	pv_strategy_unref(lb);
}

static void test_hash_removing_one_of_n_moves_about_one_nth_of_keys(void **state)
{
	(void)state;
	pv_strategy *lb = hash_balancer(HASH_KIDS);
	static char before[HASH_KEYS][16];
	for (int i = 0; i < HASH_KEYS; i++)
		route_key(lb, i, before[i], sizeof before[i]);
	assert_int_equal(pv_balancer_remove(lb, "node-3"), 0);
	int moved = 0, moved_needlessly = 0;
	char who[64];
	for (int i = 0; i < HASH_KEYS; i++) {
		route_key(lb, i, who, sizeof who);
		assert_string_not_equal(who, "node-3");
		if (strcmp(who, before[i]) != 0) {
			moved++;
			moved_needlessly += strcmp(before[i], "node-3") != 0;
		}
	}
	/* 1/N = 10 %: the keys of node-3, plus Maglev's small extra churn. */
	assert_in_range(moved, HASH_KEYS * 8 / 100, HASH_KEYS * 13 / 100);
	assert_true(moved_needlessly < HASH_KEYS * 3 / 100);
	pv_strategy_unref(lb);
}

/* ---- adaptive ----------------------------------------------------------- */

static void test_adaptive_shifts_traffic_from_a_slow_strategy_and_back(void **state)
{
	(void)state;
	pv_manual_clock *mc = pv_manual_clock_new(1);
	const pv_clock *clk = pv_manual_clock_get(mc);
	pv_strategy *kids[3] = {
		t_sim("a", "{\"latency\": {\"mean_ms\": 10}}", clk),
		t_sim("b", "{\"latency\": {\"mean_ms\": 10}}", clk),
		t_sim("c", "{\"latency\": {\"mean_ms\": 10}}", clk),
	};
	pv_strategy *slow = kids[2];
	pv_balancer_config c = t_cfg(PV_LB_ADAPTIVE);
	c.weight_adjustment_factor = 0.2;
	pv_strategy *lb = t_lb(kids, NULL, 3, &c, clk);
	long counts[3];
	t_count(lb, ABC, 3, 3000, counts);
	assert_in_range(counts[2], 850, 1150); /* even while all are alike */

	pv_sim_set_latency_ms(slow, 100);
	t_count(lb, ABC, 3, 3000, counts); /* adjusting */
	t_count(lb, ABC, 3, 3000, counts);
	assert_true(counts[2] < 300); /* under 10 % */
	json_t *st = pv_balancer_strategy_stats(lb);
	double cw = json_number_value(json_object_get(json_object_get(st, "c"), "current_weight"));
	assert_true(cw < 0.2 && cw >= 0.05);
	json_decref(st);

	pv_sim_set_latency_ms(slow, 10);
	t_count(lb, ABC, 3, 20000, counts); /* recovering */
	t_count(lb, ABC, 3, 3000, counts);
	assert_in_range(counts[2], 850, 1150);
	pv_strategy_unref(lb);
	pv_manual_clock_free(mc);
}

static void test_adaptive_sends_less_to_a_failing_strategy(void **state)
{
	(void)state;
	pv_strategy *kids[3] = {t_sim("a", NULL, NULL), t_sim("b", NULL, NULL),
				t_sim("c", "{\"seed\": 3, \"failure_rate\": 0.5}", NULL)};
	pv_balancer_config c = t_cfg(PV_LB_ADAPTIVE);
	c.health_check_mode = PV_LB_HEALTH_DISABLED; /* isolate adaptive from ejection */
	pv_strategy *lb = t_lb(kids, NULL, 3, &c, NULL);
	long counts[3];
	t_count(lb, ABC, 3, 3000, counts);
	t_count(lb, ABC, 3, 6000, counts);
	assert_true(counts[2] < 6000 / 6); /* well under its equal third */
	assert_true(counts[2] > 0);        /* but still measured */
	pv_strategy_unref(lb);
}

/* ---- timing -------------------------------------------------------------- */

typedef struct counting_clock {
	pv_clock clock;
	const pv_clock *inner;
	int reads;
} counting_clock;

static uint64_t counting_now(void *user)
{
	counting_clock *c = user;
	c->reads++;
	return pv_clock_now(c->inner);
}

static void counting_sleep(void *user, uint64_t ns)
{
	counting_clock *c = user;
	pv_clock_sleep(c->inner, ns);
}

/* The balancer returns its child's result, latency included, so the kernel
 * reads the clock around it only when there is a deadline to check; the
 * latency reported is still the child's, and a passed deadline still stops
 * the operation before any child runs. */
static void test_balancer_is_timed_by_its_child_and_checks_deadlines(void **state)
{
	(void)state;
	pv_manual_clock *mc = pv_manual_clock_new(1000);
	counting_clock cc = {{counting_now, counting_sleep, &cc}, pv_manual_clock_get(mc), 0};
	pv_strategy *kids[2] = {t_sim("a", "{\"latency\": {\"mean_ms\": 4}}", &cc.clock),
				t_sim("b", "{\"latency\": {\"mean_ms\": 4}}", &cc.clock)};
	pv_balancer_config c = t_cfg(PV_LB_ROUND_ROBIN);
	pv_strategy *lb = t_lb(kids, NULL, 2, &c, &cc.clock);
	pv_operation op = {.type = PV_OP_HEALTH_CHECK};
	pv_result r;

	pv_strategy_execute(lb, &op, &r, &cc.clock);
	int untimed = cc.reads;
	assert_true(r.success);
	assert_true(r.latency_ns >= 3 * PV_NS_PER_MS && r.latency_ns <= 5 * PV_NS_PER_MS);
	pv_result_clear(&r);

	cc.reads = 0;
	op.deadline_ns = pv_clock_now(cc.inner) + 60 * PV_NS_PER_S;
	pv_strategy_execute(lb, &op, &r, &cc.clock);
	assert_true(r.success);
	assert_int_equal(cc.reads, untimed + 1); /* the deadline check */
	pv_result_clear(&r);

	op.deadline_ns = 1; /* long past */
	pv_strategy_execute(lb, &op, &r, &cc.clock);
	assert_false(r.success);
	assert_string_equal(r.error_code, PV_ERR_TIMEOUT);
	assert_string_equal(r.provider, "lb");
	pv_result_clear(&r);
	json_t *st = pv_balancer_strategy_stats(lb);
	json_int_t reqs = json_integer_value(json_object_get(json_object_get(st, "a"), "requests")) +
			  json_integer_value(json_object_get(json_object_get(st, "b"), "requests"));
	assert_int_equal(reqs, 2); /* the third never reached a child */
	json_decref(st);
	pv_strategy_unref(lb);
	pv_manual_clock_free(mc);
}

/* ---- run time ------------------------------------------------------------ */

static void test_set_weight_add_and_remove_change_the_rotation(void **state)
{
	(void)state;
	pv_balancer_config c = t_cfg(PV_LB_WEIGHTED_ROUND_ROBIN);
	pv_strategy *kids[2] = {t_sim("a", NULL, NULL), t_sim("b", NULL, NULL)};
	pv_strategy *lb = t_lb(kids, NULL, 2, &c, NULL);
	assert_int_equal(pv_balancer_set_weight(lb, "b", 3), 0);
	long counts[3];
	t_count(lb, ABC, 2, 400, counts);
	assert_int_equal(counts[0], 100);
	assert_int_equal(counts[1], 300);

	pv_strategy *cc = t_sim("c", NULL, NULL);
	assert_int_equal(pv_balancer_add(lb, cc, 4), 0);
	assert_int_equal(pv_balancer_add(lb, cc, 1), PV_EEXISTS);
	pv_strategy_unref(cc);
	assert_int_equal(pv_balancer_count(lb), 3);
	t_count(lb, ABC, 3, 800, counts);
	assert_int_equal(counts[0], 100);
	assert_int_equal(counts[1], 300);
	assert_int_equal(counts[2], 400);

	assert_int_equal(pv_balancer_remove(lb, "a"), 0);
	assert_int_equal(pv_balancer_remove(lb, "a"), PV_ENOTFOUND);
	assert_int_equal(pv_balancer_set_weight(lb, "zz", 1), PV_ENOTFOUND);
	assert_int_equal(pv_balancer_set_weight(lb, "b", -2), PV_EINVAL);
	assert_int_equal(pv_balancer_set_weight(lb, "b", 0), 0); /* drained */
	t_count(lb, ABC, 3, 100, counts);
	assert_int_equal(counts[2], 100);
	pv_strategy_unref(lb);
}

static void test_children_added_to_a_running_balancer_are_initialized(void **state)
{
	(void)state;
	pv_strategy *lb = t_lb(NULL, NULL, 0, NULL, NULL); /* initialized */
	pv_strategy *ok = t_gate_new_initable("ok", 0), *bad = t_gate_new_initable("bad", 1);
	t_gate_open(ok);
	assert_false(pv_strategy_is_initialized(ok));
	assert_int_equal(pv_balancer_add(lb, ok, 1), 0);
	assert_true(pv_strategy_is_initialized(ok));
	assert_int_equal(pv_balancer_add(lb, bad, 1), PV_ESTATE);
	assert_int_equal(pv_balancer_count(lb), 1);
	char who[64];
	assert_true(t_run(lb, who, sizeof who));
	assert_string_equal(who, "ok");
	pv_strategy_unref(ok);
	pv_strategy_unref(bad);
	pv_strategy_unref(lb);
}

static void test_no_children_answers_no_strategy_available(void **state)
{
	(void)state;
	pv_strategy *lb = t_lb(NULL, NULL, 0, NULL, NULL);
	pv_operation op = {.type = PV_OP_HEALTH_CHECK};
	pv_result r = PV_RESULT_INIT;
	pv_strategy_execute(lb, &op, &r, NULL);
	assert_false(r.success);
	assert_string_equal(r.error_code, PV_ERR_NO_STRATEGY_AVAILABLE);
	pv_result_clear(&r);
	pv_strategy *a = t_sim("a", NULL, NULL);
	assert_int_equal(pv_balancer_add(lb, a, 1), 0);
	pv_strategy_unref(a);
	assert_true(t_run(lb, NULL, 0));
	pv_strategy_unref(lb);
}

/* ---- stats, state, metadata ---------------------------------------------- */

static void test_strategy_stats_report_the_spec_fields(void **state)
{
	(void)state;
	pv_strategy *kids[2] = {t_sim("a", "{\"script\": [\"fail:THROTTLED\"]}", NULL),
				t_sim("b", NULL, NULL)};
	pv_balancer_config c = t_cfg(PV_LB_ROUND_ROBIN);
	pv_strategy *lb = t_lb(kids, NULL, 2, &c, NULL);
	for (int i = 0; i < 4; i++)
		t_run(lb, NULL, 0);
	json_t *st = pv_balancer_strategy_stats(lb);
	json_t *a = json_object_get(st, "a");
	assert_int_equal(json_integer_value(json_object_get(a, "active_connections")), 0);
	assert_true(json_real_value(json_object_get(a, "success_rate")) == 50.0);
	assert_true(json_is_number(json_object_get(a, "average_response_time")));
	assert_int_equal(json_integer_value(json_object_get(a, "requests")), 2);
	assert_int_equal(json_integer_value(json_object_get(a, "failures")), 1);
	assert_true(json_is_true(json_object_get(a, "healthy")));
	assert_true(json_real_value(json_object_get(a, "weight")) == 1.0);
	assert_true(json_is_number(json_object_get(a, "current_weight")));
	json_decref(st);
	json_t *full = pv_strategy_stats(lb);
	assert_string_equal(json_string_value(json_object_get(full, "algorithm")), "round_robin");
	assert_non_null(json_object_get(json_object_get(full, "strategies"), "b"));
	json_decref(full);
	pv_strategy_unref(lb);
}

static void test_state_restores_rotation_and_ejections_in_a_new_instance(void **state)
{
	(void)state;
	pv_balancer_config c = t_cfg(PV_LB_ROUND_ROBIN);
	c.unhealthy_threshold = 1;
	pv_strategy *kids[3] = {t_sim("a", NULL, NULL), t_sim("b", NULL, NULL),
				t_sim("c", "{\"script\": [\"fail\"]}", NULL)};
	pv_strategy *lb = t_lb(kids, NULL, 3, &c, NULL);
	char who[64], next[3][64];
	for (int i = 0; i < 4; i++) /* a b c(fails: ejected) b */
		t_run(lb, who, sizeof who);
	json_t *saved = pv_strategy_state_save(lb);
	char *text = json_dumps(saved, JSON_COMPACT);
	json_decref(saved);
	for (int i = 0; i < 3; i++) /* what this process would do next */
		t_run(lb, next[i], sizeof next[i]);
	pv_strategy_unref(lb);

	/* The next short-lived process. */
	pv_strategy *kids2[3] = {t_sim("a", NULL, NULL), t_sim("b", NULL, NULL), t_sim("c", NULL, NULL)};
	lb = t_lb(kids2, NULL, 3, &c, NULL);
	json_t *loaded = json_loads(text, 0, NULL);
	free(text);
	assert_int_equal(pv_strategy_state_load(lb, loaded), 0);
	json_decref(loaded);
	json_t *st = pv_balancer_strategy_stats(lb);
	assert_true(json_is_false(json_object_get(json_object_get(st, "c"), "healthy")));
	/* The EWMA latency came back (a fresh child has none). */
	assert_true(json_is_number(json_object_get(json_object_get(st, "b"), "ewma_response_time")));
	assert_int_equal(json_integer_value(json_object_get(json_object_get(st, "b"), "requests")), 0);
	json_decref(st);
	for (int i = 0; i < 3; i++) { /* continues the same rotation, skipping c */
		t_run(lb, who, sizeof who);
		assert_string_equal(who, next[i]);
		assert_string_not_equal(who, "c");
	}
	json_t *bad = json_pack("{s:i}", "version", 7);
	assert_int_equal(pv_strategy_state_load(lb, bad), PV_EINVAL);
	json_decref(bad);
	pv_strategy_unref(lb);
}

static void test_result_metadata_names_algorithm_and_chosen_strategy(void **state)
{
	(void)state;
	pv_balancer_config c = t_cfg(PV_LB_ROUND_ROBIN);
	pv_strategy *inner_kids[1] = {t_sim("leaf", NULL, NULL)};
	pv_strategy *inner = NULL;
	assert_int_equal(pv_balancer_new(&inner, "inner", inner_kids, NULL, 1, &c, NULL), 0);
	pv_strategy_unref(inner_kids[0]);
	c.algorithm = PV_LB_RANDOM;
	pv_strategy *outer_kids[1] = {inner};
	pv_strategy *lb = t_lb(outer_kids, NULL, 1, &c, NULL);
	pv_operation op = {.type = PV_OP_HEALTH_CHECK};
	pv_result r = PV_RESULT_INIT;
	pv_strategy_execute(lb, &op, &r, NULL);
	assert_true(r.success);
	assert_string_equal(r.provider, "leaf"); /* the leaf that answered */
	json_t *meta = pv_result_metadata(&r);
	json_t *bal = json_object_get(meta, "balancer");
	assert_string_equal(json_string_value(json_object_get(bal, "name")), "lb");
	assert_string_equal(json_string_value(json_object_get(bal, "algorithm")), "random");
	assert_string_equal(json_string_value(json_object_get(bal, "strategy")), "inner");
	json_decref(meta);
	pv_result_clear(&r);
	pv_strategy_unref(lb);
}

static const char *meta_strategy(pv_result *r)
{
	return json_string_value(json_object_get(json_object_get(pv_result_meta(r), "balancer"), "strategy"));
}

static void test_metadata_of_live_results_is_never_shared_or_changed(void **state)
{
	(void)state;
	pv_balancer_config c = t_cfg(PV_LB_ROUND_ROBIN);
	pv_strategy *lb = three_sims(&c, NULL, NULL);
	pv_operation op = {.type = PV_OP_HEALTH_CHECK};
	pv_result r[3] = {PV_RESULT_INIT, PV_RESULT_INIT, PV_RESULT_INIT};
	for (int i = 0; i < 3; i++) /* all three held at once */
		pv_strategy_execute(lb, &op, &r[i], NULL);
	assert_ptr_not_equal(pv_result_meta(&r[0]), pv_result_meta(&r[1]));
	assert_ptr_not_equal(pv_result_meta(&r[1]), pv_result_meta(&r[2]));
	for (int i = 0; i < 3; i++)
		assert_string_equal(meta_strategy(&r[i]), ABC[i]);
	/* A caller that changes its metadata keeps its change... */
	pv_result_meta_set(&r[0], "mine", json_true());
	pv_strategy_execute(lb, &op, &r[1], NULL); /* clears r[1] first, then runs on a */
	assert_true(json_is_true(json_object_get(pv_result_meta(&r[0]), "mine")));
	assert_string_equal(meta_strategy(&r[0]), "a");
	assert_string_equal(meta_strategy(&r[1]), "a");
	/* ...and a released object comes back clean. */
	for (int i = 0; i < 3; i++)
		pv_result_clear(&r[i]);
	for (int i = 0; i < 8; i++) {
		pv_strategy_execute(lb, &op, &r[0], NULL);
		assert_int_equal(json_object_size(pv_result_meta(&r[0])), 1);
		assert_string_equal(meta_strategy(&r[0]), ABC[(i + 1) % 3]);
		pv_result_clear(&r[0]);
	}
	c.result_metadata = false;
	pv_strategy *bare = three_sims(&c, NULL, NULL);
	pv_strategy_execute(bare, &op, &r[0], NULL);
	assert_null(pv_result_meta(&r[0]));
	pv_result_clear(&r[0]);
	pv_strategy_unref(bare);
	pv_strategy_unref(lb);
}

static void test_capabilities_and_health_cover_the_children(void **state)
{
	(void)state;
	pv_strategy *kids[2] = {t_sim("a", "{\"operations\": [\"health_check\"]}", NULL),
				t_sim("b", "{\"operations\": [\"create_instances\"], \"healthy\": false}", NULL)};
	pv_strategy *lb = t_lb(kids, NULL, 2, NULL, NULL);
	pv_capabilities caps;
	assert_int_equal(pv_strategy_capabilities(lb, &caps), 0);
	assert_string_equal(caps.type, "balancer");
	assert_true(pv_capabilities_supports(&caps, PV_OP_HEALTH_CHECK));
	assert_true(pv_capabilities_supports(&caps, PV_OP_CREATE_INSTANCES));
	assert_false(pv_capabilities_supports(&caps, PV_OP_TERMINATE_INSTANCES));
	pv_capabilities_clear(&caps);
	pv_health h;
	assert_int_equal(pv_strategy_health(lb, &h), 0);
	assert_true(h.healthy); /* one of two */
	assert_non_null(strstr(h.message, "1 of 2"));
	pv_health_clear(&h);
	assert_true(pv_balancer_is(lb));
	assert_false(pv_balancer_is(NULL));
	pv_strategy_unref(lb);
}

int main(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], "--hash-child") == 0)
		return hash_child_main();
	ssize_t len = readlink("/proc/self/exe", self_path, sizeof self_path - 1);
	self_path[len > 0 ? len : 0] = '\0';
	pv_log_set_level(PV_LOG_OFF);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_config_from_json_reads_every_field),
		cmocka_unit_test(test_config_rejects_unknown_keys_and_bad_values_naming_the_field),
		cmocka_unit_test(test_enum_names_round_trip_and_unknown_lists_valid_values),
		cmocka_unit_test(test_new_rejects_bad_weights_duplicates_and_unknown_weight_names),
		cmocka_unit_test(test_config_weights_apply_by_name),
		cmocka_unit_test(test_round_robin_visits_children_in_order),
		cmocka_unit_test(test_weighted_round_robin_matches_weights_exactly_every_cycle),
		cmocka_unit_test(test_weighted_random_is_within_one_percent_over_100k_picks),
		cmocka_unit_test(test_random_is_uniform_and_repeatable_with_a_seed),
		cmocka_unit_test(test_least_connections_spreads_ties_instead_of_list_order),
		cmocka_unit_test(test_least_response_time_tries_unmeasured_first_then_the_fastest),
		cmocka_unit_test(test_hash_routes_a_key_to_the_same_strategy_every_time),
		cmocka_unit_test(test_hash_routes_keys_identically_in_another_process),
		cmocka_unit_test(test_hash_removing_one_of_n_moves_about_one_nth_of_keys),
		cmocka_unit_test(test_adaptive_shifts_traffic_from_a_slow_strategy_and_back),
		cmocka_unit_test(test_adaptive_sends_less_to_a_failing_strategy),
		cmocka_unit_test(test_balancer_is_timed_by_its_child_and_checks_deadlines),
		cmocka_unit_test(test_set_weight_add_and_remove_change_the_rotation),
		cmocka_unit_test(test_children_added_to_a_running_balancer_are_initialized),
		cmocka_unit_test(test_no_children_answers_no_strategy_available),
		cmocka_unit_test(test_strategy_stats_report_the_spec_fields),
		cmocka_unit_test(test_state_restores_rotation_and_ejections_in_a_new_instance),
		cmocka_unit_test(test_result_metadata_names_algorithm_and_chosen_strategy),
		cmocka_unit_test(test_metadata_of_live_results_is_never_shared_or_changed),
		cmocka_unit_test(test_capabilities_and_health_cover_the_children),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
