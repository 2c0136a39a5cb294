/*
 * sigv4.c - AWS Signature Version 4 verification (see sigv4.h).
 *
 * Follows the published algorithm: canonical request (method, URI-encoded
 * normalised path, sorted re-encoded query, lower-cased trimmed signed
 * headers, signed header list, hex SHA-256 of the payload), string to sign,
 * HMAC chain over date, region, service and "aws4_request".
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/crypto.h>
#include "sigv4.h"

/* ---- a small growable string ------------------------------------------------ */

typedef struct sbuf {
	char *s;
	size_t len, cap;
	bool oom;
} sbuf;

static void sb_add(sbuf *b, const char *s, size_t n)
{
	if (b->oom)
		return;
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 256;
		while (cap < b->len + n + 1)
			cap *= 2;
		char *g = realloc(b->s, cap);
		if (!g) {
			b->oom = true;
			return;
		}
		b->s = g;
		b->cap = cap;
	}
	memcpy(b->s + b->len, s, n);
	b->len += n;
	b->s[b->len] = '\0';
}

static void sb_str(sbuf *b, const char *s) { sb_add(b, s, strlen(s)); }

static char *sb_take(sbuf *b)
{
	if (b->oom) {
		free(b->s);
		return NULL;
	}
	if (!b->s)
		return strdup("");
	return b->s;
}

/* ---- encoding --------------------------------------------------------------- */

static bool unreserved(unsigned char c)
{
	return isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~';
}

static void encode(sbuf *b, const char *s, size_t n, bool keep_slash)
{
	static const char hex[] = "0123456789ABCDEF";
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (unreserved(c) || (keep_slash && c == '/')) {
			sb_add(b, (const char *)&c, 1);
		} else {
			char e[3] = {'%', hex[c >> 4], hex[c & 15]};
			sb_add(b, e, 3);
		}
	}
}

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = tolower(c);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Percent-decodes n bytes into a new string ('+' stays '+': a query
 * string is not a form). */
static char *decode(const char *s, size_t n)
{
	char *out = malloc(n + 1), *o = out;
	if (!out)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '%' && i + 2 < n && hexval(s[i + 1]) >= 0 && hexval(s[i + 2]) >= 0) {
			*o++ = (char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
			i += 2;
		} else {
			*o++ = s[i];
		}
	}
	*o = '\0';
	return out;
}

/* ---- canonical URI -------------------------------------------------------------- */

/* Removes "." and ".." segments and empty segments, keeping a trailing
 * slash (RFC 3986 5.2.4 plus AWS's duplicate-slash rule). */
static char *normalize_path(const char *p, size_t n)
{
	char *out = malloc(n + 2);
	if (!out)
		return NULL;
	size_t olen = 0;
	size_t i = 0;
	bool trailing = n > 0 && p[n - 1] == '/';
	while (i < n) {
		while (i < n && p[i] == '/')
			i++;
		size_t start = i;
		while (i < n && p[i] != '/')
			i++;
		size_t len = i - start;
		if (len == 0 || (len == 1 && p[start] == '.'))
			continue;
		if (len == 2 && p[start] == '.' && p[start + 1] == '.') {
			while (olen > 0 && out[olen - 1] != '/')
				olen--;
			if (olen > 0)
				olen--; /* the slash before the removed segment */
			continue;
		}
		out[olen++] = '/';
		memcpy(out + olen, p + start, len);
		olen += len;
	}
	if (olen == 0 || trailing)
		out[olen++] = '/';
	out[olen] = '\0';
	return out;
}

static void canonical_uri(sbuf *b, const char *path, size_t n, bool normalize)
{
	if (n == 0) {
		sb_str(b, "/");
		return;
	}
	char *norm = normalize ? normalize_path(path, n) : NULL;
	if (norm) {
		encode(b, norm, strlen(norm), true);
		free(norm);
	} else {
		encode(b, path, n, true);
	}
}

/* ---- canonical query ------------------------------------------------------------ */

typedef struct qpair {
	char *key, *value; /* encoded */
} qpair;

static int qcmp(const void *a, const void *b)
{
	const qpair *x = a, *y = b;
	int c = strcmp(x->key, y->key);
	return c ? c : strcmp(x->value, y->value);
}

static char *reencode(const char *s, size_t n)
{
	char *d = decode(s, n);
	if (!d)
		return NULL;
	sbuf b = {0};
	encode(&b, d, strlen(d), false);
	free(d);
	return sb_take(&b);
}

static void canonical_query(sbuf *b, const char *q)
{
	if (!q || !*q)
		return;
	size_t cap = 1;
	for (const char *p = q; *p; p++)
		cap += *p == '&';
	qpair *pairs = calloc(cap, sizeof *pairs);
	if (!pairs) {
		b->oom = true;
		return;
	}
	size_t np = 0;
	for (const char *p = q; *p;) {
		const char *amp = strchr(p, '&');
		size_t len = amp ? (size_t)(amp - p) : strlen(p);
		if (len) {
			const char *eq = memchr(p, '=', len);
			size_t kl = eq ? (size_t)(eq - p) : len;
			pairs[np].key = reencode(p, kl);
			pairs[np].value = eq ? reencode(eq + 1, len - kl - 1) : strdup("");
			np++;
		}
		p += len + (amp ? 1 : 0);
	}
	qsort(pairs, np, sizeof *pairs, qcmp);
	for (size_t i = 0; i < np; i++) {
		if (i)
			sb_str(b, "&");
		sb_str(b, pairs[i].key ? pairs[i].key : "");
		sb_str(b, "=");
		sb_str(b, pairs[i].value ? pairs[i].value : "");
		free(pairs[i].key);
		free(pairs[i].value);
	}
	free(pairs);
}

/* ---- canonical headers ------------------------------------------------------------ */

/* Trims and collapses runs of spaces, as SigV4 asks. */
static void add_trimmed(sbuf *b, const char *v)
{
	while (*v == ' ' || *v == '\t')
		v++;
	bool space = false;
	size_t start = b->len;
	for (; *v; v++) {
		if (*v == ' ' || *v == '\t' || *v == '\r' || *v == '\n') {
			space = true;
			continue;
		}
		if (space && b->len > start)
			sb_add(b, " ", 1);
		space = false;
		sb_add(b, v, 1);
	}
}

const char *sigv4_header_get(const sigv4_request *r, const char *name)
{
	for (size_t i = 0; i < r->nheaders; i++)
		if (strcasecmp(r->headers[i].name, name) == 0)
			return r->headers[i].value;
	return NULL;
}

static void canonical_headers(sbuf *b, const sigv4_request *r, const char *signed_headers)
{
	char names[1024];
	snprintf(names, sizeof names, "%s", signed_headers);
	char *save = NULL;
	for (char *n = strtok_r(names, ";", &save); n; n = strtok_r(NULL, ";", &save)) {
		sb_str(b, n);
		sb_str(b, ":");
		bool first = true;
		for (size_t i = 0; i < r->nheaders; i++) {
			if (strcasecmp(r->headers[i].name, n) != 0)
				continue;
			if (!first)
				sb_str(b, ",");
			add_trimmed(b, r->headers[i].value);
			first = false;
		}
		sb_str(b, "\n");
	}
}

char *sigv4_canonical_request(const sigv4_request *r, const char *signed_headers, bool normalize)
{
	sbuf b = {0};
	sb_str(&b, r->method);
	sb_str(&b, "\n");
	const char *q = strchr(r->target, '?');
	size_t plen = q ? (size_t)(q - r->target) : strlen(r->target);
	canonical_uri(&b, r->target, plen, normalize);
	sb_str(&b, "\n");
	canonical_query(&b, q ? q + 1 : NULL);
	sb_str(&b, "\n");
	canonical_headers(&b, r, signed_headers);
	sb_str(&b, "\n");
	sb_str(&b, signed_headers);
	sb_str(&b, "\n");
	char hash[65];
	sigv4_sha256_hex(r->body ? (const void *)r->body : "", r->body ? r->body_len : 0, hash);
	sb_str(&b, hash);
	return sb_take(&b);
}

/* ---- crypto ------------------------------------------------------------------------ */

static void to_hex(const unsigned char *d, size_t n, char *out)
{
	static const char hex[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = hex[d[i] >> 4];
		out[2 * i + 1] = hex[d[i] & 15];
	}
	out[2 * n] = '\0';
}

void sigv4_sha256_hex(const void *data, size_t len, char out[65])
{
	unsigned char md[32];
	unsigned int mdlen = 0;
	EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL);
	to_hex(md, 32, out);
}

static void hmac(const unsigned char *key, size_t klen, const char *msg, unsigned char out[32])
{
	unsigned int len = 32;
	HMAC(EVP_sha256(), key, (int)klen, (const unsigned char *)msg, strlen(msg), out, &len);
}

char *sigv4_string_to_sign(const char *amz_date, const sigv4_auth *a, const char *canonical)
{
	char hash[65];
	sigv4_sha256_hex(canonical, strlen(canonical), hash);
	size_t n = strlen(amz_date) + strlen(a->region) + strlen(a->service) + 200;
	char *out = malloc(n);
	if (out)
		snprintf(out, n, "AWS4-HMAC-SHA256\n%s\n%s/%s/%s/aws4_request\n%s", amz_date, a->date,
			 a->region, a->service, hash);
	return out;
}

void sigv4_signature(const char *secret, const sigv4_auth *a, const char *sts, char out[65])
{
	char k0[300];
	unsigned char k1[32], k2[32], k3[32], k4[32], sig[32];
	snprintf(k0, sizeof k0, "AWS4%s", secret);
	hmac((const unsigned char *)k0, strlen(k0), a->date, k1);
	hmac(k1, 32, a->region, k2);
	hmac(k2, 32, a->service, k3);
	hmac(k3, 32, "aws4_request", k4);
	hmac(k4, 32, sts, sig);
	to_hex(sig, 32, out);
	OPENSSL_cleanse(k0, sizeof k0);
}

/* ---- Authorization header ------------------------------------------------------------ */

static bool field(const char *v, const char *name, char *out, size_t size)
{
	const char *p = strstr(v, name);
	if (!p)
		return false;
	p += strlen(name);
	size_t n = strcspn(p, ", ");
	if (n == 0 || n >= size)
		return false;
	memcpy(out, p, n);
	out[n] = '\0';
	return true;
}

int sigv4_parse_authorization(const char *value, sigv4_auth *out)
{
	memset(out, 0, sizeof *out);
	if (!value || strncmp(value, "AWS4-HMAC-SHA256 ", 17) != 0)
		return -1;
	char cred[512];
	if (!field(value, "Credential=", cred, sizeof cred) ||
	    !field(value, "SignedHeaders=", out->signed_headers, sizeof out->signed_headers) ||
	    !field(value, "Signature=", out->signature, sizeof out->signature))
		return -1;
	char *parts[5] = {0};
	char *save = NULL;
	int n = 0;
	for (char *t = strtok_r(cred, "/", &save); t && n < 5; t = strtok_r(NULL, "/", &save))
		parts[n++] = t;
	if (n != 5 || strcmp(parts[4], "aws4_request") != 0 || strlen(parts[1]) != 8 ||
	    strlen(parts[0]) >= sizeof out->access_key || strlen(parts[2]) >= sizeof out->region ||
	    strlen(parts[3]) >= sizeof out->service)
		return -1;
	snprintf(out->access_key, sizeof out->access_key, "%s", parts[0]);
	snprintf(out->date, sizeof out->date, "%s", parts[1]);
	snprintf(out->region, sizeof out->region, "%s", parts[2]);
	snprintf(out->service, sizeof out->service, "%s", parts[3]);
	return 0;
}

/* ---- verification ----------------------------------------------------------------------- */

static int reject(sigv4_verdict *v, int status, const char *code, const char *msg)
{
	v->http_status = status;
	snprintf(v->code, sizeof v->code, "%s", code);
	snprintf(v->message, sizeof v->message, "%s", msg);
	return -1;
}

static time_t parse_amz_date(const char *s)
{
	struct tm tm;
	memset(&tm, 0, sizeof tm);
	if (!s || strlen(s) != 16 || s[8] != 'T' || s[15] != 'Z' ||
	    sscanf(s, "%4d%2d%2dT%2d%2d%2dZ", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
		   &tm.tm_min, &tm.tm_sec) != 6)
		return (time_t)-1;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	return timegm(&tm);
}

static bool lists_header(const char *signed_headers, const char *name)
{
	size_t n = strlen(name);
	for (const char *p = signed_headers; p && *p;) {
		const char *semi = strchr(p, ';');
		size_t len = semi ? (size_t)(semi - p) : strlen(p);
		if (len == n && strncmp(p, name, n) == 0)
			return true;
		p = semi ? semi + 1 : NULL;
	}
	return false;
}

int sigv4_verify(const sigv4_request *r, sigv4_secret_fn secret_of, void *user, const char *region,
		 const char *service, time_t now, long max_skew_s, bool normalize, sigv4_verdict *v)
{
	memset(v, 0, sizeof *v);
	const char *authz = sigv4_header_get(r, "Authorization");
	if (!authz)
		return reject(v, 401, "MissingAuthenticationToken", "Request is missing Authentication Token");
	if (sigv4_parse_authorization(authz, &v->auth) < 0)
		return reject(v, 401, "AuthFailure", "The Authorization header is not a valid AWS4-HMAC-SHA256 header");
	if (!secret_of(user, v->auth.access_key, 0))
		return reject(v, 401, "AuthFailure", "AWS was not able to validate the provided access credentials");
	if ((region && strcmp(region, v->auth.region) != 0) || (service && strcmp(service, v->auth.service) != 0))
		return reject(v, 401, "AuthFailure", "Credential should be scoped to a valid region and service");
	if (!lists_header(v->auth.signed_headers, "host"))
		return reject(v, 401, "AuthFailure", "The host header must be signed");
	const char *date = sigv4_header_get(r, "X-Amz-Date");
	time_t t = parse_amz_date(date);
	if (t == (time_t)-1 || strncmp(date, v->auth.date, 8) != 0)
		return reject(v, 401, "AuthFailure", "X-Amz-Date is missing, malformed or outside the credential scope");
	if (max_skew_s >= 0 && (t > now + max_skew_s || t < now - max_skew_s))
		return reject(v, 400, "RequestExpired", "Request has expired (X-Amz-Date is more than 15 minutes off)");
	char *creq = sigv4_canonical_request(r, v->auth.signed_headers, normalize);
	char *sts = creq ? sigv4_string_to_sign(date, &v->auth, creq) : NULL;
	free(creq);
	if (!sts)
		return reject(v, 500, "InternalError", "out of memory");
	bool match = false;
	const char *secret;
	for (int i = 0; !match && (secret = secret_of(user, v->auth.access_key, i)) != NULL; i++) {
		char sig[65];
		sigv4_signature(secret, &v->auth, sts, sig);
		match = strlen(v->auth.signature) == 64 && CRYPTO_memcmp(sig, v->auth.signature, 64) == 0;
	}
	free(sts);
	if (!match)
		return reject(v, 403, "SignatureDoesNotMatch",
			      "The request signature we calculated does not match the signature you provided");
	return 0;
}
