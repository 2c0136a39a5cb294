/*
 * fuzz_local_records.c - libFuzzer target for the local provider's machine
 * records (workdir/machines/<id>.json), which other processes write and a
 * crash or a hand may leave in any state: the input is such a record; the
 * provider lists, reads and (dry-run: no signal is ever sent) terminates
 * it. The result must be serialisable JSON (a record's strings may be
 * anything jansson read from the file, its numbers anything).
 */
#include <stdint.h>
#include "fuzz_support.h"
#include "provisio/local.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void run(pv_strategy *s, pv_op_type t, const char *params, const char *context)
{
	json_t *p = json_loads(params, 0, NULL), *c = context ? json_loads(context, 0, NULL) : NULL;
	pv_operation op = {.type = t, .params = p, .context = c};
	pv_result r = PV_RESULT_INIT;
	pv_strategy_execute(s, &op, &r, NULL);
	json_t *j = pv_result_to_json(&r);
	char *text = json_dumps(j, JSON_COMPACT);
	if (!text)
		abort();
	free(text);
	json_decref(j);
	pv_result_clear(&r);
	json_decref(p);
	json_decref(c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static pv_strategy *local;
	static char record[400];
	if (!local) {
		char cfg[400];
		snprintf(cfg, sizeof cfg, "{\"workdir\": \"%s/local\", \"capacity\": 0}", fz_dir());
		json_t *c = json_loads(cfg, 0, NULL);
		if (pv_local_new(&local, "fz", c, NULL) < 0 || pv_strategy_initialize(local) < 0)
			abort();
		json_decref(c);
		snprintf(record, sizeof record, "%s/local/machines/fz-1.json", fz_dir());
	}
	FILE *f = fopen(record, "wb");
	fwrite(data, 1, size, f);
	fclose(f);
	run(local, PV_OP_DESCRIBE_RESOURCE_INSTANCES, "{}", NULL);
	run(local, PV_OP_DESCRIBE_RESOURCE_INSTANCES, "{\"request_id\": \"req-1\"}", NULL);
	run(local, PV_OP_GET_INSTANCE_STATUS, "{\"instance_ids\": [\"fz-1\", \"fz-2\"]}", NULL);
	run(local, PV_OP_TERMINATE_INSTANCES, "{\"instance_ids\": [\"fz-1\"]}", "{\"dry_run\": true}");
	run(local, PV_OP_HEALTH_CHECK, "{}", NULL);
	return 0;
}
