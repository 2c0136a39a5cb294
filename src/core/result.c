/*
 * result.c - filling, moving and printing results.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "provisio/error.h"
#include "provisio/result.h"
#include "util/names.h"

static const char *const class_names[] = {
	"none", "transient", "throttled", "capacity", "permanent", "internal",
};

const char *pv_error_class_name(pv_error_class c)
{
	return (unsigned)c <= PV_CLASS_INTERNAL ? class_names[c] : "unknown";
}

int pv_error_class_parse(const char *name, pv_error_class *out)
{
	int i = pv_names_find(class_names, (size_t)PV_CLASS_INTERNAL + 1, name, "error class");
	if (i < 0)
		return i;
	*out = (pv_error_class)i;
	return 0;
}

bool pv_error_class_retryable(pv_error_class c)
{
	return c == PV_CLASS_TRANSIENT || c == PV_CLASS_THROTTLED;
}

pv_error_class pv_error_code_class(const char *code)
{
	static const struct {
		const char *code;
		pv_error_class cls;
	} known[] = {
		{PV_ERR_TIMEOUT, PV_CLASS_TRANSIENT},
		{PV_ERR_EXECUTION_ERROR, PV_CLASS_TRANSIENT},
		{PV_ERR_THROTTLED, PV_CLASS_THROTTLED},
		{PV_ERR_CAPACITY, PV_CLASS_CAPACITY},
		{PV_ERR_INTERNAL, PV_CLASS_INTERNAL},
		{PV_ERR_NO_STRATEGY_AVAILABLE, PV_CLASS_TRANSIENT},
		{PV_ERR_ALL_STRATEGIES_FAILED, PV_CLASS_TRANSIENT},
		{"CIRCUIT_OPEN", PV_CLASS_TRANSIENT},
		{"UNHEALTHY", PV_CLASS_TRANSIENT},
		{"CONNECTION_ERROR", PV_CLASS_TRANSIENT},
		{"FAILURE_THRESHOLD_EXCEEDED", PV_CLASS_TRANSIENT},
		{"INSUFFICIENT_SUCCESS", PV_CLASS_TRANSIENT},
		{"NOT_ALL_SUCCEEDED", PV_CLASS_TRANSIENT},
		{"NO_MAJORITY", PV_CLASS_TRANSIENT},
	};
	for (size_t i = 0; code && i < sizeof known / sizeof known[0]; i++)
		if (strcmp(code, known[i].code) == 0)
			return known[i].cls;
	return PV_CLASS_PERMANENT;
}

void pv_result_init(pv_result *r) { memset(r, 0, sizeof *r); }

void pv_result_clear(pv_result *r)
{
	json_decref(r->data);
	json_decref(r->metadata);
	free(r->message);
	memset(r, 0, sizeof *r);
}

void pv_result_move(pv_result *dst, pv_result *src)
{
	if (dst == src)
		return;
	pv_result_clear(dst);
	*dst = *src;
	memset(src, 0, sizeof *src);
}

static void copy_field(char *dst, size_t size, const char *src)
{
	size_t n = src ? strnlen(src, size - 1) : 0;
	memcpy(dst, src ? src : "", n);
	dst[n] = '\0';
}

void pv_result_ok(pv_result *r, json_t *data)
{
	json_decref(r->data);
	free(r->message);
	r->data = data;
	r->message = NULL;
	r->success = true;
	r->error_class = PV_CLASS_NONE;
	r->error_code[0] = '\0';
}

void pv_result_fail(pv_result *r, const char *code, pv_error_class cls, const char *fmt, ...)
{
	json_decref(r->data);
	r->data = NULL;
	free(r->message);
	r->message = NULL;
	r->success = false;
	r->error_class = cls == PV_CLASS_NONE ? PV_CLASS_INTERNAL : cls;
	copy_field(r->error_code, sizeof r->error_code, code ? code : PV_ERR_EXECUTION_ERROR);
	if (fmt) {
		va_list ap;
		va_start(ap, fmt);
		if (vasprintf(&r->message, fmt, ap) < 0)
			r->message = NULL;
		va_end(ap);
	}
}

void pv_result_set_provider(pv_result *r, const char *name)
{
	copy_field(r->provider, sizeof r->provider, name);
}

void pv_result_meta_set(pv_result *r, const char *key, json_t *value)
{
	if (!r->metadata)
		r->metadata = json_object();
	if (r->metadata)
		json_object_set_new(r->metadata, key, value);
	else
		json_decref(value);
}

json_t *pv_result_metadata(const pv_result *r)
{
	json_t *m = r->metadata ? json_deep_copy(r->metadata) : json_object();
	if (!m)
		return NULL;
	json_object_set_new(m, "provider", r->provider[0] ? json_string(r->provider) : json_null());
	json_object_set_new(m, "latency_ms", json_real((double)r->latency_ns / 1e6));
	json_object_set_new(m, "attempts", json_integer(r->attempts));
	return m;
}

json_t *pv_result_to_json(const pv_result *r)
{
	json_t *j = json_object();
	if (!j)
		return NULL;
	json_object_set_new(j, "success", json_boolean(r->success));
	json_object_set(j, "data", r->data ? r->data : json_null());
	json_object_set_new(j, "error_code", r->success ? json_null() : json_string(r->error_code));
	json_object_set_new(j, "error_class", json_string(pv_error_class_name(r->error_class)));
	json_object_set_new(j, "message", r->message ? json_string(r->message) : json_null());
	json_object_set_new(j, "metadata", pv_result_metadata(r));
	return j;
}
