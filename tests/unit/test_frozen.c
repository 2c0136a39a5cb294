/*
 * test_frozen.c - frozen JSON values (util/frozen.h).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include "provisio/provisio.h"
#include "util/frozen.h"

/* Only what was frozen is frozen (jansson's constants and NULL always), with
 * everything in it; an equal object is not; references to a frozen value
 * are not counted, so however many are taken and dropped, it stays. */
static void test_frozen_values_are_never_counted_nor_freed(void **state)
{
	(void)state;
	json_t *a = json_pack("{s:b, s:s, s:[i, {s:f}]}", "healthy", 1, "status", "ok", "list", 1,
			      "ms", 0.5);
	json_t *twin = json_deep_copy(a);
	assert_true(pv_json_frozen(NULL));
	assert_true(pv_json_frozen(json_null()));
	assert_true(pv_json_frozen(json_true()));
	assert_false(pv_json_frozen(a));
	pv_json_freeze(a);
	pv_json_freeze(a); /* twice: no change */
	assert_true(pv_json_frozen(a));
	assert_true(pv_json_frozen(json_object_get(a, "status")));
	json_t *list = json_object_get(a, "list");
	assert_true(pv_json_frozen(list));
	assert_true(pv_json_frozen(json_array_get(list, 0)));
	assert_true(pv_json_frozen(json_object_get(json_array_get(list, 1), "ms")));
	assert_false(pv_json_frozen(twin));
	assert_false(pv_json_frozen(json_object_get(twin, "status")));
	for (int i = 0; i < 3; i++) {
		json_incref(a);
		json_decref(a);
		json_decref(a); /* more drops than takes: still there */
	}
	assert_true(json_equal(a, twin));
	json_decref(twin);
	/* `a` is never freed: a frozen value lives until exit (here it leaks,
	 * deliberately: a static keeps it, as the sim's answers are kept;
	 * volatile, or the optimiser drops the store and valgrind sees a leak). */
	static json_t *volatile kept;
	kept = a;
	(void)kept;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_frozen_values_are_never_counted_nor_freed),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
