/*
 * fuzz_libvirt_xml.c - libFuzzer target for libvirt domain XML as the
 * libvirt provider handles it (src/providers/libvirt/render.c, libxml2):
 * the input is a domain template with {{placeholders}} rendered for one
 * machine, and the metadata element provisio reads back from a domain
 * (which anything with access to the hypervisor may have changed). A
 * rendered domain is well-formed XML naming the machine; metadata read
 * back fits its fields.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <libxml/parser.h>
#include "provisio/log.h"
#include "providers/libvirt/lv.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void quiet_xml(void *ctx, const char *msg, ...)
{
	(void)ctx;
	(void)msg;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int once;
	if (!once++) {
		pv_log_set_level(PV_LOG_OFF);
		xmlSetGenericErrorFunc(NULL, quiet_xml);
	}
	char *text = malloc(size + 1);
	memcpy(text, data, size);
	text[size] = '\0';
	lv_spec spec = {.name = "pv-fz-req-1-0", .request_id = "req-1", .template_id = "t<&>\"'",
			.index = 0, .memory_mb = 512, .vcpus = 1, .network = "default", .domain_type = "kvm",
			.disk = "/var/lib/libvirt/images/a.qcow2", .disk_format = "qcow2",
			.overlay_pool = "default", .overlay_volume = "pv-fz.qcow2", .launch_time_ms = 1};
	char *xml = lv_render_domain(text, &spec);
	if (xml) {
		xmlDocPtr doc = xmlReadMemory(xml, (int)strlen(xml), "domain.xml", NULL, XML_PARSE_NONET);
		if (!doc || !strstr(xml, spec.name))
			abort();
		xmlFreeDoc(doc);
		free(xml);
	}
	lv_meta m;
	if (lv_meta_parse(text, &m) == 0 &&
	    (strnlen(m.request_id, sizeof m.request_id) == sizeof m.request_id ||
	     strnlen(m.volume, sizeof m.volume) == sizeof m.volume))
		abort();
	free(text);
	return 0;
}
