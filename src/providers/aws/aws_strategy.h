/*
 * aws_strategy.h - the AWS strategy object, shared by aws.c (configuration,
 * the call loop, stats) and the operation files (launch.c, ops.c).
 */
#ifndef PV_PROVIDERS_AWS_STRATEGY_H
#define PV_PROVIDERS_AWS_STRATEGY_H

#include <stdatomic.h>
#include <sys/types.h>
#include "provisio/aws.h"
#include "providers/aws/aws_internal.h"
#include "util/rng.h"

typedef enum aws_action {
	ACT_RUN_INSTANCES = 0,
	ACT_CREATE_FLEET,
	ACT_DESCRIBE_INSTANCES,
	ACT_TERMINATE_INSTANCES,
	ACT_DESCRIBE_REGIONS,
	ACT_CREATE_LAUNCH_TEMPLATE,
	ACT_DESCRIBE_LAUNCH_TEMPLATES,
	/* groups.c: Spot Fleet, EC2 Fleet request/maintain, Auto Scaling */
	ACT_REQUEST_SPOT_FLEET,
	ACT_DESCRIBE_SPOT_FLEET_REQUESTS,
	ACT_DESCRIBE_SPOT_FLEET_INSTANCES,
	ACT_MODIFY_SPOT_FLEET_REQUEST,
	ACT_CANCEL_SPOT_FLEET_REQUESTS,
	ACT_DESCRIBE_FLEETS,
	ACT_DESCRIBE_FLEET_INSTANCES,
	ACT_MODIFY_FLEET,
	ACT_DELETE_FLEETS,
	ACT_CREATE_AUTO_SCALING_GROUP,
	ACT_DESCRIBE_AUTO_SCALING_GROUPS,
	ACT_TERMINATE_INSTANCE_IN_AUTO_SCALING_GROUP,
	ACT_SET_DESIRED_CAPACITY,
	ACT_DELETE_AUTO_SCALING_GROUP,
	ACT_DELETE_LAUNCH_TEMPLATE,
	ACT_DESCRIBE_IMAGES,     /* images.c: an image's root device */
	ACT_SSM_GET_PARAMETER,   /* ssm.c: SSM, JSON protocol */
	ACT_DESCRIBE_SPOT_INSTANCE_REQUESTS, /* notices.c: interruption notices */
	ACT_COUNT
} aws_action;

/* EC2's buckets by action class, and Auto Scaling's own (another API,
 * metered apart from EC2's). */
typedef enum aws_bucket_kind {
	BK_RUN = 0, BK_MUTATING, BK_DESCRIBE, BK_TERMINATE, BK_AUTOSCALING, BK_COUNT
} aws_bucket_kind;

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
	int describe_max_in_flight; /* DescribeInstances calls at once per operation */
	json_t *templates;
	json_t *lt_cache; /* launch template name -> id made or found (under lock) */
	char *autoscaling_url;  /* Auto Scaling's endpoint (its own Query API) */
	long group_fill_wait_ms; /* how long a new fleet / group is watched filling */
	/* a template this provider serves launches through a group: a
	 * configured one, or one it was asked to check (the broker checks the
	 * Host Factory templates at every open, so a process that returns
	 * machines another process launched looks their groups up) */
	atomic_bool group_templates;
	/* groups.c, under lock: group id -> {kind, type, target, weights,
	 * instances}, and instance id -> group id, for what this process
	 * launched (after a restart the instances' aws: tags tell). */
	json_t *group_cache, *instance_group;
	aws_bucket buckets[BK_COUNT];
	bool buckets_ready;
	bool buckets_shared; /* throttle.shared: take a limiter when given one */

	aws_http_pool pool;
	pthread_mutex_t lock; /* creds, rng, lt_cache */
	aws_creds creds;
	pv_rng rng;
	/* images.c / ssm.c, under lock: "ssm:<name>" -> {image, expires_ns},
	 * "root:<image id>" -> device name */
	json_t *image_cache;
	uint64_t ssm_ttl_ns; /* ssm_cache_ttl_s */
	char *ssm_url;       /* SSM's endpoint: ssm_endpoint_url, else endpoint_url
				when one is set (the emulator, a proxy), else AWS's */

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
	unsigned transient;     /* attempts that failed transiently (5xx, no answer) */
	unsigned throttled;     /* attempts answered RequestLimitExceeded */
	bool maybe_ran;         /* an attempt's answer was lost (no answer, 5xx): EC2
				   may have done it */
	bool deadline_hit;
} aws_call;

const char *aws_action_name(aws_action a);

/* Runs one action with retries inside `deadline_ns`. Always fills `c`
 * (free with aws_call_free); returns c->ok. */
bool aws_do(aws *a, aws_action act, const char *form, uint64_t deadline_ns, aws_call *c);

/* notices.c: marks each live spot instance of `list` (DescribeInstances'
 * instances) that EC2 has given an interruption notice with
 * "interruption_notice" (marked-for-termination / -stop / -hibernation),
 * "interruption_notice_message" and "interruption_notice_time", from
 * DescribeSpotInstanceRequests. Never fails the status it rides on: a
 * failed call returns its "Code: message" (new string), else NULL. */
char *aws_spot_notices(aws *a, const pv_operation *op, json_t *list, unsigned *calls);
void aws_call_free(aws_call *c);

/* The pieces of aws_do, shared with the multi driver (many.c) so both
 * paths apply the same rules. begin: credentials, HTTP options, counts the
 * attempt (false: no credentials, c failed). end: classifies the answer
 * (http_rc from aws_http_xfer_end / aws_http_post), drains the bucket on
 * RequestLimitExceeded. retry_delay: whether to retry after *delay_ns
 * (false: give up; sets deadline_hit when the backoff would pass the
 * deadline). call_end: health and error counters of a finished call. */
bool aws_attempt_begin(aws *a, aws_action act, uint64_t deadline_ns, aws_call *c,
		       aws_creds *cr, aws_http_opts *o);
void aws_attempt_end(aws *a, aws_action act, int http_rc, uint64_t deadline_ns, aws_call *c);
bool aws_retry_delay(aws *a, aws_call *c, unsigned attempt, uint64_t deadline_ns, uint64_t *delay_ns);
/* Full-jitter exponential backoff of retry `attempt` (0 = first): uniform
 * in [0, min(retry_max, retry_base << attempt)]. */
uint64_t aws_backoff_ns(aws *a, unsigned attempt);
void aws_call_end(aws *a, aws_call *c);
aws_bucket *aws_action_bucket(aws *a, aws_action act);
void aws_throttle_waited(aws *a, uint64_t ns);

/* ---- many.c: many calls in flight from one thread --------------------------- */

typedef enum aws_job_next {
	AWS_JOB_DONE,  /* the job is complete */
	AWS_JOB_AGAIN, /* j->form was replaced: one more call (next page) */
	AWS_JOB_STOP,  /* end the whole run; the reason stays in j->call */
} aws_job_next;

/* One independent piece of an operation (a DescribeInstances batch). The
 * caller sets form (owned by the caller, may be replaced by the callback)
 * and user; the driver fills the rest. */
typedef struct aws_job {
	char *form;
	void *user;
	aws_call call;     /* the job's current / last call */
	unsigned calls;    /* attempts over all the job's calls */
	/* driver state */
	int state;
	unsigned attempt;
	uint64_t not_before_ns;
	aws_http_xfer x;
} aws_job;

/* Called when a job's call has finished, ok or failed for good. */
typedef aws_job_next (*aws_job_fn)(aws *a, aws_job *j, void *ctx);

/* Runs the jobs of action `act`, at most max_in_flight calls at once from
 * the calling thread, lower indexes first, within deadline_ns (0 = none).
 * Returns -1 when every job completed, else the index of the job that
 * stopped the run (callback STOP, or its call hit the deadline: then
 * jobs[i].call.deadline_hit). Each job's call must be freed by the caller
 * (aws_call_free). */
ssize_t aws_do_many(aws *a, aws_action act, aws_job *jobs, size_t n, int max_in_flight,
		    uint64_t deadline_ns, aws_job_fn fn, void *ctx);
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
/* ---- ssm.c / images.c --------------------------------------------------------- */

/* The image id an SSM parameter holds (`name`: /aws/service/..., from
 * aws_image_ssm_name), from the cache while its TTL lasts, else through
 * GetParameter. 0 with the id in `out`; -1 with `res` failed (NOT_FOUND
 * naming the parameter when SSM has none). */
int aws_ssm_image(aws *a, const pv_operation *op, const char *name, char *out, size_t size, pv_result *res);
/* The root device name of `image_id` (DescribeImages, cached: an image
 * never changes). 0 or -1 with `res` failed. */
int aws_image_root_device(aws *a, const pv_operation *op, const char *image_id, char *out, size_t size,
			  pv_result *res);

/* Adds provider, request_id and template_id (from tags) to each instance. */
void aws_annotate(aws *a, json_t *instances);
/* DescribeInstances with `filters` (name, value, name, value, ..., NULL;
 * a value may list several, comma separated), every page, appending the
 * instances to `list`. false with `out` failed; *calls counts attempts. */
bool aws_describe_filters(aws *a, const pv_operation *op, const char *const *filters, json_t *list,
			  unsigned *calls, pv_result *out);

#endif
