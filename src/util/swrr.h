/*
 * swrr.h - nginx's smooth weighted round robin, unrolled into a schedule.
 *
 * Each step adds every weight to its current value, picks the largest and
 * subtracts the total; one full cycle is stored, so a pick is an atomic
 * counter and an array read. Weights become integers at 1/1000 resolution,
 * reduced by their gcd (0.6/0.3/0.1 -> 6/3/1, a cycle of 10 with exactly
 * those counts; 5:1:1 gives a a b a c a a, never a a a a a b c). A cycle
 * longer than `max_len` is scaled down, each non-zero weight keeping at
 * least 1. A zero weight is never scheduled; all zero means equal shares.
 * Used by the context's weighted_round_robin and the balancer's.
 */
#ifndef PV_UTIL_SWRR_H
#define PV_UTIL_SWRR_H

#include <stddef.h>
#include <stdint.h>

/* Builds the schedule of indexes into `weights` (n >= 1). *out is malloc'ed
 * (caller frees), *len its length. 0 or PV_ENOMEM. */
int pv_swrr_schedule(const double *weights, size_t n, size_t max_len, uint32_t **out,
		     size_t *len);

#endif
