/*
 * sqlite.c - the SQLite store: one file shared by every short Host Factory
 * process on the machine.
 *
 * Why these settings: WAL lets readers (getRequestStatus) run while one
 * writer commits; the busy timeout makes concurrent writers queue instead
 * of failing; BEGIN IMMEDIATE takes the write lock at the start of a write
 * transaction, so two processes never both read-then-write and deadlock on
 * the upgrade; synchronous=NORMAL is crash-safe in WAL mode (a killed
 * process never corrupts or half-writes; only a power cut may lose the last
 * commits). Every statement is prepared once per connection and reused.
 * The SQL itself is plain (INSERT ... ON CONFLICT, COALESCE) and runs
 * unchanged on PostgreSQL; only this file's pragmas are SQLite's.
 */
#include <errno.h>
#include <limits.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "provisio/clock.h"
#include "provisio/error.h"
#include "provisio/store.h"

/* Migrations, in order: migrations[i] takes the schema from version i to i + 1. */
static const char *const migrations[] = {
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
};
#define SCHEMA_VERSION ((int)(sizeof migrations / sizeof migrations[0]))

int pv_store_schema_version(void) { return SCHEMA_VERSION; }

#define MACHINE_COLS                                                                              \
	"machine_id, request_id, return_id, template_id, provider, name, private_ip, public_ip, " \
	"status, result, instance_type, price_type, message, launch_time, updated_ms"
#define REQUEST_COLS                                                                              \
	"id, kind, state, template_id, strategy, requested, message, owner_pid, created_ms, "     \
	"updated_ms, refreshed_ms"

enum {
	Q_BEGIN_R, Q_BEGIN_W, Q_COMMIT, Q_ROLLBACK,
	Q_REQ_PUT, Q_REQ_GET, Q_REQ_LIST, Q_REQ_LIST_STATE,
	Q_M_PUT, Q_M_GET_ID, Q_M_GET_NAME,
	Q_M_BY_REQ, Q_M_BY_RET, Q_M_BY_TEMPLATE, Q_M_ALIVE, Q_M_ALL, Q_M_LEAVING,
	Q_IN_USE_M, Q_IN_USE_R, Q_KV_GET, Q_KV_PUT,
	Q_COUNT
};

static const char *const sql[Q_COUNT] = {
	[Q_BEGIN_R] = "BEGIN",
	[Q_BEGIN_W] = "BEGIN IMMEDIATE",
	[Q_COMMIT] = "COMMIT",
	[Q_ROLLBACK] = "ROLLBACK",
	[Q_REQ_PUT] = "INSERT INTO requests (" REQUEST_COLS ") VALUES (?,?,?,?,?,?,?,?,?,?,?) "
		      "ON CONFLICT (id) DO UPDATE SET kind = excluded.kind, state = excluded.state, "
		      "template_id = excluded.template_id, strategy = excluded.strategy, "
		      "requested = excluded.requested, message = excluded.message, "
		      "owner_pid = excluded.owner_pid, created_ms = excluded.created_ms, "
		      "updated_ms = excluded.updated_ms, refreshed_ms = excluded.refreshed_ms",
	[Q_REQ_GET] = "SELECT " REQUEST_COLS " FROM requests WHERE id = ?",
	[Q_REQ_LIST] = "SELECT " REQUEST_COLS " FROM requests ORDER BY created_ms DESC, id LIMIT ?",
	[Q_REQ_LIST_STATE] = "SELECT " REQUEST_COLS " FROM requests WHERE state = ? "
			     "ORDER BY created_ms DESC, id LIMIT ?",
	[Q_M_PUT] = "INSERT INTO machines (" MACHINE_COLS ") VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?) "
		    "ON CONFLICT (machine_id) DO UPDATE SET request_id = excluded.request_id, "
		    "return_id = excluded.return_id, template_id = excluded.template_id, "
		    "provider = excluded.provider, name = excluded.name, "
		    "private_ip = excluded.private_ip, public_ip = excluded.public_ip, "
		    "status = excluded.status, result = excluded.result, "
		    "instance_type = excluded.instance_type, price_type = excluded.price_type, "
		    "message = excluded.message, launch_time = excluded.launch_time, "
		    "updated_ms = excluded.updated_ms",
	[Q_M_GET_ID] = "SELECT " MACHINE_COLS " FROM machines WHERE machine_id = ?",
	[Q_M_GET_NAME] = "SELECT " MACHINE_COLS " FROM machines WHERE name = ? "
			 "ORDER BY updated_ms DESC LIMIT 1",
	[Q_M_BY_REQ] = "SELECT " MACHINE_COLS " FROM machines WHERE request_id = ? ORDER BY machine_id",
	[Q_M_BY_RET] = "SELECT " MACHINE_COLS " FROM machines WHERE return_id = ? ORDER BY machine_id",
	[Q_M_BY_TEMPLATE] = "SELECT " MACHINE_COLS " FROM machines WHERE template_id = ? "
			    "AND status <> 'terminated' ORDER BY machine_id",
	[Q_M_ALIVE] = "SELECT " MACHINE_COLS " FROM machines WHERE status <> 'terminated' "
		      "ORDER BY machine_id",
	[Q_M_ALL] = "SELECT " MACHINE_COLS " FROM machines ORDER BY machine_id",
	[Q_M_LEAVING] = "SELECT " MACHINE_COLS " FROM machines WHERE result = 'fail' AND return_id = '' "
			"AND status <> 'terminated' ORDER BY machine_id",
	[Q_IN_USE_M] = "SELECT COUNT(*) FROM machines WHERE template_id = ? AND status <> 'terminated' "
		       "AND result <> 'fail'",
	[Q_IN_USE_R] = "SELECT COALESCE(SUM(requested), 0) FROM requests "
		       "WHERE template_id = ? AND state IN ('creating', 'queued') AND kind = 'acquire'",
	[Q_KV_GET] = "SELECT value FROM kv WHERE key = ?",
	[Q_KV_PUT] = "INSERT INTO kv (key, value, updated_ms) VALUES (?, ?, ?) "
		     "ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_ms = excluded.updated_ms",
};

typedef struct sqlite_store {
	pv_store base;
	sqlite3 *db;
	char *path;
	sqlite3_stmt *stmt[Q_COUNT];
} sqlite_store;

static sqlite_store *as_sq(pv_store *st) { return (sqlite_store *)st; }

static int db_error(sqlite_store *s, const char *what)
{
	int code = sqlite3_extended_errcode(s->db);
	return pv_error_set(PV_EIO, "store %s: %s: %s (sqlite %d)", s->path, what,
			    sqlite3_errmsg(s->db), code);
}

/* The cached statement for `q`, reset and unbound; NULL with the error set. */
static sqlite3_stmt *stmt(sqlite_store *s, int q)
{
	if (!s->stmt[q]) {
		if (sqlite3_prepare_v3(s->db, sql[q], -1, SQLITE_PREPARE_PERSISTENT, &s->stmt[q], NULL) !=
		    SQLITE_OK) {
			db_error(s, "prepare");
			return NULL;
		}
	}
	sqlite3_reset(s->stmt[q]);
	sqlite3_clear_bindings(s->stmt[q]);
	return s->stmt[q];
}

/* Runs a statement that returns no rows. */
static int run_done(sqlite_store *s, sqlite3_stmt *q, const char *what)
{
	int rc = sqlite3_step(q);
	sqlite3_reset(q);
	return rc == SQLITE_DONE || rc == SQLITE_ROW ? 0 : db_error(s, what);
}

static void bind_text(sqlite3_stmt *q, int i, const char *v)
{
	sqlite3_bind_text(q, i, v ? v : "", -1, SQLITE_STATIC);
}

/* A text column into a fixed buffer, truncated to fit (buffers are zeroed
 * by the caller). */
static void col_text(sqlite3_stmt *q, int i, char *buf, size_t size)
{
	const unsigned char *t = sqlite3_column_text(q, i);
	size_t n = t ? (size_t)sqlite3_column_bytes(q, i) : 0;
	if (n >= size)
		n = size - 1;
	if (n)
		memcpy(buf, t, n);
	buf[n] = '\0';
}

/* ---- transactions ------------------------------------------------------- */

static int sq_begin(pv_store *st, bool write)
{
	sqlite_store *s = as_sq(st);
	sqlite3_stmt *q = stmt(s, write ? Q_BEGIN_W : Q_BEGIN_R);
	return q ? run_done(s, q, "begin") : PV_EIO;
}

static int sq_commit(pv_store *st)
{
	sqlite_store *s = as_sq(st);
	sqlite3_stmt *q = stmt(s, Q_COMMIT);
	int rc = q ? run_done(s, q, "commit") : PV_EIO;
	if (rc < 0 && sqlite3_get_autocommit(s->db) == 0) {
		sqlite3_stmt *rb = stmt(s, Q_ROLLBACK);
		if (rb)
			sqlite3_step(rb), sqlite3_reset(rb);
	}
	return rc;
}

static void sq_rollback(pv_store *st)
{
	sqlite_store *s = as_sq(st);
	if (sqlite3_get_autocommit(s->db))
		return;
	sqlite3_stmt *q = stmt(s, Q_ROLLBACK);
	if (q)
		run_done(s, q, "rollback");
}

/* ---- requests ------------------------------------------------------------- */

static int sq_request_put(pv_store *st, const pv_request_rec *r)
{
	sqlite_store *s = as_sq(st);
	sqlite3_stmt *q = stmt(s, Q_REQ_PUT);
	if (!q)
		return PV_EIO;
	bind_text(q, 1, r->id);
	bind_text(q, 2, pv_request_kind_name(r->kind));
	bind_text(q, 3, pv_request_state_name(r->state));
	bind_text(q, 4, r->template_id);
	bind_text(q, 5, r->strategy);
	sqlite3_bind_int64(q, 6, r->requested);
	bind_text(q, 7, r->message);
	sqlite3_bind_int64(q, 8, r->owner_pid);
	sqlite3_bind_int64(q, 9, r->created_ms);
	sqlite3_bind_int64(q, 10, r->updated_ms);
	sqlite3_bind_int64(q, 11, r->refreshed_ms);
	return run_done(s, q, "write request");
}

static void read_request(sqlite3_stmt *q, pv_request_rec *r)
{
	char buf[32];
	memset(r, 0, sizeof *r);
	col_text(q, 0, r->id, sizeof r->id);
	col_text(q, 1, buf, sizeof buf);
	pv_request_kind_parse(buf, &r->kind);
	col_text(q, 2, buf, sizeof buf);
	pv_request_state_parse(buf, &r->state);
	col_text(q, 3, r->template_id, sizeof r->template_id);
	col_text(q, 4, r->strategy, sizeof r->strategy);
	r->requested = sqlite3_column_int64(q, 5);
	col_text(q, 6, r->message, sizeof r->message);
	r->owner_pid = sqlite3_column_int64(q, 7);
	r->created_ms = sqlite3_column_int64(q, 8);
	r->updated_ms = sqlite3_column_int64(q, 9);
	r->refreshed_ms = sqlite3_column_int64(q, 10);
}

static int sq_request_get(pv_store *st, const char *id, pv_request_rec *out)
{
	sqlite_store *s = as_sq(st);
	sqlite3_stmt *q = stmt(s, Q_REQ_GET);
	if (!q)
		return PV_EIO;
	bind_text(q, 1, id);
	int rc = sqlite3_step(q);
	if (rc == SQLITE_ROW)
		read_request(q, out);
	sqlite3_reset(q);
	if (rc == SQLITE_DONE)
		return pv_error_set(PV_ENOTFOUND, "no request '%s'", id);
	return rc == SQLITE_ROW ? 0 : db_error(s, "read request");
}

static int sq_request_list(pv_store *st, int state, size_t limit, pv_request_rec **out, size_t *n)
{
	sqlite_store *s = as_sq(st);
	*out = NULL;
	*n = 0;
	sqlite3_stmt *q = stmt(s, state < 0 ? Q_REQ_LIST : Q_REQ_LIST_STATE);
	if (!q)
		return PV_EIO;
	int i = 1;
	if (state >= 0)
		bind_text(q, i++, pv_request_state_name((pv_request_state)state));
	sqlite3_bind_int64(q, i, limit ? (sqlite3_int64)limit : -1);
	size_t cap = 0;
	int rc;
	while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
		if (*n == cap) {
			cap = cap ? cap * 2 : 16;
			pv_request_rec *grown = realloc(*out, cap * sizeof *grown);
			if (!grown) {
				sqlite3_reset(q);
				free(*out);
				*out = NULL;
				*n = 0;
				return pv_error_set(PV_ENOMEM, "out of memory");
			}
			*out = grown;
		}
		read_request(q, &(*out)[(*n)++]);
	}
	sqlite3_reset(q);
	if (rc != SQLITE_DONE) {
		free(*out);
		*out = NULL;
		*n = 0;
		return db_error(s, "list requests");
	}
	return 0;
}

/* ---- machines ------------------------------------------------------------- */

static int sq_machine_put(pv_store *st, const pv_machine_rec *m)
{
	sqlite_store *s = as_sq(st);
	sqlite3_stmt *q = stmt(s, Q_M_PUT);
	if (!q)
		return PV_EIO;
	const char *texts[] = {m->machine_id, m->request_id, m->return_id, m->template_id,
			       m->provider, m->name, m->private_ip, m->public_ip, m->status,
			       m->result, m->instance_type, m->price_type, m->message};
	for (int i = 0; i < 13; i++)
		bind_text(q, i + 1, texts[i]);
	sqlite3_bind_int64(q, 14, m->launch_time);
	sqlite3_bind_int64(q, 15, m->updated_ms);
	return run_done(s, q, "write machine");
}

static void read_machine(sqlite3_stmt *q, pv_machine_rec *m)
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
		col_text(q, i, cols[i].buf, cols[i].size);
	m->launch_time = sqlite3_column_int64(q, 13);
	m->updated_ms = sqlite3_column_int64(q, 14);
}

static int sq_machine_get(pv_store *st, const char *id, const char *name, pv_machine_rec *out)
{
	sqlite_store *s = as_sq(st);
	sqlite3_stmt *q = stmt(s, id ? Q_M_GET_ID : Q_M_GET_NAME);
	if (!q)
		return PV_EIO;
	bind_text(q, 1, id ? id : name);
	int rc = sqlite3_step(q);
	if (rc == SQLITE_ROW)
		read_machine(q, out);
	sqlite3_reset(q);
	if (rc == SQLITE_DONE)
		return pv_error_set(PV_ENOTFOUND, "no machine '%s'", id ? id : name ? name : "");
	return rc == SQLITE_ROW ? 0 : db_error(s, "read machine");
}

static int sq_machine_list(pv_store *st, pv_machine_filter f, const char *key, pv_machine_list *out)
{
	static const int by_filter[] = {Q_M_BY_REQ, Q_M_BY_RET, Q_M_BY_TEMPLATE, Q_M_ALIVE, Q_M_ALL,
					Q_M_LEAVING};
	sqlite_store *s = as_sq(st);
	if ((unsigned)f > PV_MF_LEAVING)
		return pv_error_set(PV_EINVAL, "machine filter %d is not valid", (int)f);
	sqlite3_stmt *q = stmt(s, by_filter[f]);
	if (!q)
		return PV_EIO;
	if (f <= PV_MF_TEMPLATE)
		bind_text(q, 1, key);
	int rc;
	pv_machine_rec m;
	while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
		read_machine(q, &m);
		if (pv_machine_list_push(out, &m) < 0) {
			sqlite3_reset(q);
			return PV_ENOMEM;
		}
	}
	sqlite3_reset(q);
	return rc == SQLITE_DONE ? 0 : db_error(s, "list machines");
}

static int count_query(sqlite_store *s, int which, const char *key, int64_t *out)
{
	sqlite3_stmt *q = stmt(s, which);
	if (!q)
		return PV_EIO;
	bind_text(q, 1, key);
	int rc = sqlite3_step(q);
	if (rc == SQLITE_ROW)
		*out = sqlite3_column_int64(q, 0);
	sqlite3_reset(q);
	return rc == SQLITE_ROW ? 0 : db_error(s, "count machines");
}

static int sq_template_in_use(pv_store *st, const char *template_id, int64_t *out)
{
	sqlite_store *s = as_sq(st);
	int64_t machines = 0, reserved = 0;
	int rc = count_query(s, Q_IN_USE_M, template_id, &machines);
	if (rc == 0)
		rc = count_query(s, Q_IN_USE_R, template_id, &reserved);
	*out = machines + reserved;
	return rc;
}

/* ---- key/value ------------------------------------------------------------ */

static int sq_kv_get(pv_store *st, const char *key, char **value)
{
	sqlite_store *s = as_sq(st);
	*value = NULL;
	sqlite3_stmt *q = stmt(s, Q_KV_GET);
	if (!q)
		return PV_EIO;
	bind_text(q, 1, key);
	int rc = sqlite3_step(q);
	if (rc == SQLITE_ROW) {
		const unsigned char *t = sqlite3_column_text(q, 0);
		*value = strdup(t ? (const char *)t : "");
	}
	sqlite3_reset(q);
	if (rc == SQLITE_DONE)
		return pv_error_set(PV_ENOTFOUND, "no key '%s'", key);
	if (rc != SQLITE_ROW)
		return db_error(s, "read key");
	return *value ? 0 : pv_error_set(PV_ENOMEM, "out of memory");
}

static int sq_kv_put(pv_store *st, const char *key, const char *value)
{
	sqlite_store *s = as_sq(st);
	sqlite3_stmt *q = stmt(s, Q_KV_PUT);
	if (!q)
		return PV_EIO;
	bind_text(q, 1, key);
	bind_text(q, 2, value);
	sqlite3_bind_int64(q, 3, pv_wall_ms());
	return run_done(s, q, "write key");
}

/* ---- open, migrate, close ----------------------------------------------- */

static void sq_close(pv_store *st)
{
	sqlite_store *s = as_sq(st);
	if (st->in_tx)
		sq_rollback(st);
	for (int i = 0; i < Q_COUNT; i++)
		sqlite3_finalize(s->stmt[i]);
	sqlite3_close(s->db);
	free(s->path);
	free(s);
}

static const pv_store_methods sqlite_methods = {
	.version = PV_STORE_METHODS_VERSION,
	.close = sq_close,
	.begin = sq_begin,
	.commit = sq_commit,
	.rollback = sq_rollback,
	.request_put = sq_request_put,
	.request_get = sq_request_get,
	.request_list = sq_request_list,
	.machine_put = sq_machine_put,
	.machine_get = sq_machine_get,
	.machine_list = sq_machine_list,
	.template_in_use = sq_template_in_use,
	.kv_get = sq_kv_get,
	.kv_put = sq_kv_put,
};

/* mkdir -p of the directory holding `path`. */
static int make_parent(const char *path)
{
	char dir[PATH_MAX];
	snprintf(dir, sizeof dir, "%s", path);
	char *slash = strrchr(dir, '/');
	if (!slash || slash == dir)
		return 0;
	*slash = '\0';
	for (char *p = dir + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(dir, 0755) < 0 && errno != EEXIST)
			return pv_error_set(PV_EIO, "store: cannot create directory %s: %s", dir, strerror(errno));
		*p = '/';
	}
	if (mkdir(dir, 0755) < 0 && errno != EEXIST)
		return pv_error_set(PV_EIO, "store: cannot create directory %s: %s", dir, strerror(errno));
	return 0;
}

static int exec_sql(sqlite_store *s, const char *text, const char *what)
{
	char *err = NULL;
	if (sqlite3_exec(s->db, text, NULL, NULL, &err) != SQLITE_OK) {
		int rc = pv_error_set(PV_EIO, "store %s: %s: %s", s->path, what, err ? err : "?");
		sqlite3_free(err);
		return rc;
	}
	return 0;
}

/* The version recorded in the file; 0 when there is no schema yet. */
static int current_version(sqlite_store *s)
{
	sqlite3_stmt *q = NULL;
	int version = 0;
	if (sqlite3_prepare_v2(s->db, "SELECT MAX(version) FROM schema_version", -1, &q, NULL) ==
		    SQLITE_OK &&
	    sqlite3_step(q) == SQLITE_ROW)
		version = sqlite3_column_int(q, 0);
	sqlite3_finalize(q);
	return version;
}

/* Brings the schema to SCHEMA_VERSION in one write transaction, so two
 * processes opening a new file at once migrate it exactly once. The common
 * case (already current) only reads, so opening never queues behind a
 * writer. */
static int migrate(sqlite_store *s)
{
	if (current_version(s) == SCHEMA_VERSION)
		return 0;
	int rc = exec_sql(s, "BEGIN IMMEDIATE", "begin migration");
	if (rc < 0)
		return rc;
	rc = exec_sql(s, "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)",
		      "create schema_version");
	int version = rc == 0 ? current_version(s) : 0;
	if (rc == 0 && version > SCHEMA_VERSION)
		rc = pv_error_set(PV_EIO, "store %s: schema version %d is newer than this program's %d",
				  s->path, version, SCHEMA_VERSION);
	for (int v = version; rc == 0 && v < SCHEMA_VERSION; v++) {
		char what[64];
		snprintf(what, sizeof what, "migration %d -> %d", v, v + 1);
		rc = exec_sql(s, migrations[v], what);
	}
	if (rc == 0 && version < SCHEMA_VERSION) {
		char text[128];
		snprintf(text, sizeof text, "DELETE FROM schema_version; INSERT INTO schema_version VALUES (%d)",
			 SCHEMA_VERSION);
		rc = exec_sql(s, text, "write schema version");
	}
	if (rc == 0)
		return exec_sql(s, "COMMIT", "commit migration");
	exec_sql(s, "ROLLBACK", "rollback migration");
	return rc;
}

int pv_store_open_sqlite(pv_store **out, const char *path, const pv_store_options *opts)
{
	*out = NULL;
	if (!path || !*path)
		return pv_error_set(PV_EINVAL, "store: 'path' must be a non-empty file path");
	int rc = make_parent(path);
	if (rc < 0)
		return rc;
	sqlite_store *s = calloc(1, sizeof *s);
	if (!s || !(s->path = strdup(path))) {
		free(s);
		return pv_error_set(PV_ENOMEM, "out of memory");
	}
	s->base.methods = &sqlite_methods;
	int timeout = opts && opts->busy_timeout_ms > 0 ? opts->busy_timeout_ms : 10000;
	if (sqlite3_open_v2(path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
					      SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
		rc = s->db ? db_error(s, "open") : pv_error_set(PV_ENOMEM, "out of memory");
		sq_close(&s->base);
		return rc;
	}
	sqlite3_busy_timeout(s->db, timeout);
	/* Each Host Factory call is one short process, usually the only
	 * connection: by default its close would checkpoint (three fsyncs),
	 * truncate and delete the WAL, and the next process would create it
	 * again. Keep the WAL and leave checkpoints to the automatic ones made
	 * by commits; the data is as durable either way. */
	int persist = 1;
	sqlite3_file_control(s->db, "main", SQLITE_FCNTL_PERSIST_WAL, &persist);
	sqlite3_db_config(s->db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, NULL);
	rc = exec_sql(s, "PRAGMA journal_mode = WAL", "set WAL journal");
	if (rc == 0)
		rc = exec_sql(s, "PRAGMA synchronous = NORMAL", "set synchronous");
	if (rc == 0)
		rc = migrate(s);
	if (rc < 0) {
		sq_close(&s->base);
		return rc;
	}
	*out = &s->base;
	return 0;
}
