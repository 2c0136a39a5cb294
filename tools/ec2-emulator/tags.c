/*
 * tags.c - CreateTags, DeleteTags, DescribeTags, and EC2's rules for tags
 * wherever a client gives them (also the TagSpecification.N of launches
 * and launch templates).
 *
 * The rules a client can notice: a key of 1 to 128 characters, a value of
 * at most 256; the aws: prefix (any case) is EC2's own, so setting or
 * deleting such a key is InvalidParameterValue (EC2 sets aws:ec2:fleet-id
 * itself, and it can be filtered on and described); at most 50 tags a
 * resource (TagLimitExceeded); a request is checked whole before anything
 * changes. Instances are the resources that carry tags here: another id is
 * InvalidID.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "emu.h"

#define MAX_TAGS 50
#define KEY_MAX 128
#define VALUE_MAX 256

bool emu_tag_key_reserved(const char *key) { return strncasecmp(key, "aws:", 4) == 0; }

/* Why a client may not set key=value (NULL when it may). */
static const char *tag_refused(const char *key, const char *value)
{
	if (emu_tag_key_reserved(key))
		return "Tag keys starting with 'aws:' are reserved for internal use";
	if (!*key || strlen(key) > KEY_MAX)
		return "Tag keys must be 1 to 128 characters";
	if (value && strlen(value) > VALUE_MAX)
		return "Tag values must be at most 256 characters";
	return NULL;
}

/* The error for a refused tag of CreateTags / DeleteTags, as EC2 words it. */
static void tag_error(emu_reply *r, const char *key, const char *why, const char *rid)
{
	char msg[400];
	snprintf(msg, sizeof msg, "Value ( %.140s ) for parameter key is invalid. %s", key, why);
	emu_error(r, 400, "InvalidParameterValue", msg, rid);
}

bool emu_tags_ok(json_t *tags, const char *rid, emu_reply *r)
{
	const char *k;
	json_t *v;
	json_object_foreach(tags, k, v) {
		const char *why = tag_refused(k, json_string_value(v));
		if (why) {
			emu_error(r, 400, "InvalidParameterValue", why, rid);
			return false;
		}
	}
	return true;
}

bool emu_tag_specs_ok(json_t *p, const char *prefix, const char *rid, emu_reply *r)
{
	for (int s = 1; paramf(p, "%sTagSpecification.%d.ResourceType", prefix, s); s++) {
		for (int t = 1;; t++) {
			const char *k = paramf(p, "%sTagSpecification.%d.Tag.%d.Key", prefix, s, t);
			if (!k)
				break;
			const char *why = tag_refused(k, paramf(p, "%sTagSpecification.%d.Tag.%d.Value", prefix, s, t));
			if (why) {
				emu_error(r, 400, "InvalidParameterValue", why, rid);
				return false;
			}
		}
	}
	return true;
}

/* The instances ResourceId.N names; NULL with r filled when one is not an
 * instance this emulator has. */
static json_t *resources_param(emu *e, json_t *p, const char *rid, emu_reply *r)
{
	char msg[300];
	json_t *list = json_array();
	for (int k = 1;; k++) {
		const char *id = paramf(p, "ResourceId.%d", k);
		if (!id)
			break;
		json_t *in = json_object_get(e->by_id, id);
		if (in) {
			json_array_append(list, in);
			continue;
		}
		if (strncmp(id, "i-", 2) != 0) {
			snprintf(msg, sizeof msg, "The ID '%.200s' is not valid", id);
			emu_error(r, 400, "InvalidID", msg, rid);
		} else if (!emu_instance_id_ok(id)) {
			snprintf(msg, sizeof msg, "Invalid id: \"%.200s\"", id);
			emu_error(r, 400, "InvalidInstanceID.Malformed", msg, rid);
		} else {
			snprintf(msg, sizeof msg, "The instance ID '%.200s' does not exist", id);
			emu_error(r, 400, "InvalidInstanceID.NotFound", msg, rid);
		}
		json_decref(list);
		return NULL;
	}
	if (json_array_size(list) == 0) {
		emu_error(r, 400, "MissingParameter", "The request must contain the parameter ResourceId", rid);
		json_decref(list);
		return NULL;
	}
	return list;
}

static void return_true(emu_reply *r, const char *action, const char *rid)
{
	emu_head(&r->body, action, rid);
	eb_printf(&r->body, "<return>true</return></%sResponse>", action);
	r->status = 200;
}

void emu_create_tags(emu *e, json_t *p, const char *rid, emu_reply *r)
{
	json_t *targets = resources_param(e, p, rid, r);
	if (!targets)
		return;
	json_t *tags = json_object();
	for (int t = 1;; t++) {
		const char *k = paramf(p, "Tag.%d.Key", t), *v = paramf(p, "Tag.%d.Value", t);
		if (!k)
			break;
		const char *why = tag_refused(k, v);
		if (why) {
			tag_error(r, k, why, rid);
			goto out;
		}
		json_object_set_new(tags, k, json_string(v ? v : ""));
	}
	if (json_object_size(tags) == 0) {
		emu_error(r, 400, "MissingParameter", "The request must contain the parameter Tag", rid);
		goto out;
	}
	size_t i;
	json_t *in;
	json_array_foreach(targets, i, in) {
		json_t *have = json_object_get(in, "tags");
		size_t n = json_object_size(have);
		const char *k;
		json_t *v;
		json_object_foreach(tags, k, v) n += json_object_get(have, k) ? 0 : 1;
		if (n > MAX_TAGS) {
			char msg[300];
			snprintf(msg, sizeof msg, "The maximum number of Tags for a resource has been reached (%d): %s",
				 MAX_TAGS, param(in, "id"));
			emu_error(r, 400, "TagLimitExceeded", msg, rid);
			goto out;
		}
	}
	if (is_true(p, "DryRun")) {
		emu_dry_run_ok(r, rid);
		goto out;
	}
	json_array_foreach(targets, i, in) json_object_update(json_object_get(in, "tags"), tags);
	return_true(r, "CreateTags", rid);
out:
	json_decref(tags);
	json_decref(targets);
}

void emu_delete_tags(emu *e, json_t *p, const char *rid, emu_reply *r)
{
	json_t *targets = resources_param(e, p, rid, r);
	if (!targets)
		return;
	for (int t = 1; paramf(p, "Tag.%d.Key", t); t++) {
		const char *k = paramf(p, "Tag.%d.Key", t);
		if (emu_tag_key_reserved(k)) {
			tag_error(r, k, "Tag keys starting with 'aws:' are reserved for internal use", rid);
			json_decref(targets);
			return;
		}
	}
	if (is_true(p, "DryRun")) {
		json_decref(targets);
		return emu_dry_run_ok(r, rid);
	}
	size_t i;
	json_t *in;
	json_array_foreach(targets, i, in) {
		json_t *tags = json_object_get(in, "tags");
		if (!paramf(p, "Tag.1.Key")) {
			/* No Tag.N: every tag the client set, not EC2's own. */
			const char *k;
			json_t *v;
			void *tmp;
			json_object_foreach_safe(tags, tmp, k, v) if (!emu_tag_key_reserved(k)) json_object_del(tags, k);
			continue;
		}
		for (int t = 1; paramf(p, "Tag.%d.Key", t); t++) {
			/* With a Value (even ""), only a tag of that value goes. */
			const char *k = paramf(p, "Tag.%d.Key", t), *v = paramf(p, "Tag.%d.Value", t);
			const char *have = json_string_value(json_object_get(tags, k));
			if (have && (!v || strcmp(v, have) == 0))
				json_object_del(tags, k);
		}
	}
	json_decref(targets);
	return_true(r, "DeleteTags", rid);
}

static const char *const tag_filters[] = {"key", "resource-id", "resource-type", "value", "tag:", NULL};

/* A DescribeTags item: {id, key, value, tags (the resource's)}. */
static const char *tag_field(emu *e, json_t *item, const char *name, char *buf, size_t size)
{
	(void)e;
	(void)buf;
	(void)size;
	if (strcmp(name, "resource-type") == 0)
		return "instance";
	return param(item, strcmp(name, "resource-id") == 0 ? "id" : name);
}

void emu_describe_tags(emu *e, json_t *p, const char *rid, emu_reply *r)
{
	long max = emu_max_results(p, rid, r);
	if (max == 0)
		return;
	json_t *filters = emu_filters(p, tag_filters, rid, r);
	if (!filters)
		return;
	long start = emu_describe_start(e, "DescribeTags", p, rid, r);
	if (start < 0) {
		json_decref(filters);
		return;
	}
	emu_head(&r->body, "DescribeTags", rid);
	eb_add(&r->body, "<tagSet>");
	long seen = 0, shown = 0, next = -1;
	size_t i;
	json_t *in;
	json_array_foreach(e->instances, i, in) {
		json_t *tags = json_object_get(in, "tags");
		const char *k;
		json_t *v;
		json_object_foreach(tags, k, v) {
			json_t *item = json_pack("{s:s, s:s, s:O, s:O}", "id", param(in, "id"), "key", k, "value", v,
						 "tags", tags);
			bool match = emu_filters_match(e, filters, item, tag_field);
			json_decref(item);
			if (!match || seen++ < start)
				continue;
			if (max > 0 && shown == max) {
				next = seen - 1;
				goto done;
			}
			eb_add(&r->body, "<item>");
			eb_elem(&r->body, "resourceId", param(in, "id"));
			eb_add(&r->body, "<resourceType>instance</resourceType>");
			eb_elem(&r->body, "key", k);
			eb_elem(&r->body, "value", json_string_value(v));
			eb_add(&r->body, "</item>");
			shown++;
		}
	}
done:
	eb_add(&r->body, "</tagSet>");
	emu_page_next(e, "DescribeTags", p, next, &r->body);
	eb_add(&r->body, "</DescribeTagsResponse>");
	json_decref(filters);
	r->status = 200;
}
