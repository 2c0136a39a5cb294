/*
 * aws_internal.h - the pieces of the AWS EC2 provider, shared between its
 * files and its unit tests (not part of the public API).
 *
 * One file a concept: throttle.c (client-side token buckets), errors.c
 * (EC2 error code -> provisio error class), token.c (ClientToken
 * derivation), form.c (the Query API form body), xml.c (libxml2 parsing of
 * EC2 responses), creds.c (the credentials and region chain), http.c (one
 * signed POST over libcurl), aws.c (the strategy itself).
 */
#ifndef PV_PROVIDERS_AWS_INTERNAL_H
#define PV_PROVIDERS_AWS_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>
#include "provisio/clock.h"
#include "provisio/limiter.h"

struct curl_slist;
#include "provisio/result.h"

/* ---- throttle.c: token buckets ------------------------------------------ */

/*
 * A token bucket on a pv_clock: `capacity` tokens, refilled continuously at
 * `refill_per_s`. EC2 meters each account with such buckets; holding our own
 * copy means we wait a little instead of being answered RequestLimitExceeded.
 * With a shared limiter (the broker's, over the store) the tokens come from
 * the bucket every process on that store spends, named `key`; the local
 * one stands in when the limiter cannot be reached.
 */
typedef struct aws_bucket {
	pthread_mutex_t lock;
	double capacity;
	double refill_per_s;
	double tokens;
	uint64_t last_ns;
	bool enabled;
	pv_limiter *shared;  /* referenced; NULL = this process alone */
	char key[256];       /* the shared bucket's name */
	bool shared_failed;  /* said once that the limiter failed */
} aws_bucket;

void aws_bucket_init(aws_bucket *b, double capacity, double refill_per_s, uint64_t now_ns);
void aws_bucket_destroy(aws_bucket *b);
/* Spends the tokens of bucket `key` of `l` from now on (a reference is
 * taken; NULL: this process's own bucket again). */
void aws_bucket_share(aws_bucket *b, pv_limiter *l, const char *key);
/* Takes one token if there is one (returns 0), else returns how many ns to
 * wait before one is there (nothing taken). A disabled bucket always gives. */
uint64_t aws_bucket_try_take(aws_bucket *b, uint64_t now_ns);
/* Empties the bucket (the shared one too): EC2 said RequestLimitExceeded,
 * so its bucket is empty whatever ours thought. */
void aws_bucket_drain(aws_bucket *b, uint64_t now_ns);
/* Takes one token, sleeping on `clock` as needed. PV_ESTATE (no token
 * taken) when the wait would end after `deadline_ns` (0 = none). `waited_ns`
 * (may be NULL) receives the time slept. */
int aws_bucket_take(aws_bucket *b, const pv_clock *clock, uint64_t deadline_ns,
		    uint64_t *waited_ns);

/* ---- errors.c: what an EC2 error means ---------------------------------- */

/* The class of an EC2 error code (NULL/"" when there is none) with the HTTP
 * status (0 = no response): throttled, capacity, permanent, transient. */
pv_error_class aws_error_class(const char *ec2_code, long http_status);
/* The provisio error code for a class: THROTTLED, CAPACITY, ... Static. */
const char *aws_error_pv_code(pv_error_class cls, const char *ec2_code);

/* ---- token.c: ClientToken ------------------------------------------------ */

#define AWS_CLIENT_TOKEN_MAX 64
/*
 * The idempotency token of one launch call, derived from the request id,
 * the provider name and the attempt group (batch, instance type...): the
 * same inputs always give the same token, so a retry after a timeout is
 * recognised by EC2 instead of launching twice. At most 64 characters,
 * printable ASCII. `out` must hold AWS_CLIENT_TOKEN_MAX + 1 bytes.
 */
void aws_client_token(char *out, const char *request_id, const char *provider,
		      const char *group);

/* ---- form.c: the Query API body ------------------------------------------ */

/* An application/x-www-form-urlencoded body built in order of addition. */
typedef struct aws_form {
	char *buf;
	size_t len, cap;
	bool oom;
} aws_form;

void aws_form_init(aws_form *f, const char *action);
/* The same with another API version (the Smithy test service's). */
void aws_form_init_version(aws_form *f, const char *action, const char *version);
/* Adds key=value, both percent-encoded (RFC 3986 unreserved kept). */
void aws_form_add(aws_form *f, const char *key, const char *value);
/* Adds a key built with printf and a value. */
void aws_form_addf(aws_form *f, const char *value, const char *key_fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Appends the (already encoded) pairs of another form. */
void aws_form_append(aws_form *f, const aws_form *more);
void aws_form_free(aws_form *f);
/* Percent-encodes `in` into a new string (caller frees). NULL on ENOMEM. */
char *aws_url_encode(const char *in);
/* Base64 of `len` bytes into a new string (caller frees). */
char *aws_base64(const unsigned char *in, size_t len);

/* ---- query.c: ec2Query serialisation against a shape model ---------------- */

/* Adds `value` (JSON) as shape `shape` of `model` (a Smithy JSON AST
 * subset, see query.c) under key `prefix` ("" at the top of a request)
 * with the ec2Query rules. 0, or -1 when the value does not fit the shape
 * or the shape is one the rules here do not cover (map, union, document);
 * pairs added before the failure stay. */
int aws_query_add(aws_form *f, const json_t *model, const char *shape, const char *prefix,
		  const json_t *value);
/* A member's ec2Query key: ec2QueryName, else xmlName or the member name
 * with the first letter upper-cased. */
void aws_query_member_name(char *out, size_t size, const char *member, const char *ec2_query_name,
			   const char *xml_name);
/* A float / double as ec2Query sends it: integral values without a
 * fraction, else the shortest round-trip text; NaN, Infinity, -Infinity. */
int aws_query_number(char *out, size_t size, double v, bool single);
/* A timestamp (seconds since the epoch) as date-time (RFC 3339, the
 * default, format NULL), epoch-seconds or http-date. */
int aws_query_timestamp(char *out, size_t size, double epoch_s, const char *format);

/* ---- xml.c: EC2 responses -------------------------------------------------- */

/* An EC2 error body (<Response><Errors><Error><Code>..). Returns 0 and
 * fills what it found, or -1 when the body is not one. `message` is a new
 * string the caller frees. */
int aws_xml_error(const char *body, size_t len, char *code, size_t code_size,
		  char **message, char *request_id, size_t request_id_size);
/*
 * Instances of a RunInstances or DescribeInstances answer: a new array of
 * {instance_id, state, private_ip, public_ip, private_dns, launch_time,
 * instance_type, az, subnet_id, lifecycle, client_token, reservation_id,
 * tags{}} (absent values omitted). `next_token` (may be NULL) receives a
 * new string or NULL. NULL when the body is not XML.
 */
json_t *aws_xml_instances(const char *body, size_t len, char **next_token);
/* TerminateInstances: a new array of {instance_id, previous_state, state}. */
json_t *aws_xml_terminated(const char *body, size_t len);
/* DescribeRegions: a new array of region names. */
json_t *aws_xml_regions(const char *body, size_t len);
/* CreateFleet: a new object {fleet_id, instances:[{instance_id,
 * instance_type, lifecycle}], errors:[{code, message, instance_type,
 * subnet_id, az, lifecycle}]}. */
json_t *aws_xml_fleet(const char *body, size_t len);
/* The launchTemplateId of a CreateLaunchTemplate answer, or of the first
 * template of a DescribeLaunchTemplates answer, into `out` ("" when none). */
void aws_xml_launch_template_id(const char *body, size_t len, char *out, size_t size);
/* The requestId of a success body into `out` ("" when absent). */
void aws_xml_request_id(const char *body, size_t len, char *out, size_t size);

/* ---- creds.c: credentials and region --------------------------------------- */

typedef struct aws_creds {
	char access_key_id[128];
	char secret_access_key[256];
	char session_token[2048];
	char source[24];        /* config, env, shared-file, imds */
	int64_t expires_wall_ms; /* 0 = never (static credentials) */
} aws_creds;

typedef struct aws_creds_opts {
	const char *access_key_id; /* explicit config, may be NULL */
	const char *secret_access_key;
	const char *session_token;
	const char *profile;       /* NULL = AWS_PROFILE or "default" */
	const char *imds_endpoint; /* NULL = AWS_EC2_METADATA_SERVICE_ENDPOINT or 169.254.169.254 */
	long imds_timeout_ms;
	bool imds_enabled;
} aws_creds_opts;

/* Resolves credentials the way AWS tools do (config, env, shared file,
 * IMDSv2). 0, or PV_ENOTFOUND / PV_EINVAL / PV_EIO with a message that never
 * holds a secret. */
int aws_creds_resolve(const aws_creds_opts *o, aws_creds *out);
/* Reads one profile of the shared credentials file (AWS_SHARED_CREDENTIALS_FILE
 * or ~/.aws/credentials). 1 found, 0 not found, negative on error. */
int aws_creds_from_shared_file(const char *profile, aws_creds *out);
/* The region from AWS_REGION, AWS_DEFAULT_REGION or the profile's entry in
 * the config file (AWS_CONFIG_FILE or ~/.aws/config). 1 found, 0 not. */
int aws_region_resolve(const char *profile, char *out, size_t size);
/* The role credentials document IMDS answers ({"AccessKeyId",
 * "SecretAccessKey", "Token", "Expiration": ISO 8601}). 0, or PV_EIO when
 * it is not one (the message holds no secret). */
int aws_creds_from_imds_json(const char *body, size_t len, aws_creds *out);
/* Zeroes secrets in a way the compiler keeps. */
void aws_creds_wipe(aws_creds *c);

/* ---- http.c: one signed call --------------------------------------------- */

typedef struct aws_http_opts {
	const char *endpoint_url;
	const char *region;
	const char *service;   /* SigV4 service name; NULL = "ec2" */
	const char *proxy;     /* NULL = libcurl's default (env) */
	long connect_timeout_ms;
	long timeout_ms;
	bool verify_tls;
} aws_http_opts;

typedef struct aws_http_reply {
	long status;           /* 0 when no HTTP answer came */
	char *body;            /* owned */
	size_t len;
	int curl_code;         /* CURLE_OK or the transport failure */
	char error[256];       /* transport failure text (no secrets) */
	bool timed_out;
} aws_http_reply;

int aws_http_global_init(void);

/* Idle libcurl easy handles kept for reuse: each keeps its connection
 * cache, so the next call to the same endpoint skips the TCP (and TLS)
 * handshake. Thread-safe; a handle is used by one call at a time. */
#define AWS_HTTP_POOL_MAX 16
#define AWS_HTTP_MULTI_POOL_MAX 4
typedef struct aws_http_pool {
	pthread_mutex_t lock;
	void *idle[AWS_HTTP_POOL_MAX];
	int n;
	/* Idle multi handles: in a multi, connections live in the multi's
	 * cache, so keeping it keeps them alive for the next operation. */
	void *multi_idle[AWS_HTTP_MULTI_POOL_MAX];
	int nmulti;
} aws_http_pool;
void aws_http_pool_init(aws_http_pool *p);
void aws_http_pool_destroy(aws_http_pool *p);

/*
 * One signed POST: its easy handle and what must stay alive until it ends
 * (headers, error text, the reply). The form passed to begin is not copied
 * and must outlive the transfer; `x` must not move while it runs.
 */
typedef struct aws_http_xfer {
	void *handle;             /* CURL *, NULL once ended */
	struct curl_slist *headers;
	char errbuf[256];         /* CURL_ERROR_SIZE */
	int curl_code;            /* set by aws_http_multi_step */
	aws_http_reply reply;     /* owned until moved out */
} aws_http_xfer;

/* Prepares the signed POST of `form` (SigV4 by libcurl's
 * CURLOPT_AWS_SIGV4) on a handle from `pool` (NULL = a fresh one). 0, or
 * PV_EIO with reply.error saying why (nothing to end). */
int aws_http_xfer_begin(aws_http_xfer *x, aws_http_pool *pool, const aws_http_opts *o,
			const aws_creds *c, const char *form);
/* Ends a transfer with its curl code: fills reply.status / error, gives the
 * handle back to the pool (or frees it after a transport failure). 0 when
 * an HTTP answer came, PV_EIO when the transport failed. */
int aws_http_xfer_end(aws_http_xfer *x, aws_http_pool *pool, int curl_code);

/* One blocking call: begin, curl_easy_perform, end. Always fills `r` (free
 * with aws_http_reply_free); 0 when an HTTP answer came, PV_EIO when the
 * transport failed. */
int aws_http_post(aws_http_pool *pool, const aws_http_opts *o, const aws_creds *c,
		  const char *form, aws_http_reply *r);

/* Many transfers from one thread (curl multi). A multi handle comes from
 * the pool (NULL on failure) and goes back to it with no transfer in it. */
void *aws_http_multi_get(aws_http_pool *p);
void aws_http_multi_put(aws_http_pool *p, void *multi);
/* Starts a begun transfer. 0 or PV_EIO (then end it yourself). */
int aws_http_multi_add(void *multi, aws_http_xfer *x);
/* Takes a running transfer out and ends it as failed ("aborted"). */
void aws_http_multi_abort(void *multi, aws_http_xfer *x, aws_http_pool *pool);
/* Drives the transfers, waiting up to `wait_ms` (capped at 1 s) for
 * network activity. Returns a finished transfer (already taken out of the
 * multi, x->curl_code set; end it with aws_http_xfer_end) or NULL when none
 * finished in that time. */
aws_http_xfer *aws_http_multi_step(void *multi, long wait_ms);
/* A GET or PUT without signing (IMDS). */
int aws_http_plain(const char *method, const char *url, const char *header1,
		   long timeout_ms, aws_http_reply *r);
void aws_http_reply_free(aws_http_reply *r);

#endif
