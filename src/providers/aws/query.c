/*
 * query.c - ec2Query serialisation of a JSON value against a shape model.
 *
 * Most of the provider's requests are a handful of flat keys built by hand
 * (form.c). Nested inputs (CreateLaunchTemplate's LaunchTemplateData, with
 * lists of structures inside) are easier to get right as data plus a model:
 * the rules then live in one place, and the Smithy ec2Query protocol
 * compliance tests (tests/data/ec2query/, run by test_aws_ec2query) check
 * exactly these rules:
 *  - a member's key is its ec2QueryName, else its xmlName with the first
 *    letter upper-cased, else its name with the first letter upper-cased;
 *  - structures nest with dots (Nested.StringArg), lists are always
 *    flattened with 1-based indexes (ListArg.1, ComplexListArg.2.Hi), the
 *    list member's own xmlName is ignored, an empty list sends nothing;
 *  - booleans are true / false, numbers in their shortest round-trip form,
 *    NaN / Infinity / -Infinity as those words, blobs base64, timestamps
 *    RFC 3339 (date-time) unless a timestampFormat on the member or its
 *    target says epoch-seconds or http-date;
 *  - keys and values percent-encoded as SigV4 expects (form.c).
 *
 * The model is a subset of the Smithy JSON AST: an object of shapes by
 * name, each {"type": structure | list | string | enum | boolean | byte |
 * short | integer | long | float | double | bigInteger | bigDecimal |
 * timestamp | blob | intEnum, "members": {name: {"target": .., "traits":
 * {..}}} (structure), "member": {"target": ..} (list), "traits": {..}}, with
 * the trait names ec2QueryName, xmlName and timestampFormat. Smithy's
 * prelude names (String, Integer, Timestamp, ...) need no entry.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "providers/aws/aws_internal.h"

typedef struct prelude {
	const char *name, *type;
} prelude;

static const prelude preludes[] = {
	{"String", "string"},       {"Boolean", "boolean"},       {"PrimitiveBoolean", "boolean"},
	{"Byte", "byte"},           {"Short", "short"},           {"Integer", "integer"},
	{"PrimitiveInteger", "integer"}, {"Long", "long"},        {"PrimitiveLong", "long"},
	{"Float", "float"},         {"PrimitiveFloat", "float"},  {"Double", "double"},
	{"PrimitiveDouble", "double"}, {"BigInteger", "bigInteger"}, {"BigDecimal", "bigDecimal"},
	{"Timestamp", "timestamp"}, {"Blob", "blob"},             {"Document", "document"},
};

/* The type of a shape name and its definition (NULL for a prelude). */
static const char *shape_type(const json_t *model, const char *name, const json_t **def)
{
	const char *local = name ? strrchr(name, '#') : NULL;
	local = local ? local + 1 : name;
	*def = json_object_get(model, name ? name : "");
	if (!*def && local)
		*def = json_object_get(model, local);
	if (*def)
		return json_string_value(json_object_get(*def, "type"));
	for (size_t i = 0; local && i < sizeof preludes / sizeof preludes[0]; i++)
		if (strcmp(local, preludes[i].name) == 0)
			return preludes[i].type;
	return NULL;
}

static const char *trait(const json_t *holder, const char *name)
{
	return json_string_value(json_object_get(json_object_get(holder, "traits"), name));
}

void aws_query_member_name(char *out, size_t size, const char *member, const char *ec2_query_name,
			   const char *xml_name)
{
	if (ec2_query_name) {
		snprintf(out, size, "%s", ec2_query_name);
		return;
	}
	snprintf(out, size, "%s", xml_name ? xml_name : member);
	if (out[0] >= 'a' && out[0] <= 'z')
		out[0] = (char)(out[0] - 'a' + 'A');
}

int aws_query_number(char *out, size_t size, double v, bool single)
{
	if (isnan(v))
		return snprintf(out, size, "NaN") < 0 ? -1 : 0;
	if (isinf(v))
		return snprintf(out, size, v < 0 ? "-Infinity" : "Infinity") < 0 ? -1 : 0;
	if (v == floor(v) && fabs(v) < 1e15)
		return snprintf(out, size, "%.0f", v) < 0 ? -1 : 0;
	/* The shortest text that reads back as the same value (10.8, not
	 * 10.800000000000001), at the shape's precision. */
	for (int prec = 1; prec <= 17; prec++) {
		snprintf(out, size, "%.*g", prec, v);
		double back = strtod(out, NULL);
		if (single ? (float)back == (float)v : back == v)
			return 0;
	}
	return 0;
}

int aws_query_timestamp(char *out, size_t size, double epoch_s, const char *format)
{
	time_t whole = (time_t)floor(epoch_s);
	double frac = epoch_s - (double)whole;
	struct tm tm;
	if (!gmtime_r(&whole, &tm))
		return -1;
	if (format && strcmp(format, "epoch-seconds") == 0)
		return aws_query_number(out, size, epoch_s, false);
	if (format && strcmp(format, "http-date") == 0) {
		strftime(out, size, "%a, %d %b %Y %H:%M:%S GMT", &tm);
		return 0;
	}
	char base[40];
	strftime(base, sizeof base, "%Y-%m-%dT%H:%M:%S", &tm);
	if (frac > 0) {
		char ms[16];
		snprintf(ms, sizeof ms, "%.3f", frac); /* "0.123" */
		snprintf(out, size, "%s%sZ", base, ms + 1);
	} else {
		snprintf(out, size, "%sZ", base);
	}
	return 0;
}

/* A number or one of the words Smithy uses for the IEEE specials. */
static bool number_of(const json_t *v, double *out)
{
	if (json_is_number(v)) {
		*out = json_number_value(v);
		return true;
	}
	const char *s = json_string_value(v);
	if (!s)
		return false;
	if (strcmp(s, "NaN") == 0)
		*out = NAN;
	else if (strcmp(s, "Infinity") == 0)
		*out = INFINITY;
	else if (strcmp(s, "-Infinity") == 0)
		*out = -INFINITY;
	else
		return false;
	return true;
}

static int add_value(aws_form *f, const json_t *model, const char *target, const char *ts_format,
		     const char *key, const json_t *v);

static int add_structure(aws_form *f, const json_t *model, const json_t *def, const char *prefix,
			 const json_t *v)
{
	if (!json_is_object(v))
		return -1;
	const char *name;
	json_t *m;
	json_object_foreach(json_object_get(def, "members"), name, m) {
		json_t *mv = json_object_get(v, name);
		if (!mv || json_is_null(mv))
			continue;
		char seg[128], key[512];
		aws_query_member_name(seg, sizeof seg, name, trait(m, "ec2QueryName"), trait(m, "xmlName"));
		snprintf(key, sizeof key, "%s%s%s", prefix, *prefix ? "." : "", seg);
		if (add_value(f, model, json_string_value(json_object_get(m, "target")),
			      trait(m, "timestampFormat"), key, mv) < 0)
			return -1;
	}
	return 0;
}

static int add_list(aws_form *f, const json_t *model, const json_t *def, const char *prefix,
		    const json_t *v)
{
	if (!json_is_array(v))
		return -1;
	const json_t *member = json_object_get(def, "member");
	size_t i;
	json_t *item;
	json_array_foreach(v, i, item) {
		char key[512];
		snprintf(key, sizeof key, "%s.%zu", prefix, i + 1);
		if (add_value(f, model, json_string_value(json_object_get(member, "target")),
			      trait(member, "timestampFormat"), key, item) < 0)
			return -1;
	}
	return 0;
}

static int add_scalar(aws_form *f, const char *type, const char *ts_format, const char *key, const json_t *v)
{
	char buf[64];
	double d;
	if (strcmp(type, "string") == 0 || strcmp(type, "enum") == 0) {
		if (!json_is_string(v))
			return -1;
		aws_form_add(f, key, json_string_value(v));
	} else if (strcmp(type, "boolean") == 0) {
		if (!json_is_boolean(v))
			return -1;
		aws_form_add(f, key, json_is_true(v) ? "true" : "false");
	} else if (strcmp(type, "float") == 0 || strcmp(type, "double") == 0 ||
		   strcmp(type, "bigDecimal") == 0) {
		if (!number_of(v, &d))
			return -1;
		aws_query_number(buf, sizeof buf, d, strcmp(type, "float") == 0);
		aws_form_add(f, key, buf);
	} else if (strcmp(type, "timestamp") == 0) {
		if (!number_of(v, &d) || aws_query_timestamp(buf, sizeof buf, d, ts_format) < 0)
			return -1;
		aws_form_add(f, key, buf);
	} else if (strcmp(type, "blob") == 0) {
		if (!json_is_string(v))
			return -1;
		char *b = aws_base64((const unsigned char *)json_string_value(v), json_string_length(v));
		if (!b)
			return -1;
		aws_form_add(f, key, b);
		free(b);
	} else {
		/* byte, short, integer, long, bigInteger, intEnum */
		if (!json_is_integer(v))
			return -1;
		snprintf(buf, sizeof buf, "%lld", (long long)json_integer_value(v));
		aws_form_add(f, key, buf);
	}
	return 0;
}

static int add_value(aws_form *f, const json_t *model, const char *target, const char *ts_format,
		     const char *key, const json_t *v)
{
	const json_t *def;
	const char *type = shape_type(model, target, &def);
	if (!type)
		return -1;
	if (strcmp(type, "structure") == 0)
		return add_structure(f, model, def, key, v);
	if (strcmp(type, "list") == 0 || strcmp(type, "set") == 0)
		return add_list(f, model, def, key, v);
	if (strcmp(type, "map") == 0 || strcmp(type, "union") == 0 || strcmp(type, "document") == 0)
		return -1; /* no ec2Query rule we use or test */
	/* A timestampFormat on the member wins over one on the target. */
	return add_scalar(f, type, ts_format ? ts_format : trait(def, "timestampFormat"), key, v);
}

int aws_query_add(aws_form *f, const json_t *model, const char *shape, const char *prefix,
		  const json_t *value)
{
	return add_value(f, model, shape, NULL, prefix ? prefix : "", value);
}
