/*
 * test_aws_sigv4.c - the EC2 emulator's SigV4 verifier against the AWS
 * SigV4 test suites (botocore's classic aws4_testsuite and aws-c-auth's
 * aws-signing-test-suite, copied under tests/data/sigv4/) and against
 * requests captured from real EC2 clients (tests/data/ec2-requests/).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>
#include "sigv4.h"

#ifndef PV_TEST_DATA_DIR
#define PV_TEST_DATA_DIR "tests/data"
#endif

#define SECRET "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"

static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fseek(f, 0, SEEK_SET);
	char *buf = malloc((size_t)n + 1);
	size_t got = fread(buf, 1, (size_t)n, f);
	buf[got] = '\0';
	fclose(f);
	if (len)
		*len = got;
	return buf;
}

/* A parsed raw HTTP request: request line, headers (folded continuation
 * lines joined with a space), body after the first empty line. */
typedef struct raw_req {
	char *text;
	char method[16];
	char *target;
	sigv4_header headers[64];
	size_t nheaders;
	char *body;
	size_t body_len;
} raw_req;

static void parse_raw(raw_req *r, char *text, size_t len)
{
	memset(r, 0, sizeof *r);
	r->text = text;
	char *end = text + len;
	char *line = text;
	int n = 0;
	char *last_value = NULL;
	while (line < end) {
		char *nl = memchr(line, '\n', (size_t)(end - line));
		char *next = nl ? nl + 1 : end;
		char *stop = nl ? nl : end;
		if (stop > line && stop[-1] == '\r')
			stop--;
		*stop = '\0';
		if (n == 0) {
			char *sp = strchr(line, ' ');
			*sp = '\0';
			snprintf(r->method, sizeof r->method, "%s", line);
			r->target = sp + 1;
			char *v = strrchr(r->target, ' ');
			if (v && strncmp(v, " HTTP/", 6) == 0)
				*v = '\0';
		} else if (*line == '\0') {
			r->body = next;
			r->body_len = (size_t)(end - next);
			break;
		} else if ((*line == ' ' || *line == '\t') && last_value) {
			/* folded continuation: append in place after a space */
			size_t lv = strlen(last_value);
			char *joined = last_value + lv;
			*joined = ' ';
			memmove(joined + 1, line, strlen(line) + 1);
		} else {
			char *colon = strchr(line, ':');
			*colon = '\0';
			r->headers[r->nheaders].name = line;
			char *v = colon + 1;
			while (*v == ' ')
				v++;
			r->headers[r->nheaders].value = v;
			last_value = v;
			r->nheaders++;
		}
		n++;
		line = next;
	}
}

static sigv4_request as_request(const raw_req *r)
{
	sigv4_request q = {r->method, r->target, r->headers, r->nheaders,
			   (const unsigned char *)r->body, r->body ? r->body_len : 0};
	return q;
}

static const char *secret_example(void *user, const char *ak, int index)
{
	(void)user;
	static const char *const secrets[] = {SECRET, "secret"};
	if (strcmp(ak, "AKIDEXAMPLE") != 0 || index < 0 || index > 1)
		return NULL;
	return secrets[index];
}

/* Verifies one signed request file and, when given, compares the canonical
 * request and string to sign with the suite's. Returns 0 when all match. */
static int check_case(const char *sreq_path, const char *creq_path, const char *sts_path,
		      const char *authz_path, bool normalize, const char *region, const char *service, char *why, size_t whysz)
{
	size_t len;
	char *text = slurp(sreq_path, &len);
	if (!text) {
		snprintf(why, whysz, "cannot read %s", sreq_path);
		return -1;
	}
	raw_req r;
	parse_raw(&r, text, len);
	/* The classic suite's get-vanilla-with-session-token.sreq carries a
	 * garbled signature; its .authz is the reference, so use that. */
	char *authz = authz_path ? slurp(authz_path, NULL) : NULL;
	for (size_t i = 0; authz && i < r.nheaders; i++)
		if (strcmp(r.headers[i].name, "Authorization") == 0)
			r.headers[i].value = authz;
	sigv4_request q = as_request(&r);
	sigv4_verdict v;
	int rc = sigv4_verify(&q, secret_example, NULL, region, service, 0, -1, normalize, &v);
	if (rc != 0)
		snprintf(why, whysz, "%s: %s %s", sreq_path, v.code, v.message);
	if (rc == 0 && creq_path) {
		char *want = slurp(creq_path, NULL);
		char *got = sigv4_canonical_request(&q, v.auth.signed_headers, normalize);
		if (strcmp(want, got) != 0) {
			snprintf(why, whysz, "%s: canonical request differs:\n%s\n---\n%s", sreq_path, got, want);
			rc = -1;
		}
		if (rc == 0 && sts_path) {
			char *sts_want = slurp(sts_path, NULL);
			char *sts = sigv4_string_to_sign(sigv4_header_get(&q, "X-Amz-Date"), &v.auth, got);
			if (strcmp(sts_want, sts) != 0) {
				snprintf(why, whysz, "%s: string to sign differs", sreq_path);
				rc = -1;
			}
			free(sts);
			free(sts_want);
		}
		free(want);
		free(got);
	}
	free(authz);
	free(text);
	return rc;
}

static void test_classic_suite_cases_verify_and_match_canonical_requests(void **state)
{
	(void)state;
	const char *dirs[] = {PV_TEST_DATA_DIR "/sigv4/aws4_testsuite",
			      PV_TEST_DATA_DIR "/sigv4/aws4_testsuite/normalize-path",
			      PV_TEST_DATA_DIR "/sigv4/aws4_testsuite/post-sts-token"};
	int cases = 0;
	for (int d = 0; d < 3; d++) {
		DIR *dir = opendir(dirs[d]);
		assert_non_null(dir);
		struct dirent *e;
		while ((e = readdir(dir)) != NULL) {
			char base[1024], sreq[1200], creq[1200], sts[1200], authz[1200], why[2048];
			snprintf(base, sizeof base, "%s/%s/%s", dirs[d], e->d_name, e->d_name);
			snprintf(sreq, sizeof sreq, "%s.sreq", base);
			snprintf(creq, sizeof creq, "%s.creq", base);
			snprintf(sts, sizeof sts, "%s.sts", base);
			snprintf(authz, sizeof authz, "%s.authz", base);
			FILE *f = fopen(sreq, "r");
			if (!f)
				continue;
			fclose(f);
			cases++;
			if (check_case(sreq, creq, sts, authz, true, "us-east-1", "service", why, sizeof why) != 0)
				fail_msg("%s", why);
		}
		closedir(dir);
	}
	assert_int_equal(cases, 24 + 8 + 2); /* every case of the suite */
}

static bool context_normalize(const char *dir)
{
	char path[1200];
	snprintf(path, sizeof path, "%s/context.json", dir);
	char *ctx = slurp(path, NULL);
	bool norm = ctx && strstr(ctx, "\"normalize\": true") != NULL;
	free(ctx);
	return norm;
}

static void test_crt_suite_cases_verify_and_match_canonical_requests(void **state)
{
	(void)state;
	const char *root = PV_TEST_DATA_DIR "/sigv4/aws-signing-test-suite/v4";
	DIR *dir = opendir(root);
	assert_non_null(dir);
	struct dirent *e;
	int cases = 0;
	while ((e = readdir(dir)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		char d[1024], sreq[1200], creq[1200], sts[1200], why[2048];
		snprintf(d, sizeof d, "%s/%s", root, e->d_name);
		snprintf(sreq, sizeof sreq, "%s/header-signed-request.txt", d);
		snprintf(creq, sizeof creq, "%s/header-canonical-request.txt", d);
		snprintf(sts, sizeof sts, "%s/header-string-to-sign.txt", d);
		FILE *f = fopen(sreq, "r");
		if (!f)
			continue;
		fclose(f);
		cases++;
		if (check_case(sreq, creq, sts, NULL, context_normalize(d), "us-east-1", "service", why, sizeof why) != 0)
			fail_msg("%s", why);
	}
	closedir(dir);
	assert_int_equal(cases, 38);
}

static void test_captured_client_requests_verify(void **state)
{
	(void)state;
	const char *files[] = {
		"describe-regions.http", "run-instances.http", "describe-instances.http",
		"terminate-instances.http", "create-fleet.http",
		"awscli-2.9.19-extra/run-instances-auto-clienttoken-tags-userdata.http",
		"awscli-2.9.19-extra/describe-instances-filters-maxresults.http",
		"awscli-2.9.19-extra/describe-instances-session-token.http",
		"awscli-2.9.19-extra/terminate-instances-dry-run.http",
		"awscli-1.45.11/describe-regions.http", "awscli-1.45.11/run-instances.http",
		"aws-sdk-client-ec2-3.1169.0/describe-regions.http",
		"aws-sdk-client-ec2-3.1169.0/run-instances.http",
		"aws-sdk-client-ec2-3.1169.0/describe-instances.http",
		"aws-sdk-client-ec2-3.1169.0/terminate-instances.http",
		"aws-sdk-client-ec2-3.1169.0/create-fleet.http",
		"libcurl-7.88.1/post-describe-regions.http",
		"libcurl-7.88.1/post-describe-regions-session-token.http",
		"libcurl-7.88.1/get-describe-regions-sorted-query.http",
	};
	for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
		char path[1024], why[2048];
		snprintf(path, sizeof path, "%s/ec2-requests/%s", PV_TEST_DATA_DIR, files[i]);
		if (check_case(path, NULL, NULL, NULL, true, "us-east-1", "ec2", why, sizeof why) != 0)
			fail_msg("%s", why);
	}
}

static void test_unsorted_query_signature_from_curl_is_rejected(void **state)
{
	(void)state;
	char why[2048];
	assert_int_not_equal(check_case(PV_TEST_DATA_DIR "/ec2-requests/libcurl-7.88.1/"
					"get-describe-regions-unsorted-query-NONCANONICAL.http",
					NULL, NULL, NULL, true, "us-east-1", "ec2", why, sizeof why), 0);
	assert_non_null(strstr(why, "SignatureDoesNotMatch"));
}

/* Loads one captured request for the negative cases below. */
static void load(raw_req *r, const char *name)
{
	char path[1024];
	size_t len;
	snprintf(path, sizeof path, "%s/ec2-requests/%s", PV_TEST_DATA_DIR, name);
	char *text = slurp(path, &len);
	assert_non_null(text);
	parse_raw(r, text, len);
}

static const char *wrong_secret(void *user, const char *ak, int index)
{
	(void)user;
	(void)ak;
	return index == 0 ? "not-the-secret" : NULL;
}

static void test_wrong_secret_is_signature_mismatch(void **state)
{
	(void)state;
	raw_req r;
	load(&r, "run-instances.http");
	sigv4_request q = as_request(&r);
	sigv4_verdict v;
	assert_int_equal(sigv4_verify(&q, wrong_secret, NULL, "us-east-1", "ec2", 0, -1, true, &v), -1);
	assert_string_equal(v.code, "SignatureDoesNotMatch");
	assert_int_equal(v.http_status, 403);
	free(r.text);
}

static void test_tampered_body_is_signature_mismatch(void **state)
{
	(void)state;
	raw_req r;
	load(&r, "run-instances.http");
	char *p = strstr(r.body, "MaxCount=2");
	assert_non_null(p);
	p[9] = '9';
	sigv4_request q = as_request(&r);
	sigv4_verdict v;
	assert_int_equal(sigv4_verify(&q, secret_example, NULL, "us-east-1", "ec2", 0, -1, true, &v), -1);
	assert_string_equal(v.code, "SignatureDoesNotMatch");
	free(r.text);
}

static void test_stale_date_is_request_expired(void **state)
{
	(void)state;
	raw_req r;
	load(&r, "describe-regions.http");
	sigv4_request q = as_request(&r);
	sigv4_verdict v;
	/* Signed 2026-11-27T06:48Z; "now" one hour later. */
	struct tm tm = {.tm_year = 126, .tm_mon = 10, .tm_mday = 27, .tm_hour = 7, .tm_min = 48};
	assert_int_equal(sigv4_verify(&q, secret_example, NULL, "us-east-1", "ec2", timegm(&tm), 900, true, &v), -1);
	assert_string_equal(v.code, "RequestExpired");
	tm.tm_hour = 6;
	tm.tm_min = 50;
	assert_int_equal(sigv4_verify(&q, secret_example, NULL, "us-east-1", "ec2", timegm(&tm), 900, true, &v), 0);
	free(r.text);
}

static void test_unknown_key_wrong_region_and_missing_header_are_auth_failures(void **state)
{
	(void)state;
	raw_req r;
	load(&r, "describe-regions.http");
	sigv4_request q = as_request(&r);
	sigv4_verdict v;
	assert_int_equal(sigv4_verify(&q, secret_example, NULL, "eu-west-1", "ec2", 0, -1, true, &v), -1);
	assert_string_equal(v.code, "AuthFailure");
	for (size_t i = 0; i < r.nheaders; i++)
		if (strcmp(r.headers[i].name, "Authorization") == 0)
			r.headers[i].name = "X-Not-Authorization";
	assert_int_equal(sigv4_verify(&q, secret_example, NULL, "us-east-1", "ec2", 0, -1, true, &v), -1);
	assert_string_equal(v.code, "MissingAuthenticationToken");
	free(r.text);
}

static void test_authorization_header_parses(void **state)
{
	(void)state;
	sigv4_auth a;
	assert_int_equal(sigv4_parse_authorization(
				 "AWS4-HMAC-SHA256 Credential=AKID/20150830/us-east-1/ec2/aws4_request, "
				 "SignedHeaders=host;x-amz-date, Signature=abc",
				 &a),
			 0);
	assert_string_equal(a.access_key, "AKID");
	assert_string_equal(a.date, "20150830");
	assert_string_equal(a.region, "us-east-1");
	assert_string_equal(a.service, "ec2");
	assert_string_equal(a.signed_headers, "host;x-amz-date");
	assert_int_equal(sigv4_parse_authorization("AWS4-HMAC-SHA256 Credential=AKID/2015/us/ec2", &a), -1);
	assert_int_equal(sigv4_parse_authorization("Basic abc", &a), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_classic_suite_cases_verify_and_match_canonical_requests),
		cmocka_unit_test(test_crt_suite_cases_verify_and_match_canonical_requests),
		cmocka_unit_test(test_captured_client_requests_verify),
		cmocka_unit_test(test_unsorted_query_signature_from_curl_is_rejected),
		cmocka_unit_test(test_wrong_secret_is_signature_mismatch),
		cmocka_unit_test(test_tampered_body_is_signature_mismatch),
		cmocka_unit_test(test_stale_date_is_request_expired),
		cmocka_unit_test(test_unknown_key_wrong_region_and_missing_header_are_auth_failures),
		cmocka_unit_test(test_authorization_header_parses),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
