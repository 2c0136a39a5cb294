/*
 * counters.h - event counters split by thread.
 *
 * A counter that every call bumps is a cache line every core writes: two
 * threads running the same strategy then spend more time passing that line
 * back and forth than doing the call. So a counter set keeps one row of
 * counters per shard, each row on cache lines of its own, and a thread
 * always bumps the row of its shard; readers add the rows up.
 *
 * A thread owns a shard while it lives (up to PV_SHARDS threads at once):
 * as the row's only writer it bumps with a plain load and store, not a
 * locked add (which alone cost a zero-latency call a tenth of its time).
 * Threads beyond those share one more row, with atomic adds. (The rows are
 * allocated apart, aligned: the owners come from calloc, which does not
 * align to a line.)
 */
#ifndef PV_UTIL_COUNTERS_H
#define PV_UTIL_COUNTERS_H

#include <stdalign.h>
#include <stdatomic.h>
#include <stdint.h>

#define PV_SHARDS 16
#define PV_CACHE_LINE 64
#define PV_COUNTERS_MAX 16 /* counters in a set: a row is two cache lines */

typedef struct pv_counter_row {
	alignas(PV_CACHE_LINE) _Atomic uint64_t v[PV_COUNTERS_MAX];
} pv_counter_row;

typedef struct pv_counters {
	pv_counter_row *row; /* PV_SHARDS + 1 of them */
} pv_counters;

#define PV_SHARD_SHARED PV_SHARDS /* the row of the threads that own none */
#define PV_SHARD_OWNED 0x100u     /* in pv_shard_slot: the row is this thread's */

/* This thread's row + 1, with PV_SHARD_OWNED when it owns it (0 until the
 * thread first counts). */
extern _Thread_local unsigned pv_shard_slot;
unsigned pv_shard_assign(void);

static inline unsigned pv_shard_slot_get(void)
{
	unsigned s = pv_shard_slot;
	return s ? s : pv_shard_assign();
}

/* This thread's row, 0..PV_SHARDS (PV_SHARD_SHARED when it owns none). */
static inline unsigned pv_shard(void)
{
	return (pv_shard_slot_get() & ~PV_SHARD_OWNED) - 1;
}

/* PV_COUNTERS_MAX counters at 0. 0 or PV_ENOMEM. */
int pv_counters_init(pv_counters *c);
void pv_counters_destroy(pv_counters *c);

static inline void pv_counters_add(pv_counters *c, unsigned which, uint64_t v)
{
	unsigned s = pv_shard_slot_get();
	_Atomic uint64_t *x = &c->row[(s & ~PV_SHARD_OWNED) - 1].v[which];
	if (s & PV_SHARD_OWNED) /* the only writer: readers see one value or the next */
		atomic_store_explicit(x, atomic_load_explicit(x, memory_order_relaxed) + v,
				      memory_order_relaxed);
	else
		atomic_fetch_add_explicit(x, v, memory_order_relaxed);
}

/* The total of counter `which` (a moment's sum: rows change under it). */
uint64_t pv_counters_get(const pv_counters *c, unsigned which);

/* Sets counter `which` to `v` (restoring saved state; not atomic with adds). */
void pv_counters_set(pv_counters *c, unsigned which, uint64_t v);

#endif
