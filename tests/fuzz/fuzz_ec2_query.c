/*
 * fuzz_ec2_query.c - libFuzzer target for the ec2Query serialiser
 * (src/providers/aws/query.c and form.c): the input is JSON {"model",
 * "shape", "value"}, a Smithy-AST model (recursive shapes included), the
 * shape to serialise and the value. The form it makes must be a valid
 * application/x-www-form-urlencoded body: key=value pairs joined by '&',
 * every byte unreserved or a %XX escape.
 */
#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "provisio/log.h"
#include "providers/aws/aws_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool unreserved(char c) { return isalnum((unsigned char)c) || strchr("-_.~", c); }

static void check_form(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		if (c == '%') {
			if (i + 2 >= len)
				abort();
			if (!isxdigit((unsigned char)s[i + 1]) || !isxdigit((unsigned char)s[i + 2]))
				abort();
			i += 2;
		} else if (!unreserved(c) && c != '=' && c != '&')
			abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int quiet;
	if (!quiet++)
		pv_log_set_level(PV_LOG_OFF);
	json_t *in = json_loadb((const char *)data, size, 0, NULL);
	const char *shape = json_string_value(json_object_get(in, "shape"));
	json_t *model = json_object_get(in, "model"), *value = json_object_get(in, "value");
	if (shape && json_is_object(model) && value) {
		aws_form f;
		aws_form_init(&f, "Fuzz");
		aws_query_add(&f, model, shape, "", value);
		check_form(f.buf ? f.buf : "", f.len);
		aws_form_free(&f);
	}
	json_decref(in);
	return 0;
}
