/*
 * fuzz_server_settings.c - libFuzzer target for the "server" block of the
 * configuration (src/server/settings.c): any JSON as the block. A block
 * refused says why (at least one error with its path); one accepted has
 * every value in its documented range.
 */
#include <stdint.h>
#include <stdlib.h>
#include "server/server_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int quiet;
	if (!quiet++)
		pv_log_set_level(PV_LOG_OFF);
	json_t *block = json_loadb((const char *)data, size, JSON_DECODE_ANY, NULL);
	if (!block)
		return 0;
	pv_diags d;
	pv_diags_init(&d);
	srv_settings s;
	int rc = srv_settings_read(block, &s, &d);
	if (rc < 0 && (!d.errors || !d.items[0].path))
		abort();
	if (rc == 0 && (s.threads > 256 || s.max_body_bytes < 64 || s.max_header_bytes < 1024 ||
			!s.max_connections || !s.max_connections_per_client || !(s.header_timeout_s > 0) ||
			!(s.idle_timeout_s > 0) || s.port < 0 || s.port > 65535 || !s.auth_max_failures))
		abort();
	for (size_t i = 0; rc == 0 && i < s.n_tokens; i++)
		if (s.tokens[i].iterations < SRV_KDF_MIN_ITERATIONS || s.tokens[i].salt_len < 8)
			abort();
	srv_settings_clear(&s);
	pv_diags_clear(&d);
	json_decref(block);
	return 0;
}
