/*
 * test_aws_parts.c - the pieces of the AWS provider without a network:
 * EC2 XML answers (each response and the error envelope, from
 * tests/data/ec2-responses/), error-class mapping, token buckets on a
 * manual clock, ClientToken derivation, the Query form encoding, the
 * credentials chain (config, env, shared file, region), and configuration
 * validation.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
#include "provisio/provisio.h"
#include "provisio/aws.h"
#include "providers/aws/aws_internal.h"
#include "providers/aws/groups.h"

#ifndef PV_TEST_DATA_DIR
#define PV_TEST_DATA_DIR "tests/data"
#endif

static char *slurp(const char *name, size_t *len)
{
	char path[512];
	snprintf(path, sizeof path, "%s/ec2-responses/%s", PV_TEST_DATA_DIR, name);
	FILE *f = fopen(path, "rb");
	assert_non_null(f);
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fseek(f, 0, SEEK_SET);
	char *buf = malloc((size_t)n + 1);
	*len = fread(buf, 1, (size_t)n, f);
	buf[*len] = '\0';
	fclose(f);
	return buf;
}

static const char *str(json_t *o, const char *k) { return json_string_value(json_object_get(o, k)); }

/* ---- XML ---------------------------------------------------------------------- */

static void test_xml_run_instances(void **state)
{
	(void)state;
	size_t n;
	char *body = slurp("RunInstances.xml", &n);
	json_t *list = aws_xml_instances(body, n, NULL);
	assert_int_equal(json_array_size(list), 2);
	json_t *i0 = json_array_get(list, 0);
	assert_string_equal(str(i0, "instance_id"), "i-0123456789abcdef0");
	assert_string_equal(str(i0, "state"), "pending");
	assert_string_equal(str(i0, "instance_type"), "t3.micro");
	assert_string_equal(str(i0, "az"), "us-east-1a");
	assert_string_equal(str(i0, "launch_time"), "2024-01-01T00:00:00.000Z");
	assert_string_equal(str(i0, "reservation_id"), "r-0123456789abcdef0");
	assert_string_equal(str(i0, "client_token"), "abc");
	assert_string_equal(str(i0, "lifecycle"), "on-demand");
	assert_null(json_object_get(i0, "private_dns")); /* empty element = absent */
	char rid[80];
	aws_xml_request_id(body, n, rid, sizeof rid);
	assert_string_equal(rid, "11111111-2222-3333-4444-555555555555");
	json_decref(list);
	free(body);
}

static void test_xml_describe_instances_with_tags_and_next_token(void **state)
{
	(void)state;
	size_t n;
	char *body = slurp("DescribeInstances.xml", &n);
	char *next = (char *)"sentinel";
	json_t *list = aws_xml_instances(body, n, &next);
	assert_null(next);
	assert_int_equal(json_array_size(list), 2);
	json_t *i0 = json_array_get(list, 0), *i1 = json_array_get(list, 1);
	assert_string_equal(str(i0, "state"), "running");
	assert_string_equal(str(json_object_get(i0, "tags"), "Name"), "web-1");
	assert_string_equal(str(i1, "state"), "stopped");
	assert_int_equal(json_object_size(json_object_get(i1, "tags")), 0);
	json_decref(list);
	free(body);

	const char *paged = "<DescribeInstancesResponse><reservationSet/><nextToken>tok-2</nextToken>"
			    "</DescribeInstancesResponse>";
	list = aws_xml_instances(paged, strlen(paged), &next);
	assert_int_equal(json_array_size(list), 0);
	assert_string_equal(next, "tok-2");
	free(next);
	json_decref(list);
}

static void test_xml_spot_lifecycle_and_addresses(void **state)
{
	(void)state;
	const char *x = "<RunInstancesResponse xmlns=\"http://ec2.amazonaws.com/doc/2016-11-15/\">"
			"<reservationId>r-1</reservationId><instancesSet><item><instanceId>i-9</instanceId>"
			"<privateIpAddress>10.0.0.9</privateIpAddress><ipAddress>54.1.2.3</ipAddress>"
			"<privateDnsName>ip-10-0-0-9.ec2.internal</privateDnsName>"
			"<instanceLifecycle>spot</instanceLifecycle><subnetId>subnet-1</subnetId>"
			"</item></instancesSet></RunInstancesResponse>";
	json_t *list = aws_xml_instances(x, strlen(x), NULL);
	json_t *i0 = json_array_get(list, 0);
	assert_string_equal(str(i0, "lifecycle"), "spot");
	assert_string_equal(str(i0, "private_ip"), "10.0.0.9");
	assert_string_equal(str(i0, "public_ip"), "54.1.2.3");
	assert_string_equal(str(i0, "private_dns"), "ip-10-0-0-9.ec2.internal");
	assert_string_equal(str(i0, "subnet_id"), "subnet-1");
	json_decref(list);
}

static void test_xml_terminate_instances(void **state)
{
	(void)state;
	size_t n;
	char *body = slurp("TerminateInstances.xml", &n);
	json_t *list = aws_xml_terminated(body, n);
	assert_true(json_array_size(list) >= 1);
	json_t *i0 = json_array_get(list, 0);
	assert_non_null(str(i0, "instance_id"));
	assert_string_equal(str(i0, "state"), "shutting-down");
	assert_string_equal(str(i0, "previous_state"), "running");
	json_decref(list);
	free(body);
}

static void test_xml_describe_regions(void **state)
{
	(void)state;
	size_t n;
	char *body = slurp("DescribeRegions.xml", &n);
	json_t *list = aws_xml_regions(body, n);
	assert_true(json_array_size(list) >= 1);
	assert_string_equal(json_string_value(json_array_get(list, 0)), "us-east-1");
	json_decref(list);
	free(body);
}

static void test_xml_create_fleet(void **state)
{
	(void)state;
	size_t n;
	char *body = slurp("CreateFleet.xml", &n);
	json_t *f = aws_xml_fleet(body, n);
	assert_string_equal(str(f, "fleet_id"), "fleet-01234567-89ab-cdef-0123-456789abcdef");
	json_t *insts = json_object_get(f, "instances");
	assert_int_equal(json_array_size(insts), 2);
	assert_string_equal(str(json_array_get(insts, 1), "instance_id"), "i-0123456789abcdef1");
	assert_string_equal(str(json_array_get(insts, 0), "instance_type"), "t3.micro");
	assert_string_equal(str(json_array_get(insts, 0), "lifecycle"), "on-demand");
	assert_int_equal(json_array_size(json_object_get(f, "errors")), 0);
	json_decref(f);
	free(body);

	const char *x = "<CreateFleetResponse><fleetId>fleet-2</fleetId><errorSet><item>"
			"<launchTemplateAndOverrides><overrides><instanceType>c5.large</instanceType>"
			"<availabilityZone>us-east-1b</availabilityZone></overrides></launchTemplateAndOverrides>"
			"<lifecycle>spot</lifecycle><errorCode>InsufficientInstanceCapacity</errorCode>"
			"<errorMessage>no room</errorMessage></item></errorSet><fleetInstanceSet/>"
			"</CreateFleetResponse>";
	f = aws_xml_fleet(x, strlen(x));
	json_t *e0 = json_array_get(json_object_get(f, "errors"), 0);
	assert_string_equal(str(e0, "code"), "InsufficientInstanceCapacity");
	assert_string_equal(str(e0, "instance_type"), "c5.large");
	assert_string_equal(str(e0, "az"), "us-east-1b");
	assert_string_equal(str(e0, "lifecycle"), "spot");
	json_decref(f);
}

static void test_xml_error_envelope(void **state)
{
	(void)state;
	size_t n;
	char *body = slurp("Error-InvalidInstanceID.NotFound.xml", &n);
	char code[96], rid[80], *msg = NULL;
	assert_int_equal(aws_xml_error(body, n, code, sizeof code, &msg, rid, sizeof rid), 0);
	assert_string_equal(code, "InvalidInstanceID.NotFound");
	assert_string_equal(msg, "The instance ID 'i-1' does not exist");
	assert_string_equal(rid, "11111111-2222-3333-4444-555555555555");
	free(msg);
	free(body);
	/* Not an error envelope, and not XML at all. */
	assert_int_equal(aws_xml_error("<Foo/>", 6, code, sizeof code, &msg, rid, sizeof rid), -1);
	assert_int_equal(aws_xml_error("garbage", 7, code, sizeof code, &msg, rid, sizeof rid), -1);
	assert_null(aws_xml_instances("", 0, NULL));
}

static void test_xml_launch_template_ids(void **state)
{
	(void)state;
	/* Shapes of the EC2 model: CreateLaunchTemplateResult.LaunchTemplate
	 * (launchTemplate), DescribeLaunchTemplatesResult.LaunchTemplates
	 * (launchTemplates, items). */
	const char *created = "<CreateLaunchTemplateResponse xmlns=\"http://ec2.amazonaws.com/doc/2016-11-15/\">"
			      "<requestId>r1</requestId><launchTemplate><launchTemplateId>lt-0aaa</launchTemplateId>"
			      "<launchTemplateName>n</launchTemplateName></launchTemplate></CreateLaunchTemplateResponse>";
	const char *described = "<DescribeLaunchTemplatesResponse><requestId>r2</requestId><launchTemplates>"
				"<item><launchTemplateId>lt-0bbb</launchTemplateId></item>"
				"<item><launchTemplateId>lt-0ccc</launchTemplateId></item>"
				"</launchTemplates></DescribeLaunchTemplatesResponse>";
	char id[64];
	aws_xml_launch_template_id(created, strlen(created), id, sizeof id);
	assert_string_equal(id, "lt-0aaa");
	aws_xml_launch_template_id(described, strlen(described), id, sizeof id);
	assert_string_equal(id, "lt-0bbb");
	const char *none = "<DescribeLaunchTemplatesResponse><launchTemplates/></DescribeLaunchTemplatesResponse>";
	aws_xml_launch_template_id(none, strlen(none), id, sizeof id);
	assert_string_equal(id, "");
}

/* A group's launch template and weights, from the three Describe answers
 * in the shapes of the EC2 / Auto Scaling models (botocore ec2 2016-11-15
 * SpotFleetRequestConfigData / FleetData.LaunchTemplateConfigs, Double
 * weightedCapacity; autoscaling 2011-01-01 AutoScalingGroup.LaunchTemplate,
 * MixedInstancesPolicy.LaunchTemplate.Overrides, string WeightedCapacity). */
static void test_xml_group_launch_template_and_weights(void **state)
{
	(void)state;
	const char *spot = "<DescribeSpotFleetRequestsResponse><spotFleetRequestConfigSet><item>"
			   "<spotFleetRequestConfig><clientToken>tok</clientToken><launchTemplateConfigs><item>"
			   "<launchTemplateSpecification><launchTemplateId>lt-01</launchTemplateId>"
			   "<version>$Default</version></launchTemplateSpecification><overrides>"
			   "<item><instanceType>m5.large</instanceType><weightedCapacity>2.0</weightedCapacity></item>"
			   "<item><instanceType>m5.xlarge</instanceType><weightedCapacity>0.5</weightedCapacity></item>"
			   "<item><instanceType>t3.micro</instanceType></item>"
			   "</overrides></item></launchTemplateConfigs></spotFleetRequestConfig>"
			   "</item></spotFleetRequestConfigSet></DescribeSpotFleetRequestsResponse>";
	json_t *g = aws_xml_group_launch(spot, strlen(spot), "spotFleetRequestConfigSet");
	json_t *lt = json_array_get(json_object_get(g, "launch_templates"), 0);
	assert_string_equal(str(lt, "id"), "lt-01");
	assert_null(json_object_get(lt, "name"));
	json_t *w = json_object_get(g, "weights");
	assert_int_equal(json_integer_value(json_object_get(w, "m5.large")), 2);
	assert_int_equal(json_object_size(w), 1); /* 0.5 said, t3.micro weightless */
	json_t *problems = json_object_get(g, "problems");
	assert_int_equal(json_array_size(problems), 1);
	assert_non_null(strstr(json_string_value(json_array_get(problems, 0)), "WeightedCapacity '0.5' of m5.xlarge"));
	json_decref(g);

	const char *fleet = "<DescribeFleetsResponse><fleetSet><item><fleetId>fleet-1</fleetId><launchTemplateConfigs>"
			    "<item><launchTemplateSpecification><launchTemplateName>provisio-t-1-2</launchTemplateName>"
			    "</launchTemplateSpecification><overrides><item><instanceType>c5.large</instanceType>"
			    "<weightedCapacity>4.0</weightedCapacity></item></overrides></item></launchTemplateConfigs>"
			    "</item></fleetSet></DescribeFleetsResponse>";
	g = aws_xml_group_launch(fleet, strlen(fleet), "fleetSet");
	assert_string_equal(str(json_array_get(json_object_get(g, "launch_templates"), 0), "name"), "provisio-t-1-2");
	assert_int_equal(json_integer_value(json_object_get(json_object_get(g, "weights"), "c5.large")), 4);
	json_decref(g);

	const char *asg = "<DescribeAutoScalingGroupsResponse><DescribeAutoScalingGroupsResult><AutoScalingGroups>"
			  "<member><AutoScalingGroupName>provisio-x</AutoScalingGroupName><MixedInstancesPolicy>"
			  "<LaunchTemplate><LaunchTemplateSpecification><LaunchTemplateId>lt-02</LaunchTemplateId>"
			  "<LaunchTemplateName>n2</LaunchTemplateName></LaunchTemplateSpecification><Overrides>"
			  "<member><InstanceType>r5.large</InstanceType><WeightedCapacity>3</WeightedCapacity></member>"
			  "</Overrides></LaunchTemplate></MixedInstancesPolicy><Instances><member>"
			  "<InstanceId>i-1</InstanceId><LaunchTemplate><LaunchTemplateId>lt-99</LaunchTemplateId>"
			  "</LaunchTemplate><WeightedCapacity>3</WeightedCapacity></member></Instances></member>"
			  "</AutoScalingGroups></DescribeAutoScalingGroupsResult></DescribeAutoScalingGroupsResponse>";
	g = aws_xml_group_launch(asg, strlen(asg), "AutoScalingGroups");
	json_t *lts = json_object_get(g, "launch_templates");
	assert_int_equal(json_array_size(lts), 1); /* the group's, not an instance's */
	assert_string_equal(str(json_array_get(lts, 0), "id"), "lt-02");
	assert_string_equal(str(json_array_get(lts, 0), "name"), "n2");
	assert_int_equal(json_integer_value(json_object_get(json_object_get(g, "weights"), "r5.large")), 3);
	json_decref(g);
	const char *plain = "<DescribeAutoScalingGroupsResponse><DescribeAutoScalingGroupsResult><AutoScalingGroups>"
			    "<member><LaunchTemplate><LaunchTemplateId>lt-03</LaunchTemplateId></LaunchTemplate>"
			    "</member></AutoScalingGroups></DescribeAutoScalingGroupsResult>"
			    "</DescribeAutoScalingGroupsResponse>";
	g = aws_xml_group_launch(plain, strlen(plain), "AutoScalingGroups");
	assert_string_equal(str(json_array_get(json_object_get(g, "launch_templates"), 0), "id"), "lt-03");
	assert_int_equal(json_object_size(json_object_get(g, "weights")), 0);
	json_decref(g);
	assert_null(aws_xml_group_launch("", 0, "fleetSet"));
}

/* The mark of a group's launch template: deterministic, one per token. */
static void test_group_launch_template_mark(void **state)
{
	(void)state;
	char a[AWS_LT_MARK_SIZE], b[AWS_LT_MARK_SIZE], c[AWS_LT_MARK_SIZE];
	aws_group_lt_mark("req-1-r0-0123", a);
	aws_group_lt_mark("req-1-r0-0123", b);
	aws_group_lt_mark("req-1-r1-0123", c);
	assert_string_equal(a, b);
	assert_string_not_equal(a, c);
	assert_int_equal(strlen(a), AWS_LT_MARK_SIZE - 1);
	assert_int_equal(a[0], '-');
}

/* ---- errors ---------------------------------------------------------------------- */

static void test_error_classes_follow_ec2_codes(void **state)
{
	(void)state;
	assert_int_equal(aws_error_class("RequestLimitExceeded", 503), PV_CLASS_THROTTLED);
	assert_int_equal(aws_error_class("InsufficientInstanceCapacity", 500), PV_CLASS_CAPACITY);
	assert_int_equal(aws_error_class("InsufficientCapacity", 500), PV_CLASS_CAPACITY);
	assert_int_equal(aws_error_class("InstanceLimitExceeded", 400), PV_CLASS_CAPACITY);
	assert_int_equal(aws_error_class("VcpuLimitExceeded", 400), PV_CLASS_CAPACITY);
	assert_int_equal(aws_error_class("MaxSpotInstanceCountExceeded", 400), PV_CLASS_CAPACITY);
	assert_int_equal(aws_error_class("AuthFailure", 401), PV_CLASS_PERMANENT);
	assert_int_equal(aws_error_class("UnauthorizedOperation", 403), PV_CLASS_PERMANENT);
	assert_int_equal(aws_error_class("InvalidParameterValue", 400), PV_CLASS_PERMANENT);
	assert_int_equal(aws_error_class("InvalidParameterCombination", 400), PV_CLASS_PERMANENT);
	assert_int_equal(aws_error_class("IdempotentParameterMismatch", 400), PV_CLASS_PERMANENT);
	assert_int_equal(aws_error_class("InvalidAMIID.Malformed", 400), PV_CLASS_PERMANENT);
	assert_int_equal(aws_error_class("InternalError", 500), PV_CLASS_TRANSIENT);
	assert_int_equal(aws_error_class("Unavailable", 503), PV_CLASS_TRANSIENT);
	assert_int_equal(aws_error_class(NULL, 502), PV_CLASS_TRANSIENT);
	assert_int_equal(aws_error_class(NULL, 0), PV_CLASS_TRANSIENT); /* no answer: reset, timeout */
	assert_int_equal(aws_error_class("", 400), PV_CLASS_PERMANENT);
	assert_int_equal(aws_error_class(NULL, 429), PV_CLASS_THROTTLED);
}

static void test_error_codes_for_results(void **state)
{
	(void)state;
	assert_string_equal(aws_error_pv_code(PV_CLASS_THROTTLED, "RequestLimitExceeded"), "THROTTLED");
	assert_string_equal(aws_error_pv_code(PV_CLASS_CAPACITY, "VcpuLimitExceeded"), "CAPACITY");
	assert_string_equal(aws_error_pv_code(PV_CLASS_PERMANENT, "InvalidInstanceID.NotFound"), "NOT_FOUND");
	assert_string_equal(aws_error_pv_code(PV_CLASS_PERMANENT, "InvalidLaunchTemplateName.NotFoundException"),
			    "NOT_FOUND");
	assert_string_equal(aws_error_pv_code(PV_CLASS_PERMANENT, "InvalidLaunchTemplateId.VersionNotFound"),
			    "NOT_FOUND");
	assert_string_equal(aws_error_pv_code(PV_CLASS_PERMANENT, "InvalidParameterValue"), "INVALID_PARAMETERS");
	assert_string_equal(aws_error_pv_code(PV_CLASS_PERMANENT, "AuthFailure"), "AUTH_FAILURE");
	assert_string_equal(aws_error_pv_code(PV_CLASS_TRANSIENT, NULL), "EXECUTION_ERROR");
}

/* ---- token buckets --------------------------------------------------------------- */

static void test_bucket_gives_burst_then_refills_at_rate(void **state)
{
	(void)state;
	aws_bucket b;
	aws_bucket_init(&b, 5, 2, 0);
	for (int i = 0; i < 5; i++)
		assert_int_equal(aws_bucket_try_take(&b, 0), 0);
	/* Empty: the next token comes in 1/2 s. */
	assert_int_equal(aws_bucket_try_take(&b, 0), 500 * PV_NS_PER_MS);
	assert_int_equal(aws_bucket_try_take(&b, 250 * PV_NS_PER_MS), 250 * PV_NS_PER_MS);
	assert_int_equal(aws_bucket_try_take(&b, 500 * PV_NS_PER_MS), 0);
	/* A long idle refills only up to capacity. */
	for (int i = 0; i < 5; i++)
		assert_int_equal(aws_bucket_try_take(&b, 3600 * PV_NS_PER_S), 0);
	assert_true(aws_bucket_try_take(&b, 3600 * PV_NS_PER_S) > 0);
	aws_bucket_destroy(&b);
}

static void test_bucket_take_sleeps_on_the_clock_and_respects_deadline(void **state)
{
	(void)state;
	pv_manual_clock *mc = pv_manual_clock_new(0);
	const pv_clock *c = pv_manual_clock_get(mc);
	aws_bucket b;
	aws_bucket_init(&b, 1, 5, 0);
	uint64_t waited;
	assert_int_equal(aws_bucket_take(&b, c, 0, &waited), 0);
	assert_int_equal(waited, 0);
	assert_int_equal(aws_bucket_take(&b, c, 0, &waited), 0);
	assert_int_equal(waited, 200 * PV_NS_PER_MS);
	assert_int_equal(pv_manual_clock_slept(mc), 200 * PV_NS_PER_MS);
	/* The next token is 200 ms away; the deadline is 100 ms away. */
	uint64_t now = pv_clock_now(c);
	assert_int_equal(aws_bucket_take(&b, c, now + 100 * PV_NS_PER_MS, &waited), PV_ESTATE);
	assert_int_equal(pv_manual_clock_slept(mc), 200 * PV_NS_PER_MS); /* did not sleep */
	aws_bucket_drain(&b, now);
	assert_int_equal(aws_bucket_try_take(&b, now), 200 * PV_NS_PER_MS);
	aws_bucket_destroy(&b);
	pv_manual_clock_free(mc);
}

static void test_disabled_bucket_always_gives(void **state)
{
	(void)state;
	aws_bucket b;
	aws_bucket_init(&b, 0, 0, 0);
	for (int i = 0; i < 100; i++)
		assert_int_equal(aws_bucket_try_take(&b, 0), 0);
	aws_bucket_destroy(&b);
}

/* ---- ClientToken --------------------------------------------------------------- */

static void test_client_token_is_stable_bounded_and_distinct(void **state)
{
	(void)state;
	char a[AWS_CLIENT_TOKEN_MAX + 1], b[AWS_CLIENT_TOKEN_MAX + 1];
	aws_client_token(a, "req-123", "aws-east", "run:0:t3.micro:5");
	aws_client_token(b, "req-123", "aws-east", "run:0:t3.micro:5");
	assert_string_equal(a, b);
	assert_true(strlen(a) <= 64);
	assert_memory_equal(a, "req-123-", 8);
	aws_client_token(b, "req-123", "aws-east", "run:1:t3.micro:5");
	assert_string_not_equal(a, b);
	aws_client_token(b, "req-123", "aws-west", "run:0:t3.micro:5");
	assert_string_not_equal(a, b);
	aws_client_token(b, "req-12", "3aws-east", "run:0:t3.micro:5");
	assert_string_not_equal(a, b); /* fields do not run into each other */
	char longid[300];
	memset(longid, 'x', sizeof longid - 1);
	longid[sizeof longid - 1] = '\0';
	aws_client_token(a, longid, "p", "g");
	assert_true(strlen(a) <= 64);
	aws_client_token(a, "req with spaces/and+symbols", "p", "g");
	for (const char *p = a; *p; p++)
		assert_true(*p > 32 && *p < 127 && *p != ' ');
}

/* ---- form -------------------------------------------------------------------- */

static void test_form_encodes_like_sigv4_expects(void **state)
{
	(void)state;
	aws_form f;
	aws_form_init(&f, "RunInstances");
	aws_form_add(&f, "TagSpecification.1.Tag.1.Value", "a&b=c d~_.-/");
	aws_form_addf(&f, "i-1", "InstanceId.%d", 1);
	assert_false(f.oom);
	assert_string_equal(f.buf, "Action=RunInstances&Version=2016-11-15&"
				   "TagSpecification.1.Tag.1.Value=a%26b%3Dc%20d~_.-%2F&InstanceId.1=i-1");
	aws_form more;
	memset(&more, 0, sizeof more);
	aws_form_add(&more, "MaxResults", "5");
	aws_form_append(&f, &more);
	assert_non_null(strstr(f.buf, "&MaxResults=5"));
	aws_form_free(&more);
	aws_form_free(&f);
	char *b64 = aws_base64((const unsigned char *)"hello world", 11);
	assert_string_equal(b64, "aGVsbG8gd29ybGQ=");
	free(b64);
	b64 = aws_base64((const unsigned char *)"ab", 2);
	assert_string_equal(b64, "YWI=");
	free(b64);
}

/* ---- credentials ------------------------------------------------------------------ */

static void clear_env(void)
{
	unsetenv("AWS_ACCESS_KEY_ID");
	unsetenv("AWS_SECRET_ACCESS_KEY");
	unsetenv("AWS_SESSION_TOKEN");
	unsetenv("AWS_PROFILE");
	unsetenv("AWS_REGION");
	unsetenv("AWS_DEFAULT_REGION");
	setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials", 1);
	setenv("AWS_CONFIG_FILE", "/nonexistent/config", 1);
}

static void test_creds_explicit_beat_env(void **state)
{
	(void)state;
	clear_env();
	setenv("AWS_ACCESS_KEY_ID", "AKENV", 1);
	setenv("AWS_SECRET_ACCESS_KEY", "envsecret", 1);
	aws_creds c;
	aws_creds_opts o = {.access_key_id = "AKCFG", .secret_access_key = "cfgsecret"};
	assert_int_equal(aws_creds_resolve(&o, &c), 0);
	assert_string_equal(c.access_key_id, "AKCFG");
	assert_string_equal(c.source, "config");
	aws_creds_opts none = {0};
	assert_int_equal(aws_creds_resolve(&none, &c), 0);
	assert_string_equal(c.access_key_id, "AKENV");
	assert_string_equal(c.secret_access_key, "envsecret");
	assert_string_equal(c.source, "env");
	aws_creds_opts half = {.access_key_id = "AKCFG"};
	assert_int_equal(aws_creds_resolve(&half, &c), PV_EINVAL);
	clear_env();
}

static void test_creds_shared_file_profile_and_region_from_config(void **state)
{
	(void)state;
	clear_env();
	char creds[] = "/tmp/pv-aws-creds-XXXXXX", conf[] = "/tmp/pv-aws-conf-XXXXXX";
	int fd = mkstemp(creds);
	const char *text = "[default]\naws_access_key_id = AKDEF\naws_secret_access_key = defsecret\n\n"
			   "# comment\n[work]\naws_access_key_id=AKWORK\naws_secret_access_key=worksecret\n"
			   "aws_session_token = worktoken\n";
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	fd = mkstemp(conf);
	const char *ctext = "[default]\nregion = us-west-2\n[profile work]\nregion=eu-central-1\n";
	assert_int_equal(write(fd, ctext, strlen(ctext)), (ssize_t)strlen(ctext));
	close(fd);
	setenv("AWS_SHARED_CREDENTIALS_FILE", creds, 1);
	setenv("AWS_CONFIG_FILE", conf, 1);
	aws_creds c;
	aws_creds_opts o = {0};
	assert_int_equal(aws_creds_resolve(&o, &c), 0);
	assert_string_equal(c.access_key_id, "AKDEF");
	assert_string_equal(c.source, "shared-file");
	o.profile = "work";
	assert_int_equal(aws_creds_resolve(&o, &c), 0);
	assert_string_equal(c.access_key_id, "AKWORK");
	assert_string_equal(c.session_token, "worktoken");
	setenv("AWS_PROFILE", "work", 1);
	aws_creds_opts env_profile = {0};
	assert_int_equal(aws_creds_resolve(&env_profile, &c), 0);
	assert_string_equal(c.access_key_id, "AKWORK");
	char region[64];
	assert_int_equal(aws_region_resolve(NULL, region, sizeof region), 1);
	assert_string_equal(region, "eu-central-1");
	unsetenv("AWS_PROFILE");
	assert_int_equal(aws_region_resolve(NULL, region, sizeof region), 1);
	assert_string_equal(region, "us-west-2");
	setenv("AWS_DEFAULT_REGION", "ap-south-1", 1);
	assert_int_equal(aws_region_resolve(NULL, region, sizeof region), 1);
	assert_string_equal(region, "ap-south-1");
	setenv("AWS_REGION", "sa-east-1", 1);
	assert_int_equal(aws_region_resolve(NULL, region, sizeof region), 1);
	assert_string_equal(region, "sa-east-1");
	aws_creds_opts missing = {.profile = "nope"};
	assert_int_equal(aws_creds_resolve(&missing, &c), PV_ENOTFOUND);
	assert_non_null(strstr(pv_error_last(), "nope"));
	unlink(creds);
	unlink(conf);
	clear_env();
}

/* A credential goes into an HTTP header: one with a control character (a
 * CR LF would add a header of the file's choosing) is refused, naming the
 * key, never passed on or silently dropped. */
static void test_creds_with_control_characters_are_refused(void **state)
{
	(void)state;
	clear_env();
	char creds[] = "/tmp/pv-aws-creds-XXXXXX";
	int fd = mkstemp(creds);
	const char *text = "[default]\naws_access_key_id = AKDEF\naws_secret_access_key = s\n"
			   "aws_session_token = SeCr3t\rX-Injected: yes\n";
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	setenv("AWS_SHARED_CREDENTIALS_FILE", creds, 1);
	aws_creds c;
	aws_creds_opts o = {0};
	assert_int_equal(aws_creds_resolve(&o, &c), PV_EINVAL);
	assert_non_null(strstr(pv_error_last(), "aws_session_token"));
	assert_null(strstr(pv_error_last(), "SeCr3t")); /* the message holds no secret */
	unlink(creds);
	clear_env();
	static const char doc[] = "{\"AccessKeyId\": \"ASIA1\", \"SecretAccessKey\": \"s\","
				  " \"Token\": \"t\\r\\nX-Injected: yes\", \"Expiration\": \"2026-12-05T10:00:00Z\"}";
	assert_int_equal(aws_creds_from_imds_json(doc, strlen(doc), &c), PV_EIO);
	static const char good[] = "{\"AccessKeyId\": \"ASIA1\", \"SecretAccessKey\": \"s\","
				   " \"Token\": \"t\", \"Expiration\": \"2026-12-05T10:00:00Z\"}";
	assert_int_equal(aws_creds_from_imds_json(good, strlen(good), &c), 0);
	assert_string_equal(c.session_token, "t");
	assert_int_equal(c.expires_wall_ms, 1796464800000LL);
}

static void test_creds_wipe_zeroes_secrets(void **state)
{
	(void)state;
	aws_creds c;
	memset(&c, 'x', sizeof c);
	aws_creds_wipe(&c);
	for (size_t i = 0; i < sizeof c.secret_access_key; i++)
		assert_int_equal(c.secret_access_key[i], 0);
}

/* ---- configuration -------------------------------------------------------------- */

static int make(const char *json, pv_strategy **s)
{
	json_t *cfg = json_loads(json, 0, NULL);
	assert_non_null(cfg);
	int rc = pv_aws_new(s, "aws-cfg", cfg, NULL);
	json_decref(cfg);
	return rc;
}

static void test_config_errors_name_the_field(void **state)
{
	(void)state;
	clear_env();
	struct {
		const char *json, *field;
	} bad[] = {
		{"{\"region\": \"US EAST\"}", "'region'"},
		{"{}", "'region'"},
		{"{\"region\": \"us-east-1\", \"endpoint_url\": \"ftp://x\"}", "'endpoint_url'"},
		{"{\"region\": \"us-east-1\", \"timeout_ms\": 0}", "'timeout_ms'"},
		{"{\"region\": \"us-east-1\", \"max_retries\": 99}", "'max_retries'"},
		{"{\"region\": \"us-east-1\", \"verify_tls\": \"yes\"}", "'verify_tls'"},
		{"{\"region\": \"us-east-1\", \"access_key_id\": \"AK\"}", "'secret_access_key'"},
		{"{\"region\": \"us-east-1\", \"max_instances_per_call\": 5000}", "'max_instances_per_call'"},
		{"{\"region\": \"us-east-1\", \"describe_max_in_flight\": 0}", "'describe_max_in_flight'"},
		{"{\"region\": \"us-east-1\", \"describe_max_in_flight\": 65}", "'describe_max_in_flight'"},
		{"{\"region\": \"us-east-1\", \"throttle\": {\"describe\": {\"capacity\": -1}}}", "'throttle.describe'"},
		{"{\"region\": \"us-east-1\", \"throttle\": {\"safety_margin\": 2}}", "'throttle.safety_margin'"},
		{"{\"region\": \"us-east-1\", \"templates\": {}}", "'templates'"},
		{"{\"region\": \"us-east-1\", \"regoin\": \"x\"}", "'regoin'"},
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		pv_strategy *s = NULL;
		assert_int_equal(make(bad[i].json, &s), PV_EINVAL);
		assert_null(s);
		if (!strstr(pv_error_last(), bad[i].field))
			fail_msg("%s: message '%s' does not name %s", bad[i].json, pv_error_last(), bad[i].field);
	}
}

static void test_config_secret_never_in_errors_or_stats(void **state)
{
	(void)state;
	clear_env();
	pv_strategy *s = NULL;
	assert_int_equal(make("{\"region\": \"us-east-1\", \"access_key_id\": \"AKX\", "
			      "\"secret_access_key\": \"TOPSECRET\", \"timeout_ms\": -5}", &s), PV_EINVAL);
	assert_null(strstr(pv_error_last(), "TOPSECRET"));
	assert_int_equal(make("{\"region\": \"us-east-1\", \"access_key_id\": \"AKX\", "
			      "\"secret_access_key\": \"TOPSECRET\", \"endpoint_url\": \"http://127.0.0.1:1/\"}", &s), 0);
	assert_int_equal(pv_strategy_initialize(s), 0);
	json_t *st = pv_strategy_stats(s);
	char *text = json_dumps(st, 0);
	assert_null(strstr(text, "TOPSECRET"));
	assert_string_equal(json_string_value(json_object_get(st, "credentials_source")), "config");
	assert_string_equal(json_string_value(json_object_get(st, "health")), "unknown");
	free(text);
	json_decref(st);
	pv_capabilities caps = {0};
	assert_int_equal(pv_strategy_capabilities(s, &caps), 0);
	assert_string_equal(caps.type, "aws");
	assert_true(pv_capabilities_supports(&caps, PV_OP_CREATE_INSTANCES));
	pv_capabilities_clear(&caps);
	pv_strategy_unref(s);
}

static void test_templates_and_parameter_validation(void **state)
{
	(void)state;
	clear_env();
	pv_strategy *s = NULL;
	assert_int_equal(make("{\"region\": \"us-east-1\", \"access_key_id\": \"AKX\", \"secret_access_key\": \"S\","
			      " \"endpoint_url\": \"http://127.0.0.1:1/\", \"max_retries\": 0,"
			      " \"templates\": [{\"templateId\": \"t1\", \"imageId\": \"ami-1\", \"vmType\": \"t3.micro\"}]}",
			      &s), 0);
	assert_int_equal(pv_strategy_initialize(s), 0);
	pv_result r = PV_RESULT_INIT;
	pv_operation op = {.type = PV_OP_GET_AVAILABLE_TEMPLATES};
	pv_strategy_execute(s, &op, &r, NULL);
	assert_true(r.success);
	assert_string_equal(str(json_array_get(json_object_get(r.data, "templates"), 0), "templateId"), "t1");
	pv_result_clear(&r);
	struct {
		const char *params, *needle;
	} cases[] = {
		{"{\"template_id\": \"t9\"}", "t9"},
		{"{\"template_id\": \"t1\", \"count\": 0}", "'count'"},
		{"{\"template\": {\"templateId\": \"x\", \"vmType\": \"t3.micro\"}}", "imageId"},
		{"{\"template\": {\"imageId\": \"ami-1\"}}", "vmType"},
		{"{\"template\": {\"imageId\": \"ami-1\", \"vmType\": \"t\", \"providerApi\": \"Batch\"}}", "providerApi"},
		{"{\"template\": {\"imageId\": \"ami-1\", \"vmType\": \"t\", \"providerApi\": \"SpotFleet\"}}", "fleetRole"},
		{"{\"template\": {\"imageId\": \"ami-1\", \"vmType\": \"t\", \"providerApi\": \"EC2Fleet\","
		 " \"fleetType\": \"forever\"}}", "fleetType"},
		{"{\"template\": {\"imageId\": \"ami-1\", \"vmType\": \"t\", \"providerApi\": \"SpotFleet\","
		 " \"fleetRole\": \"arn:aws:iam::1:role/r\", \"fleetType\": \"instant\"}}", "fleetType"},
		{"{\"template\": {\"imageId\": \"ami-1\", \"vmType\": \"t\", \"fleetType\": \"maintain\"}}", "fleetType"},
		{"{\"template\": {\"vmType\": \"t\", \"providerApi\": \"EC2Fleet\"}}", "launchTemplateId"},
		{"{\"template\": {\"imageId\": \"ami-1\", \"vmType\": \"t\", \"instanceTags\": \"novalue\"}}", "instanceTags"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		json_t *p = json_loads(cases[i].params, 0, NULL);
		pv_operation c = {.type = PV_OP_CREATE_INSTANCES, .params = p};
		pv_strategy_execute(s, &c, &r, NULL);
		assert_false(r.success);
		assert_string_equal(r.error_code, "INVALID_PARAMETERS");
		if (!strstr(pv_result_message(&r), cases[i].needle))
			fail_msg("%s: '%s' lacks %s", cases[i].params, pv_result_message(&r), cases[i].needle);
		pv_result_clear(&r);
		json_decref(p);
	}
	/* Nothing listens on port 1: a transport failure is transient. */
	op.type = PV_OP_HEALTH_CHECK;
	pv_strategy_execute(s, &op, &r, NULL);
	assert_false(r.success);
	assert_int_equal(r.error_class, PV_CLASS_TRANSIENT);
	pv_result_clear(&r);
	json_t *st = pv_strategy_stats(s);
	assert_string_equal(json_string_value(json_object_get(st, "health")), "unhealthy");
	json_decref(st);
	pv_strategy_unref(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_xml_run_instances),
		cmocka_unit_test(test_xml_group_launch_template_and_weights),
		cmocka_unit_test(test_group_launch_template_mark),
		cmocka_unit_test(test_xml_describe_instances_with_tags_and_next_token),
		cmocka_unit_test(test_xml_spot_lifecycle_and_addresses),
		cmocka_unit_test(test_xml_terminate_instances),
		cmocka_unit_test(test_xml_describe_regions),
		cmocka_unit_test(test_xml_create_fleet),
		cmocka_unit_test(test_xml_error_envelope),
		cmocka_unit_test(test_xml_launch_template_ids),
		cmocka_unit_test(test_error_classes_follow_ec2_codes),
		cmocka_unit_test(test_error_codes_for_results),
		cmocka_unit_test(test_bucket_gives_burst_then_refills_at_rate),
		cmocka_unit_test(test_bucket_take_sleeps_on_the_clock_and_respects_deadline),
		cmocka_unit_test(test_disabled_bucket_always_gives),
		cmocka_unit_test(test_client_token_is_stable_bounded_and_distinct),
		cmocka_unit_test(test_form_encodes_like_sigv4_expects),
		cmocka_unit_test(test_creds_explicit_beat_env),
		cmocka_unit_test(test_creds_shared_file_profile_and_region_from_config),
		cmocka_unit_test(test_creds_with_control_characters_are_refused),
		cmocka_unit_test(test_creds_wipe_zeroes_secrets),
		cmocka_unit_test(test_config_errors_name_the_field),
		cmocka_unit_test(test_config_secret_never_in_errors_or_stats),
		cmocka_unit_test(test_templates_and_parameter_validation),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
