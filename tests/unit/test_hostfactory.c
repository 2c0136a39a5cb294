/*
 * test_hostfactory.c - the five Host Factory commands against the contract
 * (docs/hostfactory.md, the examples of HOSTFACTORY.md) and against the
 * original project's real templates file and requestMachines inputs
 * (tests/data/hostfactory/).
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
#include "provisio/provisio.h"
#include "provisio/hostfactory.h"

#define DATA PV_SOURCE_DIR "/tests/data/hostfactory/"

typedef struct fx {
	pv_context *ctx;
	pv_strategy *sim;
	pv_store *st;
	pv_broker *b;
} fx;

static fx *make(const json_t *templates, const char *sim_cfg, const pv_broker_settings *set)
{
	fx *f = calloc(1, sizeof *f);
	f->sim = bf_sim("sim", sim_cfg ? sim_cfg : "{\"capacity\": 1000}", NULL);
	f->ctx = bf_context(NULL, &f->sim, 1);
	char path[400];
	bf_db_path(path, sizeof path, "hf");
	f->st = bf_store(path);
	const char *leaves[] = {"sim"};
	pv_broker_setup s = {.ctx = f->ctx, .strategies = &f->sim, .n_strategies = 1,
			     .providers = leaves, .n_providers = 1, .store = f->st,
			     .templates = templates};
	if (set)
		s.settings = *set;
	f->b = bf_broker(&s, NULL);
	return f;
}

static fx *make_default(void)
{
	json_t *t = bf_json("{\"templates\": [{\"templateId\": \"OnDemand-Minimal\", \"maxNumber\": 10,"
			    " \"attributes\": {\"type\": [\"String\", \"X86_64\"], \"ncpus\": [\"Numeric\", \"1\"],"
			    " \"ncores\": [\"Numeric\", \"1\"], \"nram\": [\"Numeric\", \"1024\"]},"
			    " \"provider\": \"sim\", \"vmType\": \"t3.micro\"}]}");
	fx *f = make(t, NULL, NULL);
	json_decref(t);
	return f;
}

static void destroy(fx *f)
{
	bf_close(f->b, f->st);
	bf_release(f->ctx, &f->sim, 1);
	free(f);
}

static int run(fx *f, pv_hf_command c, const char *input, json_t **out) { return bf_hf(f->b, c, input, out); }

/* Checks that `obj` has exactly the keys listed (NULL-terminated). */
static void keys_are(const json_t *obj, const char *const *keys)
{
	size_t n = 0;
	for (; keys[n]; n++)
		assert_non_null(json_object_get(obj, keys[n]));
	assert_int_equal(json_object_size(obj), n);
}

static char *request(fx *f, const char *tmpl, int count) { return bf_hf_request(f->b, tmpl, count, NULL); }

static void test_command_names_round_trip(void **state)
{
	(void)state;
	for (int i = 0; i < PV_HF_COMMAND_COUNT; i++) {
		pv_hf_command c;
		assert_int_equal(pv_hf_command_parse(pv_hf_command_name((pv_hf_command)i), &c), 0);
		assert_int_equal(c, i);
	}
	pv_hf_command c;
	assert_int_equal(pv_hf_command_parse("getTemplates", &c), PV_EINVAL);
	assert_non_null(strstr(pv_error_last(), "requestReturnMachines"));
}

static void test_get_available_templates_matches_contract_example(void **state)
{
	(void)state;
	fx *f = make_default();
	json_t *out;
	assert_int_equal(run(f, PV_HF_GET_AVAILABLE_TEMPLATES, "{}", &out), 0);
	static const char *const top[] = {"message", "templates", NULL};
	keys_are(out, top);
	assert_string_equal(json_string_value(json_object_get(out, "message")), "Get available templates success.");
	json_t *t = json_array_get(json_object_get(out, "templates"), 0);
	static const char *const fields[] = {"templateId", "maxNumber", "availableNumber", "attributes",
					     "vmType", NULL};
	keys_are(t, fields); /* provisio's own "provider" is not shown */
	assert_string_equal(json_string_value(json_object_get(t, "templateId")), "OnDemand-Minimal");
	assert_int_equal(json_integer_value(json_object_get(t, "maxNumber")), 10);
	assert_int_equal(json_integer_value(json_object_get(t, "availableNumber")), 10);
	json_t *nram = json_object_get(json_object_get(t, "attributes"), "nram");
	assert_string_equal(json_string_value(json_array_get(nram, 0)), "Numeric");
	assert_string_equal(json_string_value(json_array_get(nram, 1)), "1024");
	json_decref(out);
	destroy(f);
}

static void test_unlimited_template_shows_max_minus_one_and_no_available(void **state)
{
	(void)state;
	json_t *t = bf_json("{\"templates\": [{\"templateId\": \"any\", \"attributes\": {}}]}");
	fx *f = make(t, NULL, NULL);
	json_decref(t);
	json_t *out;
	assert_int_equal(run(f, PV_HF_GET_AVAILABLE_TEMPLATES, "{}", &out), 0);
	json_t *v = json_array_get(json_object_get(out, "templates"), 0);
	static const char *const k[] = {"templateId", "maxNumber", "attributes", NULL};
	keys_are(v, k);
	assert_int_equal(json_integer_value(json_object_get(v, "maxNumber")), -1);
	void *it = json_object_iter(v);
	assert_string_equal(json_object_iter_key(it), "templateId");
	assert_string_equal(json_object_iter_key(json_object_iter_next(v, it)), "maxNumber");
	json_decref(out);
	destroy(f);
}

static void test_request_machines_answers_request_id_and_message(void **state)
{
	(void)state;
	fx *f = make_default();
	json_t *out;
	assert_int_equal(run(f, PV_HF_REQUEST_MACHINES,
			     "{\"template\": {\"templateId\": \"OnDemand-Minimal\", \"machineCount\": 10}}", &out),
			 0);
	static const char *const k[] = {"requestId", "message", NULL};
	keys_are(out, k);
	assert_int_equal(strncmp(json_string_value(json_object_get(out, "requestId")), "req-", 4), 0);
	json_decref(out);
	assert_int_equal(run(f, PV_HF_GET_AVAILABLE_TEMPLATES, "{}", &out), 0);
	json_t *t = json_array_get(json_object_get(out, "templates"), 0);
	assert_int_equal(json_integer_value(json_object_get(t, "availableNumber")), 0);
	json_decref(out);
	destroy(f);
}

/* A failure whose message is longer than the error buffer, made of 2-byte
 * characters: it is cut between characters, so the answer on stdout is
 * still the contract's {"message"} (not a bare newline). Two ids one byte
 * apart: one of them puts a byte cut inside a character. */
static void test_failure_message_is_cut_between_characters(void **state)
{
	(void)state;
	fx *f = make_default();
	const char *const starts[] = {"x", "xy"};
	for (int k = 0; k < 2; k++) {
		char input[2048];
		int n = snprintf(input, sizeof input, "{\"template\": {\"templateId\": \"%s", starts[k]);
		for (int i = 0; i < 400; i++)
			n += snprintf(input + n, sizeof input - (size_t)n, "\xc3\xa9");
		snprintf(input + n, sizeof input - (size_t)n, "\", \"machineCount\": 1}}");
		json_t *in = json_loads(input, 0, NULL);
		assert_non_null(in);
		char *text = NULL;
		size_t len = 0;
		FILE *out = open_memstream(&text, &len);
		assert_true(pv_hf_write(f->b, PV_HF_REQUEST_MACHINES, in, out) < 0);
		fclose(out);
		json_decref(in);
		json_t *answer = json_loads(text, 0, NULL);
		assert_non_null(answer);
		const char *msg = json_string_value(json_object_get(answer, "message"));
		assert_non_null(msg);
		assert_non_null(strstr(msg, starts[k]));
		json_decref(answer);
		free(text);
	}
	destroy(f);
}

static void test_get_request_status_machine_fields(void **state)
{
	(void)state;
	fx *f = make_default();
	char *id = request(f, "OnDemand-Minimal", 2);
	char input[256];
	/* HF may send a single object instead of a list */
	snprintf(input, sizeof input, "{\"requests\": {\"requestId\": \"%s\"}}", id);
	json_t *out;
	assert_int_equal(run(f, PV_HF_GET_REQUEST_STATUS, input, &out), 0);
	json_t *reqs = json_object_get(out, "requests");
	assert_int_equal(json_array_size(reqs), 1);
	json_t *r = json_array_get(reqs, 0);
	static const char *const rk[] = {"requestId", "status", "message", "machines", NULL};
	keys_are(r, rk);
	assert_string_equal(json_string_value(json_object_get(r, "requestId")), id);
	assert_string_equal(json_string_value(json_object_get(r, "status")), "complete");
	json_t *m = json_array_get(json_object_get(r, "machines"), 0);
	static const char *const mk[] = {"machineId", "name", "result", "status", "privateIpAddress",
					 "launchtime", "message", NULL};
	keys_are(m, mk);
	assert_string_equal(json_string_value(json_object_get(m, "result")), "succeed");
	assert_string_equal(json_string_value(json_object_get(m, "status")), "running");
	assert_true(json_is_integer(json_object_get(m, "launchtime")));
	assert_true(json_integer_value(json_object_get(m, "launchtime")) > 1600000000);
	json_decref(out);
	free(id);
	destroy(f);
}

static void test_status_of_several_requests_in_order(void **state)
{
	(void)state;
	fx *f = make_default();
	char *a = request(f, "OnDemand-Minimal", 1), *b = request(f, "OnDemand-Minimal", 1);
	char input[256];
	snprintf(input, sizeof input, "{\"requests\": [{\"requestId\": \"%s\"}, {\"requestId\": \"%s\"}]}", b, a);
	json_t *out;
	assert_int_equal(run(f, PV_HF_GET_REQUEST_STATUS, input, &out), 0);
	json_t *reqs = json_object_get(out, "requests");
	assert_int_equal(json_array_size(reqs), 2);
	assert_string_equal(json_string_value(json_object_get(json_array_get(reqs, 0), "requestId")), b);
	assert_string_equal(json_string_value(json_object_get(json_array_get(reqs, 1), "requestId")), a);
	json_decref(out);
	free(a);
	free(b);
	destroy(f);
}

static void test_return_cycle_ends_terminated_and_succeed(void **state)
{
	(void)state;
	fx *f = make_default();
	char *id = request(f, "OnDemand-Minimal", 2);
	char input[512];
	snprintf(input, sizeof input, "{\"requests\": [{\"requestId\": \"%s\"}]}", id);
	json_t *st;
	assert_int_equal(run(f, PV_HF_GET_REQUEST_STATUS, input, &st), 0);
	json_t *ms = json_object_get(json_array_get(json_object_get(st, "requests"), 0), "machines");
	snprintf(input, sizeof input, "{\"machines\": [{\"name\": \"%s\", \"machineId\": \"%s\"}, {\"name\": \"%s\", \"machineId\": \"%s\"}]}",
		 json_string_value(json_object_get(json_array_get(ms, 0), "name")),
		 json_string_value(json_object_get(json_array_get(ms, 0), "machineId")),
		 json_string_value(json_object_get(json_array_get(ms, 1), "name")),
		 json_string_value(json_object_get(json_array_get(ms, 1), "machineId")));
	json_decref(st);
	json_t *out;
	assert_int_equal(run(f, PV_HF_REQUEST_RETURN_MACHINES, input, &out), 0);
	static const char *const k[] = {"requestId", "message", NULL};
	keys_are(out, k);
	const char *ret = json_string_value(json_object_get(out, "requestId"));
	assert_int_equal(strncmp(ret, "ret-", 4), 0);
	assert_int_equal(pv_sim_live_instances(f->sim), 0); /* really released */
	/* a shutting-down machine is "executing" until seen gone */
	char q[256];
	snprintf(q, sizeof q, "{\"requests\": [{\"requestId\": \"%s\"}]}", ret);
	json_decref(out);
	pv_broker_close(f->b);
	const char *leaves[] = {"sim"};
	pv_broker_setup s = {.ctx = f->ctx, .providers = leaves, .n_providers = 1, .store = f->st,
			     .settings = {.status_max_age_seconds = -1}};
	f->b = bf_broker(&s, "{\"templates\": [{\"templateId\": \"OnDemand-Minimal\", \"maxNumber\": 10}]}");
	assert_int_equal(run(f, PV_HF_GET_REQUEST_STATUS, q, &out), 0);
	json_t *r = json_array_get(json_object_get(out, "requests"), 0);
	assert_string_equal(json_string_value(json_object_get(r, "status")), "complete");
	json_t *m;
	size_t i;
	json_array_foreach(json_object_get(r, "machines"), i, m) {
		assert_string_equal(json_string_value(json_object_get(m, "status")), "terminated");
		assert_string_equal(json_string_value(json_object_get(m, "result")), "succeed");
	}
	assert_int_equal(i, 2);
	json_decref(out);
	free(id);
	destroy(f);
}

static void test_get_return_requests_shape_and_grace_period(void **state)
{
	(void)state;
	fx *f = make_default();
	char *id = request(f, "OnDemand-Minimal", 1);
	json_t *out;
	assert_int_equal(run(f, PV_HF_GET_RETURN_REQUESTS, "{\"machines\": []}", &out), 0);
	static const char *const k[] = {"status", "message", "requests", NULL};
	keys_are(out, k);
	assert_string_equal(json_string_value(json_object_get(out, "status")), "complete");
	assert_int_equal(json_array_size(json_object_get(out, "requests")), 0);
	json_decref(out);
	/* the provider takes it back on its own */
	pv_operation op = {.type = PV_OP_DESCRIBE_RESOURCE_INSTANCES};
	pv_result res = PV_RESULT_INIT;
	pv_strategy_execute(f->sim, &op, &res, NULL);
	json_t *inst = json_array_get(json_object_get(res.data, "instances"), 0);
	pv_operation term = {.type = PV_OP_TERMINATE_INSTANCES,
			     .params = json_pack("{s:[O]}", "instance_ids", json_object_get(inst, "instance_id"))};
	pv_result tr = PV_RESULT_INIT;
	pv_strategy_execute(f->sim, &term, &tr, NULL);
	json_decref(term.params);
	pv_result_clear(&tr);
	pv_result_clear(&res);
	assert_int_equal(run(f, PV_HF_GET_RETURN_REQUESTS, "{}", &out), 0);
	json_t *reqs = json_object_get(out, "requests");
	assert_int_equal(json_array_size(reqs), 1);
	static const char *const rk[] = {"machine", "gracePeriod", NULL};
	keys_are(json_array_get(reqs, 0), rk);
	assert_int_equal(json_integer_value(json_object_get(json_array_get(reqs, 0), "gracePeriod")), 0);
	json_decref(out);
	free(id);
	destroy(f);
}

static void test_bad_inputs_answer_message_and_write_nothing(void **state)
{
	(void)state;
	fx *f = make_default();
	struct {
		pv_hf_command c;
		const char *in;
		const char *says;
	} cases[] = {
		{PV_HF_REQUEST_MACHINES, "[]", "JSON object"},
		{PV_HF_REQUEST_MACHINES, "{}", "template"},
		{PV_HF_REQUEST_MACHINES, "{\"template\": {\"machineCount\": 1}}", "templateId"},
		{PV_HF_REQUEST_MACHINES, "{\"template\": {\"templateId\": \"nope\", \"machineCount\": 1}}", "unknown template"},
		{PV_HF_REQUEST_MACHINES, "{\"template\": {\"templateId\": \"OnDemand-Minimal\", \"machineCount\": 0}}", "machineCount"},
		{PV_HF_REQUEST_MACHINES, "{\"template\": {\"templateId\": \"OnDemand-Minimal\", \"machineCount\": \"2\"}}", "machineCount"},
		{PV_HF_REQUEST_MACHINES, "{\"template\": {\"templateId\": \"OnDemand-Minimal\", \"machineCount\": 11}}", "available number"},
		{PV_HF_GET_REQUEST_STATUS, "{}", "requests"},
		{PV_HF_GET_REQUEST_STATUS, "{\"requests\": [{}]}", "requestId"},
		{PV_HF_REQUEST_RETURN_MACHINES, "{\"machines\": []}", "machines"},
		{PV_HF_REQUEST_RETURN_MACHINES, "{\"machines\": [{\"machineId\": \"i-x\"}]}", "unknown machine"},
		{PV_HF_REQUEST_RETURN_MACHINES, "{\"machines\": [{}]}", "machineId or a name"},
		{PV_HF_GET_RETURN_REQUESTS, "{\"machines\": 3}", "machines"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		json_t *out;
		int rc = run(f, cases[i].c, cases[i].in, &out);
		assert_true(rc < 0);
		assert_int_equal(json_object_size(out), 1);
		const char *msg = json_string_value(json_object_get(out, "message"));
		assert_non_null(msg);
		if (!strstr(msg, cases[i].says))
			fail_msg("case %zu: '%s' does not mention '%s'", i, msg, cases[i].says);
		json_decref(out);
	}
	assert_int_equal(bf_count_requests(f->st), 0);
	assert_int_equal(pv_sim_calls(f->sim, PV_OP_CREATE_INSTANCES), 0);
	destroy(f);
}

/* A template without maxNumber still bounds machineCount: one constant and
 * one message for every front end, checked before anything is written or
 * any provider asked (10^12 once ran for minutes and grew to gigabytes). */
static void test_machine_count_over_the_bound_is_refused_without_max_number(void **state)
{
	(void)state;
	json_t *t = bf_json("{\"templates\": [{\"templateId\": \"free\", \"provider\": \"sim\"}]}");
	fx *f = make(t, "{\"capacity\": 1000}", NULL);
	json_decref(t);
	const char *counts[] = {"100001", "10000000", "1000000000000", "0", "-5"};
	for (size_t i = 0; i < sizeof counts / sizeof counts[0]; i++) {
		char in[160], want[80];
		snprintf(in, sizeof in, "{\"template\": {\"templateId\": \"free\", \"machineCount\": %s}}",
			 counts[i]);
		snprintf(want, sizeof want, "machineCount must be from 1 to %d (got %s)",
			 PV_BROKER_MAX_MACHINE_COUNT, counts[i]);
		json_t *out;
		assert_int_equal(run(f, PV_HF_REQUEST_MACHINES, in, &out), PV_EINVAL);
		assert_string_equal(json_string_value(json_object_get(out, "message")), want);
		json_decref(out);
	}
	assert_int_equal(bf_count_requests(f->st), 0);
	assert_int_equal(pv_sim_calls(f->sim, PV_OP_CREATE_INSTANCES), 0);
	json_t *out;
	assert_int_equal(run(f, PV_HF_REQUEST_MACHINES, "{\"template\": {\"templateId\": \"free\","
				 " \"machineCount\": 100000}}", &out), 0); /* the bound itself is allowed */
	json_decref(out);
	destroy(f);
}

static void test_original_templates_file_and_inputs_work_unchanged(void **state)
{
	(void)state;
	json_error_t e;
	json_t *t = json_load_file(DATA "awsprov_templates.json", 0, &e);
	assert_non_null(t);
	fx *f = make(t, NULL, NULL); /* no "provider" fields: the current strategy (sim) serves them */
	json_t *out;
	assert_int_equal(run(f, PV_HF_GET_AVAILABLE_TEMPLATES, "{}", &out), 0);
	json_t *list = json_object_get(out, "templates");
	assert_int_equal(json_array_size(list), 13);
	size_t i;
	json_t *v;
	json_array_foreach(list, i, v) {
		json_t *orig = json_array_get(json_object_get(t, "templates"), i);
		assert_int_equal(json_integer_value(json_object_get(v, "availableNumber")),
				 json_integer_value(json_object_get(orig, "maxNumber")));
		const char *key;
		json_t *val;
		json_object_foreach(orig, key, val) assert_true(json_equal(val, json_object_get(v, key)));
	}
	json_decref(out);
	const char *inputs[] = {"ASG.json", "EC2Fleet.json", "RunInstances.json", "SpotFleet.json"};
	for (i = 0; i < 4; i++) {
		char path[512];
		snprintf(path, sizeof path, DATA "%s", inputs[i]);
		json_t *in = json_load_file(path, 0, &e);
		assert_non_null(in);
		assert_int_equal(pv_hf_run(f->b, PV_HF_REQUEST_MACHINES, in, &out), 0);
		assert_non_null(json_object_get(out, "requestId"));
		json_decref(out);
		/* maxNumber 2: a second identical request is over the available number */
		assert_int_equal(pv_hf_run(f->b, PV_HF_REQUEST_MACHINES, in, &out), PV_EINVAL);
		json_decref(out);
		json_decref(in);
	}
	assert_int_equal(pv_sim_live_instances(f->sim), 8);
	json_decref(t);
	destroy(f);
}

static void test_request_of_1000_machines_reports_all(void **state)
{
	(void)state;
	json_t *t = bf_json("{\"templates\": [{\"templateId\": \"big\", \"maxNumber\": 1000}]}");
	fx *f = make(t, NULL, NULL);
	json_decref(t);
	char *id = request(f, "big", 1000);
	char q[128];
	snprintf(q, sizeof q, "{\"requests\": [{\"requestId\": \"%s\"}]}", id);
	json_t *out;
	assert_int_equal(run(f, PV_HF_GET_REQUEST_STATUS, q, &out), 0);
	json_t *r = json_array_get(json_object_get(out, "requests"), 0);
	assert_int_equal(json_array_size(json_object_get(r, "machines")), 1000);
	assert_string_equal(json_string_value(json_object_get(r, "status")), "complete");
	json_decref(out);
	free(id);
	destroy(f);
}

static char *write_to_string(fx *f, pv_hf_command c, const char *input, int *rc)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *mem = open_memstream(&buf, &len);
	json_t *in = json_loads(input, 0, NULL);
	*rc = pv_hf_write(f->b, c, in, mem);
	json_decref(in);
	fclose(mem);
	return buf;
}

static void test_streamed_status_is_the_json_dump_byte_for_byte(void **state)
{
	(void)state;
	fx *f = make_default();
	char *id = request(f, "OnDemand-Minimal", 3);
	/* awkward text in every optional field */
	pv_machine_list ms = {0};
	assert_int_equal(pv_store_machine_list(f->st, PV_MF_REQUEST, id, &ms), 0);
	snprintf(ms.items[0].message, sizeof ms.items[0].message, "quote \" back \\ nl \n tab \t ctl \x01 utf8 \xc3\xa9");
	snprintf(ms.items[0].public_ip, sizeof ms.items[0].public_ip, "1.2.3.4");
	snprintf(ms.items[1].instance_type, sizeof ms.items[1].instance_type, "m5.large");
	snprintf(ms.items[2].price_type, sizeof ms.items[2].price_type, "spot");
	assert_int_equal(pv_store_begin(f->st, true), 0);
	for (size_t i = 0; i < ms.n; i++)
		assert_int_equal(pv_store_machine_put(f->st, &ms.items[i]), 0);
	assert_int_equal(pv_store_commit(f->st), 0);
	pv_machine_list_clear(&ms);
	char *empty = request(f, "OnDemand-Minimal", 1);
	char input[512];
	snprintf(input, sizeof input, "{\"requests\": [{\"requestId\": \"%s\"}, {\"requestId\": \"%s\"}]}", id, empty);
	json_t *tree;
	assert_int_equal(run(f, PV_HF_GET_REQUEST_STATUS, input, &tree), 0);
	char *want = json_dumps(tree, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	json_decref(tree);
	int rc;
	char *got = write_to_string(f, PV_HF_GET_REQUEST_STATUS, input, &rc);
	assert_int_equal(rc, 0);
	size_t n = strlen(got);
	assert_true(n > 0 && got[n - 1] == '\n');
	got[n - 1] = '\0';
	assert_string_equal(got, want);
	free(got);
	free(want);
	/* errors are written as {"message"} */
	got = write_to_string(f, PV_HF_GET_REQUEST_STATUS, "{\"requests\": [{\"requestId\": 7}]}", &rc);
	assert_int_equal(rc, PV_EINVAL);
	assert_non_null(strstr(got, "\"message\": \"requests[0].requestId must be a non-empty string\""));
	free(got);
	free(id);
	free(empty);
	destroy(f);
}

/* One unknown id among several: the known ones are answered as always,
 * the unknown one gets an entry of its own (complete_with_error, saying
 * why, its id echoed whole), in both writers, and the call succeeds. */
static void test_status_answers_known_ids_and_reports_unknown_ones(void **state)
{
	(void)state;
	fx *f = make_default();
	char *id = request(f, "OnDemand-Minimal", 2);
	char longid[201];
	memset(longid, 'x', 200);
	longid[200] = '\0';
	char input[700];
	snprintf(input, sizeof input, "{\"requests\": [{\"requestId\": \"req-nope\"}, {\"requestId\": \"%s\"},"
		 " {\"requestId\": \"%s\"}]}", id, longid);
	json_t *out;
	assert_int_equal(run(f, PV_HF_GET_REQUEST_STATUS, input, &out), 0);
	json_t *reqs = json_object_get(out, "requests");
	assert_int_equal(json_array_size(reqs), 3);
	json_t *nope = json_array_get(reqs, 0), *known = json_array_get(reqs, 1), *lng = json_array_get(reqs, 2);
	static const char *const rk[] = {"requestId", "status", "message", "machines", NULL};
	keys_are(nope, rk);
	assert_string_equal(json_string_value(json_object_get(nope, "requestId")), "req-nope");
	assert_string_equal(json_string_value(json_object_get(nope, "status")), "complete_with_error");
	assert_string_equal(json_string_value(json_object_get(nope, "message")), "unknown request id 'req-nope'");
	assert_int_equal(json_array_size(json_object_get(nope, "machines")), 0);
	assert_string_equal(json_string_value(json_object_get(known, "status")), "complete");
	assert_int_equal(json_array_size(json_object_get(known, "machines")), 2);
	assert_string_equal(json_string_value(json_object_get(lng, "requestId")), longid);
	assert_string_equal(json_string_value(json_object_get(lng, "status")), "complete_with_error");
	char *want = json_dumps(out, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	json_decref(out);
	int rc;
	char *got = write_to_string(f, PV_HF_GET_REQUEST_STATUS, input, &rc);
	assert_int_equal(rc, 0);
	got[strlen(got) - 1] = '\0';
	assert_string_equal(got, want);
	free(got);
	free(want);
	free(id);
	destroy(f);
}

/* One unknown machine among several: the known ones are returned (really
 * terminated), the unknown one is named in the answer and in the return
 * request, which ends complete_with_error. */
static void test_return_returns_known_machines_and_names_unknown_ones(void **state)
{
	(void)state;
	json_t *t = bf_json("{\"templates\": [{\"templateId\": \"t\", \"provider\": \"sim\"}]}");
	pv_broker_settings always = {.status_max_age_seconds = -1};
	fx *f = make(t, NULL, &always);
	json_decref(t);
	char *id = request(f, "t", 2);
	pv_machine_list ms = {0};
	assert_int_equal(pv_store_machine_list(f->st, PV_MF_REQUEST, id, &ms), 0);
	char input[600];
	snprintf(input, sizeof input, "{\"machines\": [{\"machineId\": \"%s\"}, {\"machineId\": \"i-ghost\"},"
		 " {\"name\": \"%s\"}]}", ms.items[0].machine_id, ms.items[1].name);
	json_t *out;
	assert_int_equal(run(f, PV_HF_REQUEST_RETURN_MACHINES, input, &out), 0);
	const char *ret = json_string_value(json_object_get(out, "requestId"));
	assert_non_null(ret);
	assert_string_equal(json_string_value(json_object_get(out, "message")),
			    "Delete VM success; 1 machine(s) unknown to provisio, not returned: i-ghost.");
	assert_int_equal(pv_sim_live_instances(f->sim), 0);
	snprintf(input, sizeof input, "{\"requests\": [{\"requestId\": \"%s\"}]}", ret);
	json_decref(out);
	assert_int_equal(run(f, PV_HF_GET_REQUEST_STATUS, input, &out), 0);
	json_t *r = json_array_get(json_object_get(out, "requests"), 0);
	assert_string_equal(json_string_value(json_object_get(r, "status")), "complete_with_error");
	assert_string_equal(json_string_value(json_object_get(r, "message")),
			    "1 machine(s) unknown to provisio, not returned: i-ghost");
	json_t *machines = json_object_get(r, "machines");
	assert_int_equal(json_array_size(machines), 2);
	for (size_t i = 0; i < 2; i++) {
		json_t *m = json_array_get(machines, i);
		assert_string_equal(json_string_value(json_object_get(m, "status")), "terminated");
		assert_string_equal(json_string_value(json_object_get(m, "result")), "succeed");
	}
	json_decref(out);
	pv_machine_list_clear(&ms);
	free(id);
	destroy(f);
}

/* requestMachines committed, its answer never written (the process was
 * killed before it printed): nobody has the id, and after the delay its
 * machines are released. An answer pv_hf_write wrote out is delivered and
 * kept. */
static void test_request_whose_answer_was_never_written_is_reclaimed(void **state)
{
	(void)state;
	fx *f = make_default();
	const char *in = "{\"template\": {\"templateId\": \"OnDemand-Minimal\", \"machineCount\": 2}}";
	json_t *out, *input_json = json_loads(in, 0, NULL);
	assert_int_equal(pv_hf_run(f->b, PV_HF_REQUEST_MACHINES, input_json, &out), 0); /* never printed */
	json_decref(input_json);
	char *lost = strdup(json_string_value(json_object_get(out, "requestId")));
	json_decref(out);
	int rc;
	char *written = write_to_string(f, PV_HF_REQUEST_MACHINES, in, &rc);
	assert_int_equal(rc, 0);
	json_t *answer = json_loads(written, 0, NULL);
	const char *kept = json_string_value(json_object_get(answer, "requestId"));
	assert_non_null(kept);
	const pv_broker_settings *set = pv_broker_get_settings(f->b);
	int64_t back = (int64_t)((set->creating_timeout_seconds + set->pending_timeout_seconds) * 1000) + 1000;
	const char *ids[] = {lost, kept};
	for (size_t i = 0; i < 2; i++) {
		pv_request_rec r;
		assert_int_equal(pv_store_begin(f->st, true), 0);
		assert_int_equal(pv_store_request_get(f->st, ids[i], &r), 0);
		r.created_ms -= back;
		assert_int_equal(pv_store_request_put(f->st, &r), 0);
		assert_int_equal(pv_store_commit(f->st), 0);
	}
	assert_int_equal(pv_sim_live_instances(f->sim), 4);
	/* Host Factory's periodic call is where it happens */
	assert_int_equal(run(f, PV_HF_GET_RETURN_REQUESTS, "{}", &out), 0);
	json_decref(out);
	assert_int_equal(pv_sim_live_instances(f->sim), 2);
	char input[200];
	snprintf(input, sizeof input, "{\"requests\": [{\"requestId\": \"%s\"}]}", lost);
	assert_int_equal(run(f, PV_HF_GET_REQUEST_STATUS, input, &out), 0);
	json_t *r = json_array_get(json_object_get(out, "requests"), 0);
	assert_non_null(strstr(json_string_value(json_object_get(r, "message")), "never delivered"));
	assert_string_equal(json_string_value(json_object_get(json_array_get(json_object_get(r, "machines"), 0),
							   "result")), "fail");
	json_decref(out);
	json_decref(answer);
	free(written);
	free(lost);
	destroy(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_command_names_round_trip),
		cmocka_unit_test(test_get_available_templates_matches_contract_example),
		cmocka_unit_test(test_unlimited_template_shows_max_minus_one_and_no_available),
		cmocka_unit_test(test_request_machines_answers_request_id_and_message),
		cmocka_unit_test(test_failure_message_is_cut_between_characters),
		cmocka_unit_test(test_get_request_status_machine_fields),
		cmocka_unit_test(test_status_of_several_requests_in_order),
		cmocka_unit_test(test_return_cycle_ends_terminated_and_succeed),
		cmocka_unit_test(test_get_return_requests_shape_and_grace_period),
		cmocka_unit_test(test_bad_inputs_answer_message_and_write_nothing),
		cmocka_unit_test(test_machine_count_over_the_bound_is_refused_without_max_number),
		cmocka_unit_test(test_status_answers_known_ids_and_reports_unknown_ones),
		cmocka_unit_test(test_return_returns_known_machines_and_names_unknown_ones),
		cmocka_unit_test(test_request_whose_answer_was_never_written_is_reclaimed),
		cmocka_unit_test(test_original_templates_file_and_inputs_work_unchanged),
		cmocka_unit_test(test_request_of_1000_machines_reports_all),
		cmocka_unit_test(test_streamed_status_is_the_json_dump_byte_for_byte),
	};
	return cmocka_run_group_tests(tests, bf_group_setup, bf_group_teardown);
}
