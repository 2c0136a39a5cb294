/*
 * utf8.h - text that will end up in JSON: UTF-8 checked as jansson checks
 * it (no overlong forms, no surrogates, nothing past U+10FFFF), and cut on
 * character boundaries.
 *
 * Why: messages are formatted into fixed buffers; a cut inside a multi-byte
 * sequence, or an invalid byte carried in from input (a path, a provider's
 * answer), makes jansson refuse the whole string and the caller answer
 * with nothing at all.
 */
#ifndef PV_UTIL_UTF8_H
#define PV_UTIL_UTF8_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

/* Length (1..4) of the valid UTF-8 character at s, of at most `avail`
 * bytes; 0 when the bytes there are not one. */
size_t pv_utf8_char(const unsigned char *s, size_t avail);

/* Whether s[0..len) is valid UTF-8. */
bool pv_utf8_valid(const char *s, size_t len);

/*
 * Copies src[0..len) into dst (size >= 1) as valid UTF-8: each invalid
 * byte becomes U+FFFD; when the text does not fit, it is cut after the
 * last whole character that does. Always NUL-terminated; returns the
 * length written. A character cut short at the very end of src (what a
 * byte count leaves) is dropped, not replaced. dst and src do not overlap.
 */
size_t pv_utf8_clean(char *dst, size_t size, const char *src, size_t len);

/* vsnprintf into buf, then made valid UTF-8 and cut on a character
 * boundary (pv_utf8_clean). Returns the length written. */
size_t pv_utf8_vformat(char *buf, size_t size, const char *fmt, va_list ap)
	__attribute__((format(printf, 3, 0)));
size_t pv_utf8_format(char *buf, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
