/*
 * fuzz_http.c - libFuzzer target for the HTTP/1.1 request parser
 * (src/server/http_parse.c): any bytes as a request head (found however
 * they are split), as a chunked body (fed in two pieces), as a path and as
 * a query string, and made log-safe. Checks what callers rely on: a head
 * end is found at the same place in one go and byte by byte, decoded
 * paths and query values are UTF-8 text, log text is printable ASCII.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "server/http_parse.h"
#include "util/utf8.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_text(const char *s)
{
	for (const char *p = s; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			abort();
	if (!pv_utf8_valid(s, strlen(s)))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *buf = malloc(size + 1);
	memcpy(buf, data, size);
	buf[size] = '\0';
	/* where a head ends: in one go and in pieces, the same */
	size_t scan = 0, whole = srv_head_end(buf, size, &scan), piecewise = 0;
	scan = 0;
	for (size_t n = 1; n <= size && !piecewise; n += 1 + n / 8)
		piecewise = srv_head_end(buf, n, &scan);
	if (!piecewise && size) {
		piecewise = srv_head_end(buf, size, &scan);
	}
	if (whole != piecewise)
		abort();
	if (whole) {
		srv_head h;
		const char *why;
		char *head = malloc(whole + 1);
		memcpy(head, buf, whole);
		head[whole] = '\0';
		if (srv_head_parse(head, whole, &h, &why) == 0) {
			char path[SRV_MAX_PATH];
			if (h.target && srv_path_decode(h.target, path, sizeof path, &why) == 0)
				check_text(path);
			srv_head_get(&h, "content-length");
		} else if (!why || !*why)
			abort(); /* every refusal says why */
		free(head);
	}
	/* a chunked body in two pieces, into a small buffer */
	srv_chunked c = {0};
	char out[256];
	size_t used = 0, wrote = 0, half = size / 2;
	int rc = srv_chunked_feed(&c, buf, half, &used, out, sizeof out, &wrote);
	if (used > half || wrote > sizeof out)
		abort();
	if (rc == SRV_CHUNKED_MORE)
		srv_chunked_feed(&c, buf + half, size - half, &used, out, sizeof out, &wrote);
	/* the whole input as a path and as a query */
	char path[SRV_MAX_PATH];
	const char *why;
	if (memchr(buf, '\0', size) == NULL && srv_path_decode(buf, path, sizeof path, &why) == 0)
		check_text(path);
	srv_kv kv[SRV_MAX_QUERY];
	size_t n = 0;
	const char *key;
	char *q = strdup(buf);
	if (srv_query_parse(q, kv, &n, &why, &key) == 0)
		for (size_t i = 0; i < n; i++) {
			check_text(kv[i].key);
			check_text(kv[i].value);
		}
	free(q);
	char logged[128];
	srv_escape_for_log(buf, size, logged, sizeof logged);
	for (const char *p = logged; *p; p++)
		if (*p <= 0x20 || *p >= 0x7f)
			abort();
	free(buf);
	return 0;
}
