/*
 * clock.h - time sources.
 *
 * Everything in the kernel that waits or measures time goes through a
 * pv_clock, so tests can drive retries, breakers and boot delays with a
 * manual clock instead of sleeping. NULL always means the system clock.
 */
#ifndef PROVISIO_CLOCK_H
#define PROVISIO_CLOCK_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct pv_clock {
	/* Monotonic time in nanoseconds. */
	uint64_t (*now_ns)(void *user);
	/* Waits `ns` nanoseconds (a manual clock just advances). */
	void (*sleep_ns)(void *user, uint64_t ns);
	void *user;
} pv_clock;

/* Monotonic nanoseconds of the system clock (CLOCK_MONOTONIC). */
uint64_t pv_now_ns(void);

/* Wall-clock milliseconds since the Unix epoch (for display only). */
int64_t pv_wall_ms(void);

/* The system clock as a pv_clock. Borrowed, static. */
const pv_clock *pv_clock_system(void);

/* Time of `clock` (NULL = system). */
uint64_t pv_clock_now(const pv_clock *clock);

/* Sleeps on `clock` (NULL = system). */
void pv_clock_sleep(const pv_clock *clock, uint64_t ns);

/*
 * A manual clock for tests: time moves only when sleep_ns is called on it or
 * pv_manual_clock_advance is. Thread-safe. Starts at `start_ns`.
 */
typedef struct pv_manual_clock pv_manual_clock;

/* New manual clock; free with pv_manual_clock_free. NULL on ENOMEM. */
pv_manual_clock *pv_manual_clock_new(uint64_t start_ns);
void pv_manual_clock_free(pv_manual_clock *mc);
/* The pv_clock view of it, borrowed, valid while `mc` lives. */
const pv_clock *pv_manual_clock_get(pv_manual_clock *mc);
void pv_manual_clock_advance(pv_manual_clock *mc, uint64_t ns);
/* Sum of all sleeps requested from this clock (to assert on backoff). */
uint64_t pv_manual_clock_slept(const pv_manual_clock *mc);

#define PV_NS_PER_MS 1000000ull
#define PV_NS_PER_S 1000000000ull

#ifdef __cplusplus
}
#endif
#endif
