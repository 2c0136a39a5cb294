/*
 * wait.h - how tests wait: for an event (a state, a file, a log line, a
 * process's exit), polled, with one generous safety bound that only a
 * broken program reaches; never for a window of wall-clock time. A test
 * must pass on a 2-core machine busy with other builds, under valgrind.
 *
 *     PV_TEST_WAIT_UNTIL(bf_file_has(log, "reloaded"));
 *     assert_true(bf_file_has(log, "reloaded"));
 */
#ifndef PV_TEST_WAIT_H
#define PV_TEST_WAIT_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

/* The safety bound of every wait, in seconds. */
#define PV_TEST_PATIENCE_S 120

static inline uint64_t pv_test_wait_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Sleeps one polling step (10 ms); false once the bound has passed. */
static inline bool pv_test_wait_step(uint64_t end_ns)
{
	struct timespec step = {0, 10 * 1000 * 1000};
	nanosleep(&step, NULL);
	return pv_test_wait_now_ns() < end_ns;
}

/* Evaluates `cond` until it holds or PV_TEST_PATIENCE_S have passed; the
 * caller then asserts `cond` (or what it implies). */
#define PV_TEST_WAIT_UNTIL(cond)                                                                  \
	for (uint64_t pv_wait_end_ = pv_test_wait_now_ns() + PV_TEST_PATIENCE_S * 1000000000ull; \
	     !(cond) && pv_test_wait_step(pv_wait_end_);)

#endif
