/*
 * rs.h - the inside of the REST provider, shared by its files.
 *
 * One file a concept: config.c (the JSON configuration), http.c (libcurl:
 * a pool of easy handles, one HTTP exchange), errors.c (transport failures,
 * HTTP statuses and error bodies -> result codes and classes), call.c (one
 * logical call: attempts, backoff with full jitter, Retry-After, the
 * deadline), reqmap.c (our request ids <-> the remote's) and rest.c (the
 * strategy and its seven operations).
 */
#ifndef PV_PROVIDERS_REST_RS_H
#define PV_PROVIDERS_REST_RS_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <curl/curl.h>
#include <jansson.h>
#include "provisio/rest.h"
#include "provisio/result.h"

/* ---- configuration (config.c) ------------------------------------------ */

typedef struct rs_config {
	char *endpoint;     /* endpoint_url without a trailing '/' */
	char *auth_header;  /* "Authorization: Bearer <key>" or NULL; secret */
	char *region;
	char *ca_file;      /* NULL = the system's CA store */
	int64_t timeout_ms, connect_timeout_ms;
	int64_t max_retries;
	bool verify_tls;
	int64_t backoff_base_ms, backoff_max_ms, retry_after_max_ms;
	int64_t max_per_request;
	int64_t max_connections; /* pooled handles; 0 = a new handle every call */
	int64_t max_response_bytes;
	uint64_t seed;
} rs_config;

/* Fills `c` from JSON for the strategy `name`. 0 or PV_EINVAL naming the
 * field (never quoting api_key) / PV_ENOMEM. `c` must be zeroed; free it
 * with rs_config_free even on failure. */
int rs_config_parse(rs_config *c, const char *name, const json_t *cfg);
/* Frees, wiping the secret first. */
void rs_config_free(rs_config *c);

/* ---- HTTP (http.c) ------------------------------------------------------ */

typedef struct rs_http {
	const rs_config *cfg;
	pthread_mutex_t lock; /* the free list only, never held across I/O */
	CURL **idle;
	size_t n_idle;
	atomic_uint_fast64_t handles_created;
} rs_http;

/* One exchange to send. Strings borrowed. */
typedef struct rs_request {
	const char *method;   /* "GET" or "POST" */
	const char *url;
	const char *body;     /* JSON, POST only */
	const char *idempotency_key; /* NULL = none */
	int64_t timeout_ms;   /* whole exchange, >= 1 */
} rs_request;

/* What came back. body is owned (free with rs_reply_clear). */
typedef struct rs_reply {
	long status;            /* 0 when there was no HTTP answer */
	CURLcode curl;          /* CURLE_OK when the exchange completed */
	bool too_large;         /* the body passed max_response_bytes */
	char curl_msg[CURL_ERROR_SIZE];
	char content_type[96];
	int64_t retry_after_ms; /* -1 when the header was absent */
	char *body;
	size_t len, cap;
} rs_reply;

/* Initializes libcurl once per process. 0 or PV_ERROR. */
int rs_global_init(void);
void rs_http_init(rs_http *h, const rs_config *cfg);
void rs_http_fini(rs_http *h);
/* Performs one exchange; `rep` (zeroed) is filled whatever happened. */
void rs_http_do(rs_http *h, const rs_request *rq, rs_reply *rep);
void rs_reply_clear(rs_reply *rep);
/* Handles idle in the pool now. */
size_t rs_http_idle(rs_http *h);

/* ---- errors (errors.c) -------------------------------------------------- */

/* Codes the provider adds to the kernel's (docs/errors.md). */
#define RS_ERR_CONNECTION "CONNECTION_ERROR"
#define RS_ERR_AUTH "AUTH_FAILED"
#define RS_ERR_TLS "TLS_ERROR"
#define RS_ERR_SERVER "SERVER_ERROR"
#define RS_ERR_BAD_RESPONSE "BAD_RESPONSE"
#define RS_ERR_CONFLICT "IDEMPOTENCY_CONFLICT"
#define RS_ERR_REJECTED "REQUEST_REJECTED"
#define RS_ERR_UNHEALTHY "UNHEALTHY"

typedef struct rs_err {
	bool set;
	char code[PV_RESULT_CODE_MAX];
	pv_error_class cls;
	bool retryable;  /* the contract's retryable answers: 429, 5xx, network, timeout */
	long status;     /* HTTP status, 0 for transport failures */
	char remote_code[PV_RESULT_CODE_MAX]; /* the server's error.code, "" when none */
	char field[64];  /* the server's error.field, "" when none */
	char message[512];
} rs_err;

void rs_err_set(rs_err *e, const char *code, pv_error_class cls, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* Classifies a reply that is not a usable 2xx JSON answer; `json` is the
 * parsed body when there is one (an error body {"error": {...}}). */
void rs_err_from_reply(rs_err *e, const rs_reply *rep, const json_t *json, const char *what);
/* Fails `out` with the error; its HTTP facts go into the metadata. */
void rs_err_to_result(const rs_err *e, pv_result *out);

/* ---- one logical call (call.c) ------------------------------------------ */

typedef struct rs_provider rs_provider;

typedef struct rs_call {
	const char *method;
	const char *path;     /* after the endpoint, starting with '/', query included */
	json_t *body;         /* borrowed; POST only */
	const char *idempotency_key;
	bool no_retry;        /* health checks answer now or not at all */
	/* out */
	long status;          /* last HTTP status (0 = none) */
	json_t *json;         /* owned: the last reply's JSON body, if it had one */
	rs_err err;           /* set when the call did not end in a 2xx JSON answer */
	unsigned attempts;
	uint64_t slept_ns;
	int64_t retry_after_ms; /* last Retry-After seen, -1 = none */
	const char *gave_up;  /* why retries stopped early: "deadline", "retry_after_max" */
} rs_call;

/* Runs the call within op's deadline; true when it ended in a 2xx with a
 * JSON body (c->json), false with c->err set. Always free c->json. */
bool rs_call_run(rs_provider *p, const pv_operation *op, rs_call *c);
/* Records the attempts and backoff of the call in the result. */
void rs_call_annotate(const rs_call *c, pv_result *out);

/* ---- request ids (reqmap.c) --------------------------------------------- */

#define RS_REQMAP_SIZE 256

typedef struct rs_reqmap_entry {
	char ours[128];
	char remote[128];
} rs_reqmap_entry;

/* The last RS_REQMAP_SIZE creates: our request id -> the remote's. Kept in
 * the strategy's state so another process can still describe them. */
typedef struct rs_reqmap {
	pthread_mutex_t lock;
	rs_reqmap_entry e[RS_REQMAP_SIZE];
	size_t next, n;
} rs_reqmap;

void rs_reqmap_init(rs_reqmap *m);
void rs_reqmap_fini(rs_reqmap *m);
void rs_reqmap_put(rs_reqmap *m, const char *ours, const char *remote);
/* Copies the remote id of `ours` into buf; false when unknown. */
bool rs_reqmap_remote(rs_reqmap *m, const char *ours, char *buf, size_t len);
/* Copies our id for a remote one into buf; false when unknown. */
bool rs_reqmap_ours(rs_reqmap *m, const char *remote, char *buf, size_t len);
/* [[ours, remote], ...] oldest first, new reference. */
json_t *rs_reqmap_save(rs_reqmap *m);
/* Replaces the map with a saved one. 0 or PV_EINVAL. */
int rs_reqmap_load(rs_reqmap *m, const json_t *saved);
size_t rs_reqmap_count(rs_reqmap *m);

/* ---- the provider (rest.c) ---------------------------------------------- */

struct rs_provider {
	pv_strategy base;
	const pv_clock *clock;
	rs_config cfg;
	rs_http http;
	rs_reqmap reqmap;
	atomic_uint_fast64_t jitter_seq;
	atomic_uint_fast64_t calls[PV_OP_COUNT];
	atomic_uint_fast64_t requests, retries, throttled, server_errors, transport_errors,
		timeouts, bad_responses, auth_failures, slept_ms;
};

#endif
