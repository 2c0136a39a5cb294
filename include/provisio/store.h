/*
 * store.h - where the broker keeps requests, machines and kernel state.
 *
 * Host Factory runs one short process per call, many at once, so every fact
 * the broker needs between calls lives in a store that many processes share.
 * Like SQLite's VFS, a store is an object whose first member points at a
 * versioned method table; the SQLite implementation comes first
 * (pv_store_open_sqlite), a PostgreSQL one can follow with the same table, so
 * the SQL stays portable (no SQLite-only functions in the queries; the
 * pragmas and BEGIN IMMEDIATE live only in the SQLite file).
 *
 * Records are plain structs with fixed-size strings: reading a thousand
 * machines allocates nothing per machine but the array.
 *
 * Every state change runs between pv_store_begin(st, true) and
 * pv_store_commit: a process killed in the middle leaves the store as it
 * was before the transaction.
 */
#ifndef PROVISIO_STORE_H
#define PROVISIO_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define PV_STORE_ID_MAX 128
#define PV_STORE_NAME_MAX 256
#define PV_STORE_SHORT_MAX 64
#define PV_STORE_MESSAGE_MAX 512
/* Longest store location (file path or URL) the broker and server keep. */
#define PV_STORE_LOCATION_MAX 4096

/* The life of a request (docs/broker.md has the diagram). */
typedef enum pv_request_state {
	PV_REQ_CREATING = 0,        /* written; provider calls in flight */
	PV_REQ_RUNNING,             /* machines recorded; some not ready/gone yet */
	PV_REQ_COMPLETE,            /* everything asked for is done */
	PV_REQ_COMPLETE_WITH_ERROR, /* done, short of what was asked */
	PV_REQ_FAILED,              /* nothing done (refused, or interrupted) */
	PV_REQ_QUEUED,              /* written for a daemon to do (provisio serve);
				       owner_pid: the process doing it, 0 = nobody yet */
	PV_REQ_STATE_COUNT
} pv_request_state;

/* "creating", "running", "complete", "complete_with_error", "failed",
 * "queued". Static. */
const char *pv_request_state_name(pv_request_state s);
/* 0 or PV_EINVAL listing the valid names. */
int pv_request_state_parse(const char *name, pv_request_state *out);
/* True when the state machine allows from -> to (same state included). */
bool pv_request_state_can_move(pv_request_state from, pv_request_state to);
/* True for complete, complete_with_error and failed. */
bool pv_request_state_final(pv_request_state s);
/* True for queued and creating: no outcome recorded yet (a status refresh
 * has nothing to derive from; machines may still appear under its id). */
bool pv_request_state_unsettled(pv_request_state s);

typedef enum pv_request_kind { PV_REQ_ACQUIRE = 0, PV_REQ_RETURN, PV_REQ_KIND_COUNT } pv_request_kind;
/* "acquire", "return". Static. */
const char *pv_request_kind_name(pv_request_kind k);
int pv_request_kind_parse(const char *name, pv_request_kind *out);

typedef struct pv_request_rec {
	char id[PV_STORE_SHORT_MAX];           /* req-<uuid> / ret-<uuid> */
	pv_request_kind kind;
	pv_request_state state;
	char template_id[PV_STORE_ID_MAX];     /* acquire only */
	char strategy[PV_STORE_SHORT_MAX];     /* the template's strategy */
	int64_t requested;                     /* machines asked for */
	char message[PV_STORE_MESSAGE_MAX];
	int64_t owner_pid;                     /* process that created it */
	char owner_node[PV_STORE_NAME_MAX];    /* where owner_pid lives: "<host> <pid namespace>";
						  "" = unknown (written before the
						  store recorded it) */
	int64_t created_ms, updated_ms;        /* wall clock, epoch ms */
	int64_t refreshed_ms;                  /* last refresh from providers; 0 = never */
	int64_t delivered_ms;                  /* when its id reached someone (the caller
						  printed it, a status was read); 0 = not
						  known to have; -1 = never did, its machines
						  were reclaimed. Once set, a put keeps it. */
} pv_request_rec;

/* Machine status strings are Host Factory's: pending, running, stopping,
 * stopped, shutting-down, terminated. Results: executing, succeed, fail. */
typedef struct pv_machine_rec {
	char machine_id[PV_STORE_ID_MAX];
	char request_id[PV_STORE_SHORT_MAX];   /* the acquire request */
	char return_id[PV_STORE_SHORT_MAX];    /* "" until returned */
	char template_id[PV_STORE_ID_MAX];
	char provider[PV_STORE_SHORT_MAX];     /* the leaf strategy that owns it */
	char name[PV_STORE_NAME_MAX];          /* host name */
	char private_ip[PV_STORE_SHORT_MAX];
	char public_ip[PV_STORE_SHORT_MAX];
	char status[24];
	char result[16];
	char instance_type[PV_STORE_SHORT_MAX];
	char price_type[16];
	char message[PV_STORE_MESSAGE_MAX];
	int64_t launch_time;                   /* epoch seconds */
	int64_t updated_ms;
} pv_machine_rec;

/* A growable array of machines, owned by whoever holds it. */
typedef struct pv_machine_list {
	pv_machine_rec *items;
	size_t n, cap;
} pv_machine_list;

/* Appends a copy; 0 or PV_ENOMEM. */
int pv_machine_list_push(pv_machine_list *l, const pv_machine_rec *m);
void pv_machine_list_clear(pv_machine_list *l);

/* Which machines a list call returns. */
typedef enum pv_machine_filter {
	PV_MF_REQUEST = 0, /* key = acquire request id */
	PV_MF_RETURN,      /* key = return request id */
	PV_MF_TEMPLATE,    /* key = template id, not terminated */
	PV_MF_ALIVE,       /* key ignored: every machine not terminated */
	PV_MF_ALL,         /* key ignored */
	PV_MF_LEAVING,     /* key ignored: failed, not returned, not yet terminated
			      (machines the broker is releasing itself) */
	PV_MF_TAKEN_BACK,  /* key ignored: terminated, not returned, not failed
			      (machines their provider took back: a spot
			      interruption, a termination outside provisio) */
	PV_MF_COUNT
} pv_machine_filter;

/* "request", "return", "template", "alive", "all", "leaving",
 * "taken_back". Static. */
const char *pv_machine_filter_name(pv_machine_filter f);
/* 0 or PV_EINVAL listing the valid names. */
int pv_machine_filter_parse(const char *name, pv_machine_filter *out);

typedef struct pv_store pv_store;

#define PV_STORE_METHODS_VERSION 2

typedef struct pv_store_methods {
	int version; /* PV_STORE_METHODS_VERSION */
	void (*close)(pv_store *st);
	/* write = true takes the write lock now (no upgrade deadlocks later). */
	int (*begin)(pv_store *st, bool write);
	int (*commit)(pv_store *st);
	void (*rollback)(pv_store *st);

	/* Insert or replace by id. */
	int (*request_put)(pv_store *st, const pv_request_rec *r);
	/* 0, or PV_ENOTFOUND. */
	int (*request_get)(pv_store *st, const char *id, pv_request_rec *out);
	/* Requests newest first, `state` < 0 for any; at most `limit` (0 = all).
	 * *out is a new calloc'd array the caller frees. */
	int (*request_list)(pv_store *st, int state, size_t limit, pv_request_rec **out, size_t *n);

	/* Insert or replace by machine_id. */
	int (*machine_put)(pv_store *st, const pv_machine_rec *m);
	/* By machine id, or by host name when id is NULL. 0 or PV_ENOTFOUND. */
	int (*machine_get)(pv_store *st, const char *id, const char *name, pv_machine_rec *out);
	/* Appends the matching machines to `out` (ordered by machine id). */
	int (*machine_list)(pv_store *st, pv_machine_filter f, const char *key, pv_machine_list *out);
	/* Machines of a template not terminated and not failed (a failed machine
	 * is being released by the broker, it is no longer Host Factory's), plus
	 * the machines reserved by its requests still in "creating". */
	int (*template_in_use)(pv_store *st, const char *template_id, int64_t *out);

	/* Key/value for kernel state. get: 0 and a malloc'd string the caller
	 * frees, or PV_ENOTFOUND. */
	int (*kv_get)(pv_store *st, const char *key, char **value);
	int (*kv_put)(pv_store *st, const char *key, const char *value);

	/* Version 2. Acquire requests settled (neither queued nor creating)
	 * whose id was never delivered (delivered_ms 0), created before
	 * `before_ms`, oldest first. *out is a new calloc'd array the caller
	 * frees. */
	int (*request_list_undelivered)(pv_store *st, int64_t before_ms, pv_request_rec **out, size_t *n);
} pv_store_methods;

struct pv_store {
	const pv_store_methods *methods;
	int in_tx; /* 0 none, 1 read, 2 write */
};

typedef struct pv_store_options {
	int busy_timeout_ms; /* how long to wait for another writer; 0 = 10000 */
} pv_store_options;

/* The WAL a SQLite store keeps between processes: a connection that closes
 * with more than this checkpoints it and empties it (when nobody else is
 * busy with the store). */
#define PV_SQLITE_WAL_KEEP_BYTES (1024 * 1024)

/*
 * Opens (creating when missing, with its parent directory) the SQLite store
 * at `path`: WAL journal, busy timeout, schema migrated to the newest
 * version. `opts` may be NULL. *out is owned by the caller: pv_store_close.
 * 0, PV_EIO (cannot open, corrupt, newer schema than this program knows) or
 * PV_ENOMEM.
 */
int pv_store_open_sqlite(pv_store **out, const char *path, const pv_store_options *opts);

/*
 * Opens the PostgreSQL store at `url` (postgresql://user:password@host:port/db?...,
 * libpq's URI form), creating or migrating its tables. Brokers on several
 * hosts may share it: write transactions are serialised by an advisory
 * lock, reads see one snapshot. `opts->busy_timeout_ms` bounds the wait for
 * that lock. The password never appears in messages. 0, PV_EINVAL (not
 * such a URL), PV_EIO (cannot connect, newer schema) or PV_ENOMEM.
 * In the postgres module (provisio-postgres.so), not in the program:
 * call pv_store_open.
 */
int pv_store_open_postgres(pv_store **out, const char *url, const pv_store_options *opts);

/* Whether `location` is a PostgreSQL URL (postgresql:// or postgres://). */
bool pv_store_location_is_postgres(const char *location);

/*
 * Opens the store at `location`: a PostgreSQL URL (loading the postgres
 * module on first use, util/module.h), else a SQLite file path. Same
 * returns as the opener it picks, and those of pv_module_load.
 */
int pv_store_open(pv_store **out, const char *location, const pv_store_options *opts);

typedef int (*pv_store_opener)(pv_store **out, const char *location, const pv_store_options *opts);
/* The postgres module registers pv_store_open_postgres here as it loads. */
int pv_store_register_postgres(pv_store_opener open);

/* The schema version this build writes. */
int pv_store_schema_version(void);

/* Dispatch helpers (thin, so callers never touch the table). */
void pv_store_close(pv_store *st);
int pv_store_begin(pv_store *st, bool write);
int pv_store_commit(pv_store *st);
void pv_store_rollback(pv_store *st);
int pv_store_request_put(pv_store *st, const pv_request_rec *r);
int pv_store_request_get(pv_store *st, const char *id, pv_request_rec *out);
int pv_store_request_list(pv_store *st, int state, size_t limit, pv_request_rec **out, size_t *n);
/* An empty list from a store older than version 2. */
int pv_store_request_list_undelivered(pv_store *st, int64_t before_ms, pv_request_rec **out, size_t *n);
int pv_store_machine_put(pv_store *st, const pv_machine_rec *m);
int pv_store_machine_get(pv_store *st, const char *id, const char *name, pv_machine_rec *out);
int pv_store_machine_list(pv_store *st, pv_machine_filter f, const char *key, pv_machine_list *out);
int pv_store_template_in_use(pv_store *st, const char *template_id, int64_t *out);
int pv_store_kv_get(pv_store *st, const char *key, char **value);
int pv_store_kv_put(pv_store *st, const char *key, const char *value);

#ifdef __cplusplus
}
#endif
#endif
