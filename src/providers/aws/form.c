/*
 * form.c - the EC2 Query API request body.
 *
 * EC2 takes its parameters as an application/x-www-form-urlencoded POST
 * body: Action, Version, then flattened members (InstanceId.1,
 * TagSpecification.1.Tag.2.Key, ...). Values are percent-encoded the way
 * SigV4 expects (RFC 3986: only A-Z a-z 0-9 - _ . ~ stay as they are), so
 * what libcurl hashes is exactly what the server decodes.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "providers/aws/aws_internal.h"

static bool unreserved(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '_' || c == '.' || c == '~';
}

char *aws_url_encode(const char *in)
{
	size_t n = strlen(in);
	char *out = malloc(n * 3 + 1), *o = out;
	if (!out)
		return NULL;
	static const char hex[] = "0123456789ABCDEF";
	for (const unsigned char *p = (const unsigned char *)in; *p; p++) {
		if (unreserved(*p)) {
			*o++ = (char)*p;
		} else {
			*o++ = '%';
			*o++ = hex[*p >> 4];
			*o++ = hex[*p & 15];
		}
	}
	*o = '\0';
	return out;
}

char *aws_base64(const unsigned char *in, size_t len)
{
	static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	char *out = malloc((len + 2) / 3 * 4 + 1), *o = out;
	if (!out)
		return NULL;
	size_t i = 0;
	for (; i + 2 < len; i += 3) {
		unsigned v = (unsigned)in[i] << 16 | (unsigned)in[i + 1] << 8 | in[i + 2];
		*o++ = tab[v >> 18];
		*o++ = tab[(v >> 12) & 63];
		*o++ = tab[(v >> 6) & 63];
		*o++ = tab[v & 63];
	}
	if (i < len) {
		unsigned v = (unsigned)in[i] << 16 | (i + 1 < len ? (unsigned)in[i + 1] << 8 : 0);
		*o++ = tab[v >> 18];
		*o++ = tab[(v >> 12) & 63];
		*o++ = i + 1 < len ? tab[(v >> 6) & 63] : '=';
		*o++ = '=';
	}
	*o = '\0';
	return out;
}

static void append(aws_form *f, const char *s, size_t n)
{
	if (f->oom)
		return;
	if (f->len + n + 1 > f->cap) {
		size_t cap = f->cap ? f->cap : 256;
		while (cap < f->len + n + 1)
			cap *= 2;
		char *grown = realloc(f->buf, cap);
		if (!grown) {
			f->oom = true;
			return;
		}
		f->buf = grown;
		f->cap = cap;
	}
	memcpy(f->buf + f->len, s, n);
	f->len += n;
	f->buf[f->len] = '\0';
}

void aws_form_init_version(aws_form *f, const char *action, const char *version)
{
	memset(f, 0, sizeof *f);
	aws_form_add(f, "Action", action);
	aws_form_add(f, "Version", version);
}

void aws_form_init(aws_form *f, const char *action) { aws_form_init_version(f, action, "2016-11-15"); }

void aws_form_add(aws_form *f, const char *key, const char *value)
{
	char *k = aws_url_encode(key), *v = aws_url_encode(value ? value : "");
	if (!k || !v) {
		f->oom = true;
	} else {
		if (f->len)
			append(f, "&", 1);
		append(f, k, strlen(k));
		append(f, "=", 1);
		append(f, v, strlen(v));
	}
	free(k);
	free(v);
}

void aws_form_addf(aws_form *f, const char *value, const char *key_fmt, ...)
{
	char key[256];
	va_list ap;
	va_start(ap, key_fmt);
	vsnprintf(key, sizeof key, key_fmt, ap);
	va_end(ap);
	aws_form_add(f, key, value);
}

void aws_form_append(aws_form *f, const aws_form *more)
{
	if (more->oom)
		f->oom = true;
	if (!more->len)
		return;
	if (f->len)
		append(f, "&", 1);
	append(f, more->buf, more->len);
}

void aws_form_free(aws_form *f)
{
	free(f->buf);
	memset(f, 0, sizeof *f);
}
