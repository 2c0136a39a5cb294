/*
 * fuzz_rest_provider.c - libFuzzer target for the rest provider reading
 * what a remote provisio (or anything on its endpoint) answers: a loopback
 * peer answers every call with the status picked by the first byte and the
 * rest of the input as the body; the provider runs each operation against
 * it. Whatever comes back, the result is serialisable JSON, a failure has
 * an error code and class, and a success of create_instances lists
 * instances with ids.
 */
#include <stdint.h>
#include "fuzz_support.h"
#include "provisio/rest.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(const pv_result *r, pv_op_type t)
{
	json_t *j = pv_result_to_json(r);
	char *text = json_dumps(j, JSON_COMPACT);
	if (!text)
		abort();
	free(text);
	json_decref(j);
	if (!r->success && (!r->error_code[0]))
		abort();
	if (r->success && t == PV_OP_CREATE_INSTANCES) {
		size_t i;
		json_t *inst;
		json_array_foreach(json_object_get(r->data, "instances"), i, inst)
			if (!json_is_string(json_object_get(inst, "instance_id")))
				abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static fz_peer *peer;
	static pv_strategy *rest;
	if (!peer) {
		fz_dir();
		peer = fz_peer_start();
		char cfg[300];
		snprintf(cfg, sizeof cfg, "{\"endpoint_url\": \"http://127.0.0.1:%d\", \"max_retries\": 0,"
			 " \"timeout\": 5, \"api_key\": \"k\"}", peer->port);
		json_t *c = json_loads(cfg, 0, NULL);
		if (pv_rest_new(&rest, "remote", c, NULL) < 0 || pv_strategy_initialize(rest) < 0)
			abort();
		json_decref(c);
	}
	if (size < 1)
		return 0;
	static const int statuses[] = {200, 202, 400, 401, 404, 409, 429, 500, 502, 503};
	fz_peer_answer(peer, statuses[data[0] % 10], data + 1, size - 1);
	static const char *const params[PV_OP_COUNT] = {
		[PV_OP_CREATE_INSTANCES] = ("{\"count\": 2, \"template_id\": \"t1\", \"request_id\": \"req-1\","
					    " \"template\": {\"templateId\": \"t1\"}, \"client_token\": \"c1\"}"),
		[PV_OP_TERMINATE_INSTANCES] = "{\"instance_ids\": [\"m-1\", \"m-2\"]}",
		[PV_OP_GET_INSTANCE_STATUS] = "{\"instance_ids\": [\"m-1\", \"m-2\"]}",
		[PV_OP_DESCRIBE_RESOURCE_INSTANCES] = "{\"request_id\": \"req-1\"}",
		[PV_OP_VALIDATE_TEMPLATE] = "{\"template_id\": \"t1\"}",
		[PV_OP_GET_AVAILABLE_TEMPLATES] = "{}",
		[PV_OP_HEALTH_CHECK] = "{}",
	};
	for (int t = 0; t < PV_OP_COUNT; t++) {
		if (!params[t])
			continue;
		json_t *p = json_loads(params[t], 0, NULL);
		pv_operation op = {.type = (pv_op_type)t, .params = p};
		pv_result r = PV_RESULT_INIT;
		pv_strategy_execute(rest, &op, &r, NULL);
		check(&r, (pv_op_type)t);
		pv_result_clear(&r);
		json_decref(p);
	}
	return 0;
}
