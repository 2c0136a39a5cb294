/*
 * emu.h - the EC2 emulator's state and actions, shared by main.c (the HTTP
 * server, SigV4, faults, throttling, admin endpoint, IMDS), emu.c (the
 * instance and launch template actions and the action table of every
 * service) and the files of the other actions and their helpers: tags.c,
 * status.c, groups.c (what EC2 Fleet, Spot Fleet and Auto Scaling share),
 * fleet.c, spotfleet.c, autoscaling.c, ssm.c, interrupt.c, filter.c,
 * paging.c, instance_types.c.
 */
#ifndef EC2EMU_EMU_H
#define EC2EMU_EMU_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <jansson.h>

#define EMU_NS "http://ec2.amazonaws.com/doc/2016-11-15/"

/* A growable string for XML answers. */
typedef struct emu_buf {
	char *s;
	size_t len, cap;
} emu_buf;

void eb_add(emu_buf *b, const char *s);
void eb_printf(emu_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* <name>escaped text</name> */
void eb_elem(emu_buf *b, const char *name, const char *text);
void eb_free(emu_buf *b);

typedef struct emu {
	char region[32];
	uint64_t boot_ms, shutdown_ms;  /* pending->running, shutting-down->terminated */
	uint64_t lt_settle_ms;          /* a new launch template is not usable to launch
					   for this long (EC2 is eventually consistent) */
	uint64_t status_ms;             /* a running instance's status checks stay
					   "initializing" for this long */
	int64_t capacity;               /* live instances allowed; -1 = unlimited */
	long page_size;                 /* DescribeInstances page without MaxResults; 0 = all */
	json_t *ice_types, *ice_azs;    /* arrays: InsufficientInstanceCapacity */
	json_t *instances;              /* array of objects, launch order */
	json_t *by_id;                  /* instance id -> the same objects */
	json_t *tokens;                 /* ClientToken -> {action, hash, body} */
	json_t *templates;              /* launch template name -> {id, name, created, data{}} */
	json_t *seeds;                  /* templates from --launch-template: survive a reset */
	json_t *groups;                 /* EC2 Fleets, Spot Fleets, Auto Scaling groups by
					   id / name (groups.c) */
	json_t *ssm;                    /* SSM parameter name -> {value, version, modified} */
	json_t *ssm_seeds;              /* from --ssm-parameter: survive a reset */
	json_t *images;                 /* image id -> root device name (images.c) */
	uint64_t next_id;
	uint64_t rng;
	unsigned char page_key[32];     /* signs NextTokens (paging.c) */
} emu;

/* An EC2 answer: HTTP status, EC2 error code ("" on success), XML body. */
typedef struct emu_reply {
	int status;
	char code[64];
	emu_buf body;
	const char *content_type; /* NULL: text/xml (the Query services) */
} emu_reply;

void emu_init(emu *e, const char *region, uint64_t seed);
void emu_reset(emu *e);
void emu_free(emu *e);
uint64_t emu_now_ms(void);
uint64_t emu_rand(emu *e);

/* The services this endpoint answers, by the name a request is signed for. */
bool emu_service_known(const char *service);
/* Runs one action of `service` (ec2, autoscaling, ssm) with its parameters:
 * the decoded form (name -> string) of the Query services, the JSON body of
 * ssm. `request_id` goes into the body. */
void emu_dispatch(emu *e, const char *service, const char *action, json_t *params, const char *request_id,
		  emu_reply *r);
/* The error envelope of `service`. */
void emu_service_error(emu_reply *r, const char *service, int status, const char *code, const char *message,
		       const char *request_id);

/* Adds a launch template with a given id, as if CreateLaunchTemplate had
 * made it, so tests can name ids they chose; `image` and `type` may be NULL
 * or "". A `seed` survives emu_reset. 0, or -1 with `err` saying why. */
int emu_add_template(emu *e, const char *id, const char *name, const char *image, const char *type, bool seed,
		     char *err, size_t size);

/* The EC2 error envelope. */
void emu_error(emu_reply *r, int status, const char *code, const char *message, const char *request_id);

/* Stats for the admin endpoint: instances by state, per ClientToken. */
json_t *emu_instance_stats(emu *e);

/* ---- shared by the action files ------------------------------------------------ */

/* The value of a plain filter `name` for `obj` (`buf` may hold it), NULL
 * when it has none. */
typedef const char *(*emu_field_fn)(emu *e, json_t *obj, const char *name, char *buf, size_t size);

/* A request parameter (decoded form pairs: name -> string), or NULL. */
static inline const char *param(json_t *p, const char *key) { return json_string_value(json_object_get(p, key)); }

static inline const char *paramf(json_t *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static inline const char *paramf(json_t *p, const char *fmt, ...)
{
	char key[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(key, sizeof key, fmt, ap);
	va_end(ap);
	return param(p, key);
}

static inline bool is_true(json_t *p, const char *key)
{
	const char *v = param(p, key);
	return v && strcmp(v, "true") == 0;
}

/* The XML declaration, <ActionResponse xmlns=...> and <requestId>. */
void emu_head(emu_buf *b, const char *action, const char *request_id);
/* DryRunOperation (412): the request would have succeeded. */
void emu_dry_run_ok(emu_reply *r, const char *request_id);
/* An instance's state now (it moves with time) and its code. */
const char *emu_state_of(emu *e, json_t *in, int *code);
/* Instances named by InstanceId.N, in that order; NULL with r filled
 * (InvalidInstanceID.Malformed / .NotFound) when one is malformed or unknown. */
json_t *emu_ids_param(emu *e, json_t *p, const char *request_id, emu_reply *r);
/* The value of DescribeInstances' filter `name` for the instance (see
 * emu_field_fn). */
const char *emu_instance_field(emu *e, json_t *in, const char *name, char *buf, size_t size);
/* i- and 8 or 17 lowercase hex digits, as EC2 makes them. */
bool emu_instance_id_ok(const char *id);
/* MaxResults: from 5 to 1000, and not with InstanceId.N. -1 when absent,
 * 0 with r filled when refused. */
long emu_max_results(json_t *p, const char *request_id, emu_reply *r);

/* The launch template with this id (else this name) that launches can use
 * now, or NULL; its "data" has ImageId, InstanceType, SubnetId, KeyName, tags. */
json_t *emu_template_find(emu *e, const char *id, const char *name);
/* NULL, $Default, $Latest or 1: every template here has one version. */
bool emu_template_version_ok(const char *version);
/* ClientToken idempotency: a replay of `token` is answered here (true) by
 * IdempotentParameterMismatch or by the first answer under this request's
 * id; false when the token is new (or NULL). */
bool emu_replay(emu *e, const char *action, json_t *p, const char *token, const char *request_id, emu_reply *r);
/* Keeps the answer to `token` (what follows its requestId): the record, for
 * the caller to add to, or NULL without a token. */
json_t *emu_remember(emu *e, const char *action, json_t *p, const char *token, emu_reply *r);
/* One instance launched now (a reservation of its own when `reservation`
 * is NULL); `tags` is copied. */
typedef struct emu_launch_spec {
	const char *image, *type, *subnet, *key;
	long weight; /* capacity units (fleets, groups) */
} emu_launch_spec;
json_t *emu_launch(emu *e, const emu_launch_spec *spec, const char *token, const char *lifecycle, json_t *tags,
		   const char *reservation, int index);
/* The AZ a subnet is in (stable, from its id; the region's first without one). */
const char *emu_az_of(emu *e, const char *subnet, char *buf, size_t size);
/* Whether one instance of this type can be launched in the subnet's AZ now
 * (not InsufficientInstanceCapacity, under --capacity). */
bool emu_can_launch(emu *e, const char *type, const char *subnet);
/* Starts shutting an instance down (once) with EC2's stateReason. */
void emu_terminate(emu *e, json_t *in, const char *reason_code, const char *reason_message);
/* Whether the instance is pending or running. */
bool emu_live(json_t *in);
json_t *emu_find(emu *e, const char *id);
/* A UUID-shaped id after `prefix` (sfr-, fleet-). */
void emu_uuid(emu *e, const char *prefix, char *out, size_t size);
/* ISO 8601 UTC now, as EC2 writes times. */
void emu_time_now(char *out, size_t size);
#define EMU_USER_SHUTDOWN "Client.UserInitiatedShutdown", "Client.UserInitiatedShutdown: User initiated shutdown"

/* instance_types.c: the types of EC2's InstanceType enum. */
bool emu_instance_type_known(const char *type);

/* filter.c: Filter.N.Name / Filter.N.Value.M of a describe action. `names`
 * lists the names it takes (NULL-terminated); "tag:" in it allows
 * tag:<key>, and "tag-key" / "tag-value" match the keys / values of the
 * object's "tags". An array of {name, values}, or NULL with r filled
 * (InvalidParameterValue "The filter 'x' is invalid") for another name. */
json_t *emu_filters(json_t *p, const char *const *names, const char *request_id, emu_reply *r);
/* Whether obj passes every filter (AND), any value of each (OR), values
 * with EC2's wildcards. */
bool emu_filters_match(emu *e, json_t *filters, json_t *obj, emu_field_fn field);
/* `*` any run, `?` one character, `\` makes the next one literal. */
bool emu_glob(const char *pattern, const char *s);

/* paging.c: NextToken, opaque and bound to the query that made it. */
void emu_paging_init(emu *e);
/* Where a describe starts: 0 without NextToken, else the position its
 * token stands for. -1 with r filled when the token was not made by this
 * emulator for this action and these parameters (InvalidParameterValue),
 * or for DryRun (DryRunOperation: the parameters were valid). */
long emu_describe_start(emu *e, const char *action, json_t *p, const char *request_id, emu_reply *r);
/* <nextToken> for the position `next`; nothing when next < 0 (the end). */
void emu_page_next(emu *e, const char *action, json_t *p, long next, emu_buf *b);

/* tags.c */
/* aws: (any case) is EC2's own prefix: clients may not set or delete it. */
bool emu_tag_key_reserved(const char *key);
/* Tags a client gives (key -> value): true, or false with r filled when
 * one is reserved (aws:) or too long. */
bool emu_tags_ok(json_t *tags, const char *request_id, emu_reply *r);
/* The keys and values of every <prefix>TagSpecification.N (any resource
 * type): true, or false with r filled when one is reserved or too long. */
bool emu_tag_specs_ok(json_t *p, const char *prefix, const char *request_id, emu_reply *r);
void emu_create_tags(emu *e, json_t *p, const char *request_id, emu_reply *r);
void emu_delete_tags(emu *e, json_t *p, const char *request_id, emu_reply *r);
void emu_describe_tags(emu *e, json_t *p, const char *request_id, emu_reply *r);

/* status.c */
/* images.c: DescribeImages, and an image's root device (POST /_emu/image). */
void emu_describe_images(emu *e, json_t *p, const char *request_id, emu_reply *r);
int emu_image_put(emu *e, const char *id, const char *root_device, char *err, size_t size);
void emu_describe_instance_status(emu *e, json_t *p, const char *request_id, emu_reply *r);
/* spot_requests.c: every spot instance's request, and the two-minute
 * interruption notice ("terminate", "stop" or "hibernate"; NULL =
 * terminate) that marks it while the instance still runs. */
void emu_describe_spot_instance_requests(emu *e, json_t *p, const char *request_id, emu_reply *r);
void emu_spot_request_new(emu *e, json_t *in);
bool emu_spot_notice_behaviour_ok(const char *behaviour);
void emu_spot_notice(emu *e, json_t *in, const char *behaviour);

/* groups.c: a set of instances kept at a target capacity (EC2 Fleet,
 * Spot Fleet, Auto Scaling group). See groups.c for the members. */
json_t *emu_group_new(emu *e, const char *kind, const char *id, const char *type);
/* Capacity units of the group's live instances, on-demand and spot. */
void emu_group_fulfilled(emu *e, json_t *g, long *on_demand, long *spot);
/* Launches towards the target (on-demand part first); the ids launched are
 * appended to `launched` when not NULL. */
void emu_group_fill(emu *e, json_t *g, json_t *launched);
/* Terminates the newest live instances above the target. */
void emu_group_trim(emu *e, json_t *g);
/* Terminates every live instance of the group. */
void emu_group_terminate_all(emu *e, json_t *g);
/* Maintain fleets and Auto Scaling groups replace what they lost (EC2 does
 * it in the background; here before every request is answered). */
void emu_groups_reconcile(emu *e);
/* The group's live instances, in launch order (new reference). */
json_t *emu_group_live(emu *e, json_t *g);
/* The launch specs of <prefix>LaunchTemplateConfigs.N (its Overrides, or
 * the template's own type): false with r filled when a template does not
 * exist or a spec has no image. */
bool emu_template_configs(emu *e, json_t *p, const char *prefix, json_t *specs, const char *request_id,
			  emu_reply *r);

/* "fulfilled", "pending_fulfillment" or "pending_termination". */
const char *emu_group_activity(emu *e, json_t *g);
/* A new target (and on-demand part, unless < 0): the excess terminated
 * when asked (newest first), the shortfall launched. */
void emu_group_resize(emu *e, json_t *g, long target, long on_demand, bool terminate_excess);
/* Deleted / cancelled: into `state`, its instances terminated or left running. */
void emu_group_end(emu *e, json_t *g, bool terminate, const char *state);
/* The answer of DescribeFleetInstances / DescribeSpotFleetInstances: the
 * group's live instances (filter instance-type, paged) and its id as
 * <id_elem>. The caller has found the group. */
void emu_active_instances(emu *e, json_t *g, const char *action, const char *id_elem, json_t *p,
			  const char *request_id, emu_reply *r);

/* The group `id` if it is of `kind`, else NULL. */
json_t *emu_group_get(emu *e, const char *id, const char *kind);
/* The group `id` (from the parameter `id_param`) of `kind`; NULL with r
 * filled (MissingParameter, or `not_found` "The <noun> 'x' does not exist"). */
json_t *emu_group_named(emu *e, const char *id, const char *kind, const char *id_param, const char *noun,
			const char *not_found, const char *request_id, emu_reply *r);
/* The group's state now: `terminating` turns `ended` once none of its
 * instances is left. */
const char *emu_group_state(emu *e, json_t *g, const char *terminating, const char *ended);
/* The words of DeleteFleets / CancelSpotFleetRequests, which end groups
 * alike: each named group of the kind, if active, into the terminating
 * or the running end state (TerminateInstances, required); the others
 * reported one by one. */
typedef struct emu_end_words {
	const char *action, *kind, *noun, *id_param, *id_elem;
	const char *ok_set, *bad_set, *current_elem, *previous_elem;
	const char *missing_code, *not_active_code, *terminating_state, *running_state;
	const char *(*state)(emu *e, json_t *g); /* its state now */
} emu_end_words;
void emu_end_groups(emu *e, json_t *p, const emu_end_words *w, const char *request_id, emu_reply *r);

/* fleet.c: DescribeFleets, DescribeFleetInstances, DeleteFleets,
 * ModifyFleet (CreateFleet is in emu.c, with RunInstances). */
void emu_describe_fleets(emu *e, json_t *p, const char *request_id, emu_reply *r);
void emu_describe_fleet_instances(emu *e, json_t *p, const char *request_id, emu_reply *r);
void emu_delete_fleets(emu *e, json_t *p, const char *request_id, emu_reply *r);
void emu_modify_fleet(emu *e, json_t *p, const char *request_id, emu_reply *r);

/* spotfleet.c */
void emu_request_spot_fleet(emu *e, json_t *p, const char *request_id, emu_reply *r);
void emu_describe_spot_fleet_requests(emu *e, json_t *p, const char *request_id, emu_reply *r);
void emu_describe_spot_fleet_instances(emu *e, json_t *p, const char *request_id, emu_reply *r);
void emu_cancel_spot_fleet_requests(emu *e, json_t *p, const char *request_id, emu_reply *r);
void emu_modify_spot_fleet_request(emu *e, json_t *p, const char *request_id, emu_reply *r);

/* autoscaling.c: the Auto Scaling Query API (service autoscaling). */
void emu_asg_error(emu_reply *r, int status, const char *code, const char *message, const char *request_id);
void emu_create_auto_scaling_group(emu *e, json_t *p, const char *request_id, emu_reply *r);
void emu_set_desired_capacity(emu *e, json_t *p, const char *request_id, emu_reply *r);
void emu_terminate_instance_in_asg(emu *e, json_t *p, const char *request_id, emu_reply *r);
void emu_describe_auto_scaling_groups(emu *e, json_t *p, const char *request_id, emu_reply *r);
void emu_describe_auto_scaling_instances(emu *e, json_t *p, const char *request_id, emu_reply *r);
void emu_delete_auto_scaling_group(emu *e, json_t *p, const char *request_id, emu_reply *r);

/* ssm.c: SSM's JSON protocol (service ssm). */
void emu_ssm_error(emu_reply *r, int status, const char *type, const char *message, const char *request_id);
void emu_get_parameter(emu *e, json_t *body, const char *request_id, emu_reply *r);
/* Adds a String parameter (seed: survives emu_reset). 0, or -1 with err. */
int emu_ssm_put(emu *e, const char *name, const char *value, bool seed, char *err, size_t size);

/* interrupt.c: spot interruptions, as EC2 takes spot capacity back. */
/* Interrupts up to `count` live spot instances (oldest first), or those
 * named in `ids`; the ids interrupted (new reference). */
json_t *emu_interrupt_spot(emu *e, long count, json_t *ids, bool notice, const char *behaviour);

#endif
