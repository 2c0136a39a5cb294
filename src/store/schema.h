/*
 * schema.h - the SQL every store runs, and the mapping between its rows
 * and the broker's records.
 *
 * The schema, its migrations and the queries are written once, in SQL that
 * SQLite and PostgreSQL both run unchanged (TEXT and BIGINT columns,
 * INSERT ... ON CONFLICT, COALESCE). Placeholders are '?'; the PostgreSQL
 * store numbers them ($1, $2, ...) when it prepares a statement. What
 * differs between the engines (transactions, locking, connections) stays in
 * each store's own file.
 */
#ifndef PV_STORE_SCHEMA_H
#define PV_STORE_SCHEMA_H

#include <stddef.h>
#include <stdint.h>
#include "provisio/store.h"

/* The queries, indexes into pv_store_sql. */
enum {
	PV_Q_REQ_PUT, PV_Q_REQ_GET, PV_Q_REQ_LIST, PV_Q_REQ_LIST_STATE, PV_Q_REQ_UNDELIVERED,
	PV_Q_M_PUT, PV_Q_M_GET_ID, PV_Q_M_GET_NAME,
	PV_Q_M_BY_REQ, PV_Q_M_BY_RET, PV_Q_M_BY_TEMPLATE, PV_Q_M_ALIVE, PV_Q_M_ALL, PV_Q_M_LEAVING,
	PV_Q_M_TAKEN_BACK,
	PV_Q_IN_USE_M, PV_Q_IN_USE_R, PV_Q_KV_GET, PV_Q_KV_PUT,
	PV_Q_COUNT
};

extern const char *const pv_store_sql[PV_Q_COUNT];

/* Migrations in order: pv_store_migrations[i] takes the schema from
 * version i to i + 1. */
extern const char *const pv_store_migrations[];
extern const int pv_store_migration_count;

/*
 * The steps of a migration, inside the caller's write transaction, once the
 * schema_version table exists: refuses a `version` newer than this
 * program's, runs the scripts from `version` to the newest through `exec`
 * (one script on the engine's connection `conn`), then records the newest
 * version. `where` names the store in messages. 0 or the first error.
 */
int pv_store_migrate(int version, const char *where, int (*exec)(void *conn, const char *sql, const char *what),
		     void *conn);

/* The list query of a machine filter; -1 (error set) for a bad filter. */
int pv_store_machine_query(pv_machine_filter f);
/* Whether that filter's query takes the key as its one parameter. */
int pv_store_machine_query_keyed(pv_machine_filter f);

/* How many parameters PV_Q_REQ_PUT and PV_Q_M_PUT take. */
#define PV_REQ_PARAMS 13
#define PV_M_PARAMS 15

/* One parameter of a put: text (never NULL) or an integer. */
typedef struct pv_store_param {
	const char *text; /* NULL for an integer */
	int64_t num;
} pv_store_param;

/* The PV_REQ_PARAMS parameters of PV_Q_REQ_PUT for `r`, in order. */
void pv_store_request_params(const pv_request_rec *r, pv_store_param out[PV_REQ_PARAMS]);
/* The PV_M_PARAMS parameters of PV_Q_M_PUT for `m`, in order. */
void pv_store_machine_params(const pv_machine_rec *m, pv_store_param out[PV_M_PARAMS]);

/* A row being read, whatever the engine: column i as text (NULL = SQL
 * NULL, length in *len) or as an integer. */
typedef struct pv_store_row {
	const char *(*text)(void *q, int i, size_t *len);
	int64_t (*num)(void *q, int i);
	void *q;
} pv_store_row;

/* A row of a request / machine query into a record (zeroed first; text
 * longer than its field is cut to fit). */
void pv_store_read_request(const pv_store_row *row, pv_request_rec *r);
void pv_store_read_machine(const pv_store_row *row, pv_machine_rec *m);

/* Room for record n of a request list being read (n == *cap: doubled).
 * 0, or PV_ENOMEM with *list freed and NULL. */
int pv_store_request_array_grow(pv_request_rec **list, size_t n, size_t *cap);

#endif
