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

#endif
