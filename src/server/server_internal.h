/*
 * server_internal.h - what the files of src/server share: the server's
 * settings (the "server" block), the world a request runs in, the per-loop
 * thread, and the helpers every route uses to read input and answer.
 *
 * Files: server.c (life, loops, signals, reload), settings.c (the "server"
 * block), http.c (request plumbing, errors, logs), auth.c, routes.c
 * (probes, providers, strategy, exec), routes_broker.c (templates,
 * requests, returns, machines), prom.c (/metrics), reconcile.c, alerts.c.
 */
#ifndef PV_SERVER_INTERNAL_H
#define PV_SERVER_INTERNAL_H

#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <event2/event.h>
#include <openssl/ssl.h>
#include "provisio/provisio.h"
#include "provisio/broker.h"
#include "provisio/server.h"
#include "server/http_parse.h"

typedef struct srv_job srv_job;           /* a request handed to a worker (pool.c) */
typedef struct srv_conn srv_conn;         /* one client connection (conn.c) */
typedef struct srv_listener srv_listener; /* a listening socket (conn.c) */

/* ---- settings (settings.c) ------------------------------------------------ */

typedef enum srv_role { SRV_ROLE_NONE = 0, SRV_ROLE_READ, SRV_ROLE_ADMIN } srv_role;
const char *srv_role_name(srv_role r);
int srv_role_parse(const char *name, srv_role *out);

/* A token as configured: its salted PBKDF2-HMAC-SHA256 hash, never the
 * token ("pbkdf2-sha256$<iterations>$<salt hex>$<hash hex>"). */
enum { SRV_KDF_SALT_MAX = 64, SRV_KDF_MIN_ITERATIONS = 1000, SRV_KDF_DEFAULT_ITERATIONS = 10000 };
typedef struct srv_token {
	char name[64];
	srv_role role;
	unsigned iterations;
	unsigned char salt[SRV_KDF_SALT_MAX];
	size_t salt_len;
	unsigned char hash[32];
} srv_token;
/* Parses a "pbkdf2-sha256$..." text into t. 0 or PV_EINVAL with the reason. */
int srv_token_hash_parse(const char *text, srv_token *t);

typedef enum srv_alert_kind {
	SRV_ALERT_UNHEALTHY = 0,
	SRV_ALERT_SUCCESS_RATE_BELOW,
	SRV_ALERT_P95_ABOVE_MS,
	SRV_ALERT_BREAKER_OPEN_FOR,
	SRV_ALERT_ORPHANS,
	SRV_ALERT_KIND_COUNT
} srv_alert_kind;
const char *srv_alert_kind_name(srv_alert_kind k);
int srv_alert_kind_parse(const char *name, srv_alert_kind *out);

typedef struct srv_alert_rule {
	char name[64];
	srv_alert_kind kind;
	char strategy[64];   /* "" = every strategy */
	double threshold;    /* percent, ms, seconds or count, by kind */
	unsigned min_samples;
} srv_alert_rule;

typedef struct srv_settings {
	char host[256];
	int port;
	bool reuse_port;         /* one socket a loop with SO_REUSEPORT (another
				    process may then bind the port too) */
	unsigned threads;
	size_t max_body_bytes;
	size_t max_header_bytes;
	unsigned max_connections;
	unsigned max_connections_per_client;
	double header_timeout_s; /* a request head must arrive within this */
	double body_timeout_s;   /* its body within this after the head */
	double idle_timeout_s;   /* keep-alive between requests; a client not reading its answer */
	double shutdown_timeout_s;
	bool access_log;
	char tls_cert[PATH_MAX], tls_key[PATH_MAX];
	bool auth_enabled;
	srv_token *tokens;
	size_t n_tokens;
	unsigned auth_max_failures;  /* per client address within the window */
	double auth_failure_window_s;
	bool allow_exec;             /* POST /api/v1/providers/{name}/exec */
	double reconcile_interval_s;
	double queue_poll_s;     /* how often the Host Factory queue is looked at */
	bool terminate_orphans;
	double alert_interval_s;
	char alert_command[1024];
	char alert_webhook[1024];
	srv_alert_rule *rules;
	size_t n_rules;
	pv_log_level log_level;
	json_t *log_components; /* {"broker": "debug", ...} or NULL */
} srv_settings;

/* Reads and validates the "server" block (NULL = defaults) into `s`; every
 * problem goes to diags with its path. 0 or PV_EINVAL. */
int srv_settings_read(const json_t *block, srv_settings *s, pv_diags *diags);
void srv_settings_clear(srv_settings *s);
/* Whether host names the loopback interface. */
bool srv_host_is_loopback(const char *host);

/* ---- the world: what one configuration built -------------------------------- */

typedef struct srv_world {
	atomic_int refs;
	unsigned gen;
	pv_broker *main;       /* owns the graph, the context and kernel state */
	char store_location[PV_STORE_LOCATION_MAX]; /* file or URL (may hold a password) */
	pv_store_options store_opts;
	json_t *graph;         /* normalised graph (providers, strategies) */
	srv_settings set;
} srv_world;

void srv_world_release(srv_world *w);

/* ---- the loops ---------------------------------------------------------------- */

/* Counters of the HTTP layer, for /metrics. */
enum { SRV_CODE_BUCKETS = 6 }; /* 1xx..5xx and other */
typedef struct srv_http_stats {
	atomic_uint_fast64_t by_class[SRV_CODE_BUCKETS];
	atomic_uint_fast64_t duration_ns_sum;
	atomic_uint_fast64_t hist[12]; /* srv_http_bounds_s */
} srv_http_stats;
extern const double srv_http_bounds_s[12];

typedef struct srv_thread {
	pv_server *srv;
	unsigned index;
	pthread_t th;
	bool started;
	bool worker;            /* a pool thread: may call providers */
	struct event_base *base;
	srv_listener *listener; /* the socket this loop accepts on, if any */
	/* connections accepted elsewhere and handed to this loop */
	pthread_mutex_t inbox_lock;
	struct srv_inbox_item *inbox;
	size_t inbox_n, inbox_cap;
	struct event *inbox_ev;
	TAILQ_HEAD(, srv_conn) conns;
	atomic_uint n_conns;
	unsigned peak_conns;    /* since memory was last given back */
	char date[40];          /* the Date header, formatted once a second */
	int64_t date_s;
	struct event *drain;
	uint64_t drain_deadline_ns;
	atomic_int pending_writes;
	/* this loop's HTTP counters (summed by /metrics; per thread so two
	 * loops never write one cache line) */
	_Alignas(64) srv_http_stats stats;
	/* the broker of this thread over its own store connection */
	srv_world *w;
	pv_broker *b;
	pv_store *st;
	uint64_t seq;
	/* machines read for an answer, kept between requests (capacity only)
	 * so the hot GET does not allocate a list each time */
	pv_machine_list scratch;
	/* the last tokens this loop accepted (auth.c): clients keep sending the
	 * same one, and checking it against salted hashes costs milliseconds */
	struct srv_auth_slot {
		unsigned gen;           /* world generation it was checked in; 0 = none */
		size_t len;
		char token[128];
		srv_role role;
		char name[64];
	} auth[8];
	unsigned auth_next;
} srv_thread;

/* ---- client addresses (clients.c) ------------------------------------------------ */

/* An address as 16 bytes (IPv4 mapped into IPv6): the key of the table. */
typedef struct srv_addr {
	unsigned char b[16];
} srv_addr;
void srv_addr_from_sockaddr(const struct sockaddr *sa, srv_addr *out, char *text, size_t tsize);

typedef struct srv_clients srv_clients;
int srv_clients_new(srv_clients **out);
void srv_clients_free(srv_clients *c);
/* Counts a connection from `a`; false (nothing counted) when it already
 * holds `cap`. */
bool srv_clients_open(srv_clients *c, const srv_addr *a, unsigned cap);
void srv_clients_close(srv_clients *c, const srv_addr *a);
void srv_clients_auth_failed(srv_clients *c, const srv_addr *a, int64_t now_ms, double window_s);
/* Whether `a` failed `max` times within the window; when so, the seconds
 * until it may try again. */
bool srv_clients_auth_blocked(srv_clients *c, const srv_addr *a, int64_t now_ms, unsigned max,
			      double window_s, unsigned *retry_after_s);
/* Failures not rate-limited because the table was full. */
uint64_t srv_clients_untracked(srv_clients *c);


/* Broker gauges the reconciler refreshes and /metrics shows. */
typedef struct srv_broker_gauges {
	pthread_mutex_t lock;
	int64_t requests[PV_REQ_STATE_COUNT];
	json_t *machines;       /* {"provider": {"state": n}} */
	bool valid;
} srv_broker_gauges;

typedef struct srv_alert_state {
	char name[64]; /* the rule's: state survives a reload that keeps the rule */
	bool firing;
	char reason[256];
	int64_t since_ms;
} srv_alert_state;

struct pv_server {
	pv_server_options opts;
	char *config_path, *templates_path, *store_path; /* copies of opts.open */
	char *listen;
	FILE *log;
	pthread_mutex_t log_lock;
	pthread_mutex_t world_lock;
	srv_world *world;        /* current; a reference held */
	atomic_uint gen;
	srv_thread *threads;
	unsigned n_threads;
	srv_clients *clients;
	atomic_uint conns_open;  /* connections held, every loop */
	/* the HTTP layer's refusals and timeouts, for /metrics */
	atomic_uint_fast64_t refused_max, refused_per_client, accept_fd_exhausted, accept_errors,
		header_timeouts, body_timeouts, auth_limited;
	int port;
	char url[300];
	char generated_token[80];
	SSL_CTX *ssl;
	struct event_base *base; /* the main loop: signals, timers */
	struct event *sig_term, *sig_int, *sig_hup, *stop_ev, *reconcile_ev, *alert_ev, *queue_ev;
	struct event *watchdog_ev; /* WATCHDOG=1 to systemd (util/notify.h), or NULL */
	atomic_bool stopping;
	int64_t started_ms;
	char lease_holder[400]; /* this daemon in the reconciler lease: node, pid, start */
	atomic_bool leading;    /* holds it; written under reconcile_lock */
	uint64_t started_ns;
	srv_broker_gauges gauges;
	atomic_uint_fast64_t orphans_found, reclaimed_found, reloads, reload_failures;
	atomic_uint_fast64_t orphan_sweep_failures; /* a provider that could not list its instances */
	atomic_uint_fast64_t reconcile_passes;
	atomic_int last_orphans; /* orphans known after the last pass */
	unsigned alerts_gen;     /* world generation the alert states belong to */
	atomic_uint_fast64_t provision_hist[12];
	atomic_uint_fast64_t provision_sum_ns, provision_count;
	json_t *orphan_suspects; /* {"provider/id": true} seen on the last pass */
	json_t *breaker_open_since; /* {"strategy/child": ms} */
	srv_alert_state *alerts;
	size_t n_alerts;
	pthread_mutex_t alert_lock;
	pthread_mutex_t reconcile_lock; /* one reconciler pass at a time */
	/* the worker pool: a queue of jobs and the threads that run them */
	pthread_mutex_t pool_lock;
	pthread_cond_t pool_cond;
	srv_job *pool_head, *pool_tail;
	bool pool_stop;
	srv_thread *workers;
	unsigned n_workers;
	int alert_transitions;
};

/* The current world with a new reference (release with srv_world_release). */
srv_world *srv_world_get(pv_server *srv);
/* The thread's broker, renewed when the world changed. NULL on failure (the
 * error is set). */
pv_broker *srv_thread_broker(srv_thread *t);

/* ---- one request (http.c) ------------------------------------------------------ */

typedef struct srv_req {
	srv_thread *t;
	srv_world *w;
	srv_conn *conn;          /* the connection it came on */
	srv_method method;
	const srv_head *head;    /* NULL when the head could not be parsed */
	const char *method_text; /* as sent ("" when unknown) */
	const char *target;      /* the request-target as sent ("" when unknown) */
	char path[SRV_MAX_PATH]; /* decoded, without the query */
	srv_kv query[SRV_MAX_QUERY];
	size_t n_query;
	const char *body;
	size_t body_len;
	char request_id[40];
	char trace_id[80];
	srv_role role;
	char token_name[64];     /* "" when none */
	const void *route;       /* routes.c's match, between the head and the body */
	char arg[256];           /* its "*" segment */
	uint64_t start_ns;
	int status;
	bool close;              /* answer with Connection: close */
	char out_headers[512];   /* "Name: value\r\n" lines added by the route */
	size_t out_headers_len;
	srv_job *job;            /* set while a worker runs it */
} srv_req;

typedef void (*srv_handler0)(srv_req *r);
typedef void (*srv_handler1)(srv_req *r, const char *arg);

/* Adds an answer header (name and value from the route, never CR or LF). */
void srv_add_header(srv_req *r, const char *key, const char *value);

/* ---- accepting (listen.c) and connections (conn.c) ------------------------------------- */

/* Binds the listening socket of loop t (reuse_port: SO_REUSEPORT, one a
 * loop; else one socket whose connections loop t hands to the least busy
 * loop). The bound port in *port (0 asks for any). 0 or PV_EIO naming the
 * address and the reason. */
int srv_listener_open(srv_thread *t, const char *host, int *port, bool reuse_port);
/* Stops accepting and closes the socket (loop thread, or before it runs). */
void srv_listener_close(srv_thread *t);
/* A loop's queue of connections accepted on another loop. */
int srv_inbox_init(srv_thread *t);
void srv_inbox_free(srv_thread *t);
/* Serves a connection just accepted (socket non-blocking; the caller
 * counted it in conns_open and the client table). */
void srv_conn_new(srv_thread *t, evutil_socket_t fd, const srv_addr *a, const char *peer);
/* Frees a loop's connections, after the loop and the pool stopped. */
void srv_conns_free(srv_thread *t);
/* Closes the connections waiting for a request (a graceful stop). */
void srv_conns_close_idle(srv_thread *t);
/* Writes the answer to the request's connection; `body` is taken when
 * `owned`. The request (and its connection) may be gone after. */
void srv_conn_write(srv_req *r, int status, char *body, size_t len, bool owned);
/* The client's address as text. */
const char *srv_conn_peer(const srv_conn *c);
const srv_addr *srv_conn_addr(const srv_conn *c);

/* ---- the worker pool (pool.c) ----------------------------------------------------- */

/* Hands the request to a worker; the answer is sent from the loop later.
 * 0, or -1 (out of memory: run it inline). Loop thread only. */
int srv_offload(srv_req *r, srv_handler0 fn0, srv_handler1 fn1);
int srv_pool_start(pv_server *srv);
void srv_pool_stop(pv_server *srv);
/* Keeps a worker's answer for the loop to send. */
void srv_job_capture(srv_job *j, int status, char *body, size_t len, bool owned);

/* Answers with `body` (taken; NULL = no body) as JSON. */
void srv_reply_json(srv_req *r, int status, json_t *body);
/* Answers {"error": {"code", "message", "field"}}; field may be NULL. */
void srv_reply_error(srv_req *r, int status, const char *code, const char *field,
		     const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* Answers with JSON text already written (taken; freed when sent). */
void srv_reply_owned(srv_req *r, int status, char *text, size_t len);
/* Answers with a text body (/metrics). */
void srv_reply_text(srv_req *r, int status, const char *content_type, const char *text, size_t len);

/* Sends, counts and logs an answer (the loop thread); `body` taken when owned. */
void srv_send(srv_req *r, int status, char *body, size_t len, bool owned);
/* The world this loop answers with, renewed when a reload changed it. */
srv_world *srv_thread_world(srv_thread *t);
/* The ids of a new request (X-Request-Id, traceparent), and the request
 * the library's log lines belong to on this thread (NULL: none). */
void srv_req_ids(srv_req *r);
void srv_set_current(const srv_req *r);

/* The request body parsed as a JSON object. Answers 400 itself and
 * returns NULL when it is not an object. New reference. */
json_t *srv_body_object(srv_req *r);
/* 0 when every key of `obj` is one of `allowed` (NULL-terminated); else
 * answers 400 naming the first unknown key and returns -1. */
int srv_check_fields(srv_req *r, const json_t *obj, const char *const *allowed);
/* A query parameter or NULL. */
const char *srv_query(srv_req *r, const char *key);
/* A request header or NULL. */
const char *srv_header(srv_req *r, const char *key);

/* One JSON log line: {"ts", "level", "component", "msg", "request_id", ...}. */
void srv_log(pv_server *srv, pv_log_level level, const char *component, const srv_req *r,
	     const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* Installs the JSON sink for the library's own messages, with per-component
 * levels from the settings and $PROVISIO_LOG ("broker=debug,core=info"). */
void srv_log_install(pv_server *srv, const srv_settings *s);
/* Sets one component's level at run time ("*" = the default). 0 or PV_EINVAL. */
int srv_log_set_component(const char *component, const char *level);
json_t *srv_log_levels(void);
void srv_log_uninstall(void);

/* ---- auth (auth.c) ----------------------------------------------------------------- */

/* Decides who the request is. 0 when it may proceed with `need`; else the
 * answer (401/403) has been sent and -1 is returned. */
int srv_auth(srv_req *r, srv_role need);
/* SHA-256 of text as 64 hex digits (idempotency keys' body hashes). */
void srv_sha256_hex(const char *text, char hex[65]);

/* ---- routes -------------------------------------------------------------------------- */

/* Once the head is read: the route, its query, who the caller is. 0 when
 * the body (if any) is to be read and srv_route_run called; -1 when the
 * answer has been sent (404, 405, 401, 501, ...). (routes.c) */
int srv_route_prepare(srv_req *r);
/* Runs the route prepared, on this loop or on a worker. */
void srv_route_run(srv_req *r);

void srv_get_health(srv_req *r);
void srv_get_ready(srv_req *r);
void srv_get_metrics(srv_req *r);
void srv_get_openapi(srv_req *r);
void srv_get_providers(srv_req *r);
void srv_get_provider_health(srv_req *r, const char *name);
void srv_put_strategy(srv_req *r);
void srv_post_exec(srv_req *r, const char *name);
void srv_get_log_levels(srv_req *r);
void srv_put_log_levels(srv_req *r);
void srv_get_alerts(srv_req *r);

void srv_get_templates(srv_req *r);
void srv_get_template(srv_req *r, const char *id);
void srv_post_requests(srv_req *r);
void srv_get_request(srv_req *r, const char *id);
void srv_get_requests(srv_req *r);
void srv_post_returns(srv_req *r);
void srv_get_machines(srv_req *r);

/* What a stored Idempotency-Key record (the store's text, any bytes: it is
 * read back, not trusted) says about a create with body hash `hash` now:
 * go ahead, answer the request it made (its id into request_id), 409, or
 * 503 while that create runs. */
typedef enum srv_idem_verdict { SRV_IDEM_NEW = 0, SRV_IDEM_REPLAY, SRV_IDEM_CONFLICT, SRV_IDEM_PENDING } srv_idem_verdict;
srv_idem_verdict srv_idem_judge(const char *text, const char *hash, int64_t now_ms, char *request_id,
				size_t size);

/* ---- /metrics (prom.c) -------------------------------------------------------------- */

/* The Prometheus text exposition. Caller frees. */
char *srv_prom_render(pv_server *srv, srv_world *w, size_t *len);
void srv_hist_observe(atomic_uint_fast64_t *hist, const double *bounds, size_t n, double seconds);
extern const double srv_provision_bounds_s[12];

/* ---- reconciler and alerts -------------------------------------------------------------- */

int srv_reconcile(pv_server *srv, srv_world *w, json_t **report);
void srv_gauges_refresh(pv_server *srv, srv_world *w);
/* Writes the strategies' kernel state that changed to the store. */
void srv_save_kernel_state(pv_server *srv, srv_world *w);
/* Gives the reconciler lease up (a graceful stop). Under reconcile_lock. */
void srv_lease_release(pv_server *srv, srv_world *w);
/* Announces the daemon in the store (Host Factory processes then defer). */
void srv_heartbeat(pv_server *srv, srv_world *w);
/* Provisions / terminates what Host Factory queued; how many were done.
 * Under reconcile_lock (it uses the main broker's store connection). */
int srv_run_queue(pv_server *srv, srv_world *w);
int srv_alerts_evaluate(pv_server *srv, srv_world *w);
json_t *srv_alerts_json(pv_server *srv, srv_world *w);

#endif
