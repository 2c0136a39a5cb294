/*
 * images.c - an image's root device name (DescribeImages).
 *
 * rootDeviceVolumeSize, volumeType, iops and throughput resize the root
 * volume only when the BlockDeviceMapping names the image's root device
 * (/dev/xvda on Amazon Linux, /dev/sda1 on Ubuntu...): another name adds a
 * second volume and leaves the root as it was. So the name is asked of
 * EC2, once per image (an image never changes).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include "provisio/error.h"
#include "providers/aws/aws_strategy.h"

/* The first rootDeviceName of a DescribeImages answer ("" when none). */
static void root_of(const char *body, size_t len, char *out, size_t size)
{
	out[0] = '\0';
	xmlDocPtr doc = xmlReadMemory(body, (int)len, NULL, NULL, XML_PARSE_NONET | XML_PARSE_NOERROR |
							       XML_PARSE_NOWARNING);
	xmlNodePtr n = doc ? xmlDocGetRootElement(doc) : NULL;
	while (n && !out[0]) {
		if (n->type == XML_ELEMENT_NODE && strcmp((const char *)n->name, "rootDeviceName") == 0) {
			xmlChar *t = xmlNodeGetContent(n);
			snprintf(out, size, "%s", t ? (const char *)t : "");
			xmlFree(t);
		}
		/* depth first */
		if (n->children)
			n = n->children;
		else {
			while (n && !n->next)
				n = n->parent;
			if (n)
				n = n->next;
		}
	}
	xmlFreeDoc(doc);
}

int aws_image_root_device(aws *a, const pv_operation *op, const char *image_id, char *out, size_t size,
			  pv_result *res)
{
	char key[160];
	snprintf(key, sizeof key, "root:%s", image_id);
	pthread_mutex_lock(&a->lock);
	const char *known = json_string_value(json_object_get(a->image_cache, key));
	if (known)
		snprintf(out, size, "%s", known);
	pthread_mutex_unlock(&a->lock);
	if (known)
		return 0;
	aws_form f;
	aws_form_init(&f, "DescribeImages");
	aws_form_add(&f, "ImageId.1", image_id);
	aws_call c;
	bool ok = !f.oom && aws_do(a, ACT_DESCRIBE_IMAGES, f.buf, op->deadline_ns, &c);
	aws_form_free(&f);
	if (!ok) {
		aws_call_fail(a, ACT_DESCRIBE_IMAGES, &c, res);
		aws_call_free(&c);
		return -1;
	}
	root_of(c.reply.body, c.reply.len, out, size);
	aws_call_free(&c);
	if (!out[0]) {
		pv_result_fail(res, PV_ERR_NOT_FOUND, PV_CLASS_PERMANENT,
			       "aws '%s': image '%s' has no root device name (DescribeImages): "
			       "rootDeviceVolumeSize cannot be applied", a->base.name, image_id);
		return -1;
	}
	pthread_mutex_lock(&a->lock);
	json_object_set_new(a->image_cache, key, json_string(out));
	pthread_mutex_unlock(&a->lock);
	return 0;
}
