/*
 * xml.c - reading EC2 Query API answers with libxml2.
 *
 * EC2 answers in XML under the namespace
 * http://ec2.amazonaws.com/doc/2016-11-15/, lists as <xSet><item>, and
 * errors as <Response><Errors><Error><Code>. We match elements by local
 * name and ignore the namespace, as the AWS SDKs do, and turn each answer
 * into the JSON shape provisio results use. Unknown elements are skipped,
 * so newer EC2 answers still parse.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include "providers/aws/aws_internal.h"

static xmlDocPtr parse(const char *body, size_t len)
{
	if (!body || len == 0 || len > (size_t)0x7fffffff)
		return NULL;
	return xmlReadMemory(body, (int)len, "ec2.xml", NULL,
			     XML_PARSE_NONET | XML_PARSE_NOBLANKS | XML_PARSE_NOERROR |
				     XML_PARSE_NOWARNING);
}

static bool named(xmlNodePtr n, const char *name)
{
	return n && n->type == XML_ELEMENT_NODE && strcmp((const char *)n->name, name) == 0;
}

static xmlNodePtr child(xmlNodePtr n, const char *name)
{
	if (!n)
		return NULL;
	for (xmlNodePtr c = n->children; c; c = c->next)
		if (named(c, name))
			return c;
	return NULL;
}

/* Follows a path of child names ("instanceState/name"). */
static xmlNodePtr path(xmlNodePtr n, const char *p)
{
	char buf[128];
	snprintf(buf, sizeof buf, "%s", p);
	char *save = NULL;
	for (char *tok = strtok_r(buf, "/", &save); tok && n; tok = strtok_r(NULL, "/", &save))
		n = child(n, tok);
	return n;
}

/* Text of a path as a new JSON string, NULL when absent or empty. */
static json_t *text_json(xmlNodePtr n, const char *p)
{
	xmlNodePtr t = path(n, p);
	if (!t)
		return NULL;
	xmlChar *s = xmlNodeGetContent(t);
	json_t *j = s && *s ? json_string((const char *)s) : NULL;
	xmlFree(s);
	return j;
}

static void copy_text(xmlNodePtr n, const char *p, char *out, size_t size)
{
	xmlNodePtr t = path(n, p);
	xmlChar *s = t ? xmlNodeGetContent(t) : NULL;
	snprintf(out, size, "%s", s ? (const char *)s : "");
	xmlFree(s);
}

static void set_text(json_t *obj, const char *key, xmlNodePtr n, const char *p)
{
	json_t *v = text_json(n, p);
	if (v)
		json_object_set_new(obj, key, v);
}

int aws_xml_error(const char *body, size_t len, char *code, size_t code_size, char **message,
		  char *request_id, size_t request_id_size)
{
	if (message)
		*message = NULL;
	xmlDocPtr doc = parse(body, len);
	if (!doc)
		return -1;
	xmlNodePtr root = xmlDocGetRootElement(doc);
	/* EC2's envelope; some front ends answer <ErrorResponse><Error>. */
	xmlNodePtr err = path(root, "Errors/Error");
	if (!err)
		err = child(root, "Error");
	if (!err) {
		xmlFreeDoc(doc);
		return -1;
	}
	copy_text(err, "Code", code, code_size);
	if (message) {
		json_t *m = text_json(err, "Message");
		*message = m ? strdup(json_string_value(m)) : NULL;
		json_decref(m);
	}
	if (request_id) {
		copy_text(root, "RequestID", request_id, request_id_size);
		if (!*request_id)
			copy_text(root, "RequestId", request_id, request_id_size);
	}
	xmlFreeDoc(doc);
	return 0;
}

void aws_xml_request_id(const char *body, size_t len, char *out, size_t size)
{
	out[0] = '\0';
	xmlDocPtr doc = parse(body, len);
	if (!doc)
		return;
	copy_text(xmlDocGetRootElement(doc), "requestId", out, size);
	xmlFreeDoc(doc);
}

static json_t *instance_json(xmlNodePtr item, json_t *reservation_id)
{
	json_t *o = json_object();
	set_text(o, "instance_id", item, "instanceId");
	set_text(o, "state", item, "instanceState/name");
	/* why it stopped or went: Server.SpotInstanceTermination (a spot
	 * interruption), Client.UserInitiatedShutdown, ... */
	set_text(o, "state_reason", item, "stateReason/code");
	set_text(o, "state_reason_message", item, "stateReason/message");
	set_text(o, "private_ip", item, "privateIpAddress");
	set_text(o, "public_ip", item, "ipAddress");
	set_text(o, "private_dns", item, "privateDnsName");
	set_text(o, "launch_time", item, "launchTime");
	set_text(o, "instance_type", item, "instanceType");
	set_text(o, "az", item, "placement/availabilityZone");
	set_text(o, "subnet_id", item, "subnetId");
	set_text(o, "image_id", item, "imageId");
	set_text(o, "client_token", item, "clientToken");
	set_text(o, "spot_request_id", item, "spotInstanceRequestId"); /* notices.c asks it */
	json_t *lc = text_json(item, "instanceLifecycle");
	/* EC2 only says "spot" (or "scheduled"); no element means on-demand. */
	json_object_set_new(o, "lifecycle", lc ? lc : json_string("on-demand"));
	if (reservation_id)
		json_object_set(o, "reservation_id", reservation_id);
	json_t *tags = json_object();
	for (xmlNodePtr t = child(child(item, "tagSet"), "item"); t; t = t->next) {
		if (!named(t, "item"))
			continue;
		json_t *k = text_json(t, "key"), *v = text_json(t, "value");
		if (k)
			json_object_set_new(tags, json_string_value(k), v ? v : json_string(""));
		else
			json_decref(v);
		json_decref(k);
	}
	json_object_set_new(o, "tags", tags);
	return o;
}

static void add_instances(json_t *list, xmlNodePtr set, json_t *reservation_id)
{
	for (xmlNodePtr it = set ? set->children : NULL; it; it = it->next)
		if (named(it, "item"))
			json_array_append_new(list, instance_json(it, reservation_id));
}

json_t *aws_xml_instances(const char *body, size_t len, char **next_token)
{
	if (next_token)
		*next_token = NULL;
	xmlDocPtr doc = parse(body, len);
	if (!doc)
		return NULL;
	xmlNodePtr root = xmlDocGetRootElement(doc);
	json_t *list = json_array();
	/* RunInstances: the reservation is the root; DescribeInstances: a
	 * reservationSet of them. */
	if (child(root, "instancesSet")) {
		json_t *rid = text_json(root, "reservationId");
		add_instances(list, child(root, "instancesSet"), rid);
		json_decref(rid);
	}
	for (xmlNodePtr r = child(child(root, "reservationSet"), "item"); r; r = r->next) {
		if (!named(r, "item"))
			continue;
		json_t *rid = text_json(r, "reservationId");
		add_instances(list, child(r, "instancesSet"), rid);
		json_decref(rid);
	}
	if (next_token) {
		json_t *nt = text_json(root, "nextToken");
		*next_token = nt ? strdup(json_string_value(nt)) : NULL;
		json_decref(nt);
	}
	xmlFreeDoc(doc);
	return list;
}

json_t *aws_xml_terminated(const char *body, size_t len)
{
	xmlDocPtr doc = parse(body, len);
	if (!doc)
		return NULL;
	json_t *list = json_array();
	for (xmlNodePtr it = child(child(xmlDocGetRootElement(doc), "instancesSet"), "item"); it;
	     it = it->next) {
		if (!named(it, "item"))
			continue;
		json_t *o = json_object();
		set_text(o, "instance_id", it, "instanceId");
		set_text(o, "previous_state", it, "previousState/name");
		set_text(o, "state", it, "currentState/name");
		json_array_append_new(list, o);
	}
	xmlFreeDoc(doc);
	return list;
}

json_t *aws_xml_regions(const char *body, size_t len)
{
	xmlDocPtr doc = parse(body, len);
	if (!doc)
		return NULL;
	json_t *list = json_array();
	for (xmlNodePtr it = child(child(xmlDocGetRootElement(doc), "regionInfo"), "item"); it;
	     it = it->next) {
		json_t *n = named(it, "item") ? text_json(it, "regionName") : NULL;
		if (n)
			json_array_append_new(list, n);
	}
	xmlFreeDoc(doc);
	return list;
}

static json_t *fleet_instances(xmlNodePtr set)
{
	json_t *list = json_array();
	for (xmlNodePtr it = child(set, "item"); it; it = it->next) {
		if (!named(it, "item"))
			continue;
		json_t *type = text_json(it, "instanceType");
		if (!type)
			type = text_json(it, "launchTemplateAndOverrides/overrides/instanceType");
		json_t *lc = text_json(it, "lifecycle");
		json_t *az = text_json(it, "launchTemplateAndOverrides/overrides/availabilityZone");
		json_t *subnet = text_json(it, "launchTemplateAndOverrides/overrides/subnetId");
		for (xmlNodePtr id = child(child(it, "instanceIds"), "item"); id; id = id->next) {
			if (!named(id, "item"))
				continue;
			xmlChar *s = xmlNodeGetContent(id);
			json_t *o = json_pack("{s:s, s:s}", "instance_id", s ? (const char *)s : "",
					      "state", "pending");
			xmlFree(s);
			if (type)
				json_object_set(o, "instance_type", type);
			json_object_set_new(o, "lifecycle", lc ? json_incref(lc) : json_string("on-demand"));
			if (az)
				json_object_set(o, "az", az);
			if (subnet)
				json_object_set(o, "subnet_id", subnet);
			json_array_append_new(list, o);
		}
		json_decref(type);
		json_decref(lc);
		json_decref(az);
		json_decref(subnet);
	}
	return list;
}

static json_t *fleet_errors(xmlNodePtr set)
{
	json_t *list = json_array();
	for (xmlNodePtr it = child(set, "item"); it; it = it->next) {
		if (!named(it, "item"))
			continue;
		json_t *o = json_object();
		set_text(o, "code", it, "errorCode");
		set_text(o, "message", it, "errorMessage");
		set_text(o, "lifecycle", it, "lifecycle");
		set_text(o, "instance_type", it, "launchTemplateAndOverrides/overrides/instanceType");
		set_text(o, "subnet_id", it, "launchTemplateAndOverrides/overrides/subnetId");
		set_text(o, "az", it, "launchTemplateAndOverrides/overrides/availabilityZone");
		json_array_append_new(list, o);
	}
	return list;
}

json_t *aws_xml_fleet(const char *body, size_t len)
{
	xmlDocPtr doc = parse(body, len);
	if (!doc)
		return NULL;
	xmlNodePtr root = xmlDocGetRootElement(doc);
	json_t *o = json_object();
	set_text(o, "fleet_id", root, "fleetId");
	json_object_set_new(o, "instances", fleet_instances(child(root, "fleetInstanceSet")));
	json_object_set_new(o, "errors", fleet_errors(child(root, "errorSet")));
	xmlFreeDoc(doc);
	return o;
}

void aws_xml_launch_template_id(const char *body, size_t len, char *out, size_t size)
{
	out[0] = '\0';
	xmlDocPtr doc = parse(body, len);
	if (!doc)
		return;
	xmlNodePtr root = xmlDocGetRootElement(doc);
	/* CreateLaunchTemplate: <launchTemplate>; DescribeLaunchTemplates:
	 * <launchTemplates><item>. */
	xmlNodePtr t = child(root, "launchTemplate");
	if (!t)
		t = path(root, "launchTemplates/item");
	copy_text(t, "launchTemplateId", out, size);
	xmlFreeDoc(doc);
}
