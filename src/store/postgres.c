/*
 * postgres.c - the PostgreSQL store: one database shared by brokers on
 * several hosts (several `provisio serve` nodes, Host Factory commands
 * anywhere).
 *
 * It runs schema.c's SQL, so both stores answer the same queries from the
 * same tables. What is PostgreSQL's own:
 *
 * - Write transactions are serial, as SQLite's BEGIN IMMEDIATE makes them:
 *   each takes one transaction-scoped advisory lock first. The broker's
 *   read-check-write steps (claiming a queued request, reserving a
 *   template's capacity) were written for one writer at a time; the lock
 *   keeps them correct across nodes without SERIALIZABLE retry loops, and a
 *   crashed client's lock goes with its connection. Reads do not take it.
 * - Read transactions are REPEATABLE READ READ ONLY: one snapshot, like a
 *   WAL reader in SQLite, and a write by mistake is an error, not a race.
 * - lock_timeout plays the busy timeout: a writer waits that long for the
 *   lock, then fails with a clear error.
 * - Every statement is prepared once per connection ('?' numbered $1..$n
 *   here), parameters and results in text form.
 * - A connection lost between transactions is re-opened at the next begin.
 *
 * The connection string may hold a password: messages name the store by
 * host, port and database only.
 */
#include <inttypes.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "provisio/clock.h"
#include "provisio/error.h"
#include "provisio/store.h"
#include "store/schema.h"

/* Advisory lock keys (any 64-bit numbers no other program on the database
 * uses): "pvWRITE" and "pvMIGRA" in ASCII, 0x7076575249544500 and
 * 0x70764d4947524100, written in decimal for servers before 16. */
#define WRITE_LOCK_KEY "8103760590428980480"
#define MIGRATE_LOCK_KEY "8103749556624310528"

typedef struct pg_store {
	pv_store base;
	PGconn *conn;
	char where[256];            /* "postgresql://host:port/db", no secrets */
	bool prepared[PV_Q_COUNT];
} pg_store;

static pg_store *as_pg(pv_store *st) { return (pg_store *)st; }

/* The server's message, trimmed of its final newline. */
static int pg_fail(pg_store *s, const char *what, const PGresult *res)
{
	const char *msg = res ? PQresultErrorMessage(res) : "";
	if (!msg || !*msg)
		msg = PQerrorMessage(s->conn);
	int len = (int)strcspn(msg, "\n");
	const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	return pv_error_set(PV_EIO, "store %s: %s: %.*s%s%s%s", s->where, what, len, msg,
			    state ? " (sqlstate " : "", state ? state : "", state ? ")" : "");
}

/* Runs text with no parameters; 0 or PV_EIO. */
static int exec_sql(pg_store *s, const char *text, const char *what)
{
	PGresult *res = PQexec(s->conn, text);
	ExecStatusType st = PQresultStatus(res);
	int rc = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK ? 0 : pg_fail(s, what, res);
	PQclear(res);
	return rc;
}

/* `text` with each '?' numbered $1, $2, ... (schema.c's SQL has no '?' in
 * string literals). */
static char *numbered(const char *text, int *params)
{
	size_t n = strlen(text);
	char *out = malloc(n * 4 + 1);
	if (!out)
		return NULL;
	char *o = out;
	*params = 0;
	for (const char *p = text; *p; p++) {
		if (*p == '?')
			o += sprintf(o, "$%d", ++*params);
		else
			*o++ = *p;
	}
	*o = '\0';
	return out;
}

/*
 * The first use of query q on this connection: prepares and executes it in
 * one round trip (libpq's pipeline mode), where PQprepare then
 * PQexecPrepared would take two — a short Host Factory process uses most of
 * its statements once. The result of the execution, or NULL with the error
 * set (the prepare's when that failed).
 */
static PGresult *prepare_and_exec(pg_store *s, int q, const char *name, int n, const char *const *values)
{
	int params;
	char *text = numbered(pv_store_sql[q], &params);
	if (!text) {
		pv_error_set(PV_ENOMEM, "out of memory");
		return NULL;
	}
	bool sent = PQenterPipelineMode(s->conn) == 1 && PQsendPrepare(s->conn, name, text, params, NULL) == 1 &&
		    PQsendQueryPrepared(s->conn, name, n, values, NULL, NULL, 0) == 1 &&
		    PQpipelineSync(s->conn) == 1;
	free(text);
	/* answers: the prepare's, the execution's (each followed by NULL),
	 * then the sync; read to the sync whatever happened */
	PGresult *prep = NULL, *res = NULL;
	bool after_null = false;
	while (sent) {
		PGresult *r = PQgetResult(s->conn);
		if (!r) {
			/* a NULL ends one command's answers; two in a row: nothing comes */
			if (after_null || PQstatus(s->conn) != CONNECTION_OK)
				break;
			after_null = true;
			continue;
		}
		after_null = false;
		if (PQresultStatus(r) == PGRES_PIPELINE_SYNC) {
			PQclear(r);
			break;
		}
		if (!prep)
			prep = r;
		else if (!res)
			res = r;
		else
			PQclear(r);
	}
	PQexitPipelineMode(s->conn);
	if (!sent || PQresultStatus(prep) != PGRES_COMMAND_OK) {
		pg_fail(s, "prepare", prep);
		PQclear(prep);
		PQclear(res);
		return NULL;
	}
	PQclear(prep);
	s->prepared[q] = true;
	return res;
}

/*
 * Runs prepared query q with n parameters; *out holds the rows (the caller
 * PQclears it) or NULL with the error set. A parameter with text NULL is
 * its integer; `null_last` sends the last one as SQL NULL (no limit).
 */
static int run(pg_store *s, int q, const pv_store_param *p, int n, bool null_last,
	       const char *what, PGresult **out)
{
	*out = NULL;
	const char *values[PV_M_PARAMS];
	char nums[PV_M_PARAMS][24];
	for (int i = 0; i < n; i++) {
		if (p[i].text) {
			values[i] = p[i].text;
		} else {
			snprintf(nums[i], sizeof nums[i], "%" PRId64, p[i].num);
			values[i] = nums[i];
		}
	}
	if (null_last)
		values[n - 1] = NULL;
	char name[16];
	snprintf(name, sizeof name, "pv%d", q);
	PGresult *res = s->prepared[q] ? PQexecPrepared(s->conn, name, n, values, NULL, NULL, 0)
				       : prepare_and_exec(s, q, name, n, values);
	if (!res && !s->prepared[q])
		return PV_EIO; /* the prepare failed: its error is set */
	ExecStatusType st = PQresultStatus(res);
	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
		int rc = pg_fail(s, what, res);
		PQclear(res);
		return rc;
	}
	*out = res;
	return 0;
}

/* One-text-parameter query. */
static int run_key(pg_store *s, int q, const char *key, const char *what, PGresult **out)
{
	pv_store_param p = {.text = key ? key : ""};
	return run(s, q, &p, 1, false, what, out);
}

static int run_done(pg_store *s, int q, const pv_store_param *p, int n, const char *what)
{
	PGresult *res;
	int rc = run(s, q, p, n, false, what, &res);
	PQclear(res);
	return rc;
}

typedef struct pg_row {
	PGresult *res;
	int row;
} pg_row;

static const char *row_text(void *q, int i, size_t *len)
{
	pg_row *r = q;
	if (PQgetisnull(r->res, r->row, i)) {
		*len = 0;
		return NULL;
	}
	*len = (size_t)PQgetlength(r->res, r->row, i);
	return PQgetvalue(r->res, r->row, i);
}

static int64_t row_num(void *q, int i)
{
	pg_row *r = q;
	return strtoll(PQgetvalue(r->res, r->row, i), NULL, 10);
}

/* ---- transactions ------------------------------------------------------- */

/* A connection lost between transactions is opened again: a restarted or
 * failed-over server costs the daemon one error, not its store. */
static int reconnect_if_lost(pg_store *s)
{
	if (PQstatus(s->conn) == CONNECTION_OK)
		return 0;
	PQreset(s->conn);
	memset(s->prepared, 0, sizeof s->prepared);
	if (PQstatus(s->conn) != CONNECTION_OK)
		return pg_fail(s, "reconnect", NULL);
	return 0;
}

static int pq_begin(pv_store *st, bool write)
{
	pg_store *s = as_pg(st);
	int rc = reconnect_if_lost(s);
	if (rc < 0)
		return rc;
	if (!write)
		return exec_sql(s, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", "begin");
	rc = exec_sql(s, "BEGIN ISOLATION LEVEL READ COMMITTED; "
			 "SELECT pg_advisory_xact_lock(" WRITE_LOCK_KEY ")", "begin (write lock)");
	if (rc < 0 && PQtransactionStatus(s->conn) != PQTRANS_IDLE)
		exec_sql(s, "ROLLBACK", "rollback");
	return rc;
}

static void pq_rollback(pv_store *st)
{
	pg_store *s = as_pg(st);
	if (PQtransactionStatus(s->conn) != PQTRANS_IDLE)
		exec_sql(s, "ROLLBACK", "rollback");
}

static int pq_commit(pv_store *st)
{
	pg_store *s = as_pg(st);
	/* COMMIT of a failed transaction "succeeds" as a ROLLBACK: say so */
	if (PQtransactionStatus(s->conn) == PQTRANS_INERROR) {
		pq_rollback(st);
		return pv_error_set(PV_EIO, "store %s: commit: the transaction had failed; rolled back",
				    s->where);
	}
	int rc = exec_sql(s, "COMMIT", "commit");
	if (rc < 0)
		pq_rollback(st);
	return rc;
}

/* ---- requests and machines ------------------------------------------------- */

static int pq_request_put(pv_store *st, const pv_request_rec *r)
{
	pv_store_param p[PV_REQ_PARAMS];
	pv_store_request_params(r, p);
	return run_done(as_pg(st), PV_Q_REQ_PUT, p, PV_REQ_PARAMS, "write request");
}

static int pq_request_get(pv_store *st, const char *id, pv_request_rec *out)
{
	PGresult *res;
	int rc = run_key(as_pg(st), PV_Q_REQ_GET, id, "read request", &res);
	if (rc < 0)
		return rc;
	if (PQntuples(res) == 0)
		rc = pv_error_set(PV_ENOTFOUND, "no request '%s'", id);
	else
		pv_store_read_request(&(pv_store_row){row_text, row_num, &(pg_row){res, 0}}, out);
	PQclear(res);
	return rc;
}

/* The rows of a request query's result into a new array; frees `res`. */
static int read_requests(PGresult *res, pv_request_rec **out, size_t *n)
{
	size_t rows = (size_t)PQntuples(res), cap = 0;
	for (size_t i = 0; i < rows; i++) {
		if (pv_store_request_array_grow(out, i, &cap) < 0) {
			PQclear(res);
			return PV_ENOMEM;
		}
		pv_store_read_request(&(pv_store_row){row_text, row_num, &(pg_row){res, (int)i}},
				      &(*out)[i]);
	}
	*n = rows;
	PQclear(res);
	return 0;
}

static int pq_request_list(pv_store *st, int state, size_t limit, pv_request_rec **out, size_t *n)
{
	*out = NULL;
	*n = 0;
	pv_store_param p[2] = {{.text = pv_request_state_name((pv_request_state)state)},
			       {.num = (int64_t)limit}};
	pv_store_param *from = state < 0 ? p + 1 : p;
	PGresult *res;
	int rc = run(as_pg(st), state < 0 ? PV_Q_REQ_LIST : PV_Q_REQ_LIST_STATE, from,
		     state < 0 ? 1 : 2, limit == 0, "list requests", &res);
	return rc < 0 ? rc : read_requests(res, out, n);
}

static int pq_request_list_undelivered(pv_store *st, int64_t before_ms, pv_request_rec **out, size_t *n)
{
	*out = NULL;
	*n = 0;
	pv_store_param p = {.num = before_ms};
	PGresult *res;
	int rc = run(as_pg(st), PV_Q_REQ_UNDELIVERED, &p, 1, false, "list undelivered requests", &res);
	return rc < 0 ? rc : read_requests(res, out, n);
}

static int pq_machine_put(pv_store *st, const pv_machine_rec *m)
{
	pv_store_param p[PV_M_PARAMS];
	pv_store_machine_params(m, p);
	return run_done(as_pg(st), PV_Q_M_PUT, p, PV_M_PARAMS, "write machine");
}

static int pq_machine_get(pv_store *st, const char *id, const char *name, pv_machine_rec *out)
{
	PGresult *res;
	int rc = run_key(as_pg(st), id ? PV_Q_M_GET_ID : PV_Q_M_GET_NAME, id ? id : name,
			 "read machine", &res);
	if (rc < 0)
		return rc;
	if (PQntuples(res) == 0)
		rc = pv_error_set(PV_ENOTFOUND, "no machine '%s'", id ? id : name ? name : "");
	else
		pv_store_read_machine(&(pv_store_row){row_text, row_num, &(pg_row){res, 0}}, out);
	PQclear(res);
	return rc;
}

static int pq_machine_list(pv_store *st, pv_machine_filter f, const char *key, pv_machine_list *out)
{
	int which = pv_store_machine_query(f);
	if (which < 0)
		return which;
	pv_store_param p = {.text = key ? key : ""};
	PGresult *res;
	int rc = run(as_pg(st), which, &p, pv_store_machine_query_keyed(f) ? 1 : 0, false,
		     "list machines", &res);
	if (rc < 0)
		return rc;
	pv_machine_rec m;
	for (int i = 0; rc == 0 && i < PQntuples(res); i++) {
		pv_store_read_machine(&(pv_store_row){row_text, row_num, &(pg_row){res, i}}, &m);
		rc = pv_machine_list_push(out, &m);
	}
	PQclear(res);
	return rc;
}

static int count_query(pg_store *s, int q, const char *key, int64_t *out)
{
	PGresult *res;
	int rc = run_key(s, q, key, "count machines", &res);
	if (rc == 0)
		*out = PQntuples(res) ? row_num(&(pg_row){res, 0}, 0) : 0;
	PQclear(res);
	return rc;
}

static int pq_template_in_use(pv_store *st, const char *template_id, int64_t *out)
{
	int64_t machines = 0, reserved = 0;
	int rc = count_query(as_pg(st), PV_Q_IN_USE_M, template_id, &machines);
	if (rc == 0)
		rc = count_query(as_pg(st), PV_Q_IN_USE_R, template_id, &reserved);
	*out = machines + reserved;
	return rc;
}

/* ---- key/value ------------------------------------------------------------ */

static int pq_kv_get(pv_store *st, const char *key, char **value)
{
	*value = NULL;
	PGresult *res;
	int rc = run_key(as_pg(st), PV_Q_KV_GET, key, "read key", &res);
	if (rc < 0)
		return rc;
	if (PQntuples(res) == 0)
		rc = pv_error_set(PV_ENOTFOUND, "no key '%s'", key);
	else if (!(*value = strdup(PQgetvalue(res, 0, 0))))
		rc = pv_error_set(PV_ENOMEM, "out of memory");
	PQclear(res);
	return rc;
}

static int pq_kv_put(pv_store *st, const char *key, const char *value)
{
	pv_store_param p[3] = {{.text = key ? key : ""}, {.text = value ? value : ""},
			       {.num = pv_wall_ms()}};
	return run_done(as_pg(st), PV_Q_KV_PUT, p, 3, "write key");
}

/* ---- open, migrate, close ----------------------------------------------- */

static void pq_close(pv_store *st)
{
	pg_store *s = as_pg(st);
	if (PQstatus(s->conn) == CONNECTION_OK)
		pq_rollback(st);
	PQfinish(s->conn);
	free(s);
}

static const pv_store_methods postgres_methods = {
	.version = PV_STORE_METHODS_VERSION,
	.close = pq_close,
	.begin = pq_begin,
	.commit = pq_commit,
	.rollback = pq_rollback,
	.request_put = pq_request_put,
	.request_get = pq_request_get,
	.request_list = pq_request_list,
	.request_list_undelivered = pq_request_list_undelivered,
	.machine_put = pq_machine_put,
	.machine_get = pq_machine_get,
	.machine_list = pq_machine_list,
	.template_in_use = pq_template_in_use,
	.kv_get = pq_kv_get,
	.kv_put = pq_kv_put,
};

static int exec_conn(void *s, const char *text, const char *what) { return exec_sql(s, text, what); }

/* The version recorded in the database; 0 when there is no schema yet. */
static int current_version(pg_store *s)
{
	/* asked first so a new database costs no error in the server's log */
	PGresult *res = PQexec(s->conn, "SELECT to_regclass('schema_version') IS NOT NULL");
	bool exists = PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1 &&
		      PQgetvalue(res, 0, 0)[0] == 't';
	PQclear(res);
	if (!exists)
		return 0;
	res = PQexec(s->conn, "SELECT MAX(version) FROM schema_version");
	int version = PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1 &&
			      !PQgetisnull(res, 0, 0)
			      ? atoi(PQgetvalue(res, 0, 0))
			      : 0;
	PQclear(res);
	return version;
}

/* Brings the schema to the newest version in one transaction under an
 * advisory lock, so nodes starting together migrate exactly once; DDL is
 * transactional in PostgreSQL, so a failed step leaves the old schema. */
static int migrate(pg_store *s)
{
	if (current_version(s) == pv_store_migration_count)
		return 0;
	int rc = exec_sql(s, "BEGIN; SELECT pg_advisory_xact_lock(" MIGRATE_LOCK_KEY "); "
			     "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)",
			  "begin migration");
	if (rc == 0)
		rc = pv_store_migrate(current_version(s), s->where, exec_conn, s);
	if (rc == 0)
		return exec_sql(s, "COMMIT", "commit migration");
	pq_rollback(&s->base);
	return rc;
}

int pv_store_open_postgres(pv_store **out, const char *url, const pv_store_options *opts)
{
	*out = NULL;
	if (!pv_store_location_is_postgres(url))
		return pv_error_set(PV_EINVAL, "store: 'url' must start with postgresql:// or postgres://");
	pg_store *s = calloc(1, sizeof *s);
	if (!s)
		return pv_error_set(PV_ENOMEM, "out of memory");
	s->base.methods = &postgres_methods;
	/* defaults first: the URL's own parameters override them */
	static const char *const keys[] = {"application_name", "connect_timeout", "dbname", NULL};
	const char *const values[] = {"provisio", "10", url, NULL};
	s->conn = PQconnectdbParams(keys, values, 1);
	if (!s->conn) {
		free(s);
		return pv_error_set(PV_ENOMEM, "out of memory");
	}
	if (PQstatus(s->conn) != CONNECTION_OK) {
		/* libpq's message names host and user, never the password */
		snprintf(s->where, sizeof s->where, "postgresql");
		int rc = pg_fail(s, "connect", NULL);
		pq_close(&s->base);
		return rc;
	}
	snprintf(s->where, sizeof s->where, "postgresql://%s:%s/%s", PQhost(s->conn), PQport(s->conn),
		 PQdb(s->conn));
	int timeout = opts && opts->busy_timeout_ms > 0 ? opts->busy_timeout_ms : 10000;
	char set[96];
	snprintf(set, sizeof set, "SET lock_timeout = %d; SET client_min_messages = warning", timeout);
	int rc = exec_sql(s, set, "set lock_timeout");
	if (rc == 0)
		rc = migrate(s);
	if (rc < 0) {
		pq_close(&s->base);
		return rc;
	}
	*out = &s->base;
	return 0;
}
