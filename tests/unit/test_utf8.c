/*
 * test_utf8.c - util/utf8: the check agrees with jansson's on every kind
 * of sequence, cleaning replaces what is invalid and cuts between
 * characters, and the last error (pv_error_set) is always text jansson
 * takes, however long and whatever bytes went into it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <jansson.h>
#include "provisio/error.h"
#include "util/utf8.h"

static bool jansson_takes(const char *s, size_t n)
{
	json_t *j = json_stringn(s, n);
	json_decref(j);
	return j != NULL;
}

/* Every 1..4-byte sequence from a set of interesting bytes: valid for us
 * exactly when jansson takes it. */
static void check_agrees_with_jansson(void **state)
{
	(void)state;
	static const unsigned char bytes[] = {0x01, 0x41, 0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0,
					      0xc1, 0xc2, 0xdf, 0xe0, 0xed, 0xef, 0xf0, 0xf4, 0xf5, 0xff};
	size_t nb = sizeof bytes;
	for (size_t a = 0; a < nb; a++)
		for (size_t b = 0; b < nb; b++)
			for (size_t c = 0; c < nb; c++)
				for (size_t d = 0; d < nb; d++) {
					char s[4] = {(char)bytes[a], (char)bytes[b], (char)bytes[c], (char)bytes[d]};
					for (size_t n = 1; n <= 4; n++)
						assert_int_equal(pv_utf8_valid(s, n), jansson_takes(s, n));
				}
}

static void clean_replaces_invalid_bytes(void **state)
{
	(void)state;
	char out[64];
	size_t n = pv_utf8_clean(out, sizeof out, "a\xff" "b\xc3\xa9", 5);
	assert_string_equal(out, "a\xef\xbf\xbd" "b\xc3\xa9");
	assert_int_equal(n, strlen(out));
	/* surrogates and overlong forms are invalid too */
	pv_utf8_clean(out, sizeof out, "\xed\xa0\x80|\xc0\xaf", 6);
	assert_true(pv_utf8_valid(out, strlen(out)));
	assert_non_null(strchr(out, '|'));
}

static void clean_cuts_between_characters(void **state)
{
	(void)state;
	char out[6]; /* room for 5 bytes: "ab" + one 3-byte character, not two */
	pv_utf8_clean(out, sizeof out, "ab\xe2\x82\xac\xe2\x82\xac", 8);
	assert_string_equal(out, "ab\xe2\x82\xac");
	/* a character cut short at the end of the input is dropped, not replaced */
	pv_utf8_clean(out, sizeof out, "ab\xe2\x82", 4);
	assert_string_equal(out, "ab");
}

static void format_cuts_on_a_boundary(void **state)
{
	(void)state;
	for (size_t size = 2; size < 12; size++) {
		char buf[16];
		pv_utf8_format(buf, size, "x%s", "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9");
		assert_true(strlen(buf) < size);
		assert_true(pv_utf8_valid(buf, strlen(buf)));
		assert_true(strlen(buf) >= size - 2); /* at most the one cut character is lost */
	}
}

/* The last error, cut by its 512-byte buffer inside a character, or
 * carrying an invalid byte from its arguments, is still valid UTF-8. */
static void last_error_is_always_valid_utf8(void **state)
{
	(void)state;
	char big[2000] = "";
	for (int i = 0; i < 600; i++)
		strcat(big, "\xc3\xa9");
	for (int shift = 0; shift < 2; shift++) {
		pv_error_set(PV_EINVAL, "%.*sno template '%s'", shift, "y", big);
		const char *m = pv_error_last();
		assert_true(strlen(m) < 512);
		assert_true(jansson_takes(m, strlen(m)));
	}
	pv_error_set(PV_EINVAL, "bad byte %s", "\xff");
	assert_true(jansson_takes(pv_error_last(), strlen(pv_error_last())));
	assert_string_equal(pv_error_last(), "bad byte \xef\xbf\xbd");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(check_agrees_with_jansson),
		cmocka_unit_test(clean_replaces_invalid_bytes),
		cmocka_unit_test(clean_cuts_between_characters),
		cmocka_unit_test(format_cuts_on_a_boundary),
		cmocka_unit_test(last_error_is_always_valid_utf8),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
