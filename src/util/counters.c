/*
 * counters.c - event counters split by thread (see counters.h).
 */
#include <stdlib.h>
#include "provisio/error.h"
#include "util/counters.h"

_Thread_local unsigned pv_shard_slot;

unsigned pv_shard_assign(void)
{
	static atomic_uint next;
	unsigned s = atomic_fetch_add_explicit(&next, 1, memory_order_relaxed) % PV_SHARDS;
	pv_shard_slot = s + 1;
	return s;
}

int pv_counters_init(pv_counters *c)
{
	c->row = aligned_alloc(PV_CACHE_LINE, PV_SHARDS * sizeof *c->row);
	if (!c->row)
		return pv_error_set(PV_ENOMEM, "out of memory");
	for (unsigned s = 0; s < PV_SHARDS; s++)
		for (unsigned i = 0; i < PV_COUNTERS_MAX; i++)
			atomic_init(&c->row[s].v[i], 0);
	return 0;
}

void pv_counters_destroy(pv_counters *c)
{
	free(c->row);
	c->row = NULL;
}

uint64_t pv_counters_get(const pv_counters *c, unsigned which)
{
	uint64_t sum = 0;
	for (unsigned s = 0; s < PV_SHARDS; s++)
		sum += atomic_load_explicit(&c->row[s].v[which], memory_order_relaxed);
	return sum;
}

void pv_counters_set(pv_counters *c, unsigned which, uint64_t v)
{
	for (unsigned s = 0; s < PV_SHARDS; s++)
		atomic_store_explicit(&c->row[s].v[which], s == 0 ? v : 0, memory_order_relaxed);
}
