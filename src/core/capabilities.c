/*
 * capabilities.c - capability sets and health status values.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "provisio/capabilities.h"
#include "provisio/error.h"

void pv_capabilities_clear(pv_capabilities *c)
{
	json_decref(c->features);
	json_decref(c->limitations);
	memset(c, 0, sizeof *c);
}

bool pv_capabilities_supports(const pv_capabilities *c, pv_op_type op)
{
	return (unsigned)op < PV_OP_COUNT && (c->operations & PV_OP_BIT(op));
}

static bool feature_on(const pv_capabilities *c, const char *name)
{
	json_t *v = c->features ? json_object_get(c->features, name) : NULL;
	if (!v || json_is_false(v) || json_is_null(v))
		return false;
	return true;
}

bool pv_capabilities_has_features(const pv_capabilities *c, const json_t *required)
{
	size_t i;
	const char *key;
	json_t *v;
	if (!required)
		return true;
	if (json_is_array(required)) {
		json_array_foreach(required, i, v)
			if (!json_is_string(v) || !feature_on(c, json_string_value(v)))
				return false;
		return true;
	}
	if (json_is_object(required)) {
		json_object_foreach((json_t *)required, key, v)
			if (!feature_on(c, key))
				return false;
		return true;
	}
	return false;
}

json_t *pv_capabilities_to_json(const pv_capabilities *c)
{
	json_t *ops = json_array();
	for (unsigned i = 0; i < PV_OP_COUNT; i++)
		if (c->operations & PV_OP_BIT(i))
			json_array_append_new(ops, json_string(pv_op_name((pv_op_type)i)));
	return json_pack("{s:s, s:o, s:o, s:o}", "type", c->type, "supported_operations", ops,
			 "features", c->features ? json_incref(c->features) : json_object(),
			 "limitations", c->limitations ? json_incref(c->limitations) : json_object());
}

void pv_health_clear(pv_health *h)
{
	free(h->message);
	json_decref(h->details);
	memset(h, 0, sizeof *h);
}

void pv_health_set(pv_health *h, bool healthy, const char *fmt, ...)
{
	free(h->message);
	h->message = NULL;
	h->healthy = healthy;
	va_list ap;
	va_start(ap, fmt);
	if (vasprintf(&h->message, fmt, ap) < 0)
		h->message = NULL;
	va_end(ap);
}

int pv_health_copy(pv_health *dst, const pv_health *src)
{
	pv_health_clear(dst);
	dst->healthy = src->healthy;
	dst->checked_at_ms = src->checked_at_ms;
	dst->response_ns = src->response_ns;
	if (src->message && !(dst->message = strdup(src->message)))
		return pv_error_set(PV_ENOMEM, "out of memory copying health");
	if (src->details && !(dst->details = json_deep_copy(src->details)))
		return pv_error_set(PV_ENOMEM, "out of memory copying health");
	return 0;
}

json_t *pv_health_to_json(const pv_health *h)
{
	return json_pack("{s:b, s:s?, s:I, s:f, s:o}", "healthy", h->healthy, "message",
			 h->message, "checked_at_ms", (json_int_t)h->checked_at_ms, "response_ms",
			 (double)h->response_ns / 1e6, "details",
			 h->details ? json_incref(h->details) : json_object());
}

json_t *pv_health_answer(bool healthy, const char *message, uint64_t latency_ns)
{
	return json_pack("{s:b, s:s, s:s?, s:f}", "healthy", healthy, "status",
			 healthy ? "healthy" : "unhealthy", "message", message, "latency_ms",
			 (double)latency_ns / 1e6);
}

int pv_health_from_json(const json_t *j, pv_health *out)
{
	memset(out, 0, sizeof *out);
	json_t *healthy = json_object_get(j, "healthy"), *at = json_object_get(j, "checked_at_ms");
	json_t *msg = json_object_get(j, "message"), *ms = json_object_get(j, "response_ms");
	json_t *details = json_object_get(j, "details");
	if (!json_is_object(j))
		return pv_error_set(PV_EINVAL, "health: must be a JSON object");
	if (!json_is_boolean(healthy))
		return pv_error_set(PV_EINVAL, "health: field 'healthy' must be true or false");
	if (!json_is_integer(at) || json_integer_value(at) <= 0)
		return pv_error_set(PV_EINVAL, "health: field 'checked_at_ms' must be an integer > 0");
	if (msg && !json_is_string(msg) && !json_is_null(msg))
		return pv_error_set(PV_EINVAL, "health: field 'message' must be a string");
	if (ms && (!json_is_number(ms) || json_number_value(ms) < 0))
		return pv_error_set(PV_EINVAL, "health: field 'response_ms' must be a number >= 0");
	if (details && !json_is_object(details))
		return pv_error_set(PV_EINVAL, "health: field 'details' must be an object");
	out->healthy = json_is_true(healthy);
	out->checked_at_ms = json_integer_value(at);
	out->response_ns = ms ? (uint64_t)(json_number_value(ms) * 1e6) : 0;
	if ((json_is_string(msg) && !(out->message = strdup(json_string_value(msg)))) ||
	    (details && !(out->details = json_deep_copy(details)))) {
		pv_health_clear(out);
		return pv_error_set(PV_ENOMEM, "out of memory");
	}
	return 0;
}
