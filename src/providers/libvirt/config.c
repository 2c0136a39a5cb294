/*
 * config.c - the libvirt provider's JSON configuration.
 *
 * Everything is checked here, once, when the strategy is built, so the
 * operations never meet a bad value: every error names the field and the
 * valid values. The domain XML template is rendered with sample values and
 * parsed, so a template that cannot work fails at configuration time rather
 * than on the first request.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "provisio/error.h"
#include "providers/libvirt/lv.h"
#include "util/names.h"

static const char *const overlay_names[LV_OVERLAY_COUNT] = {"auto", "required", "off"};
static const char *const placement_names[LV_PLACE_COUNT] = {"spread", "pack"};
static const char *const ip_source_names[LV_IP_COUNT] = {"lease", "agent", "arp"};

#define ENUM_PAIR(type, fn, names, count, what)                                   \
	const char *fn##_name(type v)                                             \
	{                                                                         \
		return (unsigned)v < (unsigned)(count) ? names[v] : "unknown";    \
	}                                                                         \
	int fn##_parse(const char *s, type *out)                                  \
	{                                                                         \
		int v = pv_names_find(names, (size_t)(count), s, what);           \
		if (v < 0)                                                        \
			return v;                                                 \
		*out = (type)v;                                                   \
		return 0;                                                         \
	}

ENUM_PAIR(lv_overlay_mode, lv_overlay_mode, overlay_names, LV_OVERLAY_COUNT, "overlay mode")
ENUM_PAIR(lv_placement, lv_placement, placement_names, LV_PLACE_COUNT, "placement")
ENUM_PAIR(lv_ip_source, lv_ip_source, ip_source_names, LV_IP_COUNT, "ip source")

static const char default_xml[] =
	"<domain type='{{domain_type}}'>\n"
	"  <name>{{name}}</name>\n"
	"  <memory unit='MiB'>{{memory_mb}}</memory>\n"
	"  <vcpu>{{vcpus}}</vcpu>\n"
	"  <os><type>hvm</type><boot dev='hd'/></os>\n"
	"  <features><acpi/></features>\n"
	"  <on_crash>destroy</on_crash>\n"
	"  <devices>\n"
	"    {{disk_xml}}\n"
	"    <interface type='network'><source network='{{network}}'/><model type='virtio'/></interface>\n"
	"    <channel type='unix'><target type='virtio' name='org.qemu.guest_agent.0'/></channel>\n"
	"    <console type='pty'/>\n"
	"  </devices>\n"
	"</domain>\n";

const char *lv_default_domain_xml(void) { return default_xml; }

/* ---- field helpers ------------------------------------------------------ */

static int field_error(const char *name, const char *field, const char *why)
{
	return pv_error_set(PV_EINVAL, "libvirt '%s': field '%s': %s", name, field, why);
}

/* Copies an optional string field; `def` when absent. 0 or PV_EINVAL. */
static int get_string(const json_t *obj, const char *key, const char *def, char **out,
		      const char *name, const char *field)
{
	json_t *v = json_object_get(obj, key);
	if (v && (!json_is_string(v) || json_string_length(v) == 0))
		return field_error(name, field, "must be a non-empty string");
	const char *s = v ? json_string_value(v) : def;
	free(*out);
	*out = s ? strdup(s) : NULL;
	if (s && !*out)
		return pv_error_set(PV_ENOMEM, "out of memory");
	return 0;
}

static int get_int(const json_t *obj, const char *key, int64_t lo, int64_t hi, int64_t *out,
		   const char *name, const char *field)
{
	json_t *v = json_object_get(obj, key);
	if (!v)
		return 0;
	if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi) {
		char why[96];
		snprintf(why, sizeof why, "must be an integer from %lld to %lld", (long long)lo,
			 (long long)hi);
		return field_error(name, field, why);
	}
	*out = json_integer_value(v);
	return 0;
}

static int get_enum(const json_t *obj, const char *key, int (*parse)(const char *, void *),
		    void *out, const char *name, const char *field)
{
	json_t *v = json_object_get(obj, key);
	if (!v)
		return 0;
	if (!json_is_string(v) || parse(json_string_value(v), out) < 0)
		return field_error(name, field, json_is_string(v) ? pv_error_last() : "must be a string");
	return 0;
}

static int parse_overlay(const char *s, void *out) { return lv_overlay_mode_parse(s, out); }
static int parse_placement(const char *s, void *out) { return lv_placement_parse(s, out); }

/* ---- hosts -------------------------------------------------------------- */

static int add_host(lv_config *c, const char *uri, const char *label, int64_t capacity)
{
	lv_host_config *h = &c->hosts[c->n_hosts];
	h->uri = strdup(uri);
	h->name = strdup(label ? label : uri);
	h->capacity = capacity;
	c->n_hosts++;
	return h->uri && h->name ? 0 : pv_error_set(PV_ENOMEM, "out of memory");
}

static int parse_host_entry(lv_config *c, const json_t *e, size_t i, int64_t capacity,
			    const char *name)
{
	char field[64];
	if (json_is_string(e) && json_string_length(e) > 0)
		return add_host(c, json_string_value(e), NULL, capacity);
	snprintf(field, sizeof field, "hosts[%zu]", i);
	if (!json_is_object(e))
		return field_error(name, field, "must be a URI string or an object {uri, name, capacity}");
	json_t *uri = json_object_get(e, "uri"), *label = json_object_get(e, "name");
	snprintf(field, sizeof field, "hosts[%zu].uri", i);
	if (!json_is_string(uri) || json_string_length(uri) == 0)
		return field_error(name, field, "is required and must be a libvirt URI string");
	snprintf(field, sizeof field, "hosts[%zu].name", i);
	if (label && (!json_is_string(label) || json_string_length(label) == 0))
		return field_error(name, field, "must be a non-empty string");
	snprintf(field, sizeof field, "hosts[%zu].capacity", i);
	int rc = get_int(e, "capacity", -1, 1000000, &capacity, name, field);
	if (rc < 0)
		return rc;
	return add_host(c, json_string_value(uri), json_string_value(label), capacity);
}

static int parse_hosts(lv_config *c, const json_t *cfg, const char *name)
{
	int64_t capacity = -1;
	int rc = get_int(cfg, "capacity", -1, 1000000, &capacity, name, "capacity");
	if (rc < 0)
		return rc;
	json_t *uri = json_object_get(cfg, "uri"), *hosts = json_object_get(cfg, "hosts");
	if (uri && hosts)
		return field_error(name, "hosts", "give either 'uri' (one host) or 'hosts' (a pool), not both");
	if (uri && (!json_is_string(uri) || json_string_length(uri) == 0))
		return field_error(name, "uri", "must be a libvirt URI string, e.g. qemu:///system");
	if (hosts && (!json_is_array(hosts) || json_array_size(hosts) == 0 ||
		      json_array_size(hosts) > 1024))
		return field_error(name, "hosts", "must be an array of 1 to 1024 hosts");
	size_t n = hosts ? json_array_size(hosts) : 1;
	c->hosts = calloc(n, sizeof *c->hosts);
	if (!c->hosts)
		return pv_error_set(PV_ENOMEM, "out of memory");
	if (!hosts)
		return add_host(c, uri ? json_string_value(uri) : "qemu:///system", NULL, capacity);
	for (size_t i = 0; i < n; i++)
		if ((rc = parse_host_entry(c, json_array_get(hosts, i), i, capacity, name)) < 0)
			return rc;
	for (size_t i = 0; i < n; i++)
		for (size_t j = 0; j < i; j++)
			if (strcmp(c->hosts[i].name, c->hosts[j].name) == 0)
				return field_error(name, "hosts", "host names (or URIs) must be unique");
	return 0;
}

/* ---- storage, ip sources, templates ------------------------------------- */

static int parse_storage(lv_config *c, const json_t *cfg, const char *name)
{
	json_t *st = json_object_get(cfg, "storage");
	json_t *empty = NULL;
	if (st && !json_is_object(st))
		return field_error(name, "storage", "must be an object {pool, base_image, base_format, size_gb, overlay}");
	if (!st)
		st = empty = json_object();
	int rc = get_string(st, "pool", "default", &c->pool, name, "storage.pool");
	if (!rc)
		rc = get_string(st, "base_image", NULL, &c->base_image, name, "storage.base_image");
	if (!rc)
		rc = get_string(st, "base_format", "qcow2", &c->base_format, name, "storage.base_format");
	if (!rc)
		rc = get_int(st, "size_gb", 0, 65536, &c->size_gb, name, "storage.size_gb");
	if (!rc)
		rc = get_enum(st, "overlay", parse_overlay, &c->overlay, name, "storage.overlay");
	json_decref(empty);
	return rc;
}

static int parse_ip_sources(lv_config *c, const json_t *cfg, const char *name)
{
	json_t *v = json_object_get(cfg, "ip_sources");
	if (!v) {
		c->ip_sources[0] = LV_IP_LEASE;
		c->ip_sources[1] = LV_IP_AGENT;
		c->n_ip_sources = 2;
		return 0;
	}
	if (!json_is_array(v) || json_array_size(v) > LV_IP_COUNT)
		return field_error(name, "ip_sources", "must be an array of up to 3 of lease, agent, arp");
	size_t i;
	json_t *e;
	json_array_foreach(v, i, e) {
		if (!json_is_string(e) || lv_ip_source_parse(json_string_value(e), &c->ip_sources[i]) < 0)
			return field_error(name, "ip_sources",
					   json_is_string(e) ? pv_error_last() : "entries must be strings");
	}
	c->n_ip_sources = json_array_size(v);
	return 0;
}

static int parse_templates(lv_config *c, const json_t *cfg, const char *name)
{
	json_t *t = json_object_get(cfg, "templates");
	if (!t) {
		char cpus[24], ram[24];
		snprintf(cpus, sizeof cpus, "%lld", (long long)c->vcpus);
		snprintf(ram, sizeof ram, "%lld", (long long)c->memory_mb);
		c->templates = json_pack("[{s:s, s:i, s:{s:[s,s], s:[s,s], s:[s,s]}}]", "templateId",
					 "libvirt-default", "maxNumber", -1, "attributes", "type", "String",
					 "X86_64", "ncpus", "Numeric", cpus, "nram", "Numeric", ram);
		return c->templates ? 0 : pv_error_set(PV_ENOMEM, "out of memory");
	}
	size_t i;
	json_t *e;
	if (!json_is_array(t))
		return field_error(name, "templates", "must be an array of Host Factory template objects");
	json_array_foreach(t, i, e) {
		if (!json_is_object(e) || !json_is_string(json_object_get(e, "templateId")))
			return field_error(name, "templates", "each template must be an object with a string 'templateId'");
	}
	c->templates = json_deep_copy(t);
	return c->templates ? 0 : pv_error_set(PV_ENOMEM, "out of memory");
}

static int read_file(const char *path, char **out, const char *name)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return pv_error_set(PV_EINVAL, "libvirt '%s': field 'domain_xml_file': cannot open '%s': %s",
				    name, path, strerror(errno));
	char *buf = NULL;
	size_t len = 0, cap = 0, n;
	char chunk[4096];
	while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) {
		if (len + n + 1 > cap) {
			cap = (len + n + 1) * 2;
			char *grown = realloc(buf, cap);
			if (!grown) {
				free(buf);
				fclose(f);
				return pv_error_set(PV_ENOMEM, "out of memory");
			}
			buf = grown;
		}
		memcpy(buf + len, chunk, n);
		len += n;
	}
	fclose(f);
	if (!buf)
		return pv_error_set(PV_EINVAL, "libvirt '%s': field 'domain_xml_file': '%s' is empty", name, path);
	buf[len] = '\0';
	*out = buf;
	return 0;
}

static int parse_domain_xml(lv_config *c, const json_t *cfg, const char *name)
{
	json_t *xml = json_object_get(cfg, "domain_xml"), *file = json_object_get(cfg, "domain_xml_file");
	if (xml && file)
		return field_error(name, "domain_xml", "give either 'domain_xml' or 'domain_xml_file', not both");
	if (file) {
		if (!json_is_string(file) || json_string_length(file) == 0)
			return field_error(name, "domain_xml_file", "must be a file path");
		return read_file(json_string_value(file), &c->domain_xml, name);
	}
	return get_string(cfg, "domain_xml", default_xml, &c->domain_xml, name, "domain_xml");
}

/* Renders the template once with sample values so a broken one fails now. */
static int check_template(const lv_config *c, const char *name)
{
	lv_spec spec = {.name = "provisio-config-check", .request_id = "req-check",
			.template_id = "check", .memory_mb = c->memory_mb, .vcpus = c->vcpus,
			.network = c->network, .domain_type = "kvm", .disk = "/dev/null",
			.disk_format = "qcow2"};
	char *xml = lv_render_domain(c->domain_xml, &spec);
	if (!xml)
		return pv_error_set(PV_EINVAL, "libvirt '%s': field 'domain_xml': %s", name, pv_error_last());
	free(xml);
	return 0;
}

/* The default prefix: "pv-" and the strategy name, in domain-name characters. */
static char *default_prefix(const char *name)
{
	size_t n = strlen(name);
	char *p = malloc(n + 5);
	if (!p)
		return NULL;
	memcpy(p, "pv-", 3);
	for (size_t i = 0; i < n; i++) {
		char ch = name[i];
		bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
			  (ch >= '0' && ch <= '9') || ch == '-' || ch == '_' || ch == '.';
		p[3 + i] = ok ? ch : '-';
	}
	p[3 + n] = '-';
	p[4 + n] = '\0';
	return p;
}

int lv_config_parse(lv_config *c, const char *name, const json_t *cfg)
{
	json_t *empty = NULL;
	if (cfg && !json_is_object(cfg))
		return pv_error_set(PV_EINVAL, "libvirt '%s': config must be a JSON object", name);
	if (!cfg)
		cfg = empty = json_object();
	c->memory_mb = 1024;
	c->vcpus = 1;
	c->max_per_request = 100;
	c->reconnect_interval_ms = 5000;
	int rc = parse_hosts(c, cfg, name);
	if (!rc)
		rc = get_enum(cfg, "placement", parse_placement, &c->placement, name, "placement");
	if (!rc)
		rc = get_string(cfg, "name_prefix", NULL, &c->name_prefix, name, "name_prefix");
	if (!rc && !c->name_prefix && !(c->name_prefix = default_prefix(name)))
		rc = pv_error_set(PV_ENOMEM, "out of memory");
	if (!rc && strlen(c->name_prefix) > 64)
		rc = field_error(name, "name_prefix", "must be at most 64 characters");
	if (!rc)
		rc = get_string(cfg, "domain_type", "auto", &c->domain_type, name, "domain_type");
	if (!rc)
		rc = get_int(cfg, "memory_mb", 16, 16 * 1024 * 1024, &c->memory_mb, name, "memory_mb");
	if (!rc)
		rc = get_int(cfg, "vcpus", 1, 4096, &c->vcpus, name, "vcpus");
	if (!rc)
		rc = get_string(cfg, "network", "default", &c->network, name, "network");
	if (!rc)
		rc = get_int(cfg, "max_instances_per_request", 1, 10000, &c->max_per_request, name,
			     "max_instances_per_request");
	if (!rc)
		rc = get_int(cfg, "reconnect_interval_ms", 0, 3600 * 1000, &c->reconnect_interval_ms, name,
			     "reconnect_interval_ms");
	if (!rc)
		rc = parse_storage(c, cfg, name);
	if (!rc)
		rc = parse_ip_sources(c, cfg, name);
	if (!rc)
		rc = parse_domain_xml(c, cfg, name);
	if (!rc)
		rc = parse_templates(c, cfg, name);
	if (!rc)
		rc = check_template(c, name);
	json_decref(empty);
	return rc;
}

void lv_config_free(lv_config *c)
{
	for (size_t i = 0; i < c->n_hosts; i++) {
		free(c->hosts[i].uri);
		free(c->hosts[i].name);
	}
	free(c->hosts);
	free(c->name_prefix);
	free(c->domain_type);
	free(c->domain_xml);
	free(c->network);
	free(c->pool);
	free(c->base_image);
	free(c->base_format);
	json_decref(c->templates);
	memset(c, 0, sizeof *c);
}
