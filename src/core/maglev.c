/*
 * maglev.c - the Maglev lookup table (see core/maglev.h).
 *
 * Each backend walks its own permutation of the slots (offset + j * skip
 * mod len, both from hashes of its name); backends take turns claiming
 * their next free slot until the table is full. Taking turns is what gives
 * the near-equal shares; permutations fixed by names are what give the
 * stability.
 */
#include <stdlib.h>
#include <string.h>
#include "core/maglev.h"
#include "provisio/error.h"
#include "provisio/operation.h"

static const size_t primes[] = {1021, 2039, 4093, 8191, 16381, 32749, 65521};

size_t pv_maglev_size(size_t n)
{
	for (size_t i = 0; i < sizeof primes / sizeof primes[0]; i++)
		if (primes[i] >= 128 * n)
			return primes[i];
	return primes[sizeof primes / sizeof primes[0] - 1];
}

int pv_maglev_build(uint16_t *table, size_t len, const char *const *names, size_t n)
{
	uint64_t *offset = malloc(n * sizeof *offset);
	uint64_t *skip = malloc(n * sizeof *skip);
	uint64_t *next = calloc(n, sizeof *next);
	if (!offset || !skip || !next) {
		free(offset);
		free(skip);
		free(next);
		return pv_error_set(PV_ENOMEM, "out of memory");
	}
	for (size_t i = 0; i < n; i++) {
		size_t l = strlen(names[i]);
		uint64_t h1 = pv_fnv1a64(PV_FNV64_OFFSET, names[i], l);
		uint64_t h2 = pv_fnv1a64(pv_fnv1a64(PV_FNV64_OFFSET, "maglev-skip", 11), names[i], l);
		offset[i] = h1 % len;
		skip[i] = h2 % (len - 1) + 1;
	}
	memset(table, 0xff, len * sizeof *table);
	size_t filled = 0;
	while (filled < len) {
		for (size_t i = 0; i < n && filled < len; i++) {
			size_t c;
			do {
				c = (size_t)((offset[i] + next[i] * skip[i]) % len);
				next[i]++;
			} while (table[c] != 0xffff);
			table[c] = (uint16_t)i;
			filled++;
		}
	}
	free(offset);
	free(skip);
	free(next);
	return 0;
}
