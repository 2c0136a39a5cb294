/*
 * test_http_parse.c - the HTTP/1.1 request parser (src/server/http_parse.c):
 * where a head ends however it trickles in, what a head says about the
 * connection and the body, the cases two parsers could disagree on
 * (refused), chunked bodies, paths and query strings, log-safe text.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "server/http_parse.h"

/* A head fed byte by byte is found once, at the same place as in one go. */
static void head_end_is_found_however_it_arrives(void **state)
{
	(void)state;
	static const char *const heads[] = {"GET / HTTP/1.1\r\nHost: a\r\n\r\nBODY",
					    "GET / HTTP/1.1\nHost: a\n\nBODY", "GET / HTTP/1.1\r\n\r\nBODY"};
	for (size_t h = 0; h < 3; h++) {
		const char *s = heads[h];
		size_t want = (size_t)(strstr(s, "BODY") - s), scan = 0, got = 0;
		for (size_t n = 1; n <= strlen(s) && !got; n++)
			got = srv_head_end(s, n, &scan);
		assert_int_equal(got, want);
		scan = 0;
		assert_int_equal(srv_head_end(s, strlen(s), &scan), want);
	}
	size_t scan = 0;
	assert_int_equal(srv_head_end("GET / HTTP/1.1\r\nHost: a\r\n", 25, &scan), 0);
}

static int parse(const char *text, srv_head *h, const char **why)
{
	static char buf[4096];
	snprintf(buf, sizeof buf, "%s", text);
	return srv_head_parse(buf, strlen(buf), h, why);
}

static void head_says_method_target_and_framing(void **state)
{
	(void)state;
	srv_head h;
	const char *why;
	assert_int_equal(parse("POST /api/v1/requests?x=1 HTTP/1.1\r\nHost: a\r\nContent-Length: 12\r\n"
			       "Expect: 100-continue\r\nX-Pad:   spaced   \r\n\r\n", &h, &why), 0);
	assert_int_equal(h.method, SRV_POST);
	assert_string_equal(h.target, "/api/v1/requests?x=1");
	assert_int_equal(h.content_length, 12);
	assert_true(h.expect_continue);
	assert_true(h.keep_alive);
	assert_string_equal(srv_head_get(&h, "x-pad"), "spaced");
	assert_int_equal(parse("GET / HTTP/1.0\r\n\r\n", &h, &why), 0);
	assert_false(h.keep_alive);
	assert_int_equal(parse("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", &h, &why), 0);
	assert_true(h.keep_alive);
	assert_int_equal(parse("GET / HTTP/1.1\r\nConnection: foo, close\r\n\r\n", &h, &why), 0);
	assert_false(h.keep_alive);
	assert_int_equal(parse("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", &h, &why), 0);
	assert_true(h.chunked);
	assert_int_equal(parse("GET http://example.com/health HTTP/1.1\r\n\r\n", &h, &why), 0);
	assert_string_equal(h.target, "/health");
	assert_int_equal(parse("BREW /pot HTTP/1.1\r\n\r\n", &h, &why), 0);
	assert_int_equal(h.method, SRV_OTHER);
	assert_string_equal(h.method_text, "BREW");
}

/* What would let two parsers see different requests is refused. */
static void ambiguous_heads_are_refused(void **state)
{
	(void)state;
	srv_head h;
	const char *why;
	static const struct {
		const char *text;
		int status;
	} cases[] = {
		{"GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400},
		{"GET / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n", 400},
		{"GET / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501},
		{"GET / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", 400},
		{"GET / HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n", 400},
		{"GET / HTTP/1.1\r\nHost : a\r\n\r\n", 400},
		{"GET / HTTP/1.1\r\nX: a\r\n folded\r\n\r\n", 400},
		{"GET / HTTP/1.1\r\nX: a\x01\r\n\r\n", 400},
		{"GET /a b HTTP/1.1\r\n\r\n", 400},
		{"GET / HTTP/2.0\r\n\r\n", 505},
		{"GET / HTTX/1.1\r\n\r\n", 400},
		{"GET nopath HTTP/1.1\r\n\r\n", 400},
		{"GET /\x7f HTTP/1.1\r\n\r\n", 400},
		{"G@T / HTTP/1.1\r\n\r\n", 400},
		{"GET / HTTP/1.1\r\nExpect: 200-ok\r\n\r\n", 417},
		{"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		int st = parse(cases[i].text, &h, &why);
		if (st != cases[i].status)
			fail_msg("case %zu: %d, want %d (%s)", i, st, cases[i].status, why);
		assert_true(why && *why);
	}
	char many[8192] = "GET / HTTP/1.1\r\n";
	for (int i = 0; i < 65; i++)
		snprintf(many + strlen(many), sizeof many - strlen(many), "X-%d: y\r\n", i);
	strcat(many, "\r\n");
	assert_int_equal(parse(many, &h, &why), 431);
}

static void chunked_bodies_decode_in_any_pieces(void **state)
{
	(void)state;
	const char *in = "5;ext=1\r\nhello\r\n7\r\n, world\r\n0\r\nTrailer: x\r\n\r\nNEXT";
	size_t total = strlen(in) - 4;
	for (size_t step = 1; step <= strlen(in); step++) {
		srv_chunked c = {0};
		char out[64];
		size_t o = 0, i = 0;
		int rc = SRV_CHUNKED_MORE;
		while (rc == SRV_CHUNKED_MORE && i < strlen(in)) {
			size_t n = strlen(in) - i < step ? strlen(in) - i : step, used, wrote;
			rc = srv_chunked_feed(&c, in + i, n, &used, out + o, sizeof out - o, &wrote);
			i += used;
			o += wrote;
		}
		assert_int_equal(rc, SRV_CHUNKED_DONE);
		assert_int_equal(i, total); /* "NEXT" is the next request's */
		assert_int_equal(o, 12);
		assert_memory_equal(out, "hello, world", 12);
	}
	srv_chunked c = {0};
	size_t used, wrote;
	char out[4];
	assert_int_equal(srv_chunked_feed(&c, "a\r\n0123456789\r\n", 16, &used, out, sizeof out, &wrote),
			 SRV_CHUNKED_FULL);
	memset(&c, 0, sizeof c);
	assert_int_equal(srv_chunked_feed(&c, "zz\r\n", 4, &used, out, sizeof out, &wrote), SRV_CHUNKED_BAD);
	memset(&c, 0, sizeof c);
	assert_int_equal(srv_chunked_feed(&c, "1\r\nab\r\n", 7, &used, out, sizeof out, &wrote), SRV_CHUNKED_BAD);
}

static void paths_decode_to_text_or_are_refused(void **state)
{
	(void)state;
	char out[32];
	const char *why;
	assert_int_equal(srv_path_decode("/api/v1/templates/caf%C3%A9?x=1", out, sizeof out, &why), 0);
	assert_string_equal(out, "/api/v1/templates/caf\xc3\xa9");
	assert_int_equal(srv_path_decode("/t/%ff", out, sizeof out, &why), 400);
	assert_int_equal(srv_path_decode("/t/%00x", out, sizeof out, &why), 400);
	assert_int_equal(srv_path_decode("/t/%0a", out, sizeof out, &why), 400);
	assert_int_equal(srv_path_decode("/t/%4", out, sizeof out, &why), 400);
	assert_int_equal(srv_path_decode("/t/%zz", out, sizeof out, &why), 400);
	assert_int_equal(srv_path_decode("/a-path-longer-than-thirty-two-bytes", out, sizeof out, &why), 414);
}

static void queries_split_decode_and_refuse(void **state)
{
	(void)state;
	srv_kv kv[SRV_MAX_QUERY];
	size_t n;
	const char *why, *key;
	char q[256] = "ids=a%2Cb&&state=running+now#frag";
	assert_int_equal(srv_query_parse(q, kv, &n, &why, &key), 0);
	assert_int_equal(n, 2);
	assert_string_equal(kv[0].key, "ids");
	assert_string_equal(kv[0].value, "a,b");
	assert_string_equal(kv[1].value, "running now");
	static const char *const bad[] = {"a", "=1", "a=1&a=2", "a=%ff", "a=%", "a=%00"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		snprintf(q, sizeof q, "%s", bad[i]);
		assert_int_equal(srv_query_parse(q, kv, &n, &why, &key), -1);
	}
	snprintf(q, sizeof q, "a=1&a=2");
	srv_query_parse(q, kv, &n, &why, &key);
	assert_string_equal(key, "a");
	char many[512] = "";
	for (int i = 0; i < 33; i++)
		snprintf(many + strlen(many), sizeof many - strlen(many), "k%d=v&", i);
	assert_int_equal(srv_query_parse(many, kv, &n, &why, &key), -1);
}

static void log_text_is_escaped_and_cut_whole(void **state)
{
	(void)state;
	char out[16];
	srv_escape_for_log("/a b\xff\"", 6, out, sizeof out);
	assert_string_equal(out, "/a%20b%FF\"");
	srv_escape_for_log("/abcdefghij\xff", 12, out, 14); /* the escape does not fit: left out whole */
	assert_string_equal(out, "/abcdefghij");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(head_end_is_found_however_it_arrives),
		cmocka_unit_test(head_says_method_target_and_framing),
		cmocka_unit_test(ambiguous_heads_are_refused),
		cmocka_unit_test(chunked_bodies_decode_in_any_pieces),
		cmocka_unit_test(paths_decode_to_text_or_are_refused),
		cmocka_unit_test(queries_split_decode_and_refuse),
		cmocka_unit_test(log_text_is_escaped_and_cut_whole),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
