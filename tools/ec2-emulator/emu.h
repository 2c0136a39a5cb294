/*
 * emu.h - the EC2 emulator's state and actions, shared by emu.c (the EC2
 * actions and their XML) and main.c (the HTTP server, SigV4, faults,
 * throttling, admin endpoint, IMDS).
 */
#ifndef EC2EMU_EMU_H
#define EC2EMU_EMU_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
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

#endif
