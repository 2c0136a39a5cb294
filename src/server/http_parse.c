/*
 * http_parse.c - HTTP/1.1 requests as bytes (see http_parse.h): the head,
 * chunked bodies, paths, query strings, log-safe text.
 */
#include <string.h>
#include <strings.h>
#include "server/http_parse.h"
#include "util/utf8.h"

static const char *const method_names[SRV_METHOD_COUNT] = {
	"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH", "OTHER"};

const char *srv_method_name(srv_method m)
{
	return (unsigned)m < SRV_METHOD_COUNT ? method_names[m] : "OTHER";
}

/* RFC 9110 tchar: what method and header names are made of. */
static bool tchar(unsigned char c)
{
	if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
		return true;
	return c && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static int hexval(unsigned char c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
	       : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

size_t srv_head_end(const char *buf, size_t len, size_t *scan)
{
	size_t i = *scan;
	while (i < len) {
		const char *nl = memchr(buf + i, '\n', len - i);
		if (!nl) {
			i = len;
			break;
		}
		size_t k = (size_t)(nl - buf);
		if (k + 1 < len && buf[k + 1] == '\n')
			return k + 2;
		if (k + 2 < len && buf[k + 1] == '\r' && buf[k + 2] == '\n')
			return k + 3;
		if (k + 1 == len || (k + 2 == len && buf[k + 1] == '\r')) {
			i = k; /* undecided until more bytes come */
			break;
		}
		i = k + 1;
	}
	*scan = i;
	return 0;
}

/* The next line of the head, CR LF or LF stripped and NUL-terminated in
 * place; NULL at the end. */
static char *next_line(char **p, char *end)
{
	if (*p >= end)
		return NULL;
	char *line = *p;
	char *nl = memchr(line, '\n', (size_t)(end - line));
	if (!nl)
		nl = end - 1; /* srv_head_end guarantees one; be safe anyway */
	*p = nl + 1;
	if (nl > line && nl[-1] == '\r')
		nl--;
	*nl = '\0';
	return line;
}

static srv_method method_of(const char *m)
{
	for (int i = 0; i < SRV_OTHER; i++)
		if (strcmp(m, method_names[i]) == 0)
			return (srv_method)i;
	return SRV_OTHER;
}

static int request_line(char *line, srv_head *h, const char **why)
{
	char *sp1 = strchr(line, ' ');
	char *sp2 = sp1 ? strchr(sp1 + 1, ' ') : NULL;
	if (!sp1 || !sp2 || strchr(sp2 + 1, ' ')) {
		*why = "the request line is not METHOD TARGET HTTP/1.x";
		return 400;
	}
	*sp1 = *sp2 = '\0';
	h->method_text = line;
	h->target = sp1 + 1;
	const char *version = sp2 + 1;
	size_t ml = strlen(line);
	for (size_t i = 0; i < ml; i++)
		if (!tchar((unsigned char)line[i])) {
			*why = "the method is not a token";
			return 400;
		}
	if (!ml || ml > 16) {
		*why = "the method is empty or longer than 16 characters";
		return 400;
	}
	h->method = method_of(line);
	if (strncmp(version, "HTTP/", 5) != 0 || version[5] < '0' || version[5] > '9' || version[6] != '.' ||
	    version[7] < '0' || version[7] > '9' || version[8]) {
		*why = "the version is not HTTP/<digit>.<digit>";
		return 400;
	}
	if (version[5] != '1') {
		*why = "only HTTP/1.0 and HTTP/1.1 are spoken here";
		return 505;
	}
	h->minor = version[7] - '0';
	const unsigned char *t = (const unsigned char *)h->target;
	if (!*t) {
		*why = "the request target is empty";
		return 400;
	}
	for (; *t; t++)
		if (*t <= 0x20 || *t >= 0x7f) {
			*why = "the request target holds a byte that must be percent-encoded";
			return 400;
		}
	/* absolute form (what a proxy is sent): keep the path */
	if (strncasecmp(h->target, "http://", 7) == 0 || strncasecmp(h->target, "https://", 8) == 0) {
		const char *slash = strchr(strstr(h->target, "//") + 2, '/');
		h->target = slash ? slash : "/";
	}
	if (h->target[0] != '/' && h->method != SRV_CONNECT && strcmp(h->target, "*") != 0) {
		*why = "the request target must start with '/'";
		return 400;
	}
	return 0;
}

/* Whether the comma-separated list `v` holds `token` (case-insensitive). */
static bool list_has(const char *v, const char *token)
{
	size_t n = strlen(token);
	while (*v) {
		while (*v == ' ' || *v == '\t' || *v == ',')
			v++;
		const char *end = v;
		while (*end && *end != ',')
			end++;
		const char *e = end;
		while (e > v && (e[-1] == ' ' || e[-1] == '\t'))
			e--;
		if ((size_t)(e - v) == n && strncasecmp(v, token, n) == 0)
			return true;
		v = end;
	}
	return false;
}

static int content_length(srv_head *h, const char *v, const char **why)
{
	int64_t n = 0;
	if (!*v) {
		*why = "Content-Length is empty";
		return 400;
	}
	for (const char *p = v; *p; p++) {
		if (*p < '0' || *p > '9' || n > (INT64_MAX - 9) / 10) {
			*why = "Content-Length is not a non-negative integer";
			return 400;
		}
		n = n * 10 + (*p - '0');
	}
	if (h->content_length >= 0 && h->content_length != n) {
		*why = "Content-Length is given twice with different values";
		return 400;
	}
	h->content_length = n;
	return 0;
}

/* What the headers say about framing and the connection. */
static int framing(srv_head *h, const char **why)
{
	bool close = false, keep = false, te = false;
	for (size_t i = 0; i < h->n_headers; i++) {
		const char *k = h->headers[i].key, *v = h->headers[i].value;
		int rc = 0;
		if (strcasecmp(k, "Content-Length") == 0)
			rc = content_length(h, v, why);
		else if (strcasecmp(k, "Transfer-Encoding") == 0) {
			if (te || strcasecmp(v, "chunked") != 0) {
				*why = "Transfer-Encoding: only a single \"chunked\" is supported";
				return 501;
			}
			te = true;
		} else if (strcasecmp(k, "Connection") == 0) {
			close |= list_has(v, "close");
			keep |= list_has(v, "keep-alive");
		} else if (strcasecmp(k, "Expect") == 0) {
			if (strcasecmp(v, "100-continue") != 0) {
				*why = "Expect: only 100-continue is supported";
				return 417;
			}
			h->expect_continue = true;
		}
		if (rc)
			return rc;
	}
	if (te && h->content_length >= 0) {
		*why = "Content-Length and Transfer-Encoding together";
		return 400;
	}
	if (te && h->minor == 0) {
		*why = "Transfer-Encoding in an HTTP/1.0 request";
		return 400;
	}
	h->chunked = te;
	h->keep_alive = h->minor >= 1 ? !close : keep && !close;
	return 0;
}

static int header_line(char *line, srv_head *h, const char **why)
{
	if (*line == ' ' || *line == '\t') {
		*why = "obsolete line folding in the headers";
		return 400;
	}
	char *colon = strchr(line, ':');
	if (!colon || colon == line) {
		*why = "a header line without a name and a colon";
		return 400;
	}
	for (char *p = line; p < colon; p++)
		if (!tchar((unsigned char)*p)) {
			*why = "a header name that is not a token (or whitespace before the colon)";
			return 400;
		}
	*colon = '\0';
	char *v = colon + 1;
	while (*v == ' ' || *v == '\t')
		v++;
	char *end = v + strlen(v);
	while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
		end--;
	*end = '\0';
	for (const unsigned char *p = (const unsigned char *)v; *p; p++)
		if ((*p < 0x20 && *p != '\t') || *p == 0x7f) {
			*why = "a control character in a header value";
			return 400;
		}
	if (h->n_headers == SRV_MAX_HEADERS) {
		*why = "more than 64 header lines";
		return 431;
	}
	h->headers[h->n_headers].key = line;
	h->headers[h->n_headers].value = v;
	h->n_headers++;
	return 0;
}

int srv_head_parse(char *buf, size_t len, srv_head *h, const char **why)
{
	memset(h, 0, sizeof *h);
	h->content_length = -1;
	*why = "";
	if (memchr(buf, '\0', len)) {
		*why = "a NUL byte in the request head";
		return 400;
	}
	char *p = buf, *end = buf + len;
	char *line = next_line(&p, end);
	if (!line) {
		*why = "an empty request";
		return 400;
	}
	int rc = request_line(line, h, why);
	while (rc == 0 && (line = next_line(&p, end)) && *line)
		rc = header_line(line, h, why);
	if (rc == 0)
		rc = framing(h, why);
	return rc;
}

const char *srv_head_get(const srv_head *h, const char *name)
{
	for (size_t i = 0; i < h->n_headers; i++)
		if (strcasecmp(h->headers[i].key, name) == 0)
			return h->headers[i].value;
	return NULL;
}

/* ---- chunked bodies ------------------------------------------------------------- */

enum { CH_SIZE = 0, CH_EXT, CH_SIZE_LF, CH_DATA, CH_DATA_CR, CH_DATA_LF, CH_TRAILER, CH_TRAILER_LF, CH_DONE };

/* A size line or a trailer line longer than this is refused. */
#define CH_LINE_MAX 4096
#define CH_TRAILER_MAX 16384

int srv_chunked_feed(srv_chunked *c, const char *in, size_t n, size_t *used, char *out, size_t room,
		     size_t *wrote)
{
	size_t i = 0, w = 0;
	int rc = SRV_CHUNKED_MORE;
	while (i < n && rc == SRV_CHUNKED_MORE) {
		unsigned char ch = (unsigned char)in[i];
		switch (c->state) {
		case CH_SIZE: {
			int v = hexval(ch);
			if (v >= 0 && c->line < 15) {
				c->left = c->left * 16 + (uint64_t)v;
				c->line++;
				i++;
			} else if (c->line > 0 && (ch == ';' || ch == ' ' || ch == '\t')) {
				c->state = CH_EXT;
			} else if (c->line > 0 && ch == '\r') {
				c->state = CH_SIZE_LF;
				i++;
			} else if (c->line > 0 && ch == '\n') {
				c->state = c->left ? CH_DATA : CH_TRAILER;
				c->line = 0;
				i++;
			} else
				rc = SRV_CHUNKED_BAD;
			break;
		}
		case CH_EXT: /* chunk extensions are ignored, within reason */
			if (ch == '\n') {
				c->state = c->left ? CH_DATA : CH_TRAILER;
				c->line = 0;
			} else if (++c->line > CH_LINE_MAX || (ch < 0x20 && ch != '\t' && ch != '\r'))
				rc = SRV_CHUNKED_BAD;
			i++;
			break;
		case CH_SIZE_LF:
			if (ch != '\n') {
				rc = SRV_CHUNKED_BAD;
				break;
			}
			c->state = c->left ? CH_DATA : CH_TRAILER;
			c->line = 0;
			i++;
			break;
		case CH_DATA: {
			size_t take = n - i < c->left ? n - i : (size_t)c->left;
			if (take > room - w) {
				take = room - w;
				if (!take) {
					rc = SRV_CHUNKED_FULL;
					break;
				}
			}
			memcpy(out + w, in + i, take);
			w += take;
			i += take;
			c->left -= take;
			if (!c->left)
				c->state = CH_DATA_CR;
			break;
		}
		case CH_DATA_CR:
			if (ch == '\r') {
				c->state = CH_DATA_LF;
				i++;
			} else if (ch == '\n') {
				c->state = CH_SIZE;
				i++;
			} else
				rc = SRV_CHUNKED_BAD;
			break;
		case CH_DATA_LF:
			if (ch != '\n') {
				rc = SRV_CHUNKED_BAD;
				break;
			}
			c->state = CH_SIZE;
			i++;
			break;
		case CH_TRAILER: /* trailer lines until an empty one; their content is ignored */
			if (ch == '\n') {
				if (c->line == 0) {
					c->state = CH_DONE;
					rc = SRV_CHUNKED_DONE;
				}
				c->line = 0;
			} else if (ch == '\r' && c->line == 0) {
				c->state = CH_TRAILER_LF;
			} else if (++c->line > CH_LINE_MAX || ++c->trailer > CH_TRAILER_MAX ||
				   (ch < 0x20 && ch != '\t' && ch != '\r'))
				rc = SRV_CHUNKED_BAD;
			i++;
			break;
		case CH_TRAILER_LF:
			if (ch != '\n') {
				rc = SRV_CHUNKED_BAD;
				break;
			}
			c->state = CH_DONE;
			rc = SRV_CHUNKED_DONE;
			i++;
			break;
		default:
			rc = SRV_CHUNKED_DONE;
		}
	}
	*used = i;
	*wrote = w;
	return rc;
}

/* ---- paths and queries ---------------------------------------------------------------- */

/* Decodes src[0..len) into dst (at least len + 1 bytes; dst may be src):
 * %XX always, '+' as a space when asked. The decoded length, or -1 on a
 * bad escape. */
static long percent_decode(const char *src, size_t len, char *dst, bool plus)
{
	size_t o = 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)src[i];
		if (c == '%') {
			int hi = i + 2 < len ? hexval((unsigned char)src[i + 1]) : -1;
			int lo = hi >= 0 ? hexval((unsigned char)src[i + 2]) : -1;
			if (lo < 0)
				return -1;
			dst[o++] = (char)(hi * 16 + lo);
			i += 2;
		} else
			dst[o++] = plus && c == '+' ? ' ' : (char)c;
	}
	dst[o] = '\0';
	return (long)o;
}

/* Decoded text fit for routes, logs and JSON: valid UTF-8, no control
 * characters (a NUL would cut the string where C code reads it). */
static bool clean_text(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return false;
	return pv_utf8_valid(s, n);
}

int srv_path_decode(const char *target, char *dst, size_t size, const char **why)
{
	size_t len = strcspn(target, "?#");
	if (len >= size) {
		*why = "the path is too long";
		return 414;
	}
	long n = percent_decode(target, len, dst, false);
	if (n < 0) {
		*why = "the path holds a '%' not followed by two hex digits";
		return 400;
	}
	if (!clean_text(dst, (size_t)n)) {
		*why = "the path, percent-decoded, is not UTF-8 text (or holds a control character)";
		return 400;
	}
	return 0;
}

int srv_query_parse(char *query, srv_kv *out, size_t *n, const char **why, const char **bad_key)
{
	*n = 0;
	*bad_key = NULL;
	query[strcspn(query, "#")] = '\0';
	char *p = query;
	while (*p) {
		char *amp = strchr(p, '&');
		char *end = amp ? amp : p + strlen(p);
		if (amp)
			*amp = '\0';
		if (end == p) { /* "a=1&&b=2": an empty piece */
			p = amp ? amp + 1 : end;
			continue;
		}
		char *eq = strchr(p, '=');
		if (!eq) {
			*why = "a query parameter without '='";
			return -1;
		}
		*eq = '\0';
		long kl = percent_decode(p, (size_t)(eq - p), p, true);
		long vl = percent_decode(eq + 1, (size_t)(end - eq - 1), eq + 1, true);
		if (kl < 0 || vl < 0) {
			*why = "a '%' not followed by two hex digits in the query";
			return -1;
		}
		if (!kl || !clean_text(p, (size_t)kl) || !clean_text(eq + 1, (size_t)vl)) {
			*why = kl ? "a query parameter that is not UTF-8 text" : "a query parameter without a name";
			return -1;
		}
		for (size_t i = 0; i < *n; i++)
			if (strcmp(out[i].key, p) == 0) {
				*why = "a query parameter given twice";
				*bad_key = out[i].key;
				return -1;
			}
		if (*n == SRV_MAX_QUERY) {
			*why = "more than 32 query parameters";
			return -1;
		}
		out[*n].key = p;
		out[*n].value = eq + 1;
		(*n)++;
		p = amp ? amp + 1 : end;
	}
	return 0;
}

size_t srv_escape_for_log(const char *s, size_t len, char *dst, size_t size)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t o = 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		bool plain = c > 0x20 && c < 0x7f;
		size_t need = plain ? 1 : 3;
		if (o + need >= size)
			break;
		if (plain)
			dst[o++] = (char)c;
		else {
			dst[o++] = '%';
			dst[o++] = hex[c >> 4];
			dst[o++] = hex[c & 15];
		}
	}
	if (size)
		dst[o] = '\0';
	return o;
}
