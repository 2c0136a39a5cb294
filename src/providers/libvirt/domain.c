/*
 * domain.c - one machine's life on a libvirt host.
 *
 * Create: a copy-on-write overlay of the base image (so machines share one
 * read-only image and each writes only its own changes), the domain XML,
 * define, start. Every step undoes the earlier ones when a later one fails,
 * so a failed create leaves nothing behind and a retry starts clean.
 *
 * Remove: destroy, undefine, and delete the overlay named in the domain's
 * provisio metadata - the domain itself remembers what to clean up, so any
 * process can terminate what another created.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <libvirt/virterror.h>
#include "provisio/clock.h"
#include "provisio/error.h"
#include "provisio/log.h"
#include "providers/libvirt/lv.h"

#define LV_DEFAULT_OVERLAY_BYTES (10ull << 30)

/* ---- names -------------------------------------------------------------- */

static bool name_char(char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
	       ch == '-' || ch == '_' || ch == '.';
}

void lv_domain_stem(const lv_provider *p, const char *request_id, char *buf, size_t len)
{
	size_t n = strlen(request_id);
	bool clean = n <= 48;
	for (size_t k = 0; clean && k < n; k++)
		clean = name_char(request_id[k]);
	if (clean) {
		snprintf(buf, len, "%s%s-", p->cfg.name_prefix, request_id);
		return;
	}
	/* Long ids, or ids with characters a domain name should not carry,
	 * keep a readable head and a hash of the whole: "req/1" and "req-1"
	 * must not share machines. */
	char head[32];
	size_t k = 0;
	for (; k < n && k < sizeof head - 1; k++)
		head[k] = name_char(request_id[k]) ? request_id[k] : '-';
	head[k] = '\0';
	snprintf(buf, len, "%s%s-%016" PRIx64 "-", p->cfg.name_prefix, head,
		 pv_fnv1a64(PV_FNV64_OFFSET, request_id, n));
}

void lv_domain_name(const lv_provider *p, const char *request_id, int64_t i, char *buf, size_t len)
{
	char stem[160];
	lv_domain_stem(p, request_id, stem, sizeof stem);
	snprintf(buf, len, "%s%" PRId64, stem, i);
}

/* ---- overlays ----------------------------------------------------------- */

/* Where a machine's disk ended up. */
typedef struct disk_plan {
	char disk[1024];
	char format[32];
	char volume[256]; /* overlay volume name; "" when none */
	bool have_disk;
	bool have_overlay;
} disk_plan;

static void delete_overlay(virConnectPtr conn, const char *pool_name, const char *volume)
{
	virStoragePoolPtr pool = virStoragePoolLookupByName(conn, pool_name);
	virStorageVolPtr vol = pool ? virStorageVolLookupByName(pool, volume) : NULL;
	if (vol && virStorageVolDelete(vol, 0) < 0) {
		virErrorPtr e = virGetLastError();
		pv_log(PV_LOG_WARN, "libvirt: cannot delete overlay %s/%s: %s", pool_name, volume,
		       e && e->message ? e->message : "unknown error");
	}
	if (vol)
		virStorageVolFree(vol);
	if (pool)
		virStoragePoolFree(pool);
	virResetLastError();
}

/* The base image's path and size: an absolute path as given, else a
 * volume of the pool. */
static int resolve_base(virConnectPtr conn, virStoragePoolPtr pool, const char *base,
			char *path, size_t len, uint64_t *bytes, lv_err *err)
{
	virStorageVolPtr vol = NULL;
	if (base[0] == '/') {
		snprintf(path, len, "%s", base);
		vol = virStorageVolLookupByPath(conn, base); /* only for its size */
		virResetLastError();
	} else if (!pool) {
		lv_err_set(err, PV_ERR_INVALID_PARAMETERS, PV_CLASS_PERMANENT,
			   "base image '%s' is a volume name but its storage pool is unavailable", base);
		return -1;
	} else {
		vol = virStorageVolLookupByName(pool, base);
		char *p = vol ? virStorageVolGetPath(vol) : NULL;
		if (!p) {
			lv_err_capture(err, "base image '%s'", base);
			if (vol)
				virStorageVolFree(vol);
			return -1;
		}
		snprintf(path, len, "%s", p);
		free(p);
	}
	virStorageVolInfo info;
	*bytes = vol && virStorageVolGetInfo(vol, &info) == 0 ? info.capacity : 0;
	if (vol)
		virStorageVolFree(vol);
	virResetLastError();
	return 0;
}

static virStorageVolPtr create_volume(lv_provider *p, virStoragePoolPtr pool, const char *name,
				      const char *base_path, uint64_t base_bytes)
{
	virStorageVolPtr vol = virStorageVolLookupByName(pool, name);
	if (vol) /* left by an earlier attempt of the same request: ours */
		return vol;
	virResetLastError();
	uint64_t bytes = p->cfg.size_gb > 0 ? (uint64_t)p->cfg.size_gb << 30
					    : (base_bytes ? base_bytes : LV_DEFAULT_OVERLAY_BYTES);
	char ename[512], epath[2048], efmt[64], xml[4096];
	snprintf(xml, sizeof xml,
		 "<volume><name>%s</name><capacity unit='bytes'>%" PRIu64 "</capacity>"
		 "<target><format type='qcow2'/></target>"
		 "<backingStore><path>%s</path><format type='%s'/></backingStore></volume>",
		 lv_xml_escape(name, ename, sizeof ename), bytes,
		 lv_xml_escape(base_path, epath, sizeof epath),
		 lv_xml_escape(p->cfg.base_format, efmt, sizeof efmt));
	return virStorageVolCreateXML(pool, xml, 0);
}

static void skip_overlay(lv_provider *p, lv_host *h, disk_plan *d, const char *base,
			 const lv_err *why, char *note, size_t note_len)
{
	snprintf(d->disk, sizeof d->disk, "%s", base);
	snprintf(d->format, sizeof d->format, "%s", p->cfg.base_format);
	d->have_disk = true;
	snprintf(note, note_len,
		 "overlay skipped on host '%s' (%s); the disk is the base image itself - "
		 "set storage.overlay to 'required' to refuse this",
		 h->cfg->name, why->message);
	atomic_fetch_add(&p->overlays_skipped, 1);
}

static int plan_disk(lv_provider *p, lv_host *h, virConnectPtr conn, const char *base,
		     const char *domname, disk_plan *d, char *note, size_t note_len, lv_err *err)
{
	memset(d, 0, sizeof *d);
	if (!base)
		return 0;
	lv_overlay_mode mode = p->cfg.overlay;
	virStoragePoolPtr pool = virStoragePoolLookupByName(conn, p->cfg.pool);
	lv_err pool_err = {0};
	if (!pool)
		lv_err_capture(&pool_err, "storage pool '%s'", p->cfg.pool);
	char base_path[1024];
	uint64_t base_bytes = 0;
	int rc = -1;
	if (resolve_base(conn, pool, base, base_path, sizeof base_path, &base_bytes, err) < 0)
		goto out;
	if (mode == LV_OVERLAY_OFF || (!pool && mode == LV_OVERLAY_AUTO)) {
		if (!pool)
			skip_overlay(p, h, d, base_path, &pool_err, note, note_len);
		else {
			snprintf(d->disk, sizeof d->disk, "%s", base_path);
			snprintf(d->format, sizeof d->format, "%s", p->cfg.base_format);
			d->have_disk = true;
		}
		rc = 0;
		goto out;
	}
	if (!pool) {
		*err = pool_err;
		goto out;
	}
	if ((size_t)snprintf(d->volume, sizeof d->volume, "%s.qcow2", domname) >= sizeof d->volume) {
		lv_err_set(err, PV_ERR_INVALID_PARAMETERS, PV_CLASS_PERMANENT,
			   "overlay volume name for domain '%s' is longer than %zu bytes", domname,
			   sizeof d->volume - 1);
		goto out;
	}
	virStorageVolPtr vol = create_volume(p, pool, d->volume, base_path, base_bytes);
	char *path = vol ? virStorageVolGetPath(vol) : NULL;
	if (!path) {
		lv_err_capture(err, "cannot create overlay '%s' in pool '%s'", d->volume, p->cfg.pool);
		if (vol) {
			virStorageVolDelete(vol, 0);
			virStorageVolFree(vol);
		}
		if (mode == LV_OVERLAY_AUTO && strcmp(err->code, PV_ERR_OPERATION_NOT_SUPPORTED) == 0) {
			d->volume[0] = '\0';
			skip_overlay(p, h, d, base_path, err, note, note_len);
			memset(err, 0, sizeof *err);
			rc = 0;
		}
		goto out;
	}
	snprintf(d->disk, sizeof d->disk, "%s", path);
	snprintf(d->format, sizeof d->format, "qcow2");
	d->have_disk = d->have_overlay = true;
	free(path);
	virStorageVolFree(vol);
	atomic_fetch_add(&p->overlays_created, 1);
	rc = 0;
out:
	if (pool)
		virStoragePoolFree(pool);
	return rc;
}

/* ---- create ------------------------------------------------------------- */

static int undefine(virDomainPtr dom)
{
	/* Newest flags first; older drivers (and the test driver) refuse some. */
	static const unsigned int tries[] = {
		VIR_DOMAIN_UNDEFINE_MANAGED_SAVE | VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA |
			VIR_DOMAIN_UNDEFINE_NVRAM | VIR_DOMAIN_UNDEFINE_CHECKPOINTS_METADATA,
		VIR_DOMAIN_UNDEFINE_MANAGED_SAVE | VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA,
		0};
	for (size_t i = 0; i < sizeof tries / sizeof tries[0]; i++) {
		if (virDomainUndefineFlags(dom, tries[i]) == 0)
			return 0;
		virErrorPtr e = virGetLastError();
		if (!e || (e->code != VIR_ERR_INVALID_ARG && e->code != VIR_ERR_NO_SUPPORT &&
			   e->code != VIR_ERR_ARGUMENT_UNSUPPORTED))
			break; /* a real failure, left in libvirt's last error */
	}
	return -1;
}

virDomainPtr lv_domain_create(lv_provider *p, lv_host *h, virConnectPtr conn,
			      const lv_request *rq, int64_t i, char *note, size_t note_len,
			      lv_err *err)
{
	char name[256], dtype[32];
	lv_domain_name(p, rq->request_id, i, name, sizeof name);
	lv_host_domain_type(h, dtype, sizeof dtype);
	disk_plan d;
	note[0] = '\0';
	if (plan_disk(p, h, conn, rq->base_image, name, &d, note, note_len, err) < 0) {
		err->host_scoped = true;
		return NULL;
	}
	lv_spec spec = {.name = name, .request_id = rq->request_id, .template_id = rq->template_id,
			.index = i, .memory_mb = rq->memory_mb, .vcpus = rq->vcpus,
			.network = rq->network, .domain_type = dtype,
			.disk = d.have_disk ? d.disk : NULL, .disk_format = d.format,
			.overlay_pool = d.have_overlay ? p->cfg.pool : NULL,
			.overlay_volume = d.have_overlay ? d.volume : NULL,
			.launch_time_ms = pv_wall_ms()};
	char *xml = lv_render_domain(rq->domain_xml ? rq->domain_xml : p->cfg.domain_xml, &spec);
	virDomainPtr dom = NULL;
	if (!xml) {
		lv_err_set(err, PV_ERR_INVALID_PARAMETERS, PV_CLASS_PERMANENT, "domain XML for '%s': %s",
			   name, pv_error_last());
	} else if (!(dom = virDomainDefineXML(conn, xml))) {
		lv_err_capture(err, "cannot define domain '%s' on host '%s'", name, h->cfg->name);
	} else if (virDomainCreate(dom) < 0) {
		lv_err_capture(err, "cannot start domain '%s' on host '%s'", name, h->cfg->name);
		err->host_scoped = true;
		undefine(dom);
		virDomainFree(dom);
		dom = NULL;
		virResetLastError();
	}
	free(xml);
	if (!dom && d.have_overlay)
		delete_overlay(conn, p->cfg.pool, d.volume);
	return dom;
}

int lv_domain_ensure_running(virDomainPtr dom, lv_err *err)
{
	int active = virDomainIsActive(dom);
	if (active == 1)
		return 0;
	if (active < 0 || virDomainCreate(dom) < 0) {
		lv_err_capture(err, "cannot start domain '%s'", virDomainGetName(dom));
		return -1;
	}
	return 0;
}

/* ---- view --------------------------------------------------------------- */

static void read_meta(virDomainPtr dom, lv_meta *m)
{
	char *xml = virDomainGetMetadata(dom, VIR_DOMAIN_METADATA_ELEMENT, LV_METADATA_URI, 0);
	if (!xml || lv_meta_parse(xml, m) < 0)
		memset(m, 0, sizeof *m);
	free(xml);
	virResetLastError();
}

/* The first IPv4 address (else any) from the configured sources, in order. */
static json_t *find_ip(lv_provider *p, virDomainPtr dom)
{
	static const unsigned int src[LV_IP_COUNT] = {VIR_DOMAIN_INTERFACE_ADDRESSES_SRC_LEASE,
						      VIR_DOMAIN_INTERFACE_ADDRESSES_SRC_AGENT,
						      VIR_DOMAIN_INTERFACE_ADDRESSES_SRC_ARP};
	json_t *ip = NULL;
	bool ip_v4 = false;
	for (size_t s = 0; s < p->cfg.n_ip_sources && !ip; s++) {
		virDomainInterfacePtr *ifs = NULL;
		int n = virDomainInterfaceAddresses(dom, &ifs, src[p->cfg.ip_sources[s]], 0);
		for (int i = 0; i < n; i++) {
			for (unsigned a = 0; a < ifs[i]->naddrs; a++) {
				virDomainIPAddressPtr ad = &ifs[i]->addrs[a];
				bool v4 = ad->type == VIR_IP_ADDR_TYPE_IPV4;
				if (ad->addr && (!ip || (v4 && !ip_v4))) {
					json_decref(ip);
					ip = json_string(ad->addr);
					ip_v4 = v4;
				}
			}
			virDomainInterfaceFree(ifs[i]);
		}
		free(ifs);
		virResetLastError(); /* no agent, no leases: not an error here */
	}
	return ip ? ip : json_null();
}

json_t *lv_domain_view(lv_provider *p, lv_host *h, virDomainPtr dom, lv_err *err)
{
	int state = 0, reason = 0;
	const char *name = virDomainGetName(dom);
	if (virDomainGetState(dom, &state, &reason, 0) < 0) {
		lv_err_capture(err, "cannot read the state of domain '%s'", name ? name : "?");
		return NULL;
	}
	lv_meta m;
	read_meta(dom, &m);
	bool active = state == VIR_DOMAIN_RUNNING || state == VIR_DOMAIN_BLOCKED ||
		      state == VIR_DOMAIN_PAUSED;
	json_t *ip = active ? find_ip(p, dom) : json_null();
	return json_pack("{s:s, s:s, s:s, s:s, s:o, s:s, s:I, s:s, s:s?, s:s?, s:s?}", "instance_id", name,
			 "provider", p->base.name, "state", pv_libvirt_machine_state(state, reason),
			 "libvirt_state", lv_domain_state_name(state), "private_ip", ip, "host_name",
			 name, "launch_time_ms", (json_int_t)m.launch_time_ms, "host", h->cfg->name,
			 "request_id", m.request_id[0] ? m.request_id : NULL, "template_id",
			 m.template_id[0] ? m.template_id : NULL, "overlay",
			 m.volume[0] ? m.volume : NULL);
}

/* ---- remove and find ---------------------------------------------------- */

int lv_domain_remove(lv_provider *p, virConnectPtr conn, virDomainPtr dom, lv_err *err)
{
	const char *name = virDomainGetName(dom);
	lv_meta m;
	read_meta(dom, &m); /* before undefine: the metadata goes with it */
	if (virDomainIsActive(dom) == 1 && virDomainDestroy(dom) < 0) {
		virErrorPtr e = virGetLastError();
		if (!e || e->code != VIR_ERR_OPERATION_INVALID) { /* not "already stopped" */
			lv_err_capture(err, "cannot destroy domain '%s'", name);
			return -1;
		}
		virResetLastError();
	}
	if (virDomainIsPersistent(dom) == 1 && undefine(dom) < 0) {
		lv_err_capture(err, "cannot undefine domain '%s'", name);
		return -1;
	}
	virResetLastError();
	if (m.volume[0]) {
		delete_overlay(conn, m.pool[0] ? m.pool : p->cfg.pool, m.volume);
		atomic_fetch_add(&p->overlays_removed, 1);
	}
	return 0;
}

virDomainPtr lv_domain_find(lv_conns *cs, const char *name, size_t *host_out, bool *unreachable)
{
	for (size_t i = 0; i < cs->n; i++) {
		virConnectPtr c = lv_conns_get(cs, i);
		if (!c) {
			*unreachable = true;
			continue;
		}
		virDomainPtr dom = virDomainLookupByName(c, name);
		if (dom) {
			*host_out = i;
			return dom;
		}
		lv_err e = {0};
		lv_err_capture(&e, "cannot look up domain '%s'", name);
		if (e.vir_code != VIR_ERR_NO_DOMAIN) {
			lv_conns_fail(cs, i, &e);
			*unreachable = true;
		}
	}
	return NULL;
}
