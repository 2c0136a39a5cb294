/*
 * spare.h - one block kept per thread for objects made and freed once per
 * call.
 *
 * A deferred result part (a fallback's account of an answer from its
 * second strategy) is made on every call of a hot path and freed when the
 * caller clears the result, usually on the same thread right after. Each
 * thread keeps the last freed block and hands it out again, so such a path
 * does not go through malloc and free each time; a block larger than any
 * asked for so far replaces a smaller one.
 */
#ifndef PV_UTIL_SPARE_H
#define PV_UTIL_SPARE_H

#include <stddef.h>

/* At least `size` bytes, uninitialized; NULL when out of memory. */
void *pv_spare_alloc(size_t size);

/* Gives back a block of pv_spare_alloc (any thread). NULL is fine. */
void pv_spare_free(void *p);

#endif
