/*
 * paging.c - NextToken for the describe actions.
 *
 * EC2's tokens are opaque, and one it did not make for this query is
 * refused (InvalidParameterValue). A token here is the position in the
 * answer, masked, and an HMAC (a key drawn when the emulator starts) over
 * the action, the parameters other than NextToken / MaxResults / DryRun and
 * the position: a client cannot make one up, edit one, or take one from
 * another query, and the emulator keeps no state per token.
 */
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include "emu.h"

#define MAC_BYTES 16

void emu_paging_init(emu *e)
{
	for (size_t i = 0; i < sizeof e->page_key; i += 8) {
		uint64_t x = emu_rand(e);
		memcpy(e->page_key + i, &x, 8);
	}
}

static void mac(emu *e, const char *action, json_t *p, uint64_t pos, unsigned char out[MAC_BYTES])
{
	json_t *q = json_deep_copy(p);
	json_object_del(q, "NextToken");
	json_object_del(q, "MaxResults");
	json_object_del(q, "DryRun");
	char *canon = json_dumps(q, JSON_SORT_KEYS | JSON_COMPACT);
	json_decref(q);
	emu_buf msg = {0};
	eb_printf(&msg, "%s\n%s\n%llu", action, canon ? canon : "", (unsigned long long)pos);
	free(canon);
	unsigned char full[EVP_MAX_MD_SIZE];
	unsigned len = 0;
	HMAC(EVP_sha256(), e->page_key, sizeof e->page_key, (const unsigned char *)msg.s, msg.len, full, &len);
	memcpy(out, full, MAC_BYTES);
	eb_free(&msg);
}

/* Hides the position: the token must not read as a number to count on. */
static uint64_t mask(emu *e)
{
	unsigned char full[EVP_MAX_MD_SIZE];
	unsigned len = 0;
	HMAC(EVP_sha256(), e->page_key, sizeof e->page_key, (const unsigned char *)"mask", 4, full, &len);
	uint64_t m;
	memcpy(&m, full, sizeof m);
	return m;
}

/* The NextToken that continues the query at `pos`. */
static void page_token(emu *e, const char *action, json_t *p, long pos, char *out, size_t size)
{
	unsigned char m[MAC_BYTES];
	mac(e, action, p, (uint64_t)pos, m);
	int n = snprintf(out, size, "%016llx", (unsigned long long)((uint64_t)pos ^ mask(e)));
	for (int i = 0; i < MAC_BYTES && n > 0 && (size_t)n + 2 < size; i++)
		n += snprintf(out + n, size - (size_t)n, "%02x", m[i]);
}

/* Where the query starts: 0 without NextToken, else the position its
 * token stands for; -1 with r filled (InvalidParameterValue) when the token
 * was not made by this emulator for this action and these parameters. */
static long page_start(emu *e, const char *action, json_t *p, const char *rid, emu_reply *r)
{
	const char *token = param(p, "NextToken");
	if (!token)
		return 0;
	char want[16 + 2 * MAC_BYTES + 1];
	unsigned long long masked = 0;
	bool ok = strlen(token) == sizeof want - 1 && strspn(token, "0123456789abcdef") == sizeof want - 1 &&
		  sscanf(token, "%16llx", &masked) == 1;
	uint64_t pos = masked ^ mask(e);
	if (ok && pos <= (uint64_t)LONG_MAX) {
		page_token(e, action, p, (long)pos, want, sizeof want);
		ok = strcmp(want, token) == 0;
	} else {
		ok = false;
	}
	if (!ok) {
		char msg[400];
		snprintf(msg, sizeof msg, "Value ( %.200s ) for parameter NextToken is invalid. The token is invalid.",
			 token);
		emu_error(r, 400, "InvalidParameterValue", msg, rid);
		return -1;
	}
	return (long)pos;
}

long emu_describe_start(emu *e, const char *action, json_t *p, const char *rid, emu_reply *r)
{
	long start = page_start(e, action, p, rid, r);
	if (start >= 0 && is_true(p, "DryRun")) {
		emu_dry_run_ok(r, rid);
		return -1;
	}
	return start;
}

void emu_page_next(emu *e, const char *action, json_t *p, long next, emu_buf *b)
{
	if (next < 0)
		return;
	char token[128];
	page_token(e, action, p, next, token, sizeof token);
	eb_elem(b, "nextToken", token);
}
