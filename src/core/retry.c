/*
 * retry.c - jittered backoff and the retry budget (see retry.h).
 *
 * The budget counts first calls and retries in PV_RETRY_BUDGET_SLOTS time
 * slots that together span the window. A slot is reused when the clock has
 * moved past it, so old traffic stops counting without a timer. Deposits
 * are lock-free (one per call on the hot path); a withdrawal takes a mutex
 * so that "is there room?" and "take it" are one step even when many
 * threads fail at once: the retry path is slow anyway (it is about to
 * sleep).
 */
#include <stdlib.h>
#include <string.h>
#include "core/retry.h"
#include "provisio/clock.h"
#include "provisio/error.h"

/* min(cap, base * 2^attempt), without overflow. */
static uint64_t backoff_ceiling(uint64_t base_ns, uint64_t cap_ns, unsigned attempt)
{
	uint64_t ceiling = base_ns;
	for (unsigned i = 0; i < attempt && ceiling < cap_ns; i++)
		ceiling = ceiling > UINT64_MAX / 2 ? UINT64_MAX : ceiling * 2;
	return ceiling > cap_ns ? cap_ns : ceiling;
}

uint64_t pv_backoff_full_jitter(pv_rng *rng, uint64_t base_ns, uint64_t cap_ns, unsigned attempt)
{
	return pv_backoff(rng, PV_JITTER_FULL, base_ns, cap_ns, attempt);
}

uint64_t pv_backoff(pv_rng *rng, pv_retry_jitter jitter, uint64_t base_ns, uint64_t cap_ns,
		    unsigned attempt)
{
	uint64_t c = backoff_ceiling(base_ns, cap_ns, attempt), half = c / 2;
	switch (jitter) {
	case PV_JITTER_NONE:
		return c;
	case PV_JITTER_FULL:
		return c ? pv_rng_below(rng, c + 1) : 0;
	default: /* equal: the upper half of the ceiling */
		return c - half + (half ? pv_rng_below(rng, half + 1) : 0);
	}
}

void pv_retry_budget_init(pv_retry_budget *b, double ratio, double min_per_second, uint64_t window_ns)
{
	memset(b, 0, sizeof *b);
	b->ratio = ratio;
	b->min_per_second = min_per_second;
	b->window_ns = window_ns;
	b->slot_ns = window_ns / PV_RETRY_BUDGET_SLOTS;
	if (b->slot_ns == 0)
		b->slot_ns = 1;
	pthread_mutex_init(&b->lock, NULL);
}

void pv_retry_budget_destroy(pv_retry_budget *b) { pthread_mutex_destroy(&b->lock); }

static uint64_t epoch_of(const pv_retry_budget *b, uint64_t now) { return now / b->slot_ns + 1; }

/* The slot of `now`, emptied first if it still holds an older period. Two
 * threads rolling the same slot at once may lose a count or two: the budget
 * is a rate limit, not a ledger. */
static pv_retry_budget_slot *current_slot(pv_retry_budget *b, uint64_t now)
{
	uint64_t e = epoch_of(b, now);
	pv_retry_budget_slot *s = &b->slots[e % PV_RETRY_BUDGET_SLOTS];
	uint64_t old = atomic_load_explicit(&s->epoch, memory_order_acquire);
	if (old < e && atomic_compare_exchange_strong(&s->epoch, &old, e)) {
		atomic_store_explicit(&s->requests, 0, memory_order_relaxed);
		atomic_store_explicit(&s->retries, 0, memory_order_relaxed);
	}
	return s;
}

void pv_retry_budget_deposit(pv_retry_budget *b, uint64_t now)
{
	atomic_fetch_add_explicit(&current_slot(b, now)->requests, 1, memory_order_relaxed);
}

static void window_sums(pv_retry_budget *b, uint64_t now, uint64_t *requests, uint64_t *retries)
{
	uint64_t e = epoch_of(b, now);
	*requests = *retries = 0;
	for (unsigned i = 0; i < PV_RETRY_BUDGET_SLOTS; i++) {
		pv_retry_budget_slot *s = &b->slots[i];
		uint64_t ep = atomic_load_explicit(&s->epoch, memory_order_acquire);
		if (ep != 0 && ep <= e && ep + PV_RETRY_BUDGET_SLOTS > e) {
			*requests += atomic_load_explicit(&s->requests, memory_order_relaxed);
			*retries += atomic_load_explicit(&s->retries, memory_order_relaxed);
		}
	}
}

/* Retries the window allows in total (may be fractional). */
static double allowance(const pv_retry_budget *b, uint64_t requests)
{
	return b->ratio * (double)requests + b->min_per_second * ((double)b->window_ns / 1e9);
}

bool pv_retry_budget_withdraw(pv_retry_budget *b, uint64_t now)
{
	uint64_t requests, retries;
	pthread_mutex_lock(&b->lock);
	window_sums(b, now, &requests, &retries);
	bool ok = (double)retries + 1.0 <= allowance(b, requests) + 1e-9;
	if (ok)
		atomic_fetch_add_explicit(&current_slot(b, now)->retries, 1, memory_order_relaxed);
	pthread_mutex_unlock(&b->lock);
	atomic_fetch_add_explicit(ok ? &b->granted : &b->denied, 1, memory_order_relaxed);
	return ok;
}

json_t *pv_retry_budget_stats(pv_retry_budget *b, uint64_t now)
{
	uint64_t requests, retries;
	window_sums(b, now, &requests, &retries);
	double avail = allowance(b, requests) - (double)retries;
	return json_pack("{s:f, s:f, s:f, s:I, s:I, s:I, s:I, s:I}", "ratio", b->ratio,
			 "min_retries_per_second", b->min_per_second, "window_seconds",
			 (double)b->window_ns / 1e9, "requests", (json_int_t)requests, "retries",
			 (json_int_t)retries, "available", (json_int_t)(avail > 0 ? (uint64_t)avail : 0),
			 "granted", (json_int_t)atomic_load(&b->granted), "denied",
			 (json_int_t)atomic_load(&b->denied));
}

json_t *pv_retry_budget_save(pv_retry_budget *b, uint64_t now)
{
	uint64_t requests, retries;
	window_sums(b, now, &requests, &retries);
	return json_pack("{s:I, s:I, s:I}", "requests", (json_int_t)requests, "retries",
			 (json_int_t)retries, "saved_at_ms", (json_int_t)pv_wall_ms());
}

int pv_retry_budget_load(pv_retry_budget *b, const json_t *state, uint64_t now)
{
	static const char *const keys[] = {"requests", "retries", "saved_at_ms"};
	json_int_t v[3] = {0, 0, 0};
	if (!json_is_object(state))
		return pv_error_set(PV_EINVAL, "retry budget state: must be a JSON object");
	for (int i = 0; i < 3; i++) {
		json_t *j = json_object_get(state, keys[i]);
		if (j && (!json_is_integer(j) || json_integer_value(j) < 0))
			return pv_error_set(PV_EINVAL, "retry budget state: field '%s': must be an integer >= 0",
					    keys[i]);
		v[i] = j ? json_integer_value(j) : 0;
	}
	int64_t age_ms = v[2] ? pv_wall_ms() - v[2] : 0;
	if (age_ms < 0)
		age_ms = 0;
	if ((uint64_t)age_ms * PV_NS_PER_MS >= b->window_ns)
		return 0; /* all of it is older than the window: nothing counts */
	pv_retry_budget_slot *s = current_slot(b, now);
	atomic_fetch_add(&s->requests, (uint64_t)v[0]);
	atomic_fetch_add(&s->retries, (uint64_t)v[1]);
	return 0;
}
