/*
 * bench_util.h - what the kernel benchmarks share: CPU time, and rows that
 * callgrind counts.
 *
 * On a shared machine the wall time of a 100 ns call mostly measures the
 * neighbours; the CPU time of the measuring thread counts only the time it
 * ran (caches and cores are still shared, so it moves too, less). Under
 * valgrind (bench/callgrind.sh) a benchmark instead runs every row once for
 * a fixed number of calls between a zeroing and a dump of callgrind's
 * counters named after the row: instructions per call, the same on every
 * run and every machine load.
 */
#ifndef PV_BENCH_UTIL_H
#define PV_BENCH_UTIL_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#if defined(__has_include) && __has_include(<valgrind/callgrind.h>)
#include <valgrind/callgrind.h>
#else /* valgrind's headers missing: never under callgrind */
#define RUNNING_ON_VALGRIND 0
#define CALLGRIND_ZERO_STATS
#define CALLGRIND_DUMP_STATS_AT(name) ((void)(name))
#endif

/* Calls per row under callgrind: enough that the dump's fixed cost vanishes. */
#define BENCH_CALLGRIND_CALLS 20000

static inline uint64_t bench_cpu_ns(clockid_t which)
{
	struct timespec ts;
	clock_gettime(which, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* CPU time of this thread. */
static inline uint64_t bench_thread_cpu_ns(void) { return bench_cpu_ns(CLOCK_THREAD_CPUTIME_ID); }

/* CPU time of every thread of the process (pool workers included). */
static inline uint64_t bench_process_cpu_ns(void) { return bench_cpu_ns(CLOCK_PROCESS_CPUTIME_ID); }

static inline bool bench_under_callgrind(void) { return RUNNING_ON_VALGRIND; }

/* Runs `calls` of `run` as one callgrind row named `name`, whose floor is
 * row number `floor` (from 1 in the order rows run; 0: none). The dump is
 * labelled "name|calls|floor", which bench/callgrind.sh reads. */
static inline void bench_callgrind_row(const char *name, int floor,
				       void (*run)(void *arg, uint64_t calls), void *arg)
{
	char label[160];
	snprintf(label, sizeof label, "%s|%d|%d", name, BENCH_CALLGRIND_CALLS, floor);
	run(arg, 100); /* warm: first-call allocations are not the row's */
	CALLGRIND_ZERO_STATS;
	run(arg, BENCH_CALLGRIND_CALLS);
	CALLGRIND_DUMP_STATS_AT(label);
}

#endif
