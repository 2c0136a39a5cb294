/*
 * fuzz_config.c - libFuzzer target for the configuration loader: any bytes
 * are parsed as JSON, expanded, normalised (plain and strict) and, when
 * valid, built into a context. Plugins are removed first: a fuzzer must not
 * dlopen paths it made up. Run by `make fuzz` (clang, ASan, UBSan).
 */
#include <stdint.h>
#include <stdlib.h>
#include "provisio/provisio.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int quiet;
	if (!quiet) {
		pv_log_set_level(PV_LOG_OFF);
		setenv("PV_FUZZ_SET", "value", 1);
		quiet = 1;
	}
	json_t *doc = json_loadb((const char *)data, size, JSON_DECODE_ANY, NULL);
	if (!doc)
		return 0;
	pv_diags d;
	pv_diags_init(&d);
	pv_config_expand(doc, &d);
	for (int strict = 0; strict < 2; strict++) {
		json_t *graph = pv_config_normalize(doc, strict, &d);
		if (graph && !d.errors) {
			json_object_del(graph, "plugins");
			pv_context *ctx = NULL;
			if (pv_config_build(graph, NULL, &ctx, &d) == 0) {
				pv_operation op = {.type = PV_OP_HEALTH_CHECK};
				pv_result r;
				pv_context_execute(ctx, &op, &r);
				pv_result_clear(&r);
				json_decref(pv_context_to_json(ctx));
			}
			pv_context_free(ctx);
		}
		json_t *red = pv_config_redact(doc);
		char *text = pv_diags_format(&d);
		free(text);
		json_decref(red);
		json_decref(graph);
		pv_diags_clear(&d);
		pv_diags_init(&d);
	}
	pv_diags_clear(&d);
	json_decref(doc);
	return 0;
}
