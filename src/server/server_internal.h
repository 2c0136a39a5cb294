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
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <openssl/ssl.h>
#include "provisio/provisio.h"
#include "provisio/broker.h"
#include "provisio/server.h"

typedef struct srv_job srv_job; /* a request handed to a worker (pool.c) */

/* ---- settings (settings.c) ------------------------------------------------ */

typedef enum srv_role { SRV_ROLE_NONE = 0, SRV_ROLE_READ, SRV_ROLE_ADMIN } srv_role;
const char *srv_role_name(srv_role r);
int srv_role_parse(const char *name, srv_role *out);

typedef struct srv_token {
	char name[64];
	unsigned char hash[32];
	srv_role role;
} srv_token;

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
	unsigned threads;
	size_t max_body_bytes;
	double shutdown_timeout_s;
	bool access_log;
	char tls_cert[PATH_MAX], tls_key[PATH_MAX];
	bool auth_enabled;
	srv_token *tokens;
	size_t n_tokens;
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
	struct event_base *base;
	struct evhttp *http;
	struct evhttp_bound_socket *bound;
	evutil_socket_t fd;
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
	/* the last token this loop accepted (auth.c): clients keep sending the
	 * same one, and hashing it was a tenth of a cheap request */
	struct {
		unsigned gen;           /* world generation it was checked in; 0 = none */
		size_t len;
		char token[128];
		srv_role role;
		const char *name;       /* the world's token name (lives with t->w) */
	} auth;
} srv_thread;


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
	int port;
	char url[300];
	char generated_token[80];
	SSL_CTX *ssl;
	struct event_base *base; /* the main loop: signals, timers */
	struct event *sig_term, *sig_int, *sig_hup, *stop_ev, *reconcile_ev, *alert_ev, *queue_ev;
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
	struct evhttp_request *req;
	enum evhttp_cmd_type method;
	const char *path;        /* decoded path without the query */
	struct evkeyvalq query;  /* parsed query string */
	bool has_query;
	char request_id[40];
	char trace_id[80];
	srv_role role;
	const char *token_name;
	uint64_t start_ns;
	int status;
	srv_job *job;            /* set while a worker runs it: no libevent calls */
} srv_req;

typedef void (*srv_handler0)(srv_req *r);
typedef void (*srv_handler1)(srv_req *r, const char *arg);

/* Adds an answer header (captured when a worker runs the request). */
void srv_add_header(srv_req *r, const char *key, const char *value);

/* ---- the worker pool (pool.c) ----------------------------------------------------- */

/* Hands the request to a worker; the answer is sent from the loop later.
 * 0, or -1 (out of memory: run it inline). Loop thread only. */
int srv_offload(srv_req *r, srv_handler0 fn0, srv_handler1 fn1, const char *arg);
int srv_pool_start(pv_server *srv);
void srv_pool_stop(pv_server *srv);
const char *srv_job_header(const srv_job *j, const char *key);
const char *srv_job_body(const srv_job *j, size_t *len);
void srv_job_add_header(srv_job *j, const char *key, const char *value);
void srv_job_capture(srv_job *j, int status, struct evbuffer *body);

/* Answers with `body` (taken; NULL = no body) as JSON. */
void srv_reply_json(srv_req *r, int status, json_t *body);
/* Answers {"error": {"code", "message", "field"}}; field may be NULL. */
void srv_reply_error(srv_req *r, int status, const char *code, const char *field,
		     const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* Answers with JSON text already written (taken; freed when sent). */
void srv_reply_owned(srv_req *r, int status, char *text, size_t len);
/* Answers with a text body (/metrics). */
void srv_reply_text(srv_req *r, int status, const char *content_type, const char *text, size_t len);

/* The request body parsed as a JSON object. Answers 413/400 itself and
 * returns NULL when it is too large or not an object. New reference. */
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
void srv_token_hash_raw(const char *token, unsigned char out[32]);

/* ---- routes -------------------------------------------------------------------------- */

/* Dispatches one request to its route (routes.c). */
void srv_route(srv_req *r);

void srv_get_health(srv_req *r);
void srv_get_ready(srv_req *r);
void srv_get_metrics(srv_req *r);
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

/* JSON of a request and its machines, as docs/api.md's R. New reference. */
json_t *srv_request_json(const pv_request_rec *q, const pv_machine_list *ms);
json_t *srv_machine_json(const pv_machine_rec *m);

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
