/*
 * rng.c - xoshiro256** (Blackman & Vigna) with splitmix64 seeding.
 */
#include <math.h>
#include <stdbool.h>
#include "provisio/clock.h"
#include "util/rng.h"

uint64_t pv_mix64(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

void pv_rng_seed(pv_rng *r, uint64_t seed)
{
	for (int i = 0; i < 4; i++) {
		seed += 0x9e3779b97f4a7c15ull;
		r->s[i] = pv_mix64(seed);
	}
}

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t pv_rng_next(pv_rng *r)
{
	uint64_t *s = r->s;
	uint64_t result = rotl(s[1] * 5, 7) * 9;
	uint64_t t = s[1] << 17;
	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl(s[3], 45);
	return result;
}

double pv_rng_double(pv_rng *r) { return (double)(pv_rng_next(r) >> 11) * 0x1.0p-53; }

uint64_t pv_rng_below(pv_rng *r, uint64_t n)
{
	if (n == 0)
		return 0;
	return (uint64_t)(((unsigned __int128)pv_rng_next(r) * n) >> 64);
}

double pv_rng_normal(pv_rng *r)
{
	double u1 = pv_rng_double(r), u2 = pv_rng_double(r);
	if (u1 < 1e-300)
		u1 = 1e-300;
	return sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
}

pv_rng *pv_rng_thread(void)
{
	static _Thread_local pv_rng rng;
	static _Thread_local bool seeded;
	if (!seeded) {
		pv_rng_seed(&rng, pv_now_ns() ^ (uint64_t)(uintptr_t)&rng);
		seeded = true;
	}
	return &rng;
}
