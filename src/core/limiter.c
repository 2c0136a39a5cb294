/*
 * limiter.c - the limiter base: reference counting and dispatch. The
 * buckets themselves live wherever an implementation keeps them (the
 * broker's: in the store, src/broker/limiter.c).
 */
#include <stdlib.h>
#include "provisio/limiter.h"

void pv_limiter_setup(pv_limiter *l, const pv_limiter_methods *methods)
{
	l->methods = methods;
	atomic_init(&l->refs, 1);
}

pv_limiter *pv_limiter_ref(pv_limiter *l)
{
	if (l)
		atomic_fetch_add_explicit(&l->refs, 1, memory_order_relaxed);
	return l;
}

void pv_limiter_unref(pv_limiter *l)
{
	if (!l || atomic_fetch_sub_explicit(&l->refs, 1, memory_order_acq_rel) != 1)
		return;
	if (l->methods->destroy)
		l->methods->destroy(l);
	free(l);
}

int pv_limiter_take(pv_limiter *l, const char *key, double capacity, double refill_per_s,
		    uint64_t *wait_ns)
{
	return l->methods->take(l, key, capacity, refill_per_s, wait_ns);
}

int pv_limiter_drain(pv_limiter *l, const char *key, double capacity, double refill_per_s)
{
	return l->methods->drain(l, key, capacity, refill_per_s);
}
