/*
 * xml_list.c - the lists of Spot Fleet, EC2 Fleet and Auto Scaling answers.
 *
 * These answers hold few shapes: a list of items (<item> in EC2's
 * answers, <member> in Auto Scaling's) with a few texts each, and single
 * values (an id, a state). Two generic readers cover them, matching local
 * names and ignoring the namespace as xml.c does.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include "providers/aws/groups.h"

static xmlDocPtr parse(const char *body, size_t len)
{
	if (!body || len == 0 || len > (size_t)0x7fffffff)
		return NULL;
	return xmlReadMemory(body, (int)len, "answer.xml", NULL,
			     XML_PARSE_NONET | XML_PARSE_NOBLANKS | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
}

static bool named(xmlNodePtr n, const char *name)
{
	return n && n->type == XML_ELEMENT_NODE && strcmp((const char *)n->name, name) == 0;
}

/* The first element named `name` at or below `n`, depth first. */
static xmlNodePtr find(xmlNodePtr n, const char *name)
{
	for (; n; n = n->next) {
		if (named(n, name))
			return n;
		xmlNodePtr in = n->type == XML_ELEMENT_NODE ? find(n->children, name) : NULL;
		if (in)
			return in;
	}
	return NULL;
}

static xmlNodePtr child(xmlNodePtr n, const char *name)
{
	for (xmlNodePtr c = n ? n->children : NULL; c; c = c->next)
		if (named(c, name))
			return c;
	return NULL;
}

void aws_xml_find_text(const char *body, size_t len, const char *name, char *out, size_t size)
{
	out[0] = '\0';
	xmlDocPtr doc = parse(body, len);
	if (!doc)
		return;
	xmlNodePtr n = find(xmlDocGetRootElement(doc), name);
	xmlChar *s = n ? xmlNodeGetContent(n) : NULL;
	snprintf(out, size, "%s", s ? (const char *)s : "");
	xmlFree(s);
	xmlFreeDoc(doc);
}

/* The text at `p` ("a/b") below `n` as a new JSON string, NULL when absent. */
static json_t *text_at(xmlNodePtr n, const char *p)
{
	char buf[128];
	snprintf(buf, sizeof buf, "%s", p);
	char *save = NULL;
	for (char *tok = strtok_r(buf, "/", &save); tok && n; tok = strtok_r(NULL, "/", &save))
		n = child(n, tok);
	xmlChar *s = n ? xmlNodeGetContent(n) : NULL;
	json_t *j = s && *s ? json_string((const char *)s) : NULL;
	xmlFree(s);
	return j;
}

json_t *aws_xml_list(const char *body, size_t len, const char *list, const char *const *fields,
		     char **next_token)
{
	if (next_token)
		*next_token = NULL;
	xmlDocPtr doc = parse(body, len);
	if (!doc)
		return NULL;
	xmlNodePtr root = xmlDocGetRootElement(doc);
	json_t *out = json_array();
	xmlNodePtr set = find(root, list);
	for (xmlNodePtr it = set ? set->children : NULL; it; it = it->next) {
		if (!named(it, "item") && !named(it, "member"))
			continue;
		json_t *o = json_object();
		for (size_t i = 0; fields[i]; i++) {
			const char *slash = strrchr(fields[i], '/');
			json_t *v = text_at(it, fields[i]);
			if (v)
				json_object_set_new(o, slash ? slash + 1 : fields[i], v);
		}
		json_array_append_new(out, o);
	}
	if (next_token) {
		/* The answer's own token: a child of the root or of its result. */
		xmlNodePtr nt = child(root, "nextToken"), res = root->children;
		while (res && res->type != XML_ELEMENT_NODE)
			res = res->next;
		if (!nt)
			nt = child(res, "NextToken");
		xmlChar *s = nt ? xmlNodeGetContent(nt) : NULL;
		*next_token = s && *s ? strdup((const char *)s) : NULL;
		xmlFree(s);
	}
	xmlFreeDoc(doc);
	return out;
}

/* ---- a group's launch template and weights ------------------------------------ */

/* EC2 names its members lowerCamel, Auto Scaling UpperCamel. */
static xmlNodePtr child_ci(xmlNodePtr n, const char *name)
{
	for (xmlNodePtr c = n ? n->children : NULL; c; c = c->next)
		if (c->type == XML_ELEMENT_NODE && strcasecmp((const char *)c->name, name) == 0)
			return c;
	return NULL;
}

static json_t *text_ci(xmlNodePtr n, const char *name)
{
	xmlNodePtr c = child_ci(n, name);
	xmlChar *s = c ? xmlNodeGetContent(c) : NULL;
	json_t *j = s && *s ? json_string((const char *)s) : NULL;
	xmlFree(s);
	return j;
}

/* {id, name} of a launch template specification (what it gives of them). */
static void add_spec(xmlNodePtr spec, json_t *templates)
{
	json_t *id = spec ? text_ci(spec, "LaunchTemplateId") : NULL, *name = spec ? text_ci(spec, "LaunchTemplateName") : NULL;
	if (!id && !name)
		return;
	json_t *t = json_object();
	if (id)
		json_object_set_new(t, "id", id);
	if (name)
		json_object_set_new(t, "name", name);
	json_array_append_new(templates, t);
}

/* Each override's InstanceType -> WeightedCapacity (a Double in EC2's
 * answers, "2.0"; a string in Auto Scaling's, "2"). provisio gives whole
 * positive weights; any other is named in `problems`, not guessed at. */
static void add_weights(xmlNodePtr overrides, json_t *weights, json_t *problems)
{
	for (xmlNodePtr it = overrides ? overrides->children : NULL; it; it = it->next) {
		if (!named(it, "item") && !named(it, "member"))
			continue;
		json_t *type = text_ci(it, "InstanceType"), *w = text_ci(it, "WeightedCapacity");
		if (type && w) {
			char *end;
			double v = strtod(json_string_value(w), &end);
			if (*end || !isfinite(v) || v < 1 || v != floor(v) || v > 1e9)
				json_array_append_new(problems, json_sprintf("WeightedCapacity '%s' of %s: not a whole "
									      "number of units from 1",
									      json_string_value(w),
									      json_string_value(type)));
			else
				json_object_set_new(weights, json_string_value(type), json_integer((json_int_t)v));
		}
		json_decref(type);
		json_decref(w);
	}
}

json_t *aws_xml_group_launch(const char *body, size_t len, const char *set)
{
	xmlDocPtr doc = parse(body, len);
	if (!doc)
		return NULL;
	json_t *out = json_pack("{s:[], s:{}, s:[]}", "launch_templates", "weights", "problems");
	json_t *lts = json_object_get(out, "launch_templates"), *weights = json_object_get(out, "weights"),
	       *problems = json_object_get(out, "problems");
	xmlNodePtr list = find(xmlDocGetRootElement(doc), set), group = list ? list->children : NULL;
	while (group && !named(group, "item") && !named(group, "member"))
		group = group->next;
	xmlNodePtr configs = group ? find(group->children, "launchTemplateConfigs") : NULL;
	if (configs) { /* Spot Fleet (below spotFleetRequestConfig), EC2 Fleet */
		for (xmlNodePtr it = configs->children; it; it = it->next) {
			if (!named(it, "item"))
				continue;
			add_spec(child(it, "launchTemplateSpecification"), lts);
			add_weights(child(it, "overrides"), weights, problems);
		}
	} else if (group) { /* Auto Scaling: LaunchTemplate, or the mixed policy's */
		add_spec(child(group, "LaunchTemplate"), lts);
		xmlNodePtr mixed = child(child(group, "MixedInstancesPolicy"), "LaunchTemplate");
		add_spec(child(mixed, "LaunchTemplateSpecification"), lts);
		add_weights(child(mixed, "Overrides"), weights, problems);
	}
	xmlFreeDoc(doc);
	return out;
}
