/*
 * fuzz_aws_creds.c - libFuzzer target for the AWS credentials chain's
 * parsers (src/providers/aws/creds.c): the input, split at NUL bytes, is a
 * shared credentials file (INI), a config file (INI), a profile name and an
 * IMDS role credentials document (JSON with an ISO-8601 Expiration).
 * Whatever they hold, credentials and regions that come out carry no
 * control character (they end up in HTTP headers) and fit their fields.
 */
#include <stdint.h>
#include "fuzz_support.h"
#include "providers/aws/aws_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void clean(const char *s, size_t size)
{
	if (strnlen(s, size) >= size)
		abort();
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if (*p < 0x20 || *p == 0x7f)
			abort();
}

static void check(const aws_creds *c)
{
	clean(c->access_key_id, sizeof c->access_key_id);
	clean(c->secret_access_key, sizeof c->secret_access_key);
	clean(c->session_token, sizeof c->session_token);
	if (!c->access_key_id[0] || !c->secret_access_key[0])
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char creds_path[300], config_path[300];
	if (!creds_path[0]) {
		snprintf(creds_path, sizeof creds_path, "%s/credentials", fz_dir());
		snprintf(config_path, sizeof config_path, "%s/config", fz_dir());
		setenv("AWS_SHARED_CREDENTIALS_FILE", creds_path, 1);
		setenv("AWS_CONFIG_FILE", config_path, 1);
		unsetenv("AWS_REGION");
		unsetenv("AWS_DEFAULT_REGION");
		unsetenv("AWS_PROFILE");
	}
	const char *part[4] = {"", "", "", ""};
	size_t len[4] = {0, 0, 0, 0};
	const char *p = (const char *)data, *end = p + size;
	for (int i = 0; i < 4 && p <= end; i++) {
		const char *nul = memchr(p, '\0', (size_t)(end - p));
		part[i] = p;
		len[i] = nul ? (size_t)(nul - p) : (size_t)(end - p);
		p += len[i] + 1;
	}
	char path[300], profile[200];
	fz_write("credentials", part[0], len[0], path, sizeof path);
	fz_write("config", part[1], len[1], path, sizeof path);
	snprintf(profile, sizeof profile, "%.*s", (int)(len[2] < 199 ? len[2] : 199), part[2]);
	aws_creds c;
	if (aws_creds_from_shared_file(profile, &c) == 1)
		check(&c);
	char region[64];
	if (aws_region_resolve(profile, region, sizeof region) == 1)
		clean(region, sizeof region);
	memset(&c, 0, sizeof c);
	if (aws_creds_from_imds_json(part[3], len[3], &c) == 0)
		check(&c);
	return 0;
}
