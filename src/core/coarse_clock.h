/*
 * coarse_clock.h - a cheap "about now" for timestamps nobody waits on
 * (internal).
 *
 * On the system clock it reads CLOCK_MONOTONIC_COARSE: the same time base as
 * pv_now_ns at tick resolution (1-4 ms), for about 7 ns instead of about 30.
 * The fallback's fast path uses it for the breaker's last-success time, the
 * health cache's age and the retry budget's time slot, where milliseconds
 * do not matter; anything that schedules (open periods, backoff, deadlines)
 * uses the precise clock. Any other pv_clock (a manual one in tests) is read
 * as is, so tests stay exact.
 */
#ifndef PV_CORE_COARSE_CLOCK_H
#define PV_CORE_COARSE_CLOCK_H

#include <stdatomic.h>
#include <stdint.h>
#include <time.h>
#include "provisio/clock.h"

static inline uint64_t pv_clock_now_coarse(const pv_clock *clock)
{
	if (clock && clock != pv_clock_system())
		return pv_clock_now(clock);
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (uint64_t)ts.tv_sec * PV_NS_PER_S + (uint64_t)ts.tv_nsec;
}

/* How far the coarse time usually lags the precise one: a tick (its
 * resolution) on the system clock, 0 on any other. A coarse time more than
 * this before an instant says the precise time is before it too, except
 * where the kernel lost ticks (a busy VM: measured up to 25 ms): a check
 * that may err late, never early, can use it. */
static inline uint64_t pv_clock_coarse_lag(const pv_clock *clock)
{
	static _Atomic uint64_t lag; /* 0 until first asked: the same answer every time */
	if (clock && clock != pv_clock_system())
		return 0;
	uint64_t ns = atomic_load_explicit(&lag, memory_order_relaxed);
	if (!ns) {
		struct timespec res;
		clock_getres(CLOCK_MONOTONIC_COARSE, &res);
		ns = (uint64_t)res.tv_sec * PV_NS_PER_S + (uint64_t)res.tv_nsec;
		atomic_store_explicit(&lag, ns, memory_order_relaxed);
	}
	return ns;
}

#endif
