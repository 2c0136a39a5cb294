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

static void grow(jsonw *w, size_t more)
{
	if (w->failed || w->len + more + 1 <= w->cap)
		return;
	size_t cap = w->cap ? w->cap : 1024;
	while (cap < w->len + more + 1)
		cap *= 2;
	char *p = realloc(w->buf, cap);
	if (!p) {
		w->failed = true;
		return;
	}
	w->buf = p;
	w->cap = cap;
}

void jw_raw(jsonw *w, const char *s, size_t n)
{
	grow(w, n);
	if (w->failed)
		return;
	memcpy(w->buf + w->len, s, n);
	w->len += n;
	w->buf[w->len] = '\0';
}

static void sep(jsonw *w)
{
	if (w->need_comma)
		jw_raw(w, ",", 1);
	w->need_comma = false;
}

/* Length of a valid UTF-8 sequence at s (1..4), or 0 when invalid. */
static size_t utf8_len(const unsigned char *s)
{
	if (s[0] < 0x80)
		return 1;
	size_t n = (s[0] & 0xe0) == 0xc0 ? 2 : (s[0] & 0xf0) == 0xe0 ? 3 : (s[0] & 0xf8) == 0xf0 ? 4 : 0;
	if (!n || (n == 2 && s[0] < 0xc2))
		return 0;
	for (size_t i = 1; i < n; i++)
		if ((s[i] & 0xc0) != 0x80)
			return 0;
	return n;
}

static void string(jsonw *w, const char *s)
{
	jw_raw(w, "\"", 1);
	const unsigned char *p = (const unsigned char *)s;
	while (*p) {
		const unsigned char *run = p;
		while (*p >= 0x20 && *p < 0x80 && *p != '"' && *p != '\\')
			p++;
		if (p > run)
			jw_raw(w, (const char *)run, (size_t)(p - run));
		if (!*p)
			break;
		if (*p == '"' || *p == '\\') {
			char e[2] = {'\\', (char)*p++};
			jw_raw(w, e, 2);
		} else if (*p < 0x20) {
			char e[8];
			snprintf(e, sizeof e, "\\u%04x", *p++);
			jw_raw(w, e, 6);
		} else {
			size_t n = utf8_len(p);
			if (n) {
				jw_raw(w, (const char *)p, n);
				p += n;
			} else {
				jw_raw(w, "\xef\xbf\xbd", 3);
				p++;
			}
		}
	}
	jw_raw(w, "\"", 1);
}

void jw_open(jsonw *w, char c)
{
	sep(w);
	jw_raw(w, &c, 1);
}

void jw_close(jsonw *w, char c)
{
	jw_raw(w, &c, 1);
	w->need_comma = true;
}

void jw_key(jsonw *w, const char *key)
{
	sep(w);
	string(w, key);
	jw_raw(w, ":", 1);
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
	char n[24];
	int len = snprintf(n, sizeof n, "%lld", v);
	jw_raw(w, n, (size_t)len);
	w->need_comma = true;
}

char *jw_take(jsonw *w, size_t *len)
{
	if (w->failed) {
		free(w->buf);
		return NULL;
	}
	*len = w->len;
	return w->buf;
}
