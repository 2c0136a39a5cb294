/*
 * test_broker.c - the broker over sim providers and a real SQLite file:
 * request life cycles and status derivation, maxNumber accounting,
 * spill-over through a fallback, return through the owning provider,
 * reconciliation, crash recovery, pending timeout, kernel state that
 * outlives the broker.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
#include "broker_fixture.h"
#include "wait.h"
#include "provisio/provisio.h"
#include "provisio/broker.h"
#include "provisio/sim.h"
#include "provisio/fallback.h"
#include "provisio/local.h"

typedef struct fixture {
	pv_context *ctx;
	pv_strategy *a, *b, *fb; /* sim "a" (small), sim "b", fallback a -> b */
	pv_store *st;
	pv_broker *br;
	pv_manual_clock *mc;
	char db[400];
} fixture;

static const char *templates_json =
	"{\"templates\": ["
	" {\"templateId\": \"spill\", \"provider\": \"fb\", \"maxNumber\": 10,"
	"  \"attributes\": {\"type\": [\"String\", \"X86_64\"], \"ncpus\": [\"Numeric\", \"1\"]}},"
	" {\"templateId\": \"only-a\", \"provider\": \"a\", \"maxNumber\": 4},"
	" {\"templateId\": \"only-b\", \"provider\": \"b\", \"maxNumber\": -1},"
	" {\"templateId\": \"default\"}]}";

static void open_broker(fixture *f, const pv_broker_settings *set)
{
	f->st = bf_store(f->db);
	pv_strategy *all[] = {f->a, f->b, f->fb};
	const char *leaves[] = {"a", "b"};
	pv_broker_setup s = {.ctx = f->ctx, .strategies = all, .n_strategies = 3, .providers = leaves,
			     .n_providers = 2, .store = f->st, .clock = pv_manual_clock_get(f->mc)};
	if (set)
		s.settings = *set;
	f->br = bf_broker(&s, templates_json);
}

static void close_broker(fixture *f)
{
	bf_close(f->br, f->st);
	f->br = NULL;
	f->st = NULL;
}

static fixture *make(const char *cfg_a, const char *fb_cfg, const pv_broker_settings *set)
{
	fixture *f = calloc(1, sizeof *f);
	f->mc = pv_manual_clock_new(1000 * PV_NS_PER_S);
	const pv_clock *clock = pv_manual_clock_get(f->mc);
	bf_db_path(f->db, sizeof f->db, "b");
	f->a = bf_sim("a", cfg_a ? cfg_a : "{\"capacity\": 2}", clock);
	f->b = bf_sim("b", "{\"capacity\": 100}", clock);
	pv_fallback_config fc;
	pv_fallback_config_default(&fc);
	if (fb_cfg) {
		json_t *j = bf_json(fb_cfg);
		assert_int_equal(pv_fallback_config_from_json(j, &fc), 0);
		json_decref(j);
	}
	assert_int_equal(pv_fallback_new(&f->fb, "fb", f->a, &f->b, 1, &fc, clock), 0);
	f->ctx = bf_context(clock, (pv_strategy *[]){f->fb, f->a, f->b}, 3);
	open_broker(f, set);
	return f;
}

static void destroy(fixture *f)
{
	close_broker(f);
	bf_release(f->ctx, (pv_strategy *[]){f->fb, f->a, f->b}, 3);
	pv_manual_clock_free(f->mc);
	free(f);
}

static void status(fixture *f, const char *id, pv_request_rec *r, pv_machine_list *ms)
{
	pv_machine_list_clear(ms);
	assert_int_equal(pv_broker_request_status(f->br, id, r, ms), 0);
}

/* ---- acquire ------------------------------------------------------------------ */

static void test_request_completes_when_all_machines_run(void **state)
{
	(void)state;
	fixture *f = make(NULL, NULL, NULL);
	char id[PV_STORE_SHORT_MAX];
	assert_int_equal(pv_broker_request_machines(f->br, "only-b", 3, id), 0);
	assert_int_equal(strncmp(id, "req-", 4), 0);
	assert_int_equal(strlen(id), 4 + 36);
	pv_request_rec r;
	pv_machine_list ms = {0};
	status(f, id, &r, &ms);
	assert_int_equal(r.state, PV_REQ_COMPLETE);
	assert_string_equal(pv_broker_hf_status(r.state), "complete");
	assert_int_equal(ms.n, 3);
	for (size_t i = 0; i < ms.n; i++) {
		assert_string_equal(ms.items[i].result, "succeed");
		assert_string_equal(ms.items[i].status, "running");
		assert_string_equal(ms.items[i].provider, "b");
		assert_string_equal(ms.items[i].template_id, "only-b");
		assert_true(ms.items[i].launch_time > 1600000000);
	}
	pv_machine_list_clear(&ms);
	destroy(f);
}

static void test_pending_machines_keep_request_running_until_booted(void **state)
{
	(void)state;
	pv_broker_settings set = {.status_max_age_seconds = -1};
	fixture *f = make("{\"capacity\": 10, \"boot_delay_ms\": 5000}", NULL, &set);
	char id[PV_STORE_SHORT_MAX];
	assert_int_equal(pv_broker_request_machines(f->br, "only-a", 2, id), 0);
	pv_request_rec r;
	pv_machine_list ms = {0};
	status(f, id, &r, &ms);
	assert_int_equal(r.state, PV_REQ_RUNNING);
	assert_string_equal(ms.items[0].result, "executing");
	assert_string_equal(ms.items[0].status, "pending");
	pv_manual_clock_advance(f->mc, 6 * PV_NS_PER_S);
	status(f, id, &r, &ms);
	assert_int_equal(r.state, PV_REQ_COMPLETE);
	assert_string_equal(ms.items[1].result, "succeed");
	/* a refresh is one batched call per provider */
	assert_int_equal(pv_sim_calls(f->a, PV_OP_GET_INSTANCE_STATUS), 2);
	pv_machine_list_clear(&ms);
	destroy(f);
}

static void test_fresh_status_is_not_refreshed_again(void **state)
{
	(void)state;
	pv_broker_settings set = {.status_max_age_seconds = 3600};
	fixture *f = make("{\"capacity\": 10, \"boot_delay_ms\": 5000}", NULL, &set);
	char id[PV_STORE_SHORT_MAX];
	assert_int_equal(pv_broker_request_machines(f->br, "only-a", 2, id), 0);
	pv_request_rec r;
	pv_machine_list ms = {0};
	status(f, id, &r, &ms);
	status(f, id, &r, &ms);
	assert_int_equal(pv_sim_calls(f->a, PV_OP_GET_INSTANCE_STATUS), 0);
	assert_int_equal(r.state, PV_REQ_RUNNING);
	pv_machine_list_clear(&ms);
	destroy(f);
}

static void test_pending_timeout_fails_and_releases_machines(void **state)
{
	(void)state;
	/* boot never finishes within the (tiny) pending timeout measured on wall time */
	pv_broker_settings set = {.status_max_age_seconds = -1, .pending_timeout_seconds = 0.001};
	fixture *f = make("{\"capacity\": 10, \"boot_delay_ms\": 100000000}", NULL, &set);
	char id[PV_STORE_SHORT_MAX];
	assert_int_equal(pv_broker_request_machines(f->br, "only-a", 2, id), 0);
	/* launched two seconds ago (launch times are whole seconds) */
	pv_machine_list ms = {0};
	assert_int_equal(pv_store_begin(f->st, true), 0);
	assert_int_equal(pv_store_machine_list(f->st, PV_MF_REQUEST, id, &ms), 0);
	for (size_t i = 0; i < ms.n; i++) {
		ms.items[i].launch_time -= 2;
		assert_int_equal(pv_store_machine_put(f->st, &ms.items[i]), 0);
	}
	assert_int_equal(pv_store_commit(f->st), 0);
	pv_machine_list_clear(&ms);
	pv_request_rec r;
	status(f, id, &r, &ms);
	assert_int_equal(r.state, PV_REQ_COMPLETE_WITH_ERROR);
	assert_string_equal(ms.items[0].result, "fail");
	assert_non_null(strstr(ms.items[0].message, "pending timeout"));
	assert_int_equal(pv_sim_live_instances(f->a), 0);
	pv_machine_list_clear(&ms);
	destroy(f);
}

static void test_bad_requests_write_nothing(void **state)
{
	(void)state;
	fixture *f = make(NULL, NULL, NULL);
	char id[PV_STORE_SHORT_MAX];
	assert_int_equal(pv_broker_request_machines(f->br, "nope", 1, id), PV_EINVAL);
	assert_non_null(strstr(pv_error_last(), "unknown template"));
	assert_int_equal(pv_broker_request_machines(f->br, "only-a", 0, id), PV_EINVAL);
	assert_int_equal(pv_broker_request_machines(f->br, "only-a", -3, id), PV_EINVAL);
	assert_int_equal(pv_broker_request_machines(f->br, "only-a", 5, id), PV_EINVAL);
	assert_non_null(strstr(pv_error_last(), "available number 4"));
	assert_string_equal(id, "");
	assert_int_equal(bf_count_requests(f->st), 0);
	assert_int_equal(pv_sim_calls(f->a, PV_OP_COUNT), 0);
	destroy(f);
}

static void test_max_number_counts_live_machines(void **state)
{
	(void)state;
	pv_broker_settings set = {.status_max_age_seconds = -1};
	fixture *f = make("{\"capacity\": 10}", NULL, &set);
	char id[PV_STORE_SHORT_MAX];
	int64_t avail;
	assert_int_equal(pv_broker_request_machines(f->br, "only-a", 3, id), 0);
	assert_int_equal(pv_broker_available(f->br, "only-a", &avail), 0);
	assert_int_equal(avail, 1);
	char second[PV_STORE_SHORT_MAX];
	assert_int_equal(pv_broker_request_machines(f->br, "only-a", 2, second), PV_EINVAL);
	pv_machine_list ms = {0};
	pv_request_rec r;
	status(f, id, &r, &ms);
	pv_machine_ref ref = {ms.items[0].machine_id, NULL};
	char ret[PV_STORE_SHORT_MAX];
	assert_int_equal(pv_broker_return_machines(f->br, &ref, 1, ret), 0);
	assert_int_equal(pv_broker_available(f->br, "only-a", &avail), 0);
	assert_int_equal(avail, 1); /* shutting down still holds its slot */
	status(f, ret, &r, &ms);    /* ... until a refresh sees it gone */
	assert_int_equal(pv_broker_available(f->br, "only-a", &avail), 0);
	assert_int_equal(avail, 2);
	assert_int_equal(pv_broker_available(f->br, "only-b", &avail), 0);
	assert_true(avail == INT64_MAX);
	pv_machine_list_clear(&ms);
	destroy(f);
}

static void test_spill_over_through_fallback_from_full_provider(void **state)
{
	(void)state;
	fixture *f = make("{\"capacity\": 2}", NULL, NULL);
	char id[PV_STORE_SHORT_MAX];
	assert_int_equal(pv_broker_request_machines(f->br, "spill", 5, id), 0);
	pv_request_rec r;
	pv_machine_list ms = {0};
	status(f, id, &r, &ms);
	assert_int_equal(r.state, PV_REQ_COMPLETE);
	assert_int_equal(ms.n, 5);
	size_t on_a = 0, on_b = 0;
	for (size_t i = 0; i < ms.n; i++) {
		on_a += strcmp(ms.items[i].provider, "a") == 0;
		on_b += strcmp(ms.items[i].provider, "b") == 0;
	}
	assert_int_equal(on_a, 2);
	assert_int_equal(on_b, 3);
	assert_int_equal(pv_sim_live_instances(f->a), 2);
	assert_int_equal(pv_sim_live_instances(f->b), 3);
	pv_machine_list_clear(&ms);
	destroy(f);
}

static void test_partial_fulfilment_is_complete_with_error(void **state)
{
	(void)state;
	fixture *f = make("{\"capacity\": 2}", NULL, NULL);
	char id[PV_STORE_SHORT_MAX];
	assert_int_equal(pv_broker_request_machines(f->br, "only-a", 3, id), 0);
	pv_request_rec r;
	pv_machine_list ms = {0};
	status(f, id, &r, &ms);
	assert_int_equal(r.state, PV_REQ_COMPLETE_WITH_ERROR);
	assert_string_equal(pv_broker_hf_status(r.state), "complete_with_error");
	assert_int_equal(ms.n, 2);
	assert_non_null(strstr(r.message, "2 of 3"));
	pv_machine_list_clear(&ms);
	destroy(f);
}

static void test_nothing_provisioned_is_an_error_and_a_failed_request(void **state)
{
	(void)state;
	fixture *f = make("{\"capacity\": 0}", NULL, NULL);
	char id[PV_STORE_SHORT_MAX];
	assert_int_equal(pv_broker_request_machines(f->br, "only-a", 1, id), PV_ERROR);
	assert_non_null(strstr(pv_error_last(), "CAPACITY"));
	pv_request_rec *l = NULL;
	size_t n = 0;
	assert_int_equal(pv_store_request_list(f->st, PV_REQ_FAILED, 0, &l, &n), 0);
	assert_int_equal(n, 1);
	free(l);
	destroy(f);
}

static void test_unknown_request_id_is_not_found(void **state)
{
	(void)state;
	fixture *f = make(NULL, NULL, NULL);
	pv_request_rec r;
	pv_machine_list ms = {0};
	assert_int_equal(pv_broker_request_status(f->br, "req-nope", &r, &ms), PV_ENOTFOUND);
	assert_non_null(strstr(pv_error_last(), "req-nope"));
	destroy(f);
}

/* ---- return and reconciliation ------------------------------------------------------- */

static void test_return_terminates_through_each_owning_provider(void **state)
{
	(void)state;
	pv_broker_settings set = {.status_max_age_seconds = -1};
	fixture *f = make("{\"capacity\": 2}", NULL, &set);
	char id[PV_STORE_SHORT_MAX], ret[PV_STORE_SHORT_MAX];
	assert_int_equal(pv_broker_request_machines(f->br, "spill", 4, id), 0);
	pv_request_rec r;
	pv_machine_list ms = {0};
	status(f, id, &r, &ms);
	pv_machine_ref refs[4];
	for (size_t i = 0; i < 4; i++)
		refs[i] = (pv_machine_ref){ms.items[i].machine_id, NULL};
	assert_int_equal(pv_broker_return_machines(f->br, refs, 4, ret), 0);
	assert_int_equal(strncmp(ret, "ret-", 4), 0);
	assert_int_equal(pv_sim_live_instances(f->a), 0);
	assert_int_equal(pv_sim_live_instances(f->b), 0);
	assert_int_equal(pv_sim_calls(f->a, PV_OP_TERMINATE_INSTANCES), 1);
	assert_int_equal(pv_sim_calls(f->b, PV_OP_TERMINATE_INSTANCES), 1);
	status(f, ret, &r, &ms);
	assert_int_equal(r.kind, PV_REQ_RETURN);
	assert_int_equal(r.state, PV_REQ_COMPLETE);
	assert_int_equal(ms.n, 4);
	for (size_t i = 0; i < ms.n; i++) {
		assert_string_equal(ms.items[i].status, "terminated");
		assert_string_equal(ms.items[i].result, "succeed");
	}
	pv_machine_list_clear(&ms);
	destroy(f);
}

static void test_return_by_host_name(void **state)
{
	(void)state;
	fixture *f = make(NULL, NULL, NULL);
	char id[PV_STORE_SHORT_MAX], ret[PV_STORE_SHORT_MAX];
	assert_int_equal(pv_broker_request_machines(f->br, "only-b", 2, id), 0);
	pv_request_rec r;
	pv_machine_list ms = {0};
	status(f, id, &r, &ms);
	pv_machine_ref refs[] = {{NULL, ms.items[0].name}, {"", ms.items[1].name}};
	assert_int_equal(pv_broker_return_machines(f->br, refs, 2, ret), 0);
	assert_int_equal(pv_sim_live_instances(f->b), 0);
	pv_machine_list_clear(&ms);
	destroy(f);
}

/* A fixture that refreshes on every status, with one machine of "only-b"
 * (its record in *ms). */
static fixture *with_one_machine(pv_machine_list *ms)
{
	pv_broker_settings set = {.status_max_age_seconds = -1};
	fixture *f = make(NULL, NULL, &set);
	char id[PV_STORE_SHORT_MAX];
	assert_int_equal(pv_broker_request_machines(f->br, "only-b", 1, id), 0);
	pv_request_rec r;
	status(f, id, &r, ms);
	return f;
}

static void test_return_of_unknown_machines_returns_the_known_ones(void **state)
{
	(void)state;
	pv_machine_list ms = {0};
	fixture *f = with_one_machine(&ms);
	char ret[PV_STORE_SHORT_MAX];
	pv_request_rec r;
	/* none known: nothing to do, nothing written, each named */
	pv_machine_ref ghosts[] = {{"i-ghost", NULL}, {NULL, "host-ghost"}};
	assert_int_equal(pv_broker_return_machines(f->br, ghosts, 2, ret), PV_EINVAL);
	assert_string_equal(pv_error_last(), "unknown machine(s), nothing returned: i-ghost, host-ghost");
	assert_int_equal(bf_count_requests(f->st), 1);
	/* some known: those are returned, the others named */
	pv_machine_ref refs[] = {{ms.items[0].machine_id, NULL}, {"i-ghost", NULL}};
	assert_int_equal(pv_broker_return_machines(f->br, refs, 2, ret), 0);
	assert_int_equal(pv_sim_live_instances(f->b), 0);
	status(f, ret, &r, &ms);
	assert_int_equal(r.state, PV_REQ_COMPLETE_WITH_ERROR);
	assert_int_equal(r.requested, 2);
	assert_string_equal(r.message, "1 machine(s) unknown to provisio, not returned: i-ghost");
	assert_int_equal(ms.n, 1);
	assert_string_equal(ms.items[0].result, "succeed");
	pv_machine_list_clear(&ms);
	destroy(f);
}

/* However many are unknown, the message says how many and names what fits. */
static void test_many_unknown_machines_are_counted_not_cut(void **state)
{
	(void)state;
	pv_machine_list ms = {0};
	fixture *f = with_one_machine(&ms);
	char ret[PV_STORE_SHORT_MAX];
	pv_request_rec r;
	pv_machine_ref refs[901];
	char names[900][16];
	refs[0] = (pv_machine_ref){ms.items[0].machine_id, NULL};
	for (int i = 0; i < 900; i++) {
		snprintf(names[i], sizeof names[i], "i-ghost-%03d", i);
		refs[i + 1] = (pv_machine_ref){names[i], NULL};
	}
	assert_int_equal(pv_broker_return_machines(f->br, refs, 901, ret), 0);
	status(f, ret, &r, &ms);
	assert_int_equal(r.state, PV_REQ_COMPLETE_WITH_ERROR);
	assert_int_equal(r.requested, 901);
	assert_non_null(strstr(r.message, "900 machine(s) unknown to provisio, not returned: i-ghost-000, "));
	const char *more = strstr(r.message, " and ");
	assert_non_null(more);
	int named = 0, rest = 0;
	for (const char *p = r.message; (p = strstr(p, "i-ghost-")); p++)
		named++;
	assert_int_equal(sscanf(more, " and %d more", &rest), 1);
	assert_int_equal(named + rest, 900);
	pv_machine_list_clear(&ms);
	destroy(f);
}

static void test_terminate_failure_keeps_return_running_until_retried(void **state)
{
	(void)state;
	pv_broker_settings set = {.status_max_age_seconds = -1};
	fixture *f = make(NULL, NULL, &set);
	char id[PV_STORE_SHORT_MAX], ret[PV_STORE_SHORT_MAX];
	assert_int_equal(pv_broker_request_machines(f->br, "only-b", 1, id), 0);
	pv_request_rec r;
	pv_machine_list ms = {0};
	status(f, id, &r, &ms);
	pv_machine_ref ref = {ms.items[0].machine_id, NULL};
	assert_int_equal(pv_sim_script(f->b, "fail:THROTTLED"), 0);
	assert_int_equal(pv_broker_return_machines(f->br, &ref, 1, ret), 0);
	assert_int_equal(pv_sim_live_instances(f->b), 1);
	status(f, ret, &r, &ms); /* the refresh terminates again */
	assert_int_equal(pv_sim_live_instances(f->b), 0);
	status(f, ret, &r, &ms);
	assert_int_equal(r.state, PV_REQ_COMPLETE);
	pv_machine_list_clear(&ms);
	destroy(f);
}

static void test_reconciliation_reports_machines_gone_outside(void **state)
{
	(void)state;
	fixture *f = make(NULL, NULL, NULL);
	char id[PV_STORE_SHORT_MAX];
	assert_int_equal(pv_broker_request_machines(f->br, "only-b", 3, id), 0);
	pv_request_rec r;
	pv_machine_list ms = {0}, gone = {0};
	status(f, id, &r, &ms);
	assert_int_equal(pv_broker_reclaimed(f->br, NULL, 0, &gone), 0);
	assert_int_equal(gone.n, 0);
	/* terminated behind the broker's back */
	pv_operation op = {.type = PV_OP_TERMINATE_INSTANCES,
			   .params = json_pack("{s:[s]}", "instance_ids", ms.items[1].machine_id)};
	pv_result res = PV_RESULT_INIT;
	pv_strategy_execute(f->b, &op, &res, NULL);
	json_decref(op.params);
	pv_result_clear(&res);
	pv_machine_ref refs[3];
	for (size_t i = 0; i < 3; i++)
		refs[i] = (pv_machine_ref){NULL, ms.items[i].name};
	assert_int_equal(pv_broker_reclaimed(f->br, refs, 3, &gone), 0);
	assert_int_equal(gone.n, 1);
	assert_string_equal(gone.items[0].machine_id, ms.items[1].machine_id);
	assert_string_equal(gone.items[0].status, "terminated");
	pv_machine_list_clear(&ms);
	pv_machine_list_clear(&gone);
	destroy(f);
}

/* ---- crash recovery ---------------------------------------------------------------- */

/* Writes a request as a process would have left it. */
static void put_request(fixture *f, const pv_request_rec *r)
{
	assert_int_equal(pv_store_begin(f->st, true), 0);
	assert_int_equal(pv_store_request_put(f->st, r), 0);
	assert_int_equal(pv_store_commit(f->st), 0);
}

static void test_recovery_releases_machines_of_interrupted_request(void **state)
{
	(void)state;
	fixture *f = make("{\"capacity\": 10}", NULL, NULL);
	/* what a process killed between its two transactions leaves behind */
	pv_request_rec r = {.kind = PV_REQ_ACQUIRE, .state = PV_REQ_CREATING, .requested = 2,
			    .owner_pid = bf_dead_pid(), .created_ms = pv_wall_ms(), .updated_ms = pv_wall_ms()};
	snprintf(r.id, sizeof r.id, "req-crashed");
	snprintf(r.template_id, sizeof r.template_id, "only-a");
	snprintf(r.strategy, sizeof r.strategy, "a");
	put_request(f, &r);
	pv_operation op = {.type = PV_OP_CREATE_INSTANCES,
			   .params = json_pack("{s:i, s:s, s:s}", "count", 2, "request_id", "req-crashed",
					       "template_id", "only-a")};
	pv_result res = PV_RESULT_INIT;
	pv_strategy_execute(f->a, &op, &res, NULL);
	json_decref(op.params);
	pv_result_clear(&res);
	int64_t avail;
	assert_int_equal(pv_broker_available(f->br, "only-a", &avail), 0);
	assert_int_equal(avail, 2); /* the reservation still counts */

	assert_int_equal(pv_broker_recover(f->br), 1);
	assert_int_equal(pv_sim_live_instances(f->a), 0);
	pv_request_rec got;
	pv_machine_list ms = {0};
	status(f, "req-crashed", &got, &ms);
	assert_int_equal(got.state, PV_REQ_FAILED);
	assert_string_equal(pv_broker_hf_status(got.state), "complete_with_error");
	assert_non_null(strstr(got.message, "2 machine(s) released"));
	assert_int_equal(ms.n, 2);
	assert_string_equal(ms.items[0].result, "fail");
	assert_int_equal(pv_broker_available(f->br, "only-a", &avail), 0);
	assert_int_equal(avail, 4);
	assert_int_equal(pv_broker_recover(f->br), 0); /* once */
	pv_machine_list_clear(&ms);
	destroy(f);
}

static void test_recovery_leaves_live_owners_alone(void **state)
{
	(void)state;
	fixture *f = make(NULL, NULL, NULL);
	pv_request_rec r = {.kind = PV_REQ_ACQUIRE, .state = PV_REQ_CREATING, .requested = 1,
			    .owner_pid = getppid(), .created_ms = pv_wall_ms(), .updated_ms = pv_wall_ms()};
	snprintf(r.id, sizeof r.id, "req-busy");
	snprintf(r.template_id, sizeof r.template_id, "only-a");
	put_request(f, &r);
	assert_int_equal(pv_broker_recover(f->br), 0);
	pv_request_rec got;
	pv_machine_list ms = {0};
	status(f, "req-busy", &got, &ms);
	assert_int_equal(got.state, PV_REQ_CREATING);
	assert_string_equal(pv_broker_hf_status(got.state), "running");
	destroy(f);
}

/* Brokers on several hosts share a PostgreSQL store: a pid written by
 * another node says nothing here (here it is even this process's own pid),
 * so that owner keeps its request until creating_timeout_seconds pass. */
static void test_recovery_waits_for_another_nodes_owner_until_its_lease_ends(void **state)
{
	(void)state;
	fixture *f = make(NULL, NULL, NULL);
	pv_request_rec r = {.kind = PV_REQ_ACQUIRE, .state = PV_REQ_CREATING, .requested = 1,
			    .owner_pid = getpid(), .created_ms = pv_wall_ms(), .updated_ms = pv_wall_ms()};
	snprintf(r.id, sizeof r.id, "req-remote");
	snprintf(r.template_id, sizeof r.template_id, "only-a");
	snprintf(r.strategy, sizeof r.strategy, "a");
	snprintf(r.owner_node, sizeof r.owner_node, "other-host pid:[4026531836]");
	put_request(f, &r);
	assert_int_equal(pv_broker_recover(f->br), 0);
	pv_request_rec got;
	pv_machine_list ms = {0};
	status(f, "req-remote", &got, &ms);
	assert_int_equal(got.state, PV_REQ_CREATING);

	/* its lease ran out: this node takes the request over and ends it */
	r.updated_ms -= (int64_t)(pv_broker_get_settings(f->br)->creating_timeout_seconds + 1) * 1000;
	put_request(f, &r);
	assert_int_equal(pv_broker_recover(f->br), 1);
	status(f, "req-remote", &got, &ms);
	assert_int_equal(got.state, PV_REQ_FAILED);
	assert_int_equal(got.owner_pid, getpid());
	assert_string_not_equal(got.owner_node, "other-host pid:[4026531836]");
	pv_machine_list_clear(&ms);
	destroy(f);
}

/* ---- requests nobody got ---------------------------------------------------------- */

/* Moves a request's creation back past the reclaim delay. */
static void age_request(fixture *f, const char *id)
{
	const pv_broker_settings *set = pv_broker_get_settings(f->br);
	pv_request_rec r;
	assert_int_equal(pv_store_begin(f->st, true), 0);
	assert_int_equal(pv_store_request_get(f->st, id, &r), 0);
	r.created_ms -= (int64_t)((set->creating_timeout_seconds + set->pending_timeout_seconds) * 1000) + 1000;
	assert_int_equal(pv_store_request_put(f->st, &r), 0);
	assert_int_equal(pv_store_commit(f->st), 0);
}

/* A request whose id reached nobody (the process died after committing it,
 * before printing it) has its machines released once the delay has
 * passed; one whose id was delivered, or whose status someone read, is
 * kept; the reconciler's refresh is no delivery. */
static void test_request_whose_id_nobody_got_is_reclaimed(void **state)
{
	(void)state;
	fixture *f = make(NULL, NULL, NULL);
	char lost[PV_STORE_SHORT_MAX], delivered[PV_STORE_SHORT_MAX], read[PV_STORE_SHORT_MAX],
		refreshed[PV_STORE_SHORT_MAX];
	assert_int_equal(pv_broker_request_machines(f->br, "only-b", 2, lost), 0);
	assert_int_equal(pv_broker_request_machines(f->br, "only-b", 1, delivered), 0);
	assert_int_equal(pv_broker_request_delivered(f->br, delivered), 0);
	assert_int_equal(pv_broker_request_machines(f->br, "only-b", 1, read), 0);
	assert_int_equal(pv_broker_request_machines(f->br, "only-b", 1, refreshed), 0);
	pv_request_rec r;
	pv_machine_list ms = {0};
	status(f, read, &r, &ms);
	assert_true(r.delivered_ms > 0);
	pv_machine_list_clear(&ms);
	assert_int_equal(pv_broker_request_refresh(f->br, refreshed, &r, &ms), 0);
	assert_int_equal(r.delivered_ms, 0);
	pv_machine_list_clear(&ms);
	assert_int_equal(pv_broker_recover(f->br), 0); /* too young yet */
	assert_int_equal(pv_sim_live_instances(f->b), 5);

	const char *all[] = {lost, delivered, read, refreshed};
	for (size_t i = 0; i < 4; i++)
		age_request(f, all[i]);
	assert_int_equal(pv_broker_recover(f->br), 2);
	assert_int_equal(pv_sim_live_instances(f->b), 2); /* the delivered and the read one's */
	status(f, lost, &r, &ms);
	assert_int_equal(r.delivered_ms, -1);
	assert_int_equal(r.state, PV_REQ_COMPLETE); /* a final state stays; its message tells */
	assert_non_null(strstr(r.message, "reclaimed: its id was never delivered"));
	assert_non_null(strstr(r.message, "2 machine(s) released"));
	assert_int_equal(ms.n, 2);
	for (size_t i = 0; i < ms.n; i++) {
		assert_string_equal(ms.items[i].result, "fail");
		assert_string_not_equal(ms.items[i].status, "running");
	}
	pv_machine_list_clear(&ms);
	status(f, refreshed, &r, &ms);
	assert_int_equal(r.delivered_ms, -1);
	pv_machine_list_clear(&ms);
	status(f, delivered, &r, &ms);
	assert_true(r.delivered_ms > 0);
	assert_string_equal(ms.items[0].result, "succeed");
	pv_machine_list_clear(&ms);
	assert_int_equal(pv_broker_recover(f->br), 0); /* once */
	destroy(f);
}

/* The process reclaiming a request dies after marking its machines
 * released, before they are terminated (here: the terminate fails): Host
 * Factory's next getReturnRequests ends them. */
static void test_released_machines_not_yet_gone_are_terminated_again(void **state)
{
	(void)state;
	pv_broker_settings set = {.status_max_age_seconds = -1};
	fixture *f = make(NULL, NULL, &set);
	char id[PV_STORE_SHORT_MAX];
	assert_int_equal(pv_broker_request_machines(f->br, "only-b", 2, id), 0);
	age_request(f, id);
	assert_int_equal(pv_sim_script(f->b, "fail:THROTTLED"), 0);
	assert_int_equal(pv_broker_recover(f->br), 1);
	assert_int_equal(pv_sim_live_instances(f->b), 2); /* released, still running */
	pv_machine_list gone = {0};
	assert_int_equal(pv_broker_reclaimed(f->br, NULL, 0, &gone), 0);
	assert_int_equal(pv_sim_live_instances(f->b), 0);
	assert_int_equal(gone.n, 0); /* never Host Factory's: nothing to drain */
	pv_machine_list_clear(&gone);
	destroy(f);
}

/* ---- kernel state --------------------------------------------------------------------- */

static void test_breaker_state_outlives_the_broker(void **state)
{
	(void)state;
	const char *fbc = "{\"mode\": \"circuit_breaker\", \"circuit_breaker_threshold\": 2,"
			  " \"circuit_breaker_timeout_seconds\": 600}";
	fixture *f = make("{\"capacity\": 10, \"failure_rate\": 1.0, \"failure_code\": \"EXECUTION_ERROR\"}",
			  fbc, NULL);
	char id[PV_STORE_SHORT_MAX];
	for (int i = 0; i < 2; i++)
		assert_int_equal(pv_broker_request_machines(f->br, "spill", 1, id), 0);
	json_t *m = pv_fallback_circuit_metrics(f->fb);
	assert_string_equal(json_string_value(json_object_get(m, "state")), "open");
	json_decref(m);
	char db[400];
	memcpy(db, f->db, sizeof db);
	destroy(f); /* saves the state */

	/* a new "process": new strategies, same store file */
	f = make("{\"capacity\": 10}", fbc, NULL);
	close_broker(f);
	memcpy(f->db, db, sizeof db);
	open_broker(f, NULL);
	m = pv_fallback_circuit_metrics(f->fb);
	assert_string_equal(json_string_value(json_object_get(m, "state")), "open");
	json_decref(m);
	uint64_t before = pv_sim_calls(f->a, PV_OP_CREATE_INSTANCES);
	assert_int_equal(pv_broker_request_machines(f->br, "spill", 1, id), 0);
	assert_int_equal(pv_sim_calls(f->a, PV_OP_CREATE_INSTANCES), before); /* skipped: open */
	destroy(f);
}

static void test_save_state_writes_each_change_without_closing(void **state)
{
	(void)state;
	const char *fbc = "{\"mode\": \"circuit_breaker\", \"circuit_breaker_threshold\": 2,"
			  " \"circuit_breaker_timeout_seconds\": 600, \"circuit_breaker_jitter\": 0}";
	fixture *f = make("{\"capacity\": 10, \"script\": [\"fail:EXECUTION_ERROR*2\"]}", fbc, NULL);
	char id[PV_STORE_SHORT_MAX];
	for (int i = 0; i < 2; i++)
		assert_int_equal(pv_broker_request_machines(f->br, "spill", 1, id), 0);
	assert_int_equal(pv_broker_save_state(f->br), 0); /* a daemon saves without closing */
	char *saved = bf_kv_get(f->st, "state/fb");
	assert_non_null(saved);
	assert_non_null(strstr(saved, "\"a\":{\"consecutive_failures\":2"));
	assert_non_null(strstr(saved, "\"state\":\"open\""));
	free(saved);
	/* the breaker recovers: the next save writes that too */
	pv_manual_clock_advance(f->mc, 601 * PV_NS_PER_S);
	assert_int_equal(pv_broker_request_machines(f->br, "spill", 1, id), 0);
	assert_int_equal(pv_broker_save_state(f->br), 0);
	saved = bf_kv_get(f->st, "state/fb");
	assert_null(strstr(saved, "\"state\":\"open\""));
	assert_non_null(strstr(saved, "\"half_open_to_closed\":1"));
	free(saved);
	assert_int_equal(pv_broker_save_state(NULL), 0);
	destroy(f);
}

/* A broker opened from files knows every strategy of the graph, however
 * many: crash recovery asks the 300th provider too, and the state of a
 * wrapper defined after 300 providers is saved (both lists were once cut,
 * at 256 and 64, without a word). */
static void test_large_graph_from_files_recovers_and_saves_every_strategy(void **state)
{
	(void)state;
	char conf[400], tmpl[400], db[400];
	snprintf(conf, sizeof conf, "%s/large.json", bf_dir);
	snprintf(tmpl, sizeof tmpl, "%s/large_templates.json", bf_dir);
	bf_db_path(db, sizeof db, "large");
	bf_write_file(tmpl, "{\"templates\": [{\"templateId\": \"t\", \"provider\": \"fb\"}]}");
	json_t *providers = json_array();
	for (int i = 0; i < 300; i++)
		json_array_append_new(providers, json_pack("{s:o, s:s, s:{s:f}}", "name", json_sprintf("p%d", i),
							   "type", "sim", "config", "failure_rate",
							   i == 0 ? 1.0 : 0.0));
	json_t *cfg = json_pack("{s:o, s:[{s:s, s:s, s:s, s:[s], s:{s:s, s:i}}], s:s, s:{s:s}, s:{s:s}}",
				"providers", providers, "strategies", "name", "fb", "kind", "fallback",
				"primary", "p0", "fallbacks", "p299", "config", "mode", "circuit_breaker",
				"circuit_breaker_threshold", 1, "default_strategy", "fb", "store", "path", db,
				"broker", "templates_file", tmpl);
	assert_int_equal(json_dump_file(cfg, conf, 0), 0);
	json_decref(cfg);
	pv_broker_open_options o = {.config = {.path = conf}};
	pv_diags d;
	pv_diags_init(&d);
	pv_broker *b = NULL;
	assert_int_equal(pv_broker_open(&b, &o, &d), 0);
	pv_diags_clear(&d);
	char id[PV_STORE_SHORT_MAX];
	assert_int_equal(pv_broker_request_machines(b, "t", 1, id), 0); /* p0 fails: its breaker opens */
	/* p0 answers again (its breaker stays open): recovery can list what it holds */
	pv_strategy *p0 = pv_context_strategy(pv_broker_context(b), "p0");
	assert_non_null(p0);
	pv_sim_set_failure_rate(p0, 0.0);
	pv_strategy_unref(p0);

	/* a process died after p299 made a machine for its request */
	pv_request_rec r = {.kind = PV_REQ_ACQUIRE, .state = PV_REQ_CREATING, .requested = 1,
			    .owner_pid = bf_dead_pid(), .created_ms = pv_wall_ms(), .updated_ms = pv_wall_ms()};
	snprintf(r.id, sizeof r.id, "req-crashed");
	snprintf(r.template_id, sizeof r.template_id, "t");
	snprintf(r.strategy, sizeof r.strategy, "fb");
	pv_store *st = pv_broker_store(b);
	assert_int_equal(pv_store_begin(st, true), 0);
	assert_int_equal(pv_store_request_put(st, &r), 0);
	assert_int_equal(pv_store_commit(st), 0);
	pv_operation op = {.type = PV_OP_CREATE_INSTANCES,
			   .params = json_pack("{s:i, s:s}", "count", 1, "request_id", "req-crashed")};
	pv_result res = PV_RESULT_INIT;
	pv_context_execute_on(pv_broker_context(b), "p299", &op, &res);
	assert_true(res.success);
	json_decref(op.params);
	pv_result_clear(&res);
	assert_int_equal(pv_broker_recover(b), 1);
	pv_request_rec got;
	pv_machine_list ms = {0};
	assert_int_equal(pv_broker_request_status(b, "req-crashed", &got, &ms), 0);
	assert_non_null(strstr(got.message, "1 machine(s) released"));
	pv_machine_list_clear(&ms);
	pv_broker_close(b);

	st = bf_store(db);
	char *saved = bf_kv_get(st, "state/fb");
	assert_non_null(saved);
	assert_non_null(strstr(saved, "\"state\":\"open\""));
	free(saved);
	pv_store_close(st);
}

/* ---- selection in one-shot processes --------------------------------------------------- */

/* The files a `provisio` process reads: configuration, templates, store. */
typedef struct files {
	char config[512], templates[512], db[400];
} files;

static void write_files(files *f, const char *stem, const char *config, const char *templates)
{
	snprintf(f->config, sizeof f->config, "%s/%s.json", bf_dir, stem);
	snprintf(f->templates, sizeof f->templates, "%s/%s_templates.json", bf_dir, stem);
	bf_db_path(f->db, sizeof f->db, stem);
	bf_write_file(f->config, config);
	bf_write_file(f->templates, templates);
}

/* One Host Factory call, from files: a new context and new strategies over
 * the same store, as each `provisio` process has. */
static pv_broker *open_process(const files *f)
{
	pv_broker_open_options o = {.config = {.path = f->config}, .templates_path = f->templates,
				    .store_path = f->db};
	pv_diags d;
	pv_diags_init(&d);
	pv_broker *b = NULL;
	int rc = pv_broker_open(&b, &o, &d);
	if (rc < 0) {
		char *all = pv_diags_format(&d);
		print_error("%s\n%s", pv_error_last(), all ? all : "");
		free(all);
	}
	assert_int_equal(rc, 0);
	pv_diags_clear(&d);
	return b;
}

static uint64_t health_checks_of(pv_broker *b, const char *name)
{
	pv_metrics m;
	assert_int_equal(pv_context_metrics(pv_broker_context(b), name, &m), 0);
	return m.health_checks;
}

/* Every machine of the request made by `provider`. */
static void assert_made_by(pv_broker *b, const char *id, const char *provider, size_t n)
{
	pv_request_rec r;
	pv_machine_list ms = {0};
	assert_int_equal(pv_broker_request_status(b, id, &r, &ms), 0);
	assert_int_equal(ms.n, n);
	for (size_t i = 0; i < ms.n; i++)
		assert_string_equal(ms.items[i].provider, provider);
	pv_machine_list_clear(&ms);
}

/* health_based in short processes: the first pick knows the sick provider
 * is sick; the check is kept in the store with its age, so the next
 * process within the interval does not check again, and one after it does. */
static void test_health_based_request_avoids_the_sick_provider_across_processes(void **state)
{
	(void)state;
	files w;
	write_files(&w, "health",
		    "{\"providers\": ["
		    "  {\"name\": \"sick\", \"type\": \"sim\", \"config\": {\"healthy\": false}},"
		    "  {\"name\": \"well\", \"type\": \"sim\"}],"
		    " \"context\": {\"selection_policy\": \"health_based\", \"health_check_interval_seconds\": 60}}",
		    "{\"templates\": [{\"templateId\": \"t\", \"maxNumber\": -1}]}");

	pv_broker *b = open_process(&w);
	char id[PV_STORE_SHORT_MAX];
	assert_int_equal(pv_broker_request_machines(b, "t", 2, id), 0);
	assert_made_by(b, id, "well", 2);
	assert_int_equal(health_checks_of(b, "sick"), 1);
	pv_broker_close(b); /* records what it checked */
	pv_store *st = bf_store(w.db);
	char *rec = bf_kv_get(st, "health/sick");
	assert_non_null(rec);
	assert_non_null(strstr(rec, "\"healthy\":false"));
	assert_non_null(strstr(rec, "\"checked_at_ms\":"));
	free(rec);
	pv_store_close(st);

	b = open_process(&w);
	assert_int_equal(pv_broker_request_machines(b, "t", 1, id), 0);
	assert_made_by(b, id, "well", 1);
	assert_int_equal(health_checks_of(b, "sick"), 0); /* another process checked 0 s ago */
	assert_int_equal(health_checks_of(b, "well"), 0);
	pv_broker_close(b);

	/* the record is older than the interval: checked again at the first pick */
	char old[256];
	snprintf(old, sizeof old, "{\"healthy\": false, \"message\": \"old\", \"checked_at_ms\": %lld}",
		 (long long)(pv_wall_ms() - 61000));
	st = bf_store(w.db);
	bf_kv_put(st, "health/sick", old);
	pv_store_close(st);
	b = open_process(&w);
	assert_int_equal(pv_broker_request_machines(b, "t", 1, id), 0);
	assert_made_by(b, id, "well", 1);
	assert_int_equal(health_checks_of(b, "sick"), 1);
	assert_int_equal(health_checks_of(b, "well"), 0);
	pv_broker_close(b);
}

/* A template whose provider is disabled is refused as such. */
static void test_template_naming_a_disabled_provider_says_disabled(void **state)
{
	(void)state;
	files w;
	write_files(&w, "disabled",
		    "{\"providers\": [{\"name\": \"cloud\", \"type\": \"sim\"},"
		    "  {\"name\": \"lab\", \"type\": \"sim\", \"enabled\": false}]}",
		    "{\"templates\": [{\"templateId\": \"in-lab\", \"provider\": \"lab\"},"
		    " {\"templateId\": \"nowhere\", \"provider\": \"ghost\"}]}");
	pv_broker *b = open_process(&w);
	char id[PV_STORE_SHORT_MAX];
	assert_int_equal(pv_broker_request_machines(b, "in-lab", 1, id), PV_EINVAL);
	assert_non_null(strstr(pv_error_last(), "template 'in-lab': provider 'lab' is disabled"));
	assert_int_equal(pv_broker_request_machines(b, "nowhere", 1, id), PV_EINVAL);
	assert_non_null(strstr(pv_error_last(), "provider 'ghost' is not configured"));
	assert_int_equal(bf_count_requests(pv_broker_store(b)), 0); /* nothing written */
	pv_broker_close(b);
}

/* ---- idempotency ---------------------------------------------------------------------- */

/* A provider wrapped so a test can act around its child's calls: before
 * one (as another process would meanwhile) or on its answer. */
typedef struct wrapped wrapped;
struct wrapped {
	pv_strategy base;
	pv_strategy *child;
	void (*before)(wrapped *w, const pv_operation *op);
	void (*after)(wrapped *w, const pv_operation *op, pv_result *out);
};

static int wrapped_execute(pv_strategy *s, const pv_operation *op, pv_result *out)
{
	wrapped *w = (wrapped *)s;
	if (w->before)
		w->before(w, op);
	pv_strategy_execute(w->child, op, out, NULL);
	if (w->after)
		w->after(w, op, out);
	return 0;
}

static int wrapped_caps(pv_strategy *s, pv_capabilities *out)
{
	return pv_strategy_capabilities(((wrapped *)s)->child, out);
}

static int wrapped_health(pv_strategy *s, pv_health *out)
{
	return pv_strategy_health(((wrapped *)s)->child, out);
}

static void wrapped_destroy(pv_strategy *s) { pv_strategy_unref(((wrapped *)s)->child); }

static const pv_strategy_methods wrapped_methods = {
	.version = PV_STRATEGY_METHODS_VERSION, .execute = wrapped_execute,
	.capabilities = wrapped_caps, .health = wrapped_health, .destroy = wrapped_destroy};

/* Sets up `w` (the struct embedding it, calloc'ed) over `child` (taking its
 * reference). */
static void wrap(wrapped *w, const char *name, pv_strategy *child)
{
	assert_int_equal(pv_strategy_setup(&w->base, &wrapped_methods, name, "wrapped"), 0);
	w->child = child;
}

/* Loses the first answer of its child's create (the call happened, the
 * caller saw a timeout): what a network drop after a cloud created the
 * machines looks like. */
typedef struct lossy {
	wrapped w;
	int lose;
} lossy;

static void lose_answer(wrapped *w, const pv_operation *op, pv_result *out)
{
	lossy *l = (lossy *)w;
	if (op->type == PV_OP_CREATE_INSTANCES && l->lose > 0) {
		l->lose--;
		pv_result_fail(out, PV_ERR_TIMEOUT, PV_CLASS_TRANSIENT, "answer lost");
	}
}

static void test_retried_create_after_lost_answer_makes_no_duplicates(void **state)
{
	(void)state;
	char cfg[512];
	snprintf(cfg, sizeof cfg, "{\"workdir\": \"%s/idem\", \"command\": \"sleep 60\", \"grace_period_ms\": 100}", bf_dir);
	json_t *c = bf_json(cfg);
	pv_strategy *loc = NULL;
	assert_int_equal(pv_local_new(&loc, "loc", c, NULL), 0);
	json_decref(c);
	lossy *l = calloc(1, sizeof *l);
	wrap(&l->w, "lossy", loc); /* takes the creation reference */
	l->w.after = lose_answer;
	l->lose = 1;
	pv_fallback_config fc;
	pv_fallback_config_default(&fc);
	fc.mode = PV_FALLBACK_RETRY_THEN_FALLBACK;
	fc.max_retries = 2;
	fc.retry_delay_seconds = 0.001;
	fc.retry_max_delay_seconds = 0.001;
	pv_strategy *fb = NULL;
	assert_int_equal(pv_fallback_new(&fb, "retrying", &l->w.base, NULL, 0, &fc, NULL), 0);
	pv_context *ctx = bf_context(NULL, (pv_strategy *[]){fb, loc}, 2);
	char path[400];
	bf_db_path(path, sizeof path, "idem");
	pv_store *st = bf_store(path);
	const char *leaves[] = {"loc"};
	pv_broker_setup setup = {.ctx = ctx, .providers = leaves, .n_providers = 1, .store = st};
	pv_broker *b = bf_broker(&setup, "{\"templates\": [{\"templateId\": \"t\", \"maxNumber\": 5, \"provider\": \"retrying\"}]}");

	char id[PV_STORE_SHORT_MAX], ret[PV_STORE_SHORT_MAX];
	assert_int_equal(pv_broker_request_machines(b, "t", 2, id), 0);
	assert_int_equal(l->lose, 0); /* the first answer was lost, the call retried */
	pv_request_rec r;
	pv_machine_list ms = {0};
	assert_int_equal(pv_broker_request_status(b, id, &r, &ms), 0);
	assert_int_equal(r.state, PV_REQ_COMPLETE);
	assert_int_equal(ms.n, 2);
	pv_operation op = {.type = PV_OP_DESCRIBE_RESOURCE_INSTANCES};
	pv_result res = PV_RESULT_INIT;
	pv_strategy_execute(loc, &op, &res, NULL);
	assert_int_equal(json_array_size(json_object_get(res.data, "instances")), 2); /* not 4 */
	pv_result_clear(&res);

	pv_machine_ref refs[] = {{ms.items[0].machine_id, NULL}, {ms.items[1].machine_id, NULL}};
	assert_int_equal(pv_broker_return_machines(b, refs, 2, ret), 0);
	/* until the real processes have ended */
	PV_TEST_WAIT_UNTIL((pv_machine_list_clear(&ms), pv_broker_request_status(b, ret, &r, &ms) == 0 &&
							   r.state == PV_REQ_COMPLETE));
	assert_int_equal(r.state, PV_REQ_COMPLETE);
	pv_machine_list_clear(&ms);
	bf_close(b, st);
	bf_release(ctx, (pv_strategy *[]){fb, &l->w.base}, 2);
}

/* ---- concurrent writers -------------------------------------------------------------- */

/* During its first status call, another process (a second broker on the
 * same store, deferred to a daemon as Host Factory is) returns every
 * machine: what a reconciler pass meets when Host Factory returns machines
 * while it asks the provider about them. */
typedef struct racer {
	wrapped w;
	pv_broker *other;
	char ret[PV_STORE_SHORT_MAX];
	pv_machine_ref refs[3];
} racer;

static void return_meanwhile(wrapped *w, const pv_operation *op)
{
	racer *r = (racer *)w;
	if (op->type == PV_OP_GET_INSTANCE_STATUS && r->other && !r->ret[0])
		assert_int_equal(pv_broker_return_machines(r->other, r->refs, 3, r->ret), 0);
}

static void test_a_status_refresh_never_undoes_a_return_made_meanwhile(void **state)
{
	(void)state;
	racer *rc = calloc(1, sizeof *rc);
	/* the child named as its wrapper: the machines it makes are the wrapper's */
	wrap(&rc->w, "racer", bf_sim("racer", "{\"capacity\": 10}", NULL));
	rc->w.before = return_meanwhile;
	pv_context *ctx = bf_context(NULL, (pv_strategy *[]){&rc->w.base}, 1);
	char path[400];
	bf_db_path(path, sizeof path, "race");
	const char *tmpl = "{\"templates\": [{\"templateId\": \"t\", \"maxNumber\": -1, \"provider\": \"racer\"}]}";
	const char *leaves[] = {"racer"};
	pv_broker *b[2];
	pv_store *st[2];
	for (int i = 0; i < 2; i++) {
		st[i] = bf_store(path);
		pv_broker_setup setup = {.ctx = ctx, .providers = leaves, .n_providers = 1, .store = st[i]};
		b[i] = bf_broker(&setup, tmpl);
	}
	pv_broker_set_mode(b[1], PV_BROKER_DEFERRED);
	char id[PV_STORE_SHORT_MAX];
	assert_int_equal(pv_broker_request_machines(b[0], "t", 3, id), 0);
	pv_request_rec r;
	pv_machine_list ms = {0}, gone = {0};
	assert_int_equal(pv_broker_request_status(b[0], id, &r, &ms), 0);
	assert_int_equal(ms.n, 3);
	for (int i = 0; i < 3; i++)
		rc->refs[i] = (pv_machine_ref){ms.items[i].machine_id, NULL};
	rc->other = b[1];
	/* the reconciler's question: it reads the live machines, asks the
	 * provider (the return happens then) and writes what it learnt */
	assert_int_equal(pv_broker_reclaimed(b[0], NULL, 0, &gone), 0);
	assert_true(rc->ret[0]);
	pv_machine_list_clear(&ms);
	assert_int_equal(pv_broker_request_status(b[1], rc->ret, &r, &ms), 0);
	assert_int_equal(ms.n, 3); /* the return still holds its machines */
	for (size_t i = 0; i < ms.n; i++) {
		assert_string_equal(ms.items[i].return_id, rc->ret);
		assert_string_equal(ms.items[i].result, "executing");
	}
	/* and whoever runs the queue terminates them */
	pv_broker_set_mode(b[0], PV_BROKER_DIRECT);
	assert_int_equal(pv_broker_run_queue(b[0]), 1);
	pv_machine_list_clear(&ms);
	assert_int_equal(pv_broker_request_status(b[0], rc->ret, &r, &ms), 0);
	assert_int_equal(ms.n, 3);
	for (size_t i = 0; i < ms.n; i++)
		assert_true(strcmp(ms.items[i].status, "shutting-down") == 0 ||
			    strcmp(ms.items[i].status, "terminated") == 0);
	pv_machine_list_clear(&ms);
	pv_machine_list_clear(&gone);
	for (int i = 0; i < 2; i++)
		bf_close(b[i], st[i]);
	bf_release(ctx, (pv_strategy *[]){&rc->w.base}, 1);
}

static void test_templates_are_validated(void **state)
{
	(void)state;
	fixture *f = make(NULL, NULL, NULL);
	const char *bad[] = {"{\"templates\": [{\"maxNumber\": 1}]}",
			     "{\"templates\": [{\"templateId\": \"x\", \"maxNumber\": -2}]}",
			     "{\"templates\": [{\"templateId\": \"x\"}, {\"templateId\": \"x\"}]}",
			     "{\"templates\": [{\"templateId\": \"x\", \"provider\": 3}]}", "{}"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		json_t *t = json_loads(bad[i], 0, NULL);
		pv_broker_setup s = {.ctx = f->ctx, .store = f->st, .templates = t};
		pv_broker *b = NULL;
		assert_int_equal(pv_broker_new(&b, &s), PV_EINVAL);
		assert_null(b);
		json_decref(t);
	}
	char buf[64];
	assert_int_equal(pv_broker_template_strategy(f->br, pv_broker_template(f->br, "default"), buf,
						     sizeof buf), 0);
	assert_string_equal(buf, "fb"); /* no provider field: the current strategy */
	destroy(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_request_completes_when_all_machines_run),
		cmocka_unit_test(test_pending_machines_keep_request_running_until_booted),
		cmocka_unit_test(test_fresh_status_is_not_refreshed_again),
		cmocka_unit_test(test_pending_timeout_fails_and_releases_machines),
		cmocka_unit_test(test_bad_requests_write_nothing),
		cmocka_unit_test(test_max_number_counts_live_machines),
		cmocka_unit_test(test_spill_over_through_fallback_from_full_provider),
		cmocka_unit_test(test_partial_fulfilment_is_complete_with_error),
		cmocka_unit_test(test_nothing_provisioned_is_an_error_and_a_failed_request),
		cmocka_unit_test(test_unknown_request_id_is_not_found),
		cmocka_unit_test(test_return_terminates_through_each_owning_provider),
		cmocka_unit_test(test_return_by_host_name),
		cmocka_unit_test(test_return_of_unknown_machines_returns_the_known_ones),
		cmocka_unit_test(test_many_unknown_machines_are_counted_not_cut),
		cmocka_unit_test(test_terminate_failure_keeps_return_running_until_retried),
		cmocka_unit_test(test_reconciliation_reports_machines_gone_outside),
		cmocka_unit_test(test_recovery_releases_machines_of_interrupted_request),
		cmocka_unit_test(test_recovery_leaves_live_owners_alone),
		cmocka_unit_test(test_recovery_waits_for_another_nodes_owner_until_its_lease_ends),
		cmocka_unit_test(test_request_whose_id_nobody_got_is_reclaimed),
		cmocka_unit_test(test_released_machines_not_yet_gone_are_terminated_again),
		cmocka_unit_test(test_breaker_state_outlives_the_broker),
		cmocka_unit_test(test_save_state_writes_each_change_without_closing),
		cmocka_unit_test(test_large_graph_from_files_recovers_and_saves_every_strategy),
		cmocka_unit_test(test_health_based_request_avoids_the_sick_provider_across_processes),
		cmocka_unit_test(test_template_naming_a_disabled_provider_says_disabled),
		cmocka_unit_test(test_retried_create_after_lost_answer_makes_no_duplicates),
		cmocka_unit_test(test_a_status_refresh_never_undoes_a_return_made_meanwhile),
		cmocka_unit_test(test_templates_are_validated),
	};
	return cmocka_run_group_tests(tests, bf_group_setup, bf_group_teardown);
}
