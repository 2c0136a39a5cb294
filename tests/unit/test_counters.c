/*
 * test_counters.c - counters split by thread: exact totals however many
 * threads count (more threads than rows: the rest share one), rows owned
 * by one thread at a time and given back when it exits, set and get.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <pthread.h>
#include <cmocka.h>
#include "util/counters.h"

#define THREADS (PV_SHARDS + 8) /* some threads share a row */
#define ADDS 20000

static pv_counters counters;
static pthread_barrier_t all_counting;

/* Counts, then waits until every thread has counted (so all live at once)
 * and says which row it had and whether it owned it. */
static void *count_a_lot(void *arg)
{
	unsigned *slot = arg;
	for (int i = 0; i < ADDS; i++) {
		pv_counters_add(&counters, 0, 1);
		pv_counters_add(&counters, 2, 3);
	}
	*slot = pv_shard_slot;
	pthread_barrier_wait(&all_counting);
	return NULL;
}

static unsigned slot_of_new_thread(void)
{
	unsigned slot = 0;
	pthread_barrier_init(&all_counting, NULL, 1);
	pthread_t t;
	pthread_create(&t, NULL, count_a_lot, &slot);
	pthread_join(t, NULL);
	pthread_barrier_destroy(&all_counting);
	return slot;
}

static void test_totals_are_exact_across_threads(void **state)
{
	(void)state;
	assert_int_equal(pv_counters_init(&counters), 0);
	pthread_t t[THREADS];
	unsigned slot[THREADS];
	pthread_barrier_init(&all_counting, NULL, THREADS);
	for (int i = 0; i < THREADS; i++)
		pthread_create(&t[i], NULL, count_a_lot, &slot[i]);
	for (int i = 0; i < THREADS; i++)
		pthread_join(t[i], NULL);
	pthread_barrier_destroy(&all_counting);
	/* every row owned by one of them at most, the rest on the shared row */
	unsigned owners[PV_SHARDS] = {0}, owning = 0;
	for (int i = 0; i < THREADS; i++) {
		unsigned row = (slot[i] & ~PV_SHARD_OWNED) - 1;
		if (slot[i] & PV_SHARD_OWNED) {
			assert_true(row < PV_SHARDS);
			assert_int_equal(++owners[row], 1);
			owning++;
		} else {
			assert_int_equal(row, PV_SHARD_SHARED);
		}
	}
	assert_true(owning >= PV_SHARDS - 1); /* this thread may hold one */
	assert_int_equal(pv_counters_get(&counters, 0), (uint64_t)THREADS * ADDS);
	assert_int_equal(pv_counters_get(&counters, 1), 0);
	assert_int_equal(pv_counters_get(&counters, 2), (uint64_t)THREADS * ADDS * 3);
	pv_counters_set(&counters, 2, 7);
	assert_int_equal(pv_counters_get(&counters, 2), 7);
	pv_counters_destroy(&counters);
}

static void test_rows_are_cache_lines_apart(void **state)
{
	(void)state;
	pv_counters c;
	assert_int_equal(pv_counters_init(&c), 0);
	assert_int_equal((uintptr_t)c.row % PV_CACHE_LINE, 0);
	assert_int_equal(sizeof c.row[0] % PV_CACHE_LINE, 0);
	assert_true((uintptr_t)&c.row[1] - (uintptr_t)&c.row[0].v[PV_COUNTERS_MAX - 1] >= sizeof(uint64_t));
	assert_true(pv_shard() <= PV_SHARD_SHARED);
	pv_counters_destroy(&c);
}

/* A thread that exits gives its row back: however many threads came and
 * went, a new one owns a row. */
static void test_rows_are_given_back(void **state)
{
	(void)state;
	assert_int_equal(pv_counters_init(&counters), 0);
	for (int i = 0; i < 3 * PV_SHARDS; i++)
		assert_true(slot_of_new_thread() & PV_SHARD_OWNED);
	assert_int_equal(pv_counters_get(&counters, 0), (uint64_t)3 * PV_SHARDS * ADDS);
	pv_counters_destroy(&counters);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_totals_are_exact_across_threads),
		cmocka_unit_test(test_rows_are_cache_lines_apart),
		cmocka_unit_test(test_rows_are_given_back),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
