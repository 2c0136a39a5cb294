/*
 * operation.c - operation type names and the routing hash.
 */
#include <string.h>
#include <strings.h>
#include "provisio/error.h"
#include "provisio/operation.h"
#include "util/names.h"

static const char *const op_names[PV_OP_COUNT] = {
	"create_instances",      "terminate_instances",    "get_instance_status",
	"describe_resource_instances", "validate_template", "get_available_templates",
	"health_check",
};

const char *pv_op_name(pv_op_type type)
{
	return (unsigned)type < PV_OP_COUNT ? op_names[type] : "unknown";
}

int pv_op_parse(const char *name, pv_op_type *out)
{
	int i = pv_names_find(op_names, PV_OP_COUNT, name, "operation");
	if (i < 0)
		return i;
	*out = (pv_op_type)i;
	return 0;
}

const char *pv_operation_context_string(const pv_operation *op, const char *key)
{
	if (!op->context)
		return NULL;
	return json_string_value(json_object_get(op->context, key));
}

bool pv_operation_dry_run(const pv_operation *op)
{
	return op->context && json_is_true(json_object_get(op->context, "dry_run"));
}

uint64_t pv_fnv1a64(uint64_t h, const void *data, size_t len)
{
	const unsigned char *p = data;
	for (size_t i = 0; i < len; i++) {
		h ^= p[i];
		h *= 0x100000001b3ull;
	}
	return h;
}

static int hash_chunk(const char *buf, size_t size, void *data)
{
	uint64_t *h = data;
	*h = pv_fnv1a64(*h, buf, size);
	return 0;
}

uint64_t pv_operation_routing_hash(const pv_operation *op)
{
	const char *key = pv_operation_context_string(op, "routing_key");
	uint64_t h = PV_FNV64_OFFSET;
	if (key)
		return pv_fnv1a64(h, key, strlen(key));
	const char *type = pv_op_name(op->type);
	h = pv_fnv1a64(h, type, strlen(type));
	h = pv_fnv1a64(h, "\n", 1);
	if (op->params)
		json_dump_callback(op->params, hash_chunk, &h, JSON_SORT_KEYS | JSON_COMPACT);
	return h;
}
