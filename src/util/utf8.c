/*
 * utf8.c - UTF-8 checked the way jansson checks it, and text cut on
 * character boundaries (see utf8.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "util/utf8.h"

size_t pv_utf8_char(const unsigned char *s, size_t avail)
{
	if (!avail)
		return 0;
	unsigned c = s[0];
	if (c < 0x80)
		return 1;
	size_t n;
	unsigned cp;
	if (c >= 0xc2 && c <= 0xdf) {
		n = 2;
		cp = c & 0x1f;
	} else if (c >= 0xe0 && c <= 0xef) {
		n = 3;
		cp = c & 0x0f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		n = 4;
		cp = c & 0x07;
	} else {
		return 0; /* a continuation byte, an overlong lead (c0, c1) or past U+10FFFF */
	}
	if (avail < n)
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

bool pv_utf8_valid(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s, *end = p + len;
	while (p < end) {
		if (*p < 0x80) {
			p++;
			continue;
		}
		size_t n = pv_utf8_char(p, (size_t)(end - p));
		if (!n)
			return false;
		p += n;
	}
	return true;
}

/* Whether s[0..avail) is the start of a character cut short (what a byte
 * count leaves at the end of a truncated text). */
static bool cut_short(const unsigned char *s, size_t avail)
{
	unsigned c = s[0];
	size_t n = c >= 0xf0 && c <= 0xf4 ? 4 : c >= 0xe0 && c <= 0xef ? 3 : c >= 0xc2 && c <= 0xdf ? 2 : 0;
	if (!n || avail >= n)
		return false;
	for (size_t i = 1; i < avail; i++)
		if ((s[i] & 0xc0) != 0x80)
			return false;
	/* the second byte's narrower ranges (no overlong form, surrogate or
	 * code point past U+10FFFF can start this way) */
	if (avail >= 2) {
		unsigned d = s[1];
		if ((c == 0xe0 && d < 0xa0) || (c == 0xed && d > 0x9f) || (c == 0xf0 && d < 0x90) ||
		    (c == 0xf4 && d > 0x8f))
			return false;
	}
	return true;
}

size_t pv_utf8_clean(char *dst, size_t size, const char *src, size_t len)
{
	const unsigned char *p = (const unsigned char *)src, *end = p + len;
	size_t out = 0;
	while (p < end) {
		size_t n = pv_utf8_char(p, (size_t)(end - p));
		const char *piece = (const char *)p;
		size_t take = n;
		if (!n) {
			if (cut_short(p, (size_t)(end - p)))
				break;
			piece = "\xef\xbf\xbd";
			take = 3;
			n = 1;
		}
		if (out + take >= size)
			break;
		memmove(dst + out, piece, take);
		out += take;
		p += n;
	}
	dst[out] = '\0';
	return out;
}

size_t pv_utf8_vformat(char *buf, size_t size, const char *fmt, va_list ap)
{
	int n = vsnprintf(buf, size, fmt, ap);
	if (n < 0) {
		buf[0] = '\0';
		return 0;
	}
	size_t len = (size_t)n < size ? (size_t)n : size - 1;
	if (pv_utf8_valid(buf, len))
		return len;
	/* an invalid byte, or a character cut by the byte count: the common
	 * case is the cut, which only shortens the text in place */
	size_t keep = len;
	while (keep > 0 && ((unsigned char)buf[keep - 1] & 0xc0) == 0x80 && len - keep < 3)
		keep--;
	if (keep > 0 && cut_short((const unsigned char *)buf + keep - 1, len - keep + 1) &&
	    pv_utf8_valid(buf, keep - 1)) {
		buf[keep - 1] = '\0';
		return keep - 1;
	}
	char *copy = malloc(len + 1);
	if (!copy) { /* keep the valid prefix */
		size_t i = 0;
		while (i < len && pv_utf8_char((const unsigned char *)buf + i, len - i))
			i += pv_utf8_char((const unsigned char *)buf + i, len - i);
		buf[i] = '\0';
		return i;
	}
	memcpy(copy, buf, len);
	size_t out = pv_utf8_clean(buf, size, copy, len);
	free(copy);
	return out;
}

size_t pv_utf8_format(char *buf, size_t size, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	size_t n = pv_utf8_vformat(buf, size, fmt, ap);
	va_end(ap);
	return n;
}
