/*
 * rng.h - small, fast, seedable random numbers (xoshiro256** seeded by
 * splitmix64). Not for secrets. One state per owner, or per thread.
 */
#ifndef PV_UTIL_RNG_H
#define PV_UTIL_RNG_H

#include <stdint.h>

typedef struct pv_rng {
	uint64_t s[4];
} pv_rng;

void pv_rng_seed(pv_rng *r, uint64_t seed);
uint64_t pv_rng_next(pv_rng *r);
/* Uniform in [0, 1). */
double pv_rng_double(pv_rng *r);
/* Uniform in [0, n) without modulo bias worth noticing (Lemire). */
uint64_t pv_rng_below(pv_rng *r, uint64_t n);
/* Standard normal (Box-Muller). */
double pv_rng_normal(pv_rng *r);

/* A per-thread generator seeded once from time and thread address. */
pv_rng *pv_rng_thread(void);

/* splitmix64 step: a good 64-bit mixer for seeds and hashes. */
uint64_t pv_mix64(uint64_t x);

#endif
