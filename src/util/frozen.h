/*
 * frozen.h - JSON values that never change and never go away.
 *
 * A provider that answers every call with one shared object (the sim's
 * zero-latency health answers) freezes it: it promises the object is never
 * changed again and lives until the process exits. A reader that finds an
 * answer frozen may trust what it learnt from it last time (the composite's
 * merge_all reuses its merge of the same frozen answers) instead of reading
 * it again. Freezing is for a handful of process-wide objects, not for
 * answers made per call.
 */
#ifndef PV_UTIL_FROZEN_H
#define PV_UTIL_FROZEN_H

#include <jansson.h>
#include <stdbool.h>

/* The most objects a process can freeze. */
#define PV_FROZEN_MAX 32

/* Freezes `j` (its owner keeps a reference until exit). 0, or PV_ESTATE
 * when PV_FROZEN_MAX objects are frozen already (`j` is then simply not
 * trusted: it is read every time, as any answer). */
int pv_json_freeze(json_t *j);

/* Whether `j` was frozen; NULL and JSON null count as frozen. */
bool pv_json_frozen(const json_t *j);

#endif
