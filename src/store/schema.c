/*
 * schema.c - the portable SQL of the stores (see schema.h): migrations,
 * queries, and rows to records.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "provisio/error.h"
#include "store/schema.h"

const char *const pv_store_migrations[] = {
	/* 0 -> 1 */
	"CREATE TABLE requests ("
	"  id TEXT PRIMARY KEY, kind TEXT NOT NULL, state TEXT NOT NULL,"
	"  template_id TEXT NOT NULL DEFAULT '', strategy TEXT NOT NULL DEFAULT '',"
	"  requested BIGINT NOT NULL DEFAULT 0, message TEXT NOT NULL DEFAULT '',"
	"  owner_pid BIGINT NOT NULL DEFAULT 0, created_ms BIGINT NOT NULL,"
	"  updated_ms BIGINT NOT NULL, refreshed_ms BIGINT NOT NULL DEFAULT 0);"
	"CREATE INDEX requests_state ON requests(state, template_id);"
	"CREATE TABLE machines ("
	"  machine_id TEXT PRIMARY KEY, request_id TEXT NOT NULL, return_id TEXT NOT NULL DEFAULT '',"
	"  template_id TEXT NOT NULL, provider TEXT NOT NULL, name TEXT NOT NULL,"
	"  private_ip TEXT NOT NULL DEFAULT '', public_ip TEXT NOT NULL DEFAULT '',"
	"  status TEXT NOT NULL, result TEXT NOT NULL, instance_type TEXT NOT NULL DEFAULT '',"
	"  price_type TEXT NOT NULL DEFAULT '', message TEXT NOT NULL DEFAULT '',"
	"  launch_time BIGINT NOT NULL DEFAULT 0, updated_ms BIGINT NOT NULL);"
	"CREATE INDEX machines_request ON machines(request_id);"
	"CREATE INDEX machines_return ON machines(return_id);"
	"CREATE INDEX machines_template ON machines(template_id, status);"
	"CREATE INDEX machines_name ON machines(name);"
	"CREATE TABLE kv (key TEXT PRIMARY KEY, value TEXT NOT NULL, updated_ms BIGINT NOT NULL);",
	/* 1 -> 2: machines of a request come out of the index already in
	 * machine_id order, so a 1,000-machine status needs no sort */
	"DROP INDEX machines_request;"
	"DROP INDEX machines_return;"
	"CREATE INDEX machines_request ON machines(request_id, machine_id);"
	"CREATE INDEX machines_return ON machines(return_id, machine_id);",
	/* 2 -> 3: machines being released are found without a scan */
	"CREATE INDEX machines_result ON machines(result, status);",
	/* 3 -> 4: a pid means something only on its own host and pid namespace;
	 * with a shared PostgreSQL store the owner's node is recorded too */
	"ALTER TABLE requests ADD COLUMN owner_node TEXT NOT NULL DEFAULT '';",
	/* 4 -> 5: the capacity count of a template (every getAvailableTemplates
	 * and requestMachines) walks an index of the live machines alone: not
	 * a row per machine, nor the terminated ones of all history */
	("CREATE INDEX machines_live ON machines(template_id)"
	 " WHERE status <> 'terminated' AND result <> 'fail';"), /* one statement (clang asks) */
	/* 5 -> 6: whether a request's id reached anyone (its machines are
	 * reclaimed when it never did); the requests already there had */
	("ALTER TABLE requests ADD COLUMN delivered_ms BIGINT NOT NULL DEFAULT 0;"
	 "UPDATE requests SET delivered_ms = updated_ms;"
	 "CREATE INDEX requests_undelivered ON requests(delivered_ms, created_ms);"),
};
const int pv_store_migration_count = (int)(sizeof pv_store_migrations / sizeof pv_store_migrations[0]);

int pv_store_schema_version(void) { return pv_store_migration_count; }

#define MACHINE_COLS                                                                              \
	"machine_id, request_id, return_id, template_id, provider, name, private_ip, public_ip, " \
	"status, result, instance_type, price_type, message, launch_time, updated_ms"
#define REQUEST_COLS                                                                              \
	"id, kind, state, template_id, strategy, requested, message, owner_pid, created_ms, "     \
	"updated_ms, refreshed_ms, owner_node, delivered_ms"

const char *const pv_store_sql[PV_Q_COUNT] = {
	/* delivered_ms, once set, stays: a writer holding an older copy of the
	 * request never takes back that its id was delivered (or reclaimed) */
	[PV_Q_REQ_PUT] = "INSERT INTO requests (" REQUEST_COLS ") VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?) "
			 "ON CONFLICT (id) DO UPDATE SET kind = excluded.kind, state = excluded.state, "
			 "template_id = excluded.template_id, strategy = excluded.strategy, "
			 "requested = excluded.requested, message = excluded.message, "
			 "owner_pid = excluded.owner_pid, created_ms = excluded.created_ms, "
			 "updated_ms = excluded.updated_ms, refreshed_ms = excluded.refreshed_ms, "
			 "owner_node = excluded.owner_node, delivered_ms = CASE WHEN "
			 "requests.delivered_ms <> 0 THEN requests.delivered_ms ELSE excluded.delivered_ms END",
	[PV_Q_REQ_GET] = "SELECT " REQUEST_COLS " FROM requests WHERE id = ?",
	/* the limit is bound by each store: its own "no limit" */
	[PV_Q_REQ_LIST] = "SELECT " REQUEST_COLS " FROM requests ORDER BY created_ms DESC, id LIMIT ?",
	[PV_Q_REQ_LIST_STATE] = "SELECT " REQUEST_COLS " FROM requests WHERE state = ? "
				"ORDER BY created_ms DESC, id LIMIT ?",
	[PV_Q_REQ_UNDELIVERED] = "SELECT " REQUEST_COLS " FROM requests WHERE delivered_ms = 0 "
				 "AND created_ms < ? AND kind = 'acquire' "
				 "AND state NOT IN ('creating', 'queued') ORDER BY created_ms, id",
	[PV_Q_M_PUT] = "INSERT INTO machines (" MACHINE_COLS ") VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?) "
		       "ON CONFLICT (machine_id) DO UPDATE SET request_id = excluded.request_id, "
		       "return_id = excluded.return_id, template_id = excluded.template_id, "
		       "provider = excluded.provider, name = excluded.name, "
		       "private_ip = excluded.private_ip, public_ip = excluded.public_ip, "
		       "status = excluded.status, result = excluded.result, "
		       "instance_type = excluded.instance_type, price_type = excluded.price_type, "
		       "message = excluded.message, launch_time = excluded.launch_time, "
		       "updated_ms = excluded.updated_ms",
	[PV_Q_M_GET_ID] = "SELECT " MACHINE_COLS " FROM machines WHERE machine_id = ?",
	[PV_Q_M_GET_NAME] = "SELECT " MACHINE_COLS " FROM machines WHERE name = ? "
			    "ORDER BY updated_ms DESC LIMIT 1",
	[PV_Q_M_BY_REQ] = "SELECT " MACHINE_COLS " FROM machines WHERE request_id = ? ORDER BY machine_id",
	[PV_Q_M_BY_RET] = "SELECT " MACHINE_COLS " FROM machines WHERE return_id = ? ORDER BY machine_id",
	[PV_Q_M_BY_TEMPLATE] = "SELECT " MACHINE_COLS " FROM machines WHERE template_id = ? "
			       "AND status <> 'terminated' ORDER BY machine_id",
	[PV_Q_M_ALIVE] = "SELECT " MACHINE_COLS " FROM machines WHERE status <> 'terminated' "
			 "ORDER BY machine_id",
	[PV_Q_M_ALL] = "SELECT " MACHINE_COLS " FROM machines ORDER BY machine_id",
	[PV_Q_M_LEAVING] = "SELECT " MACHINE_COLS " FROM machines WHERE result = 'fail' AND return_id = '' "
			   "AND status <> 'terminated' ORDER BY machine_id",
	[PV_Q_M_TAKEN_BACK] = "SELECT " MACHINE_COLS " FROM machines WHERE status = 'terminated' "
			      "AND return_id = '' AND result <> 'fail' ORDER BY machine_id",
	[PV_Q_IN_USE_M] = "SELECT COUNT(*) FROM machines WHERE template_id = ? AND status <> 'terminated' "
			  "AND result <> 'fail'",
	[PV_Q_IN_USE_R] = "SELECT COALESCE(SUM(requested), 0) FROM requests "
			  "WHERE template_id = ? AND state IN ('creating', 'queued') AND kind = 'acquire'",
	[PV_Q_KV_GET] = "SELECT value FROM kv WHERE key = ?",
	[PV_Q_KV_PUT] = "INSERT INTO kv (key, value, updated_ms) VALUES (?, ?, ?) "
			"ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_ms = excluded.updated_ms",
};

int pv_store_migrate(int version, const char *where, int (*exec)(void *conn, const char *sql, const char *what),
		     void *conn)
{
	int newest = pv_store_migration_count;
	if (version > newest)
		return pv_error_set(PV_EIO, "store %s: schema version %d is newer than this program's %d",
				    where, version, newest);
	int rc = 0;
	for (int v = version; rc == 0 && v < newest; v++) {
		char what[64];
		snprintf(what, sizeof what, "migration %d -> %d", v, v + 1);
		rc = exec(conn, pv_store_migrations[v], what);
	}
	if (rc == 0 && version < newest) {
		char text[128];
		snprintf(text, sizeof text, "DELETE FROM schema_version; INSERT INTO schema_version VALUES (%d)",
			 newest);
		rc = exec(conn, text, "write schema version");
	}
	return rc;
}

int pv_store_machine_query(pv_machine_filter f)
{
	static const int by_filter[PV_MF_COUNT] = {PV_Q_M_BY_REQ, PV_Q_M_BY_RET, PV_Q_M_BY_TEMPLATE,
						   PV_Q_M_ALIVE,  PV_Q_M_ALL,    PV_Q_M_LEAVING,
						   PV_Q_M_TAKEN_BACK};
	if ((unsigned)f >= PV_MF_COUNT)
		return pv_error_set(PV_EINVAL, "machine filter %d is not valid", (int)f);
	return by_filter[f];
}

int pv_store_machine_query_keyed(pv_machine_filter f) { return f <= PV_MF_TEMPLATE; }

static pv_store_param text(const char *v) { return (pv_store_param){.text = v ? v : ""}; }
static pv_store_param num(int64_t v) { return (pv_store_param){.num = v}; }

void pv_store_request_params(const pv_request_rec *r, pv_store_param out[PV_REQ_PARAMS])
{
	const pv_store_param p[PV_REQ_PARAMS] = {
		text(r->id),          text(pv_request_kind_name(r->kind)),
		text(pv_request_state_name(r->state)), text(r->template_id),
		text(r->strategy),    num(r->requested),
		text(r->message),     num(r->owner_pid),
		num(r->created_ms),   num(r->updated_ms),
		num(r->refreshed_ms), text(r->owner_node),
		num(r->delivered_ms),
	};
	memcpy(out, p, sizeof p);
}

void pv_store_machine_params(const pv_machine_rec *m, pv_store_param out[PV_M_PARAMS])
{
	const pv_store_param p[PV_M_PARAMS] = {
		text(m->machine_id), text(m->request_id), text(m->return_id),  text(m->template_id),
		text(m->provider),   text(m->name),       text(m->private_ip), text(m->public_ip),
		text(m->status),     text(m->result),     text(m->instance_type),
		text(m->price_type), text(m->message),    num(m->launch_time), num(m->updated_ms),
	};
	memcpy(out, p, sizeof p);
}

/* Column i into a fixed buffer, cut to fit. */
static void col_text(const pv_store_row *row, int i, char *buf, size_t size)
{
	size_t n = 0;
	const char *t = row->text(row->q, i, &n);
	if (!t)
		n = 0;
	if (n >= size)
		n = size - 1;
	if (n)
		memcpy(buf, t, n);
	buf[n] = '\0';
}

void pv_store_read_request(const pv_store_row *row, pv_request_rec *r)
{
	char buf[32];
	memset(r, 0, sizeof *r);
	col_text(row, 0, r->id, sizeof r->id);
	col_text(row, 1, buf, sizeof buf);
	pv_request_kind_parse(buf, &r->kind);
	col_text(row, 2, buf, sizeof buf);
	pv_request_state_parse(buf, &r->state);
	col_text(row, 3, r->template_id, sizeof r->template_id);
	col_text(row, 4, r->strategy, sizeof r->strategy);
	r->requested = row->num(row->q, 5);
	col_text(row, 6, r->message, sizeof r->message);
	r->owner_pid = row->num(row->q, 7);
	r->created_ms = row->num(row->q, 8);
	r->updated_ms = row->num(row->q, 9);
	r->refreshed_ms = row->num(row->q, 10);
	col_text(row, 11, r->owner_node, sizeof r->owner_node);
	r->delivered_ms = row->num(row->q, 12);
}

void pv_store_read_machine(const pv_store_row *row, pv_machine_rec *m)
{
	struct {
		char *buf;
		size_t size;
	} cols[] = {
		{m->machine_id, sizeof m->machine_id}, {m->request_id, sizeof m->request_id},
		{m->return_id, sizeof m->return_id},   {m->template_id, sizeof m->template_id},
		{m->provider, sizeof m->provider},     {m->name, sizeof m->name},
		{m->private_ip, sizeof m->private_ip}, {m->public_ip, sizeof m->public_ip},
		{m->status, sizeof m->status},         {m->result, sizeof m->result},
		{m->instance_type, sizeof m->instance_type}, {m->price_type, sizeof m->price_type},
		{m->message, sizeof m->message},
	};
	memset(m, 0, sizeof *m);
	for (int i = 0; i < 13; i++)
		col_text(row, i, cols[i].buf, cols[i].size);
	m->launch_time = row->num(row->q, 13);
	m->updated_ms = row->num(row->q, 14);
}

int pv_store_request_array_grow(pv_request_rec **list, size_t n, size_t *cap)
{
	if (n < *cap)
		return 0;
	size_t grown_cap = *cap ? *cap * 2 : 16;
	pv_request_rec *grown = realloc(*list, grown_cap * sizeof *grown);
	if (!grown) {
		free(*list);
		*list = NULL;
		return pv_error_set(PV_ENOMEM, "out of memory");
	}
	*list = grown;
	*cap = grown_cap;
	return 0;
}
