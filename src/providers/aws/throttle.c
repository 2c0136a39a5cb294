/*
 * throttle.c - client-side token buckets for the EC2 API.
 *
 * EC2 meters API calls per account and region with token buckets
 * (RunInstances, mutating, describe, terminate). A careful client keeps the
 * same buckets on its side and waits for a token, because a call answered
 * RequestLimitExceeded costs a round trip and a backoff, and may push the
 * whole account into throttling. Time comes from a pv_clock so tests can
 * drive the refill without sleeping.
 */
#include <math.h>
#include "provisio/error.h"
#include "providers/aws/aws_internal.h"

void aws_bucket_init(aws_bucket *b, double capacity, double refill_per_s, uint64_t now_ns)
{
	pthread_mutex_init(&b->lock, NULL);
	b->capacity = capacity;
	b->refill_per_s = refill_per_s;
	b->tokens = capacity;
	b->last_ns = now_ns;
	b->enabled = capacity > 0 && refill_per_s > 0;
}

void aws_bucket_destroy(aws_bucket *b) { pthread_mutex_destroy(&b->lock); }

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
	pthread_mutex_lock(&b->lock);
	refill(b, now_ns);
	uint64_t wait = 0;
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
	pthread_mutex_unlock(&b->lock);
}
