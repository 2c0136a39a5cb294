/*
 * filter.c - the Filter.N parameters of EC2's describe actions.
 *
 * As EC2: filters are ANDed, the values of one filter ORed, names and
 * values case-sensitive, values may hold the wildcards `*` (any run) and
 * `?` (one character), `\` makes the next character literal. A name the
 * action does not take is a request error, "The filter 'x' is invalid"
 * (InvalidParameterValue): ignoring it would answer more than was asked.
 */
#include <stdlib.h>
#include <string.h>
#include "emu.h"

bool emu_glob(const char *pat, const char *s)
{
	/* Backtracking to the last `*` only is enough: an earlier one could
	 * only have taken less. */
	const char *star = NULL, *resume = NULL;
	while (*s) {
		if (*pat == '*') {
			star = ++pat;
			resume = s;
			continue;
		}
		bool any = *pat == '?';
		const char *c = *pat == '\\' && pat[1] ? pat + 1 : pat;
		if (*pat && (any || *c == *s)) {
			pat = c + 1;
			s++;
			continue;
		}
		if (!star)
			return false;
		pat = star;
		s = ++resume;
	}
	while (*pat == '*')
		pat++;
	return *pat == '\0';
}

static bool name_allowed(const char *const *names, const char *name)
{
	for (size_t i = 0; names[i]; i++) {
		size_t n = strlen(names[i]);
		if (names[i][n - 1] == ':' ? strncmp(name, names[i], n) == 0 && name[n] : strcmp(name, names[i]) == 0)
			return true;
	}
	return false;
}

json_t *emu_filters(json_t *p, const char *const *names, const char *rid, emu_reply *r)
{
	json_t *list = json_array();
	for (int f = 1;; f++) {
		const char *name = paramf(p, "Filter.%d.Name", f);
		if (!name)
			return list;
		if (!name_allowed(names, name)) {
			char msg[300];
			snprintf(msg, sizeof msg, "The filter '%.200s' is invalid", name);
			emu_error(r, 400, "InvalidParameterValue", msg, rid);
			json_decref(list);
			return NULL;
		}
		json_t *values = json_array();
		for (int v = 1;; v++) {
			const char *val = paramf(p, "Filter.%d.Value.%d", f, v);
			if (!val)
				break;
			json_array_append_new(values, json_string(val));
		}
		json_array_append_new(list, json_pack("{s:s, s:o}", "name", name, "values", values));
	}
}

static bool any_matches(json_t *values, const char *have)
{
	size_t i;
	json_t *v;
	json_array_foreach(values, i, v) if (have && emu_glob(json_string_value(v), have)) return true;
	return false;
}

static bool filter_match(emu *e, json_t *obj, const char *name, json_t *values, emu_field_fn field)
{
	json_t *tags = json_object_get(obj, "tags");
	const char *k;
	json_t *v;
	if (strcmp(name, "tag-key") == 0 || strcmp(name, "tag-value") == 0) {
		bool key = name[4] == 'k';
		json_object_foreach(tags, k, v) if (any_matches(values, key ? k : json_string_value(v))) return true;
		return false;
	}
	if (strncmp(name, "tag:", 4) == 0)
		return any_matches(values, json_string_value(json_object_get(tags, name + 4)));
	char buf[64];
	return any_matches(values, field(e, obj, name, buf, sizeof buf));
}

bool emu_filters_match(emu *e, json_t *filters, json_t *obj, emu_field_fn field)
{
	size_t i;
	json_t *f;
	json_array_foreach(filters, i, f) {
		if (!filter_match(e, obj, json_string_value(json_object_get(f, "name")), json_object_get(f, "values"),
				  field))
			return false;
	}
	return true;
}
