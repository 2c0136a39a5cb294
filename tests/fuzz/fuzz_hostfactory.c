/*
 * fuzz_hostfactory.c - libFuzzer target for the Host Factory commands:
 * the first byte picks the command, the rest is its input (JSON, or any
 * bytes the way a broken caller sends them), run through pv_hf_run and
 * pv_hf_write over the sim provider and a SQLite store. The contract
 * checked: whatever the input, stdout is one JSON document, and a failure
 * is an object with a "message" string.
 */
#include <stdint.h>
#include "fuzz_support.h"
#include "provisio/hostfactory.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static pv_broker *broker(void)
{
	static pv_broker *b;
	if (!b) {
		char tmpl[300];
		static const char t[] = "{\"templates\": [{\"templateId\": \"t1\", \"maxNumber\": 8,"
					" \"attributes\": {\"ncpus\": [\"Numeric\", \"2\"]}}, {\"templateId\": \"t2\"}]}";
		fz_write("templates.json", t, sizeof t - 1, tmpl, sizeof tmpl);
		b = fz_broker(tmpl, "hf.db");
		if (!b)
			abort();
	}
	return b;
}

static void check_failure(int rc, const json_t *out)
{
	if (rc < 0 && !json_is_string(json_object_get(out, "message")))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	pv_hf_command cmd = (pv_hf_command)(data[0] % PV_HF_COMMAND_COUNT);
	json_t *in = json_loadb((const char *)data + 1, size - 1, JSON_DECODE_ANY, NULL);
	json_t *out = NULL;
	int rc = pv_hf_run(broker(), cmd, in, &out);
	if (!out)
		abort(); /* an answer, always */
	check_failure(rc, out);
	json_decref(out);
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	rc = pv_hf_write(broker(), cmd, in, f);
	fclose(f);
	json_t *written = json_loadb(text, len, 0, NULL);
	if (!written)
		abort(); /* stdout is one JSON document */
	check_failure(rc, written);
	json_decref(written);
	free(text);
	json_decref(in);
	return 0;
}
