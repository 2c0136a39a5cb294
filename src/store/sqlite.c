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
#include "provisio/log.h"
#include "provisio/store.h"
#include "store/schema.h"

/* Transactions: statements of this file only (the queries are schema.c's). */
enum { T_BEGIN_R, T_BEGIN_W, T_COMMIT, T_ROLLBACK, T_COUNT };
static const char *const tx_sql[T_COUNT] = {"BEGIN", "BEGIN IMMEDIATE", "COMMIT", "ROLLBACK"};
#define Q_COUNT (PV_Q_COUNT + T_COUNT)

typedef struct sqlite_store {
	pv_store base;
	sqlite3 *db;
	char *path;
	sqlite3_stmt *stmt[Q_COUNT]; /* queries, then transactions */
} sqlite_store;

static sqlite_store *as_sq(pv_store *st) { return (sqlite_store *)st; }

static int db_error(sqlite_store *s, const char *what)
{
	int code = sqlite3_extended_errcode(s->db);
	return pv_error_set(PV_EIO, "store %s: %s: %s (sqlite %d)", s->path, what,
			    sqlite3_errmsg(s->db), code);
}

/* The cached statement `q` (a PV_Q_* query, or PV_Q_COUNT + a T_*
 * transaction statement), reset and unbound; NULL with the error set. */
static sqlite3_stmt *stmt(sqlite_store *s, int q)
{
	if (!s->stmt[q]) {
		const char *text = q < PV_Q_COUNT ? pv_store_sql[q] : tx_sql[q - PV_Q_COUNT];
		if (sqlite3_prepare_v3(s->db, text, -1, SQLITE_PREPARE_PERSISTENT, &s->stmt[q], NULL) !=
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

static void bind_params(sqlite3_stmt *q, const pv_store_param *p, int n)
{
	for (int i = 0; i < n; i++) {
		if (p[i].text)
			bind_text(q, i + 1, p[i].text);
		else
			sqlite3_bind_int64(q, i + 1, p[i].num);
	}
}

static const char *row_text(void *q, int i, size_t *len)
{
	const char *t = (const char *)sqlite3_column_text(q, i);
	*len = t ? (size_t)sqlite3_column_bytes(q, i) : 0;
	return t;
}

static int64_t row_num(void *q, int i) { return sqlite3_column_int64(q, i); }

/* ---- transactions ------------------------------------------------------- */

static int sq_begin(pv_store *st, bool write)
{
	sqlite_store *s = as_sq(st);
	sqlite3_stmt *q = stmt(s, PV_Q_COUNT + (write ? T_BEGIN_W : T_BEGIN_R));
	return q ? run_done(s, q, "begin") : PV_EIO;
}

static void sq_rollback(pv_store *st)
{
	sqlite_store *s = as_sq(st);
	if (sqlite3_get_autocommit(s->db))
		return;
	sqlite3_stmt *q = stmt(s, PV_Q_COUNT + T_ROLLBACK);
	if (q)
		run_done(s, q, "rollback");
}

static int sq_commit(pv_store *st)
{
	sqlite_store *s = as_sq(st);
	sqlite3_stmt *q = stmt(s, PV_Q_COUNT + T_COMMIT);
	int rc = q ? run_done(s, q, "commit") : PV_EIO;
	if (rc < 0)
		sq_rollback(st);
	return rc;
}

/* ---- requests ------------------------------------------------------------- */

static int sq_request_put(pv_store *st, const pv_request_rec *r)
{
	sqlite_store *s = as_sq(st);
	sqlite3_stmt *q = stmt(s, PV_Q_REQ_PUT);
	if (!q)
		return PV_EIO;
	pv_store_param p[PV_REQ_PARAMS];
	pv_store_request_params(r, p);
	bind_params(q, p, PV_REQ_PARAMS);
	return run_done(s, q, "write request");
}

static int sq_request_get(pv_store *st, const char *id, pv_request_rec *out)
{
	sqlite_store *s = as_sq(st);
	sqlite3_stmt *q = stmt(s, PV_Q_REQ_GET);
	if (!q)
		return PV_EIO;
	bind_text(q, 1, id);
	int rc = sqlite3_step(q);
	if (rc == SQLITE_ROW)
		pv_store_read_request(&(pv_store_row){row_text, row_num, q}, out);
	sqlite3_reset(q);
	if (rc == SQLITE_DONE)
		return pv_error_set(PV_ENOTFOUND, "no request '%s'", id);
	return rc == SQLITE_ROW ? 0 : db_error(s, "read request");
}

/* The rows of a bound request query into a new array. */
static int read_requests(sqlite_store *s, sqlite3_stmt *q, pv_request_rec **out, size_t *n)
{
	size_t cap = 0;
	int rc;
	while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
		if (pv_store_request_array_grow(out, *n, &cap) < 0) {
			sqlite3_reset(q);
			*n = 0;
			return PV_ENOMEM;
		}
		pv_store_read_request(&(pv_store_row){row_text, row_num, q}, &(*out)[(*n)++]);
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

static int sq_request_list(pv_store *st, int state, size_t limit, pv_request_rec **out, size_t *n)
{
	sqlite_store *s = as_sq(st);
	*out = NULL;
	*n = 0;
	sqlite3_stmt *q = stmt(s, state < 0 ? PV_Q_REQ_LIST : PV_Q_REQ_LIST_STATE);
	if (!q)
		return PV_EIO;
	int i = 1;
	if (state >= 0)
		bind_text(q, i++, pv_request_state_name((pv_request_state)state));
	sqlite3_bind_int64(q, i, limit ? (sqlite3_int64)limit : -1); /* -1: no limit */
	return read_requests(s, q, out, n);
}

static int sq_request_list_undelivered(pv_store *st, int64_t before_ms, pv_request_rec **out, size_t *n)
{
	sqlite_store *s = as_sq(st);
	*out = NULL;
	*n = 0;
	sqlite3_stmt *q = stmt(s, PV_Q_REQ_UNDELIVERED);
	if (!q)
		return PV_EIO;
	sqlite3_bind_int64(q, 1, (sqlite3_int64)before_ms);
	return read_requests(s, q, out, n);
}

/* ---- machines ------------------------------------------------------------- */

static int sq_machine_put(pv_store *st, const pv_machine_rec *m)
{
	sqlite_store *s = as_sq(st);
	sqlite3_stmt *q = stmt(s, PV_Q_M_PUT);
	if (!q)
		return PV_EIO;
	pv_store_param p[PV_M_PARAMS];
	pv_store_machine_params(m, p);
	bind_params(q, p, PV_M_PARAMS);
	return run_done(s, q, "write machine");
}

static int sq_machine_get(pv_store *st, const char *id, const char *name, pv_machine_rec *out)
{
	sqlite_store *s = as_sq(st);
	sqlite3_stmt *q = stmt(s, id ? PV_Q_M_GET_ID : PV_Q_M_GET_NAME);
	if (!q)
		return PV_EIO;
	bind_text(q, 1, id ? id : name);
	int rc = sqlite3_step(q);
	if (rc == SQLITE_ROW)
		pv_store_read_machine(&(pv_store_row){row_text, row_num, q}, out);
	sqlite3_reset(q);
	if (rc == SQLITE_DONE)
		return pv_error_set(PV_ENOTFOUND, "no machine '%s'", id ? id : name ? name : "");
	return rc == SQLITE_ROW ? 0 : db_error(s, "read machine");
}

static int sq_machine_list(pv_store *st, pv_machine_filter f, const char *key, pv_machine_list *out)
{
	sqlite_store *s = as_sq(st);
	int which = pv_store_machine_query(f);
	if (which < 0)
		return which;
	sqlite3_stmt *q = stmt(s, which);
	if (!q)
		return PV_EIO;
	if (pv_store_machine_query_keyed(f))
		bind_text(q, 1, key);
	int rc;
	pv_machine_rec m;
	while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
		pv_store_read_machine(&(pv_store_row){row_text, row_num, q}, &m);
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
	int rc = count_query(s, PV_Q_IN_USE_M, template_id, &machines);
	if (rc == 0)
		rc = count_query(s, PV_Q_IN_USE_R, template_id, &reserved);
	*out = machines + reserved;
	return rc;
}

/* ---- key/value ------------------------------------------------------------ */

static int sq_kv_get(pv_store *st, const char *key, char **value)
{
	sqlite_store *s = as_sq(st);
	*value = NULL;
	sqlite3_stmt *q = stmt(s, PV_Q_KV_GET);
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
	sqlite3_stmt *q = stmt(s, PV_Q_KV_PUT);
	if (!q)
		return PV_EIO;
	bind_text(q, 1, key);
	bind_text(q, 2, value);
	sqlite3_bind_int64(q, 3, pv_wall_ms());
	return run_done(s, q, "write key");
}

/* ---- open, migrate, close ----------------------------------------------- */

/*
 * Empties the WAL a closing connection leaves past PV_SQLITE_WAL_KEEP_BYTES.
 * The WAL is kept between processes (open: no checkpoint on close), but
 * the first process to open the store rebuilds the WAL's index by reading
 * all of it, and the rebuilt index no longer knows what was checkpointed,
 * so a WAL nobody empties never starts again from the top: it grew by
 * every Host Factory call (25 KiB each: 7.5 MB after 300 getReturnRequests)
 * and past 1,000 frames every commit copied the database back with three
 * fsyncs. A TRUNCATE checkpoint now and then (every ~40 calls) costs less,
 * and waits for nobody: with another connection busy, a later close does it.
 */
static void trim_wal(sqlite_store *s)
{
	const char *db = sqlite3_db_filename(s->db, "main");
	char wal[PATH_MAX];
	struct stat sb;
	if (!db || !*db || (size_t)snprintf(wal, sizeof wal, "%s-wal", db) >= sizeof wal ||
	    stat(wal, &sb) < 0 || sb.st_size <= PV_SQLITE_WAL_KEEP_BYTES)
		return;
	sqlite3_busy_timeout(s->db, 0);
	int rc = sqlite3_wal_checkpoint_v2(s->db, "main", SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL);
	if (rc != SQLITE_OK && rc != SQLITE_BUSY)
		pv_log(PV_LOG_WARN, "store: emptying the WAL of %s failed: %s", db, sqlite3_errmsg(s->db));
}

static void sq_close(pv_store *st)
{
	sqlite_store *s = as_sq(st);
	if (st->in_tx)
		sq_rollback(st);
	trim_wal(s);
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
	.request_list_undelivered = sq_request_list_undelivered,
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

static int exec_conn(void *s, const char *text, const char *what) { return exec_sql(s, text, what); }

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

/* Brings the schema to the newest version in one write transaction, so two
 * processes opening a new file at once migrate it exactly once. The common
 * case (already current) only reads, so opening never queues behind a
 * writer. */
static int migrate(sqlite_store *s)
{
	if (current_version(s) == pv_store_migration_count)
		return 0;
	int rc = exec_sql(s, "BEGIN IMMEDIATE", "begin migration");
	if (rc < 0)
		return rc;
	rc = exec_sql(s, "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)",
		      "create schema_version");
	if (rc == 0)
		rc = pv_store_migrate(current_version(s), s->path, exec_conn, s);
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
	 * by commits, and to a close that finds it grown (trim_wal); the data
	 * is as durable either way. */
	int persist = 1;
	sqlite3_file_control(s->db, "main", SQLITE_FCNTL_PERSIST_WAL, &persist);
	sqlite3_db_config(s->db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, NULL);
	rc = exec_sql(s, "PRAGMA journal_mode = WAL", "set WAL journal");
	if (rc == 0)
		rc = exec_sql(s, "PRAGMA synchronous = NORMAL", "set synchronous");
	/* a WAL started again from the top (by a checkpoint that found no
	 * reader behind it) is cut back to the size trim_wal keeps, so its size
	 * says how much was written since */
	char limit[64];
	snprintf(limit, sizeof limit, "PRAGMA journal_size_limit = %d", PV_SQLITE_WAL_KEEP_BYTES);
	if (rc == 0)
		rc = exec_sql(s, limit, "set the WAL size limit");
	if (rc == 0)
		rc = migrate(s);
	if (rc < 0) {
		sq_close(&s->base);
		return rc;
	}
	*out = &s->base;
	return 0;
}
