/*
 * test_rest.c - the rest provider against a scriptable loopback server
 * (tests/support/rest_test_server.c) that speaks the provider-facing subset
 * of docs/api.md: every operation, every error class (server down, slow,
 * 401, 429 storms with Retry-After, 5xx, malformed JSON, HTML, wrong shape,
 * dropped connections), backoff and deadlines on a manual clock (backoff
 * never really sleeps), the secret kept out of everything it says.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "provisio/provisio.h"
#include "provisio/rest.h"
#include "rest_test_server.h"

#define KEY "s3cr3t-token-value"

typedef struct fx {
	rts_server *srv;
	pv_manual_clock *mc;
	pv_strategy *s;
} fx;

static int setup(void **state)
{
	fx *f = calloc(1, sizeof *f);
	if (!f || rts_start(&f->srv) < 0)
		return -1;
	f->mc = pv_manual_clock_new(1000 * PV_NS_PER_S);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	fx *f = *state;
	pv_strategy_unref(f->s);
	rts_stop(f->srv);
	pv_manual_clock_free(f->mc);
	free(f);
	return 0;
}

/* A rest strategy on the fixture's server; `extra` is more JSON fields. */
static pv_strategy *make(fx *f, const char *extra)
{
	char buf[1024];
	snprintf(buf, sizeof buf,
		 "{\"endpoint_url\": \"%s\", \"api_key\": \"" KEY "\", \"region\": \"site-a\", "
		 "\"seed\": 7, \"timeout\": 5%s%s}",
		 rts_url(f->srv), extra ? ", " : "", extra ? extra : "");
	json_error_t err;
	json_t *cfg = json_loads(buf, 0, &err);
	if (!cfg)
		fail_msg("bad test JSON: %s", err.text);
	pv_strategy *s = NULL;
	int rc = pv_rest_new(&s, "remote", cfg, pv_manual_clock_get(f->mc));
	json_decref(cfg);
	if (rc != 0)
		fail_msg("pv_rest_new: %s", pv_error_last());
	assert_int_equal(pv_strategy_initialize(s), 0);
	pv_strategy_unref(f->s);
	f->s = s;
	return s;
}

static void run_dl(fx *f, pv_op_type type, json_t *params, uint64_t deadline_ns, pv_result *r)
{
	pv_operation op = {.type = type, .params = params, .deadline_ns = deadline_ns};
	pv_strategy_execute(f->s, &op, r, pv_manual_clock_get(f->mc));
	json_decref(params);
}

static void run(fx *f, pv_op_type type, json_t *params, pv_result *r)
{
	run_dl(f, type, params, 0, r);
}

static void create(fx *f, int count, const char *req, pv_result *r)
{
	run(f, PV_OP_CREATE_INSTANCES,
	    json_pack("{s:i, s:s, s:s}", "count", count, "template_id", "t-small", "request_id", req), r);
}

static const char *inst_str(const pv_result *r, size_t i, const char *key)
{
	json_t *inst = json_array_get(json_object_get(r->data, "instances"), i);
	return json_string_value(json_object_get(inst, key));
}

static int64_t meta_int(pv_result *r, const char *key)
{
	return json_integer_value(json_object_get(pv_result_meta(r), key));
}

static void assert_failed(const pv_result *r, const char *code, pv_error_class cls)
{
	if (r->success || strcmp(r->error_code, code) != 0 || r->error_class != cls)
		fail_msg("expected %s/%s, got success=%d %s/%s: %s", code, pv_error_class_name(cls),
			 r->success, r->error_code, pv_error_class_name(r->error_class),
			 pv_result_message(r) ? pv_result_message(r) : "");
}

static uint64_t slept_ms(fx *f) { return pv_manual_clock_slept(f->mc) / PV_NS_PER_MS; }

/* ---- configuration ----------------------------------------------------------- */

static void expect_rejected(const char *json, const char *must_mention, const char *must_not)
{
	json_t *cfg = json_loads(json, 0, NULL);
	assert_non_null(cfg);
	pv_strategy *s = NULL;
	int rc = pv_rest_new(&s, "r1", cfg, NULL);
	json_decref(cfg);
	assert_null(s);
	assert_int_equal(rc, PV_EINVAL);
	if (!strstr(pv_error_last(), must_mention))
		fail_msg("message '%s' does not mention '%s'", pv_error_last(), must_mention);
	if (must_not && strstr(pv_error_last(), must_not))
		fail_msg("message '%s' quotes '%s'", pv_error_last(), must_not);
}

static void test_config_requires_an_http_endpoint(void **state)
{
	(void)state;
	expect_rejected("{\"api_key\": \"k\"}", "endpoint_url", NULL);
	expect_rejected("{\"endpoint_url\": \"ftp://127.0.0.1/\"}", "http://", NULL);
	expect_rejected("{\"endpoint_url\": \"http://\"}", "no host", NULL);
	expect_rejected("{\"endpoint_url\": \"http://127.0.0.1/x?y=1\"}", "query", NULL);
}

static void test_config_refuses_credentials_in_the_url(void **state)
{
	(void)state;
	expect_rejected("{\"endpoint_url\": \"http://admin:hunter2@127.0.0.1:1\"}", "api_key", "hunter2");
}

static void test_config_checks_ranges_and_unknown_fields(void **state)
{
	(void)state;
	expect_rejected("{\"endpoint_url\": \"http://127.0.0.1:1\", \"timeout\": 0}", "'timeout'", NULL);
	expect_rejected("{\"endpoint_url\": \"http://127.0.0.1:1\", \"max_retries\": 21}", "0 to 20", NULL);
	expect_rejected("{\"endpoint_url\": \"http://127.0.0.1:1\", \"verify_tls\": \"no\"}", "verify_tls", NULL);
	expect_rejected("{\"endpoint_url\": \"http://127.0.0.1:1\", \"backoff\": {\"base_ms\": 500, \"max_ms\": 100}}",
			"backoff.max_ms", NULL);
	expect_rejected("{\"endpoint_url\": \"http://127.0.0.1:1\", \"timeuot\": 3}", "timeuot", NULL);
}

static void test_config_unexpanded_key_is_refused_without_quoting_it(void **state)
{
	(void)state;
	expect_rejected("{\"endpoint_url\": \"http://127.0.0.1:1\", \"api_key\": \"${PROVIDER1_API_KEY}\"}",
			"unexpanded", "PROVIDER1_API_KEY");
	expect_rejected("{\"endpoint_url\": \"http://127.0.0.1:1\", \"api_key\": \"two words\"}", "api_key",
			"two words");
}

/* The spec's configuration block, as written there, builds a context with
 * provider1 and provider2 (no network call is made to build it). */
static void test_spec_provider1_provider2_blocks_build(void **state)
{
	(void)state;
	setenv("PROVIDER1_API_KEY", "k1", 1);
	setenv("PROVIDER2_API_KEY", "k2", 1);
	json_t *doc = json_loads(
		"{\"version\": \"2.0.0\", \"provider\": {\"type\": \"provider1\","
		" \"provider1\": {\"endpoint_url\": \"https://api.provider1.com\","
		"  \"api_key\": \"${PROVIDER1_API_KEY}\", \"region\": \"region1\"},"
		" \"provider2\": {\"endpoint_url\": \"https://api.provider2.com\","
		"  \"api_key\": \"${PROVIDER2_API_KEY}\", \"region\": \"region2\"},"
		" \"fallback\": {\"mode\": \"circuit_breaker\", \"primary\": \"provider1\","
		"  \"fallbacks\": [\"provider2\"], \"circuit_breaker_threshold\": 5,"
		"  \"circuit_breaker_timeout_seconds\": 60}}}", 0, NULL);
	assert_non_null(doc);
	pv_diags d;
	pv_diags_init(&d);
	pv_config_expand(doc, &d);
	json_t *graph = pv_config_normalize(doc, false, &d);
	pv_context *ctx = NULL;
	assert_non_null(graph);
	int rc = pv_config_build(graph, NULL, &ctx, &d);
	if (rc != 0 || d.errors) {
		char *j = json_dumps(pv_diags_to_json(&d), 0);
		fail_msg("build failed: %s", j);
	}
	pv_capabilities caps = {0};
	assert_int_equal(pv_context_capabilities(ctx, "provider2", &caps), 0);
	assert_string_equal(caps.type, "rest");
	assert_string_equal(json_string_value(json_array_get(json_object_get(caps.features, "regions"), 0)),
			    "region2");
	assert_true(json_is_true(json_object_get(caps.features, "tls")));
	pv_capabilities_clear(&caps);
	pv_context_free(ctx);
	json_decref(graph);
	json_decref(doc);
	pv_diags_clear(&d);
}

/* ---- operations ----------------------------------------------------------------- */

static void test_create_instances_belong_to_this_strategy(void **state)
{
	fx *f = *state;
	make(f, NULL);
	pv_result r = PV_RESULT_INIT;
	create(f, 3, "req-a", &r);
	assert_true(r.success);
	assert_string_equal(r.provider, "remote");
	assert_int_equal(json_integer_value(json_object_get(r.data, "count")), 3);
	assert_false(json_is_true(json_object_get(r.data, "partial")));
	assert_string_equal(inst_str(&r, 0, "provider"), "remote");
	assert_string_equal(inst_str(&r, 0, "remote_provider"), "sim-a");
	assert_string_equal(inst_str(&r, 0, "state"), "running");
	assert_string_equal(inst_str(&r, 0, "request_id"), "req-a");
	assert_non_null(inst_str(&r, 2, "private_ip"));
	assert_string_equal(inst_str(&r, 1, "region"), "site-a");
	assert_int_equal(json_array_size(json_object_get(r.data, "instance_ids")), 3);
	assert_int_equal(rts_live(f->srv), 3);
	pv_result_clear(&r);
}

static void test_create_sends_bearer_and_idempotency_key(void **state)
{
	fx *f = *state;
	make(f, NULL);
	pv_result r = PV_RESULT_INIT;
	create(f, 1, "req-k", &r);
	assert_true(r.success);
	char h[256];
	rts_last_header(f->srv, "Authorization", h, sizeof h);
	assert_string_equal(h, "Bearer " KEY);
	rts_last_header(f->srv, "Idempotency-Key", h, sizeof h);
	assert_string_equal(h, "remote:req-k");
	pv_result_clear(&r);
	/* The broker's client token, when given, is the key (it changes
	 * between spill-over rounds whose counts differ). */
	run(f, PV_OP_CREATE_INSTANCES,
	    json_pack("{s:i, s:s, s:s, s:s}", "count", 1, "template_id", "t-small", "request_id", "req-k",
		      "client_token", "req-k-1"), &r);
	assert_true(r.success);
	rts_last_header(f->srv, "Idempotency-Key", h, sizeof h);
	assert_string_equal(h, "remote:req-k-1");
	pv_result_clear(&r);
}

static void test_create_repeated_is_replayed_not_made_twice(void **state)
{
	fx *f = *state;
	make(f, NULL);
	pv_result a = PV_RESULT_INIT, b = PV_RESULT_INIT;
	create(f, 2, "req-same", &a);
	create(f, 2, "req-same", &b);
	assert_true(a.success && b.success);
	assert_int_equal(rts_live(f->srv), 2);
	assert_string_equal(inst_str(&a, 0, "instance_id"), inst_str(&b, 0, "instance_id"));
	assert_true(json_is_true(json_object_get(b.data, "replayed")));
	pv_result_clear(&a);
	pv_result_clear(&b);
}

static void test_create_same_key_other_body_is_conflict(void **state)
{
	fx *f = *state;
	make(f, NULL);
	pv_result r = PV_RESULT_INIT;
	create(f, 1, "req-c", &r);
	pv_result_clear(&r);
	create(f, 2, "req-c", &r);
	assert_failed(&r, "IDEMPOTENCY_CONFLICT", PV_CLASS_PERMANENT);
	assert_int_equal(meta_int(&r, "http_status"), 409);
	assert_int_equal(r.attempts, 1);
	pv_result_clear(&r);
}

static void test_create_partial_when_remote_nearly_full(void **state)
{
	fx *f = *state;
	make(f, NULL);
	rts_set_capacity(f->srv, 2);
	pv_result r = PV_RESULT_INIT;
	create(f, 5, "req-p", &r);
	assert_true(r.success);
	assert_int_equal(json_integer_value(json_object_get(r.data, "count")), 2);
	assert_int_equal(json_integer_value(json_object_get(r.data, "requested")), 5);
	assert_true(json_is_true(json_object_get(r.data, "partial")));
	pv_result_clear(&r);
	create(f, 1, "req-q", &r);
	assert_failed(&r, "CAPACITY", PV_CLASS_CAPACITY);
	assert_int_equal(r.attempts, 1); /* full is not retried */
	assert_string_equal(json_string_value(json_object_get(pv_result_meta(&r), "remote_code")), "PROVISIONING_FAILED");
	pv_result_clear(&r);
}

static void test_create_checks_parameters_before_calling(void **state)
{
	fx *f = *state;
	make(f, "\"max_instances_per_request\": 4");
	pv_result r = PV_RESULT_INIT;
	create(f, 5, "req-x", &r);
	assert_failed(&r, "INVALID_PARAMETERS", PV_CLASS_PERMANENT);
	pv_result_clear(&r);
	run(f, PV_OP_CREATE_INSTANCES, json_pack("{s:i}", "count", 1), &r);
	assert_failed(&r, "INVALID_PARAMETERS", PV_CLASS_PERMANENT);
	assert_non_null(strstr(pv_result_message(&r), "template_id"));
	pv_result_clear(&r);
	assert_int_equal(rts_count(f->srv, ""), 0);
	/* An unknown template is the remote's 400, also permanent. */
	run(f, PV_OP_CREATE_INSTANCES, json_pack("{s:s}", "template_id", "nope"), &r);
	assert_failed(&r, "INVALID_PARAMETERS", PV_CLASS_PERMANENT);
	assert_string_equal(json_string_value(json_object_get(pv_result_meta(&r), "remote_field")), "template_id");
	pv_result_clear(&r);
}

static void test_dry_run_create_checks_template_and_makes_nothing(void **state)
{
	fx *f = *state;
	make(f, NULL);
	pv_result r = PV_RESULT_INIT;
	json_t *ctx = json_pack("{s:b}", "dry_run", 1);
	json_t *params = json_pack("{s:i, s:s}", "count", 3, "template_id", "t-small");
	pv_operation op = {.type = PV_OP_CREATE_INSTANCES, .params = params, .context = ctx};
	pv_strategy_execute(f->s, &op, &r, NULL);
	assert_true(r.success);
	assert_int_equal(json_integer_value(json_object_get(r.data, "would_create")), 3);
	assert_int_equal(rts_live(f->srv), 0);
	assert_int_equal(rts_count(f->srv, "POST"), 0);
	pv_result_clear(&r);
	json_decref(ctx);
	json_decref(params);
}

static void test_status_maps_machines_and_reports_missing(void **state)
{
	fx *f = *state;
	make(f, NULL);
	pv_result r = PV_RESULT_INIT;
	create(f, 2, "req-s", &r);
	json_t *ids = json_array();
	json_array_append(ids, json_object_get(json_array_get(json_object_get(r.data, "instances"), 1),
					       "instance_id"));
	json_array_append_new(ids, json_string("i-unknown,with-comma"));
	json_array_append_new(ids, json_string("i-999999"));
	pv_result_clear(&r);
	run(f, PV_OP_GET_INSTANCE_STATUS, json_pack("{s:o}", "instance_ids", ids), &r);
	assert_true(r.success);
	assert_int_equal(json_array_size(json_object_get(r.data, "instances")), 1);
	assert_string_equal(inst_str(&r, 0, "provider"), "remote");
	assert_string_equal(inst_str(&r, 0, "request_id"), "req-s");
	assert_int_equal(json_array_size(json_object_get(r.data, "not_found")), 2);
	pv_result_clear(&r);
}

static void test_status_of_many_ids_is_batched(void **state)
{
	fx *f = *state;
	make(f, "\"max_instances_per_request\": 200");
	pv_result r = PV_RESULT_INIT;
	create(f, 120, "req-many", &r);
	assert_true(r.success);
	json_t *ids = json_incref(json_object_get(r.data, "instance_ids"));
	pv_result_clear(&r);
	unsigned before = rts_count(f->srv, "GET /api/v1/machines");
	run(f, PV_OP_GET_INSTANCE_STATUS, json_pack("{s:o}", "instance_ids", ids), &r);
	assert_true(r.success);
	assert_int_equal(json_array_size(json_object_get(r.data, "instances")), 120);
	assert_int_equal(rts_count(f->srv, "GET /api/v1/machines") - before, 3);
	pv_result_clear(&r);
}

static void test_describe_by_our_request_id_survives_state_reload(void **state)
{
	fx *f = *state;
	make(f, NULL);
	pv_result r = PV_RESULT_INIT;
	create(f, 2, "req-ours", &r);
	pv_result_clear(&r);
	create(f, 1, "req-other", &r);
	pv_result_clear(&r);
	json_t *saved = pv_strategy_state_save(f->s);
	make(f, NULL); /* a new process: a fresh strategy */
	assert_int_equal(pv_strategy_state_load(f->s, saved), 0);
	json_decref(saved);
	run(f, PV_OP_DESCRIBE_RESOURCE_INSTANCES, json_pack("{s:s}", "request_id", "req-ours"), &r);
	assert_true(r.success);
	assert_int_equal(json_array_size(json_object_get(r.data, "instances")), 2);
	assert_string_equal(inst_str(&r, 0, "request_id"), "req-ours");
	pv_result_clear(&r);
	run(f, PV_OP_DESCRIBE_RESOURCE_INSTANCES, NULL, &r);
	assert_true(r.success);
	assert_int_equal(json_array_size(json_object_get(r.data, "instances")), 3);
	pv_result_clear(&r);
}

static void test_terminate_returns_machines_and_unknown_is_not_found(void **state)
{
	fx *f = *state;
	make(f, NULL);
	pv_result r = PV_RESULT_INIT;
	create(f, 2, "req-t", &r);
	json_t *ids = json_incref(json_object_get(r.data, "instance_ids"));
	pv_result_clear(&r);
	run(f, PV_OP_TERMINATE_INSTANCES, json_pack("{s:O}", "instance_ids", ids), &r);
	assert_true(r.success);
	assert_int_equal(json_array_size(json_object_get(r.data, "terminated")), 2);
	assert_non_null(json_string_value(json_object_get(r.data, "return_request_id")));
	assert_int_equal(rts_live(f->srv), 0);
	pv_result_clear(&r);
	run(f, PV_OP_GET_INSTANCE_STATUS, json_pack("{s:O}", "instance_ids", ids), &r);
	assert_string_equal(inst_str(&r, 0, "state"), "terminated");
	pv_result_clear(&r);
	run(f, PV_OP_TERMINATE_INSTANCES, json_pack("{s:[s]}", "instance_ids", "i-nobody"), &r);
	assert_failed(&r, "NOT_FOUND", PV_CLASS_PERMANENT);
	pv_result_clear(&r);
	/* a known machine beside an unknown one: the known one is returned */
	create(f, 1, "req-u", &r);
	json_t *known = json_incref(json_array_get(json_object_get(r.data, "instance_ids"), 0));
	pv_result_clear(&r);
	run(f, PV_OP_TERMINATE_INSTANCES, json_pack("{s:[o, s]}", "instance_ids", known, "i-nobody"), &r);
	assert_true(r.success);
	assert_int_equal(json_array_size(json_object_get(r.data, "terminated")), 1);
	assert_string_equal(json_string_value(json_array_get(json_object_get(r.data, "not_found"), 0)), "i-nobody");
	assert_int_equal(rts_live(f->srv), 0);
	pv_result_clear(&r);
	run(f, PV_OP_TERMINATE_INSTANCES, json_pack("{s:s}", "instance_ids", "i-1"), &r);
	assert_failed(&r, "INVALID_PARAMETERS", PV_CLASS_PERMANENT);
	pv_result_clear(&r);
	json_decref(ids);
}

static void test_templates_and_validate(void **state)
{
	fx *f = *state;
	make(f, NULL);
	pv_result r = PV_RESULT_INIT;
	run(f, PV_OP_GET_AVAILABLE_TEMPLATES, NULL, &r);
	assert_true(r.success);
	assert_int_equal(json_array_size(json_object_get(r.data, "templates")), 2);
	pv_result_clear(&r);
	run(f, PV_OP_VALIDATE_TEMPLATE, json_pack("{s:{s:s}}", "template", "templateId", "t-large"), &r);
	assert_true(r.success);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(r.data, "template"), "maxNumber")), 10);
	pv_result_clear(&r);
	run(f, PV_OP_VALIDATE_TEMPLATE, json_pack("{s:s}", "template_id", "no/such template"), &r);
	assert_failed(&r, "INVALID_PARAMETERS", PV_CLASS_PERMANENT);
	assert_int_equal(meta_int(&r, "http_status"), 404);
	pv_result_clear(&r);
}

static void test_health_follows_ready(void **state)
{
	fx *f = *state;
	make(f, NULL);
	pv_result r = PV_RESULT_INIT;
	run(f, PV_OP_HEALTH_CHECK, NULL, &r);
	assert_true(r.success);
	assert_true(json_is_true(json_object_get(r.data, "ready")));
	pv_result_clear(&r);
	pv_health h = {0};
	assert_int_equal(pv_strategy_health(f->s, &h), 0);
	assert_true(h.healthy);
	pv_health_clear(&h);

	rts_set_ready(f->srv, false);
	run(f, PV_OP_HEALTH_CHECK, NULL, &r);
	assert_failed(&r, "UNHEALTHY", PV_CLASS_TRANSIENT);
	assert_int_equal(r.attempts, 1); /* a health check is not retried */
	pv_result_clear(&r);
	assert_int_equal(pv_strategy_health(f->s, &h), 0);
	assert_false(h.healthy);
	assert_int_equal(json_integer_value(json_object_get(h.details, "healthy_providers")), 0);
	pv_health_clear(&h);
}

static void test_capabilities_list_every_operation(void **state)
{
	fx *f = *state;
	make(f, NULL);
	pv_capabilities c = {0};
	assert_int_equal(pv_strategy_capabilities(f->s, &c), 0);
	assert_string_equal(c.type, "rest");
	assert_int_equal(c.operations, PV_OP_SET_ALL);
	assert_true(json_is_true(json_object_get(c.features, "idempotent_create")));
	assert_false(json_is_true(json_object_get(c.features, "tls")));
	assert_int_equal(json_integer_value(json_object_get(c.limitations, "max_instances_per_request")), 50);
	pv_capabilities_clear(&c);
}

/* ---- failures and their classes -------------------------------------------------- */

static void test_server_down_is_connection_error_retried(void **state)
{
	fx *f = *state;
	char cfg[256];
	snprintf(cfg, sizeof cfg, "{\"endpoint_url\": \"http://127.0.0.1:%d\", \"max_retries\": 2, \"seed\": 3}",
		 rts_closed_port());
	json_t *j = json_loads(cfg, 0, NULL);
	assert_int_equal(pv_rest_new(&f->s, "down", j, pv_manual_clock_get(f->mc)), 0);
	json_decref(j);
	pv_strategy_initialize(f->s);
	pv_result r = PV_RESULT_INIT;
	run(f, PV_OP_GET_AVAILABLE_TEMPLATES, NULL, &r);
	assert_failed(&r, "CONNECTION_ERROR", PV_CLASS_TRANSIENT);
	assert_int_equal(r.attempts, 3);
	/* Full jitter: each wait within [0, base * 2^n], base 200 ms. */
	assert_true(slept_ms(f) <= 200 + 400);
	assert_int_equal(meta_int(&r, "backoff_ms"), (int64_t)slept_ms(f));
	pv_result_clear(&r);
	pv_health h = {0};
	pv_strategy_health(f->s, &h);
	assert_false(h.healthy);
	pv_health_clear(&h);
}

static void test_slow_server_times_out(void **state)
{
	fx *f = *state;
	make(f, "\"timeout\": 0.2, \"max_retries\": 0");
	rts_script(f->srv, "slow:2000");
	pv_result r = PV_RESULT_INIT;
	run(f, PV_OP_GET_AVAILABLE_TEMPLATES, NULL, &r);
	assert_failed(&r, "TIMEOUT", PV_CLASS_TRANSIENT);
	pv_result_clear(&r);
	json_t *st = pv_strategy_stats(f->s);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(st, "http"), "timeouts")), 1);
	json_decref(st);
}

static void test_unauthorized_is_permanent_and_not_retried(void **state)
{
	fx *f = *state;
	make(f, NULL);
	rts_require_token(f->srv, "another-token");
	pv_result r = PV_RESULT_INIT;
	create(f, 1, "req-auth", &r);
	assert_failed(&r, "AUTH_FAILED", PV_CLASS_PERMANENT);
	assert_int_equal(r.attempts, 1);
	assert_int_equal(rts_count(f->srv, ""), 1);
	assert_int_equal(slept_ms(f), 0);
	pv_result_clear(&r);
}

static void test_429_storm_honours_retry_after(void **state)
{
	fx *f = *state;
	make(f, "\"max_retries\": 3");
	rts_script(f->srv, "status:429:2*3");
	pv_result r = PV_RESULT_INIT;
	create(f, 1, "req-429", &r);
	assert_true(r.success);
	assert_int_equal(r.attempts, 4);
	assert_int_equal(slept_ms(f), 6000); /* exactly what the server asked */
	assert_int_equal(rts_live(f->srv), 1);
	pv_result_clear(&r);
}

static void test_429_storm_past_retries_is_throttled(void **state)
{
	fx *f = *state;
	make(f, "\"max_retries\": 2");
	rts_script(f->srv, "status:429:1*10");
	pv_result r = PV_RESULT_INIT;
	run(f, PV_OP_GET_AVAILABLE_TEMPLATES, NULL, &r);
	assert_failed(&r, "THROTTLED", PV_CLASS_THROTTLED);
	assert_int_equal(r.attempts, 3);
	assert_int_equal(meta_int(&r, "retry_after_ms"), 1000);
	assert_int_equal(slept_ms(f), 2000);
	pv_result_clear(&r);
}

static void test_retry_after_as_an_http_date_is_honoured(void **state)
{
	fx *f = *state;
	make(f, NULL);
	rts_script(f->srv, "status:503:@3");
	pv_result r = PV_RESULT_INIT;
	run(f, PV_OP_GET_AVAILABLE_TEMPLATES, NULL, &r);
	assert_true(r.success);
	assert_int_equal(r.attempts, 2);
	/* A date has whole seconds: between 2 and 3 s from when it was read. */
	assert_true(slept_ms(f) >= 1900 && slept_ms(f) <= 3000);
	pv_result_clear(&r);
}

static void test_retry_after_past_the_deadline_returns_at_once(void **state)
{
	fx *f = *state;
	make(f, "\"max_retries\": 5");
	rts_script(f->srv, "status:503:5*10");
	uint64_t dl = pv_clock_now(pv_manual_clock_get(f->mc)) + 3 * PV_NS_PER_S;
	pv_result r = PV_RESULT_INIT;
	run_dl(f, PV_OP_GET_AVAILABLE_TEMPLATES, NULL, dl, &r);
	assert_failed(&r, "SERVER_ERROR", PV_CLASS_TRANSIENT);
	assert_int_equal(r.attempts, 1);
	assert_int_equal(slept_ms(f), 0);
	assert_string_equal(json_string_value(json_object_get(pv_result_meta(&r), "gave_up")), "deadline");
	assert_int_equal(meta_int(&r, "retry_after_ms"), 5000);
	pv_result_clear(&r);
}

static void test_retry_after_over_the_cap_is_not_waited_for(void **state)
{
	fx *f = *state;
	make(f, "\"backoff\": {\"retry_after_max_ms\": 1000}");
	rts_script(f->srv, "status:429:30*3");
	pv_result r = PV_RESULT_INIT;
	run(f, PV_OP_GET_AVAILABLE_TEMPLATES, NULL, &r);
	assert_failed(&r, "THROTTLED", PV_CLASS_THROTTLED);
	assert_int_equal(r.attempts, 1);
	assert_string_equal(json_string_value(json_object_get(pv_result_meta(&r), "gave_up")), "retry_after_max");
	pv_result_clear(&r);
}

static void test_5xx_backoff_is_full_jitter_and_seeded(void **state)
{
	fx *f = *state;
	make(f, "\"max_retries\": 3, \"backoff\": {\"base_ms\": 100, \"max_ms\": 250}");
	rts_script(f->srv, "status:500*3");
	pv_result r = PV_RESULT_INIT;
	run(f, PV_OP_GET_AVAILABLE_TEMPLATES, NULL, &r);
	assert_true(r.success);
	assert_int_equal(r.attempts, 4);
	uint64_t first = slept_ms(f);
	assert_true(first > 0 && first <= 100 + 200 + 250); /* caps: base, 2 base, max */
	pv_result_clear(&r);
	/* The same seed waits the same: tests (and incidents) replay. */
	make(f, "\"max_retries\": 3, \"backoff\": {\"base_ms\": 100, \"max_ms\": 250}");
	rts_script(f->srv, "status:502*3");
	run(f, PV_OP_GET_AVAILABLE_TEMPLATES, NULL, &r);
	assert_true(r.success);
	assert_int_equal(slept_ms(f) - first, first);
	pv_result_clear(&r);
}

static void test_deadline_caps_every_attempt(void **state)
{
	fx *f = *state;
	make(f, "\"timeout\": 30, \"max_retries\": 0");
	rts_script(f->srv, "slow:3000");
	/* 0.3 s left of the operation: the attempt may not take the 30 s
	 * the configuration allows. */
	uint64_t dl = pv_clock_now(pv_manual_clock_get(f->mc)) + 300 * PV_NS_PER_MS;
	pv_result r = PV_RESULT_INIT;
	run_dl(f, PV_OP_GET_AVAILABLE_TEMPLATES, NULL, dl, &r);
	assert_failed(&r, "TIMEOUT", PV_CLASS_TRANSIENT);
	pv_result_clear(&r);
	/* Past the deadline: nothing is sent. */
	unsigned before = rts_count(f->srv, "");
	pv_manual_clock_advance(f->mc, PV_NS_PER_S);
	run_dl(f, PV_OP_GET_AVAILABLE_TEMPLATES, NULL, dl, &r);
	assert_failed(&r, "TIMEOUT", PV_CLASS_TRANSIENT);
	assert_int_equal(rts_count(f->srv, ""), before);
	pv_result_clear(&r);
}

static void test_malformed_json_is_bad_response_not_retried(void **state)
{
	fx *f = *state;
	make(f, NULL);
	rts_script(f->srv, "malformed");
	pv_result r = PV_RESULT_INIT;
	run(f, PV_OP_GET_INSTANCE_STATUS, json_pack("{s:[s]}", "instance_ids", "i-1"), &r);
	assert_failed(&r, "BAD_RESPONSE", PV_CLASS_TRANSIENT);
	assert_int_equal(r.attempts, 1);
	pv_result_clear(&r);
}

static void test_html_page_is_bad_response(void **state)
{
	fx *f = *state;
	make(f, NULL);
	rts_script(f->srv, "html");
	pv_result r = PV_RESULT_INIT;
	run(f, PV_OP_GET_AVAILABLE_TEMPLATES, NULL, &r);
	assert_failed(&r, "BAD_RESPONSE", PV_CLASS_TRANSIENT);
	assert_non_null(strstr(pv_result_message(&r), "text/html"));
	pv_result_clear(&r);
}

static void test_wrong_shape_is_bad_response_for_every_reader(void **state)
{
	fx *f = *state;
	make(f, NULL);
	static const pv_op_type ops[] = {PV_OP_GET_AVAILABLE_TEMPLATES, PV_OP_CREATE_INSTANCES,
					 PV_OP_GET_INSTANCE_STATUS, PV_OP_DESCRIBE_RESOURCE_INSTANCES};
	for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) {
		rts_script(f->srv, "wrongshape");
		pv_result r = PV_RESULT_INIT;
		run(f, ops[i], json_pack("{s:s, s:[s]}", "template_id", "t-small", "instance_ids", "i-1"), &r);
		assert_failed(&r, "BAD_RESPONSE", PV_CLASS_TRANSIENT);
		pv_result_clear(&r);
	}
	json_t *st = pv_strategy_stats(f->s);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(st, "http"), "bad_responses")), 4);
	json_decref(st);
}

static void test_dropped_connection_is_retried(void **state)
{
	fx *f = *state;
	make(f, NULL);
	rts_script(f->srv, "close*2");
	pv_result r = PV_RESULT_INIT;
	create(f, 1, "req-drop", &r);
	assert_true(r.success);
	assert_int_equal(r.attempts, 3);
	assert_int_equal(rts_live(f->srv), 1);
	pv_result_clear(&r);
}

static void test_secret_never_in_results_messages_or_stats(void **state)
{
	fx *f = *state;
	make(f, NULL);
	rts_require_token(f->srv, "other");
	pv_result r = PV_RESULT_INIT;
	create(f, 1, "req-secret", &r);
	json_t *all = json_pack("{s:o, s:o, s:o}", "result", pv_result_to_json(&r), "stats",
				pv_strategy_stats(f->s), "state", pv_strategy_state_save(f->s));
	pv_health h = {0};
	pv_strategy_health(f->s, &h);
	json_object_set_new(all, "health", pv_health_to_json(&h));
	pv_capabilities c = {0};
	pv_strategy_capabilities(f->s, &c);
	json_object_set_new(all, "caps", pv_capabilities_to_json(&c));
	char *text = json_dumps(all, 0);
	assert_null(strstr(text, KEY));
	assert_null(strstr(pv_error_last(), KEY));
	free(text);
	json_decref(all);
	pv_health_clear(&h);
	pv_capabilities_clear(&c);
	pv_result_clear(&r);
}

/* ---- concurrency -------------------------------------------------------------------- */

typedef struct worker {
	fx *f;
	int id, ok;
} worker;

static void *creator(void *arg)
{
	worker *w = arg;
	for (int i = 0; i < 20; i++) {
		char req[32];
		snprintf(req, sizeof req, "req-%d-%d", w->id, i);
		pv_result r = PV_RESULT_INIT;
		pv_operation op = {.type = PV_OP_CREATE_INSTANCES,
				   .params = json_pack("{s:s, s:s}", "template_id", "t-small", "request_id", req)};
		pv_strategy_execute(w->f->s, &op, &r, NULL);
		w->ok += r.success;
		json_decref(op.params);
		pv_result_clear(&r);
	}
	return NULL;
}

static void test_concurrent_callers_share_the_pool(void **state)
{
	fx *f = *state;
	make(f, "\"max_connections\": 4");
	pthread_t t[8];
	worker w[8];
	for (int i = 0; i < 8; i++) {
		w[i] = (worker){f, i, 0};
		pthread_create(&t[i], NULL, creator, &w[i]);
	}
	int ok = 0;
	for (int i = 0; i < 8; i++) {
		pthread_join(t[i], NULL);
		ok += w[i].ok;
	}
	assert_int_equal(ok, 160);
	assert_int_equal(rts_live(f->srv), 160);
	json_t *st = pv_strategy_stats(f->s);
	json_t *handles = json_object_get(st, "handles");
	assert_true(json_integer_value(json_object_get(handles, "idle")) <= 4);
	assert_true(json_integer_value(json_object_get(handles, "created")) >= 1);
	json_decref(st);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_config_requires_an_http_endpoint),
		cmocka_unit_test(test_config_refuses_credentials_in_the_url),
		cmocka_unit_test(test_config_checks_ranges_and_unknown_fields),
		cmocka_unit_test(test_config_unexpanded_key_is_refused_without_quoting_it),
		cmocka_unit_test(test_spec_provider1_provider2_blocks_build),
		T(test_create_instances_belong_to_this_strategy),
		T(test_create_sends_bearer_and_idempotency_key),
		T(test_create_repeated_is_replayed_not_made_twice),
		T(test_create_same_key_other_body_is_conflict),
		T(test_create_partial_when_remote_nearly_full),
		T(test_create_checks_parameters_before_calling),
		T(test_dry_run_create_checks_template_and_makes_nothing),
		T(test_status_maps_machines_and_reports_missing),
		T(test_status_of_many_ids_is_batched),
		T(test_describe_by_our_request_id_survives_state_reload),
		T(test_terminate_returns_machines_and_unknown_is_not_found),
		T(test_templates_and_validate),
		T(test_health_follows_ready),
		T(test_capabilities_list_every_operation),
		T(test_server_down_is_connection_error_retried),
		T(test_slow_server_times_out),
		T(test_unauthorized_is_permanent_and_not_retried),
		T(test_429_storm_honours_retry_after),
		T(test_429_storm_past_retries_is_throttled),
		T(test_retry_after_as_an_http_date_is_honoured),
		T(test_retry_after_past_the_deadline_returns_at_once),
		T(test_retry_after_over_the_cap_is_not_waited_for),
		T(test_5xx_backoff_is_full_jitter_and_seeded),
		T(test_deadline_caps_every_attempt),
		T(test_malformed_json_is_bad_response_not_retried),
		T(test_html_page_is_bad_response),
		T(test_wrong_shape_is_bad_response_for_every_reader),
		T(test_dropped_connection_is_retried),
		T(test_secret_never_in_results_messages_or_stats),
		T(test_concurrent_callers_share_the_pool),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
