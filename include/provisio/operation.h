/*
 * operation.h - what a strategy is asked to do.
 *
 * An operation is a plain struct the caller owns (usually on its stack): a
 * type, JSON parameters, a JSON context and a deadline. Nothing in it is
 * copied on the hot path; strategies borrow it for the duration of a call.
 */
#ifndef PROVISIO_OPERATION_H
#define PROVISIO_OPERATION_H

#include <stdbool.h>
#include <stdint.h>
#include <jansson.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The seven operation types of the spec. The values are stable bit indexes
 * for pv_op_set. */
typedef enum pv_op_type {
	PV_OP_CREATE_INSTANCES = 0,
	PV_OP_TERMINATE_INSTANCES = 1,
	PV_OP_GET_INSTANCE_STATUS = 2,
	PV_OP_DESCRIBE_RESOURCE_INSTANCES = 3,
	PV_OP_VALIDATE_TEMPLATE = 4,
	PV_OP_GET_AVAILABLE_TEMPLATES = 5,
	PV_OP_HEALTH_CHECK = 6,
	PV_OP_COUNT = 7
} pv_op_type;

/* A set of operation types: bit (1u << type). */
typedef uint32_t pv_op_set;
#define PV_OP_BIT(t) ((pv_op_set)1u << (t))
#define PV_OP_SET_ALL ((pv_op_set)((1u << PV_OP_COUNT) - 1u))

/* "create_instances", ...; "unknown" for out-of-range values. Static. */
const char *pv_op_name(pv_op_type type);

/* Parses a name (lower case, as above; upper case accepted). Returns 0, or
 * PV_EINVAL with a message listing the valid names. */
int pv_op_parse(const char *name, pv_op_type *out);

typedef struct pv_operation {
	pv_op_type type;
	json_t *params;       /* borrowed; NULL = {} */
	json_t *context;      /* borrowed; NULL = {}: trace_id, debug, routing_key, dry_run */
	uint64_t deadline_ns; /* monotonic (pv_clock time); 0 = none */
} pv_operation;

/* A string field of the context, NULL when absent. Borrowed from op. */
const char *pv_operation_context_string(const pv_operation *op, const char *key);

/* True when the context says dry_run: true. */
bool pv_operation_dry_run(const pv_operation *op);

/*
 * The key hash-based routing uses: context "routing_key" when present, else
 * a hash of the type name and the parameters serialised with sorted keys.
 * 64-bit FNV-1a, stable across processes, platforms and runs.
 */
uint64_t pv_operation_routing_hash(const pv_operation *op);

/* 64-bit FNV-1a of `len` bytes, continuing from `h` (start with
 * PV_FNV64_OFFSET). Exposed so other layers hash the same way. */
#define PV_FNV64_OFFSET 0xcbf29ce484222325ull
uint64_t pv_fnv1a64(uint64_t h, const void *data, size_t len);

#ifdef __cplusplus
}
#endif
#endif
