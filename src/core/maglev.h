/*
 * maglev.h - Maglev consistent hashing (Eisenbud et al., NSDI 2016).
 *
 * Builds a lookup table of `len` (a prime) slots, each holding the index of
 * a backend, from the backends' names alone. Because the table depends only
 * on the names (hashed with FNV-1a, which is the same in every process and
 * on every platform), two processes with the same backends route every key
 * to the same backend; and removing one of N backends moves only about 1/N
 * of the keys, while every backend gets an almost equal share of slots.
 */
#ifndef PV_CORE_MAGLEV_H
#define PV_CORE_MAGLEV_H

#include <stddef.h>
#include <stdint.h>

/* The table size used for `n` backends: a prime >= 128 n (min 1021, max
 * 65521), so shares are within about 1 % of each other. */
size_t pv_maglev_size(size_t n);

/* Fills table[len] (len prime, > n) with backend indexes 0..n-1 from their
 * names. n must be 1..65535. 0, or PV_ENOMEM. */
int pv_maglev_build(uint16_t *table, size_t len, const char *const *names, size_t n);

/* The slot of a 64-bit key hash. */
static inline size_t pv_maglev_slot(uint64_t key_hash, size_t len)
{
	/* Mix first: FNV-1a's low bits of short keys are not uniform enough. */
	uint64_t x = key_hash;
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdull;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ull;
	x ^= x >> 33;
	return (size_t)(((unsigned __int128)x * len) >> 64);
}

#endif
