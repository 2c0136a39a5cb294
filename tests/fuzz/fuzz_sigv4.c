/*
 * fuzz_sigv4.c - libFuzzer target for AWS Signature Version 4 on both
 * sides of the EC2 emulator's wire:
 *  - the emulator's verifier (tools/ec2-emulator/sigv4.c) on any bytes as
 *    a raw HTTP request (request line, headers, body);
 *  - the provider's signed POST (src/providers/aws/http.c; the signature
 *    itself is libcurl's CURLOPT_AWS_SIGV4) with the region, secret,
 *    session token and form body from the input, sent to a loopback peer;
 *    the request as it arrived is checked by the emulator's verifier, and
 *    must pass whenever those inputs are the kind AWS issues.
 * The input is split at NUL bytes: raw request, region, secret, token,
 * form body.
 */
#include <ctype.h>
#include <stdint.h>
#include "fuzz_support.h"
#include "providers/aws/aws_internal.h"
#include "sigv4.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *the_secret;

static const char *secret_of(void *user, const char *ak, int index)
{
	(void)user;
	return strcmp(ak, "AKIDFUZZ") == 0 && index == 0 ? the_secret : NULL;
}

/* A raw request split into method, target, headers and body, in place. */
static int verify_raw(char *text, size_t len, bool expect_valid)
{
	sigv4_header headers[64];
	size_t nh = 0;
	char *body = memmem(text, len, "\r\n\r\n", 4);
	size_t blen = 0;
	if (body) {
		*body = '\0';
		body += 4;
		blen = len - (size_t)(body - text);
	}
	char *save = NULL, *line = strtok_r(text, "\r\n", &save);
	if (!line)
		return -1;
	char *sp1 = strchr(line, ' '), *sp2 = sp1 ? strchr(sp1 + 1, ' ') : NULL;
	if (!sp2)
		return -1;
	*sp1 = *sp2 = '\0';
	while ((line = strtok_r(NULL, "\r\n", &save)) && nh < 64) {
		char *colon = strchr(line, ':');
		if (!colon)
			continue;
		*colon = '\0';
		char *v = colon + 1;
		while (*v == ' ')
			v++;
		headers[nh].name = line;
		headers[nh++].value = v;
	}
	sigv4_request r = {text, sp1 + 1, headers, nh, (const unsigned char *)body, blen};
	sigv4_verdict v;
	int rc = sigv4_verify(&r, secret_of, NULL, NULL, NULL, 0, -1, true, &v);
	if (expect_valid && rc != 0) {
		fprintf(stderr, "fuzz_sigv4: a request the provider signed was refused: %d %s: %s\n",
			v.http_status, v.code, v.message);
		abort();
	}
	return rc;
}

static bool plain(const char *s, size_t max, bool region)
{
	size_t n = strlen(s);
	if (!n || n > max)
		return false;
	for (const char *p = s; *p; p++)
		if (region ? !(islower((unsigned char)*p) || isdigit((unsigned char)*p) || *p == '-')
			   : !(isalnum((unsigned char)*p) || strchr("+/=", *p)))
			return false;
	return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static fz_peer *peer;
	static aws_http_pool pool;
	if (!peer) {
		fz_dir();
		aws_http_global_init();
		aws_http_pool_init(&pool);
		peer = fz_peer_start();
		fz_peer_answer(peer, 200, "<ok/>", 5);
	}
	char *text = malloc(size + 1);
	memcpy(text, data, size);
	text[size] = '\0';
	const char *part[5] = {"", "", "", "", ""};
	char *p = text, *end = text + size;
	for (int i = 0; i < 5 && p <= end; i++) {
		part[i] = p;
		p += strlen(p) + 1;
	}
	char *raw = strdup(part[0]);
	the_secret = "fuzz-secret";
	verify_raw(raw, strlen(raw), false);
	free(raw);
	/* the provider's signed POST, checked where it lands */
	const char *region = part[1], *secret = part[2], *token = part[3], *form = part[4];
	if (plain(region, 20, true) && plain(secret, 80, false) && (!*token || plain(token, 400, false))) {
		aws_creds c;
		memset(&c, 0, sizeof c);
		snprintf(c.access_key_id, sizeof c.access_key_id, "AKIDFUZZ");
		snprintf(c.secret_access_key, sizeof c.secret_access_key, "%s", secret);
		snprintf(c.session_token, sizeof c.session_token, "%s", token);
		char url[64];
		snprintf(url, sizeof url, "http://127.0.0.1:%d/", peer->port);
		aws_http_opts o = {.endpoint_url = url, .region = region, .connect_timeout_ms = 5000,
				   .timeout_ms = 10000};
		aws_http_reply r;
		if (aws_http_post(&pool, &o, &c, form, &r) == 0 && r.status == 200) {
			pthread_mutex_lock(&peer->lock);
			char *got = malloc(peer->last_len + 1);
			memcpy(got, peer->last, peer->last_len);
			got[peer->last_len] = '\0';
			size_t n = peer->last_len;
			pthread_mutex_unlock(&peer->lock);
			the_secret = secret;
			verify_raw(got, n, true);
			free(got);
		}
		aws_http_reply_free(&r);
	}
	free(text);
	return 0;
}
