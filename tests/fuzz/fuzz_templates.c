/*
 * fuzz_templates.c - libFuzzer target for the templates file: any bytes as
 * the file pv_broker_open reads; when it is accepted, every template is
 * shown the way getAvailableTemplates and the REST API show it.
 */
#include <stdint.h>
#include "fuzz_support.h"
#include "provisio/hostfactory.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char path[300];
	fz_write("templates.json", data, size, path, sizeof path);
	pv_broker *b = fz_broker(path, "templates.db");
	if (!b)
		return 0;
	json_t *in = json_object(), *out = NULL;
	if (pv_hf_run(b, PV_HF_GET_AVAILABLE_TEMPLATES, in, &out) < 0 &&
	    !json_is_string(json_object_get(out, "message")))
		abort();
	size_t i;
	json_t *t;
	json_array_foreach(pv_broker_templates(b), i, t) {
		int64_t avail;
		char strategy[128];
		pv_broker_available(b, json_string_value(json_object_get(t, "templateId")), &avail);
		pv_broker_template_strategy(b, t, strategy, sizeof strategy);
	}
	json_decref(out);
	json_decref(in);
	pv_broker_close(b);
	return 0;
}
