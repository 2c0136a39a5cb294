/*
 * test_jsonw.c - the server's JSON writer for hot answers: what it writes
 * always parses, escapes as JSON needs, replaces invalid UTF-8 with U+FFFD,
 * formats every 64-bit integer, and puts commas where they belong.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <jansson.h>
#include "server/jsonw.h"

static json_t *parse_taken(jsonw *w, char **text)
{
	size_t len = 0;
	*text = jw_take(w, &len);
	assert_non_null(*text);
	assert_int_equal(strlen(*text), len); /* a C string too */
	json_error_t e;
	json_t *j = json_loadb(*text, len, 0, &e);
	if (!j)
		fail_msg("not JSON: %s: %s", e.text, *text);
	return j;
}

static void test_escapes_and_plain_strings_round_trip(void **state)
{
	(void)state;
	const char *values[] = {"", "plain ascii", "quote \" and backslash \\", "ctl \x01\n\t\x1f end",
				"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", "\x7f del"};
	jsonw w = {0};
	jw_open(&w, '[');
	for (size_t i = 0; i < sizeof values / sizeof values[0]; i++)
		jw_str(&w, NULL, values[i]);
	jw_close(&w, ']');
	char *text;
	json_t *j = parse_taken(&w, &text);
	assert_int_equal(json_array_size(j), sizeof values / sizeof values[0]);
	for (size_t i = 0; i < sizeof values / sizeof values[0]; i++)
		assert_string_equal(json_string_value(json_array_get(j, i)), values[i]);
	assert_non_null(strstr(text, "\\u0001"));
	json_decref(j);
	free(text);
}

static void test_invalid_utf8_becomes_replacement_character(void **state)
{
	(void)state;
	jsonw w = {0};
	jw_open(&w, '{');
	jw_str(&w, "cut", "ab\xc3");          /* a sequence cut at the end */
	jw_str(&w, "bad", "x\xff\xc0\xafy"); /* never valid bytes, an overlong form */
	jw_close(&w, '}');
	char *text;
	json_t *j = parse_taken(&w, &text);
	assert_string_equal(json_string_value(json_object_get(j, "cut")), "ab\xef\xbf\xbd");
	assert_string_equal(json_string_value(json_object_get(j, "bad")),
			    "x\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbdy");
	json_decref(j);
	free(text);
}

static void test_integers_keys_nulls_and_nesting(void **state)
{
	(void)state;
	const long long ints[] = {0, 7, -7, 1234567890123LL, LLONG_MAX, LLONG_MIN};
	jsonw w = {0};
	jw_open(&w, '{');
	jw_str_or_null(&w, "none", "");
	jw_str_or_null(&w, "some", "v");
	jw_key(&w, "ints");
	jw_open(&w, '[');
	jw_close(&w, ']');
	for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) {
		char key[8] = {'i', (char)('0' + i), 0};
		jw_int(&w, key, ints[i]);
	}
	jw_key(&w, "inner");
	jw_open(&w, '{');
	jw_int(&w, "n", 1);
	jw_close(&w, '}');
	jw_close(&w, '}');
	char *text;
	json_t *j = parse_taken(&w, &text);
	assert_true(json_is_null(json_object_get(j, "none")));
	assert_string_equal(json_string_value(json_object_get(j, "some")), "v");
	assert_int_equal(json_array_size(json_object_get(j, "ints")), 0);
	for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) {
		char key[8] = {'i', (char)('0' + i), 0};
		assert_true(json_integer_value(json_object_get(j, key)) == ints[i]);
	}
	assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "inner"), "n")), 1);
	json_decref(j);
	free(text);
}

static void test_long_answer_grows_past_the_first_buffer(void **state)
{
	(void)state;
	char big[5000];
	memset(big, 'x', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	jsonw w = {0};
	jw_open(&w, '[');
	for (int i = 0; i < 20; i++)
		jw_str(&w, NULL, big);
	jw_close(&w, ']');
	char *text;
	json_t *j = parse_taken(&w, &text);
	assert_int_equal(json_array_size(j), 20);
	assert_int_equal(strlen(json_string_value(json_array_get(j, 19))), sizeof big - 1);
	json_decref(j);
	free(text);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_escapes_and_plain_strings_round_trip),
		cmocka_unit_test(test_invalid_utf8_becomes_replacement_character),
		cmocka_unit_test(test_integers_keys_nulls_and_nesting),
		cmocka_unit_test(test_long_answer_grows_past_the_first_buffer),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
