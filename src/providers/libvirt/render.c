/*
 * render.c - domain XML from a template, and provisio's metadata in it.
 *
 * Sites describe their machines with a libvirt domain XML template holding
 * {{placeholders}}; the provider fills them per machine. The result is
 * parsed with libxml2 before libvirt sees it, for two reasons: a broken
 * template is the caller's mistake (a permanent INVALID_PARAMETERS, found
 * without touching a host), and the parsed tree is where provisio adds its
 * own <metadata> element - request, template, overlay volume, launch time -
 * so any later process can find what it needs in the domain itself, with no
 * state file to lose.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/xmlerror.h>
#include "provisio/error.h"
#include "providers/libvirt/lv.h"

/* ---- a growing string ---------------------------------------------------- */

typedef struct sbuf {
	char *s;
	size_t len, cap;
	bool oom;
} sbuf;

static void sb_add(sbuf *b, const char *s, size_t n)
{
	if (b->oom)
		return;
	if (b->len + n + 1 > b->cap) {
		size_t cap = (b->len + n + 1) * 2;
		char *grown = realloc(b->s, cap);
		if (!grown) {
			b->oom = true;
			return;
		}
		b->s = grown;
		b->cap = cap;
	}
	memcpy(b->s + b->len, s, n);
	b->len += n;
	b->s[b->len] = '\0';
}

static void sb_escaped(sbuf *b, const char *s)
{
	for (; *s; s++) {
		switch (*s) {
		case '&': sb_add(b, "&amp;", 5); break;
		case '<': sb_add(b, "&lt;", 4); break;
		case '>': sb_add(b, "&gt;", 4); break;
		case '\'': sb_add(b, "&apos;", 6); break;
		case '"': sb_add(b, "&quot;", 6); break;
		default: sb_add(b, s, 1); break;
		}
	}
}

char *lv_xml_escape(const char *s, char *buf, size_t len)
{
	sbuf b = {0};
	sb_escaped(&b, s ? s : "");
	snprintf(buf, len, "%s", b.s ? b.s : "");
	free(b.s);
	return buf;
}

/* ---- placeholders ------------------------------------------------------- */

#define PLACEHOLDERS                                                                      \
	"name, memory_mb, memory_kib, vcpus, disk, disk_format, disk_xml, network, "      \
	"domain_type, request_id, template_id, index"

/* The <disk> element for the default template, or "" without a disk. */
static void disk_xml(sbuf *b, const lv_spec *sp)
{
	if (!sp->disk)
		return;
	const char *a = "<disk type='file' device='disk'><driver name='qemu' type='";
	sb_add(b, a, strlen(a));
	sb_escaped(b, sp->disk_format ? sp->disk_format : "raw");
	sb_add(b, "'/><source file='", 17);
	sb_escaped(b, sp->disk);
	a = "'/><target dev='vda' bus='virtio'/></disk>";
	sb_add(b, a, strlen(a));
}

/* Appends the value of `key`; false when no such placeholder exists. */
static bool placeholder(sbuf *b, const char *key, size_t klen, const lv_spec *sp)
{
	char num[32];
	const char *v = NULL;
#define IS(k) (klen == sizeof(k) - 1 && memcmp(key, k, klen) == 0)
	if (IS("name"))
		v = sp->name;
	else if (IS("network"))
		v = sp->network;
	else if (IS("domain_type"))
		v = sp->domain_type;
	else if (IS("disk"))
		v = sp->disk;
	else if (IS("disk_format"))
		v = sp->disk ? sp->disk_format : NULL;
	else if (IS("request_id"))
		v = sp->request_id;
	else if (IS("template_id"))
		v = sp->template_id;
	else if (IS("memory_mb"))
		snprintf(num, sizeof num, "%" PRId64, sp->memory_mb), v = num;
	else if (IS("memory_kib"))
		snprintf(num, sizeof num, "%" PRId64, sp->memory_mb * 1024), v = num;
	else if (IS("vcpus"))
		snprintf(num, sizeof num, "%" PRId64, sp->vcpus), v = num;
	else if (IS("index"))
		snprintf(num, sizeof num, "%" PRId64, sp->index), v = num;
	else if (IS("disk_xml")) {
		disk_xml(b, sp);
		return true;
	} else
		return false;
#undef IS
	sb_escaped(b, v ? v : "");
	return true;
}

static char *render(const char *tmpl, const lv_spec *sp)
{
	sbuf b = {0};
	const char *p = tmpl;
	while (*p) {
		const char *open = strstr(p, "{{");
		if (!open) {
			sb_add(&b, p, strlen(p));
			break;
		}
		sb_add(&b, p, (size_t)(open - p));
		const char *close = strstr(open + 2, "}}");
		if (!close) {
			free(b.s);
			pv_error_set(PV_EINVAL, "unterminated placeholder '{{' at offset %zu", (size_t)(open - tmpl));
			return NULL;
		}
		const char *k = open + 2, *e = close;
		while (k < e && *k == ' ')
			k++;
		while (e > k && e[-1] == ' ')
			e--;
		if (!placeholder(&b, k, (size_t)(e - k), sp)) {
			pv_error_set(PV_EINVAL, "unknown placeholder '{{%.*s}}': valid placeholders are " PLACEHOLDERS,
				     (int)(e - k), k);
			free(b.s);
			return NULL;
		}
		p = close + 2;
	}
	if (b.oom || !b.s) {
		free(b.s);
		pv_error_set(b.oom ? PV_ENOMEM : PV_EINVAL, b.oom ? "out of memory" : "empty domain XML template");
		return NULL;
	}
	return b.s;
}

/* ---- checking and metadata ---------------------------------------------- */

static xmlNodePtr child(xmlNodePtr parent, const char *name)
{
	for (xmlNodePtr n = parent->children; n; n = n->next)
		if (n->type == XML_ELEMENT_NODE && xmlStrcmp(n->name, BAD_CAST name) == 0)
			return n;
	return NULL;
}

static int check_domain(xmlNodePtr root, const lv_spec *sp)
{
	if (xmlStrcmp(root->name, BAD_CAST "domain") != 0)
		return pv_error_set(PV_EINVAL, "root element is <%s>, expected <domain>", (const char *)root->name);
	xmlNodePtr name = child(root, "name");
	xmlChar *text = name ? xmlNodeGetContent(name) : NULL;
	bool same = text && strcmp((const char *)text, sp->name) == 0;
	xmlFree(text);
	if (!same)
		return pv_error_set(PV_EINVAL, "the domain's <name> must be {{name}} (provisio names domains "
					       "from the request so retries find them)");
	if (!child(root, "memory"))
		return pv_error_set(PV_EINVAL, "the domain has no <memory> element (use {{memory_mb}} or {{memory_kib}})");
	return 0;
}

static int add_metadata(xmlNodePtr root, const lv_spec *sp)
{
	xmlNodePtr md = child(root, "metadata");
	if (!md && !(md = xmlNewChild(root, NULL, BAD_CAST "metadata", NULL)))
		return pv_error_set(PV_ENOMEM, "out of memory");
	xmlNodePtr inst = xmlNewChild(md, NULL, BAD_CAST "instance", NULL);
	xmlNsPtr ns = inst ? xmlNewNs(inst, BAD_CAST LV_METADATA_URI, BAD_CAST "provisio") : NULL;
	if (!ns)
		return pv_error_set(PV_ENOMEM, "out of memory");
	xmlSetNs(inst, ns);
	char ms[32];
	snprintf(ms, sizeof ms, "%" PRId64, sp->launch_time_ms);
	xmlNewProp(inst, BAD_CAST "request", BAD_CAST(sp->request_id ? sp->request_id : ""));
	xmlNewProp(inst, BAD_CAST "template", BAD_CAST(sp->template_id ? sp->template_id : ""));
	xmlNewProp(inst, BAD_CAST "launch_time_ms", BAD_CAST ms);
	if (sp->overlay_volume) {
		xmlNewProp(inst, BAD_CAST "pool", BAD_CAST sp->overlay_pool);
		xmlNewProp(inst, BAD_CAST "volume", BAD_CAST sp->overlay_volume);
	}
	return 0;
}

static const int parse_flags = XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING;

static xmlDocPtr parse(const char *xml, const char *what)
{
	xmlResetLastError();
	xmlDocPtr doc = xmlReadMemory(xml, (int)strlen(xml), what, NULL, parse_flags);
	if (!doc) {
		const xmlError *e = xmlGetLastError();
		pv_error_set(PV_EINVAL, "%s is not well-formed XML: line %d: %s", what, e ? e->line : 0,
			     e && e->message ? e->message : "parse error");
		xmlResetLastError();
	}
	return doc;
}

char *lv_render_domain(const char *tmpl, const lv_spec *sp)
{
	char *text = render(tmpl, sp);
	if (!text)
		return NULL;
	xmlDocPtr doc = parse(text, "the rendered domain XML");
	free(text);
	if (!doc)
		return NULL;
	char *out = NULL;
	xmlNodePtr root = xmlDocGetRootElement(doc);
	if (!root)
		pv_error_set(PV_EINVAL, "the rendered domain XML has no root element");
	else if (check_domain(root, sp) == 0 && add_metadata(root, sp) == 0) {
		xmlChar *mem = NULL;
		int len = 0;
		xmlDocDumpMemory(doc, &mem, &len);
		out = mem ? strdup((const char *)mem) : NULL;
		if (!out)
			pv_error_set(PV_ENOMEM, "out of memory");
		xmlFree(mem);
	}
	xmlFreeDoc(doc);
	return out;
}

/* An attribute into buf; -1 when it does not fit (never cut: a cut
 * request id names another request). */
static int copy_prop(xmlNodePtr n, const char *name, char *buf, size_t len)
{
	xmlChar *v = xmlGetProp(n, BAD_CAST name);
	const char *s = v ? (const char *)v : "";
	int rc = strlen(s) < len ? 0 : -1;
	snprintf(buf, len, "%s", rc == 0 ? s : "");
	xmlFree(v);
	return rc;
}

int lv_meta_parse(const char *xml, lv_meta *out)
{
	memset(out, 0, sizeof *out);
	xmlDocPtr doc = parse(xml, "provisio domain metadata");
	if (!doc)
		return PV_EINVAL;
	xmlNodePtr root = xmlDocGetRootElement(doc);
	const char *too_long = NULL;
	if (root) {
		char ms[32];
		struct {
			const char *name;
			char *buf;
			size_t len;
		} props[] = {{"request", out->request_id, sizeof out->request_id},
			     {"template", out->template_id, sizeof out->template_id},
			     {"pool", out->pool, sizeof out->pool},
			     {"volume", out->volume, sizeof out->volume},
			     {"launch_time_ms", ms, sizeof ms}};
		for (size_t i = 0; i < sizeof props / sizeof props[0]; i++)
			if (copy_prop(root, props[i].name, props[i].buf, props[i].len) < 0 && !too_long)
				too_long = props[i].name;
		out->launch_time_ms = strtoll(ms, NULL, 10);
	}
	xmlFreeDoc(doc);
	if (!root)
		return pv_error_set(PV_EINVAL, "provisio domain metadata has no element");
	if (too_long)
		return pv_error_set(PV_EINVAL, "provisio domain metadata: attribute '%s' is too long", too_long);
	return 0;
}
