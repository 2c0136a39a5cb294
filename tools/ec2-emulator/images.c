/*
 * images.c - DescribeImages (ImageId.N), for a client that needs an
 * image's root device name: a BlockDeviceMapping resizes the root volume
 * only under that name (another name adds a second volume).
 *
 * Every well-formed ami- id exists here, as RunInstances accepts any; its
 * root device is /dev/xvda (Amazon Linux's) unless POST /_emu/image
 * {"id", "root_device_name"} gave another (Ubuntu's /dev/sda1, say).
 * Malformed ids → InvalidAMIID.Malformed. Not modelled: owners, filters,
 * paging, block device mappings beyond the root.
 */
#include <string.h>
#include "emu.h"

int emu_image_put(emu *e, const char *id, const char *root_device, char *err, size_t size)
{
	if (!id || strncmp(id, "ami-", 4) != 0 || !root_device || strncmp(root_device, "/dev/", 5) != 0) {
		snprintf(err, size, "image: id (ami-...) and root_device_name (/dev/...) are required");
		return -1;
	}
	json_object_set_new(e->images, id, json_string(root_device));
	return 0;
}

void emu_describe_images(emu *e, json_t *p, const char *rid, emu_reply *r)
{
	json_t *ids = json_array();
	for (int k = 1;; k++) {
		const char *id = paramf(p, "ImageId.%d", k);
		if (!id)
			break;
		if (strncmp(id, "ami-", 4) != 0) {
			char msg[300];
			snprintf(msg, sizeof msg, "Invalid id: \"%.200s\" (expecting \"ami-...\")", id);
			json_decref(ids);
			return emu_error(r, 400, "InvalidAMIID.Malformed", msg, rid);
		}
		json_array_append_new(ids, json_string(id));
	}
	if (is_true(p, "DryRun")) {
		json_decref(ids);
		return emu_dry_run_ok(r, rid);
	}
	emu_head(&r->body, "DescribeImages", rid);
	eb_add(&r->body, "<imagesSet>");
	size_t i;
	json_t *v;
	json_array_foreach(ids, i, v) {
		const char *root = json_string_value(json_object_get(e->images, json_string_value(v)));
		eb_add(&r->body, "<item>");
		eb_elem(&r->body, "imageId", json_string_value(v));
		eb_elem(&r->body, "imageState", "available");
		eb_elem(&r->body, "rootDeviceType", "ebs");
		eb_elem(&r->body, "rootDeviceName", root ? root : "/dev/xvda");
		eb_add(&r->body, "</item>");
	}
	eb_add(&r->body, "</imagesSet></DescribeImagesResponse>");
	json_decref(ids);
	r->status = 200;
}
