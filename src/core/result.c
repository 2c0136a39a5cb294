/*
 * result.c - filling, moving and printing results, and formatting or
 * building on read what a strategy deferred.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/types.h>
#include "provisio/error.h"
#include "provisio/result.h"
#include "util/names.h"

static const char *const class_names[] = {
	"none", "transient", "throttled", "capacity", "permanent", "internal",
};

const char *pv_error_class_name(pv_error_class c)
{
	return (unsigned)c <= PV_CLASS_INTERNAL ? class_names[c] : "unknown";
}

int pv_error_class_parse(const char *name, pv_error_class *out)
{
	int i = pv_names_find(class_names, (size_t)PV_CLASS_INTERNAL + 1, name, "error class");
	if (i < 0)
		return i;
	*out = (pv_error_class)i;
	return 0;
}

bool pv_error_class_retryable(pv_error_class c)
{
	return c == PV_CLASS_TRANSIENT || c == PV_CLASS_THROTTLED;
}

pv_error_class pv_error_code_class(const char *code)
{
	static const struct {
		const char *code;
		pv_error_class cls;
	} known[] = {
		{PV_ERR_TIMEOUT, PV_CLASS_TRANSIENT},
		{PV_ERR_EXECUTION_ERROR, PV_CLASS_TRANSIENT},
		{PV_ERR_THROTTLED, PV_CLASS_THROTTLED},
		{PV_ERR_CAPACITY, PV_CLASS_CAPACITY},
		{PV_ERR_INTERNAL, PV_CLASS_INTERNAL},
		{PV_ERR_NO_STRATEGY_AVAILABLE, PV_CLASS_TRANSIENT},
		{PV_ERR_ALL_STRATEGIES_FAILED, PV_CLASS_TRANSIENT},
		{"CIRCUIT_OPEN", PV_CLASS_TRANSIENT},
		{"UNHEALTHY", PV_CLASS_TRANSIENT},
		{"CONNECTION_ERROR", PV_CLASS_TRANSIENT},
		{"FAILURE_THRESHOLD_EXCEEDED", PV_CLASS_TRANSIENT},
		{"INSUFFICIENT_SUCCESS", PV_CLASS_TRANSIENT},
		{"NOT_ALL_SUCCEEDED", PV_CLASS_TRANSIENT},
		{"NO_MAJORITY", PV_CLASS_TRANSIENT},
	};
	for (size_t i = 0; code && i < sizeof known / sizeof known[0]; i++)
		if (strcmp(code, known[i].code) == 0)
			return known[i].cls;
	return PV_CLASS_PERMANENT;
}

/* ---- messages kept unformatted -------------------------------------------
 *
 * A failure keeps its format (a literal) and copies of the arguments in the
 * result's args[] and formats them when the message is read, one conversion
 * at a time. Numbers are stored as 8 bytes each (integers widened to long
 * long after the cast their length modifier implies, so %hhd prints what
 * printf would), strings as a byte saying "not NULL" and the text with its
 * NUL. Positions, not pointers, so a result can be copied or moved.
 */

enum { LEN_NONE, LEN_HH, LEN_H, LEN_L, LEN_LL, LEN_Z, LEN_J, LEN_T };

#define SPEC_BODY_MAX 16 /* flags, width and precision of one conversion */

typedef struct spec {
	size_t len;  /* of the whole conversion, '%' included */
	char conv;   /* 'd', 's', '%', ... */
	int length;  /* LEN_* */
	size_t body; /* chars of flags, width and precision after the '%' */
	long precision; /* -1 when none */
} spec;

static bool is_digit(char c) { return c >= '0' && c <= '9'; }

/* Parses the conversion at `p` ('%'). false for what is not kept. Called
 * for every conversion of every failure, so a plain scan, no libc. */
static bool parse_spec(const char *p, spec *s)
{
	const char *q = p + 1;
	while (*q == '-' || *q == '+' || *q == ' ' || *q == '#' || *q == '0')
		q++;
	while (is_digit(*q))
		q++;
	s->precision = -1;
	if (*q == '.') {
		long v = 0;
		for (q++; is_digit(*q) && v < 1000000; q++)
			v = v * 10 + (*q - '0');
		s->precision = v;
	}
	s->body = (size_t)(q - p - 1);
	s->length = LEN_NONE;
	switch (*q) {
	case 'h': s->length = q[1] == 'h' ? LEN_HH : LEN_H; break;
	case 'l': s->length = q[1] == 'l' ? LEN_LL : LEN_L; break;
	case 'z': s->length = LEN_Z; break;
	case 'j': s->length = LEN_J; break;
	case 't': s->length = LEN_T; break;
	default: break;
	}
	q += s->length == LEN_HH || s->length == LEN_LL ? 2 : s->length != LEN_NONE;
	s->conv = *q;
	s->len = (size_t)(q - p) + (*q != '\0');
	if (s->body > SPEC_BODY_MAX)
		return false;
	switch (*q) {
	case 'd': case 'i': case 'u': case 'x': case 'X': case 'o':
		return true;
	case 'c': case 's': case 'p': case 'f': case 'F': case 'e': case 'E': case 'g': case 'G':
		return s->length == LEN_NONE; /* %lc, %ls: wide characters; %lf: rare */
	case '%':
		return s->len == 2;
	default:
		return false; /* '*', %n, long double, the end of the string, ... */
	}
}

static bool is_signed(char c) { return c == 'd' || c == 'i'; }
static bool is_unsigned(char c) { return c == 'u' || c == 'x' || c == 'X' || c == 'o'; }
static bool is_double(char c) { return c == 'f' || c == 'F' || c == 'e' || c == 'E' || c == 'g' || c == 'G'; }

static long long signed_arg(int length, va_list *ap)
{
	switch (length) {
	case LEN_HH: return (signed char)va_arg(*ap, int);
	case LEN_H: return (short)va_arg(*ap, int);
	case LEN_L: return va_arg(*ap, long);
	case LEN_LL: return va_arg(*ap, long long);
	case LEN_Z: return (long long)va_arg(*ap, ssize_t);
	case LEN_J: return (long long)va_arg(*ap, intmax_t);
	case LEN_T: return (long long)va_arg(*ap, ptrdiff_t);
	default: return va_arg(*ap, int);
	}
}

static unsigned long long unsigned_arg(int length, va_list *ap)
{
	switch (length) {
	case LEN_HH: return (unsigned char)va_arg(*ap, unsigned);
	case LEN_H: return (unsigned short)va_arg(*ap, unsigned);
	case LEN_L: return va_arg(*ap, unsigned long);
	case LEN_LL: return va_arg(*ap, unsigned long long);
	case LEN_Z: return va_arg(*ap, size_t);
	case LEN_J: return (unsigned long long)va_arg(*ap, uintmax_t);
	case LEN_T: return (unsigned long long)va_arg(*ap, ptrdiff_t);
	default: return va_arg(*ap, unsigned);
	}
}

/* Copies the arguments `fmt` converts into r->priv.args. false when a
 * conversion is not supported or the arguments do not fit. */
static bool keep_args(pv_result *r, const char *fmt, va_list *ap)
{
	unsigned char *a = r->priv.args, *end = a + sizeof r->priv.args;
	for (const char *p = strchr(fmt, '%'); p; p = strchr(p, '%')) {
		spec s;
		if (!parse_spec(p, &s))
			return false;
		p += s.len;
		if (s.conv == '%')
			continue;
		if (s.conv == 's') {
			const char *str = va_arg(*ap, const char *);
			size_t n = !str ? 0 : s.precision >= 0 ? strnlen(str, (size_t)s.precision) : strlen(str);
			if ((size_t)(end - a) < n + 2)
				return false;
			*a++ = str != NULL;
			memcpy(a, str ? str : "", n);
			a[n] = '\0';
			a += n + 1;
			continue;
		}
		if (end - a < 8)
			return false;
		union { long long i; unsigned long long u; double d; uintptr_t p; } v;
		if (is_signed(s.conv) || s.conv == 'c')
			v.i = s.conv == 'c' ? va_arg(*ap, int) : signed_arg(s.length, ap);
		else if (is_unsigned(s.conv))
			v.u = unsigned_arg(s.length, ap);
		else if (is_double(s.conv))
			v.d = va_arg(*ap, double);
		else
			v.p = (uintptr_t)va_arg(*ap, void *);
		memcpy(a, &v, 8);
		a += 8;
	}
	return true;
}

/* Appends to out[*len..size) what fits; *len counts all of it. */
static void emit(char *out, size_t size, size_t *len, const char *text, size_t n)
{
	if (*len < size)
		memcpy(out + *len, text, *len + n < size ? n : size - *len);
	*len += n;
}

/* Formats one kept argument at `*a` (advanced past it) with spec `s`. */
static void emit_arg(const spec *s, const char *body, const unsigned char **a, char *out,
		     size_t size, size_t *len)
{
	char one[SPEC_BODY_MAX + 8];
	const char *length = is_signed(s->conv) || is_unsigned(s->conv) ? "ll" : "";
	snprintf(one, sizeof one, "%%%.*s%s%c", (int)s->body, body, length, s->conv);
	char *dst = *len < size ? out + *len : NULL;
	size_t room = *len < size ? size - *len : 0;
	int n;
	if (s->conv == 's') {
		bool present = **a;
		const char *str = (const char *)*a + 1;
		*a += 2 + strlen(str);
		n = snprintf(dst, room, one, present ? str : NULL);
	} else {
		union { long long i; unsigned long long u; double d; uintptr_t p; } v;
		memcpy(&v, *a, 8);
		*a += 8;
		if (s->conv == 'c')
			n = snprintf(dst, room, one, (int)v.i);
		else if (is_signed(s->conv))
			n = snprintf(dst, room, one, v.i);
		else if (is_unsigned(s->conv))
			n = snprintf(dst, room, one, v.u);
		else if (is_double(s->conv))
			n = snprintf(dst, room, one, v.d);
		else
			n = snprintf(dst, room, one, (void *)v.p);
	}
	*len += n > 0 ? (size_t)n : 0;
}

/* Formats the kept message into out[0..size); returns its full length. */
static size_t render(const char *fmt, const unsigned char *args, char *out, size_t size)
{
	size_t len = 0;
	for (const char *p = fmt;;) {
		const char *q = strchr(p, '%');
		emit(out, size, &len, p, q ? (size_t)(q - p) : strlen(p));
		if (!q)
			break;
		spec s;
		parse_spec(q, &s); /* kept, so known to parse */
		if (s.conv == '%')
			emit(out, size, &len, "%", 1);
		else
			emit_arg(&s, q + 1, &args, out, size, &len);
		p = q + s.len;
	}
	if (len < size)
		out[len] = '\0';
	return len;
}

static char *format_kept(const pv_result *r)
{
	size_t n = render(r->priv.fmt, r->priv.args, NULL, 0);
	char *text = malloc(n + 1);
	if (text)
		render(r->priv.fmt, r->priv.args, text, n + 1);
	return text;
}

const char *pv_result_message(const pv_result *r)
{
	char *text = __atomic_load_n(&r->priv.text, __ATOMIC_ACQUIRE);
	if (text || !r->priv.fmt)
		return text;
	if (!strchr(r->priv.fmt, '%'))
		return r->priv.fmt; /* a fixed text: nothing to format */
	text = format_kept(r);
	char *expected = NULL;
	/* Another thread may be reading it too: the first text stays. */
	if (text && !__atomic_compare_exchange_n(&((pv_result *)r)->priv.text, &expected, text, false,
						 __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
		free(text);
		return expected;
	}
	return text;
}

static void drop_message(pv_result *r)
{
	free(r->priv.text);
	r->priv.text = NULL;
	r->priv.fmt = NULL;
}

/* ---- deferred metadata --------------------------------------------------- */

/* Builds `part` and those attached before it, oldest first. */
static void build_parts(const pv_result_later *part, const pv_result *r, json_t *meta)
{
	if (!part)
		return;
	build_parts(part->next, r, meta);
	part->build(part, r, meta);
}

static void release_parts(pv_result_later *part)
{
	while (part) {
		pv_result_later *next = part->next;
		part->release(part);
		part = next;
	}
}

void pv_result_meta_later(pv_result *r, pv_result_later *part)
{
	part->next = r->priv.later;
	r->priv.later = part;
}

json_t *pv_result_meta(pv_result *r)
{
	pv_result_later *parts = r->priv.later;
	if (parts) {
		if (!r->priv.meta)
			r->priv.meta = json_object();
		r->priv.later = NULL;
		if (r->priv.meta)
			build_parts(parts, r, r->priv.meta);
		release_parts(parts);
	}
	return r->priv.meta;
}

/* ---- the result ------------------------------------------------------------ */

/* Every field a reader looks at, not the 300 bytes: the strings are read
 * up to their NUL, args[] only while a format is kept. Twice per call and
 * layer, so it counts. */
void pv_result_init(pv_result *r)
{
	r->success = false;
	r->error_class = PV_CLASS_NONE;
	r->error_code[0] = '\0';
	r->provider[0] = '\0';
	r->latency_ns = 0;
	r->attempts = 0;
	r->data = NULL;
	r->priv.text = NULL;
	r->priv.fmt = NULL;
	r->priv.meta = NULL;
	r->priv.later = NULL;
}

void pv_result_clear(pv_result *r)
{
	json_decref(r->data);
	json_decref(r->priv.meta);
	if (r->priv.text) /* most results have none: no call */
		free(r->priv.text);
	if (r->priv.later)
		release_parts(r->priv.later);
	pv_result_init(r);
}

void pv_result_move(pv_result *dst, pv_result *src)
{
	if (dst == src)
		return;
	pv_result_clear(dst);
	*dst = *src;
	pv_result_init(src);
}

static void copy_field(char *dst, size_t size, const char *src)
{
	size_t n = src ? strnlen(src, size - 1) : 0;
	memcpy(dst, src ? src : "", n);
	dst[n] = '\0';
}

void pv_result_ok(pv_result *r, json_t *data)
{
	json_decref(r->data);
	drop_message(r);
	r->data = data;
	r->success = true;
	r->error_class = PV_CLASS_NONE;
	r->error_code[0] = '\0';
}

void pv_result_fail(pv_result *r, const char *code, pv_error_class cls, const char *fmt, ...)
{
	json_decref(r->data);
	r->data = NULL;
	drop_message(r);
	r->success = false;
	r->error_class = cls == PV_CLASS_NONE ? PV_CLASS_INTERNAL : cls;
	copy_field(r->error_code, sizeof r->error_code, code ? code : PV_ERR_EXECUTION_ERROR);
	if (!fmt)
		return;
	va_list ap, kept;
	va_start(ap, fmt);
	va_copy(kept, ap);
	if (keep_args(r, fmt, &kept))
		r->priv.fmt = fmt;
	else if (vasprintf(&r->priv.text, fmt, ap) < 0)
		r->priv.text = NULL;
	va_end(kept);
	va_end(ap);
}

void pv_result_set_provider(pv_result *r, const char *name)
{
	copy_field(r->provider, sizeof r->provider, name);
}

void pv_result_meta_set(pv_result *r, const char *key, json_t *value)
{
	json_t *meta = pv_result_meta(r);
	if (!meta)
		meta = r->priv.meta = json_object();
	if (meta)
		json_object_set_new(meta, key, value);
	else
		json_decref(value);
}

void pv_result_meta_merge(pv_result *r, json_t *meta)
{
	if (!pv_result_has_meta(r)) {
		r->priv.meta = meta;
		return;
	}
	json_object_update(pv_result_meta(r), meta);
	json_decref(meta);
}

json_t *pv_result_metadata(const pv_result *r)
{
	json_t *m = r->priv.meta ? json_deep_copy(r->priv.meta) : json_object();
	if (!m)
		return NULL;
	build_parts(r->priv.later, r, m);
	json_object_set_new(m, "provider", r->provider[0] ? json_string(r->provider) : json_null());
	json_object_set_new(m, "latency_ms", json_real((double)r->latency_ns / 1e6));
	json_object_set_new(m, "attempts", json_integer(r->attempts));
	return m;
}

json_t *pv_result_to_json(const pv_result *r)
{
	json_t *j = json_object();
	if (!j)
		return NULL;
	const char *message = pv_result_message(r);
	json_object_set_new(j, "success", json_boolean(r->success));
	json_object_set(j, "data", r->data ? r->data : json_null());
	json_object_set_new(j, "error_code", r->success ? json_null() : json_string(r->error_code));
	json_object_set_new(j, "error_class", json_string(pv_error_class_name(r->error_class)));
	json_object_set_new(j, "message", message ? json_string(message) : json_null());
	json_object_set_new(j, "metadata", pv_result_metadata(r));
	return j;
}
