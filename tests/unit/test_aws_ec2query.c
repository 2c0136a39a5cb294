/*
 * test_aws_ec2query.c - the Smithy ec2Query protocol compliance tests
 * (the .smithy files of tests/data/ec2query/, from smithy-lang/smithy) run against the
 * AWS provider's serialiser (query.c, form.c) and XML reader (xml.c).
 *
 * tests/support/smithy_ec2query.py turns the Smithy files into JSON at
 * build time (PV_EC2QUERY_CASES); this test reads it when it runs:
 *  - httpRequestTests: the operation's input shape and the case's params
 *    through aws_query_add must give exactly the case's body;
 *  - httpResponseTests of error shapes: aws_xml_error must give the code
 *    (the case's vendorParams.code), the message (params.Message when the
 *    case states it) and the RequestID;
 *  - the other httpResponseTests: xml.c has no generic output parser (it
 *    reads EC2's own shapes), so only the envelope is checked: not taken
 *    for an error, and the requestId found.
 * A case is either run or listed in `skipped` below with the reason; a
 * case in neither, or a listed id the files do not have, fails the test.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "providers/aws/aws_internal.h"

typedef struct skip {
	const char *id, *why;
} skip;

static const skip skipped[] = {
	{"Ec2QueryHostWithPath",
	 "checks the request URI under an endpoint with a path; provisio POSTs to endpoint_url as configured "
	 "(the body, Action and Version only, is what Ec2QueryNoInputAndOutput checks)"},
	{"Ec2QueryEndpointTrait", "@endpoint hostPrefix: provisio does not prefix hosts (no EC2 operation has the trait)"},
	{"Ec2QueryEndpointTraitWithHostLabel", "@endpoint hostPrefix with @hostLabel: as Ec2QueryEndpointTrait"},
	{"Ec2ProtocolIdempotencyTokenAutoFill",
	 "a client fills a random UUID when no token is given; provisio always derives its ClientToken "
	 "(token.c), so it never auto-fills"},
	{"SDKAppliedContentEncoding_ec2Query", "@requestCompression (gzip): provisio sends bodies uncompressed"},
	{"SDKAppendsGzipAndIgnoresHttpProvidedEncoding_ec2Query", "@requestCompression (gzip): as above"},
};

static json_t *cases_doc;

static int load(void **state)
{
	(void)state;
#ifdef PV_EC2QUERY_CASES
	json_error_t err;
	cases_doc = json_load_file(PV_EC2QUERY_CASES, 0, &err);
	if (!cases_doc)
		fprintf(stderr, "%s: %s (line %d)\n", PV_EC2QUERY_CASES, err.text, err.line);
#endif
	return cases_doc ? 0 : -1;
}

static int unload(void **state)
{
	(void)state;
	json_decref(cases_doc);
	return 0;
}

static const char *str(const json_t *o, const char *k) { return json_string_value(json_object_get(o, k)); }

static const char *skip_reason(const char *id)
{
	for (size_t i = 0; i < sizeof skipped / sizeof skipped[0]; i++)
		if (strcmp(skipped[i].id, id) == 0)
			return skipped[i].why;
	return NULL;
}

/* The text between <tag> and </tag> found by plain string search: an
 * oracle independent of libxml2. "" when absent. */
static void between(const char *body, const char *tag, char *out, size_t size)
{
	char open[64], close[64];
	snprintf(open, sizeof open, "<%s>", tag);
	snprintf(close, sizeof close, "</%s>", tag);
	const char *a = strstr(body, open), *b = a ? strstr(a, close) : NULL;
	out[0] = '\0';
	if (a && b)
		snprintf(out, size, "%.*s", (int)(b - a - (long)strlen(open)), a + strlen(open));
}

typedef struct tally {
	int run, passed;
} tally;

/* One request case: the body our serialiser makes. */
static bool request_case(const json_t *c, char *why, size_t size)
{
	json_t *shapes = json_object_get(cases_doc, "shapes");
	const char *op = str(c, "shape");
	const char *input = str(json_object_get(json_object_get(cases_doc, "operations"), op), "input");
	aws_form f;
	aws_form_init_version(&f, op, str(cases_doc, "service_version"));
	json_t *params = json_object_get(c, "params");
	bool ok = true;
	if (input && params && aws_query_add(&f, shapes, input, "", params) < 0) {
		snprintf(why, size, "params do not fit shape %s", input);
		ok = false;
	}
	if (ok && (f.oom || strcmp(f.buf, str(c, "body")) != 0)) {
		snprintf(why, size, "body\n      got:  %s\n      want: %s", f.buf ? f.buf : "(oom)", str(c, "body"));
		ok = false;
	}
	aws_form_free(&f);
	return ok;
}

/* One error response case: code, message, request id. */
static bool error_case(const json_t *c, char *why, size_t size)
{
	const char *body = str(c, "body");
	char code[96], rid[96], want_rid[96];
	char *message = NULL;
	if (aws_xml_error(body, strlen(body), code, sizeof code, &message, rid, sizeof rid) < 0) {
		snprintf(why, size, "not read as an error");
		return false;
	}
	const char *want_code = str(json_object_get(c, "vendorParams"), "code");
	const char *want_msg = str(json_object_get(c, "params"), "Message");
	between(body, "RequestID", want_rid, sizeof want_rid);
	bool ok = want_code && strcmp(code, want_code) == 0 && strcmp(rid, want_rid) == 0 && want_rid[0] &&
		  (!want_msg || (message && strcmp(message, want_msg) == 0));
	if (!ok)
		snprintf(why, size, "code '%s' (want '%s'), message '%s' (want '%s'), request id '%s' (want '%s')",
			 code, want_code ? want_code : "?", message ? message : "", want_msg ? want_msg : "-", rid,
			 want_rid);
	free(message);
	return ok;
}

/* One success response case: the envelope only. */
static bool envelope_case(const json_t *c, char *why, size_t size)
{
	const char *body = str(c, "body");
	char code[96], rid[96], want_rid[96];
	if (aws_xml_error(body, strlen(body), code, sizeof code, NULL, NULL, 0) == 0) {
		snprintf(why, size, "a success body read as error '%s'", code);
		return false;
	}
	aws_xml_request_id(body, strlen(body), rid, sizeof rid);
	between(body, "requestId", want_rid, sizeof want_rid);
	if (strcmp(rid, want_rid) != 0) {
		snprintf(why, size, "request id '%s', want '%s'", rid, want_rid);
		return false;
	}
	return true;
}

typedef enum kind { K_REQUEST, K_ERROR, K_ENVELOPE } kind;

static bool kind_of(const json_t *c, kind k)
{
	bool request = strcmp(str(c, "kind"), "request") == 0;
	bool error = json_is_true(json_object_get(c, "error"));
	return k == K_REQUEST ? request : k == K_ERROR ? (!request && error) : (!request && !error);
}

/* Runs every case of one kind that is not skipped; fails listing each
 * case that did not pass. */
static tally run_kind(kind k, const char *label)
{
	tally t = {0, 0};
	size_t i;
	json_t *c;
	int failed = 0;
	json_array_foreach(json_object_get(cases_doc, "cases"), i, c) {
		if (!kind_of(c, k) || skip_reason(str(c, "id")))
			continue;
		char why[1024] = "";
		bool ok = k == K_REQUEST ? request_case(c, why, sizeof why)
			: k == K_ERROR	 ? error_case(c, why, sizeof why)
					 : envelope_case(c, why, sizeof why);
		t.run++;
		t.passed += ok;
		if (!ok) {
			failed++;
			print_error("  FAIL %s (%s): %s\n", str(c, "id"), str(c, "file"), why);
		}
	}
	print_message("ec2Query %s: %d run, %d passed\n", label, t.run, t.passed);
	if (failed)
		fail_msg("%d %s case(s) failed", failed, label);
	return t;
}

static void test_smithy_request_bodies_match_exactly(void **state)
{
	(void)state;
	tally t = run_kind(K_REQUEST, "httpRequestTests");
	assert_true(t.run >= 20);
}

static void test_smithy_error_responses_give_code_message_and_request_id(void **state)
{
	(void)state;
	tally t = run_kind(K_ERROR, "error httpResponseTests");
	assert_int_equal(t.run, 2);
}

static void test_smithy_success_responses_are_not_errors_and_give_request_id(void **state)
{
	(void)state;
	tally t = run_kind(K_ENVELOPE, "success httpResponseTests (envelope only)");
	assert_true(t.run >= 20);
}

static void test_smithy_every_case_is_run_or_skipped_with_a_reason(void **state)
{
	(void)state;
	json_t *cases = json_object_get(cases_doc, "cases");
	size_t i;
	json_t *c;
	int skips = 0;
	json_array_foreach(cases, i, c) if (skip_reason(str(c, "id"))) {
		skips++;
		print_message("ec2Query skipped %s: %s\n", str(c, "id"), skip_reason(str(c, "id")));
	}
	/* Every listed id exists: a renamed case cannot hide behind the list. */
	for (size_t k = 0; k < sizeof skipped / sizeof skipped[0]; k++) {
		bool found = false;
		json_array_foreach(cases, i, c) found = found || strcmp(str(c, "id"), skipped[k].id) == 0;
		if (!found)
			fail_msg("skip list names %s, which no .smithy file has", skipped[k].id);
	}
	int kinds = 0;
	json_array_foreach(cases, i, c) kinds += kind_of(c, K_REQUEST) + kind_of(c, K_ERROR) + kind_of(c, K_ENVELOPE);
	assert_int_equal(kinds, (int)json_array_size(cases)); /* each case has exactly one kind */
	print_message("ec2Query: %zu cases in %s; %d skipped\n", json_array_size(cases), "tests/data/ec2query",
		      skips);
	assert_int_equal(skips, (int)(sizeof skipped / sizeof skipped[0]));
}

/* The rules one at a time, so a regression names the rule. */
static void test_query_rules_names_numbers_timestamps(void **state)
{
	(void)state;
	char buf[64];
	aws_query_member_name(buf, sizeof buf, "member", "q", "x");
	assert_string_equal(buf, "q"); /* ec2QueryName as is, even lower case */
	aws_query_member_name(buf, sizeof buf, "member", NULL, "xmlName");
	assert_string_equal(buf, "XmlName");
	aws_query_member_name(buf, sizeof buf, "member", NULL, NULL);
	assert_string_equal(buf, "Member");
	aws_query_number(buf, sizeof buf, 10.8, false);
	assert_string_equal(buf, "10.8");
	aws_query_number(buf, sizeof buf, 10.8f, true);
	assert_string_equal(buf, "10.8");
	aws_query_number(buf, sizeof buf, 1422172800, false);
	assert_string_equal(buf, "1422172800");
	aws_query_timestamp(buf, sizeof buf, 1422172800, NULL);
	assert_string_equal(buf, "2015-01-25T08:00:00Z");
	aws_query_timestamp(buf, sizeof buf, 1422172800.5, "date-time");
	assert_string_equal(buf, "2015-01-25T08:00:00.500Z");
	aws_query_timestamp(buf, sizeof buf, 1422172800, "http-date");
	assert_string_equal(buf, "Sun, 25 Jan 2015 08:00:00 GMT");
}

int main(void)
{
#ifndef PV_EC2QUERY_CASES
	printf("skip: built without python3, so no tests/data/ec2query JSON (PV_EC2QUERY_CASES)\n");
	return 77;
#endif
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_query_rules_names_numbers_timestamps),
		cmocka_unit_test(test_smithy_request_bodies_match_exactly),
		cmocka_unit_test(test_smithy_error_responses_give_code_message_and_request_id),
		cmocka_unit_test(test_smithy_success_responses_are_not_errors_and_give_request_id),
		cmocka_unit_test(test_smithy_every_case_is_run_or_skipped_with_a_reason),
	};
	return cmocka_run_group_tests(tests, load, unload);
}
