/*
 * store.c - the store interface: enum names, the state machine of
 * requests, machine lists, and the dispatch through the method table.
 *
 * The state machine lives here rather than in the broker so every store
 * implementation refuses the same illegal moves in request_put.
 */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "provisio/error.h"
#include "provisio/store.h"
#include "util/module.h"
#include "util/names.h"

static const char *const state_names[PV_REQ_STATE_COUNT] = {
	"creating", "running", "complete", "complete_with_error", "failed", "queued"};
static const char *const kind_names[PV_REQ_KIND_COUNT] = {"acquire", "return"};

const char *pv_request_state_name(pv_request_state s)
{
	return (unsigned)s < PV_REQ_STATE_COUNT ? state_names[s] : "unknown";
}

int pv_request_state_parse(const char *name, pv_request_state *out)
{
	int i = pv_names_find(state_names, PV_REQ_STATE_COUNT, name, "request state");
	if (i < 0)
		return i;
	*out = (pv_request_state)i;
	return 0;
}

/*
 * queued   -> creating | running | complete | complete_with_error | failed
 * creating -> running | complete | complete_with_error | failed
 * running  -> complete | complete_with_error
 * final states only to themselves: a finished request never reopens, so a
 * late or duplicated refresh cannot turn "complete" back into "running".
 */
bool pv_request_state_can_move(pv_request_state from, pv_request_state to)
{
	if ((unsigned)from >= PV_REQ_STATE_COUNT || (unsigned)to >= PV_REQ_STATE_COUNT)
		return false;
	if (from == to)
		return true;
	switch (from) {
	case PV_REQ_QUEUED:
		return true;
	case PV_REQ_CREATING:
		return to != PV_REQ_QUEUED;
	case PV_REQ_RUNNING:
		return to == PV_REQ_COMPLETE || to == PV_REQ_COMPLETE_WITH_ERROR;
	default:
		return false;
	}
}

bool pv_request_state_final(pv_request_state s)
{
	return s == PV_REQ_COMPLETE || s == PV_REQ_COMPLETE_WITH_ERROR || s == PV_REQ_FAILED;
}

bool pv_request_state_unsettled(pv_request_state s)
{
	return s == PV_REQ_CREATING || s == PV_REQ_QUEUED;
}

const char *pv_request_kind_name(pv_request_kind k)
{
	return (unsigned)k < PV_REQ_KIND_COUNT ? kind_names[k] : "unknown";
}

int pv_request_kind_parse(const char *name, pv_request_kind *out)
{
	int i = pv_names_find(kind_names, PV_REQ_KIND_COUNT, name, "request kind");
	if (i < 0)
		return i;
	*out = (pv_request_kind)i;
	return 0;
}

static const char *const filter_names[PV_MF_COUNT] = {"request", "return", "template",
							"alive",   "all",    "leaving", "taken_back"};

const char *pv_machine_filter_name(pv_machine_filter f)
{
	return (unsigned)f < PV_MF_COUNT ? filter_names[f] : "unknown";
}

int pv_machine_filter_parse(const char *name, pv_machine_filter *out)
{
	int i = pv_names_find(filter_names, PV_MF_COUNT, name, "machine filter");
	if (i < 0)
		return i;
	*out = (pv_machine_filter)i;
	return 0;
}

int pv_machine_list_push(pv_machine_list *l, const pv_machine_rec *m)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 16;
		pv_machine_rec *grown = realloc(l->items, cap * sizeof *grown);
		if (!grown)
			return pv_error_set(PV_ENOMEM, "out of memory");
		l->items = grown;
		l->cap = cap;
	}
	l->items[l->n++] = *m;
	return 0;
}

void pv_machine_list_clear(pv_machine_list *l)
{
	free(l->items);
	memset(l, 0, sizeof *l);
}

void pv_store_close(pv_store *st)
{
	if (st)
		st->methods->close(st);
}

int pv_store_begin(pv_store *st, bool write)
{
	if (st->in_tx)
		return pv_error_set(PV_ESTATE, "store: a transaction is already open");
	int rc = st->methods->begin(st, write);
	if (rc == 0)
		st->in_tx = write ? 2 : 1;
	return rc;
}

int pv_store_commit(pv_store *st)
{
	if (!st->in_tx)
		return pv_error_set(PV_ESTATE, "store: commit without a transaction");
	int rc = st->methods->commit(st);
	if (rc == 0)
		st->in_tx = 0;
	return rc;
}

void pv_store_rollback(pv_store *st)
{
	if (st->in_tx)
		st->methods->rollback(st);
	st->in_tx = 0;
}

static int need_write(pv_store *st)
{
	return st->in_tx == 2 ? 0
			      : pv_error_set(PV_ESTATE, "store: writes need pv_store_begin(st, true)");
}

int pv_store_request_put(pv_store *st, const pv_request_rec *r)
{
	int rc = need_write(st);
	if (rc < 0)
		return rc;
	pv_request_rec old;
	rc = st->methods->request_get(st, r->id, &old);
	if (rc == 0 && !pv_request_state_can_move(old.state, r->state))
		return pv_error_set(PV_ESTATE, "request '%s' cannot move from %s to %s", r->id,
				    pv_request_state_name(old.state), pv_request_state_name(r->state));
	if (rc < 0 && rc != PV_ENOTFOUND)
		return rc;
	return st->methods->request_put(st, r);
}

int pv_store_request_get(pv_store *st, const char *id, pv_request_rec *out)
{
	return st->methods->request_get(st, id, out);
}

int pv_store_request_list(pv_store *st, int state, size_t limit, pv_request_rec **out, size_t *n)
{
	return st->methods->request_list(st, state, limit, out, n);
}

int pv_store_request_list_undelivered(pv_store *st, int64_t before_ms, pv_request_rec **out, size_t *n)
{
	*out = NULL;
	*n = 0;
	if (st->methods->version < 2 || !st->methods->request_list_undelivered)
		return 0;
	return st->methods->request_list_undelivered(st, before_ms, out, n);
}

int pv_store_machine_put(pv_store *st, const pv_machine_rec *m)
{
	int rc = need_write(st);
	return rc < 0 ? rc : st->methods->machine_put(st, m);
}

int pv_store_machine_get(pv_store *st, const char *id, const char *name, pv_machine_rec *out)
{
	return st->methods->machine_get(st, id, name, out);
}

int pv_store_machine_list(pv_store *st, pv_machine_filter f, const char *key, pv_machine_list *out)
{
	return st->methods->machine_list(st, f, key, out);
}

int pv_store_template_in_use(pv_store *st, const char *template_id, int64_t *out)
{
	return st->methods->template_in_use(st, template_id, out);
}

int pv_store_kv_get(pv_store *st, const char *key, char **value)
{
	return st->methods->kv_get(st, key, value);
}

int pv_store_kv_put(pv_store *st, const char *key, const char *value)
{
	int rc = need_write(st);
	return rc < 0 ? rc : st->methods->kv_put(st, key, value);
}

bool pv_store_location_is_postgres(const char *location)
{
	return location && (strncmp(location, "postgresql://", 13) == 0 ||
			    strncmp(location, "postgres://", 11) == 0);
}

/* Set once by the postgres module as it loads; read by any thread. */
static _Atomic(pv_store_opener) postgres_opener;

int pv_store_register_postgres(pv_store_opener open)
{
	atomic_store(&postgres_opener, open);
	return 0;
}

int pv_store_open(pv_store **out, const char *location, const pv_store_options *opts)
{
	*out = NULL;
	if (!pv_store_location_is_postgres(location))
		return pv_store_open_sqlite(out, location, opts);
	/* libpq, and the LDAP and Kerberos libraries behind it, load only for
	 * a PostgreSQL store. */
	int rc = atomic_load(&postgres_opener) ? 0 : pv_module_load("postgres");
	if (rc < 0)
		return rc;
	pv_store_opener open = atomic_load(&postgres_opener);
	if (!open)
		return pv_error_set(PV_ENOTFOUND, "module 'postgres' did not register the PostgreSQL store");
	return open(out, location, opts);
}
