/*
 * http_parse.h - the HTTP/1.1 request as bytes: where a request head ends,
 * the head itself (request line, headers, framing), chunked bodies, the
 * percent-decoded path and the query string, and bytes made safe for a log
 * line. Pure functions over buffers, no sockets and no libevent, so each
 * one can be fuzzed on its own (tests/fuzz/fuzz_http.c).
 *
 * Strict on purpose: anything ambiguous about where a request ends
 * (Content-Length twice with two values, Content-Length with
 * Transfer-Encoding, obsolete line folding, a space before a header's
 * colon) is a 400, because two parsers that disagree on it are how
 * requests get smuggled.
 */
#ifndef PV_SERVER_HTTP_PARSE_H
#define PV_SERVER_HTTP_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum srv_method {
	SRV_GET = 0,
	SRV_HEAD,
	SRV_POST,
	SRV_PUT,
	SRV_DELETE,
	SRV_CONNECT,
	SRV_OPTIONS,
	SRV_TRACE,
	SRV_PATCH,
	SRV_OTHER,
	SRV_METHOD_COUNT
} srv_method;

/* "GET", ...; "OTHER" for SRV_OTHER. Static. */
const char *srv_method_name(srv_method m);

typedef struct srv_kv {
	const char *key, *value;
} srv_kv;

enum {
	SRV_MAX_HEADERS = 64, /* more is a 431 */
	SRV_MAX_QUERY = 32,   /* more parameters is a 400 */
	SRV_MAX_PATH = 1024   /* a longer decoded path is a 414 */
};

typedef struct srv_head {
	srv_method method;
	const char *method_text; /* as sent */
	const char *target;      /* the request-target as sent (origin form after
				    an absolute form's scheme and host are cut) */
	int minor;               /* HTTP/1.<minor> */
	srv_kv headers[SRV_MAX_HEADERS];
	size_t n_headers;
	int64_t content_length;  /* -1 when absent */
	bool chunked;
	bool keep_alive;
	bool expect_continue;
} srv_head;

/*
 * Where the head in buf[0..len) ends: the offset just past its empty line
 * (CRLF CRLF, or bare LFs), or 0 when it is not complete yet. *scan is
 * where to resume looking the next time more bytes arrived (start at 0),
 * so a head that trickles in byte by byte is scanned once.
 */
size_t srv_head_end(const char *buf, size_t len, size_t *scan);

/*
 * Parses a complete head (buf[0..len), len from srv_head_end) in place:
 * the strings in `h` point into buf. 0, or the HTTP status to answer (400,
 * 417, 431, 501, 505) with a static reason in *why.
 */
int srv_head_parse(char *buf, size_t len, srv_head *h, const char **why);

/* A header's value (case-insensitive name; the first of several) or NULL. */
const char *srv_head_get(const srv_head *h, const char *name);

/* A chunked request body being decoded (zero it to start). */
typedef struct srv_chunked {
	int state;
	uint64_t left;  /* bytes of the current chunk still to come */
	size_t line;    /* bytes of the current size or trailer line */
	size_t trailer; /* bytes of trailers so far */
} srv_chunked;

enum { SRV_CHUNKED_MORE = 0, SRV_CHUNKED_DONE = 1, SRV_CHUNKED_BAD = -1, SRV_CHUNKED_FULL = -2 };

/*
 * Decodes in[0..n): *used bytes are consumed, the payload among them is
 * written to out (at most `room` bytes, *wrote of them). MORE (all of in
 * used), DONE (the body ended; bytes after it are the next request's),
 * BAD (malformed: a 400) or FULL (the payload needs more room than given).
 */
int srv_chunked_feed(srv_chunked *c, const char *in, size_t n, size_t *used, char *out, size_t room,
		     size_t *wrote);

/*
 * The path of a request-target (up to '?'), percent-decoded into dst.
 * 0, or the status to answer (400: bad escape, not UTF-8, a NUL or control
 * character; 414: longer than size - 1) with *why.
 */
int srv_path_decode(const char *target, char *dst, size_t size, const char **why);

/*
 * The query of a request-target (after '?', up to '#'), split and decoded
 * in place ('+' is a space) into out[0..SRV_MAX_QUERY). 0, or -1 with *why
 * (a parameter without '=', an empty name, a name given twice, a bad
 * escape, not UTF-8, too many) and *bad_key the parameter at fault (may
 * be NULL).
 */
int srv_query_parse(char *query, srv_kv *out, size_t *n, const char **why, const char **bad_key);

/*
 * s[0..len) for a log line: printable ASCII as it is, every other byte
 * %XX. Cut (never inside an escape) to fit dst; NUL-terminated; returns
 * the length.
 */
size_t srv_escape_for_log(const char *s, size_t len, char *dst, size_t size);

#endif
