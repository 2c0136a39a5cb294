/*
 * frozen.c - the registry of frozen JSON values (frozen.h): a short list,
 * appended to and never shrunk, read without a lock.
 */
#include <stdatomic.h>
#include "provisio/error.h"
#include "util/frozen.h"

static _Atomic(const json_t *) frozen[PV_FROZEN_MAX];
static atomic_size_t n_frozen;

int pv_json_freeze(json_t *j)
{
	if (pv_json_frozen(j))
		return 0;
	size_t at = atomic_fetch_add(&n_frozen, 1);
	if (at >= PV_FROZEN_MAX) {
		atomic_fetch_sub(&n_frozen, 1);
		return pv_error_set(PV_ESTATE, "cannot freeze a JSON value: %d are frozen already",
				    PV_FROZEN_MAX);
	}
	atomic_store(&frozen[at], j);
	return 0;
}

bool pv_json_frozen(const json_t *j)
{
	if (!j || json_is_null(j))
		return true;
	size_t n = atomic_load(&n_frozen);
	for (size_t i = 0; i < n && i < PV_FROZEN_MAX; i++)
		if (atomic_load(&frozen[i]) == j)
			return true;
	return false;
}
