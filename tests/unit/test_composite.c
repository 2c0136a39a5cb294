/*
 * test_composite.c - the composite strategy on reads: config, each mode
 * with each aggregation policy, the gate at its boundaries, majority
 * agreement, runtime changes, health and capabilities. Machine creation
 * is in test_composite_create.c.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "provisio/composite.h"
#include "composite_stub.h"

/* ---- helpers ---------------------------------------------------------------- */

static pv_strategy *sim(const char *name, const char *json)
{
	json_t *cfg = json ? json_loads(json, 0, NULL) : NULL;
	pv_strategy *s = NULL;
	assert_int_equal(pv_sim_new(&s, name, cfg, NULL), 0);
	json_decref(cfg);
	return s;
}

/* A composite over `kids` (their references are handed over). */
static pv_strategy *composite_of(pv_strategy **kids, size_t n, const char *cfg_json)
{
	pv_composite_config cfg;
	json_t *j = cfg_json ? json_loads(cfg_json, 0, NULL) : NULL;
	assert_int_equal(pv_composite_config_from_json(j, &cfg), 0);
	json_decref(j);
	pv_strategy *c = NULL;
	assert_int_equal(pv_composite_new(&c, "comp", kids, NULL, n, &cfg, NULL), 0);
	assert_int_equal(pv_strategy_initialize(c), 0);
	pv_composite_config_clear(&cfg);
	for (size_t i = 0; i < n; i++)
		pv_strategy_unref(kids[i]);
	return c;
}

static void run(pv_strategy *s, pv_op_type type, json_t *params, pv_result *r)
{
	pv_operation op = {.type = type, .params = params};
	pv_strategy_execute(s, &op, r, NULL);
	json_decref(params);
}

static json_t *meta(pv_result *r, const char *key)
{
	return json_object_get(pv_result_meta(r), key);
}

/* The "children" metadata entry of child `name`. */
static json_t *child_entry(pv_result *r, const char *name)
{
	size_t i;
	json_t *e;
	json_array_foreach(meta(r, "children"), i, e)
		if (strcmp(json_string_value(json_object_get(e, "child")), name) == 0)
			return e;
	return NULL;
}

/* ---- config ---------------------------------------------------------------- */

static void test_config_defaults_and_enum_names_round_trip(void **state)
{
	(void)state;
	pv_composite_config cfg;
	pv_composite_config_default(&cfg);
	assert_int_equal(cfg.mode, PV_COMPOSITE_PARALLEL);
	assert_int_equal(cfg.aggregation_policy, PV_AGG_MERGE_ALL);
	assert_int_equal(cfg.max_concurrent_operations, 10);
	assert_true(cfg.timeout_seconds == 30.0);
	assert_true(cfg.failure_threshold == 1.0);
	assert_int_equal(cfg.min_success_count, 1);
	assert_false(cfg.require_all_success);
	for (int m = 0; m < PV_COMPOSITE_MODE_COUNT; m++) {
		pv_composite_mode back;
		assert_int_equal(pv_composite_mode_parse(pv_composite_mode_name(m), &back), 0);
		assert_int_equal(back, m);
	}
	for (int a = 0; a < PV_AGG_COUNT; a++) {
		pv_aggregation back;
		assert_int_equal(pv_aggregation_parse(pv_aggregation_name(a), &back), 0);
		assert_int_equal(back, a);
	}
	pv_aggregation a;
	assert_int_equal(pv_aggregation_parse("MAJORITY_WINS", &a), 0);
	assert_int_equal(a, PV_AGG_MAJORITY_WINS);
	assert_int_equal(pv_aggregation_parse("quorum", &a), PV_EINVAL);
	assert_non_null(strstr(pv_error_last(), "best_performance"));
	pv_composite_mode m;
	assert_int_equal(pv_composite_mode_parse("broadcast", &m), PV_EINVAL);
	assert_non_null(strstr(pv_error_last(), "redundant"));
}

static void test_config_from_json_reads_every_field(void **state)
{
	(void)state;
	json_t *j = json_loads("{\"mode\": \"redundant\", \"aggregation_policy\": \"majority_wins\","
			       " \"max_concurrent_operations\": 4, \"timeout_seconds\": 2.5,"
			       " \"failure_threshold\": 0.3, \"min_success_count\": 2,"
			       " \"require_all_success\": true, \"healthy_fraction\": 0.75,"
			       " \"weights\": {\"a\": 0.6, \"b\": 0.4}, \"volatile_fields\": [\"t\"]}",
			       0, NULL);
	pv_composite_config cfg;
	assert_int_equal(pv_composite_config_from_json(j, &cfg), 0);
	assert_int_equal(cfg.mode, PV_COMPOSITE_REDUNDANT);
	assert_int_equal(cfg.aggregation_policy, PV_AGG_MAJORITY_WINS);
	assert_int_equal(cfg.max_concurrent_operations, 4);
	assert_true(cfg.timeout_seconds == 2.5);
	assert_true(cfg.failure_threshold == 0.3);
	assert_int_equal(cfg.min_success_count, 2);
	assert_true(cfg.require_all_success);
	assert_true(cfg.healthy_fraction == 0.75);
	assert_true(json_number_value(json_object_get(cfg.weights, "a")) == 0.6);
	json_t *back = pv_composite_config_to_json(&cfg);
	pv_composite_config again;
	assert_int_equal(pv_composite_config_from_json(back, &again), 0);
	assert_int_equal(again.min_success_count, 2);
	assert_int_equal(again.mode, PV_COMPOSITE_REDUNDANT);
	pv_composite_config_clear(&again);
	json_decref(back);
	pv_composite_config_clear(&cfg);
	json_decref(j);
}

static void test_config_unknown_key_and_bad_values_name_the_field(void **state)
{
	(void)state;
	const char *bad[][2] = {
		{"{\"modes\": \"parallel\"}", "modes"},
		{"{\"mode\": \"broadcast\"}", "mode"},
		{"{\"aggregation_policy\": 3}", "aggregation_policy"},
		{"{\"max_concurrent_operations\": 0}", "max_concurrent_operations"},
		{"{\"max_concurrent_operations\": 2000}", "max_concurrent_operations"},
		{"{\"timeout_seconds\": 0}", "timeout_seconds"},
		{"{\"failure_threshold\": 1.5}", "failure_threshold"},
		{"{\"min_success_count\": 0}", "min_success_count"},
		{"{\"require_all_success\": 1}", "require_all_success"},
		{"{\"healthy_fraction\": -0.1}", "healthy_fraction"},
		{"{\"weights\": {\"a\": 0}}", "weights.a"},
		{"{\"volatile_fields\": [1]}", "volatile_fields"},
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		json_t *j = json_loads(bad[i][0], 0, NULL);
		pv_composite_config cfg;
		assert_int_equal(pv_composite_config_from_json(j, &cfg), PV_EINVAL);
		assert_non_null(strstr(pv_error_last(), bad[i][1]));
		assert_null(cfg.weights); /* owns nothing after an error */
		json_decref(j);
	}
}

static void test_new_rejects_bad_weight_duplicate_child_and_bad_config(void **state)
{
	(void)state;
	pv_strategy *kids[2] = {sim("a", NULL), sim("a", NULL)};
	pv_strategy *c = NULL;
	assert_int_equal(pv_composite_new(&c, "comp", kids, NULL, 2, NULL, NULL), PV_EEXISTS);
	assert_null(c);
	double w[1] = {-1};
	assert_int_equal(pv_composite_new(&c, "comp", kids, w, 1, NULL, NULL), PV_EINVAL);
	assert_non_null(strstr(pv_error_last(), "weight"));
	pv_strategy *holes[1] = {NULL};
	assert_int_equal(pv_composite_new(&c, "comp", holes, NULL, 1, NULL, NULL), PV_EINVAL);
	assert_non_null(strstr(pv_error_last(), "NULL"));
	pv_composite_config cfg;
	pv_composite_config_default(&cfg);
	cfg.failure_threshold = 2;
	assert_int_equal(pv_composite_new(&c, "comp", kids, NULL, 1, &cfg, NULL), PV_EINVAL);
	assert_non_null(strstr(pv_error_last(), "failure_threshold"));
	pv_strategy_unref(kids[0]);
	pv_strategy_unref(kids[1]);
}

/* ---- merge_all ----------------------------------------------------------------- */

static void test_parallel_merge_all_keeps_each_child_and_never_overwrites(void **state)
{
	(void)state;
	pv_strategy *kids[2] = {
		&stub_new("east", "{\"region\": \"us-east\", \"version\": 2, \"zones\": [\"a\"]}")->base,
		&stub_new("west", "{\"region\": \"us-west\", \"version\": 2, \"zones\": [\"b\", \"c\"]}")->base,
	};
	pv_strategy *c = composite_of(kids, 2, NULL);
	pv_result r;
	run(c, PV_OP_GET_AVAILABLE_TEMPLATES, NULL, &r);
	assert_true(r.success);
	assert_string_equal(r.provider, "comp"); /* several answered */
	assert_int_equal(json_integer_value(json_object_get(r.data, "version")), 2);
	assert_int_equal(json_array_size(json_object_get(r.data, "zones")), 3);
	assert_null(json_object_get(r.data, "region")); /* they disagree: neither wins */
	assert_string_equal(json_string_value(json_array_get(json_object_get(r.data, "conflicting_keys"), 0)),
			    "region");
	json_t *by = json_object_get(r.data, "by_child");
	assert_string_equal(json_string_value(json_object_get(json_object_get(by, "east"), "region")), "us-east");
	assert_string_equal(json_string_value(json_object_get(json_object_get(by, "west"), "region")), "us-west");
	assert_int_equal(json_array_size(meta(&r, "providers")), 2);
	assert_int_equal(r.attempts, 2);
	pv_result_clear(&r);
	pv_strategy_unref(c);
}

static void test_merge_all_concatenates_instances_with_their_provider(void **state)
{
	(void)state;
	pv_strategy *a = sim("a", NULL), *b = sim("b", NULL);
	pv_result r;
	run(a, PV_OP_CREATE_INSTANCES, json_pack("{s:i}", "count", 2), &r);
	pv_result_clear(&r);
	run(b, PV_OP_CREATE_INSTANCES, json_pack("{s:i}", "count", 3), &r);
	pv_result_clear(&r);
	pv_strategy *kids[2] = {a, b};
	pv_strategy *c = composite_of(kids, 2, "{\"mode\": \"sequential\"}");
	run(c, PV_OP_DESCRIBE_RESOURCE_INSTANCES, NULL, &r);
	assert_true(r.success);
	json_t *list = json_object_get(r.data, "instances");
	assert_int_equal(json_array_size(list), 5);
	int from_a = 0, from_b = 0;
	size_t i;
	json_t *e;
	json_array_foreach(list, i, e) {
		const char *p = json_string_value(json_object_get(e, "provider"));
		from_a += strcmp(p, "a") == 0;
		from_b += strcmp(p, "b") == 0;
	}
	assert_int_equal(from_a, 2);
	assert_int_equal(from_b, 3);
	pv_result_clear(&r);
	pv_strategy_unref(c);
}

/* ---- first_success ------------------------------------------------------------ */

static void test_sequential_first_success_skips_failures_and_stops(void **state)
{
	(void)state;
	pv_strategy *a = sim("a", "{\"script\": [\"fail:THROTTLED\"]}");
	pv_strategy *b = sim("b", NULL), *d = sim("d", NULL);
	pv_strategy *kids[3] = {pv_strategy_ref(a), pv_strategy_ref(b), pv_strategy_ref(d)};
	pv_strategy *c = composite_of(kids, 3,
				      "{\"mode\": \"sequential\", \"aggregation_policy\": \"first_success\"}");
	pv_result r;
	run(c, PV_OP_HEALTH_CHECK, NULL, &r);
	assert_true(r.success);
	assert_string_equal(r.provider, "b");
	assert_int_equal(r.attempts, 2);
	assert_string_equal(json_string_value(json_object_get(child_entry(&r, "a"), "error_code")), "THROTTLED");
	assert_true(json_is_true(json_object_get(child_entry(&r, "d"), "cancelled")));
	assert_int_equal(pv_sim_calls(d, PV_OP_COUNT), 0);
	pv_result_clear(&r);

	/* a works again: the first child answers alone, its result unchanged. */
	run(c, PV_OP_HEALTH_CHECK, NULL, &r);
	assert_true(r.success);
	assert_string_equal(r.provider, "a");
	assert_null(pv_result_meta(&r));
	assert_int_equal(pv_sim_calls(b, PV_OP_COUNT), 1);
	pv_result_clear(&r);
	pv_strategy_unref(c);
	pv_strategy_unref(a);
	pv_strategy_unref(b);
	pv_strategy_unref(d);
}

static void test_parallel_first_success_takes_completion_order(void **state)
{
	(void)state;
	atomic_int fast_done = 0;
	stub *slow = stub_new("slow", "{\"who\": \"slow\"}");
	stub *fast = stub_new("fast", "{\"who\": \"fast\"}");
	slow->wait_for = &fast_done; /* listed first, but answers only after fast */
	fast->signal = &fast_done;
	pv_strategy *kids[2] = {&slow->base, &fast->base};
	pv_strategy *c = composite_of(kids, 2, "{\"aggregation_policy\": \"first_success\"}");
	pv_result r;
	run(c, PV_OP_GET_AVAILABLE_TEMPLATES, NULL, &r);
	assert_true(r.success);
	assert_string_equal(r.provider, "fast");
	assert_string_equal(json_string_value(json_object_get(r.data, "who")), "fast");
	pv_result_clear(&r);
	pv_strategy_unref(c); /* waits for slow to finish on the pool */
}

/* ---- best_performance ----------------------------------------------------------- */

static void check_best_performance(const char *mode)
{
	stub *s30 = stub_new("s30", "{\"v\": 30}"), *s10 = stub_new("s10", "{\"v\": 10}");
	stub *s20 = stub_new("s20", "{\"v\": 20}"), *bad = stub_failing("bad", "EXECUTION_ERROR");
	s30->report_latency_ns = 30 * PV_NS_PER_MS;
	s10->report_latency_ns = 10 * PV_NS_PER_MS;
	s20->report_latency_ns = 20 * PV_NS_PER_MS;
	bad->report_latency_ns = 1 * PV_NS_PER_MS; /* fastest, but failed */
	pv_strategy *kids[4] = {&s30->base, &bad->base, &s10->base, &s20->base};
	char cfg[128];
	snprintf(cfg, sizeof cfg, "{\"mode\": \"%s\", \"aggregation_policy\": \"best_performance\"}", mode);
	pv_strategy *c = composite_of(kids, 4, cfg);
	pv_result r;
	run(c, PV_OP_GET_AVAILABLE_TEMPLATES, NULL, &r);
	assert_true(r.success);
	assert_string_equal(r.provider, "s10");
	assert_int_equal(json_integer_value(json_object_get(r.data, "v")), 10);
	pv_result_clear(&r);
	pv_strategy_unref(c);
}

static void test_best_performance_picks_lowest_latency_success(void **state)
{
	(void)state;
	check_best_performance("parallel");
	check_best_performance("sequential");
}

/* ---- majority_wins ---------------------------------------------------------------- */

static void test_majority_agrees_ignoring_volatile_fields_and_key_order(void **state)
{
	(void)state;
	pv_strategy *kids[3] = {
		&stub_new("a", "{\"price\": 5, \"zone\": \"z1\", \"latency_ms\": 3}")->base,
		&stub_new("b", "{\"zone\": \"z1\", \"price\": 5, \"latency_ms\": 9, \"timings\": {\"x\": 1}}")->base,
		&stub_new("c", "{\"price\": 7, \"zone\": \"z1\"}")->base,
	};
	pv_strategy *c = composite_of(kids, 3,
				      "{\"mode\": \"redundant\", \"aggregation_policy\": \"majority_wins\","
				      " \"min_success_count\": 2}");
	pv_result r;
	run(c, PV_OP_GET_AVAILABLE_TEMPLATES, NULL, &r);
	assert_true(r.success);
	assert_int_equal(json_integer_value(json_object_get(r.data, "price")), 5);
	json_t *agreement = meta(&r, "agreement");
	assert_int_equal(json_integer_value(json_object_get(agreement, "votes")), 2);
	assert_int_equal(json_integer_value(json_object_get(agreement, "voters")), 3);
	assert_int_equal(json_array_size(json_object_get(agreement, "children")), 2);
	pv_result_clear(&r);
	pv_strategy_unref(c);
}

static void test_majority_disagreement_is_no_majority_with_every_answer(void **state)
{
	(void)state;
	pv_strategy *kids[3] = {
		&stub_new("a", "{\"price\": 5}")->base,
		&stub_new("b", "{\"price\": 6}")->base,
		&stub_new("c", "{\"price\": 7}")->base,
	};
	pv_strategy *c = composite_of(kids, 3,
				      "{\"mode\": \"redundant\", \"aggregation_policy\": \"majority_wins\","
				      " \"min_success_count\": 2}");
	pv_result r;
	run(c, PV_OP_GET_AVAILABLE_TEMPLATES, NULL, &r);
	assert_false(r.success);
	assert_string_equal(r.error_code, PV_ERR_NO_MAJORITY);
	json_t *answers = meta(&r, "answers");
	assert_int_equal(json_object_size(answers), 3);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(answers, "b"), "price")), 6);
	pv_result_clear(&r);
	pv_strategy_unref(c);
}

static void test_majority_tie_is_no_majority(void **state)
{
	(void)state;
	pv_strategy *kids[4] = {
		&stub_new("a", "{\"v\": 1}")->base, &stub_new("b", "{\"v\": 1}")->base,
		&stub_new("c", "{\"v\": 2}")->base, &stub_new("d", "{\"v\": 2}")->base,
	};
	pv_strategy *c = composite_of(kids, 4,
				      "{\"mode\": \"redundant\", \"aggregation_policy\": \"majority_wins\","
				      " \"min_success_count\": 2}");
	pv_result r;
	run(c, PV_OP_GET_AVAILABLE_TEMPLATES, NULL, &r);
	assert_false(r.success);
	assert_string_equal(r.error_code, PV_ERR_NO_MAJORITY);
	assert_non_null(strstr(pv_result_message(&r), "tie"));
	pv_result_clear(&r);
	pv_strategy_unref(c);
}

/* ---- every mode with every policy -------------------------------------------------- */

static const char *const modes[] = {"parallel", "sequential", "redundant"};
static const char *const policies[] = {"merge_all", "first_success", "best_performance",
				       "majority_wins"};

static void test_every_mode_and_policy_answers_a_read(void **state)
{
	(void)state;
	for (size_t m = 0; m < 3; m++) {
		for (size_t p = 0; p < 4; p++) {
			pv_strategy *kids[3] = {sim("a", NULL), sim("b", NULL), sim("c", NULL)};
			char cfg[160];
			snprintf(cfg, sizeof cfg, "{\"mode\": \"%s\", \"aggregation_policy\": \"%s\"}",
				 modes[m], policies[p]);
			pv_strategy *c = composite_of(kids, 3, cfg);
			pv_result r;
			run(c, PV_OP_GET_AVAILABLE_TEMPLATES, NULL, &r);
			assert_true(r.success);
			size_t templates = json_array_size(json_object_get(r.data, "templates"));
			if (p == 0) { /* merge_all: every child's template, kept per child */
				assert_int_equal(templates, 3);
				assert_int_equal(json_object_size(json_object_get(r.data, "by_child")), 3);
				assert_string_equal(r.provider, "comp");
			} else { /* one child's answer, from a leaf */
				assert_int_equal(templates, 1);
				assert_non_null(strchr("abc", r.provider[0]));
				assert_int_equal(r.provider[1], '\0');
			}
			pv_result_clear(&r);
			pv_strategy_unref(c);
		}
	}
}

/* ---- the gate ---------------------------------------------------------------------- */

/* Runs health_check over `n` sims of which the first `failing` fail. */
static void gate_case(const char *cfg, int n, int failing, pv_result *r)
{
	pv_strategy *kids[8];
	char name[16];
	for (int i = 0; i < n; i++) {
		snprintf(name, sizeof name, "s%d", i);
		kids[i] = sim(name, i < failing ? "{\"failure_rate\": 1}" : NULL);
	}
	pv_strategy *c = composite_of(kids, (size_t)n, cfg);
	run(c, PV_OP_HEALTH_CHECK, NULL, r);
	pv_strategy_unref(c);
}

static void test_gate_failure_threshold_at_and_around_boundary(void **state)
{
	(void)state;
	const char *cfg = "{\"failure_threshold\": 0.5}";
	pv_result r;
	gate_case(cfg, 4, 1, &r); /* 25 % */
	assert_true(r.success);
	pv_result_clear(&r);
	gate_case(cfg, 4, 2, &r); /* 50 %: at the threshold, not above */
	assert_true(r.success);
	pv_result_clear(&r);
	gate_case(cfg, 4, 3, &r); /* 75 % */
	assert_false(r.success);
	assert_string_equal(r.error_code, PV_ERR_FAILURE_THRESHOLD_EXCEEDED);
	assert_int_equal(r.error_class, PV_CLASS_TRANSIENT); /* the children's class */
	assert_int_equal(json_array_size(meta(&r, "children")), 4);
	pv_result_clear(&r);
	gate_case("{\"failure_threshold\": 0}", 3, 0, &r);
	assert_true(r.success);
	pv_result_clear(&r);
	gate_case("{\"failure_threshold\": 0}", 3, 1, &r);
	assert_string_equal(r.error_code, PV_ERR_FAILURE_THRESHOLD_EXCEEDED);
	pv_result_clear(&r);
}

static void test_gate_min_success_count_at_and_around_boundary(void **state)
{
	(void)state;
	const char *cfg = "{\"min_success_count\": 2}";
	pv_result r;
	gate_case(cfg, 3, 0, &r); /* 3 successes */
	assert_true(r.success);
	pv_result_clear(&r);
	gate_case(cfg, 3, 1, &r); /* exactly 2 */
	assert_true(r.success);
	pv_result_clear(&r);
	gate_case(cfg, 3, 2, &r); /* 1 */
	assert_false(r.success);
	assert_string_equal(r.error_code, PV_ERR_INSUFFICIENT_SUCCESS);
	pv_result_clear(&r);
	gate_case(cfg, 3, 3, &r); /* none */
	assert_string_equal(r.error_code, PV_ERR_ALL_STRATEGIES_FAILED);
	pv_result_clear(&r);
}

static void test_gate_require_all_success(void **state)
{
	(void)state;
	pv_result r;
	gate_case("{\"require_all_success\": true}", 3, 0, &r);
	assert_true(r.success);
	pv_result_clear(&r);
	gate_case("{\"require_all_success\": true}", 3, 1, &r);
	assert_false(r.success);
	assert_string_equal(r.error_code, PV_ERR_NOT_ALL_SUCCEEDED);
	pv_result_clear(&r);
	/* The gate runs before the policy: first_success waits for everyone. */
	gate_case("{\"require_all_success\": true, \"aggregation_policy\": \"first_success\"}", 3, 2, &r);
	assert_string_equal(r.error_code, PV_ERR_NOT_ALL_SUCCEEDED);
	pv_result_clear(&r);
}

static void test_single_child_failure_passes_through_unchanged(void **state)
{
	(void)state;
	pv_strategy *kids[1] = {sim("only", "{\"script\": [\"fail:CAPACITY:capacity\"]}")};
	pv_strategy *c = composite_of(kids, 1, NULL);
	pv_result r;
	run(c, PV_OP_HEALTH_CHECK, NULL, &r);
	assert_false(r.success);
	assert_string_equal(r.error_code, "CAPACITY");
	assert_int_equal(r.error_class, PV_CLASS_CAPACITY);
	assert_string_equal(r.provider, "only");
	pv_result_clear(&r);
	pv_strategy_unref(c);
}

static void test_no_children_and_unsupported_operation(void **state)
{
	(void)state;
	pv_strategy *c = composite_of(NULL, 0, NULL);
	pv_result r;
	run(c, PV_OP_HEALTH_CHECK, NULL, &r);
	assert_string_equal(r.error_code, PV_ERR_NO_STRATEGY_AVAILABLE);
	pv_result_clear(&r);
	pv_strategy *only = sim("h", "{\"operations\": [\"health_check\"]}");
	assert_int_equal(pv_composite_add(c, only, 1), 0);
	run(c, PV_OP_GET_AVAILABLE_TEMPLATES, NULL, &r);
	assert_string_equal(r.error_code, PV_ERR_OPERATION_NOT_SUPPORTED);
	pv_result_clear(&r);
	pv_strategy_unref(only);
	pv_strategy_unref(c);
}

/* ---- id-addressed operations ------------------------------------------------------------ */

static void test_terminate_through_composite_ignores_children_that_do_not_know_ids(void **state)
{
	(void)state;
	pv_strategy *a = sim("a", NULL), *b = sim("b", NULL);
	pv_result r;
	run(a, PV_OP_CREATE_INSTANCES, json_pack("{s:i}", "count", 2), &r);
	json_t *ids = json_incref(json_object_get(r.data, "instance_ids"));
	pv_result_clear(&r);
	pv_strategy *kids[2] = {pv_strategy_ref(a), pv_strategy_ref(b)};
	pv_strategy *c = composite_of(kids, 2, "{\"require_all_success\": true}");
	run(c, PV_OP_TERMINATE_INSTANCES, json_pack("{s:O}", "instance_ids", ids), &r);
	assert_true(r.success); /* b's NOT_FOUND is an abstention, not a failure */
	assert_int_equal(json_array_size(json_object_get(r.data, "terminated")), 2);
	assert_int_equal(json_array_size(json_object_get(r.data, "not_found")), 0);
	assert_true(json_is_true(json_object_get(child_entry(&r, "b"), "abstained")));
	assert_int_equal(pv_sim_live_instances(a), 0);
	pv_result_clear(&r);
	run(c, PV_OP_TERMINATE_INSTANCES, json_pack("{s:[s]}", "instance_ids", "nobody-knows"), &r);
	assert_false(r.success);
	assert_string_equal(r.error_code, PV_ERR_NOT_FOUND);
	pv_result_clear(&r);
	json_decref(ids);
	pv_strategy_unref(c);
	pv_strategy_unref(a);
	pv_strategy_unref(b);
}

/* ---- capabilities, health, stats -------------------------------------------------------- */

static void test_capabilities_are_the_union_of_children(void **state)
{
	(void)state;
	pv_strategy *kids[2] = {
		sim("a", "{\"operations\": [\"health_check\"], \"capacity\": 5, \"features\": {\"spot\": true}}"),
		sim("b", "{\"operations\": [\"create_instances\"], \"capacity\": 7, \"features\": {\"gpu\": true}}"),
	};
	pv_strategy *c = composite_of(kids, 2, NULL);
	pv_capabilities caps;
	assert_int_equal(pv_strategy_capabilities(c, &caps), 0);
	assert_string_equal(caps.type, "composite");
	assert_true(pv_capabilities_supports(&caps, PV_OP_HEALTH_CHECK));
	assert_true(pv_capabilities_supports(&caps, PV_OP_CREATE_INSTANCES));
	assert_false(pv_capabilities_supports(&caps, PV_OP_VALIDATE_TEMPLATE));
	json_t *need = json_pack("[s,s]", "spot", "gpu");
	assert_true(pv_capabilities_has_features(&caps, need));
	json_decref(need);
	assert_int_equal(json_integer_value(json_object_get(caps.limitations, "capacity")), 12);
	pv_capabilities_clear(&caps);
	pv_strategy_unref(c);
}

static void test_health_needs_configured_fraction_and_reports_each_child(void **state)
{
	(void)state;
	pv_strategy *a = sim("a", NULL), *b = sim("b", NULL), *d = sim("d", NULL), *e = sim("e", NULL);
	pv_strategy *kids[4] = {pv_strategy_ref(a), pv_strategy_ref(b), pv_strategy_ref(d), pv_strategy_ref(e)};
	pv_strategy *c = composite_of(kids, 4, "{\"healthy_fraction\": 0.5}");
	pv_sim_set_healthy(a, 0);
	pv_sim_set_healthy(b, 0);
	pv_health h;
	assert_int_equal(pv_strategy_health(c, &h), 0);
	assert_true(h.healthy); /* 2 of 4 = 0.5 */
	assert_int_equal(json_integer_value(json_object_get(h.details, "healthy_children")), 2);
	json_t *ch = json_object_get(h.details, "children");
	assert_false(json_is_true(json_object_get(json_object_get(ch, "a"), "healthy")));
	assert_true(json_is_true(json_object_get(json_object_get(ch, "d"), "healthy")));
	pv_health_clear(&h);
	pv_sim_set_healthy(d, 0);
	assert_int_equal(pv_strategy_health(c, &h), 0);
	assert_false(h.healthy); /* 1 of 4 */
	pv_health_clear(&h);
	pv_strategy_unref(c);
	pv_strategy_unref(a);
	pv_strategy_unref(b);
	pv_strategy_unref(d);
	pv_strategy_unref(e);
}

static void test_stats_count_each_child(void **state)
{
	(void)state;
	pv_strategy *kids[2] = {sim("a", NULL), sim("b", "{\"failure_rate\": 1}")};
	pv_strategy *c = composite_of(kids, 2, NULL);
	pv_result r;
	for (int i = 0; i < 3; i++) {
		run(c, PV_OP_HEALTH_CHECK, NULL, &r);
		assert_true(r.success);
		pv_result_clear(&r);
	}
	json_t *st = pv_strategy_stats(c);
	assert_int_equal(json_integer_value(json_object_get(st, "calls")), 3);
	json_t *b = json_array_get(json_object_get(st, "children"), 1);
	assert_string_equal(json_string_value(json_object_get(b, "name")), "b");
	assert_int_equal(json_integer_value(json_object_get(b, "failures")), 3);
	assert_int_equal(json_integer_value(json_object_get(b, "successes")), 0);
	json_decref(st);
	pv_strategy_unref(c);
}

/* ---- runtime changes --------------------------------------------------------------------- */

static void test_add_remove_and_set_weight_at_runtime(void **state)
{
	(void)state;
	pv_strategy *c = composite_of(NULL, 0, NULL);
	pv_strategy *a = sim("a", NULL), *b = sim("b", NULL);
	assert_int_equal(pv_composite_add(c, a, 1), 0);
	assert_int_equal(pv_composite_add(c, b, 2), 0);
	assert_int_equal(pv_composite_add(c, a, 1), PV_EEXISTS);
	assert_int_equal(pv_composite_add(c, c, 1), PV_EINVAL); /* cycle */
	assert_int_equal(pv_composite_add(c, b, 0), PV_EINVAL);
	assert_int_equal(pv_composite_count(c), 2);
	assert_int_equal(pv_composite_set_weight(c, "b", 3.5), 0);
	assert_int_equal(pv_composite_set_weight(c, "zz", 1), PV_ENOTFOUND);
	json_t *list = pv_composite_children(c);
	assert_true(json_real_value(json_object_get(json_array_get(list, 1), "weight")) == 3.5);
	json_decref(list);
	pv_result r;
	run(c, PV_OP_HEALTH_CHECK, NULL, &r);
	assert_true(r.success);
	pv_result_clear(&r);
	assert_int_equal(pv_composite_remove(c, "a"), 0);
	assert_int_equal(pv_composite_remove(c, "a"), PV_ENOTFOUND);
	run(c, PV_OP_HEALTH_CHECK, NULL, &r);
	assert_string_equal(r.provider, "b");
	pv_result_clear(&r);
	assert_int_equal(pv_sim_calls(a, PV_OP_COUNT), 1);
	pv_strategy_unref(a);
	pv_strategy_unref(b);
	pv_strategy_unref(c);
}

static void test_nested_composite_and_cycle_refused(void **state)
{
	(void)state;
	pv_strategy *inner_kids[2] = {sim("a", NULL), sim("b", NULL)};
	pv_strategy *inner = composite_of(inner_kids, 2, NULL);
	pv_strategy *outer_kids[2] = {pv_strategy_ref(inner), sim("c", NULL)};
	pv_strategy *outer = composite_of(outer_kids, 2, NULL);
	assert_int_equal(pv_composite_add(inner, outer, 1), PV_EINVAL);
	pv_result r;
	run(outer, PV_OP_GET_AVAILABLE_TEMPLATES, NULL, &r);
	assert_true(r.success);
	/* 3 leaves, one template each, all kept. */
	assert_int_equal(json_array_size(json_object_get(r.data, "templates")), 3);
	json_t *by = json_object_get(r.data, "by_child");
	assert_non_null(json_object_get(json_object_get(by, "comp"), "by_child"));
	pv_result_clear(&r);
	pv_strategy_unref(outer);
	pv_strategy_unref(inner);
}

typedef struct churn_arg {
	pv_strategy *c;
	int failures;
} churn_arg;

static void *churn_execute(void *p)
{
	churn_arg *a = p;
	for (int i = 0; i < 300; i++) {
		pv_result r;
		run(a->c, PV_OP_HEALTH_CHECK, NULL, &r);
		if (!r.success && strcmp(r.error_code, PV_ERR_NO_STRATEGY_AVAILABLE) != 0)
			a->failures++;
		pv_result_clear(&r);
	}
	return NULL;
}

static void test_children_change_while_calls_run(void **state)
{
	(void)state;
	pv_strategy *kids[1] = {sim("base", NULL)};
	pv_strategy *c = composite_of(kids, 1, "{\"max_concurrent_operations\": 4}");
	pthread_t t[2];
	churn_arg args[2] = {{c, 0}, {c, 0}};
	for (int i = 0; i < 2; i++)
		pthread_create(&t[i], NULL, churn_execute, &args[i]);
	for (int i = 0; i < 200; i++) {
		char name[16];
		snprintf(name, sizeof name, "x%d", i % 4);
		pv_strategy *x = sim(name, NULL);
		if (pv_composite_add(c, x, 1 + i % 3) == PV_EEXISTS)
			pv_composite_remove(c, name);
		pv_composite_set_weight(c, "base", 1 + i % 5);
		pv_strategy_unref(x);
	}
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	assert_int_equal(args[0].failures + args[1].failures, 0);
	pv_strategy_unref(c);
}

/* A replaced roster keeps its block until the composite goes (a lock-free
 * reader may still touch its count), but not its members: a removed child
 * is let go as soon as no call holds the old roster. */
static void test_removed_child_is_let_go_at_once(void **state)
{
	(void)state;
	/* sequential: a parallel call's pool task may still hold the call (and
	 * the member in it) for a moment after the caller has its answer */
	pv_strategy *c = composite_of(NULL, 0, "{\"mode\": \"sequential\"}");
	pv_strategy *a = sim("a", NULL), *b = sim("b", NULL);
	assert_int_equal(pv_composite_add(c, a, 1), 0);
	assert_int_equal(pv_composite_add(c, b, 1), 0);
	pv_result r;
	run(c, PV_OP_HEALTH_CHECK, NULL, &r);
	assert_true(r.success);
	pv_result_clear(&r);
	assert_int_equal(atomic_load(&a->refs), 2); /* ours and its member's */
	assert_int_equal(pv_composite_remove(c, "a"), 0);
	assert_int_equal(atomic_load(&a->refs), 1); /* ours only */
	assert_int_equal(atomic_load(&b->refs), 2);
	run(c, PV_OP_HEALTH_CHECK, NULL, &r);
	assert_string_equal(r.provider, "b");
	pv_result_clear(&r);
	assert_int_equal(pv_sim_calls(a, PV_OP_COUNT), 1);
	pv_strategy_unref(c);
	assert_int_equal(atomic_load(&b->refs), 1);
	pv_strategy_unref(a);
	pv_strategy_unref(b);
}

/* ---- deferred metadata, recycled merges -------------------------------------- */

static void assert_json(json_t *got, const char *want_text)
{
	json_t *want = json_loads(want_text, 0, NULL);
	assert_non_null(want);
	if (!json_equal(got, want)) {
		char *text = json_dumps(got, 0);
		fail_msg("got %s\nwant %s", text, want_text);
	}
	/* same keys in the same order as when it was set at once */
	char *a = json_dumps(got, 0), *b = json_dumps(want, 0);
	assert_string_equal(a, b);
	free(a);
	free(b);
	json_decref(want);
}

static void test_metadata_is_built_when_read_and_reads_as_before(void **state)
{
	(void)state;
	pv_strategy *k[] = {sim("a", NULL), sim("b", NULL), sim("c", NULL)};
	pv_strategy *c = composite_of(k, 3, "{\"mode\": \"sequential\", \"aggregation_policy\": \"merge_all\"}");
	pv_result r = PV_RESULT_INIT;
	run(c, PV_OP_HEALTH_CHECK, NULL, &r);
	assert_true(r.success);
	assert_null(r.priv.meta); /* deferred */
	assert_json(pv_result_meta(&r), "{\"providers\": [\"a\", \"b\", \"c\"], \"composite\": \"comp\", "
					"\"mode\": \"sequential\", \"policy\": \"merge_all\"}");
	pv_result_clear(&r);
	pv_strategy_unref(c);

	pv_strategy *v[] = {sim("a", NULL), sim("b", NULL), sim("c", "{\"script\": [\"fail\"]}")};
	c = composite_of(v, 3, "{\"mode\": \"redundant\", \"aggregation_policy\": \"majority_wins\"}");
	run(c, PV_OP_HEALTH_CHECK, NULL, &r);
	assert_true(r.success);
	json_t *m = pv_result_meta(&r);
	json_t *children = json_incref(json_object_get(m, "children")); /* a failure: detail */
	json_object_del(m, "children");
	assert_json(m, "{\"agreement\": {\"votes\": 2, \"voters\": 2, \"children\": [\"a\", \"b\"]}, "
		       "\"composite\": \"comp\", \"mode\": \"redundant\", \"policy\": \"majority_wins\"}");
	assert_int_equal(json_array_size(children), 3);
	json_decref(children);
	pv_result_clear(&r);
	pv_strategy_unref(c);
}

/* The child whose answer was handed out is listed as it answered. */
static void test_children_list_shows_the_winner_as_it_answered(void **state)
{
	(void)state;
	pv_strategy *k[] = {sim("bad", "{\"script\": [\"fail\"]}"), sim("good", NULL)};
	pv_strategy *c = composite_of(k, 2, "{\"mode\": \"sequential\", \"aggregation_policy\": \"first_success\"}");
	pv_result r = PV_RESULT_INIT;
	run(c, PV_OP_HEALTH_CHECK, NULL, &r);
	assert_true(r.success);
	assert_string_equal(r.provider, "good");
	json_t *bad = child_entry(&r, "bad"), *good = child_entry(&r, "good");
	assert_false(json_is_true(json_object_get(bad, "success")));
	assert_true(json_is_true(json_object_get(good, "success")));
	assert_string_equal(json_string_value(json_object_get(good, "provider")), "good");
	assert_null(json_object_get(good, "error_code"));
	pv_result_clear(&r);
	pv_strategy_unref(c);
}

/* The kernel does not time a composite (PV_STRATEGY_TIMED_BY_CHILD): one
 * child's answer has its latency, an aggregate the composite's own. */
static void test_latency_is_the_answering_childs_or_the_composites(void **state)
{
	(void)state;
	pv_manual_clock *mc = pv_manual_clock_new(PV_NS_PER_S);
	const pv_clock *clk = pv_manual_clock_get(mc);
	for (int merge = 0; merge < 2; merge++) {
		pv_strategy *k[3];
		for (int i = 0; i < 3; i++) {
			json_t *cfg = json_pack("{s:{s:i}}", "latency", "mean_ms", 1000 * (i + 1));
			char name[8];
			snprintf(name, sizeof name, "s%d", i);
			assert_int_equal(pv_sim_new(&k[i], name, cfg, clk), 0);
			json_decref(cfg);
		}
		pv_composite_config cfg;
		pv_composite_config_default(&cfg);
		cfg.mode = PV_COMPOSITE_SEQUENTIAL;
		cfg.aggregation_policy = merge ? PV_AGG_MERGE_ALL : PV_AGG_FIRST_SUCCESS;
		pv_strategy *c = NULL;
		assert_int_equal(pv_composite_new(&c, "comp", k, NULL, 3, &cfg, clk), 0);
		assert_int_equal(pv_strategy_initialize(c), 0);
		pv_result r = PV_RESULT_INIT;
		pv_operation op = {.type = PV_OP_HEALTH_CHECK};
		pv_strategy_execute(c, &op, &r, clk);
		assert_true(r.success);
		assert_int_equal(r.latency_ns, (merge ? 6 : 1) * PV_NS_PER_S); /* 1+2+3 s, or s0's */
		pv_result_clear(&r);
		pv_strategy_unref(c);
		for (int i = 0; i < 3; i++)
			pv_strategy_unref(k[i]);
	}
	pv_manual_clock_free(mc);
}

/* A child known to answer within microseconds runs on the caller's thread
 * (a handoff to the pool costs more than its call); the first call of any
 * child, and a slow child always, run on the pool. */
static void test_parallel_caller_runs_quick_children_itself(void **state)
{
	(void)state;
	stub *quick = stub_new("quick", "{\"q\": 1}"), *slow = stub_new("slow", "{\"s\": 1}");
	quick->report_latency_ns = 1000; /* 1 us: what it says, whatever the machine's load */
	slow->report_latency_ns = 5 * PV_NS_PER_MS; /* well over the inline budget */
	pv_strategy *kids[2] = {&quick->base, &slow->base};
	pv_strategy *c = composite_of(kids, 2, "{\"mode\": \"parallel\"}");
	pthread_t me = pthread_self();
	for (int call = 0; call < 3; call++) {
		pv_result r;
		run(c, PV_OP_GET_AVAILABLE_TEMPLATES, NULL, &r);
		assert_true(r.success);
		assert_int_equal(json_integer_value(json_object_get(r.data, "q")), 1);
		assert_int_equal(json_integer_value(json_object_get(r.data, "s")), 1);
		pthread_t q = atomic_load(&quick->ran_on), sl = atomic_load(&slow->ran_on);
		assert_false(pthread_equal(sl, me));
		if (call == 0)
			assert_false(pthread_equal(q, me)); /* not known yet */
		else
			assert_true(pthread_equal(q, me));
		pv_result_clear(&r);
	}
	pv_strategy_unref(c);
}

typedef struct hammer {
	pv_strategy *c;
	int bad;
} hammer;

static void *hammer_run(void *arg)
{
	hammer *h = arg;
	for (int i = 0; i < 200; i++) {
		pv_result r;
		pv_operation op = {.type = PV_OP_GET_AVAILABLE_TEMPLATES};
		pv_strategy_execute(h->c, &op, &r, NULL);
		json_t *by_child = json_object_get(r.data, "by_child");
		h->bad += !r.success || json_object_size(by_child) != 3;
		pv_result_clear(&r);
	}
	return NULL;
}

/* Many callers at once on children that run inline and on the pool: every
 * call gets every child's answer. */
static void test_parallel_many_callers_mixing_inline_and_pool(void **state)
{
	(void)state;
	stub *a = stub_new("a", "{\"x\": 1}"), *b = stub_new("b", "{\"x\": 1}");
	stub *slow = stub_new("slow", "{\"x\": 1}");
	slow->sleep_ms = 1;
	pv_strategy *kids[3] = {&a->base, &b->base, &slow->base};
	pv_strategy *c = composite_of(kids, 3, "{\"mode\": \"parallel\", \"max_concurrent_operations\": 3}");
	hammer h[8];
	pthread_t t[8];
	for (int i = 0; i < 8; i++) {
		h[i] = (hammer){c, 0};
		pthread_create(&t[i], NULL, hammer_run, &h[i]);
	}
	for (int i = 0; i < 8; i++) {
		pthread_join(t[i], NULL);
		assert_int_equal(h[i].bad, 0);
	}
	assert_int_equal(atomic_load(&slow->calls), 8 * 200);
	assert_int_equal(atomic_load(&a->calls), 8 * 200);
	pv_strategy_unref(c);
}

/* Runs health_check on `c` again and again: a merge given back is refilled,
 * one the caller holds is never touched (a new one answers), one changed by
 * `change` and given back answers as it should; every answer reads `want`. */
static void assert_refilled_only_when_given_back(pv_strategy *c, const char *want,
						 void (*change)(json_t *merged))
{
	pv_result r = PV_RESULT_INIT;
	run(c, PV_OP_HEALTH_CHECK, NULL, &r);
	json_t *first = r.data;
	assert_json(first, want);
	pv_result_clear(&r);
	run(c, PV_OP_HEALTH_CHECK, NULL, &r);
	assert_ptr_equal(r.data, first); /* given back: refilled */
	assert_json(r.data, want);
	json_t *held = json_incref(r.data);
	pv_result_clear(&r);
	run(c, PV_OP_HEALTH_CHECK, NULL, &r);
	assert_ptr_not_equal(r.data, held); /* still held: a new one */
	assert_json(r.data, want);
	change(r.data);
	pv_result_clear(&r); /* given back changed */
	run(c, PV_OP_HEALTH_CHECK, NULL, &r);
	assert_json(r.data, want);
	assert_json(held, want); /* what the caller holds never changed */
	json_decref(held);
	pv_result_clear(&r);
}

static void add_a_child_answer(json_t *merged)
{
	json_object_set_new(json_object_get(merged, "by_child"), "mine", json_true());
}

static void drop_status(json_t *merged) { json_object_del(merged, "status"); }

/* Answers without data (children whose health_check says nothing) merge
 * into {"by_child": ...} alone, refilled as long as the children are the
 * same. */
static void test_keyless_merge_is_refilled_only_when_given_back(void **state)
{
	(void)state;
	pv_strategy *k[] = {&stub_new("a", NULL)->base, &stub_new("b", NULL)->base};
	pv_strategy *c = composite_of(k, 2, "{\"mode\": \"sequential\", \"aggregation_policy\": \"merge_all\"}");
	assert_refilled_only_when_given_back(c, "{\"by_child\": {\"a\": null, \"b\": null}}",
					     add_a_child_answer);
	stub *third = stub_new("c", NULL);
	assert_int_equal(pv_composite_add(c, &third->base, 1.0), 0); /* other children: another shape */
	pv_strategy_unref(&third->base);
	pv_result r = PV_RESULT_INIT;
	run(c, PV_OP_HEALTH_CHECK, NULL, &r);
	assert_json(r.data, "{\"by_child\": {\"a\": null, \"b\": null, \"c\": null}}");
	pv_result_clear(&r);
	pv_strategy_unref(c);
}

/* Sims answer health_check with one shared object: the merge has its keys
 * and each child's answer, and is refilled like a keyless one. */
static void test_merge_of_equal_answers_is_refilled_only_when_given_back(void **state)
{
	(void)state;
	pv_strategy *k[] = {sim("a", NULL), sim("b", NULL), sim("c", NULL)};
	pv_strategy *c = composite_of(k, 3, "{\"mode\": \"sequential\", \"aggregation_policy\": \"merge_all\"}");
	const char *health = "{\"healthy\": true, \"status\": \"healthy\", \"message\": \"healthy\", "
			     "\"latency_ms\": 0.0";
	char want[512];
	snprintf(want, sizeof want, "%s, \"by_child\": {\"a\": %s}, \"b\": %s}, \"c\": %s}}}", health,
		 health, health, health);
	assert_refilled_only_when_given_back(c, want, drop_status);
	pv_result r = PV_RESULT_INIT;
	run(c, PV_OP_HEALTH_CHECK, NULL, &r);
	assert_string_equal(r.provider, "comp"); /* several answered */
	pv_result_clear(&r);
	pv_strategy_unref(c);
}

/* Frozen answers (the sims' shared ones) that come back the same: the kept
 * merge is handed out again as it is, unless the caller changed it before
 * giving it back, even without changing its size: then it is put right. */
static void set_unhealthy(json_t *merged) { json_object_set(merged, "healthy", json_false()); }

static void rename_status(json_t *merged)
{
	json_t *v = json_incref(json_object_get(merged, "status"));
	json_object_del(merged, "status");
	json_object_set_new(merged, "statux", v);
}

static void swap_a_child_answer(json_t *merged)
{
	json_object_set_new(json_object_get(merged, "by_child"), "a", json_string("mine"));
}

static json_int_t merges_reused(pv_strategy *c)
{
	json_t *st = pv_strategy_stats(c);
	json_int_t n = json_integer_value(json_object_get(st, "merges_reused"));
	json_decref(st);
	return n;
}

static void test_merge_of_frozen_answers_is_reused_unless_changed(void **state)
{
	(void)state;
	pv_strategy *k[] = {sim("a", NULL), sim("b", NULL), sim("c", NULL)};
	pv_strategy *c = composite_of(k, 3, "{\"mode\": \"sequential\", \"aggregation_policy\": \"merge_all\"}");
	const char *health = "{\"healthy\": true, \"status\": \"healthy\", \"message\": \"healthy\", "
			     "\"latency_ms\": 0.0";
	char want[512];
	snprintf(want, sizeof want, "%s, \"by_child\": {\"a\": %s}, \"b\": %s}, \"c\": %s}}}", health,
		 health, health, health);
	void (*changes[])(json_t *) = {set_unhealthy, rename_status, swap_a_child_answer};
	for (size_t i = 0; i < sizeof changes / sizeof changes[0]; i++)
		assert_refilled_only_when_given_back(c, want, changes[i]);
	/* handed out again, not refilled: counted (a refill looks the same) */
	pv_result r = PV_RESULT_INIT;
	json_int_t reused = merges_reused(c);
	for (int i = 0; i < 3; i++) {
		run(c, PV_OP_HEALTH_CHECK, NULL, &r);
		assert_json(r.data, want);
		pv_result_clear(&r);
	}
	assert_int_equal(merges_reused(c), reused + 3);
	run(c, PV_OP_HEALTH_CHECK, NULL, &r);
	pv_result_clear(&r);
	pv_sim_set_healthy(k[1], false); /* another answer: merged anew, not the kept one */
	run(c, PV_OP_HEALTH_CHECK, NULL, &r);
	assert_true(r.success);
	assert_json(json_object_get(r.data, "by_child"), "{\"a\": {\"healthy\": true, \"status\": "
			   "\"healthy\", \"message\": \"healthy\", \"latency_ms\": 0.0}, \"c\": "
			   "{\"healthy\": true, \"status\": \"healthy\", \"message\": \"healthy\", "
			   "\"latency_ms\": 0.0}}");
	pv_result_clear(&r);
	pv_sim_set_healthy(k[1], true);
	run(c, PV_OP_HEALTH_CHECK, NULL, &r);
	assert_json(r.data, want);
	pv_result_clear(&r);
	pv_strategy_unref(c);
}

/* Answers of one shape that disagree: the refilled merge carries this
 * call's values and conflicts, never the last call's. */
static void test_merge_of_one_shape_refills_values_and_conflicts_of_this_call(void **state)
{
	(void)state;
	stub *a = stub_new("a", "{\"zone\": \"z1\", \"price\": 5}");
	stub *b = stub_new("b", "{\"zone\": \"z2\", \"price\": 5}");
	pv_strategy *k[] = {&a->base, &b->base};
	pv_strategy *c = composite_of(k, 2, "{\"mode\": \"sequential\", \"aggregation_policy\": \"merge_all\"}");
	pv_result r = PV_RESULT_INIT;
	run(c, PV_OP_GET_AVAILABLE_TEMPLATES, NULL, &r);
	json_t *first = r.data;
	assert_json(first, "{\"price\": 5, \"by_child\": {\"a\": {\"zone\": \"z1\", \"price\": 5}, "
			   "\"b\": {\"zone\": \"z2\", \"price\": 5}}, \"conflicting_keys\": [\"zone\"]}");
	pv_result_clear(&r);

	json_decref(a->data); /* the same conflict, other values */
	a->data = json_pack("{s:s, s:i}", "zone", "z3", "price", 6);
	json_decref(b->data);
	b->data = json_pack("{s:s, s:i}", "zone", "z4", "price", 6);
	run(c, PV_OP_GET_AVAILABLE_TEMPLATES, NULL, &r);
	assert_ptr_equal(r.data, first); /* refilled */
	assert_json(r.data, "{\"price\": 6, \"by_child\": {\"a\": {\"zone\": \"z3\", \"price\": 6}, "
			    "\"b\": {\"zone\": \"z4\", \"price\": 6}}, \"conflicting_keys\": [\"zone\"]}");
	pv_result_clear(&r);

	json_decref(b->data); /* the other key in conflict */
	b->data = json_pack("{s:s, s:i}", "zone", "z3", "price", 7);
	run(c, PV_OP_GET_AVAILABLE_TEMPLATES, NULL, &r);
	assert_json(r.data, "{\"zone\": \"z3\", \"by_child\": {\"a\": {\"zone\": \"z3\", \"price\": 6}, "
			    "\"b\": {\"zone\": \"z3\", \"price\": 7}}, \"conflicting_keys\": [\"price\"]}");
	json_array_set_new(json_object_get(r.data, "conflicting_keys"), 0, json_string("mine"));
	pv_result_clear(&r); /* given back with its conflicts changed */
	run(c, PV_OP_GET_AVAILABLE_TEMPLATES, NULL, &r);
	assert_json(r.data, "{\"zone\": \"z3\", \"by_child\": {\"a\": {\"zone\": \"z3\", \"price\": 6}, "
			    "\"b\": {\"zone\": \"z3\", \"price\": 7}}, \"conflicting_keys\": [\"price\"]}");
	pv_result_clear(&r);

	json_decref(b->data); /* the keys in another order: merged anew, as it always was */
	b->data = json_pack("{s:i, s:s}", "price", 6, "zone", "z3");
	run(c, PV_OP_GET_AVAILABLE_TEMPLATES, NULL, &r);
	assert_json(r.data, "{\"zone\": \"z3\", \"price\": 6, \"by_child\": {\"a\": {\"zone\": \"z3\", "
			    "\"price\": 6}, \"b\": {\"price\": 6, \"zone\": \"z3\"}}}");
	pv_result_clear(&r);
	pv_strategy_unref(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_config_defaults_and_enum_names_round_trip),
		cmocka_unit_test(test_config_from_json_reads_every_field),
		cmocka_unit_test(test_config_unknown_key_and_bad_values_name_the_field),
		cmocka_unit_test(test_new_rejects_bad_weight_duplicate_child_and_bad_config),
		cmocka_unit_test(test_parallel_merge_all_keeps_each_child_and_never_overwrites),
		cmocka_unit_test(test_merge_all_concatenates_instances_with_their_provider),
		cmocka_unit_test(test_sequential_first_success_skips_failures_and_stops),
		cmocka_unit_test(test_parallel_first_success_takes_completion_order),
		cmocka_unit_test(test_best_performance_picks_lowest_latency_success),
		cmocka_unit_test(test_majority_agrees_ignoring_volatile_fields_and_key_order),
		cmocka_unit_test(test_majority_disagreement_is_no_majority_with_every_answer),
		cmocka_unit_test(test_majority_tie_is_no_majority),
		cmocka_unit_test(test_every_mode_and_policy_answers_a_read),
		cmocka_unit_test(test_gate_failure_threshold_at_and_around_boundary),
		cmocka_unit_test(test_gate_min_success_count_at_and_around_boundary),
		cmocka_unit_test(test_gate_require_all_success),
		cmocka_unit_test(test_single_child_failure_passes_through_unchanged),
		cmocka_unit_test(test_no_children_and_unsupported_operation),
		cmocka_unit_test(test_terminate_through_composite_ignores_children_that_do_not_know_ids),
		cmocka_unit_test(test_capabilities_are_the_union_of_children),
		cmocka_unit_test(test_health_needs_configured_fraction_and_reports_each_child),
		cmocka_unit_test(test_stats_count_each_child),
		cmocka_unit_test(test_add_remove_and_set_weight_at_runtime),
		cmocka_unit_test(test_nested_composite_and_cycle_refused),
		cmocka_unit_test(test_children_change_while_calls_run),
		cmocka_unit_test(test_removed_child_is_let_go_at_once),
		cmocka_unit_test(test_metadata_is_built_when_read_and_reads_as_before),
		cmocka_unit_test(test_keyless_merge_is_refilled_only_when_given_back),
		cmocka_unit_test(test_merge_of_equal_answers_is_refilled_only_when_given_back),
		cmocka_unit_test(test_merge_of_frozen_answers_is_reused_unless_changed),
		cmocka_unit_test(test_merge_of_one_shape_refills_values_and_conflicts_of_this_call),
		cmocka_unit_test(test_children_list_shows_the_winner_as_it_answered),
		cmocka_unit_test(test_latency_is_the_answering_childs_or_the_composites),
		cmocka_unit_test(test_parallel_caller_runs_quick_children_itself),
		cmocka_unit_test(test_parallel_many_callers_mixing_inline_and_pool),
	};
	return cmocka_run_group_tests_name("composite", tests, NULL, NULL);
}
