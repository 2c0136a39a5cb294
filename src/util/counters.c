/*
 * counters.c - event counters split by thread (see counters.h).
 */
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include "provisio/error.h"
#include "util/counters.h"

_Thread_local unsigned pv_shard_slot;

/* Whether each row has an owner; a thread gives its row back as it exits. */
static atomic_bool owned[PV_SHARDS];
static pthread_key_t owner_key;
static pthread_once_t owner_once = PTHREAD_ONCE_INIT;

static void give_back(void *slot)
{
	pv_shard_slot = PV_SHARD_SHARED + 1; /* for later destructors that count */
	/* release: the next owner's first load sees this thread's last store */
	atomic_store_explicit(&owned[(uintptr_t)slot - 1], false, memory_order_release);
}

static void make_key(void)
{
	if (pthread_key_create(&owner_key, give_back) != 0)
		owner_key = (pthread_key_t)-1; /* rows then stay owned until exit */
}

unsigned pv_shard_assign(void)
{
	static atomic_uint next; /* where the search starts: threads spread */
	pthread_once(&owner_once, make_key);
	unsigned start = atomic_fetch_add_explicit(&next, 1, memory_order_relaxed);
	for (unsigned i = 0; i < PV_SHARDS; i++) {
		unsigned s = (start + i) % PV_SHARDS;
		bool free_row = false;
		if (!atomic_load_explicit(&owned[s], memory_order_relaxed) &&
		    atomic_compare_exchange_strong_explicit(&owned[s], &free_row, true,
							    memory_order_acquire, memory_order_relaxed)) {
			if (owner_key != (pthread_key_t)-1)
				pthread_setspecific(owner_key, (void *)(uintptr_t)(s + 1));
			pv_shard_slot = (s + 1) | PV_SHARD_OWNED;
			return pv_shard_slot;
		}
	}
	pv_shard_slot = PV_SHARD_SHARED + 1;
	return pv_shard_slot;
}

int pv_counters_init(pv_counters *c)
{
	c->row = aligned_alloc(PV_CACHE_LINE, (PV_SHARDS + 1) * sizeof *c->row);
	if (!c->row)
		return pv_error_set(PV_ENOMEM, "out of memory");
	for (unsigned s = 0; s <= PV_SHARDS; s++)
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
	for (unsigned s = 0; s <= PV_SHARDS; s++)
		sum += atomic_load_explicit(&c->row[s].v[which], memory_order_relaxed);
	return sum;
}

void pv_counters_set(pv_counters *c, unsigned which, uint64_t v)
{
	for (unsigned s = 0; s <= PV_SHARDS; s++)
		atomic_store_explicit(&c->row[s].v[which], s == 0 ? v : 0, memory_order_relaxed);
}
