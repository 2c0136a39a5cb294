/*
 * test_result.c - results: messages formatted when read, metadata parts
 * built when read.
 *
 * A failure keeps its format and copies of the arguments; the text must be
 * exactly what printf makes, however the result is moved or whoever reads
 * it. A deferred metadata part must read exactly like metadata set at once,
 * keys in the same order, and be released unbuilt when nobody reads it.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "provisio/provisio.h"

/* Fails a result with the format and arguments and checks that its message
 * reads as snprintf prints them, and that nothing was formatted before. */
#define ASSERT_FORMATS_LIKE_PRINTF(fmt, ...)                                                  \
	do {                                                                                   \
		pv_result r_ = PV_RESULT_INIT;                                                 \
		pv_result_fail(&r_, "CODE", PV_CLASS_TRANSIENT, fmt, __VA_ARGS__);             \
		assert_null(r_.priv.text); /* kept, not formatted */                          \
		char want_[256];                                                               \
		snprintf(want_, sizeof want_, fmt, __VA_ARGS__);                               \
		assert_string_equal(pv_result_message(&r_), want_);                           \
		pv_result_clear(&r_);                                                          \
	} while (0)

static void test_message_reads_as_printf_prints_it(void **state)
{
	(void)state;
	ASSERT_FORMATS_LIKE_PRINTF("strategy '%s' failed", "aws-east");
	ASSERT_FORMATS_LIKE_PRINTF("%d|%5d|%-5d|%05d|%+d|% d", -42, 42, 42, 42, 42, 42);
	ASSERT_FORMATS_LIKE_PRINTF("%u %x %X %#x %o %#o", 4000000000u, 255u, 255u, 255u, 8u, 8u);
	ASSERT_FORMATS_LIKE_PRINTF("%zu of %zu, %zd", (size_t)3, (size_t)5, (ssize_t)-7);
	ASSERT_FORMATS_LIKE_PRINTF("%lld %llu %ld %lu", -(1ll << 62), 1ull << 63, -5l, 6ul);
	ASSERT_FORMATS_LIKE_PRINTF("%hhd %hhu %hd %hu", 300, 300, 70000, 70000); /* cut as printf cuts */
	ASSERT_FORMATS_LIKE_PRINTF("%jd %td", (intmax_t)-9, (ptrdiff_t)-10);
	ASSERT_FORMATS_LIKE_PRINTF("%.0f%% %.2f %8.3e %g %G", 99.6, 0.125, 12345.678, 1e-10, 1e20);
	ASSERT_FORMATS_LIKE_PRINTF("%c%c-%.3s-%10s-%-4s|", 'o', 'k', "truncated", "right", "l");
	ASSERT_FORMATS_LIKE_PRINTF("%s and %s", "", "(empty before)");
	ASSERT_FORMATS_LIKE_PRINTF("%p", (void *)0x1234);
	const char *volatile none = NULL; /* glibc prints "(null)"; hidden from -Wformat */
	ASSERT_FORMATS_LIKE_PRINTF("[%s]", none);
}

static void test_fixed_message_is_the_format_itself(void **state)
{
	(void)state;
	pv_result r = PV_RESULT_INIT;
	pv_result_fail(&r, "CODE", PV_CLASS_PERMANENT, "out of memory");
	assert_string_equal(pv_result_message(&r), "out of memory");
	assert_null(r.priv.text); /* nothing to format, nothing allocated */
	pv_result_fail(&r, "CODE", PV_CLASS_PERMANENT, "100%% sure");
	assert_string_equal(pv_result_message(&r), "100% sure");
	pv_result_fail(&r, "CODE", PV_CLASS_PERMANENT, NULL);
	assert_null(pv_result_message(&r));
	pv_result_clear(&r);
}

static void test_arguments_are_copied_not_borrowed(void **state)
{
	(void)state;
	char name[32] = "lab-1";
	pv_result r = PV_RESULT_INIT;
	pv_result_fail(&r, "CODE", PV_CLASS_TRANSIENT, "sim '%s': injected failure %s", name,
		       "THROTTLED");
	strcpy(name, "overwritten");
	assert_string_equal(pv_result_message(&r), "sim 'lab-1': injected failure THROTTLED");
	pv_result_clear(&r);
}

static void test_message_survives_moves_and_copies(void **state)
{
	(void)state;
	pv_result a = PV_RESULT_INIT, b = PV_RESULT_INIT;
	pv_result_fail(&a, "CODE", PV_CLASS_TRANSIENT, "child '%s' after %d ms", "c1", 250);
	pv_result_move(&b, &a);
	assert_null(pv_result_message(&a));
	pv_result held[2];
	held[1] = b; /* a plain struct copy, as the composite hands results on */
	memset(&b, 0, sizeof b);
	assert_string_equal(pv_result_message(&held[1]), "child 'c1' after 250 ms");
	pv_result_clear(&held[1]);
}

static void test_message_read_twice_is_the_same_text(void **state)
{
	(void)state;
	pv_result r = PV_RESULT_INIT;
	pv_result_fail(&r, "CODE", PV_CLASS_TRANSIENT, "%s/%d", "a", 1);
	const char *first = pv_result_message(&r);
	assert_ptr_equal(pv_result_message(&r), first);
	/* a new failure or a success drops it */
	pv_result_fail(&r, "CODE", PV_CLASS_TRANSIENT, "%s/%d", "b", 2);
	assert_string_equal(pv_result_message(&r), "b/2");
	pv_result_ok(&r, NULL);
	assert_null(pv_result_message(&r));
	pv_result_clear(&r);
}

static void test_what_cannot_be_kept_is_formatted_at_once(void **state)
{
	(void)state;
	pv_result r = PV_RESULT_INIT;
	pv_result_fail(&r, "CODE", PV_CLASS_TRANSIENT, "[%*d]", 6, 42); /* '*' width */
	assert_non_null(r.priv.text);
	assert_string_equal(pv_result_message(&r), "[    42]");
	char big[PV_RESULT_ARGS_MAX + 50];
	memset(big, 'x', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	pv_result_fail(&r, "CODE", PV_CLASS_TRANSIENT, "body: %s", big); /* too long to keep */
	assert_non_null(r.priv.text);
	assert_int_equal(strlen(pv_result_message(&r)), strlen("body: ") + strlen(big));
	pv_result_fail(&r, "CODE", PV_CLASS_TRANSIENT, "%Lf", (long double)1.5);
	assert_string_equal(pv_result_message(&r), "1.500000");
	pv_result_clear(&r);
}

typedef struct reader {
	const pv_result *r;
	const char *seen;
} reader;

static void *read_message(void *p)
{
	reader *rd = p;
	rd->seen = pv_result_message(rd->r);
	return NULL;
}

static void test_threads_reading_one_result_get_one_text(void **state)
{
	(void)state;
	for (int round = 0; round < 50; round++) {
		pv_result r = PV_RESULT_INIT;
		pv_result_fail(&r, "CODE", PV_CLASS_TRANSIENT, "round %d of '%s'", round, "t");
		reader rd[4];
		pthread_t t[4];
		for (int i = 0; i < 4; i++) {
			rd[i] = (reader){&r, NULL};
			pthread_create(&t[i], NULL, read_message, &rd[i]);
		}
		for (int i = 0; i < 4; i++)
			pthread_join(t[i], NULL);
		char want[64];
		snprintf(want, sizeof want, "round %d of 't'", round);
		for (int i = 0; i < 4; i++) {
			assert_string_equal(rd[i].seen, want);
			assert_ptr_equal(rd[i].seen, rd[0].seen); /* one text kept, the others freed */
		}
		pv_result_clear(&r);
	}
}

/* ---- deferred metadata ---------------------------------------------------- */

typedef struct test_part {
	pv_result_later part;
	const char *key;
	int builds, *released;
} test_part;

static void part_build(const pv_result_later *p, const pv_result *r, json_t *meta)
{
	test_part *t = (test_part *)p; /* counts builds: the test's own bookkeeping */
	t->builds++;
	json_object_set_new(meta, t->key, json_string(r->provider));
}

static void part_release(pv_result_later *p)
{
	test_part *t = (test_part *)p;
	(*t->released)++;
	free(t);
}

static test_part *new_part(const char *key, int *released)
{
	test_part *t = calloc(1, sizeof *t);
	t->part = (pv_result_later){part_build, part_release, NULL};
	t->key = key;
	t->released = released;
	return t;
}

static const char *key_at(json_t *obj, size_t index)
{
	void *it = json_object_iter(obj);
	for (size_t i = 0; it && i < index; i++)
		it = json_object_iter_next(obj, it);
	return it ? json_object_iter_key(it) : NULL;
}

static void test_deferred_part_reads_like_metadata_set_at_once(void **state)
{
	(void)state;
	int released = 0;
	pv_result r = PV_RESULT_INIT;
	pv_result_set_provider(&r, "leaf");
	pv_result_meta_set(&r, "first", json_true());
	test_part *p = new_part("second", &released);
	pv_result_meta_later(&r, &p->part);
	assert_true(pv_result_has_meta(&r));
	assert_int_equal(p->builds, 0);
	pv_result_meta_set(&r, "third", json_true()); /* builds the part first: order kept */
	assert_int_equal(released, 1);
	json_t *m = pv_result_meta(&r);
	assert_int_equal(json_object_size(m), 3);
	assert_string_equal(key_at(m, 0), "first");
	assert_string_equal(key_at(m, 1), "second");
	assert_string_equal(key_at(m, 2), "third");
	assert_string_equal(json_string_value(json_object_get(m, "second")), "leaf");
	pv_result_clear(&r);
}

static void test_parts_build_oldest_first_on_read(void **state)
{
	(void)state;
	int released = 0;
	pv_result r = PV_RESULT_INIT;
	pv_result_meta_later(&r, &new_part("inner", &released)->part);
	pv_result_meta_later(&r, &new_part("outer", &released)->part);
	json_t *m = pv_result_meta(&r);
	assert_string_equal(key_at(m, 0), "inner");
	assert_string_equal(key_at(m, 1), "outer");
	assert_int_equal(released, 2);
	assert_ptr_equal(pv_result_meta(&r), m); /* built once */
	pv_result_clear(&r);
}

static void test_const_readers_build_a_copy_and_leave_the_part(void **state)
{
	(void)state;
	int released = 0;
	pv_result r = PV_RESULT_INIT;
	pv_result_ok(&r, NULL);
	pv_result_set_provider(&r, "leaf");
	test_part *p = new_part("why", &released);
	pv_result_meta_later(&r, &p->part);
	for (int i = 0; i < 2; i++) {
		json_t *spec = pv_result_metadata(&r);
		assert_string_equal(json_string_value(json_object_get(spec, "why")), "leaf");
		assert_string_equal(json_string_value(json_object_get(spec, "provider")), "leaf");
		json_decref(spec);
		json_t *all = pv_result_to_json(&r);
		assert_string_equal(json_string_value(json_object_get(
					    json_object_get(all, "metadata"), "why")),
				    "leaf");
		json_decref(all);
	}
	assert_int_equal(p->builds, 4);
	assert_int_equal(released, 0);
	assert_null(r.priv.meta); /* still deferred */
	pv_result_clear(&r);
	assert_int_equal(released, 1);
}

static void test_unread_part_is_released_unbuilt(void **state)
{
	(void)state;
	int released = 0;
	pv_result a = PV_RESULT_INIT, b = PV_RESULT_INIT;
	test_part *p = new_part("why", &released);
	pv_result_meta_later(&a, &p->part);
	pv_result_move(&b, &a); /* the part goes with the result */
	assert_false(pv_result_has_meta(&a));
	assert_true(pv_result_has_meta(&b));
	pv_result_clear(&b);
	assert_int_equal(released, 1);
}

static void test_meta_merge_adopts_or_adds(void **state)
{
	(void)state;
	pv_result r = PV_RESULT_INIT;
	json_t *obj = json_pack("{s:i}", "a", 1);
	pv_result_meta_merge(&r, json_incref(obj));
	assert_ptr_equal(pv_result_meta(&r), obj); /* none before: the object itself */
	pv_result_meta_merge(&r, json_pack("{s:i}", "b", 2));
	assert_int_equal(json_object_size(obj), 2);
	json_decref(obj);
	pv_result_clear(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_message_reads_as_printf_prints_it),
		cmocka_unit_test(test_fixed_message_is_the_format_itself),
		cmocka_unit_test(test_arguments_are_copied_not_borrowed),
		cmocka_unit_test(test_message_survives_moves_and_copies),
		cmocka_unit_test(test_message_read_twice_is_the_same_text),
		cmocka_unit_test(test_what_cannot_be_kept_is_formatted_at_once),
		cmocka_unit_test(test_threads_reading_one_result_get_one_text),
		cmocka_unit_test(test_deferred_part_reads_like_metadata_set_at_once),
		cmocka_unit_test(test_parts_build_oldest_first_on_read),
		cmocka_unit_test(test_const_readers_build_a_copy_and_leave_the_part),
		cmocka_unit_test(test_unread_part_is_released_unbuilt),
		cmocka_unit_test(test_meta_merge_adopts_or_adds),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
