/*
 * rest_test_server.h - a tiny HTTP/1.1 server on 127.0.0.1 that speaks the
 * provider-facing subset of docs/api.md, for testing the rest provider.
 *
 * It keeps machines in memory (no provider behind it) and can be told to
 * misbehave, deterministically, for the next requests it receives: answer
 * with a status (and Retry-After), answer slowly, send malformed JSON, an
 * HTML page or JSON of the wrong shape, or close the connection without an
 * answer. Plain sockets and one thread a connection, keep-alive supported:
 * enough for tests and a benchmark, nothing more.
 */
#ifndef PV_TEST_REST_SERVER_H
#define PV_TEST_REST_SERVER_H

#include <stdbool.h>
#include <stddef.h>

typedef struct rts_server rts_server;

/* Starts listening on 127.0.0.1 at an ephemeral port. 0 or -1. Stop (and
 * free) with rts_stop. */
int rts_start(rts_server **out);
void rts_stop(rts_server *s);

/* "http://127.0.0.1:<port>" (borrowed, lives with the server). */
const char *rts_url(const rts_server *s);

/* Requires "Authorization: Bearer <token>" on everything but /health;
 * NULL turns auth off (the default). */
void rts_require_token(rts_server *s, const char *token);
/* What /ready says (default ready). */
void rts_set_ready(rts_server *s, bool ready);
/* Live machines it will hold; -1 = no limit (the default). */
void rts_set_capacity(rts_server *s, int capacity);

/*
 * Queues faults for the next requests, in order, one entry a request
 * ("*N" repeats an entry N times):
 *   "status:CODE[:RETRY_AFTER]"  an error body with that status (and
 *                                Retry-After in seconds; ":@S" sends it as
 *                                the HTTP date S seconds from now)
 *   "slow:MS"                    waits MS, then answers normally
 *   "malformed"                  200, application/json, truncated JSON
 *   "html"                       200, text/html page
 *   "wrongshape"                 200, JSON of an unexpected shape
 *   "close"                      closes the connection without answering
 *   "ok"                         answers normally
 * Returns 0 or -1 on a syntax error.
 */
int rts_script(rts_server *s, const char *entry);

/* Requests received whose "METHOD /path" (query excluded) starts with
 * `prefix` (e.g. "POST /api/v1/requests", "GET /ready", "" for all). */
unsigned rts_count(rts_server *s, const char *prefix);
/* A header of the last request received (case-insensitive name), "" when
 * absent; copied into buf. */
void rts_last_header(rts_server *s, const char *name, char *buf, size_t len);
/* Machines created and not yet returned. */
int rts_live(rts_server *s);

/* A 127.0.0.1 port where nothing listens (connections are refused). */
int rts_closed_port(void);

#endif
