/*
 * capabilities.h - what a strategy can do, and how healthy it is.
 */
#ifndef PROVISIO_CAPABILITIES_H
#define PROVISIO_CAPABILITIES_H

#include <stdbool.h>
#include <stdint.h>
#include <jansson.h>
#include "operation.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct pv_capabilities {
	char type[32];          /* provider type, e.g. "aws" */
	pv_op_set operations;   /* supported operation types */
	json_t *features;       /* owned object or NULL: {"spot": true, ...} */
	json_t *limitations;    /* owned object or NULL: {"max_instances_per_request": 50} */
} pv_capabilities;

void pv_capabilities_clear(pv_capabilities *c);
bool pv_capabilities_supports(const pv_capabilities *c, pv_op_type op);
/* True when every feature named in `required` (array of names, or object
 * whose keys are names) is present and truthy in c->features. */
bool pv_capabilities_has_features(const pv_capabilities *c, const json_t *required);
/* {"type":..,"supported_operations":[..],"features":{..},"limitations":{..}} */
json_t *pv_capabilities_to_json(const pv_capabilities *c);

typedef struct pv_health {
	bool healthy;
	char *message;           /* owned or NULL */
	int64_t checked_at_ms;   /* wall clock, Unix ms; 0 = never checked */
	uint64_t response_ns;    /* how long the check took */
	json_t *details;         /* owned object or NULL */
} pv_health;

void pv_health_clear(pv_health *h);
/* Sets healthy/unhealthy with a printf message (replacing the old one). */
void pv_health_set(pv_health *h, bool healthy, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Deep copy into `dst` (cleared first). 0 or PV_ENOMEM. */
int pv_health_copy(pv_health *dst, const pv_health *src);
/* {"healthy", "message", "checked_at_ms", "response_ms", "details"}. */
json_t *pv_health_to_json(const pv_health *h);
/* What a health_check operation answers (its data; the "health" metadata
 * of an UNHEALTHY failure): {"healthy", "status": "healthy"|"unhealthy",
 * "message", "latency_ms"}; a provider may add its own keys. New reference. */
json_t *pv_health_answer(bool healthy, const char *message, uint64_t latency_ns);
/* The reverse of pv_health_to_json into `out` (zeroed first; clear it).
 * 0, or PV_EINVAL naming the field that is missing or wrong. */
int pv_health_from_json(const json_t *j, pv_health *out);

#ifdef __cplusplus
}
#endif
#endif
