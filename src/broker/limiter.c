/*
 * limiter.c - the broker's limiter: token buckets kept in the store, so
 * every process on one store (Host Factory's short processes, provisio
 * serve, other nodes on a PostgreSQL store) spends one API budget.
 *
 * A bucket is one key/value row, "limiter/<key>" = {"tokens": t, "at_us": u}:
 * taking a token reads it, refills it for the time since `at_us` (wall
 * clock: the row is read by other processes, maybe on other hosts), takes
 * one if there is one and writes it back, in one write transaction, which
 * the store serialises between processes. A missing row is a full bucket.
 *
 * The limiter has its own store connection, opened at the first take: a
 * process that calls no paced provider opens nothing, and providers call
 * it from any thread (the broker's own connection belongs to one thread and
 * may be inside a transaction of its own).
 */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <jansson.h>
#include "provisio/broker.h"
#include "provisio/error.h"

typedef struct store_limiter {
	pv_limiter base;
	pthread_mutex_t lock; /* the connection: one transaction at a time */
	char *location;
	pv_store_options opts;
	pv_store *st;         /* opened at the first call */
} store_limiter;

static int64_t wall_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Opens the connection when needed; under the lock. */
static int open_store(store_limiter *sl)
{
	return sl->st ? 0 : pv_store_open(&sl->st, sl->location, &sl->opts);
}

/* Reads bucket `key`, applies `fn` (take or drain) to its refilled tokens,
 * writes it back: one write transaction. */
typedef void (*bucket_fn)(double *tokens, double refill_per_s, uint64_t *wait_ns);

static int update(store_limiter *sl, const char *key, double capacity, double refill_per_s, bucket_fn fn,
		  uint64_t *wait_ns)
{
	char row_key[320];
	snprintf(row_key, sizeof row_key, "limiter/%s", key);
	pthread_mutex_lock(&sl->lock);
	int rc = open_store(sl);
	if (rc == 0)
		rc = pv_store_begin(sl->st, true);
	if (rc < 0) {
		pthread_mutex_unlock(&sl->lock);
		return rc;
	}
	char *text = NULL;
	rc = pv_store_kv_get(sl->st, row_key, &text);
	json_t *row = rc == 0 ? json_loads(text, 0, NULL) : NULL;
	free(text);
	int64_t now = wall_us(), at = json_integer_value(json_object_get(row, "at_us"));
	double tokens = row ? json_number_value(json_object_get(row, "tokens")) : capacity;
	json_decref(row);
	if (rc == 0 || rc == PV_ENOTFOUND) {
		/* a clock set back refills nothing rather than a fortune */
		if (row && now > at)
			tokens += (double)(now - at) / 1e6 * refill_per_s;
		tokens = tokens > capacity ? capacity : tokens < 0 ? 0 : tokens;
		fn(&tokens, refill_per_s, wait_ns);
		json_t *next = json_pack("{s:f, s:I}", "tokens", tokens, "at_us", (json_int_t)now);
		char *out = next ? json_dumps(next, JSON_COMPACT) : NULL;
		json_decref(next);
		rc = out ? pv_store_kv_put(sl->st, row_key, out) : pv_error_set(PV_ENOMEM, "out of memory");
		free(out);
	}
	if (rc == 0)
		rc = pv_store_commit(sl->st);
	else
		pv_store_rollback(sl->st);
	pthread_mutex_unlock(&sl->lock);
	return rc;
}

static void take_one(double *tokens, double refill_per_s, uint64_t *wait_ns)
{
	if (*tokens >= 1.0) {
		*tokens -= 1.0;
		*wait_ns = 0;
	} else {
		*wait_ns = (uint64_t)ceil((1.0 - *tokens) * 1e9 / refill_per_s);
	}
}

static void empty(double *tokens, double refill_per_s, uint64_t *wait_ns)
{
	(void)refill_per_s;
	(void)wait_ns;
	*tokens = 0;
}

static int checked(const char *key, double capacity, double refill_per_s)
{
	if (!key || !*key || strlen(key) > 256 || !(capacity >= 1) || !(refill_per_s > 0))
		return pv_error_set(PV_EINVAL, "limiter: a bucket needs a key (1..256 characters), "
					       "capacity >= 1 and refill_per_s > 0");
	return 0;
}

static int sl_take(pv_limiter *l, const char *key, double capacity, double refill_per_s, uint64_t *wait_ns)
{
	*wait_ns = 0;
	int rc = checked(key, capacity, refill_per_s);
	return rc < 0 ? rc : update((store_limiter *)l, key, capacity, refill_per_s, take_one, wait_ns);
}

static int sl_drain(pv_limiter *l, const char *key, double capacity, double refill_per_s)
{
	uint64_t unused = 0;
	int rc = checked(key, capacity, refill_per_s);
	return rc < 0 ? rc : update((store_limiter *)l, key, capacity, refill_per_s, empty, &unused);
}

static void sl_destroy(pv_limiter *l)
{
	store_limiter *sl = (store_limiter *)l;
	pv_store_close(sl->st);
	free(sl->location);
	pthread_mutex_destroy(&sl->lock);
}

static const pv_limiter_methods store_limiter_methods = {
	.version = PV_LIMITER_METHODS_VERSION,
	.take = sl_take,
	.drain = sl_drain,
	.destroy = sl_destroy,
};

int pv_broker_limiter_new(pv_limiter **out, const char *location, const pv_store_options *opts)
{
	*out = NULL;
	if (!location || !*location)
		return pv_error_set(PV_EINVAL, "limiter: the store location must be a non-empty string");
	store_limiter *sl = calloc(1, sizeof *sl);
	if (!sl || !(sl->location = strdup(location))) {
		free(sl);
		return pv_error_set(PV_ENOMEM, "out of memory");
	}
	pv_limiter_setup(&sl->base, &store_limiter_methods);
	pthread_mutex_init(&sl->lock, NULL);
	if (opts)
		sl->opts = *opts;
	*out = &sl->base;
	return 0;
}
