/*
 * libvirt.c - the libvirt provider as a strategy (see include/provisio/libvirt.h).
 *
 * Operations map onto a pool of libvirt hosts:
 *   create_instances     find-or-create domains named from the request, placed
 *                        on hosts with room (capacity), partial when room runs out
 *   get_instance_status  domain state -> machine state, IP from leases/agent
 *   describe_resource_instances  every provisio domain (optionally of a request)
 *   terminate_instances  destroy, undefine, remove the overlay
 *   validate_template    render and parse the domain XML, no host needed
 *   get_available_templates, health_check
 *
 * Only domains whose names carry the provider's prefix are ever looked at,
 * counted or removed: a provisio strategy must never touch a site's other
 * machines on the same hypervisor.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "provisio/error.h"
#include "provisio/log.h"
#include "providers/libvirt/lv.h"

static lv_provider *as_lv(pv_strategy *s) { return (lv_provider *)s; }

static bool deadline_passed(const lv_provider *p, const pv_operation *op)
{
	return op->deadline_ns && pv_clock_now(p->clock) >= op->deadline_ns;
}

static bool is_ours(const lv_provider *p, const char *name)
{
	return strncmp(name, p->cfg.name_prefix, strlen(p->cfg.name_prefix)) == 0;
}

/* ---- parameters --------------------------------------------------------- */

static bool bad_param(pv_result *out, const char *fmt, const char *field)
{
	pv_result_fail(out, PV_ERR_INVALID_PARAMETERS, PV_CLASS_PERMANENT, fmt, field);
	return false;
}

/* A Host Factory attribute ["Numeric", "2"] (or a plain number / string). */
static bool attr_int(const json_t *attrs, const char *key, int64_t lo, int64_t hi, int64_t *out,
		     pv_result *res)
{
	json_t *a = json_object_get(attrs, key);
	if (!a)
		return true;
	json_t *v = json_is_array(a) ? json_array_get(a, 1) : a;
	char *end = NULL;
	long long n = json_is_integer(v) ? json_integer_value(v)
		      : json_is_string(v) ? strtoll(json_string_value(v), &end, 10) : lo - 1;
	if ((end && (*end || end == json_string_value(v))) || n < lo || n > hi) {
		pv_result_fail(res, PV_ERR_INVALID_PARAMETERS, PV_CLASS_PERMANENT,
			       "template attribute '%s' must be [\"Numeric\", \"N\"] with N from %lld to %lld",
			       key, (long long)lo, (long long)hi);
		return false;
	}
	*out = n;
	return true;
}

static bool template_string(const json_t *t, const char *key, const char **out, pv_result *res)
{
	json_t *v = json_object_get(t, key);
	if (!v)
		return true;
	if (!json_is_string(v) || json_string_length(v) == 0)
		return bad_param(res, "template field '%s' must be a non-empty string", key);
	*out = json_string_value(v);
	return true;
}

static const json_t *configured_template(const lv_provider *p, const char *id)
{
	size_t i;
	json_t *t;
	json_array_foreach(p->cfg.templates, i, t) {
		const char *tid = json_string_value(json_object_get(t, "templateId"));
		if (tid && strcmp(tid, id) == 0)
			return t;
	}
	return NULL;
}

/* Merges the request's template (given, or configured by id) over the
 * provider's defaults. Strings in rq are borrowed from params or config. */
static bool resolve_request(const lv_provider *p, const json_t *params, lv_request *rq, pv_result *out)
{
	memset(rq, 0, sizeof *rq);
	rq->memory_mb = p->cfg.memory_mb;
	rq->vcpus = p->cfg.vcpus;
	rq->network = p->cfg.network;
	rq->base_image = p->cfg.base_image;
	json_t *req = json_object_get(params, "request_id");
	json_t *tid = json_object_get(params, "template_id");
	const json_t *t = json_object_get(params, "template");
	if (req && (!json_is_string(req) || json_string_length(req) == 0))
		return bad_param(out, "parameter '%s' must be a non-empty string", "request_id");
	if (tid && (!json_is_string(tid) || json_string_length(tid) == 0))
		return bad_param(out, "parameter '%s' must be a non-empty string", "template_id");
	if (t && !json_is_object(t))
		return bad_param(out, "parameter '%s' must be a Host Factory template object", "template");
	rq->request_id = json_string_value(req);
	rq->template_id = tid ? json_string_value(tid) : json_string_value(json_object_get(t, "templateId"));
	if (!t && rq->template_id && !(t = configured_template(p, rq->template_id))) {
		pv_result_fail(out, PV_ERR_INVALID_PARAMETERS, PV_CLASS_PERMANENT,
			       "template '%s' is not offered by libvirt '%s'", rq->template_id, p->base.name);
		return false;
	}
	if (!t)
		return true;
	const json_t *attrs = json_object_get(t, "attributes");
	return attr_int(attrs, "ncpus", 1, 4096, &rq->vcpus, out) &&
	       attr_int(attrs, "nram", 16, 16 * 1024 * 1024, &rq->memory_mb, out) &&
	       template_string(t, "imageId", &rq->base_image, out) &&
	       template_string(t, "network", &rq->network, out) &&
	       template_string(t, "domainXml", &rq->domain_xml, out);
}

/* ---- create -------------------------------------------------------------- */

typedef struct create_run {
	lv_provider *p;
	const pv_operation *op;
	const lv_request *rq;
	lv_conns cs;
	json_t *errors, *notes;
	json_t **slots; /* the view of index i once it exists, in request order */
	int64_t count, remaining, created, reused, full_hosts;
	lv_err first_permanent, last_host;
	bool stop, timed_out;
} create_run;

static void add_instance(create_run *r, lv_host *h, virDomainPtr dom, int64_t i)
{
	lv_err e = {0};
	json_t *v = lv_domain_view(r->p, h, dom, &e);
	if (!v) /* made but not readable: report what we know */
		v = json_pack("{s:s, s:s, s:s, s:s}", "instance_id", virDomainGetName(dom), "provider",
			      r->p->base.name, "state", "pending", "host", h->cfg->name);
	r->slots[i] = v;
	r->remaining--;
}

static void add_error(create_run *r, const lv_err *e, const char *host)
{
	json_t *j = lv_err_to_json(e);
	if (host)
		json_object_set_new(j, "host", json_string(host));
	json_array_append_new(r->errors, j);
	if (e->cls == PV_CLASS_PERMANENT && !r->first_permanent.set)
		r->first_permanent = *e;
}

/* The index encoded after the stem, or -1 when the rest is not a number. */
static int64_t index_after_stem(const char *name, const char *stem, size_t stem_len)
{
	if (strncmp(name, stem, stem_len) != 0 || !name[stem_len])
		return -1;
	int64_t i = 0;
	for (const char *c = name + stem_len; *c; c++) {
		if (*c < '0' || *c > '9' || i > 100000000)
			return -1;
		i = i * 10 + (*c - '0');
	}
	return i;
}

/* A retried request finds what its first attempt made: one listing a host,
 * whatever the count. */
static void reuse_existing(create_run *r)
{
	char stem[160];
	lv_domain_stem(r->p, r->rq->request_id, stem, sizeof stem);
	size_t stem_len = strlen(stem);
	for (size_t hi = 0; hi < r->cs.n; hi++) {
		virConnectPtr c = lv_conns_get(&r->cs, hi);
		virDomainPtr *doms = NULL;
		int n = c ? virConnectListAllDomains(c, &doms, 0) : -1;
		if (c && n < 0) {
			lv_err e = {0};
			lv_err_capture(&e, "cannot list domains on '%s'", r->p->hosts[hi].cfg->name);
			lv_conns_fail(&r->cs, hi, &e);
		}
		for (int k = 0; k < n; k++) {
			int64_t i = index_after_stem(virDomainGetName(doms[k]), stem, stem_len);
			if (i >= 0 && i < r->count && !r->slots[i]) {
				lv_err e = {0};
				if (lv_domain_ensure_running(doms[k], &e) < 0)
					add_error(r, &e, r->p->hosts[hi].cfg->name);
				add_instance(r, &r->p->hosts[hi], doms[k], i);
				r->reused++;
			}
			virDomainFree(doms[k]);
		}
		free(doms);
	}
}

/* Creates up to `granted` of the missing machines on host hi. */
static void create_on_host(create_run *r, size_t hi, virConnectPtr c, int64_t granted)
{
	lv_host *h = &r->p->hosts[hi];
	for (int64_t i = 0; i < r->count && granted > 0 && !r->stop; i++) {
		if (r->slots[i])
			continue;
		if (deadline_passed(r->p, r->op)) {
			r->timed_out = r->stop = true;
			break;
		}
		char note[768];
		lv_err e = {0};
		virDomainPtr dom = lv_domain_create(r->p, h, c, r->rq, i, note, sizeof note, &e);
		lv_host_release(h, 1);
		granted--;
		if (note[0])
			json_array_append_new(r->notes, json_string(note));
		if (!dom) {
			add_error(r, &e, h->cfg->name);
			atomic_fetch_add(&r->p->failed, 1);
			/* Bad input (the XML) fails everywhere: stop. A host's
			 * pool, network or start is its own problem: next host. */
			if (e.cls == PV_CLASS_PERMANENT && !e.host_scoped &&
			    strcmp(e.code, PV_ERR_INVALID_PARAMETERS) == 0)
				r->stop = true;
			lv_conns_fail(&r->cs, hi, &e);
			r->last_host = e;
			break;
		}
		add_instance(r, h, dom, i);
		r->created++;
		atomic_fetch_add(&r->p->created, 1);
		virDomainFree(dom);
	}
	lv_host_release(h, granted);
}

static void place_missing(create_run *r)
{
	lv_provider *p = r->p;
	size_t n = p->cfg.n_hosts;
	size_t start = p->cfg.placement == LV_PLACE_SPREAD
			       ? (size_t)(atomic_fetch_add(&p->next_start, 1) % n) : 0;
	for (size_t k = 0; k < n && r->remaining > 0 && !r->stop; k++) {
		size_t hi = (start + k) % n;
		virConnectPtr c = lv_conns_get(&r->cs, hi);
		if (!c) {
			add_error(r, &r->cs.err[hi], p->hosts[hi].cfg->name);
			r->last_host = r->cs.err[hi];
			continue;
		}
		lv_err e = {0};
		int64_t granted = lv_host_reserve(&p->hosts[hi], c, p->cfg.name_prefix, r->remaining, &e);
		if (granted < 0) {
			add_error(r, &e, p->hosts[hi].cfg->name);
			lv_conns_fail(&r->cs, hi, &e);
			r->last_host = e;
		} else if (granted == 0) {
			r->full_hosts++;
		} else {
			create_on_host(r, hi, c, granted);
		}
	}
}

static void create_finish(create_run *r, pv_result *out)
{
	int64_t made = r->created + r->reused;
	if (made == 0) {
		if (r->first_permanent.set)
			lv_err_to_result(&r->first_permanent, out);
		else if (r->timed_out)
			pv_result_fail(out, PV_ERR_TIMEOUT, PV_CLASS_TRANSIENT,
				       "libvirt '%s': the deadline passed before any domain was created",
				       r->p->base.name);
		else if (r->last_host.set)
			lv_err_to_result(&r->last_host, out);
		else
			pv_result_fail(out, PV_ERR_CAPACITY, PV_CLASS_CAPACITY,
				       "libvirt '%s': no capacity on any of its %zu hosts for %" PRId64
				       " more domains",
				       r->p->base.name, r->p->cfg.n_hosts, r->count);
		pv_result_meta_set(out, "requested", json_integer(r->count));
		if (json_array_size(r->errors))
			pv_result_meta_set(out, "errors", json_incref(r->errors));
		return;
	}
	json_t *instances = json_array(), *ids = json_array();
	for (int64_t i = 0; i < r->count; i++) {
		if (r->slots[i]) {
			json_array_append(ids, json_object_get(r->slots[i], "instance_id"));
			json_array_append(instances, r->slots[i]);
		}
	}
	json_t *data = json_pack("{s:o, s:o, s:I, s:I, s:b, s:I, s:I, s:s}", "instances", instances,
				 "instance_ids", ids, "count", (json_int_t)made, "requested",
				 (json_int_t)r->count, "partial", made < r->count, "created",
				 (json_int_t)r->created, "reused", (json_int_t)r->reused,
				 "request_id", r->rq->request_id);
	if (json_array_size(r->errors))
		json_object_set(data, "errors", r->errors);
	if (json_array_size(r->notes))
		json_object_set(data, "notes", r->notes);
	if (r->rq->auto_request_id)
		json_object_set_new(data, "idempotent", json_false());
	pv_result_ok(out, data);
}

static void create_dry_run(lv_provider *p, const lv_request *rq, int64_t count, pv_result *out)
{
	char name[256];
	lv_domain_name(p, rq->request_id, 0, name, sizeof name);
	lv_spec spec = {.name = name, .request_id = rq->request_id, .template_id = rq->template_id,
			.memory_mb = rq->memory_mb, .vcpus = rq->vcpus, .network = rq->network,
			.domain_type = "kvm", .disk = rq->base_image, .disk_format = "qcow2"};
	char *xml = lv_render_domain(rq->domain_xml ? rq->domain_xml : p->cfg.domain_xml, &spec);
	if (!xml) {
		pv_result_fail(out, PV_ERR_INVALID_PARAMETERS, PV_CLASS_PERMANENT, "domain XML: %s",
			       pv_error_last());
		return;
	}
	free(xml);
	pv_result_ok(out, json_pack("{s:b, s:I, s:I, s:s}", "dry_run", 1, "would_create", (json_int_t)count,
				    "requested", (json_int_t)count, "first_name", name));
}

static void op_create(lv_provider *p, const pv_operation *op, pv_result *out)
{
	json_t *params = op->params;
	json_t *jc = json_object_get(params, "count");
	if (jc && (!json_is_integer(jc) || json_integer_value(jc) < 1 ||
		   json_integer_value(jc) > p->cfg.max_per_request)) {
		pv_result_fail(out, PV_ERR_INVALID_PARAMETERS, PV_CLASS_PERMANENT,
			       "parameter 'count' must be an integer from 1 to %" PRId64, p->cfg.max_per_request);
		return;
	}
	int64_t count = jc ? json_integer_value(jc) : 1;
	lv_request rq;
	if (!resolve_request(p, params, &rq, out))
		return;
	char auto_id[64];
	if (!rq.request_id) {
		snprintf(auto_id, sizeof auto_id, "auto-%" PRIx64 "-%" PRIu64, (uint64_t)pv_wall_ms(),
			 (uint64_t)atomic_fetch_add(&p->auto_ids, 1));
		rq.request_id = auto_id;
		rq.auto_request_id = true;
	}
	if (pv_operation_dry_run(op)) {
		create_dry_run(p, &rq, count, out);
		return;
	}
	create_run r = {.p = p, .op = op, .rq = &rq, .count = count, .remaining = count,
			.errors = json_array(), .notes = json_array(),
			.slots = calloc((size_t)count, sizeof(json_t *))};
	if (!r.slots || lv_conns_init(&r.cs, p->hosts, p->cfg.n_hosts, &p->policy) < 0)
		pv_result_fail(out, PV_ERR_INTERNAL, PV_CLASS_INTERNAL, "out of memory");
	else {
		reuse_existing(&r);
		if (r.remaining > 0 && !r.stop)
			place_missing(&r);
		atomic_fetch_add(&p->reused, (uint64_t)r.reused);
		create_finish(&r, out);
	}
	lv_conns_fini(&r.cs);
	for (int64_t i = 0; r.slots && i < count; i++)
		json_decref(r.slots[i]);
	free(r.slots);
	json_decref(r.errors);
	json_decref(r.notes);
}

/* ---- status, describe ----------------------------------------------------- */

/* The instance_ids parameter: an array of strings, or NULL when absent. */
static bool get_ids(const pv_operation *op, json_t **ids, pv_result *out, bool required)
{
	*ids = json_object_get(op->params, "instance_ids");
	if (!*ids && !required)
		return true;
	size_t i;
	json_t *v;
	if (!json_is_array(*ids))
		return bad_param(out, "parameter '%s' must be an array of instance id strings", "instance_ids");
	json_array_foreach(*ids, i, v) if (!json_is_string(v))
		return bad_param(out, "parameter '%s' must be an array of instance id strings", "instance_ids");
	return true;
}

/* Fails `out` with the first host's connection error when nothing else
 * could be said. */
static void fail_unreachable(lv_provider *p, lv_conns *cs, pv_result *out)
{
	for (size_t i = 0; i < cs->n; i++) {
		if (cs->err[i].set) {
			lv_err_to_result(&cs->err[i], out);
			return;
		}
	}
	pv_result_fail(out, LV_ERR_CONNECTION, PV_CLASS_TRANSIENT, "libvirt '%s': no host answered",
		       p->base.name);
}

/* Every provisio domain on every reachable host, optionally of one request. */
static void list_all(lv_provider *p, lv_conns *cs, const char *request_id, json_t *list)
{
	for (size_t hi = 0; hi < cs->n; hi++) {
		virConnectPtr c = lv_conns_get(cs, hi);
		virDomainPtr *doms = NULL;
		int n = c ? virConnectListAllDomains(c, &doms, 0) : -1;
		if (c && n < 0) {
			lv_err e = {0};
			lv_err_capture(&e, "cannot list domains on '%s'", p->hosts[hi].cfg->name);
			lv_conns_fail(cs, hi, &e);
			cs->err[hi] = e;
		}
		for (int i = 0; i < n; i++) {
			const char *name = virDomainGetName(doms[i]);
			lv_err e = {0};
			json_t *v = name && is_ours(p, name) ? lv_domain_view(p, &p->hosts[hi], doms[i], &e) : NULL;
			const char *r = v ? json_string_value(json_object_get(v, "request_id")) : NULL;
			if (v && (!request_id || (r && strcmp(r, request_id) == 0)))
				json_array_append(list, v);
			json_decref(v);
			virDomainFree(doms[i]);
		}
		free(doms);
	}
}

static size_t count_unreachable(const lv_conns *cs)
{
	size_t n = 0;
	for (size_t i = 0; i < cs->n; i++)
		n += cs->tried[i] && !cs->conn[i];
	return n;
}

static void op_status(lv_provider *p, const pv_operation *op, pv_result *out, bool describe)
{
	json_t *ids = NULL;
	if (!describe && !get_ids(op, &ids, out, false))
		return;
	json_t *jr = describe ? json_object_get(op->params, "request_id") : NULL;
	lv_conns cs;
	if (lv_conns_init(&cs, p->hosts, p->cfg.n_hosts, &p->policy) < 0) {
		pv_result_fail(out, PV_ERR_INTERNAL, PV_CLASS_INTERNAL, "out of memory");
		return;
	}
	json_t *list = json_array(), *missing = json_array(), *unknown = json_array();
	if (!ids) {
		list_all(p, &cs, json_string_value(jr), list);
	} else {
		size_t i;
		json_t *v;
		json_array_foreach(ids, i, v) {
			const char *name = json_string_value(v);
			size_t hi = 0;
			bool unreachable = false;
			virDomainPtr dom = is_ours(p, name) ? lv_domain_find(&cs, name, &hi, &unreachable) : NULL;
			lv_err e = {0};
			json_t *view = dom ? lv_domain_view(p, &p->hosts[hi], dom, &e) : NULL;
			if (view)
				json_array_append_new(list, view);
			else
				json_array_append(unreachable || e.set ? unknown : missing, v);
			if (dom)
				virDomainFree(dom);
		}
	}
	size_t down = count_unreachable(&cs);
	if (down == cs.n && json_array_size(list) == 0 && (json_array_size(unknown) || !ids)) {
		fail_unreachable(p, &cs, out);
	} else {
		json_t *data = json_pack("{s:O, s:O}", "instances", list, "not_found", missing);
		if (json_array_size(unknown))
			json_object_set(data, "unknown", unknown);
		if (down)
			json_object_set_new(data, "unreachable_hosts", json_integer((json_int_t)down));
		pv_result_ok(out, data);
	}
	json_decref(list);
	json_decref(missing);
	json_decref(unknown);
	lv_conns_fini(&cs);
}

/* ---- terminate ------------------------------------------------------------- */

typedef struct term_run {
	json_t *done, *missing, *unknown, *failed;
	lv_err first;
} term_run;

static void terminate_one(lv_provider *p, lv_conns *cs, json_t *id, bool dry, term_run *t)
{
	const char *name = json_string_value(id);
	size_t hi = 0;
	bool unreachable = false;
	virDomainPtr dom = is_ours(p, name) ? lv_domain_find(cs, name, &hi, &unreachable) : NULL;
	if (!dom) {
		json_array_append(unreachable ? t->unknown : t->missing, id);
		return;
	}
	lv_err e = {0};
	if (dry || lv_domain_remove(p, cs->conn[hi], dom, &e) == 0) {
		json_array_append(t->done, id);
		if (!dry)
			atomic_fetch_add(&p->terminated, 1);
	} else {
		json_t *j = lv_err_to_json(&e);
		json_object_set(j, "instance_id", id);
		json_array_append_new(t->failed, j);
		if (!t->first.set)
			t->first = e;
		lv_conns_fail(cs, hi, &e);
	}
	virDomainFree(dom);
}

static void op_terminate(lv_provider *p, const pv_operation *op, pv_result *out)
{
	json_t *ids;
	if (!get_ids(op, &ids, out, true))
		return;
	lv_conns cs;
	if (lv_conns_init(&cs, p->hosts, p->cfg.n_hosts, &p->policy) < 0) {
		pv_result_fail(out, PV_ERR_INTERNAL, PV_CLASS_INTERNAL, "out of memory");
		return;
	}
	bool dry = pv_operation_dry_run(op);
	term_run t = {.done = json_array(), .missing = json_array(), .unknown = json_array(),
		      .failed = json_array()};
	size_t i;
	json_t *v;
	json_array_foreach(ids, i, v) {
		if (deadline_passed(p, op)) {
			json_array_append(t.unknown, v);
			continue;
		}
		terminate_one(p, &cs, v, dry, &t);
	}
	if (json_array_size(t.done) == 0 && json_array_size(ids) > 0) {
		if (t.first.set)
			lv_err_to_result(&t.first, out);
		else if (json_array_size(t.unknown))
			fail_unreachable(p, &cs, out);
		else
			pv_result_fail(out, PV_ERR_NOT_FOUND, PV_CLASS_PERMANENT,
				       "libvirt '%s' has none of the %zu instance ids", p->base.name,
				       json_array_size(ids));
		pv_result_meta_set(out, "not_found", json_incref(t.missing));
		if (json_array_size(t.failed))
			pv_result_meta_set(out, "failed", json_incref(t.failed));
	} else {
		json_t *data = json_pack("{s:O, s:O, s:b}", "terminated", t.done, "not_found", t.missing,
					 "dry_run", dry);
		if (json_array_size(t.unknown))
			json_object_set(data, "unknown", t.unknown);
		if (json_array_size(t.failed))
			json_object_set(data, "failed", t.failed);
		pv_result_ok(out, data);
	}
	json_decref(t.done);
	json_decref(t.missing);
	json_decref(t.unknown);
	json_decref(t.failed);
	lv_conns_fini(&cs);
}

/* ---- validate, templates, health ----------------------------------------- */

static void op_validate(lv_provider *p, const pv_operation *op, pv_result *out)
{
	json_t *params = op->params;
	if (!json_object_get(params, "template") && !json_object_get(params, "template_id")) {
		pv_result_fail(out, PV_ERR_INVALID_PARAMETERS, PV_CLASS_PERMANENT,
			       "give parameter 'template' (object) or 'template_id' (string)");
		return;
	}
	lv_request rq;
	if (!resolve_request(p, params, &rq, out))
		return;
	char name[256];
	lv_domain_name(p, "validate", 0, name, sizeof name);
	lv_spec spec = {.name = name, .request_id = "validate", .template_id = rq.template_id,
			.memory_mb = rq.memory_mb, .vcpus = rq.vcpus, .network = rq.network,
			.domain_type = "kvm", .disk = rq.base_image, .disk_format = "qcow2"};
	char *xml = lv_render_domain(rq.domain_xml ? rq.domain_xml : p->cfg.domain_xml, &spec);
	if (!xml) {
		pv_result_fail(out, PV_ERR_INVALID_PARAMETERS, PV_CLASS_PERMANENT, "domain XML: %s",
			       pv_error_last());
		return;
	}
	pv_result_ok(out, json_pack("{s:b, s:s?, s:I, s:I, s:s}", "valid", 1, "template_id",
				    rq.template_id, "vcpus", (json_int_t)rq.vcpus, "memory_mb",
				    (json_int_t)rq.memory_mb, "domain_xml", xml));
	free(xml);
}

/* Connects to every host and reads its node info. Returns how many answered. */
static size_t check_hosts(lv_provider *p, json_t *hosts)
{
	size_t ok = 0;
	for (size_t i = 0; i < p->cfg.n_hosts; i++) {
		lv_host *h = &p->hosts[i];
		lv_err e = {0};
		virNodeInfo info;
		json_t *j = json_pack("{s:s, s:s, s:I}", "name", h->cfg->name, "uri", h->cfg->uri,
				      "capacity", (json_int_t)h->cfg->capacity);
		virConnectPtr c = lv_host_connect(h, &p->policy, true, &e);
		int64_t ours = c ? lv_host_count_ours(c, p->cfg.name_prefix, &e) : -1;
		if (c && ours >= 0 && virNodeGetInfo(c, &info) == 0) {
			ok++;
			json_object_set_new(j, "reachable", json_true());
			json_object_set_new(j, "cpus", json_integer(info.cpus));
			json_object_set_new(j, "memory_kib", json_integer((json_int_t)info.memory));
			json_object_set_new(j, "model", json_string(info.model));
			json_object_set_new(j, "instances", json_integer((json_int_t)ours));
		} else {
			if (c && !e.set)
				lv_err_capture(&e, "cannot read node info of '%s'", h->cfg->name);
			if (c && (lv_err_is_connection(&e) || virConnectIsAlive(c) == 0))
				lv_host_drop(h, c, &e);
			json_object_set_new(j, "reachable", json_false());
			json_object_set_new(j, "error", json_string(e.message));
		}
		if (c)
			virConnectClose(c);
		json_array_append_new(hosts, j);
	}
	return ok;
}

static void op_health(lv_provider *p, pv_result *out)
{
	json_t *hosts = json_array();
	size_t ok = check_hosts(p, hosts);
	if (ok == 0) {
		pv_result_fail(out, LV_ERR_UNHEALTHY, PV_CLASS_TRANSIENT,
			       "libvirt '%s': none of its %zu hosts answered", p->base.name, p->cfg.n_hosts);
		pv_result_meta_set(out, "hosts", hosts);
		return;
	}
	pv_result_ok(out, json_pack("{s:o, s:I, s:I}", "hosts", hosts, "reachable", (json_int_t)ok,
				    "total", (json_int_t)p->cfg.n_hosts));
}

static int lv_execute(pv_strategy *s, const pv_operation *op, pv_result *out)
{
	lv_provider *p = as_lv(s);
	if ((unsigned)op->type >= PV_OP_COUNT) {
		pv_result_fail(out, PV_ERR_INVALID_PARAMETERS, PV_CLASS_PERMANENT, "unknown operation type %d",
			       (int)op->type);
		return 0;
	}
	atomic_fetch_add_explicit(&p->calls[op->type], 1, memory_order_relaxed);
	if (op->params && !json_is_object(op->params)) {
		pv_result_fail(out, PV_ERR_INVALID_PARAMETERS, PV_CLASS_PERMANENT, "parameters must be an object");
		return 0;
	}
	switch (op->type) {
	case PV_OP_CREATE_INSTANCES: op_create(p, op, out); break;
	case PV_OP_TERMINATE_INSTANCES: op_terminate(p, op, out); break;
	case PV_OP_GET_INSTANCE_STATUS: op_status(p, op, out, false); break;
	case PV_OP_DESCRIBE_RESOURCE_INSTANCES: op_status(p, op, out, true); break;
	case PV_OP_VALIDATE_TEMPLATE: op_validate(p, op, out); break;
	case PV_OP_GET_AVAILABLE_TEMPLATES:
		pv_result_ok(out, json_pack("{s:O}", "templates", p->cfg.templates));
		break;
	case PV_OP_HEALTH_CHECK: op_health(p, out); break;
	default: break;
	}
	if (!out->provider[0])
		pv_result_set_provider(out, s->name);
	return 0;
}

/* ---- the strategy ------------------------------------------------------------ */

static int lv_init(pv_strategy *s)
{
	/* Connect now so the first request does not pay for it; a host that
	 * is down is retried on use, not held against the strategy. */
	lv_provider *p = as_lv(s);
	for (size_t i = 0; i < p->cfg.n_hosts; i++) {
		lv_err e = {0};
		virConnectPtr c = lv_host_connect(&p->hosts[i], &p->policy, true, &e);
		if (c)
			virConnectClose(c);
		else
			pv_log(PV_LOG_INFO, "libvirt '%s': %s (will retry on use)", s->name, e.message);
	}
	return 0;
}

static int lv_capabilities(pv_strategy *s, pv_capabilities *out)
{
	lv_provider *p = as_lv(s);
	int64_t total = 0;
	json_t *sources = json_array();
	for (size_t i = 0; i < p->cfg.n_hosts; i++)
		total = (total < 0 || p->cfg.hosts[i].capacity < 0) ? -1 : total + p->cfg.hosts[i].capacity;
	for (size_t i = 0; i < p->cfg.n_ip_sources; i++)
		json_array_append_new(sources, json_string(lv_ip_source_name(p->cfg.ip_sources[i])));
	snprintf(out->type, sizeof out->type, "libvirt");
	out->operations = PV_OP_SET_ALL;
	out->features = json_pack("{s:b, s:b, s:b, s:s, s:s, s:o}", "instance_management", 1,
				  "idempotent_create", 1, "overlays", p->cfg.overlay != LV_OVERLAY_OFF,
				  "overlay_mode", lv_overlay_mode_name(p->cfg.overlay), "placement",
				  lv_placement_name(p->cfg.placement), "ip_sources", sources);
	out->limitations = json_pack("{s:I, s:I, s:I}", "max_instances_per_request",
				     (json_int_t)p->cfg.max_per_request, "capacity", (json_int_t)total,
				     "hosts", (json_int_t)p->cfg.n_hosts);
	return 0;
}

static int lv_health(pv_strategy *s, pv_health *out)
{
	lv_provider *p = as_lv(s);
	uint64_t t0 = pv_clock_now(p->clock);
	json_t *hosts = json_array();
	size_t ok = check_hosts(p, hosts);
	if (ok == p->cfg.n_hosts)
		pv_health_set(out, true, "libvirt '%s': all %zu hosts answered", s->name, ok);
	else
		pv_health_set(out, ok > 0, "libvirt '%s': %zu of %zu hosts answered", s->name, ok,
			      p->cfg.n_hosts);
	out->details = json_pack("{s:o}", "hosts", hosts);
	out->checked_at_ms = pv_wall_ms();
	out->response_ns = pv_clock_now(p->clock) - t0;
	return 0;
}

static json_t *lv_stats(pv_strategy *s)
{
	lv_provider *p = as_lv(s);
	json_t *calls = json_object(), *hosts = json_array();
	for (unsigned i = 0; i < PV_OP_COUNT; i++)
		json_object_set_new(calls, pv_op_name((pv_op_type)i),
				    json_integer((json_int_t)atomic_load(&p->calls[i])));
	for (size_t i = 0; i < p->cfg.n_hosts; i++) {
		lv_host *h = &p->hosts[i];
		pthread_mutex_lock(&h->lock);
		bool connected = h->conn != NULL;
		json_t *err = h->last_err.set ? json_string(h->last_err.message) : json_null();
		pthread_mutex_unlock(&h->lock);
		json_array_append_new(hosts, json_pack("{s:s, s:s, s:I, s:b, s:I, s:I, s:I, s:I, s:o}",
			"name", h->cfg->name, "uri", h->cfg->uri, "capacity", (json_int_t)h->cfg->capacity,
			"connected", connected, "connects", (json_int_t)atomic_load(&h->connects),
			"connect_failures", (json_int_t)atomic_load(&h->connect_failures),
			"drops", (json_int_t)atomic_load(&h->drops),
			"inflight", (json_int_t)atomic_load(&h->inflight), "last_error", err));
	}
	return json_pack("{s:o, s:I, s:I, s:I, s:I, s:{s:I, s:I, s:I}, s:o}", "calls", calls,
			 "created", (json_int_t)atomic_load(&p->created),
			 "reused", (json_int_t)atomic_load(&p->reused),
			 "terminated", (json_int_t)atomic_load(&p->terminated),
			 "failed", (json_int_t)atomic_load(&p->failed), "overlays",
			 "created", (json_int_t)atomic_load(&p->overlays_created),
			 "skipped", (json_int_t)atomic_load(&p->overlays_skipped),
			 "removed", (json_int_t)atomic_load(&p->overlays_removed), "hosts", hosts);
}

static void lv_destroy(pv_strategy *s)
{
	lv_provider *p = as_lv(s);
	for (size_t i = 0; p->hosts && i < p->cfg.n_hosts; i++)
		lv_host_fini(&p->hosts[i]);
	free(p->hosts);
	lv_config_free(&p->cfg);
}

static const pv_strategy_methods lv_methods = {
	.version = PV_STRATEGY_METHODS_VERSION,
	.init = lv_init,
	.execute = lv_execute,
	.capabilities = lv_capabilities,
	.health = lv_health,
	.destroy = lv_destroy,
	.stats = lv_stats,
};

int pv_libvirt_new(pv_strategy **out, const char *name, const json_t *config, const pv_clock *clock)
{
	*out = NULL;
	int rc = lv_global_init();
	if (rc < 0)
		return rc;
	lv_provider *p = pv_strategy_alloc(sizeof *p, &lv_methods, name, "libvirt");
	if (!p)
		return pv_error_last_code();
	p->clock = clock;
	rc = lv_config_parse(&p->cfg, name, config);
	if (rc == 0 && !(p->hosts = calloc(p->cfg.n_hosts, sizeof *p->hosts)))
		rc = pv_error_set(PV_ENOMEM, "out of memory");
	if (rc < 0) {
		pv_strategy_unref(&p->base);
		return rc;
	}
	for (size_t i = 0; i < p->cfg.n_hosts; i++)
		lv_host_init(&p->hosts[i], &p->cfg.hosts[i]);
	p->policy = (lv_connect_policy){.domain_type_cfg = p->cfg.domain_type, .clock = clock,
					.retry_interval_ns = (uint64_t)p->cfg.reconnect_interval_ms * PV_NS_PER_MS};
	*out = &p->base;
	return 0;
}
