/*
 * frozen.h - JSON values that never change and never go away.
 *
 * A provider that answers every call with one shared object (the sim's
 * zero-latency health answers) freezes it, before sharing it: it promises
 * the object and everything in it are never changed again and live until
 * the process exits. Two things follow:
 *
 * - taking and dropping a reference to a frozen value costs nothing: its
 *   count is jansson's "not counted" mark ((size_t)-1, what json_true()
 *   and json_null() carry), so json_incref and json_decref leave it alone
 *   and threads sharing the answer do not fight over its cache line;
 * - a reader that finds an answer frozen may trust what it learnt from it
 *   last time (the composite's merge_all hands out its merge of the same
 *   frozen answers again) instead of reading it again.
 *
 * Freezing is for a handful of process-wide objects, not for answers made
 * per call: a frozen value is never freed.
 */
#ifndef PV_UTIL_FROZEN_H
#define PV_UTIL_FROZEN_H

#include <jansson.h>
#include <stdbool.h>

/* Freezes `j` and every value in it (the caller's reference becomes
 * permanent). Call it before any other thread can see `j`. NULL is fine. */
void pv_json_freeze(json_t *j);

/* Whether `j` is frozen: frozen here, or one of jansson's own constants
 * (true, false, null). NULL counts as frozen (no data). */
static inline bool pv_json_frozen(const json_t *j)
{
	return !j || j->refcount == (size_t)-1;
}

#endif
