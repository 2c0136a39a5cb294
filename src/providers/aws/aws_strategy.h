/*
 * aws_strategy.h - the AWS strategy object, shared by aws.c (configuration,
 * the call loop, stats) and the operation files (launch.c, ops.c).
 */
#ifndef PV_PROVIDERS_AWS_STRATEGY_H
#define PV_PROVIDERS_AWS_STRATEGY_H

#include <stdatomic.h>
#include "provisio/aws.h"
#include "providers/aws/aws_internal.h"
#include "util/rng.h"

typedef enum aws_action {
	ACT_RUN_INSTANCES = 0,
	ACT_CREATE_FLEET,
	ACT_DESCRIBE_INSTANCES,
	ACT_TERMINATE_INSTANCES,
	ACT_DESCRIBE_REGIONS,
	ACT_COUNT
} aws_action;

typedef enum aws_bucket_kind { BK_RUN = 0, BK_MUTATING, BK_DESCRIBE, BK_TERMINATE, BK_COUNT } aws_bucket_kind;

typedef struct aws {
	pv_strategy base;
	const pv_clock *clock;
	char region[64];
	char *endpoint_url, *proxy, *profile, *imds_endpoint;
	char *cfg_access_key, *cfg_secret, *cfg_token; /* explicit; wiped on destroy */
	long connect_timeout_ms, timeout_ms, imds_timeout_ms;
	bool verify_tls, imds_enabled;
	int max_retries;
	uint64_t retry_base_ns, retry_max_ns;
	int max_per_call;
	json_t *templates;
	aws_bucket buckets[BK_COUNT];
	bool buckets_ready;

	aws_http_pool pool;
	pthread_mutex_t lock; /* creds, rng */
	aws_creds creds;
	pv_rng rng;

	atomic_uint_fast64_t calls[ACT_COUNT];
	atomic_uint_fast64_t retries, throttled_received, transport_errors, throttle_wait_ns;
	atomic_uint_fast64_t errors[PV_CLASS_INTERNAL + 1];
	atomic_int health; /* 0 unknown, 1 healthy, 2 unhealthy: outcome of the last call */
} aws;

/* What one EC2 call (with its retries) came to. */
typedef struct aws_call {
	aws_http_reply reply;   /* the last answer */
	bool ok;
	pv_error_class cls;
	char ec2_code[96];
	char *ec2_message;      /* owned */
	char request_id[80];
	unsigned attempts;
	bool deadline_hit;
} aws_call;

const char *aws_action_name(aws_action a);

/* Runs one action with retries inside `deadline_ns`. Always fills `c`
 * (free with aws_call_free); returns c->ok. */
bool aws_do(aws *a, aws_action act, const char *form, uint64_t deadline_ns, aws_call *c);
void aws_call_free(aws_call *c);
/* Turns a failed call into a failed result (code, class, message without
 * secrets, metadata with the EC2 code and request id). */
void aws_call_fail(aws *a, aws_action act, const aws_call *c, pv_result *out);

/* The operations (launch.c, ops.c). */
void aws_op_create(aws *a, const pv_operation *op, pv_result *out);
void aws_op_validate(aws *a, const pv_operation *op, pv_result *out);
void aws_op_terminate(aws *a, const pv_operation *op, pv_result *out);
void aws_op_status(aws *a, const pv_operation *op, pv_result *out, bool by_resource);
void aws_op_health(aws *a, const pv_operation *op, pv_result *out);
/* The template an operation names: params.template or the configured one
 * with params.template_id. Borrowed; NULL with `out` failed. */
const json_t *aws_template(aws *a, const pv_operation *op, pv_result *out);
/* Adds provider, request_id and template_id (from tags) to each instance. */
void aws_annotate(aws *a, json_t *instances);

#endif
