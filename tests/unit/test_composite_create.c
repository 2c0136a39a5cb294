/*
 * test_composite_create.c - create_instances through a composite: the
 * count is split (parallel), spilled over (sequential) or hedged (parallel
 * first_success, redundant), never multiplied; every machine keeps the
 * provider that made it; timeouts keep what finished and late machines are
 * terminated.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <pthread.h>
#include <string.h>
#include <cmocka.h>
#include "provisio/composite.h"
#include "composite_stub.h"

static pv_strategy *sim(const char *name, const char *json)
{
	json_t *cfg = json ? json_loads(json, 0, NULL) : NULL;
	pv_strategy *s = NULL;
	assert_int_equal(pv_sim_new(&s, name, cfg, NULL), 0);
	json_decref(cfg);
	return s;
}

/* A composite over `kids` with `weights` (may be NULL); the caller keeps
 * its references to the children. */
static pv_strategy *composite_of(pv_strategy **kids, const double *weights, size_t n,
				 const char *cfg_json)
{
	pv_composite_config cfg;
	json_t *j = cfg_json ? json_loads(cfg_json, 0, NULL) : NULL;
	assert_int_equal(pv_composite_config_from_json(j, &cfg), 0);
	json_decref(j);
	pv_strategy *c = NULL;
	assert_int_equal(pv_composite_new(&c, "comp", kids, weights, n, &cfg, NULL), 0);
	assert_int_equal(pv_strategy_initialize(c), 0);
	pv_composite_config_clear(&cfg);
	return c;
}

static void create(pv_strategy *c, int count, pv_result *r)
{
	json_t *params = json_pack("{s:i, s:s}", "count", count, "request_id", "req-1");
	pv_operation op = {.type = PV_OP_CREATE_INSTANCES, .params = params};
	pv_strategy_execute(c, &op, r, NULL);
	json_decref(params);
}

static json_int_t ival(const json_t *obj, const char *key)
{
	return json_integer_value(json_object_get(obj, key));
}

/* Machines of `child` in the result's by_child section. */
static json_int_t made_by(const pv_result *r, const char *child)
{
	return ival(json_object_get(json_object_get(r->data, "by_child"), child), "count");
}

/* Instances in data.instances whose provider is `name`. */
static int attributed_to(const pv_result *r, const char *name)
{
	int n = 0;
	size_t i;
	json_t *e;
	json_array_foreach(json_object_get(r->data, "instances"), i, e)
		n += strcmp(json_string_value(json_object_get(e, "provider")), name) == 0;
	return n;
}

static void unref_all(pv_strategy **s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		pv_strategy_unref(s[i]);
}

/* ---- every mode with every policy ------------------------------------------------ */

static void test_every_mode_and_policy_creates_exactly_the_count(void **state)
{
	(void)state;
	static const char *const modes[] = {"parallel", "sequential", "redundant"};
	static const char *const policies[] = {"merge_all", "first_success", "best_performance",
					       "majority_wins"};
	for (size_t m = 0; m < 3; m++) {
		for (size_t p = 0; p < 4; p++) {
			pv_strategy *kids[3] = {sim("a", "{\"capacity\": 4}"), sim("b", NULL), sim("c", NULL)};
			char cfg[160];
			snprintf(cfg, sizeof cfg, "{\"mode\": \"%s\", \"aggregation_policy\": \"%s\"}",
				 modes[m], policies[p]);
			pv_strategy *c = composite_of(kids, NULL, 3, cfg);
			pv_result r;
			create(c, 7, &r);
			assert_true(r.success);
			assert_int_equal(ival(r.data, "count"), 7);
			assert_int_equal(json_array_size(json_object_get(r.data, "instances")), 7);
			int64_t live = pv_sim_live_instances(kids[0]) + pv_sim_live_instances(kids[1]) +
				       pv_sim_live_instances(kids[2]);
			assert_int_equal(live, 7); /* never multiplied */
			assert_int_equal(attributed_to(&r, "a") + attributed_to(&r, "b") +
						 attributed_to(&r, "c"),
					 7);
			pv_result_clear(&r);
			pv_strategy_unref(c);
			unref_all(kids, 3);
		}
	}
}

/* ---- split ------------------------------------------------------------------- */

static void test_parallel_create_splits_count_by_weight(void **state)
{
	(void)state;
	pv_strategy *kids[3] = {sim("a", NULL), sim("b", NULL), sim("c", NULL)};
	double w[3] = {0.5, 0.25, 0.25};
	pv_strategy *c = composite_of(kids, w, 3, NULL);
	pv_result r;
	create(c, 8, &r);
	assert_true(r.success);
	assert_int_equal(ival(r.data, "count"), 8);
	assert_false(json_is_true(json_object_get(r.data, "partial")));
	assert_int_equal(made_by(&r, "a"), 4);
	assert_int_equal(made_by(&r, "b"), 2);
	assert_int_equal(made_by(&r, "c"), 2);
	assert_int_equal(attributed_to(&r, "a"), 4);
	assert_int_equal(json_array_size(json_object_get(r.data, "instance_ids")), 8);
	assert_int_equal(pv_sim_live_instances(kids[0]) + pv_sim_live_instances(kids[1]) +
				 pv_sim_live_instances(kids[2]),
			 8);
	assert_string_equal(json_string_value(json_object_get(pv_result_meta(&r), "create")), "split");
	pv_result_clear(&r);
	/* Weights change at run time. */
	assert_int_equal(pv_composite_set_weight(c, "c", 2.0), 0);
	create(c, 10, &r);
	/* 10 x (0.5, 0.25, 2) / 2.75 = 1.82, 0.91, 7.27: floors 1, 0, 7, and the
	 * two left over go to the largest remainders (b, then a). */
	assert_int_equal(made_by(&r, "a"), 2);
	assert_int_equal(made_by(&r, "b"), 1);
	assert_int_equal(made_by(&r, "c"), 7);
	pv_result_clear(&r);
	pv_strategy_unref(c);
	unref_all(kids, 3);
}

static void test_split_weights_can_come_from_the_config_by_name(void **state)
{
	(void)state;
	pv_strategy *kids[2] = {sim("a", NULL), sim("b", NULL)};
	pv_strategy *c = composite_of(kids, NULL, 2, "{\"weights\": {\"a\": 3, \"b\": 1}}");
	pv_result r;
	create(c, 8, &r);
	assert_int_equal(made_by(&r, "a"), 6);
	assert_int_equal(made_by(&r, "b"), 2);
	pv_result_clear(&r);
	json_t *list = pv_composite_children(c);
	assert_true(json_real_value(json_object_get(json_array_get(list, 0), "weight")) == 3.0);
	json_decref(list);
	pv_strategy_unref(c);
	unref_all(kids, 2);
}

static void test_parallel_create_never_multiplies_the_count(void **state)
{
	(void)state;
	pv_strategy *kids[3] = {sim("a", NULL), sim("b", NULL), sim("c", NULL)};
	double w[3] = {0.5, 0.3, 0.2};
	pv_strategy *c = composite_of(kids, w, 3, NULL);
	int64_t total = 0;
	for (int n = 1; n <= 25; n++) {
		pv_result r;
		create(c, n, &r);
		assert_true(r.success);
		assert_int_equal(ival(r.data, "count"), n);
		total += n;
		pv_result_clear(&r);
	}
	assert_int_equal(pv_sim_live_instances(kids[0]) + pv_sim_live_instances(kids[1]) +
				 pv_sim_live_instances(kids[2]),
			 total);
	pv_strategy_unref(c);
	unref_all(kids, 3);
}

static void test_parallel_create_split_respects_reported_capacity(void **state)
{
	(void)state;
	pv_strategy *kids[3] = {sim("small", "{\"capacity\": 2}"), sim("b", NULL), sim("c", NULL)};
	pv_strategy *c = composite_of(kids, NULL, 3, NULL);
	pv_result r;
	create(c, 9, &r);
	assert_true(r.success);
	/* Equal weights would give 3 each; small reports room for 2. */
	assert_int_equal(made_by(&r, "small"), 2);
	assert_int_equal(made_by(&r, "b"), 4);
	assert_int_equal(made_by(&r, "c"), 3);
	assert_int_equal(json_array_size(json_object_get(pv_result_meta(&r), "children")), 3); /* one round */
	pv_result_clear(&r);
	pv_strategy_unref(c);
	unref_all(kids, 3);
}

static void test_parallel_create_respreads_the_shortfall_of_a_full_child(void **state)
{
	(void)state;
	/* busy says nothing of its room (unlimited capacity) but refuses with CAPACITY */
	pv_strategy *kids[3] = {sim("busy", "{\"script\": [\"fail:CAPACITY:capacity\"]}"), sim("b", NULL),
				sim("c", NULL)};
	pv_result r;
	pv_strategy *c = composite_of(kids, NULL, 3, NULL);
	create(c, 9, &r);
	assert_true(r.success);
	assert_int_equal(ival(r.data, "count"), 9);
	assert_int_equal(made_by(&r, "busy"), 0);
	assert_int_equal(made_by(&r, "b") + made_by(&r, "c"), 9);
	/* Round 1 asks 3 + 3 + 3 and busy makes none; round 2 spreads its 3 over b and c. */
	assert_true(json_array_size(json_object_get(pv_result_meta(&r), "children")) >= 4);
	pv_result_clear(&r);
	pv_strategy_unref(c);
	unref_all(kids, 3);
}

static void test_parallel_create_uses_the_room_a_child_reports(void **state)
{
	(void)state;
	pv_strategy *kids[3] = {sim("busy", "{\"capacity\": 10}"), sim("b", NULL), sim("c", NULL)};
	pv_result r;
	create(kids[0], 8, &r); /* busy now reports room for 2 */
	pv_result_clear(&r);
	pv_strategy *c = composite_of(kids, NULL, 3, NULL);
	create(c, 9, &r);
	assert_true(r.success);
	assert_int_equal(made_by(&r, "busy"), 2);
	assert_int_equal(made_by(&r, "b") + made_by(&r, "c"), 7);
	assert_int_equal(json_array_size(json_object_get(pv_result_meta(&r), "children")), 3); /* one round */
	pv_result_clear(&r);
	pv_strategy_unref(c);
	unref_all(kids, 3);
}

/* ---- spill-over ---------------------------------------------------------------- */

static void test_sequential_create_spills_over_3_5_then_12(void **state)
{
	(void)state;
	pv_strategy *kids[3] = {sim("p3", "{\"capacity\": 3}"), sim("p5", "{\"capacity\": 5}"),
				sim("p100", "{\"capacity\": 100}")};
	pv_strategy *c = composite_of(kids, NULL, 3, "{\"mode\": \"sequential\", \"aggregation_policy\": \"first_success\"}");
	pv_result r;
	create(c, 20, &r);
	assert_true(r.success);
	assert_int_equal(ival(r.data, "count"), 20);
	assert_int_equal(ival(r.data, "requested"), 20);
	assert_false(json_is_true(json_object_get(r.data, "partial")));
	assert_int_equal(made_by(&r, "p3"), 3);
	assert_int_equal(made_by(&r, "p5"), 5);
	assert_int_equal(made_by(&r, "p100"), 12);
	assert_int_equal(attributed_to(&r, "p3"), 3);
	assert_int_equal(attributed_to(&r, "p5"), 5);
	assert_int_equal(attributed_to(&r, "p100"), 12);
	assert_int_equal(pv_sim_live_instances(kids[2]), 12);
	assert_string_equal(json_string_value(json_object_get(pv_result_meta(&r), "create")), "spill_over");
	/* Each child was asked for what was still missing. */
	json_t *ch = json_object_get(pv_result_meta(&r), "children");
	assert_int_equal(ival(json_array_get(ch, 0), "requested"), 20);
	assert_int_equal(ival(json_array_get(ch, 1), "requested"), 17);
	assert_int_equal(ival(json_array_get(ch, 2), "requested"), 12);
	pv_result_clear(&r);
	pv_strategy_unref(c);
	unref_all(kids, 3);
}

static void test_sequential_create_stops_when_fulfilled(void **state)
{
	(void)state;
	pv_strategy *kids[2] = {sim("a", NULL), sim("b", NULL)};
	pv_strategy *c = composite_of(kids, NULL, 2, "{\"mode\": \"sequential\"}");
	pv_result r;
	create(c, 4, &r);
	assert_true(r.success);
	assert_string_equal(r.provider, "a");
	assert_int_equal(pv_sim_calls(kids[1], PV_OP_COUNT), 0);
	pv_result_clear(&r);
	pv_strategy_unref(c);
	unref_all(kids, 2);
}

static void test_sequential_create_is_partial_when_capacity_is_short(void **state)
{
	(void)state;
	pv_strategy *kids[2] = {sim("p3", "{\"capacity\": 3}"), sim("p5", "{\"capacity\": 5}")};
	pv_strategy *c = composite_of(kids, NULL, 2, "{\"mode\": \"sequential\", \"aggregation_policy\": \"first_success\"}");
	pv_result r;
	create(c, 20, &r);
	assert_true(r.success); /* machines exist: not a failure */
	assert_true(json_is_true(json_object_get(r.data, "partial")));
	assert_int_equal(ival(r.data, "count"), 8);
	assert_int_equal(ival(r.data, "shortfall"), 12);
	assert_true(json_is_true(json_object_get(pv_result_meta(&r), "partial")));
	assert_int_equal(ival(pv_result_meta(&r), "shortfall"), 12);
	pv_result_clear(&r);
	/* Now full everywhere: nothing made is a CAPACITY failure. */
	create(c, 1, &r);
	assert_false(r.success);
	assert_string_equal(r.error_code, "CAPACITY");
	assert_int_equal(r.error_class, PV_CLASS_CAPACITY);
	pv_result_clear(&r);
	pv_strategy_unref(c);
	unref_all(kids, 2);
}

static void test_create_with_bad_count_is_invalid_parameters(void **state)
{
	(void)state;
	pv_strategy *kids[1] = {sim("a", NULL)};
	pv_strategy *c = composite_of(kids, NULL, 1, NULL);
	pv_result r;
	create(c, 0, &r);
	assert_string_equal(r.error_code, PV_ERR_INVALID_PARAMETERS);
	pv_result_clear(&r);
	assert_int_equal(pv_sim_calls(kids[0], PV_OP_COUNT), 0);
	pv_strategy_unref(c);
	unref_all(kids, 1);
}

/* ---- hedge ------------------------------------------------------------------------ */

static void test_hedged_create_terminates_surplus_through_its_maker(void **state)
{
	(void)state;
	pv_strategy *kids[3] = {sim("a", NULL), sim("b", NULL), sim("c", NULL)};
	pv_strategy *c = composite_of(kids, NULL, 3, "{\"aggregation_policy\": \"first_success\"}");
	pv_result r;
	create(c, 2, &r);
	assert_true(r.success);
	assert_int_equal(ival(r.data, "count"), 2);
	int64_t live = pv_sim_live_instances(kids[0]) + pv_sim_live_instances(kids[1]) +
		       pv_sim_live_instances(kids[2]);
	assert_int_equal(live, 2);
	json_t *hedge = json_object_get(pv_result_meta(&r), "hedge");
	const char *winner = json_string_value(json_object_get(hedge, "winner"));
	assert_non_null(winner);
	assert_int_equal(attributed_to(&r, winner), 2);
	json_t *surplus = json_object_get(hedge, "surplus");
	assert_int_equal(json_array_size(surplus), 2);
	size_t i;
	json_t *e;
	json_array_foreach(surplus, i, e) {
		assert_string_not_equal(json_string_value(json_object_get(e, "child")), winner);
		assert_true(json_is_true(json_object_get(e, "terminated")));
		assert_int_equal(json_array_size(json_object_get(e, "instance_ids")), 2);
	}
	json_t *st = pv_strategy_stats(c);
	assert_int_equal(ival(st, "surplus_machines_terminated"), 4);
	json_decref(st);
	pv_result_clear(&r);
	pv_strategy_unref(c);
	unref_all(kids, 3);
}

static void test_redundant_create_prefers_a_full_answer(void **state)
{
	(void)state;
	pv_strategy *kids[2] = {sim("small", "{\"capacity\": 1}"), sim("big", NULL)};
	pv_strategy *c = composite_of(kids, NULL, 2, "{\"mode\": \"redundant\", \"aggregation_policy\": \"majority_wins\"}");
	pv_result r;
	create(c, 3, &r);
	assert_true(r.success);
	assert_string_equal(r.provider, "big");
	assert_int_equal(ival(r.data, "count"), 3);
	assert_int_equal(pv_sim_live_instances(kids[0]), 0); /* its 1 was surplus */
	assert_int_equal(pv_sim_live_instances(kids[1]), 3);
	pv_result_clear(&r);
	pv_strategy_unref(c);
	unref_all(kids, 2);
}

/* ---- timeouts ------------------------------------------------------------------------ */

static void test_parallel_timeout_keeps_finished_results(void **state)
{
	(void)state;
	/* Real threads: one child answers only after the call (the test lets
	 * it), the others at once; the composite waits 1 s, plenty for them. */
	atomic_int release = 0;
	stub *held = stub_new("slow", "{\"templates\": []}");
	held->wait_for = &release;
	pv_strategy *kids[3] = {sim("a", NULL), &held->base, sim("b", NULL)};
	pv_strategy *c = composite_of(kids, NULL, 3, "{\"timeout_seconds\": 1}");
	pv_result r;
	pv_operation op = {.type = PV_OP_GET_AVAILABLE_TEMPLATES};
	pv_strategy_execute(c, &op, &r, NULL);
	atomic_store(&release, 1);
	assert_true(r.success);
	json_t *by = json_object_get(r.data, "by_child");
	assert_non_null(json_object_get(by, "a"));
	assert_non_null(json_object_get(by, "b"));
	assert_null(json_object_get(by, "slow"));
	assert_int_equal(json_array_size(json_object_get(r.data, "templates")), 2);
	json_t *slow = json_array_get(json_object_get(pv_result_meta(&r), "children"), 1);
	assert_string_equal(json_string_value(json_object_get(slow, "child")), "slow");
	assert_string_equal(json_string_value(json_object_get(slow, "error_code")), "TIMEOUT");
	pv_result_clear(&r);
	pv_strategy_unref(c);
	unref_all(kids, 3);
}

static json_int_t stat_of(pv_strategy *c, const char *key)
{
	json_t *st = pv_strategy_stats(c);
	json_int_t v = ival(st, key);
	json_decref(st);
	return v;
}

/* Polls the composite's stats until `key` reaches `want`. */
static json_int_t wait_stat(pv_strategy *c, const char *key, json_int_t want)
{
	json_int_t v = -1;
	PV_TEST_WAIT_UNTIL((v = stat_of(c, key)) >= want);
	return v;
}

static void test_late_finisher_is_discarded_safely(void **state)
{
	(void)state;
	atomic_int release = 0;
	stub *late = stub_new("late", "{\"v\": 1}");
	late->wait_for = &release; /* answers after the call, whatever its deadline */
	pv_strategy *kids[2] = {sim("a", NULL), &late->base};
	pv_strategy *c = composite_of(kids, NULL, 2, "{\"timeout_seconds\": 1}");
	pv_result r;
	pv_operation op = {.type = PV_OP_GET_AVAILABLE_TEMPLATES};
	pv_strategy_execute(c, &op, &r, NULL);
	atomic_store(&release, 1);
	assert_true(r.success);
	assert_string_equal(r.provider, "a");
	pv_result_clear(&r);
	/* The call is over; the late answer lands later and is dropped. */
	assert_int_equal(wait_stat(c, "late_results", 1), 1);
	json_t *st = pv_strategy_stats(c);
	assert_int_equal(ival(json_array_get(json_object_get(st, "children"), 1), "timeouts"), 1);
	json_decref(st);
	pv_strategy_unref(c);
	unref_all(kids, 2);
}

static void test_composite_freed_while_a_child_is_still_running(void **state)
{
	(void)state;
	static atomic_int release; /* outlives the test's frame: the late call reads it */
	atomic_store(&release, 0);
	stub *late = stub_new("late", NULL);
	late->wait_for = &release;
	pv_strategy *kids[2] = {sim("a", NULL), &late->base};
	pv_strategy *c = composite_of(kids, NULL, 2, "{\"timeout_seconds\": 1}");
	unref_all(kids, 2); /* the composite holds the only references */
	pv_result r;
	pv_operation op = {.type = PV_OP_HEALTH_CHECK};
	pv_strategy_execute(c, &op, &r, NULL);
	assert_true(r.success);
	pv_result_clear(&r);
	atomic_store(&release, 1); /* let go while the composite is freed */
	pv_strategy_unref(c); /* joins the pool: the late call ends first, nothing leaks */
}

static void test_machines_of_a_late_create_are_terminated(void **state)
{
	(void)state;
	pv_strategy *backing = sim("backing", NULL);
	atomic_int release = 0;
	stub *late = stub_new("late", NULL);
	late->wait_for = &release; /* creates after the call has given up */
	late->delegate = pv_strategy_ref(backing);
	pv_strategy *kids[2] = {sim("a", NULL), &late->base};
	pv_strategy *c = composite_of(kids, NULL, 2, "{\"timeout_seconds\": 1}");
	pv_result r;
	create(c, 4, &r);
	atomic_store(&release, 1);
	assert_true(r.success);
	assert_true(json_is_true(json_object_get(r.data, "partial")));
	assert_int_equal(ival(r.data, "count"), 2); /* a's half; late's half timed out */
	assert_int_equal(pv_sim_live_instances(kids[0]), 2);
	pv_result_clear(&r);
	assert_int_equal(wait_stat(c, "late_machines_terminated", 2), 2);
	assert_int_equal(pv_sim_live_instances(backing), 0);
	pv_strategy_unref(c);
	unref_all(kids, 2);
	pv_strategy_unref(backing);
}

static void test_sequential_never_waits_past_the_operation_deadline(void **state)
{
	(void)state;
	pv_manual_clock *mc = pv_manual_clock_new(1000);
	const pv_clock *clk = pv_manual_clock_get(mc);
	pv_strategy *slow = NULL, *next = NULL;
	json_t *cfg = json_pack("{s:{s:i}}", "latency", "mean_ms", 20);
	assert_int_equal(pv_sim_new(&slow, "slow", cfg, clk), 0);
	assert_int_equal(pv_sim_new(&next, "next", NULL, clk), 0);
	json_decref(cfg);
	pv_strategy *kids[2] = {slow, next};
	pv_composite_config cc;
	pv_composite_config_default(&cc);
	cc.mode = PV_COMPOSITE_SEQUENTIAL;
	cc.aggregation_policy = PV_AGG_FIRST_SUCCESS;
	pv_strategy *c = NULL;
	assert_int_equal(pv_composite_new(&c, "comp", kids, NULL, 2, &cc, clk), 0);
	assert_int_equal(pv_strategy_initialize(c), 0);
	pv_result r;
	pv_operation op = {.type = PV_OP_HEALTH_CHECK, .deadline_ns = 1000 + 10 * PV_NS_PER_MS};
	pv_strategy_execute(c, &op, &r, clk);
	assert_false(r.success);
	assert_string_equal(r.error_code, PV_ERR_ALL_STRATEGIES_FAILED);
	assert_int_equal(pv_clock_now(clk), op.deadline_ns); /* waited until, not past */
	assert_int_equal(pv_sim_calls(next, PV_OP_COUNT), 0); /* no time left: not called */
	json_t *ch = json_object_get(pv_result_meta(&r), "children");
	assert_string_equal(json_string_value(json_object_get(json_array_get(ch, 0), "error_code")), "TIMEOUT");
	assert_string_equal(json_string_value(json_object_get(json_array_get(ch, 1), "error_code")), "TIMEOUT");
	pv_result_clear(&r);
	pv_strategy_unref(c);
	unref_all(kids, 2);
	pv_manual_clock_free(mc);
}

typedef struct advance_arg {
	pv_manual_clock *mc;
	atomic_int *start, *stop;
} advance_arg;

/* Once `start` is set, moves the manual clock a second at a time until
 * told to stop (bounded loops). */
static void *advance_clock(void *p)
{
	advance_arg *a = p;
	PV_TEST_WAIT_UNTIL(atomic_load(a->start));
	for (int i = 0; i < 100000 && !atomic_load(a->stop); i++) {
		stub_sleep_ms(1);
		pv_manual_clock_advance(a->mc, PV_NS_PER_S);
	}
	return NULL;
}

static void test_parallel_timeout_follows_the_composites_clock(void **state)
{
	(void)state;
	pv_manual_clock *mc = pv_manual_clock_new(1000);
	atomic_int release = 0, quick_done = 0;
	stub *stuck = stub_new("stuck", "{\"v\": 1}");
	stuck->wait_for = &release; /* answers only when the test says so */
	stub *quick = stub_new("quick", "{\"v\": 2}");
	quick->signal = &quick_done; /* time moves only once quick has answered */
	pv_strategy *kids[2] = {&quick->base, &stuck->base};
	pv_composite_config cc;
	pv_composite_config_default(&cc);
	/* 1,000 s of manual time, a second a millisecond once quick has
	 * answered: its answer has a second of real time to be published */
	cc.timeout_seconds = 1000;
	pv_strategy *c = NULL;
	assert_int_equal(pv_composite_new(&c, "comp", kids, NULL, 2, &cc, pv_manual_clock_get(mc)), 0);
	assert_int_equal(pv_strategy_initialize(c), 0);
	pthread_t t;
	advance_arg a = {mc, &quick_done, &release};
	pthread_create(&t, NULL, advance_clock, &a);
	pv_result r;
	pv_operation op = {.type = PV_OP_GET_AVAILABLE_TEMPLATES};
	pv_strategy_execute(c, &op, &r, pv_manual_clock_get(mc));
	atomic_store(&release, 1);
	pthread_join(t, NULL);
	assert_true(r.success);
	assert_string_equal(r.provider, "quick");
	json_t *ch = json_object_get(pv_result_meta(&r), "children");
	assert_string_equal(json_string_value(json_object_get(json_array_get(ch, 1), "error_code")), "TIMEOUT");
	pv_result_clear(&r);
	pv_strategy_unref(c);
	unref_all(kids, 2);
	pv_manual_clock_free(mc);
}

/* Answers racing the deadline, many times: every child ends up either in
 * the result or recorded as TIMEOUT, never both, never lost (the sanitizer
 * and valgrind runs check that nothing leaks or is touched after free). */
static void test_results_racing_the_deadline_are_kept_or_timed_out(void **state)
{
	(void)state;
	stub *late = stub_new("late", "{\"v\": 1}");
	late->sleep_ms = 2; /* ignores the deadline */
	pv_strategy *kids[3] = {
		sim("a", "{\"seed\": 3, \"latency\": {\"distribution\": \"normal\", \"mean_ms\": 2, \"stddev_ms\": 1}}"),
		sim("b", "{\"seed\": 4, \"latency\": {\"distribution\": \"normal\", \"mean_ms\": 2, \"stddev_ms\": 1}}"),
		&late->base};
	pv_strategy *c = composite_of(kids, NULL, 3, "{\"timeout_seconds\": 0.002}");
	int answered = 0, timed_out = 0;
	for (int i = 0; i < 150; i++) {
		pv_result r;
		pv_operation op = {.type = PV_OP_GET_AVAILABLE_TEMPLATES};
		pv_strategy_execute(c, &op, &r, NULL);
		json_t *by = r.success ? json_object_get(r.data, "by_child") : NULL;
		json_t *ch = json_object_get(pv_result_meta(&r), "children");
		size_t k;
		json_t *e;
		json_array_foreach(ch, k, e) {
			const char *name = json_string_value(json_object_get(e, "child"));
			bool ok = json_is_true(json_object_get(e, "success"));
			assert_int_equal(ok, json_object_get(by, name) != NULL);
			answered += ok;
			timed_out += !ok;
		}
		pv_result_clear(&r);
	}
	assert_true(answered > 0);
	assert_true(timed_out > 0);
	pv_strategy_unref(c);
	unref_all(kids, 3);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_mode_and_policy_creates_exactly_the_count),
		cmocka_unit_test(test_parallel_create_splits_count_by_weight),
		cmocka_unit_test(test_split_weights_can_come_from_the_config_by_name),
		cmocka_unit_test(test_parallel_create_never_multiplies_the_count),
		cmocka_unit_test(test_parallel_create_split_respects_reported_capacity),
		cmocka_unit_test(test_parallel_create_respreads_the_shortfall_of_a_full_child),
		cmocka_unit_test(test_parallel_create_uses_the_room_a_child_reports),
		cmocka_unit_test(test_sequential_create_spills_over_3_5_then_12),
		cmocka_unit_test(test_sequential_create_stops_when_fulfilled),
		cmocka_unit_test(test_sequential_create_is_partial_when_capacity_is_short),
		cmocka_unit_test(test_create_with_bad_count_is_invalid_parameters),
		cmocka_unit_test(test_hedged_create_terminates_surplus_through_its_maker),
		cmocka_unit_test(test_redundant_create_prefers_a_full_answer),
		cmocka_unit_test(test_parallel_timeout_keeps_finished_results),
		cmocka_unit_test(test_late_finisher_is_discarded_safely),
		cmocka_unit_test(test_composite_freed_while_a_child_is_still_running),
		cmocka_unit_test(test_machines_of_a_late_create_are_terminated),
		cmocka_unit_test(test_results_racing_the_deadline_are_kept_or_timed_out),
		cmocka_unit_test(test_sequential_never_waits_past_the_operation_deadline),
		cmocka_unit_test(test_parallel_timeout_follows_the_composites_clock),
	};
	return cmocka_run_group_tests_name("composite_create", tests, NULL, NULL);
}
