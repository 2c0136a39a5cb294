/*
 * sigv4.h - an AWS Signature Version 4 verifier for the EC2 emulator.
 *
 * The emulator's own implementation (the provider signs with libcurl), so
 * that the two sides do not share a bug. Checked against the AWS SigV4
 * test suites (tests/data/sigv4/) and against requests captured from the
 * AWS CLI, the JavaScript SDK and libcurl (tests/data/ec2-requests/).
 */
#ifndef EC2EMU_SIGV4_H
#define EC2EMU_SIGV4_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

typedef struct sigv4_header {
	const char *name;
	const char *value;
} sigv4_header;

typedef struct sigv4_request {
	const char *method;
	const char *target; /* request target as sent: path[?query] */
	const sigv4_header *headers;
	size_t nheaders;
	const unsigned char *body;
	size_t body_len;
} sigv4_request;

typedef struct sigv4_auth {
	char access_key[128];
	char date[9];
	char region[32];
	char service[32];
	char signed_headers[1024];
	char signature[65];
} sigv4_auth;

/* Parses "AWS4-HMAC-SHA256 Credential=AK/DATE/REGION/SERVICE/aws4_request,
 * SignedHeaders=a;b, Signature=hex". 0 or -1. */
int sigv4_parse_authorization(const char *value, sigv4_auth *out);

/* The canonical request (a new string the caller frees, NULL on ENOMEM).
 * `normalize` removes dot segments and duplicate slashes from the path,
 * as every service but S3 does. */
char *sigv4_canonical_request(const sigv4_request *r, const char *signed_headers, bool normalize);

/* The string to sign (new string). */
char *sigv4_string_to_sign(const char *amz_date, const sigv4_auth *a, const char *canonical);

/* Hex HMAC signature of the string to sign into out[65]. */
void sigv4_signature(const char *secret, const sigv4_auth *a, const char *string_to_sign, char out[65]);

/* Hex SHA-256 of bytes into out[65]. */
void sigv4_sha256_hex(const void *data, size_t len, char out[65]);

/* The value of a header (case-insensitive), first one, or NULL. */
const char *sigv4_header_get(const sigv4_request *r, const char *name);

typedef struct sigv4_verdict {
	int http_status;     /* 0 when valid */
	char code[48];       /* EC2 error code */
	char message[256];
	sigv4_auth auth;
} sigv4_verdict;

/* The index-th secret of an access key (0, 1, ...); NULL when there is no
 * more. An emulator may know several secrets for one test key. */
typedef const char *(*sigv4_secret_fn)(void *user, const char *access_key, int index);

/*
 * Verifies a signed request: header present and well formed, the access
 * key known, the scope's region and service as expected (NULL = any), the
 * X-Amz-Date within `max_skew_s` of `now` (negative = no check) and the
 * signature right. 0 when valid, -1 with `v` saying why.
 */
int sigv4_verify(const sigv4_request *r, sigv4_secret_fn secret, void *user, const char *region,
		 const char *service, time_t now, long max_skew_s, bool normalize, sigv4_verdict *v);

#endif
