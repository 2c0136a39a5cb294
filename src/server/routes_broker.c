/*
 * routes_broker.c - templates, requests, returns and machines over the
 * broker: the Host Factory calls as REST, and the subset the generic
 * `rest` provider speaks (docs/api.md).
 *
 * Idempotency keys live in the store's key/value table, not in memory, so
 * a retried create is recognised after a restart and by every loop thread:
 * the key is claimed ("pending") in a write transaction before the
 * provider is called, so two concurrent creates with one key never both
 * provision.
 */
#include <stdlib.h>
#include <string.h>
#include <openssl/crypto.h>
#include "server/jsonw.h"
#include "server/server_internal.h"

#define IDEM_TTL_MS (24LL * 3600 * 1000)
#define IDEM_PENDING_MS (15LL * 60 * 1000) /* a claim older than this was lost in a crash */

/* ---- JSON shapes -------------------------------------------------------------------- */

/* The documents of pv_broker_machine_json and pv_broker_request_json
 * (broker/views.c), written directly: the hot path, no JSON tree.
 * test_server_cli checks both spellings give one document. */
static void write_machine(jsonw *w, const pv_machine_rec *m)
{
	jw_open(w, '{');
	jw_str(w, "machine_id", m->machine_id);
	jw_str(w, "name", m->name);
	jw_str(w, "provider", m->provider);
	jw_str(w, "template_id", m->template_id);
	jw_str(w, "request_id", m->request_id);
	jw_str(w, "state", m->status);
	jw_str(w, "result", m->result);
	jw_str(w, "private_ip", m->private_ip);
	jw_str_or_null(w, "public_ip", m->public_ip);
	jw_int(w, "launch_time", m->launch_time);
	jw_str(w, "message", m->message);
	jw_close(w, '}');
}

static void write_request(jsonw *w, const pv_request_rec *q, const pv_machine_list *ms)
{
	jw_open(w, '{');
	jw_str(w, "request_id", q->id);
	jw_str(w, "kind", pv_request_kind_name(q->kind));
	jw_str(w, "template_id", q->template_id);
	jw_int(w, "count", q->requested);
	jw_str(w, "status", pv_broker_hf_status(q->state));
	jw_str(w, "state", pv_request_state_name(q->state));
	jw_str(w, "message", q->message);
	jw_int(w, "created_at", q->created_ms / 1000);
	jw_key(w, "machines");
	jw_open(w, '[');
	for (size_t i = 0; ms && i < ms->n; i++)
		write_machine(w, &ms->items[i]);
	jw_close(w, ']');
	jw_close(w, '}');
}

static void reply_written(srv_req *r, int status, jsonw *w)
{
	jw_raw(w, "\n", 1);
	size_t len = 0;
	char *text = jw_take(w, &len);
	if (!text) {
		srv_reply_error(r, 500, "INTERNAL_ERROR", NULL, "out of memory");
		return;
	}
	srv_reply_owned(r, status, text, len);
}

static int check_query(srv_req *r, const char *const *allowed)
{
	for (size_t i = 0; i < r->n_query; i++) {
		const char *key = r->query[i].key;
		bool ok = false;
		for (const char *const *a = allowed; *a; a++)
			ok |= strcmp(*a, key) == 0;
		if (!ok) {
			srv_reply_error(r, 400, "UNKNOWN_FIELD", key, "unknown query parameter '%s'", key);
			return -1;
		}
	}
	return 0;
}

/* ---- templates ------------------------------------------------------------------------- */

void srv_get_templates(srv_req *r)
{
	static const char *const allowed[] = {NULL};
	if (check_query(r, allowed) < 0)
		return;
	pv_broker *b = r->t->b;
	json_t *list = json_array();
	size_t i;
	json_t *t;
	json_array_foreach(pv_broker_templates(b), i, t)
		json_array_append_new(list, pv_broker_template_json(b, t));
	srv_reply_json(r, 200, json_pack("{s:o}", "templates", list));
}

void srv_get_template(srv_req *r, const char *id)
{
	const json_t *t = pv_broker_template(r->t->b, id);
	if (!t) {
		srv_reply_error(r, 404, "TEMPLATE_NOT_FOUND", NULL, "no template '%s'", id);
		return;
	}
	srv_reply_json(r, 200, pv_broker_template_json(r->t->b, t));
}

/* ---- requests ------------------------------------------------------------------------------ */

/* The loop's list, emptied: its capacity is reused; a big one (a request
 * of hundreds of machines) is given back. */
static pv_machine_list *scratch(srv_req *r)
{
	pv_machine_list *ms = &r->t->scratch;
	if (ms->cap > 64)
		pv_machine_list_clear(ms);
	ms->n = 0;
	return ms;
}

static void reply_request(srv_req *r, int status, const char *id)
{
	pv_request_rec q;
	pv_machine_list *ms = scratch(r);
	if (pv_broker_request_status(r->t->b, id, &q, ms) < 0) {
		srv_reply_error(r, 404, "REQUEST_NOT_FOUND", NULL, "no request '%s'", id);
		ms->n = 0;
		return;
	}
	jsonw w = {0};
	write_request(&w, &q, ms);
	ms->n = 0;
	reply_written(r, status, &w);
}

void srv_get_request(srv_req *r, const char *id) { reply_request(r, 200, id); }

typedef struct idem {
	char key[280];
	char hash[65];
} idem;

srv_idem_verdict srv_idem_judge(const char *text, const char *hash, int64_t now_ms, char *request_id,
				size_t size)
{
	json_t *old = text ? json_loads(text, 0, NULL) : NULL;
	json_t *at_j = json_object_get(old, "at_ms");
	int64_t at = json_integer_value(at_j);
	const char *state = json_string_value(json_object_get(old, "state"));
	const char *was = json_string_value(json_object_get(old, "hash"));
	const char *rid = json_string_value(json_object_get(old, "request_id"));
	/* a record is only as good as what it says: a time that is not one
	 * (missing, negative, beyond any clock skew) makes it no record at all;
	 * within range the age cannot overflow */
	bool sane = json_is_integer(at_j) && at >= 0 && at <= now_ms + IDEM_TTL_MS && state;
	int64_t age = sane ? now_ms - at : 0;
	bool live = sane && age < IDEM_TTL_MS && strcmp(state, "failed") != 0 &&
		    !(strcmp(state, "pending") == 0 && age > IDEM_PENDING_MS);
	srv_idem_verdict v = SRV_IDEM_NEW;
	if (live)
		v = !was || strcmp(was, hash) != 0 ? SRV_IDEM_CONFLICT
		    : strcmp(state, "pending") == 0 ? SRV_IDEM_PENDING : SRV_IDEM_REPLAY;
	snprintf(request_id, size, "%s", v == SRV_IDEM_REPLAY && rid ? rid : "");
	json_decref(old);
	return v;
}

/* Claims the key. 1 = proceed with the create; 0 = answered (replay, 409,
 * 503 while another create with the key runs); -1 = store failure answered. */
static int idem_claim(srv_req *r, const idem *k)
{
	pv_store *st = pv_broker_store(r->t->b);
	if (pv_store_begin(st, true) < 0) {
		srv_reply_error(r, 503, "STORE_UNAVAILABLE", NULL, "%s", pv_error_last());
		return -1;
	}
	char *text = NULL;
	int64_t now = pv_wall_ms();
	char id[PV_STORE_SHORT_MAX];
	srv_idem_verdict v = srv_idem_judge(pv_store_kv_get(st, k->key, &text) == 0 ? text : NULL, k->hash,
					    now, id, sizeof id);
	free(text);
	if (v != SRV_IDEM_NEW) {
		pv_store_commit(st);
		if (v == SRV_IDEM_CONFLICT)
			srv_reply_error(r, 409, "IDEMPOTENCY_KEY_REUSED", NULL, "Idempotency-Key was used with a "
					"different body");
		else if (v == SRV_IDEM_PENDING) {
			srv_add_header(r, "Retry-After", "1");
			srv_reply_error(r, 503, "IN_PROGRESS", NULL, "a request with this Idempotency-Key is "
					"being created; retry");
		} else
			reply_request(r, 200, id);
		return 0;
	}
	json_t *claim = json_pack("{s:s, s:s, s:I}", "state", "pending", "hash", k->hash, "at_ms",
				  (json_int_t)now);
	char *ct = json_dumps(claim, JSON_COMPACT);
	json_decref(claim);
	int rc = ct ? pv_store_kv_put(st, k->key, ct) : PV_ENOMEM;
	free(ct);
	if (rc == 0)
		rc = pv_store_commit(st);
	else
		pv_store_rollback(st);
	if (rc < 0) {
		srv_reply_error(r, 503, "STORE_UNAVAILABLE", NULL, "%s", pv_error_last());
		return -1;
	}
	return 1;
}

static void idem_finish(srv_req *r, const idem *k, const char *request_id)
{
	pv_store *st = pv_broker_store(r->t->b);
	json_t *v = json_pack("{s:s, s:s, s:s, s:I}", "state", request_id ? "done" : "failed", "hash",
			      k->hash, "request_id", request_id ? request_id : "", "at_ms",
			      (json_int_t)pv_wall_ms());
	char *text = json_dumps(v, JSON_COMPACT);
	json_decref(v);
	if (text && pv_store_begin(st, true) == 0) {
		if (pv_store_kv_put(st, k->key, text) == 0)
			pv_store_commit(st);
		else
			pv_store_rollback(st);
	}
	free(text);
}

static int request_input(srv_req *r, json_t *body, const char **tid, int64_t *count)
{
	static const char *const allowed[] = {"template_id", "count", NULL};
	if (srv_check_fields(r, body, allowed) < 0)
		return -1;
	json_t *t = json_object_get(body, "template_id"), *c = json_object_get(body, "count");
	if (!json_is_string(t) || !json_string_length(t)) {
		srv_reply_error(r, 400, "INVALID_FIELD", "template_id", "template_id: must be a non-empty "
				"string");
		return -1;
	}
	if (!json_is_integer(c)) {
		srv_reply_error(r, 400, "INVALID_FIELD", "count", "count: must be an integer");
		return -1;
	}
	*tid = json_string_value(t);
	*count = json_integer_value(c);
	if (!pv_broker_template(r->t->b, *tid)) {
		srv_reply_error(r, 400, "INVALID_FIELD", "template_id", "template_id: no template '%s'", *tid);
		return -1;
	}
	return 0;
}

static void idem_key(srv_req *r, const char *header, const char *tid, int64_t count, idem *k)
{
	snprintf(k->key, sizeof k->key, "idem/%s", header);
	char canon[512];
	snprintf(canon, sizeof canon, "%s\n%lld", tid, (long long)count);
	srv_sha256_hex(canon, k->hash);
	(void)r;
}

void srv_post_requests(srv_req *r)
{
	json_t *body = srv_body_object(r);
	if (!body)
		return;
	const char *tid;
	int64_t count;
	if (request_input(r, body, &tid, &count) < 0) {
		json_decref(body);
		return;
	}
	const char *key = srv_header(r, "Idempotency-Key");
	idem k;
	if (key && (!*key || strlen(key) > 255)) {
		json_decref(body);
		srv_reply_error(r, 400, "INVALID_FIELD", "Idempotency-Key", "Idempotency-Key: 1..255 characters");
		return;
	}
	if (key) {
		idem_key(r, key, tid, count, &k);
		if (idem_claim(r, &k) <= 0) {
			json_decref(body);
			return;
		}
	}
	char id[PV_STORE_SHORT_MAX] = "";
	uint64_t t0 = pv_now_ns();
	int rc = pv_broker_request_machines(r->t->b, tid, count, id);
	double secs = (double)(pv_now_ns() - t0) / 1e9;
	if (key)
		idem_finish(r, &k, rc == 0 ? id : NULL);
	pv_server *srv = r->t->srv;
	if (rc == 0) {
		srv_hist_observe(srv->provision_hist, srv_provision_bounds_s, 12, secs);
		atomic_fetch_add(&srv->provision_sum_ns, (uint64_t)(secs * 1e9));
		atomic_fetch_add(&srv->provision_count, 1);
		srv_log(srv, PV_LOG_INFO, "broker", r, "request %s: %lld of '%s'", id, (long long)count, tid);
		reply_request(r, 202, id);
	} else if (rc == PV_EINVAL)
		srv_reply_error(r, 400, "INVALID_REQUEST", "count", "%s", pv_error_last());
	else
		srv_reply_error(r, 502, "PROVISIONING_FAILED", NULL, "%s", pv_error_last());
	json_decref(body);
}

void srv_get_requests(srv_req *r)
{
	static const char *const allowed[] = {"status", "limit", NULL};
	if (check_query(r, allowed) < 0)
		return;
	const char *status = srv_query(r, "status"), *lim = srv_query(r, "limit");
	if (status && !pv_broker_status_filter_valid(status)) {
		srv_reply_error(r, 400, "INVALID_FIELD", "status", "status '%s': valid: running, complete, "
				"complete_with_error, creating, queued, failed", status);
		return;
	}
	char *end = NULL;
	long limit = lim ? strtol(lim, &end, 10) : 100;
	if (lim && (*end || limit < 1 || limit > 1000)) {
		srv_reply_error(r, 400, "INVALID_FIELD", "limit", "limit: an integer from 1 to 1000");
		return;
	}
	pv_store *st = pv_broker_store(r->t->b);
	pv_request_rec *qs = NULL;
	size_t n = 0;
	jsonw w = {0};
	size_t shown = 0;
	jw_open(&w, '{');
	jw_key(&w, "requests");
	jw_open(&w, '[');
	if (pv_store_begin(st, false) == 0) {
		/* filtered after reading: HF's "running" spans two stored states */
		if (pv_store_request_list(st, -1, status ? 0 : (size_t)limit, &qs, &n) == 0)
			for (size_t i = 0; i < n && shown < (size_t)limit; i++) {
				if (!pv_broker_status_filter_matches(&qs[i], status))
					continue;
				pv_machine_list ms = {0};
				pv_store_machine_list(st, qs[i].kind == PV_REQ_ACQUIRE ? PV_MF_REQUEST : PV_MF_RETURN,
						      qs[i].id, &ms);
				write_request(&w, &qs[i], &ms);
				shown++;
				pv_machine_list_clear(&ms);
			}
		pv_store_commit(st);
	}
	free(qs);
	jw_close(&w, ']');
	jw_close(&w, '}');
	reply_written(r, 200, &w);
}

/* ---- returns ----------------------------------------------------------------------------------- */

static int return_refs(srv_req *r, json_t *body, pv_machine_ref **refs, size_t *n)
{
	static const char *const allowed[] = {"machines", NULL};
	if (srv_check_fields(r, body, allowed) < 0)
		return -1;
	json_t *list = json_object_get(body, "machines");
	if (!json_is_array(list) || !json_array_size(list) || json_array_size(list) > 10000) {
		srv_reply_error(r, 400, "INVALID_FIELD", "machines", "machines: must be an array of 1..10000 "
				"{\"machine_id\"} or {\"name\"} objects");
		return -1;
	}
	*refs = calloc(json_array_size(list), sizeof **refs);
	size_t i;
	json_t *m;
	json_array_foreach(list, i, m) {
		char field[48];
		snprintf(field, sizeof field, "machines[%zu]", i);
		json_t *id = json_object_get(m, "machine_id"), *name = json_object_get(m, "name");
		static const char *const keys[] = {"machine_id", "name", NULL};
		const char *k;
		json_t *v;
		bool bad = !json_is_object(m) || (!json_is_string(id) && !json_is_string(name)) ||
			   (id && !json_is_string(id)) || (name && !json_is_string(name));
		if (!bad)
			json_object_foreach(m, k, v) {
				bool ok = false;
				for (const char *const *a = keys; *a; a++)
					ok |= strcmp(*a, k) == 0;
				if (!ok) {
					char f[96];
					snprintf(f, sizeof f, "%s.%s", field, k);
					srv_reply_error(r, 400, "UNKNOWN_FIELD", f, "unknown field '%s' (valid: "
							"machine_id, name)", f);
					free(*refs);
					return -1;
				}
			}
		if (bad) {
			srv_reply_error(r, 400, "INVALID_FIELD", field, "%s: must be {\"machine_id\": string} or "
					"{\"name\": string}", field);
			free(*refs);
			return -1;
		}
		(*refs)[i].machine_id = json_string_value(id);
		(*refs)[i].name = json_string_value(name);
	}
	*n = json_array_size(list);
	return 0;
}

void srv_post_returns(srv_req *r)
{
	json_t *body = srv_body_object(r);
	if (!body)
		return;
	pv_machine_ref *refs = NULL;
	size_t n = 0;
	if (return_refs(r, body, &refs, &n) < 0) {
		json_decref(body);
		return;
	}
	char id[PV_STORE_SHORT_MAX] = "";
	int rc = pv_broker_return_machines(r->t->b, refs, n, id);
	free(refs);
	if (rc == 0) {
		srv_log(r->t->srv, PV_LOG_INFO, "broker", r, "return %s: %zu machine(s)", id, n);
		reply_request(r, 202, id);
	} else if (rc == PV_EINVAL)
		srv_reply_error(r, 400, "INVALID_FIELD", "machines", "%s", pv_error_last());
	else
		srv_reply_error(r, 502, "RETURN_FAILED", NULL, "%s", pv_error_last());
	json_decref(body);
}

/* ---- machines ---------------------------------------------------------------------------------- */

static bool in_csv(const char *csv, const char *id)
{
	size_t n = strlen(id);
	for (const char *p = csv; p && *p;) {
		const char *c = strchr(p, ',');
		size_t len = c ? (size_t)(c - p) : strlen(p);
		if (len == n && strncmp(p, id, n) == 0)
			return true;
		p = c ? c + 1 : NULL;
	}
	return false;
}

/* Machines named in ids, each fresh: their requests are refreshed once each. */
static void machines_by_ids(pv_broker *b, const char *ids, pv_machine_list *out)
{
	json_t *seen = json_object();
	char buf[8192];
	snprintf(buf, sizeof buf, "%s", ids);
	char *save = NULL;
	for (char *id = strtok_r(buf, ",", &save); id; id = strtok_r(NULL, ",", &save)) {
		pv_machine_rec m;
		pv_store *st = pv_broker_store(b);
		int rc = pv_store_begin(st, false);
		if (rc == 0) {
			rc = pv_store_machine_get(st, id, NULL, &m);
			pv_store_commit(st);
		}
		if (rc < 0 || json_object_get(seen, m.request_id))
			continue;
		json_object_set_new(seen, m.request_id, json_true());
		pv_request_rec q;
		pv_machine_list ms = {0};
		if (pv_broker_request_status(b, m.request_id, &q, &ms) == 0)
			for (size_t i = 0; i < ms.n; i++)
				if (in_csv(ids, ms.items[i].machine_id))
					pv_machine_list_push(out, &ms.items[i]);
		pv_machine_list_clear(&ms);
	}
	json_decref(seen);
}

void srv_get_machines(srv_req *r)
{
	static const char *const allowed[] = {"request_id", "state", "ids", NULL};
	if (check_query(r, allowed) < 0)
		return;
	const char *req = srv_query(r, "request_id"), *state = srv_query(r, "state"),
		   *ids = srv_query(r, "ids");
	if (state && !pv_broker_machine_state_valid(state)) {
		srv_reply_error(r, 400, "INVALID_FIELD", "state", "state '%s': valid: pending, running, "
				"stopping, stopped, shutting-down, terminated", state);
		return;
	}
	if (ids && strlen(ids) >= 8192) {
		srv_reply_error(r, 400, "INVALID_FIELD", "ids", "ids: at most 8191 characters");
		return;
	}
	pv_broker *b = r->t->b;
	pv_machine_list ms = {0};
	if (ids)
		machines_by_ids(b, ids, &ms);
	else if (req) {
		pv_request_rec q;
		pv_broker_request_status(b, req, &q, &ms);
	} else {
		pv_store *st = pv_broker_store(b);
		if (pv_store_begin(st, false) == 0) {
			pv_store_machine_list(st, PV_MF_ALL, NULL, &ms);
			pv_store_commit(st);
		}
	}
	jsonw w = {0};
	jw_open(&w, '{');
	jw_key(&w, "machines");
	jw_open(&w, '[');
	for (size_t i = 0; i < ms.n; i++) {
		const pv_machine_rec *m = &ms.items[i];
		if ((state && strcmp(m->status, state) != 0) || (req && ids && strcmp(m->request_id, req) != 0))
			continue;
		write_machine(&w, m);
	}
	pv_machine_list_clear(&ms);
	jw_close(&w, ']');
	jw_close(&w, '}');
	reply_written(r, 200, &w);
}
