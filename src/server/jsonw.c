/*
 * jsonw.c - a small JSON writer for the hot answers (a request and its
 * machines), straight into one buffer.
 *
 * Why not jansson here: building a tree of ~15 objects per machine and
 * serialising it was a sixth of the server's CPU under load (a malloc per
 * value, a hash table per object). The writer appends to one growing
 * buffer. Store strings are fixed-size C strings that may have been cut in
 * the middle of a UTF-8 sequence; invalid bytes become U+FFFD so the answer
 * is always valid JSON.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "server/jsonw.h"
#include "util/utf8.h"

/* Room for `more` bytes and a final NUL; false when memory ran out. The
 * first growth takes 2 KiB, what a request with a few machines needs, so
 * the hot answer reallocates rarely. */
static bool grow(jsonw *w, size_t more)
{
	if (w->failed)
		return false;
	if (w->len + more + 1 <= w->cap)
		return true;
	size_t cap = w->cap ? w->cap : 2048;
	while (cap < w->len + more + 1)
		cap *= 2;
	char *p = realloc(w->buf, cap);
	if (!p) {
		w->failed = true;
		return false;
	}
	w->buf = p;
	w->cap = cap;
	return true;
}

void jw_raw(jsonw *w, const char *s, size_t n)
{
	if (!grow(w, n))
		return;
	memcpy(w->buf + w->len, s, n);
	w->len += n;
}

static void put1(jsonw *w, char c)
{
	if (grow(w, 1))
		w->buf[w->len++] = c;
}

static void sep(jsonw *w)
{
	if (w->need_comma)
		put1(w, ',');
	w->need_comma = false;
}

/* Bytes copied as they are: printable ASCII but the quote and backslash.
 * A table, because this loop is most of what writing an answer costs. */
static const unsigned char plain[256] = {
#define R16(v) v, v, v, v, v, v, v, v, v, v, v, v, v, v, v, v
	R16(0), R16(0),
	1, 1, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 0x22 '"' */
	R16(1), R16(1),
	1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1, /* 0x5c '\\' */
	R16(1), R16(1),
#undef R16
};

/* The escapes and UTF-8 checks of one string, from the first byte that is
 * not plain. */
static void string_slow(jsonw *w, const unsigned char *p)
{
	static const char hex[] = "0123456789abcdef";
	while (*p) {
		const unsigned char *run = p;
		while (plain[*p])
			p++;
		if (p > run)
			jw_raw(w, (const char *)run, (size_t)(p - run));
		if (!*p)
			break;
		if (*p == '"' || *p == '\\') {
			char e[2] = {'\\', (char)*p++};
			jw_raw(w, e, 2);
		} else if (*p < 0x20) {
			char e[6] = {'\\', 'u', '0', '0', hex[*p >> 4], hex[*p & 15]};
			p++;
			jw_raw(w, e, 6);
		} else {
			size_t n = pv_utf8_char(p, strnlen((const char *)p, 4));
			if (n) {
				jw_raw(w, (const char *)p, n);
				p += n;
			} else {
				jw_raw(w, "\xef\xbf\xbd", 3);
				p++;
			}
		}
	}
}

static void string(jsonw *w, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	while (plain[*p])
		p++;
	size_t n = (size_t)(p - (const unsigned char *)s);
	/* the common case: all plain, one copy between the quotes */
	if (!grow(w, n + 2))
		return;
	w->buf[w->len++] = '"';
	memcpy(w->buf + w->len, s, n);
	w->len += n;
	if (*p)
		string_slow(w, p);
	put1(w, '"');
}

void jw_open(jsonw *w, char c)
{
	sep(w);
	put1(w, c);
}

void jw_close(jsonw *w, char c)
{
	put1(w, c);
	w->need_comma = true;
}

void jw_key(jsonw *w, const char *key)
{
	sep(w);
	string(w, key);
	put1(w, ':');
}

void jw_str(jsonw *w, const char *key, const char *value)
{
	if (key)
		jw_key(w, key);
	else
		sep(w);
	string(w, value ? value : "");
	w->need_comma = true;
}

void jw_str_or_null(jsonw *w, const char *key, const char *value)
{
	if (value && *value) {
		jw_str(w, key, value);
		return;
	}
	jw_key(w, key);
	jw_raw(w, "null", 4);
	w->need_comma = true;
}

void jw_int(jsonw *w, const char *key, long long v)
{
	jw_key(w, key);
	/* by hand: snprintf was a tenth of writing an answer */
	char n[24], *p = n + sizeof n;
	unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
	do
		*--p = (char)('0' + u % 10);
	while ((u /= 10));
	if (v < 0)
		*--p = '-';
	jw_raw(w, p, (size_t)(n + sizeof n - p));
	w->need_comma = true;
}

char *jw_take(jsonw *w, size_t *len)
{
	if (w->failed) {
		free(w->buf);
		return NULL;
	}
	if (!grow(w, 0)) { /* room for the NUL: the text is a C string too */
		free(w->buf);
		return NULL;
	}
	w->buf[w->len] = '\0';
	*len = w->len;
	return w->buf;
}
