/*
 * emu.h - the EC2 emulator's state and actions, shared by main.c (the HTTP
 * server, SigV4, faults, throttling, admin endpoint, IMDS), emu.c (the
 * instance and launch template actions and the action table) and the files
 * of the other actions and their helpers: tags.c, status.c, filter.c,
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
	uint64_t next_id;
	uint64_t rng;
	unsigned char page_key[32];     /* signs NextTokens (paging.c) */
} emu;

/* An EC2 answer: HTTP status, EC2 error code ("" on success), XML body. */
typedef struct emu_reply {
	int status;
	char code[64];
	emu_buf body;
} emu_reply;

void emu_init(emu *e, const char *region, uint64_t seed);
void emu_reset(emu *e);
void emu_free(emu *e);
uint64_t emu_now_ms(void);
uint64_t emu_rand(emu *e);

/* Runs one action with its decoded parameters (object name -> string).
 * `request_id` goes into the body. */
void emu_dispatch(emu *e, const char *action, json_t *params, const char *request_id, emu_reply *r);

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
/* The keys and values of every <prefix>TagSpecification.N (any resource
 * type): true, or false with r filled when one is reserved or too long. */
bool emu_tag_specs_ok(json_t *p, const char *prefix, const char *request_id, emu_reply *r);
void emu_create_tags(emu *e, json_t *p, const char *request_id, emu_reply *r);
void emu_delete_tags(emu *e, json_t *p, const char *request_id, emu_reply *r);
void emu_describe_tags(emu *e, json_t *p, const char *request_id, emu_reply *r);

/* status.c */
void emu_describe_instance_status(emu *e, json_t *p, const char *request_id, emu_reply *r);

#endif
