/*
 * test_server.c - provisio serve over real HTTP on loopback: every route,
 * every auth case, bad input, /metrics moving with operations, the
 * reconciler (pending timeout, reclaimed machine, orphan), alert rules and
 * reload, Host Factory deferring to the running daemon. Each test starts its own server on 127.0.0.1:0 and stops it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include "test_server_support.h"
#include "test_strategies.h"
#include "wait.h"
#include "provisio/hostfactory.h"
#include <openssl/evp.h>

static const char *err_field(const ts_resp *r)
{
	return json_string_value(json_object_get(json_object_get(r->body, "error"), "field"));
}

static const char *err_code(const ts_resp *r)
{
	return json_string_value(json_object_get(json_object_get(r->body, "error"), "code"));
}

/* Creates `n` machines of t1; returns the request id (static buffer). */
static const char *create(ts_env *e, int n)
{
	static char id[80];
	char body[64];
	snprintf(body, sizeof body, "{\"template_id\": \"t1\", \"count\": %d}", n);
	ts_resp r = ts_call(e, "POST", "/api/v1/requests", ADMIN_TOKEN, body, NULL);
	assert_int_equal(r.status, 202);
	snprintf(id, sizeof id, "%s", json_string_value(json_object_get(r.body, "request_id")));
	ts_resp_clear(&r);
	return id;
}

/* ---- probes and auth ----------------------------------------------------------- */

static void health_needs_no_token(void **state)
{
	ts_resp r = ts_call(*state, "GET", "/health", NULL, NULL, NULL);
	assert_int_equal(r.status, 200);
	assert_string_equal(json_string_value(json_object_get(r.body, "status")), "ok");
	assert_non_null(strstr(r.headers, "X-Request-Id"));
	ts_resp_clear(&r);
}

static void ready_reports_store_and_healthy_providers(void **state)
{
	ts_resp r = ts_call(*state, "GET", "/ready", NULL, NULL, NULL);
	assert_int_equal(r.status, 200);
	assert_true(json_is_true(json_object_get(r.body, "ready")));
	assert_string_equal(json_string_value(json_object_get(r.body, "store")), "ok");
	assert_true(json_integer_value(json_object_get(r.body, "healthy_providers")) >= 2);
	ts_resp_clear(&r);
}

static void missing_token_is_401_with_www_authenticate(void **state)
{
	ts_resp r = ts_call(*state, "GET", "/api/v1/templates", NULL, NULL, NULL);
	assert_int_equal(r.status, 401);
	assert_non_null(strstr(r.headers, "WWW-Authenticate: Bearer"));
	assert_string_equal(err_code(&r), "UNAUTHENTICATED");
	ts_resp_clear(&r);
}

static void unknown_token_is_401(void **state)
{
	ts_resp r = ts_call(*state, "GET", "/api/v1/templates", "not-a-token", NULL, NULL);
	assert_int_equal(r.status, 401);
	assert_non_null(strstr(r.headers, "WWW-Authenticate: Bearer"));
	ts_resp_clear(&r);
}

static void read_token_reads_but_cannot_mutate(void **state)
{
	ts_resp r = ts_call(*state, "GET", "/api/v1/templates", READ_TOKEN, NULL, NULL);
	assert_int_equal(r.status, 200);
	ts_resp_clear(&r);
	r = ts_call(*state, "POST", "/api/v1/requests", READ_TOKEN, "{\"template_id\": \"t1\", \"count\": 1}", NULL);
	assert_int_equal(r.status, 403);
	assert_string_equal(err_code(&r), "FORBIDDEN");
	assert_null(strstr(r.headers, "WWW-Authenticate"));
	ts_resp_clear(&r);
	r = ts_call(*state, "PUT", "/api/v1/strategy", READ_TOKEN, "{\"selection_policy\": \"round_robin\"}", NULL);
	assert_int_equal(r.status, 403);
	ts_resp_clear(&r);
}

static void remembered_token_is_forgotten_when_a_reload_removes_it(void **state)
{
	ts_env *e = *state;
	for (int i = 0; i < 4; i++) { /* both loops accept (and remember) it */
		ts_resp r = ts_call(e, "GET", "/api/v1/templates", READ_TOKEN, NULL, NULL);
		assert_int_equal(r.status, 200);
		ts_resp_clear(&r);
	}
	ts_resp r = ts_call(e, "POST", "/api/v1/reload", READ_TOKEN, NULL, NULL);
	assert_int_equal(r.status, 403); /* remembered with its role */
	ts_resp_clear(&r);
	char text[8192];
	bf_read_file(e->config, text, sizeof text);
	char *at = strstr(text, "pbkdf2-sha256$"); /* the reader's, first in the file */
	assert_non_null(at);
	for (int i = 0; i < 3; i++) /* past "pbkdf2-sha256$", the iterations and the salt */
		at = strchr(at, '$') + 1;
	memset(at, '0', 64); /* the reader's hash replaced: its token is no longer configured */
	bf_write_file(e->config, text);
	assert_int_equal(pv_server_reload(e->srv, NULL), 0);
	for (int i = 0; i < 4; i++) {
		r = ts_call(e, "GET", "/api/v1/templates", READ_TOKEN, NULL, NULL);
		assert_int_equal(r.status, 401);
		ts_resp_clear(&r);
	}
	r = ts_call(e, "GET", "/api/v1/templates", ADMIN_TOKEN, NULL, NULL);
	assert_int_equal(r.status, 200);
	ts_resp_clear(&r);
}

static void metrics_need_a_token(void **state)
{
	ts_resp r = ts_call(*state, "GET", "/metrics", NULL, NULL, NULL);
	assert_int_equal(r.status, 401);
	ts_resp_clear(&r);
}

static void auth_off_is_refused_off_loopback(void **state)
{
	(void)state;
	ts_env e;
	ts_env_init(&e);
	char text[1024];
	snprintf(text, sizeof text,
		 "{\"providers\": [{\"name\": \"s\", \"type\": \"sim\"}], \"store\": {\"path\": \"%s\"},"
		 " \"broker\": {\"templates_file\": \"%s\"},"
		 " \"server\": {\"listen\": \"0.0.0.0:0\", \"auth\": {\"enabled\": false}}}", e.store, e.templates);
	bf_write_file(e.config, text);
	assert_int_equal(ts_start(&e), PV_EINVAL);
	assert_non_null(strstr(pv_error_last(), "loopback"));
	ts_env_clear(&e);
}

static void auth_off_on_loopback_lets_everything_through(void **state)
{
	(void)state;
	ts_env e;
	ts_env_init(&e);
	ts_config_open(&e, "\"providers\": [{\"name\": \"s\", \"type\": \"sim\"}]");
	assert_int_equal(ts_start(&e), 0);
	assert_null(pv_server_generated_token(e.srv));
	ts_resp r = ts_call(&e, "POST", "/api/v1/requests", NULL, "{\"template_id\": \"t1\", \"count\": 1}", NULL);
	assert_int_equal(r.status, 202);
	ts_resp_clear(&r);
	ts_env_clear(&e);
}

/* ---- bad input -------------------------------------------------------------------- */

static void malformed_json_is_400(void **state)
{
	ts_resp r = ts_call(*state, "POST", "/api/v1/requests", ADMIN_TOKEN, "{\"template_id\": ", NULL);
	assert_int_equal(r.status, 400);
	assert_string_equal(err_code(&r), "INVALID_JSON");
	ts_resp_clear(&r);
	r = ts_call(*state, "POST", "/api/v1/requests", ADMIN_TOKEN, "[1, 2]", NULL);
	assert_int_equal(r.status, 400);
	ts_resp_clear(&r);
}

static void wrong_type_names_the_field(void **state)
{
	ts_resp r = ts_call(*state, "POST", "/api/v1/requests", ADMIN_TOKEN,
			    "{\"template_id\": \"t1\", \"count\": \"two\"}", NULL);
	assert_int_equal(r.status, 400);
	assert_string_equal(err_field(&r), "count");
	ts_resp_clear(&r);
	r = ts_call(*state, "POST", "/api/v1/requests", ADMIN_TOKEN, "{\"template_id\": 7, \"count\": 1}", NULL);
	assert_int_equal(r.status, 400);
	assert_string_equal(err_field(&r), "template_id");
	ts_resp_clear(&r);
}

static void unknown_field_is_named(void **state)
{
	ts_resp r = ts_call(*state, "POST", "/api/v1/requests", ADMIN_TOKEN,
			    "{\"template_id\": \"t1\", \"count\": 1, \"colour\": \"red\"}", NULL);
	assert_int_equal(r.status, 400);
	assert_string_equal(err_field(&r), "colour");
	ts_resp_clear(&r);
	r = ts_call(*state, "GET", "/api/v1/machines?colour=red", READ_TOKEN, NULL, NULL);
	assert_int_equal(r.status, 400);
	assert_string_equal(err_field(&r), "colour");
	ts_resp_clear(&r);
}

static void body_over_limit_is_413_and_writes_nothing(void **state)
{
	size_t n = (1u << 20) + 100;
	char *big = malloc(n + 64);
	memset(big, ' ', n);
	memcpy(big, "{\"template_id\": \"t1\", \"count\": 1", 31);
	strcpy(big + n, "}");
	ts_resp r = ts_call(*state, "POST", "/api/v1/requests", ADMIN_TOKEN, big, NULL);
	free(big);
	assert_int_equal(r.status, 413);
	assert_string_equal(err_code(&r), "BODY_TOO_LARGE");
	ts_resp_clear(&r);
	r = ts_call(*state, "GET", "/api/v1/requests", READ_TOKEN, NULL, NULL);
	assert_int_equal(json_array_size(json_object_get(r.body, "requests")), 0);
	ts_resp_clear(&r);
}

static void unknown_path_is_404_and_wrong_method_405(void **state)
{
	ts_resp r = ts_call(*state, "GET", "/api/v1/nothing", READ_TOKEN, NULL, NULL);
	assert_int_equal(r.status, 404);
	assert_string_equal(err_code(&r), "NOT_FOUND");
	ts_resp_clear(&r);
	r = ts_call(*state, "DELETE", "/api/v1/templates", ADMIN_TOKEN, NULL, NULL);
	assert_int_equal(r.status, 405);
	assert_non_null(strstr(r.headers, "Allow: GET"));
	ts_resp_clear(&r);
}

static void unknown_template_is_400_naming_template_id(void **state)
{
	ts_resp r = ts_call(*state, "POST", "/api/v1/requests", ADMIN_TOKEN,
			    "{\"template_id\": \"nope\", \"count\": 1}", NULL);
	assert_int_equal(r.status, 400);
	assert_string_equal(err_field(&r), "template_id");
	ts_resp_clear(&r);
}

static void over_available_is_400_naming_count(void **state)
{
	ts_resp r = ts_call(*state, "POST", "/api/v1/requests", ADMIN_TOKEN,
			    "{\"template_id\": \"small\", \"count\": 3}", NULL);
	assert_int_equal(r.status, 400);
	assert_string_equal(err_field(&r), "count");
	ts_resp_clear(&r);
}

/* The bound of every front end (PV_BROKER_MAX_MACHINE_COUNT), in the
 * broker's one message. */
static void count_over_the_bound_is_400_with_the_brokers_message(void **state)
{
	ts_resp r = ts_call(*state, "POST", "/api/v1/requests", ADMIN_TOKEN,
			    "{\"template_id\": \"t1\", \"count\": 100001}", NULL);
	assert_int_equal(r.status, 400);
	assert_string_equal(err_field(&r), "count");
	const char *msg = json_string_value(json_object_get(json_object_get(r.body, "error"), "message"));
	assert_non_null(strstr(msg, "machineCount must be from 1 to 100000 (got 100001)"));
	ts_resp_clear(&r);
}

/* ---- templates, requests, returns, machines ------------------------------------------ */

static void templates_list_and_one(void **state)
{
	ts_resp r = ts_call(*state, "GET", "/api/v1/templates", READ_TOKEN, NULL, NULL);
	assert_int_equal(r.status, 200);
	json_t *t = json_array_get(json_object_get(r.body, "templates"), 0);
	assert_string_equal(json_string_value(json_object_get(t, "templateId")), "t1");
	assert_int_equal(json_integer_value(json_object_get(t, "availableNumber")), 50);
	assert_string_equal(json_string_value(json_object_get(t, "provider")), "main");
	ts_resp_clear(&r);
	r = ts_call(*state, "GET", "/api/v1/templates/small", READ_TOKEN, NULL, NULL);
	assert_int_equal(r.status, 200);
	assert_int_equal(json_integer_value(json_object_get(r.body, "maxNumber")), 2);
	ts_resp_clear(&r);
	r = ts_call(*state, "GET", "/api/v1/templates/zzz", READ_TOKEN, NULL, NULL);
	assert_int_equal(r.status, 404);
	ts_resp_clear(&r);
}

static void create_then_get_request(void **state)
{
	ts_env *e = *state;
	ts_resp r = ts_call(e, "POST", "/api/v1/requests", ADMIN_TOKEN, "{\"template_id\": \"t1\", \"count\": 3}", NULL);
	assert_int_equal(r.status, 202);
	const char *id = json_string_value(json_object_get(r.body, "request_id"));
	assert_non_null(id);
	assert_int_equal(strncmp(id, "req-", 4), 0);
	assert_int_equal(json_array_size(json_object_get(r.body, "machines")), 3);
	json_t *m = json_array_get(json_object_get(r.body, "machines"), 0);
	assert_string_equal(json_string_value(json_object_get(m, "provider")), "simA");
	char path[128];
	snprintf(path, sizeof path, "/api/v1/requests/%s", id);
	ts_resp g = ts_call(e, "GET", path, READ_TOKEN, NULL, NULL);
	assert_int_equal(g.status, 200);
	assert_string_equal(json_string_value(json_object_get(g.body, "request_id")), id);
	assert_string_equal(json_string_value(json_object_get(g.body, "kind")), "acquire");
	assert_int_equal(json_integer_value(json_object_get(g.body, "count")), 3);
	ts_resp_clear(&g);
	ts_resp_clear(&r);
	r = ts_call(e, "GET", "/api/v1/requests/req-nope", READ_TOKEN, NULL, NULL);
	assert_int_equal(r.status, 404);
	ts_resp_clear(&r);
}

static void requests_list_filters_by_status(void **state)
{
	ts_env *e = *state;
	create(e, 1);
	create(e, 1);
	ts_resp r = ts_call(e, "GET", "/api/v1/requests?status=complete&limit=1", READ_TOKEN, NULL, NULL);
	assert_int_equal(r.status, 200);
	assert_int_equal(json_array_size(json_object_get(r.body, "requests")), 1);
	ts_resp_clear(&r);
	r = ts_call(e, "GET", "/api/v1/requests?status=complete_with_error", READ_TOKEN, NULL, NULL);
	assert_int_equal(json_array_size(json_object_get(r.body, "requests")), 0);
	ts_resp_clear(&r);
	r = ts_call(e, "GET", "/api/v1/requests?status=bogus", READ_TOKEN, NULL, NULL);
	assert_int_equal(r.status, 400);
	assert_string_equal(err_field(&r), "status");
	ts_resp_clear(&r);
}

static void idempotency_key_replays_and_conflicts(void **state)
{
	ts_env *e = *state;
	const char *body = "{\"template_id\": \"t1\", \"count\": 2}";
	ts_resp a = ts_call(e, "POST", "/api/v1/requests", ADMIN_TOKEN, body, "Idempotency-Key: rest1:req-42");
	assert_int_equal(a.status, 202);
	ts_resp b = ts_call(e, "POST", "/api/v1/requests", ADMIN_TOKEN, body, "Idempotency-Key: rest1:req-42");
	assert_int_equal(b.status, 200);
	assert_string_equal(json_string_value(json_object_get(a.body, "request_id")),
			    json_string_value(json_object_get(b.body, "request_id")));
	ts_resp c = ts_call(e, "POST", "/api/v1/requests", ADMIN_TOKEN, "{\"template_id\": \"t1\", \"count\": 3}",
			    "Idempotency-Key: rest1:req-42");
	assert_int_equal(c.status, 409);
	ts_resp_clear(&a);
	ts_resp_clear(&b);
	ts_resp_clear(&c);
	ts_resp l = ts_call(e, "GET", "/api/v1/requests", READ_TOKEN, NULL, NULL);
	assert_int_equal(json_array_size(json_object_get(l.body, "requests")), 1);
	ts_resp_clear(&l);
}

static void returns_terminate_machines(void **state)
{
	ts_env *e = *state;
	const char *id = create(e, 2);
	char path[160];
	snprintf(path, sizeof path, "/api/v1/machines?request_id=%s", id);
	ts_resp m = ts_call(e, "GET", path, READ_TOKEN, NULL, NULL);
	json_t *ms = json_object_get(m.body, "machines");
	assert_int_equal(json_array_size(ms), 2);
	char body[256];
	snprintf(body, sizeof body, "{\"machines\": [{\"machine_id\": \"%s\"}]}",
		 json_string_value(json_object_get(json_array_get(ms, 0), "machine_id")));
	ts_resp r = ts_call(e, "POST", "/api/v1/returns", ADMIN_TOKEN, body, NULL);
	assert_int_equal(r.status, 202);
	assert_string_equal(json_string_value(json_object_get(r.body, "kind")), "return");
	assert_int_equal(strncmp(json_string_value(json_object_get(r.body, "request_id")), "ret-", 4), 0);
	json_t *gone = json_array_get(json_object_get(r.body, "machines"), 0);
	assert_string_equal(json_string_value(json_object_get(gone, "state")), "terminated");
	ts_resp_clear(&r);
	ts_resp_clear(&m);
	r = ts_call(e, "POST", "/api/v1/returns", ADMIN_TOKEN, "{\"machines\": [{\"machine_id\": \"i-unknown\"}]}", NULL);
	assert_int_equal(r.status, 400);
	assert_string_equal(err_field(&r), "machines");
	ts_resp_clear(&r);
	r = ts_call(e, "POST", "/api/v1/returns", ADMIN_TOKEN, "{\"machines\": [{\"id\": \"x\"}]}", NULL);
	assert_int_equal(r.status, 400);
	assert_string_equal(err_field(&r), "machines[0]");
	ts_resp_clear(&r);
}

static void machines_filter_by_ids_and_state(void **state)
{
	ts_env *e = *state;
	const char *id = create(e, 2);
	char path[200];
	snprintf(path, sizeof path, "/api/v1/machines?request_id=%s", id);
	ts_resp m = ts_call(e, "GET", path, READ_TOKEN, NULL, NULL);
	const char *first = json_string_value(json_object_get(json_array_get(json_object_get(m.body, "machines"), 0),
							     "machine_id"));
	snprintf(path, sizeof path, "/api/v1/machines?ids=%s", first);
	ts_resp one = ts_call(e, "GET", path, READ_TOKEN, NULL, NULL);
	assert_int_equal(one.status, 200);
	assert_int_equal(json_array_size(json_object_get(one.body, "machines")), 1);
	ts_resp_clear(&one);
	one = ts_call(e, "GET", "/api/v1/machines?state=terminated", READ_TOKEN, NULL, NULL);
	assert_int_equal(json_array_size(json_object_get(one.body, "machines")), 0);
	ts_resp_clear(&one);
	one = ts_call(e, "GET", "/api/v1/machines?state=gone", READ_TOKEN, NULL, NULL);
	assert_int_equal(one.status, 400);
	assert_string_equal(err_field(&one), "state");
	ts_resp_clear(&one);
	ts_resp_clear(&m);
}

/* ---- operators --------------------------------------------------------------------------- */

static void providers_graph_and_health(void **state)
{
	ts_env *e = *state;
	ts_resp r = ts_call(e, "GET", "/api/v1/providers", READ_TOKEN, NULL, NULL);
	assert_int_equal(r.status, 200);
	assert_string_equal(json_string_value(json_object_get(r.body, "current")), "main");
	json_t *main = json_object_get(json_object_get(r.body, "strategies"), "main");
	assert_string_equal(json_string_value(json_object_get(main, "kind")), "fallback");
	assert_int_equal(json_array_size(json_object_get(main, "children")), 2);
	assert_non_null(json_object_get(json_object_get(main, "stats"), "circuit_metrics"));
	ts_resp_clear(&r);
	r = ts_call(e, "GET", "/api/v1/providers/simA/health", READ_TOKEN, NULL, NULL);
	assert_int_equal(r.status, 200);
	assert_true(json_is_true(json_object_get(r.body, "healthy")));
	ts_resp_clear(&r);
	r = ts_call(e, "GET", "/api/v1/providers/nope/health", READ_TOKEN, NULL, NULL);
	assert_int_equal(r.status, 404);
	ts_resp_clear(&r);
}

static void put_strategy_applies_or_changes_nothing(void **state)
{
	ts_env *e = *state;
	ts_resp r = ts_call(e, "PUT", "/api/v1/strategy", ADMIN_TOKEN,
			    "{\"selection_policy\": \"round_robin\", \"selection_criteria\": {\"min_success_rate\": 1000}}", NULL);
	assert_int_equal(r.status, 400);
	assert_non_null(err_field(&r));
	ts_resp_clear(&r);
	r = ts_call(e, "GET", "/api/v1/providers", READ_TOKEN, NULL, NULL);
	assert_string_not_equal(json_string_value(json_object_get(r.body, "policy")), "round_robin");
	ts_resp_clear(&r);
	r = ts_call(e, "PUT", "/api/v1/strategy", ADMIN_TOKEN, "{\"selection_policy\": \"round_robin\"}", NULL);
	assert_int_equal(r.status, 200);
	assert_string_equal(json_string_value(json_object_get(r.body, "policy")), "round_robin");
	ts_resp_clear(&r);
	r = ts_call(e, "PUT", "/api/v1/strategy", ADMIN_TOKEN, "{\"policy\": \"x\"}", NULL);
	assert_int_equal(r.status, 400);
	assert_string_equal(err_field(&r), "policy");
	ts_resp_clear(&r);
}

static void exec_runs_one_operation(void **state)
{
	ts_env *e = *state;
	ts_resp r = ts_call(e, "POST", "/api/v1/providers/main/exec", ADMIN_TOKEN,
			    "{\"operation\": \"get_available_templates\", \"context\": {\"debug\": true}}", NULL);
	assert_int_equal(r.status, 200);
	assert_true(json_is_true(json_object_get(r.body, "success")));
	ts_resp_clear(&r);
	r = ts_call(e, "POST", "/api/v1/providers/main/exec", ADMIN_TOKEN, "{\"operation\": \"fly\"}", NULL);
	assert_int_equal(r.status, 400);
	assert_string_equal(err_field(&r), "operation");
	ts_resp_clear(&r);
	r = ts_call(e, "POST", "/api/v1/providers/main/exec", ADMIN_TOKEN,
		    "{\"operation\": \"health_check\", \"params\": []}", NULL);
	assert_int_equal(r.status, 400);
	assert_string_equal(err_field(&r), "params");
	ts_resp_clear(&r);
	r = ts_call(e, "POST", "/api/v1/providers/ghost/exec", ADMIN_TOKEN, "{\"operation\": \"health_check\"}", NULL);
	assert_int_equal(r.status, 404);
	ts_resp_clear(&r);
	r = ts_call(e, "POST", "/api/v1/providers/main/exec", READ_TOKEN, "{\"operation\": \"health_check\"}", NULL);
	assert_int_equal(r.status, 403);
	ts_resp_clear(&r);
}

/* The value of one sample line ("name{labels} value") or -1. */
static double sample(const char *text, const char *series)
{
	const char *p = text;
	size_t n = strlen(series);
	while ((p = strstr(p, series))) {
		if ((p == text || p[-1] == '\n') && p[n] == ' ')
			return atof(p + n + 1);
		p += n;
	}
	return -1;
}

static void metrics_move_as_operations_run(void **state)
{
	ts_env *e = *state;
	ts_resp a = ts_call(e, "GET", "/metrics", READ_TOKEN, NULL, NULL);
	assert_int_equal(a.status, 200);
	assert_non_null(strstr(a.headers, "text/plain; version=0.0.4"));
	assert_non_null(strstr(a.raw, "# TYPE provisio_strategy_operations_total counter"));
	assert_true(sample(a.raw, "provisio_build_info{version=\"" PROVISIO_VERSION "\"}") == 1);
	const char *ops = "provisio_strategy_operations_total{strategy=\"main\",operation=\"create_instances\","
			  "outcome=\"success\"}";
	double before = sample(a.raw, ops);
	create(e, 1);
	create(e, 1);
	pv_server_reconcile(e->srv, NULL);
	ts_resp b = ts_call(e, "GET", "/metrics", READ_TOKEN, NULL, NULL);
	assert_true(sample(b.raw, ops) == (before < 0 ? 0 : before) + 2);
	assert_true(sample(b.raw, "provisio_broker_provisioning_seconds_count{}") == 2);
	assert_true(sample(b.raw, "provisio_broker_requests{state=\"complete\"}") == 2);
	assert_true(sample(b.raw, "provisio_broker_machines{provider=\"simA\",state=\"running\"}") == 2);
	assert_true(sample(b.raw, "provisio_strategy_operation_duration_seconds_count{strategy=\"main\"}") >= 2);
	assert_true(sample(b.raw, "provisio_breaker_state{strategy=\"main\",child=\"simA\"}") == 0);
	assert_true(sample(b.raw, "provisio_http_requests_total{code=\"2xx\"}") >=
		    sample(a.raw, "provisio_http_requests_total{code=\"2xx\"}") + 3);
	ts_resp_clear(&a);
	ts_resp_clear(&b);
}

static void balancer_weights_are_exported(void **state)
{
	(void)state;
	ts_env e;
	ts_env_init(&e);
	ts_config_open(&e, "\"providers\": [{\"name\": \"a\", \"type\": \"sim\", \"weight\": 3},"
			" {\"name\": \"b\", \"type\": \"sim\", \"weight\": 1}],"
			" \"strategies\": [{\"name\": \"lb\", \"kind\": \"balancer\", \"children\": [\"a\", \"b\"],"
			"   \"config\": {\"algorithm\": \"weighted_round_robin\"}}],"
			" \"default_strategy\": \"lb\"");
	assert_int_equal(ts_start(&e), 0);
	ts_resp r = ts_call(&e, "GET", "/metrics", NULL, NULL, NULL);
	assert_int_equal(r.status, 200);
	assert_true(sample(r.raw, "provisio_balancer_weight{strategy=\"lb\",child=\"a\"}") == 3);
	assert_true(sample(r.raw, "provisio_balancer_weight{strategy=\"lb\",child=\"b\"}") == 1);
	ts_resp_clear(&r);
	ts_env_clear(&e);
}

typedef struct slow_call {
	const ts_env *e;
	ts_resp r;
	uint64_t done_ns;
} slow_call;

static void *slow_create(void *arg)
{
	slow_call *c = arg;
	c->r = ts_call(c->e, "POST", "/api/v1/requests", NULL, "{\"template_id\": \"t1\", \"count\": 1}", NULL);
	c->done_ns = pv_now_ns();
	return NULL;
}

/* Providers of type "gate" (built by the server from its configuration)
 * hold every call until the test opens them; the last one built. */
static pv_strategy *the_gate;

static int gate_factory(pv_strategy **out, const char *name, const json_t *config, const pv_clock *clock)
{
	(void)config;
	(void)clock;
	*out = the_gate = test_gate_strategy(name, NULL);
	return 0;
}

static void a_slow_provider_does_not_hold_the_loop(void **state)
{
	(void)state;
	ts_env e;
	ts_env_init(&e);
	assert_int_equal(pv_provider_register_type("gate", gate_factory), 0);
	/* one loop, one provider that holds the create until the test lets it go */
	ts_config_open(&e, "\"providers\": [{\"name\": \"s\", \"type\": \"gate\"}]");
	assert_int_equal(ts_start(&e), 0);
	slow_call c = {.e = &e};
	pthread_t th;
	pthread_create(&th, NULL, slow_create, &c);
	test_gate_wait_inside(the_gate, 1); /* the create is with the provider now */
	ts_resp h = ts_call(&e, "GET", "/health", NULL, NULL, NULL);
	/* answered while the create is still held (on the loop itself it
	 * could not be) */
	assert_int_equal(h.status, 200);
	assert_int_equal(c.done_ns, 0);
	ts_resp_clear(&h);
	test_gate_open(the_gate);
	pthread_join(th, NULL);
	assert_int_equal(c.r.status, 502); /* the gate makes no machine */
	ts_resp_clear(&c.r);
	ts_env_clear(&e);
}

static void log_levels_change_at_run_time(void **state)
{
	ts_env *e = *state;
	ts_resp r = ts_call(e, "PUT", "/api/v1/log-levels", ADMIN_TOKEN, "{\"providers.aws\": \"debug\"}", NULL);
	assert_int_equal(r.status, 200);
	assert_string_equal(json_string_value(json_object_get(r.body, "providers.aws")), "debug");
	ts_resp_clear(&r);
	r = ts_call(e, "PUT", "/api/v1/log-levels", ADMIN_TOKEN, "{\"broker\": \"loud\"}", NULL);
	assert_int_equal(r.status, 400);
	assert_string_equal(err_field(&r), "broker");
	ts_resp_clear(&r);
}

/* ---- reconciler ------------------------------------------------------------------------------ */

static json_t *reconcile(ts_env *e)
{
	json_t *rep = NULL;
	assert_int_equal(pv_server_reconcile(e->srv, &rep), 0);
	return rep;
}

/* A machine of a new request that the provider takes back behind
 * provisio's back; its id in `mid`. */
static void machine_taken_back(ts_env *e, char *mid, size_t size)
{
	const char *id = create(e, 1);
	char path[200], body[300];
	snprintf(path, sizeof path, "/api/v1/machines?request_id=%s", id);
	ts_resp m = ts_call(e, "GET", path, READ_TOKEN, NULL, NULL);
	snprintf(mid, size, "%s", json_string_value(json_object_get(
					  json_array_get(json_object_get(m.body, "machines"), 0), "machine_id")));
	ts_resp_clear(&m);
	snprintf(body, sizeof body, "{\"operation\": \"terminate_instances\", \"params\": {\"instance_ids\": [\"%s\"]}}", mid);
	ts_resp x = ts_call(e, "POST", "/api/v1/providers/simA/exec", ADMIN_TOKEN, body, NULL);
	assert_true(json_is_true(json_object_get(x.body, "success")));
	ts_resp_clear(&x);
}

static void reconciler_reports_reclaimed_machine(void **state)
{
	ts_env *e = *state;
	char mid[128];
	machine_taken_back(e, mid, sizeof mid);
	json_t *rep = reconcile(e);
	json_t *rec = json_object_get(rep, "reclaimed");
	assert_int_equal(json_array_size(rec), 1);
	assert_string_equal(json_string_value(json_object_get(json_array_get(rec, 0), "machine_id")), mid);
	json_decref(rep);
}

/* Another daemon on the same store leads: this one still beats, works the
 * queue and counts, but leaves refreshes, reclaims, orphans and recovery to
 * the leader, and takes over when the leader's lease runs out. */
static void reconciler_leaves_provider_passes_to_the_leading_daemon(void **state)
{
	ts_env *e = *state;
	char mid[128];
	machine_taken_back(e, mid, sizeof mid);
	pv_store *st = NULL;
	assert_int_equal(pv_store_open(&st, e->store, NULL), 0);
	char row[160];
	snprintf(row, sizeof row, "{\"holder\": \"other-host pid 1 started 1\", \"until_ms\": %lld}",
		 (long long)(pv_wall_ms() + 600000));
	bf_kv_put(st, "lease/reconciler", row);
	json_t *rep = reconcile(e);
	assert_true(json_is_false(json_object_get(rep, "leader")));
	ts_resp mt = ts_call(e, "GET", "/metrics", READ_TOKEN, NULL, NULL);
	assert_true(sample(mt.raw, "provisio_reconciler_leader") == 0);
	ts_resp_clear(&mt);
	assert_int_equal(json_array_size(json_object_get(rep, "reclaimed")), 0);
	assert_int_equal(json_integer_value(json_object_get(rep, "refreshed")), 0);
	json_decref(rep);
	snprintf(row, sizeof row, "{\"holder\": \"other-host pid 1 started 1\", \"until_ms\": %lld}",
		 (long long)(pv_wall_ms() - 1));
	bf_kv_put(st, "lease/reconciler", row);
	rep = reconcile(e);
	assert_true(json_is_true(json_object_get(rep, "leader")));
	mt = ts_call(e, "GET", "/metrics", READ_TOKEN, NULL, NULL);
	assert_true(sample(mt.raw, "provisio_reconciler_leader") == 1);
	ts_resp_clear(&mt);
	json_t *rec = json_object_get(rep, "reclaimed");
	assert_int_equal(json_array_size(rec), 1);
	assert_string_equal(json_string_value(json_object_get(json_array_get(rec, 0), "machine_id")), mid);
	json_decref(rep);
	pv_store_close(st);
}

static void reconciler_finds_orphans_on_the_second_pass(void **state)
{
	ts_env *e = *state;
	create(e, 1); /* a known machine is never an orphan */
	ts_resp x = ts_call(e, "POST", "/api/v1/providers/simB/exec", ADMIN_TOKEN,
			    "{\"operation\": \"create_instances\", \"params\": {\"count\": 1, \"template_id\": \"t1\","
			    " \"request_id\": \"req-lost\"}}", NULL);
	assert_true(json_is_true(json_object_get(x.body, "success")));
	ts_resp_clear(&x);
	json_t *rep = reconcile(e);
	assert_int_equal(json_array_size(json_object_get(rep, "orphans")), 0); /* a suspect first */
	json_decref(rep);
	rep = reconcile(e);
	json_t *o = json_object_get(rep, "orphans");
	assert_int_equal(json_array_size(o), 1);
	assert_string_equal(json_string_value(json_object_get(json_array_get(o, 0), "provider")), "simB");
	assert_int_equal(json_integer_value(json_object_get(rep, "orphans_terminated")), 0);
	json_decref(rep);
	ts_resp mt = ts_call(e, "GET", "/metrics", READ_TOKEN, NULL, NULL);
	assert_true(sample(mt.raw, "provisio_orphans_found_total") == 1);
	ts_resp_clear(&mt);
}

static void reconciler_terminates_orphans_when_configured(void **state)
{
	(void)state;
	ts_env e;
	ts_env_init(&e);
	ts_config(&e, ", \"terminate_orphans\": true", NULL, NULL);
	assert_int_equal(ts_start(&e), 0);
	ts_resp x = ts_call(&e, "POST", "/api/v1/providers/simA/exec", ADMIN_TOKEN,
			    "{\"operation\": \"create_instances\", \"params\": {\"count\": 2, \"template_id\": \"t1\"}}", NULL);
	ts_resp_clear(&x);
	json_t *rep = reconcile(&e);
	json_decref(rep);
	rep = reconcile(&e);
	assert_int_equal(json_integer_value(json_object_get(rep, "orphans_terminated")), 2);
	json_decref(rep);
	x = ts_call(&e, "POST", "/api/v1/providers/simA/exec", ADMIN_TOKEN,
		    "{\"operation\": \"describe_resource_instances\"}", NULL);
	size_t i;
	json_t *inst;
	json_array_foreach(json_object_get(json_object_get(x.body, "data"), "instances"), i, inst)
		assert_string_not_equal(json_string_value(json_object_get(inst, "state")), "running");
	ts_resp_clear(&x);
	ts_env_clear(&e);
}

/* One reconciler pass; whether request `id` is final after it. */
static bool refreshed_until_final(ts_env *e, const char *id)
{
	json_decref(reconcile(e));
	pv_store *st = bf_store(e->store); /* read as it is: a status call would refresh it */
	pv_request_rec q;
	bool final = false;
	if (pv_store_begin(st, false) == 0) {
		final = pv_store_request_get(st, id, &q) == 0 && pv_request_state_final(q.state);
		pv_store_commit(st);
	}
	pv_store_close(st);
	return final;
}

static void reconciler_enforces_pending_timeout(void **state)
{
	(void)state;
	ts_env e;
	ts_env_init(&e);
	/* machines stay pending for an hour; the broker gives them 1 s */
	ts_config(&e, NULL, ", \"boot_delay_ms\": 3600000", ", \"pending_timeout_seconds\": 1");
	assert_int_equal(ts_start(&e), 0);
	const char *id = create(&e, 1);
	char rid[80];
	snprintf(rid, sizeof rid, "%s", id);
	/* reconciler passes until one has found the machine pending too long
	 * (launch times are whole seconds: at least a second passes first) */
	bool failed = false;
	PV_TEST_WAIT_UNTIL((failed = refreshed_until_final(&e, rid)));
	assert_true(failed);
	char path[160];
	snprintf(path, sizeof path, "/api/v1/requests/%s", rid);
	ts_resp r = ts_call(&e, "GET", path, READ_TOKEN, NULL, NULL);
	json_t *m = json_array_get(json_object_get(r.body, "machines"), 0);
	assert_string_equal(json_string_value(json_object_get(m, "result")), "fail");
	assert_non_null(strstr(json_string_value(json_object_get(m, "message")), "pending timeout"));
	assert_string_equal(json_string_value(json_object_get(r.body, "status")), "complete_with_error");
	ts_resp_clear(&r);
	ts_env_clear(&e);
}

/* ---- alerts and reload ---------------------------------------------------------------------------- */

static void alert_fires_and_resolves_once_per_transition(void **state)
{
	(void)state;
	ts_env e;
	ts_env_init(&e);
	char extra[1024], out[300];
	snprintf(out, sizeof out, "%s/alerts.log", e.dir);
	snprintf(extra, sizeof extra,
		 ", \"alerts\": {\"interval_seconds\": 3600, \"command\": \"echo $PROVISIO_ALERT_NAME "
		 "$PROVISIO_ALERT_STATE >> %s\", \"rules\": [{\"name\": \"simA-down\", \"kind\": \"unhealthy\","
		 " \"strategy\": \"simA\"}]}", out);
	ts_config(&e, extra, NULL, NULL);
	assert_int_equal(ts_start(&e), 0);
	ts_resp x = ts_call(&e, "GET", "/api/v1/providers/simA/health", READ_TOKEN, NULL, NULL);
	ts_resp_clear(&x);
	assert_int_equal(pv_server_evaluate_alerts(e.srv), 0);
	/* the sim's health is scripted by config; a reload makes it unhealthy */
	ts_config(&e, extra, ", \"healthy\": false", NULL);
	int rc = pv_server_reload(e.srv, NULL);
	if (rc < 0)
		fprintf(stderr, "reload: %s\n", pv_error_last());
	assert_int_equal(rc, 0);
	x = ts_call(&e, "GET", "/api/v1/providers/simA/health", READ_TOKEN, NULL, NULL);
	assert_true(json_is_false(json_object_get(x.body, "healthy")));
	ts_resp_clear(&x);
	assert_int_equal(pv_server_evaluate_alerts(e.srv), 1);
	assert_int_equal(pv_server_evaluate_alerts(e.srv), 0); /* still firing: no second notice */
	x = ts_call(&e, "GET", "/api/v1/alerts", READ_TOKEN, NULL, NULL);
	assert_true(json_is_true(json_object_get(json_array_get(json_object_get(x.body, "alerts"), 0), "firing")));
	ts_resp_clear(&x);
	PV_TEST_WAIT_UNTIL(bf_file_has(out, "simA-down firing\n"));
	char line[128] = "";
	FILE *f = fopen(out, "r");
	assert_non_null(f);
	assert_non_null(fgets(line, sizeof line, f));
	fclose(f);
	assert_string_equal(line, "simA-down firing\n");
	/* healthy again: resolved, once */
	ts_config(&e, extra, NULL, NULL);
	assert_int_equal(pv_server_reload(e.srv, NULL), 0);
	x = ts_call(&e, "GET", "/api/v1/providers/simA/health", READ_TOKEN, NULL, NULL);
	ts_resp_clear(&x);
	assert_int_equal(pv_server_evaluate_alerts(e.srv), 1);
	assert_int_equal(pv_server_evaluate_alerts(e.srv), 0);
	x = ts_call(&e, "GET", "/api/v1/alerts", READ_TOKEN, NULL, NULL);
	assert_true(json_is_false(json_object_get(json_array_get(json_object_get(x.body, "alerts"), 0), "firing")));
	ts_resp_clear(&x);
	ts_env_clear(&e);
}

static void reload_applies_good_config_and_keeps_old_on_bad(void **state)
{
	ts_env *e = *state;
	/* bad: the old configuration keeps serving */
	bf_write_file(e->config, "{\"providers\": [{\"name\": \"x\", \"type\": \"nosuchtype\"}]}");
	pv_diags d;
	pv_diags_init(&d);
	assert_int_not_equal(pv_server_reload(e->srv, &d), 0);
	assert_true(d.errors > 0);
	pv_diags_clear(&d);
	ts_resp r = ts_call(e, "GET", "/api/v1/templates", READ_TOKEN, NULL, NULL);
	assert_int_equal(r.status, 200);
	ts_resp_clear(&r);
	/* good: a new token replaces the old ones */
	ts_config(e, NULL, NULL, NULL);
	char text[8192];
	bf_read_file(e->config, text, sizeof text);
	char *p = strstr(text, "\"reader\"");
	memcpy(p, "\"render\"", 8); /* the token's name changes, same length */
	bf_write_file(e->config, text);
	assert_int_equal(pv_server_reload(e->srv, NULL), 0);
	r = ts_call(e, "GET", "/api/v1/templates", READ_TOKEN, NULL, NULL);
	assert_int_equal(r.status, 200);
	ts_resp_clear(&r);
	r = ts_call(e, "GET", "/metrics", READ_TOKEN, NULL, NULL);
	assert_true(sample(r.raw, "provisio_config_reloads_total{result=\"success\"}") == 1);
	assert_true(sample(r.raw, "provisio_config_reloads_total{result=\"failure\"}") == 1);
	ts_resp_clear(&r);
}

static void top_prints_strategies_and_requests(void **state)
{
	ts_env *e = *state;
	create(e, 1);
	char cmd[600], out[8192];
	snprintf(cmd, sizeof cmd, "%s top --once --url %s --token %s 2>&1", PV_CLI_BIN, e->url, READ_TOKEN);
	FILE *p = popen(cmd, "r");
	size_t n = fread(out, 1, sizeof out - 1, p);
	out[n] = '\0';
	assert_int_equal(pclose(p), 0);
	assert_non_null(strstr(out, "STRATEGIES  current: main"));
	assert_non_null(strstr(out, "simA:closed simB:closed"));
	assert_non_null(strstr(out, "ACTIVE REQUESTS"));
	snprintf(cmd, sizeof cmd, "%s top --once --url %s --token wrong 2>&1", PV_CLI_BIN, e->url);
	p = popen(cmd, "r");
	n = fread(out, 1, sizeof out - 1, p);
	out[n] = '\0';
	assert_int_not_equal(pclose(p), 0);
	assert_non_null(strstr(out, "401"));
}

static bool log_has(const ts_env *e, const char *needle)
{
	char path[320];
	snprintf(path, sizeof path, "%s/server.log", e->dir);
	fflush(e->log);
	return bf_file_has(path, needle);
}

/* A provider that cannot list its instances is a failed sweep, logged and
 * counted in /metrics, never taken for an empty one. */
static void reconciler_counts_a_failed_orphan_sweep(void **state)
{
	(void)state;
	ts_env e;
	ts_env_init(&e);
	ts_config(&e, NULL, ", \"failure_rate\": 1.0", NULL);
	assert_int_equal(ts_start(&e), 0);
	ts_resp lv = ts_call(&e, "PUT", "/api/v1/log-levels", ADMIN_TOKEN, "{\"reconciler\": \"warn\"}", NULL);
	assert_int_equal(lv.status, 200);
	ts_resp_clear(&lv);
	json_t *rep = reconcile(&e);
	json_t *failed = json_object_get(rep, "orphan_sweeps_failed");
	assert_int_equal(json_array_size(failed), 1);
	assert_string_equal(json_string_value(json_array_get(failed, 0)), "simA");
	json_decref(rep);
	assert_true(log_has(&e, "orphan sweep of 'simA' failed"));
	ts_resp mt = ts_call(&e, "GET", "/metrics", READ_TOKEN, NULL, NULL);
	assert_true(sample(mt.raw, "provisio_orphan_sweep_failures_total") == 1);
	assert_true(sample(mt.raw, "provisio_reconciler_passes_total") == 1);
	ts_resp_clear(&mt);
	ts_env_clear(&e);
}

static void debug_exec_logs_its_path_under_the_trace_id(void **state)
{
	ts_env *e = *state;
	ts_resp r = ts_call(e, "PUT", "/api/v1/log-levels", ADMIN_TOKEN, "{\"trace\": \"info\"}", NULL);
	ts_resp_clear(&r);
	r = ts_call(e, "POST", "/api/v1/providers/main/exec", ADMIN_TOKEN,
		    "{\"operation\": \"health_check\", \"context\": {\"debug\": true}}",
		    "traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
	assert_int_equal(r.status, 200);
	ts_resp_clear(&r);
	assert_true(log_has(e, "\"trace_id\":\"4bf92f3577b34da6a3ce929d0e0e4736\""));
	assert_true(log_has(e, "health_check on 'main' answered by"));
	/* without debug: nothing on the trace component */
	r = ts_call(e, "POST", "/api/v1/providers/simB/exec", ADMIN_TOKEN, "{\"operation\": \"health_check\"}", NULL);
	ts_resp_clear(&r);
	assert_false(log_has(e, "health_check on 'simB'"));
}

static void tls_serves_https_with_the_configured_certificate(void **state)
{
	(void)state;
	ts_env e;
	ts_env_init(&e);
	char cmd[1024], extra[800];
	snprintf(cmd, sizeof cmd, "openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=localhost "
		 "-keyout %s/key.pem -out %s/cert.pem >/dev/null 2>&1", e.dir, e.dir);
	if (system(cmd) != 0) {
		ts_env_clear(&e);
		skip();
	}
	snprintf(extra, sizeof extra, ", \"tls\": {\"cert_file\": \"%s/cert.pem\", \"key_file\": \"%s/key.pem\"}",
		 e.dir, e.dir);
	ts_config(&e, extra, NULL, NULL);
	assert_int_equal(ts_start(&e), 0);
	assert_int_equal(strncmp(e.url, "https://", 8), 0);
	ts_resp r = ts_call(&e, "GET", "/api/v1/templates", READ_TOKEN, NULL, NULL);
	assert_int_equal(r.status, 200);
	assert_int_equal(json_array_size(json_object_get(r.body, "templates")), 2);
	ts_resp_clear(&r);
	/* plain HTTP on the TLS port gets no answer */
	ts_env copy = e; /* "https://..." -> "http://...": drop the 's' */
	memmove(copy.url + 4, copy.url + 5, strlen(copy.url + 5) + 1);
	r = ts_call(&copy, "GET", "/health", NULL, NULL, NULL);
	assert_int_not_equal(r.status, 200);
	ts_resp_clear(&r);
	ts_env_clear(&e);
}

static void bad_tls_files_are_refused_at_start(void **state)
{
	(void)state;
	ts_env e;
	ts_env_init(&e);
	ts_config(&e, ", \"tls\": {\"cert_file\": \"/nonexistent/cert.pem\", \"key_file\": \"/nonexistent/key.pem\"}",
		  NULL, NULL);
	assert_int_equal(ts_start(&e), PV_EIO);
	assert_non_null(strstr(pv_error_last(), "server.tls"));
	ts_env_clear(&e);
}

/* The hash is PBKDF2-HMAC-SHA256 with a fresh salt: the same token hashes
 * differently each time, and the digest is OpenSSL's PBKDF2 of the token
 * with the salt and iterations the text names. */
static void hash_token_is_salted_pbkdf2(void **state)
{
	(void)state;
	char a[PV_SERVER_TOKEN_HASH_MAX], b[PV_SERVER_TOKEN_HASH_MAX];
	assert_int_equal(pv_server_hash_token("abc", 1000, a, sizeof a), 0);
	assert_int_equal(pv_server_hash_token("abc", 1000, b, sizeof b), 0);
	assert_int_equal(strncmp(a, "pbkdf2-sha256$1000$", 19), 0);
	assert_string_not_equal(a, b); /* salted */
	/* the digest is PBKDF2-HMAC-SHA256(token, salt, iterations) */
	unsigned char salt[16], dk[32];
	for (int i = 0; i < 16; i++)
		sscanf(a + 19 + 2 * i, "%2hhx", &salt[i]);
	assert_int_equal(PKCS5_PBKDF2_HMAC("abc", 3, salt, 16, 1000, EVP_sha256(), 32, dk), 1);
	char hex[65];
	for (int i = 0; i < 32; i++)
		sprintf(hex + 2 * i, "%02x", dk[i]);
	assert_string_equal(strrchr(a, '$') + 1, hex);
	assert_int_equal(pv_server_hash_token("abc", 10, a, sizeof a), PV_EINVAL); /* too few iterations */
}

#define T(f) cmocka_unit_test_setup_teardown(f, ts_setup_default, ts_teardown)

static void breaker_transitions_are_counted_in_metrics(void **state)
{
	(void)state;
	ts_env e;
	ts_env_init(&e);
	ts_config(&e, NULL, ", \"script\": [\"fail:EXECUTION_ERROR*2\"]", NULL);
	/* trips after 2 failures, may probe again after 50 ms */
	char text[8192], *fixed;
	bf_read_file(e.config, text, sizeof text);
	const char *from = "\"seed\": 3}";
	char *at = strstr(text, from);
	assert_non_null(at);
	assert_int_equal(asprintf(&fixed, "%.*s\"seed\": 3, \"circuit_breaker_threshold\": 2, "
			 "\"circuit_breaker_timeout_seconds\": 0.05, \"circuit_breaker_jitter\": 0}%s",
			 (int)(at - text), text, at + strlen(from)) > 0, 1);
	bf_write_file(e.config, fixed);
	free(fixed);
	assert_int_equal(ts_start(&e), 0);
	const char *series[] = {
		"provisio_breaker_transitions_total{strategy=\"main\",child=\"simA\",from=\"closed\",to=\"open\"}",
		"provisio_breaker_transitions_total{strategy=\"main\",child=\"simA\",from=\"open\",to=\"half_open\"}",
		"provisio_breaker_transitions_total{strategy=\"main\",child=\"simA\",from=\"half_open\",to=\"closed\"}",
		"provisio_breaker_transitions_total{strategy=\"main\",child=\"simA\",from=\"half_open\",to=\"open\"}",
	};
	ts_resp m = ts_call(&e, "GET", "/metrics", READ_TOKEN, NULL, NULL);
	assert_non_null(strstr(m.raw, "# TYPE provisio_breaker_transitions_total counter"));
	for (int i = 0; i < 4; i++)
		assert_true(sample(m.raw, series[i]) == 0);
	ts_resp_clear(&m);
	create(&e, 1); /* simA fails, simB answers */
	create(&e, 1); /* second failure: open */
	m = ts_call(&e, "GET", "/metrics", READ_TOKEN, NULL, NULL);
	assert_true(sample(m.raw, series[0]) == 1);
	assert_true(sample(m.raw, series[1]) == 0);
	assert_true(sample(m.raw, "provisio_breaker_state{strategy=\"main\",child=\"simA\"}") == 2);
	ts_resp_clear(&m);
	usleep(120 * 1000); /* the open period passes */
	create(&e, 1); /* the probe to simA succeeds: closed again */
	m = ts_call(&e, "GET", "/metrics", READ_TOKEN, NULL, NULL);
	assert_true(sample(m.raw, series[0]) == 1);
	assert_true(sample(m.raw, series[1]) == 1);
	assert_true(sample(m.raw, series[2]) == 1);
	assert_true(sample(m.raw, series[3]) == 0);
	assert_true(sample(m.raw, "provisio_breaker_state{strategy=\"main\",child=\"simA\"}") == 0);
	ts_resp_clear(&m);
	/* the fallback's stats carry the same counts */
	ts_resp p = ts_call(&e, "GET", "/api/v1/providers", READ_TOKEN, NULL, NULL);
	char *dump = json_dumps(p.body, JSON_COMPACT);
	assert_non_null(strstr(dump, "\"transitions\":{\"closed_to_open\":1,\"open_to_half_open\":1,"
				     "\"half_open_to_closed\":1,\"half_open_to_open\":0}"));
	free(dump);
	ts_resp_clear(&p);
	ts_env_clear(&e);
}

/* ---- Host Factory next to the daemon ------------------------------------------------ */

static void hostfactory_defers_to_the_running_daemon(void **state)
{
	ts_env *e = *state;
	pv_broker_open_options o = {.config = {.path = e->config}};
	pv_diags d;
	pv_diags_init(&d);
	pv_broker *b = NULL;
	assert_int_equal(pv_broker_open(&b, &o, &d), 0);
	pv_diags_clear(&d);
	/* the heartbeat is written as the server starts running */
	PV_TEST_WAIT_UNTIL(pv_broker_daemon_get(b, NULL) == 0);
	pv_daemon_info di;
	assert_int_equal(pv_broker_daemon_get(b, &di), 0);
	assert_int_equal(di.pid, getpid());
	assert_string_equal(di.listen, e->url);
	assert_int_equal(di.interval_ms, 3600 * 1000);

	json_t *in = json_loads("{\"template\": {\"templateId\": \"t1\", \"machineCount\": 2}}", 0, NULL), *out;
	assert_int_equal(pv_hf_run(b, PV_HF_REQUEST_MACHINES, in, &out), 0);
	json_decref(in);
	assert_int_equal(pv_broker_get_mode(b), PV_BROKER_DEFERRED);
	char path[160];
	snprintf(path, sizeof path, "/api/v1/requests/%s", json_string_value(json_object_get(out, "requestId")));
	json_decref(out);
	/* the queue timer (0.25 s), not the hour-long reconciler tick, provisions it */
	ts_resp r = {0};
	PV_TEST_WAIT_UNTIL((ts_resp_clear(&r), r = ts_call(e, "GET", path, READ_TOKEN, NULL, NULL),
			    strcmp(json_string_value(json_object_get(r.body, "state")), "complete") == 0));
	assert_string_equal(json_string_value(json_object_get(r.body, "state")), "complete");
	assert_int_equal(json_array_size(json_object_get(r.body, "machines")), 2);
	ts_resp_clear(&r);
	ts_stop(e); /* graceful: the heartbeat says stopped */
	assert_int_equal(pv_broker_daemon_get(b, NULL), PV_ENOTFOUND);
	pv_broker_close(b);
}

int main(void)
{
	curl_global_init(CURL_GLOBAL_ALL);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(hash_token_is_salted_pbkdf2),
		T(health_needs_no_token),
		T(ready_reports_store_and_healthy_providers),
		T(missing_token_is_401_with_www_authenticate),
		T(unknown_token_is_401),
		T(read_token_reads_but_cannot_mutate),
		T(metrics_need_a_token),
		T(remembered_token_is_forgotten_when_a_reload_removes_it),
		cmocka_unit_test(auth_off_is_refused_off_loopback),
		cmocka_unit_test(auth_off_on_loopback_lets_everything_through),
		T(malformed_json_is_400),
		T(wrong_type_names_the_field),
		T(unknown_field_is_named),
		T(body_over_limit_is_413_and_writes_nothing),
		T(unknown_path_is_404_and_wrong_method_405),
		T(unknown_template_is_400_naming_template_id),
		T(over_available_is_400_naming_count),
		T(count_over_the_bound_is_400_with_the_brokers_message),
		T(templates_list_and_one),
		T(create_then_get_request),
		T(requests_list_filters_by_status),
		T(idempotency_key_replays_and_conflicts),
		T(returns_terminate_machines),
		T(machines_filter_by_ids_and_state),
		T(providers_graph_and_health),
		T(put_strategy_applies_or_changes_nothing),
		T(exec_runs_one_operation),
		T(metrics_move_as_operations_run),
		cmocka_unit_test(breaker_transitions_are_counted_in_metrics),
		T(log_levels_change_at_run_time),
		cmocka_unit_test(balancer_weights_are_exported),
		cmocka_unit_test(a_slow_provider_does_not_hold_the_loop),
		T(reconciler_reports_reclaimed_machine),
		T(reconciler_leaves_provider_passes_to_the_leading_daemon),
		T(reconciler_finds_orphans_on_the_second_pass),
		cmocka_unit_test(reconciler_terminates_orphans_when_configured),
		cmocka_unit_test(reconciler_counts_a_failed_orphan_sweep),
		cmocka_unit_test(reconciler_enforces_pending_timeout),
		cmocka_unit_test(alert_fires_and_resolves_once_per_transition),
		T(reload_applies_good_config_and_keeps_old_on_bad),
		T(top_prints_strategies_and_requests),
		T(hostfactory_defers_to_the_running_daemon),
		T(debug_exec_logs_its_path_under_the_trace_id),
		cmocka_unit_test(tls_serves_https_with_the_configured_certificate),
		cmocka_unit_test(bad_tls_files_are_refused_at_start),
	};
	int rc = cmocka_run_group_tests(tests, NULL, NULL);
	curl_global_cleanup();
	return rc;
}
