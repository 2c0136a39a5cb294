/*
 * swrr.c - smooth weighted round robin schedules (see swrr.h).
 */
#include <math.h>
#include <stdlib.h>
#include "provisio/error.h"
#include "util/swrr.h"

static uint64_t gcd64(uint64_t a, uint64_t b)
{
	while (b) {
		uint64_t t = a % b;
		a = b;
		b = t;
	}
	return a;
}

/* Integer weights into w; returns the cycle length. */
static uint64_t integer_weights(const double *weights, size_t n, size_t max_len, uint64_t *w)
{
	uint64_t sum = 0, g = 0;
	for (size_t i = 0; i < n; i++) {
		w[i] = weights[i] > 0 ? (uint64_t)llround(weights[i] * 1000.0) : 0;
		if (weights[i] > 0 && w[i] == 0)
			w[i] = 1;
		sum += w[i];
	}
	if (sum == 0) {
		for (size_t i = 0; i < n; i++)
			w[i] = 1;
		sum = n;
	}
	if (sum > max_len) {
		double scale = (double)max_len / (double)sum;
		for (size_t i = 0; i < n; i++)
			if (w[i])
				w[i] = (double)w[i] * scale < 1 ? 1 : (uint64_t)((double)w[i] * scale);
	}
	for (size_t i = 0; i < n; i++)
		g = gcd64(g, w[i]);
	sum = 0;
	for (size_t i = 0; i < n; i++) {
		w[i] /= g;
		sum += w[i];
	}
	return sum;
}

int pv_swrr_schedule(const double *weights, size_t n, size_t max_len, uint32_t **out, size_t *len)
{
	*out = NULL;
	*len = 0;
	uint64_t *w = malloc((n ? n : 1) * sizeof *w);
	int64_t *cur = calloc(n ? n : 1, sizeof *cur);
	uint32_t *sched = NULL;
	uint64_t total = 0;
	if (w && cur && n) {
		total = integer_weights(weights, n, max_len, w);
		sched = malloc(total * sizeof *sched);
	}
	if (!w || !cur || (n && !sched)) {
		free(w);
		free(cur);
		return pv_error_set(PV_ENOMEM, "out of memory");
	}
	for (uint64_t step = 0; step < total; step++) {
		size_t best = 0;
		for (size_t i = 0; i < n; i++) {
			cur[i] += (int64_t)w[i];
			if (cur[i] > cur[best])
				best = i;
		}
		cur[best] -= (int64_t)total;
		sched[step] = (uint32_t)best;
	}
	free(w);
	free(cur);
	*out = sched;
	*len = (size_t)total;
	return 0;
}
