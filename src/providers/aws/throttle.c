/*
 * throttle.c - client-side token buckets for the EC2 API.
 *
 * EC2 meters API calls per account and region with token buckets
 * (RunInstances, mutating, describe, terminate). A careful client keeps the
 * same buckets on its side and waits for a token, because a call answered
 * RequestLimitExceeded costs a round trip and a backoff, and may push the
 * whole account into throttling. Time comes from a pv_clock so tests can
 * drive the refill without sleeping.
 *
 * EC2's buckets are per account, not per process: processes that share a
 * store share the buckets through a limiter (limiter.h) the broker hands
 * the provider, so eight Host Factory processes spend one budget, not
 * eight. The local bucket stays as the stand-in when that fails.
 */
#include <math.h>
#include <stdio.h>
#include "provisio/error.h"
#include "provisio/log.h"
#include "providers/aws/aws_internal.h"

void aws_bucket_init(aws_bucket *b, double capacity, double refill_per_s, uint64_t now_ns)
{
	pthread_mutex_init(&b->lock, NULL);
	b->capacity = capacity;
	b->refill_per_s = refill_per_s;
	b->tokens = capacity;
	b->last_ns = now_ns;
	b->enabled = capacity > 0 && refill_per_s > 0;
	b->shared = NULL;
	b->key[0] = '\0';
	b->shared_failed = false;
}

void aws_bucket_destroy(aws_bucket *b)
{
	pv_limiter_unref(b->shared);
	pthread_mutex_destroy(&b->lock);
}

void aws_bucket_share(aws_bucket *b, pv_limiter *l, const char *key)
{
	pthread_mutex_lock(&b->lock);
	pv_limiter *old = b->shared;
	b->shared = pv_limiter_ref(l);
	snprintf(b->key, sizeof b->key, "%s", key ? key : "");
	b->shared_failed = false;
	pthread_mutex_unlock(&b->lock);
	pv_limiter_unref(old);
}

/* A token from the shared bucket: true when it answered (*wait set). */
static bool shared_take(aws_bucket *b, uint64_t *wait)
{
	pthread_mutex_lock(&b->lock);
	pv_limiter *l = pv_limiter_ref(b->shared);
	char key[sizeof b->key];
	snprintf(key, sizeof key, "%s", b->key);
	pthread_mutex_unlock(&b->lock);
	if (!l)
		return false;
	int rc = pv_limiter_take(l, key, b->capacity, b->refill_per_s, wait);
	pv_limiter_unref(l);
	if (rc == 0)
		return true;
	pthread_mutex_lock(&b->lock);
	bool said = b->shared_failed;
	b->shared_failed = true;
	pthread_mutex_unlock(&b->lock);
	if (!said)
		pv_log(PV_LOG_WARN, "aws: shared bucket %s not reachable (%s): pacing this process alone",
		       key, pv_error_last());
	return false;
}

static void refill(aws_bucket *b, uint64_t now_ns)
{
	if (now_ns <= b->last_ns)
		return;
	b->tokens += (double)(now_ns - b->last_ns) * b->refill_per_s / 1e9;
	if (b->tokens > b->capacity)
		b->tokens = b->capacity;
	b->last_ns = now_ns;
}

uint64_t aws_bucket_try_take(aws_bucket *b, uint64_t now_ns)
{
	if (!b->enabled)
		return 0;
	uint64_t wait = 0;
	if (shared_take(b, &wait))
		return wait;
	pthread_mutex_lock(&b->lock);
	refill(b, now_ns);
	if (b->tokens >= 1.0)
		b->tokens -= 1.0;
	else
		wait = (uint64_t)ceil((1.0 - b->tokens) * 1e9 / b->refill_per_s);
	pthread_mutex_unlock(&b->lock);
	return wait;
}

int aws_bucket_take(aws_bucket *b, const pv_clock *clock, uint64_t deadline_ns, uint64_t *waited_ns)
{
	uint64_t waited = 0;
	for (;;) {
		uint64_t now = pv_clock_now(clock);
		uint64_t wait = aws_bucket_try_take(b, now);
		if (wait == 0)
			break;
		if (deadline_ns && now + wait > deadline_ns) {
			if (waited_ns)
				*waited_ns = waited;
			return pv_error_set(PV_ESTATE,
					    "client-side throttle: next token in %llu ms, after the deadline",
					    (unsigned long long)(wait / PV_NS_PER_MS));
		}
		pv_clock_sleep(clock, wait);
		waited += wait;
	}
	if (waited_ns)
		*waited_ns = waited;
	return 0;
}

void aws_bucket_drain(aws_bucket *b, uint64_t now_ns)
{
	if (!b->enabled)
		return;
	pthread_mutex_lock(&b->lock);
	refill(b, now_ns);
	b->tokens = 0;
	pv_limiter *l = pv_limiter_ref(b->shared);
	char key[sizeof b->key];
	snprintf(key, sizeof key, "%s", b->key);
	pthread_mutex_unlock(&b->lock);
	if (l && pv_limiter_drain(l, key, b->capacity, b->refill_per_s) < 0)
		pv_log(PV_LOG_WARN, "aws: shared bucket %s not drained: %s", key, pv_error_last());
	pv_limiter_unref(l);
}
