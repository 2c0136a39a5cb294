/*
 * test_counters.c - counters split by thread: exact totals however many
 * threads count (more threads than shards share rows), set and get.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <pthread.h>
#include <cmocka.h>
#include "util/counters.h"

#define THREADS (PV_SHARDS + 8) /* some threads share a shard */
#define ADDS 20000

static pv_counters counters;

static void *count_a_lot(void *arg)
{
	(void)arg;
	for (int i = 0; i < ADDS; i++) {
		pv_counters_add(&counters, 0, 1);
		pv_counters_add(&counters, 2, 3);
	}
	return NULL;
}

static void test_totals_are_exact_across_threads(void **state)
{
	(void)state;
	assert_int_equal(pv_counters_init(&counters), 0);
	pthread_t t[THREADS];
	for (int i = 0; i < THREADS; i++)
		pthread_create(&t[i], NULL, count_a_lot, NULL);
	for (int i = 0; i < THREADS; i++)
		pthread_join(t[i], NULL);
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
	assert_true(pv_shard() < PV_SHARDS);
	pv_counters_destroy(&c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_totals_are_exact_across_threads),
		cmocka_unit_test(test_rows_are_cache_lines_apart),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
