/*
 * auth.c - who is calling: bearer tokens checked against SHA-256 hashes
 * from the configuration, roles read and admin.
 *
 * Only hashes are configured, so the file never holds a usable secret. The
 * presented token is hashed and compared with every configured hash with
 * CRYPTO_memcmp, without stopping at a match, so the time taken says
 * nothing about which token (or how much of one) matched.
 *
 * Each loop remembers the last token it accepted (for the configuration
 * generation it was checked in) and compares the next one with it, also
 * in constant time, before hashing: a client sends the same token on every
 * request, and the SHA-256 was a tenth of a cheap request's CPU. Only the
 * length of the remembered token can be learnt from the timing.
 */
#include <pthread.h>
#include <string.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include "server/server_internal.h"

/* Fetched once: OpenSSL 3 otherwise looks the algorithm up (under a global
 * lock) on every digest, which every loop thread would queue on. */
static EVP_MD *sha256;
static pthread_once_t sha_once = PTHREAD_ONCE_INIT;
static void fetch_sha256(void) { sha256 = EVP_MD_fetch(NULL, "SHA256", NULL); }

void srv_token_hash_raw(const char *token, unsigned char out[32])
{
	unsigned int n = 32;
	pthread_once(&sha_once, fetch_sha256);
	if (!sha256 || EVP_Digest(token, strlen(token), out, &n, sha256, NULL) != 1)
		memset(out, 0, 32); /* never equal to a configured hash of a real token */
}

static void deny(srv_req *r, int status, const char *code, const char *why)
{
	if (status == 401)
		srv_add_header(r, "WWW-Authenticate", "Bearer realm=\"provisio\"");
	srv_reply_error(r, status, code, NULL, "%s", why);
}

/* Whether `tok` is the token this loop accepted last, in this world. */
static bool remembered(srv_req *r, const char *tok, size_t len)
{
	srv_thread *t = r->t;
	if (t->auth.gen != r->w->gen || len != t->auth.len || !len)
		return false;
	if (CRYPTO_memcmp(tok, t->auth.token, len) != 0)
		return false;
	r->role = t->auth.role;
	r->token_name = t->auth.name;
	return true;
}

static void remember(srv_req *r, const char *tok, size_t len)
{
	srv_thread *t = r->t;
	if (len >= sizeof t->auth.token || !r->w->gen)
		return;
	memcpy(t->auth.token, tok, len);
	t->auth.len = len;
	t->auth.role = r->role;
	t->auth.name = r->token_name;
	t->auth.gen = r->w->gen;
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
	size_t len = strlen(h + 7);
	if (remembered(r, h + 7, len))
		return check_role(r, need);
	unsigned char hash[32];
	srv_token_hash_raw(h + 7, hash);
	const srv_token *found = NULL;
	for (size_t i = 0; i < s->n_tokens; i++)
		if (CRYPTO_memcmp(hash, s->tokens[i].hash, 32) == 0)
			found = &s->tokens[i];
	const char *gen = r->t->srv->generated_token;
	if (!found && !s->n_tokens && gen[0] && strlen(h + 7) == strlen(gen) && CRYPTO_memcmp(h + 7, gen, strlen(gen)) == 0) {
		r->role = SRV_ROLE_ADMIN;
		r->token_name = "generated";
	} else if (found) {
		r->role = found->role;
		r->token_name = found->name;
	} else {
		deny(r, 401, "UNAUTHENTICATED", "unknown token");
		return -1;
	}
	remember(r, h + 7, len);
	return check_role(r, need);
}
