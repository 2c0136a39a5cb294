/*
 * auth.c - who is calling: bearer tokens checked against the salted hashes
 * of the configuration, roles read and admin, and failed attempts limited
 * per client address.
 *
 * Only hashes are configured, each PBKDF2-HMAC-SHA256 with its own random
 * salt ("pbkdf2-sha256$<iterations>$<salt>$<hash>", from `provisio serve
 * --hash-token`): a copy of the file lets nobody in, and guessing a token
 * from it costs thousands of HMACs a guess instead of one SHA-256. The
 * presented token is compared with every configured hash, without
 * stopping at a match, so the time taken says nothing about which one
 * matched.
 *
 * That costs milliseconds, so each loop remembers the last few tokens it
 * accepted (for the configuration generation they were checked in) and
 * compares the next one with them in constant time first: a client sends
 * the same token on every request. A token that matches nothing counts
 * against its client address; past server.auth.max_failures within
 * server.auth.failure_window_seconds the address is answered 429 without
 * any hashing, so guessing is slow and cannot keep a loop busy.
 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include "server/server_internal.h"

/* Fetched once: OpenSSL 3 otherwise looks the algorithm up (under a global
 * lock) on every digest, which every loop thread would queue on. */
static EVP_MD *sha256;
static pthread_once_t sha_once = PTHREAD_ONCE_INIT;
static void fetch_sha256(void) { sha256 = EVP_MD_fetch(NULL, "SHA256", NULL); }

static void to_hex(const unsigned char *b, size_t n, char *out)
{
	static const char hex[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = hex[b[i] >> 4];
		out[2 * i + 1] = hex[b[i] & 15];
	}
	out[2 * n] = '\0';
}

void srv_sha256_hex(const char *text, char hex[65])
{
	unsigned char h[32];
	unsigned int n = 32;
	pthread_once(&sha_once, fetch_sha256);
	if (!sha256 || EVP_Digest(text, strlen(text), h, &n, sha256, NULL) != 1)
		memset(h, 0, sizeof h);
	to_hex(h, sizeof h, hex);
}

static int kdf(const char *token, size_t len, const unsigned char *salt, size_t salt_len, unsigned iterations,
	       unsigned char out[32])
{
	pthread_once(&sha_once, fetch_sha256);
	return sha256 && PKCS5_PBKDF2_HMAC(token, (int)len, salt, (int)salt_len, (int)iterations, sha256, 32,
					   out) == 1
		       ? 0
		       : -1;
}

/* ---- the hash text ------------------------------------------------------------------ */

#define PREFIX "pbkdf2-sha256$"

static int hex_bytes(const char *hex, size_t n, unsigned char *out, size_t max, size_t *len)
{
	if (n % 2 || n / 2 > max || !n)
		return -1;
	for (size_t i = 0; i < n; i += 2) {
		int v = 0;
		for (size_t k = 0; k < 2; k++) {
			char c = hex[i + k];
			int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
				: c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
			if (d < 0)
				return -1;
			v = v * 16 + d;
		}
		out[i / 2] = (unsigned char)v;
	}
	*len = n / 2;
	return 0;
}

int srv_token_hash_parse(const char *text, srv_token *t)
{
	static const char form[] = "must be \"pbkdf2-sha256$<iterations>$<salt hex>$<64 hex digits>\" as "
				   "'provisio serve --hash-token TOKEN' prints it";
	if (!text || strncmp(text, PREFIX, strlen(PREFIX)) != 0)
		return pv_error_set(PV_EINVAL, "%s", form);
	const char *p = text + strlen(PREFIX);
	char *end;
	unsigned long it = strtoul(p, &end, 10);
	if (end == p || *end != '$' || it < SRV_KDF_MIN_ITERATIONS || it > 10000000)
		return pv_error_set(PV_EINVAL, "iterations: must be from %d to 10000000; %s",
				    SRV_KDF_MIN_ITERATIONS, form);
	const char *salt = end + 1, *dollar = strchr(salt, '$');
	size_t hlen = 0;
	if (!dollar || hex_bytes(salt, (size_t)(dollar - salt), t->salt, sizeof t->salt, &t->salt_len) < 0 ||
	    t->salt_len < 8)
		return pv_error_set(PV_EINVAL, "salt: must be 16 to 128 hex digits; %s", form);
	if (hex_bytes(dollar + 1, strlen(dollar + 1), t->hash, sizeof t->hash, &hlen) < 0 || hlen != 32)
		return pv_error_set(PV_EINVAL, "hash: must be 64 hex digits; %s", form);
	t->iterations = (unsigned)it;
	return 0;
}

int pv_server_hash_token(const char *token, unsigned iterations, char *out, size_t size)
{
	unsigned char salt[16], dk[32];
	if (!iterations)
		iterations = SRV_KDF_DEFAULT_ITERATIONS;
	if (iterations < SRV_KDF_MIN_ITERATIONS)
		return pv_error_set(PV_EINVAL, "iterations: at least %d", SRV_KDF_MIN_ITERATIONS);
	if (getrandom(salt, sizeof salt, 0) != (ssize_t)sizeof salt)
		return pv_error_set(PV_EIO, "no random bytes for a salt");
	if (kdf(token, strlen(token), salt, sizeof salt, iterations, dk) < 0)
		return pv_error_set(PV_ERROR, "PBKDF2-HMAC-SHA256 is not available");
	char sh[33], dh[65];
	to_hex(salt, sizeof salt, sh);
	to_hex(dk, sizeof dk, dh);
	int n = snprintf(out, size, PREFIX "%u$%s$%s", iterations, sh, dh);
	if (n < 0 || (size_t)n >= size)
		return pv_error_set(PV_EINVAL, "the hash needs %d bytes", n + 1);
	return 0;
}

/* ---- checking a request ------------------------------------------------------------ */

static void deny(srv_req *r, int status, const char *code, const char *why)
{
	if (status == 401)
		srv_add_header(r, "WWW-Authenticate", "Bearer realm=\"provisio\"");
	srv_reply_error(r, status, code, NULL, "%s", why);
}

/* Whether `tok` is one this loop accepted lately, in this world. Every
 * slot is compared, so the time says nothing about which matched. */
static bool remembered(srv_req *r, const char *tok, size_t len)
{
	srv_thread *t = r->t;
	const struct srv_auth_slot *hit = NULL;
	for (size_t i = 0; i < sizeof t->auth / sizeof t->auth[0]; i++) {
		const struct srv_auth_slot *s = &t->auth[i];
		if (s->gen == r->w->gen && s->len == len && len && CRYPTO_memcmp(tok, s->token, len) == 0)
			hit = s;
	}
	if (!hit)
		return false;
	r->role = hit->role;
	snprintf(r->token_name, sizeof r->token_name, "%s", hit->name);
	return true;
}

static void remember(srv_req *r, const char *tok, size_t len)
{
	srv_thread *t = r->t;
	if (len >= sizeof t->auth[0].token || !r->w->gen)
		return;
	struct srv_auth_slot *s = &t->auth[t->auth_next++ % (sizeof t->auth / sizeof t->auth[0])];
	memcpy(s->token, tok, len);
	s->len = len;
	s->role = r->role;
	snprintf(s->name, sizeof s->name, "%s", r->token_name);
	s->gen = r->w->gen;
}

static int check_role(srv_req *r, srv_role need)
{
	if (r->role < need) {
		deny(r, 403, "FORBIDDEN", need == SRV_ROLE_ADMIN ? "this call needs a token with role 'admin'"
							       : "this call needs role 'read'");
		return -1;
	}
	return 0;
}

/* The configured token `tok` is, checked against every hash. */
static const srv_token *lookup(const srv_settings *s, const char *tok, size_t len)
{
	const srv_token *found = NULL;
	for (size_t i = 0; i < s->n_tokens; i++) {
		unsigned char dk[32];
		const srv_token *k = &s->tokens[i];
		if (kdf(tok, len, k->salt, k->salt_len, k->iterations, dk) == 0 &&
		    CRYPTO_memcmp(dk, k->hash, 32) == 0)
			found = k;
	}
	return found;
}

/* Too many failures from this address lately: 429, no hashing. */
static bool limited(srv_req *r, const srv_settings *s)
{
	unsigned retry = 0;
	if (!r->conn || !srv_clients_auth_blocked(r->t->srv->clients, srv_conn_addr(r->conn), pv_wall_ms(),
						  s->auth_max_failures, s->auth_failure_window_s, &retry))
		return false;
	atomic_fetch_add(&r->t->srv->auth_limited, 1);
	char ra[16];
	snprintf(ra, sizeof ra, "%u", retry);
	srv_add_header(r, "Retry-After", ra);
	srv_reply_error(r, 429, "TOO_MANY_FAILED_AUTHENTICATIONS", NULL, "%u failed authentications from "
			"this address within %g s (server.auth.max_failures); retry in %u s",
			s->auth_max_failures, s->auth_failure_window_s, retry);
	return true;
}

int srv_auth(srv_req *r, srv_role need)
{
	const srv_settings *s = &r->w->set;
	if (need == SRV_ROLE_NONE)
		return 0;
	if (!s->auth_enabled) {
		r->role = SRV_ROLE_ADMIN;
		return 0;
	}
	const char *h = srv_header(r, "Authorization");
	if (!h || strncasecmp(h, "Bearer ", 7) != 0 || !h[7]) {
		deny(r, 401, "UNAUTHENTICATED", "this call needs 'Authorization: Bearer <token>'");
		return -1;
	}
	const char *tok = h + 7;
	size_t len = strlen(tok);
	if (remembered(r, tok, len))
		return check_role(r, need);
	if (limited(r, s))
		return -1;
	const srv_token *found = lookup(s, tok, len);
	const char *gen = r->t->srv->generated_token;
	if (!found && !s->n_tokens && gen[0] && len == strlen(gen) && CRYPTO_memcmp(tok, gen, len) == 0) {
		r->role = SRV_ROLE_ADMIN;
		snprintf(r->token_name, sizeof r->token_name, "generated");
	} else if (found) {
		r->role = found->role;
		snprintf(r->token_name, sizeof r->token_name, "%s", found->name);
	} else {
		if (r->conn)
			srv_clients_auth_failed(r->t->srv->clients, srv_conn_addr(r->conn), pv_wall_ms(),
						s->auth_failure_window_s);
		deny(r, 401, "UNAUTHENTICATED", "unknown token");
		return -1;
	}
	remember(r, tok, len);
	return check_role(r, need);
}
