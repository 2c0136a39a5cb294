/*
 * server.h - `provisio serve`: the REST API, Prometheus metrics, probes and
 * the reconciler in one long-running process (docs/serve.md, docs/api.md).
 *
 * HTTP/1.1 is provisio's own, on libevent's event loops and bufferevents
 * (TLS through OpenSSL): one loop a thread, one listening socket that a
 * second daemon cannot bind (unless both set server.reuse_port), limits on
 * connections a client and in all, deadlines for request heads and bodies,
 * and a caller's token checked before its body is read. The main thread's loop
 * carries the signals (SIGTERM/SIGINT stop, SIGHUP reload), the reconciler
 * and the alert rules. Each thread has its own broker over its own store
 * connection and one shared strategy graph: the same arrangement as many
 * Host Factory processes sharing one store, inside one process.
 *
 * A reload builds a whole new "world" (graph, templates, server settings)
 * from the files and swaps it in only when everything in it is valid;
 * requests in progress finish on the world they started with.
 */
#ifndef PROVISIO_SERVER_H
#define PROVISIO_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>
#include "broker.h"
#include "config.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct pv_server pv_server;

typedef struct pv_server_options {
	/* Where configuration, templates and the store come from (as for
	 * pv_broker_open); read again on every reload. */
	pv_broker_open_options open;
	/* "HOST:PORT" overriding server.listen; NULL = the config's, else
	 * "127.0.0.1:8080". Port 0 picks a free port (pv_server_port). */
	const char *listen;
	/* Event loops; 0 = server.threads, else the number of cores. */
	unsigned threads;
	/* Log lines (JSON) go here; NULL = stderr. Not closed. */
	FILE *log;
} pv_server_options;

/*
 * Loads everything and binds the listening sockets; serves nothing until
 * pv_server_run. 0, or PV_EINVAL (configuration: every problem in `diags`
 * and the first in pv_error_last), PV_EIO (cannot bind, certificate
 * unreadable) or PV_ENOMEM. Free with pv_server_free.
 */
int pv_server_new(pv_server **out, const pv_server_options *opts, pv_diags *diags);

/* The bound port (useful with port 0). */
int pv_server_port(const pv_server *srv);
/* "http://127.0.0.1:8080" or https://...; borrowed. */
const char *pv_server_url(const pv_server *srv);
/* The admin token generated at start when auth is on and no token is
 * configured (printed once by `provisio serve`), else NULL. Borrowed. */
const char *pv_server_generated_token(const pv_server *srv);
/* The id of the first template the server offers (the banner's example
 * request names a real one), or NULL when there is none. Borrowed: valid
 * until the next reload. */
const char *pv_server_first_template_id(pv_server *srv);

/*
 * Serves until pv_server_stop or SIGTERM/SIGINT (when `handle_signals`;
 * SIGHUP then reloads). Stopping stops accepting, lets requests in
 * progress finish (up to server.shutdown_timeout_seconds), saves kernel
 * state. Returns 0, or PV_E* when the loops could not start.
 */
int pv_server_run(pv_server *srv, bool handle_signals);

/* Asks a running server to stop gracefully; any thread, signal-safe. */
void pv_server_stop(pv_server *srv);

/*
 * Reloads configuration, templates and server settings from the files.
 * Either all of it applies or nothing does: 0, or PV_EINVAL with `diags`
 * (may be NULL) saying why, the old configuration kept. Any thread.
 */
int pv_server_reload(pv_server *srv, pv_diags *diags);

/* Runs one reconciler pass now (tests; the daemon runs it on a timer).
 * `report` (may be NULL) receives a new object describing what it did:
 * {"refreshed", "reclaimed": [...], "orphans": [...], "orphans_terminated",
 * "recovered"}. 0 or PV_E*. Call from one thread at a time. */
int pv_server_reconcile(pv_server *srv, json_t **report);

/* Evaluates the alert rules now (tests; the daemon runs them on a timer).
 * Returns how many alerts changed state. */
int pv_server_evaluate_alerts(pv_server *srv);

/* Frees a server that is not running. NULL is fine. */
void pv_server_free(pv_server *srv);

/* Room for the text of a token hash. */
#define PV_SERVER_TOKEN_HASH_MAX 160

/*
 * The salted hash of `token` that server.auth.tokens[].hash holds:
 * "pbkdf2-sha256$<iterations>$<salt hex>$<hash hex>", a random salt each
 * call. `iterations` 0 = the default (10000); at least 1000. 0, or
 * PV_EINVAL / PV_EIO.
 */
int pv_server_hash_token(const char *token, unsigned iterations, char *out, size_t size);

#ifdef __cplusplus
}
#endif
#endif
