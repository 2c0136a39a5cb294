/*
 * test_frozen.c - the registry of frozen JSON values (util/frozen.h).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include "provisio/provisio.h"
#include "util/frozen.h"

/* Only what was frozen is frozen (null and NULL always); an object equal to
 * a frozen one is not; freezing twice takes one place; a full registry
 * says so and trusts nothing more. */
static void test_only_frozen_values_are_trusted(void **state)
{
	(void)state;
	json_t *a = json_pack("{s:b}", "healthy", 1), *twin = json_pack("{s:b}", "healthy", 1);
	assert_true(pv_json_frozen(NULL));
	assert_true(pv_json_frozen(json_null()));
	assert_false(pv_json_frozen(a));
	assert_int_equal(pv_json_freeze(a), 0);
	assert_int_equal(pv_json_freeze(a), 0);
	assert_true(pv_json_frozen(a));
	assert_false(pv_json_frozen(twin));
	json_t *more[PV_FROZEN_MAX];
	size_t n = 0;
	int rc = 0;
	while (n < PV_FROZEN_MAX && (rc = pv_json_freeze(more[n] = json_integer((json_int_t)n))) == 0)
		n++;
	assert_int_equal(rc, PV_ESTATE);
	assert_true(n < PV_FROZEN_MAX); /* `a` took a place */
	assert_string_not_equal(pv_error_last(), "");
	assert_false(pv_json_frozen(more[n]));
	assert_true(pv_json_frozen(more[0]));
	/* Frozen values live until exit; these are only the test's. */
	for (size_t i = 0; i <= n; i++)
		json_decref(more[i]);
	json_decref(a);
	json_decref(twin);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_only_frozen_values_are_trusted),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
