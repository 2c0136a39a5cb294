/*
 * balancer_meta.c - the balancer's result metadata, without allocating.
 *
 * Every result gets {"balancer": {"name", "algorithm", "strategy"}}. Built
 * with jansson that is six mallocs and frees, about 100 ns per operation:
 * more than the rest of the balancer. So each thread keeps a few such
 * objects and hands one to the result with an extra reference of its own.
 * When the result is cleared, the refcount drops back to 1: nobody else can
 * reach the object, so a later operation on this thread reuses it (only the
 * value is swapped). While a caller still holds it (refcount > 1) it is
 * never touched, and an object a caller changed (more keys) is dropped, not
 * reused: the caller always owns an ordinary object it may read or modify.
 */
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "core/balancer_internal.h"

#define META_POOL LB_META_POOL

static pthread_key_t meta_key;
static pthread_once_t meta_once = PTHREAD_ONCE_INIT;

typedef struct meta_pool {
	json_t *obj[META_POOL];
	json_t *val[META_POOL]; /* the member meta obj[k] was last given */
} meta_pool;

/* The fast path reads the thread-local pointer; the key exists only so the
 * pool is freed when the thread exits. */
static _Thread_local meta_pool *tls_pool;

static void meta_pool_free(void *p)
{
	meta_pool *pool = p;
	for (unsigned i = 0; i < META_POOL; i++)
		json_decref(pool->obj[i]);
	free(pool);
	tls_pool = NULL;
}

static void meta_key_create(void) { pthread_key_create(&meta_key, meta_pool_free); }

static meta_pool *meta_pool_get(void)
{
	if (tls_pool)
		return tls_pool;
	pthread_once(&meta_once, meta_key_create);
	meta_pool *pool = calloc(1, sizeof *pool);
	if (pool && pthread_setspecific(meta_key, pool)) {
		free(pool);
		pool = NULL;
	}
	return tls_pool = pool;
}

/* Only the pool holds `o` (the result that had it was cleared). */
static inline bool meta_free(const json_t *o)
{
	return o && __atomic_load_n(&o->refcount, __ATOMIC_ACQUIRE) == 1;
}

/* ...and no caller changed it: still exactly {"balancer": ...}. */
static bool meta_intact(json_t *o)
{
	return json_object_size(o) == 1 &&
	       strcmp(json_object_iter_key(json_object_iter(o)), "balancer") == 0;
}

void lb_attach_meta(pv_result *out, json_t *meta, unsigned home)
{
	meta_pool *pool;
	if (pv_result_has_meta(out) || !(pool = meta_pool_get())) { /* add to what the child said */
		pv_result_meta_set(out, "balancer", json_incref(meta));
		return;
	}
	/* Direct-mapped by member: from the member's home slot, the first slot
	 * that is empty or free. A free object that still reads {"balancer": ..}
	 * is reused (its value swapped if it named another member); anything
	 * else is let go and a new object made. */
	home %= META_POOL;
	unsigned slot = home;
	for (unsigned k = 0; k < META_POOL; k++) {
		unsigned i = (home + k) % META_POOL;
		if (!pool->obj[i] || meta_free(pool->obj[i])) {
			slot = i;
			break;
		}
	}
	json_t *o = pool->obj[slot];
	if (o && meta_free(o) && meta_intact(o)) {
		if (pool->val[slot] != meta)
			json_object_iter_set(o, json_object_iter(o), meta);
	} else {
		json_decref(o); /* a caller still holding it keeps it alive */
		o = pool->obj[slot] = json_pack("{s:O}", "balancer", meta);
	}
	pool->val[slot] = meta;
	pv_result_meta_merge(out, json_incref(o)); /* it has none: o becomes it */
}
