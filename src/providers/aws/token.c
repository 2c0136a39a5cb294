/*
 * token.c - ClientToken derivation.
 *
 * EC2 makes RunInstances and CreateFleet idempotent per ClientToken: a
 * second call with the same token and parameters returns the first call's
 * reservation instead of launching again. The token is therefore derived,
 * never random: from the provisio request id, the provider instance and the
 * attempt group (batch index, instance type), so a retry after a timeout,
 * or a whole new process retrying the same request, sends the same token.
 */
#include <stdio.h>
#include <string.h>
#include "provisio/operation.h"
#include "providers/aws/aws_internal.h"
#include "util/rng.h"

static uint64_t hash3(const char *a, const char *b, const char *c)
{
	uint64_t h = PV_FNV64_OFFSET;
	const char *parts[3] = {a ? a : "", b ? b : "", c ? c : ""};
	for (int i = 0; i < 3; i++) {
		h = pv_fnv1a64(h, parts[i], strlen(parts[i]));
		h = pv_fnv1a64(h, "\x1f", 1); /* separator: ("ab","c") != ("a","bc") */
	}
	return h;
}

void aws_client_token(char *out, const char *request_id, const char *provider, const char *group)
{
	/* A readable prefix of the request id helps whoever reads CloudTrail;
	 * two independent 64-bit hashes make collisions between different
	 * inputs that share the prefix practically impossible. */
	char prefix[25];
	size_t n = 0;
	for (const char *p = request_id ? request_id : ""; *p && n < sizeof prefix - 1; p++) {
		char ch = *p;
		bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
			  (ch >= '0' && ch <= '9') || ch == '-' || ch == '_' || ch == '.';
		prefix[n++] = ok ? ch : '_';
	}
	prefix[n] = '\0';
	uint64_t h1 = hash3(request_id, provider, group);
	uint64_t h2 = pv_mix64(hash3(group, request_id, provider) ^ 0x9e3779b97f4a7c15ull);
	/* prefix(<=24) + "-" + 32 hex = at most 57 characters. */
	snprintf(out, AWS_CLIENT_TOKEN_MAX + 1, "%s%s%016llx%016llx", prefix, n ? "-" : "pv-",
		 (unsigned long long)h1, (unsigned long long)h2);
}
