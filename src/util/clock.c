/*
 * clock.c - the system clock and a manual clock for deterministic tests.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>
#include "provisio/clock.h"

uint64_t pv_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * PV_NS_PER_S + (uint64_t)ts.tv_nsec;
}

int64_t pv_wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static uint64_t system_now(void *user)
{
	(void)user;
	return pv_now_ns();
}

static void system_sleep(void *user, uint64_t ns)
{
	(void)user;
	struct timespec ts = {.tv_sec = (time_t)(ns / PV_NS_PER_S), .tv_nsec = (long)(ns % PV_NS_PER_S)};
	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

static const pv_clock system_clock = {system_now, system_sleep, NULL};

const pv_clock *pv_clock_system(void) { return &system_clock; }

uint64_t pv_clock_now(const pv_clock *clock)
{
	return clock ? clock->now_ns(clock->user) : pv_now_ns();
}

void pv_clock_sleep(const pv_clock *clock, uint64_t ns)
{
	if (ns == 0)
		return;
	if (clock)
		clock->sleep_ns(clock->user, ns);
	else
		system_sleep(NULL, ns);
}

struct pv_manual_clock {
	pv_clock clock;
	atomic_uint_fast64_t now;
	atomic_uint_fast64_t slept;
};

static uint64_t manual_now(void *user)
{
	pv_manual_clock *mc = user;
	return atomic_load(&mc->now);
}

static void manual_sleep(void *user, uint64_t ns)
{
	pv_manual_clock *mc = user;
	atomic_fetch_add(&mc->slept, ns);
	atomic_fetch_add(&mc->now, ns);
}

pv_manual_clock *pv_manual_clock_new(uint64_t start_ns)
{
	pv_manual_clock *mc = calloc(1, sizeof *mc);
	if (!mc)
		return NULL;
	mc->clock = (pv_clock){manual_now, manual_sleep, mc};
	atomic_init(&mc->now, start_ns);
	atomic_init(&mc->slept, 0);
	return mc;
}

void pv_manual_clock_free(pv_manual_clock *mc) { free(mc); }
const pv_clock *pv_manual_clock_get(pv_manual_clock *mc) { return &mc->clock; }
void pv_manual_clock_advance(pv_manual_clock *mc, uint64_t ns)
{
	if (mc) /* tolerated like free(NULL); also keeps GCC's LTO overflow check quiet */
		atomic_fetch_add(&mc->now, ns);
}
uint64_t pv_manual_clock_slept(const pv_manual_clock *mc) { return atomic_load(&mc->slept); }
