/*
 * counters.c - event counters split by thread (see counters.h).
 */
#include <stdlib.h>
#include <string.h>
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

int pv_counters_init(pv_counters *c, unsigned n)
{
	const unsigned per_line = PV_CACHE_LINE / sizeof c->rows[0];
	c->n = n;
	c->stride = (n + per_line - 1) / per_line * per_line;
	size_t size = (size_t)PV_SHARDS * c->stride * sizeof c->rows[0];
	c->rows = size ? aligned_alloc(PV_CACHE_LINE, size) : NULL;
	if (!c->rows)
		return size ? pv_error_set(PV_ENOMEM, "out of memory") : 0;
	for (size_t i = 0; i < (size_t)PV_SHARDS * c->stride; i++)
		atomic_init(&c->rows[i], 0);
	return 0;
}

void pv_counters_destroy(pv_counters *c)
{
	free((void *)c->rows);
	c->rows = NULL;
}

uint64_t pv_counters_get(const pv_counters *c, unsigned which)
{
	uint64_t sum = 0;
	for (unsigned s = 0; s < PV_SHARDS; s++)
		sum += atomic_load_explicit(&c->rows[s * c->stride + which], memory_order_relaxed);
	return sum;
}

void pv_counters_set(pv_counters *c, unsigned which, uint64_t v)
{
	for (unsigned s = 0; s < PV_SHARDS; s++)
		atomic_store_explicit(&c->rows[s * c->stride + which], s == 0 ? v : 0,
				      memory_order_relaxed);
}
