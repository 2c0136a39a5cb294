/*
 * test_aws_template_fields.c - every field of a Host Factory / ORB AWS
 * template reaches EC2 or is refused by name (issue 15 B): the aws provider
 * against the EC2 emulator on loopback, reading what EC2 received from the
 * emulator (GET /_emu/last_request/<Action>) and what it launched
 * (DescribeInstances). SSM parameter images, the root volume on the image's
 * root device, subnets spread over RunInstances batches, heterogeneous
 * RunInstances, the launch template data and CreateFleet overrides, and the
 * problems a template check lists (unknown fields warned, unsupported ones
 * refused, at load and in validate_template).
 */
#include <stdarg.h>
#include <sys/stat.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include "provisio/provisio.h"
#include "provisio/aws.h"
#include "emu_harness.h"

#ifndef PV_EC2_EMULATOR
#define PV_EC2_EMULATOR "ec2-emulator"
#endif
#ifndef PV_TEST_DATA_DIR
#define PV_TEST_DATA_DIR "tests/data"
#endif

#define AL2023 "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64"
#define AL2023_AMI "ami-0a1b2c3d4e5f60718"

static emu_proc start(void)
{
	emu_proc e;
	const char *args[] = {"--ssm-parameter", AL2023 "=" AL2023_AMI, NULL};
	assert_int_equal(emu_start(&e, PV_EC2_EMULATOR, args), 0);
	return e;
}

static pv_strategy *provider(const emu_proc *e, const char *extra)
{
	pv_strategy *s = emu_provider(e, "aws-fields", extra);
	if (!s)
		fail_msg("aws provider: %s", pv_error_last());
	return s;
}

static void run(pv_strategy *s, pv_op_type type, json_t *params, pv_result *r)
{
	pv_operation op = {.type = type, .params = params};
	pv_strategy_execute(s, &op, r, NULL);
	json_decref(params);
}

/* The parameters of the emulator's last call of `action` (owned). */
static json_t *last(const emu_proc *e, const char *action)
{
	char path[128];
	snprintf(path, sizeof path, "/_emu/last_request/%s", action);
	json_t *p = emu_admin(e, path, NULL);
	assert_non_null(p);
	return p;
}

static const char *sget(const json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

static void expect(const json_t *p, const char *key, const char *value)
{
	const char *got = sget(p, key);
	if (!got || strcmp(got, value) != 0)
		fail_msg("EC2 received %s=%s, expected %s", key, got ? got : "(nothing)", value);
}

static char *write_script(const char *text)
{
	static char path[64];
	snprintf(path, sizeof path, "/tmp/pv-userdata-XXXXXX");
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	return path;
}

/* Instances of a request, by their subnet / lifecycle / image. */
static json_t *instances_of(pv_strategy *s, const char *rid)
{
	pv_result r = PV_RESULT_INIT;
	run(s, PV_OP_GET_INSTANCE_STATUS, json_pack("{s:s}", "request_id", rid), &r);
	assert_true(r.success);
	json_t *list = json_incref(json_object_get(r.data, "instances"));
	pv_result_clear(&r);
	return list;
}

static int count_with(const json_t *list, const char *key, const char *value)
{
	int n = 0;
	size_t i;
	json_t *v;
	json_array_foreach(list, i, v) n += sget(v, key) && strcmp(sget(v, key), value) == 0;
	return n;
}

/* ---- RunInstances ------------------------------------------------------------------ */

static void test_run_instances_sends_every_field(void **state)
{
	(void)state;
	emu_proc e = start();
	json_decref(emu_admin(&e, "/_emu/image", "{\"id\": \"" AL2023_AMI "\", \"root_device_name\": \"/dev/sda1\"}"));
	pv_strategy *s = provider(&e, "{\"max_instances_per_call\": 2}");
	char *script = write_script("#!/bin/sh\necho provisioned\n");
	json_t *t = json_pack("{s:s, s:s, s:s, s:s, s:s, s:[s, s], s:s, s:s, s:{s:s}, s:s, s:I, s:s, s:I, s:I,"
			      " s:s, s:s}",
			      "templateId", "t-all", "imageId", AL2023, "vmType", "t3.micro", "keyName", "hf-key",
			      "subnetIds", "subnet-aaa, subnet-bbb", "securityGroupIds", "sg-1", "sg-2",
			      "instanceTags", "team=blue", "userDataScript", script, "tags", "owner", "ops",
			      "instanceProfile", "hf-node-profile", "rootDeviceVolumeSize", (json_int_t)50,
			      "volumeType", "gp3", "iops", (json_int_t)4000, "throughput", (json_int_t)250,
			      "priceType", "spot", "spotPrice", "0.05");
	pv_result r = PV_RESULT_INIT;
	run(s, PV_OP_CREATE_INSTANCES, json_pack("{s:i, s:o, s:s}", "count", 4, "template", t, "request_id", "req-all"),
	    &r);
	if (!r.success)
		fail_msg("%s", pv_result_message(&r));
	assert_int_equal(json_integer_value(json_object_get(r.data, "count")), 4);
	pv_result_clear(&r);

	json_t *p = last(&e, "RunInstances");
	expect(p, "ImageId", AL2023_AMI); /* the SSM parameter's image */
	expect(p, "KeyName", "hf-key");
	expect(p, "SecurityGroupId.1", "sg-1");
	expect(p, "SecurityGroupId.2", "sg-2");
	expect(p, "IamInstanceProfile.Name", "hf-node-profile");
	expect(p, "BlockDeviceMapping.1.DeviceName", "/dev/sda1"); /* the image's root device */
	expect(p, "BlockDeviceMapping.1.Ebs.VolumeSize", "50");
	expect(p, "BlockDeviceMapping.1.Ebs.VolumeType", "gp3");
	expect(p, "BlockDeviceMapping.1.Ebs.Iops", "4000");
	expect(p, "BlockDeviceMapping.1.Ebs.Throughput", "250");
	expect(p, "InstanceMarketOptions.MarketType", "spot");
	expect(p, "InstanceMarketOptions.SpotOptions.MaxPrice", "0.05");
	expect(p, "UserData", "IyEvYmluL3NoCmVjaG8gcHJvdmlzaW9uZWQK"); /* base64 of the script */
	json_decref(p);
	assert_int_equal(emu_stat(&e, "calls", "DescribeImages"), 1);
	assert_int_equal(emu_stat(&e, "calls", "GetParameter"), 1);
	assert_int_equal(emu_stat(&e, "calls", "RunInstances"), 2);

	/* two batches of 2, one a subnet; both tag sources on every instance */
	json_t *list = instances_of(s, "req-all");
	assert_int_equal(json_array_size(list), 4);
	assert_int_equal(count_with(list, "subnet_id", "subnet-aaa"), 2);
	assert_int_equal(count_with(list, "subnet_id", "subnet-bbb"), 2);
	assert_int_equal(count_with(list, "lifecycle", "spot"), 4);
	size_t i;
	json_t *in;
	json_array_foreach(list, i, in) {
		assert_string_equal(sget(json_object_get(in, "tags"), "team"), "blue");
		assert_string_equal(sget(json_object_get(in, "tags"), "owner"), "ops");
	}
	json_decref(list);
	unlink(script);
	pv_strategy_unref(s);
	emu_stop(&e);
}

static void test_heterogeneous_run_instances_split_on_demand_and_spot(void **state)
{
	(void)state;
	emu_proc e = start();
	pv_strategy *s = provider(&e, NULL);
	json_t *t = json_pack("{s:s, s:s, s:s, s:s, s:I, s:s}", "templateId", "t-mix", "imageId", "ami-12345678",
			      "vmType", "t3.micro", "priceType", "heterogeneous", "percentOnDemand", (json_int_t)25,
			      "maxSpotPrice", "0.10");
	pv_result r = PV_RESULT_INIT;
	run(s, PV_OP_CREATE_INSTANCES, json_pack("{s:i, s:o, s:s}", "count", 8, "template", t, "request_id", "req-mix"),
	    &r);
	if (!r.success)
		fail_msg("%s", pv_result_message(&r));
	pv_result_clear(&r);
	json_t *list = instances_of(s, "req-mix");
	assert_int_equal(json_array_size(list), 8);
	assert_int_equal(count_with(list, "lifecycle", "spot"), 6);
	json_decref(list);
	json_t *p = last(&e, "RunInstances"); /* the spot part came last */
	expect(p, "InstanceMarketOptions.SpotOptions.MaxPrice", "0.10");
	json_decref(p);
	pv_strategy_unref(s);
	emu_stop(&e);
}

/* A capacity error in one subnet moves the batch to the next subnet before
 * the next instance type. */
static void test_capacity_in_one_subnet_moves_to_the_next(void **state)
{
	(void)state;
	emu_proc e = start();
	/* the emulator places subnet-0001 in us-east-1c, subnet-0002 in
	 * us-east-1a (a hash of the id); 1c has no capacity */
	assert_int_equal(emu_config(&e, "{\"ice_azs\": [\"us-east-1c\"]}"), 0);
	pv_strategy *s = provider(&e, NULL);
	pv_result r = PV_RESULT_INIT;
	json_t *t = json_pack("{s:s, s:s, s:[s, s], s:s}", "templateId", "t-az", "imageId", "ami-12345678", "vmTypes",
			      "t3.micro", "t3.small", "subnetId", "subnet-0001,subnet-0002");
	run(s, PV_OP_CREATE_INSTANCES, json_pack("{s:i, s:o, s:s}", "count", 3, "template", t, "request_id", "req-az"),
	    &r);
	if (!r.success)
		fail_msg("%s", pv_result_message(&r));
	pv_result_clear(&r);
	json_t *list = instances_of(s, "req-az");
	assert_int_equal(json_array_size(list), 3);
	assert_int_equal(count_with(list, "subnet_id", "subnet-0002"), 3);
	assert_int_equal(count_with(list, "az", "us-east-1a"), 3);
	assert_int_equal(count_with(list, "instance_type", "t3.micro"), 3); /* not the next type */
	json_decref(list);
	assert_int_equal(emu_stat(&e, "calls", "RunInstances"), 2);
	pv_strategy_unref(s);
	emu_stop(&e);
}

/* ---- EC2 Fleet and its launch template ---------------------------------------------- */

static void test_fleet_launch_template_and_overrides_carry_the_fields(void **state)
{
	(void)state;
	emu_proc e = start();
	pv_strategy *s = provider(&e, NULL);
	json_t *t = json_pack("{s:s, s:s, s:s, s:{s:i, s:i}, s:[s, s], s:s, s:s, s:I, s:s, s:s, s:I, s:s}",
			      "templateId", "t-fleet", "providerApi", "EC2Fleet", "imageId", "ami-0abc1234", "vmTypes",
			      "t3.micro", 1, "t3.large", 2, "subnetIds", "subnet-aaa", "subnet-bbb", "instanceProfile",
			      "arn:aws:iam::123456789012:instance-profile/hf", "userData", "#!/bin/sh\n",
			      "rootDeviceVolumeSize", (json_int_t)30, "priceType", "heterogeneous", "allocationStrategy",
			      "capacityOptimized", "percentOnDemand", (json_int_t)50, "maxSpotPrice", "0.2");
	pv_result r = PV_RESULT_INIT;
	run(s, PV_OP_CREATE_INSTANCES, json_pack("{s:i, s:o, s:s}", "count", 4, "template", t, "request_id", "req-fl"),
	    &r);
	if (!r.success)
		fail_msg("%s", pv_result_message(&r));
	pv_result_clear(&r);
	json_t *lt = last(&e, "CreateLaunchTemplate");
	expect(lt, "LaunchTemplateData.ImageId", "ami-0abc1234");
	expect(lt, "LaunchTemplateData.IamInstanceProfile.Arn", "arn:aws:iam::123456789012:instance-profile/hf");
	expect(lt, "LaunchTemplateData.BlockDeviceMapping.1.DeviceName", "/dev/xvda");
	expect(lt, "LaunchTemplateData.BlockDeviceMapping.1.Ebs.VolumeSize", "30");
	expect(lt, "LaunchTemplateData.UserData", "IyEvYmluL3NoCg==");
	json_decref(lt);
	json_t *f = last(&e, "CreateFleet");
	/* every (type x subnet) an override, each with its weight and price */
	for (int k = 1; k <= 4; k++) {
		char key[96];
		snprintf(key, sizeof key, "LaunchTemplateConfigs.1.Overrides.%d.SubnetId", k);
		expect(f, key, k % 2 ? "subnet-aaa" : "subnet-bbb");
		snprintf(key, sizeof key, "LaunchTemplateConfigs.1.Overrides.%d.WeightedCapacity", k);
		expect(f, key, k <= 2 ? "1" : "2");
		snprintf(key, sizeof key, "LaunchTemplateConfigs.1.Overrides.%d.MaxPrice", k);
		expect(f, key, "0.2");
	}
	assert_null(json_object_get(f, "LaunchTemplateConfigs.1.Overrides.5.InstanceType"));
	expect(f, "TargetCapacitySpecification.OnDemandTargetCapacity", "2");
	expect(f, "TargetCapacitySpecification.SpotTargetCapacity", "2");
	expect(f, "SpotOptions.AllocationStrategy", "capacity-optimized");
	json_decref(f);
	pv_strategy_unref(s);
	emu_stop(&e);
}

/* ---- SSM parameter images ------------------------------------------------------------- */

static json_t *tmpl_image(const char *image)
{
	return json_pack("{s:s, s:s, s:s}", "templateId", "t-ssm", "imageId", image, "vmType", "t3.micro");
}

static void test_ssm_image_is_resolved_and_cached(void **state)
{
	(void)state;
	emu_proc e = start();
	pv_strategy *s = provider(&e, NULL);
	pv_result r = PV_RESULT_INIT;
	for (int i = 0; i < 2; i++) {
		run(s, PV_OP_CREATE_INSTANCES, json_pack("{s:o, s:s}", "template", tmpl_image(i ? "resolve:ssm:" AL2023 : AL2023),
							 "request_id", i ? "req-ssm-2" : "req-ssm-1"), &r);
		if (!r.success)
			fail_msg("%s", pv_result_message(&r));
		assert_string_equal(sget(json_array_get(json_object_get(r.data, "instances"), 0), "image_id"), AL2023_AMI);
		pv_result_clear(&r);
	}
	assert_int_equal(emu_stat(&e, "calls", "GetParameter"), 1); /* the second from the cache */
	json_t *p = last(&e, "GetParameter");
	expect(p, "Name", AL2023);
	json_decref(p);

	/* TTL 0: asked every time, and a moved parameter is followed */
	pv_strategy *s0 = provider(&e, "{\"ssm_cache_ttl_s\": 0}");
	json_decref(emu_admin(&e, "/_emu/ssm_parameter", "{\"name\": \"" AL2023 "\", \"value\": \"ami-0fedcba987654321\"}"));
	run(s0, PV_OP_CREATE_INSTANCES, json_pack("{s:o, s:s}", "template", tmpl_image(AL2023), "request_id", "req-ssm-3"),
	    &r);
	if (!r.success)
		fail_msg("%s", pv_result_message(&r));
	assert_string_equal(sget(json_array_get(json_object_get(r.data, "instances"), 0), "image_id"),
			    "ami-0fedcba987654321");
	pv_result_clear(&r);
	assert_int_equal(emu_stat(&e, "calls", "GetParameter"), 2);
	pv_strategy_unref(s0);
	pv_strategy_unref(s);
	emu_stop(&e);
}

static void test_ssm_parameter_not_found_names_it(void **state)
{
	(void)state;
	emu_proc e = start();
	pv_strategy *s = provider(&e, NULL);
	pv_result r = PV_RESULT_INIT;
	run(s, PV_OP_CREATE_INSTANCES, json_pack("{s:o}", "template", tmpl_image("/aws/service/no/such/image")), &r);
	assert_false(r.success);
	assert_string_equal(r.error_code, "NOT_FOUND");
	assert_non_null(strstr(pv_result_message(&r), "'/aws/service/no/such/image'"));
	pv_result_clear(&r);
	assert_int_equal(emu_stat(&e, "calls", "RunInstances"), 0);
	pv_strategy_unref(s);

	/* ssm_endpoint_url: SSM is asked there, not at EC2's endpoint */
	s = provider(&e, "{\"ssm_endpoint_url\": \"http://127.0.0.1:9/\", \"max_retries\": 0}");
	run(s, PV_OP_CREATE_INSTANCES, json_pack("{s:o}", "template", tmpl_image(AL2023)), &r);
	assert_false(r.success);
	assert_non_null(strstr(pv_result_message(&r), "GetParameter"));
	pv_result_clear(&r);
	assert_int_equal(emu_stat(&e, "calls", "GetParameter"), 1); /* the first provider's only */
	pv_strategy_unref(s);
	emu_stop(&e);
}

/* The provider's answer is the one the real AWS CLI gets from the same
 * emulator (/usr/bin/aws ssm get-parameter). */
static void test_ssm_answer_matches_the_aws_cli(void **state)
{
	(void)state;
	if (access("/usr/bin/aws", X_OK) != 0)
		skip();
	emu_proc e = start();
	char cmd[512];
	snprintf(cmd, sizeof cmd,
		 "HOME=%s AWS_ACCESS_KEY_ID=%s AWS_SECRET_ACCESS_KEY='%s' AWS_DEFAULT_REGION=us-east-1 "
		 "/usr/bin/aws --endpoint-url %s ssm get-parameter --name %s --query Parameter.Value --output text",
		 e.dir, EMU_ACCESS_KEY, EMU_SECRET, e.url, AL2023);
	FILE *fp = popen(cmd, "r");
	assert_non_null(fp);
	char value[128] = "";
	assert_non_null(fgets(value, sizeof value, fp));
	pclose(fp);
	value[strcspn(value, "\n")] = '\0';
	assert_string_equal(value, AL2023_AMI);
	pv_strategy *s = provider(&e, NULL);
	pv_result r = PV_RESULT_INIT;
	run(s, PV_OP_CREATE_INSTANCES, json_pack("{s:o}", "template", tmpl_image(AL2023)), &r);
	assert_true(r.success);
	assert_string_equal(sget(json_array_get(json_object_get(r.data, "instances"), 0), "image_id"), value);
	pv_result_clear(&r);
	pv_strategy_unref(s);
	emu_stop(&e);
}

/* ---- the template check ------------------------------------------------------------------ */

static const json_t *problem(const json_t *problems, const char *field)
{
	size_t i;
	json_t *p;
	json_array_foreach(problems, i, p) if (strcmp(sget(p, "field"), field) == 0) return p;
	fail_msg("no problem listed for field '%s'", field);
	return NULL;
}

static void test_template_problems_are_all_listed_and_nothing_called(void **state)
{
	(void)state;
	emu_proc e = start();
	pv_strategy *s = provider(&e, NULL);
	json_t *t = json_pack("{s:s, s:s, s:s, s:s, s:s, s:I, s:s, s:s, s:s}", "templateId", "t-bad", "imageId",
			      "ami-12345678", "vmType", "t3.micro", "tenancy", "dedicated", "volumeType", "gp2", "iops",
			      (json_int_t)3000, "userDataScript", "/nonexistent/provisio-user-data.sh", "colour", "blue",
			      "instanceProfile", "arn:aws:s3:::bucket");
	pv_result r = PV_RESULT_INIT;
	run(s, PV_OP_CREATE_INSTANCES, json_pack("{s:o}", "template", t), &r);
	assert_false(r.success);
	assert_string_equal(r.error_code, "INVALID_PARAMETERS");
	const json_t *ps = json_object_get(pv_result_meta(&r), "problems");
	assert_string_equal(sget(problem(ps, "tenancy"), "level"), "error");
	assert_string_equal(sget(problem(ps, "iops"), "level"), "error");
	assert_string_equal(sget(problem(ps, "userDataScript"), "level"), "error");
	assert_string_equal(sget(problem(ps, "instanceProfile"), "level"), "error");
	assert_string_equal(sget(problem(ps, "colour"), "level"), "warning");
	assert_string_equal(sget(problem(ps, "tenancy"), "template_id"), "t-bad");
	const char *msg = pv_result_message(&r);
	assert_non_null(strstr(msg, "template 't-bad': field 'tenancy'"));
	assert_non_null(strstr(msg, "field 'iops'"));
	assert_non_null(strstr(msg, "No such file"));
	pv_result_clear(&r);

	/* a warning alone: validate answers valid and lists it, without a call */
	t = json_pack("{s:s, s:s, s:s, s:s}", "templateId", "t-warn", "imageId", "ami-12345678", "vmType", "t3.micro",
		      "colour", "blue");
	run(s, PV_OP_VALIDATE_TEMPLATE, json_pack("{s:o, s:b}", "template", t, "check_only", 1), &r);
	assert_true(r.success);
	assert_false(json_is_true(json_object_get(r.data, "dry_run")));
	assert_string_equal(sget(problem(json_object_get(r.data, "problems"), "colour"), "level"), "warning");
	pv_result_clear(&r);
	json_t *stats = emu_admin(&e, "/_emu/stats", NULL);
	assert_int_equal(json_object_size(json_object_get(stats, "calls")), 0);
	json_decref(stats);
	pv_strategy_unref(s);
	emu_stop(&e);
}

/* The original project's templates at load: every launch path they use
 * launches here (issue 15 part A), so only the native spec files are
 * refused, by name; the others load, SSM images and all. */
static void test_original_templates_are_checked_at_load(void **state)
{
	(void)state;
	json_t *doc = json_load_file(PV_TEST_DATA_DIR "/hostfactory/awsprov_templates.json", 0, NULL);
	assert_non_null(doc);
	json_t *cfg = json_pack("{s:s, s:s, s:s, s:s, s:b, s:O}", "region", "us-east-1", "endpoint_url",
				"http://127.0.0.1:9/", "access_key_id", EMU_ACCESS_KEY, "secret_access_key", EMU_SECRET,
				"imds", 0, "templates", json_object_get(doc, "templates"));
	pv_strategy *s = NULL;
	assert_int_equal(pv_aws_new(&s, "orb", cfg, NULL), PV_EINVAL);
	const char *msg = pv_error_last();
	assert_non_null(strstr(msg, "RunInstancesNativeSpec.launch_template_spec_file"));
	assert_non_null(strstr(msg, "EC2FleetNativeSpec.provider_api_spec_file"));
	assert_non_null(strstr(msg, "SpotFleetNativeSpec.provider_api_spec_file"));
	assert_non_null(strstr(msg, "ASGNativeSpec.provider_api_spec_file"));
	assert_null(strstr(msg, "providerApi"));
	assert_null(strstr(msg, " RunInstances."));
	/* ORB's SpotFleet templates name no fleet role, which RequestSpotFleet
	 * requires: refused at load by the field, not at the first request */
	assert_non_null(strstr(msg, "SpotFleetMaintain.fleetRole"));
	assert_non_null(strstr(msg, "SpotFleetRequest.fleetRole"));

	json_t *keep = json_array();
	size_t i;
	json_t *t;
	json_array_foreach(json_object_get(doc, "templates"), i, t) {
		if (strstr(sget(t, "templateId"), "NativeSpec"))
			continue;
		if (strcmp(sget(t, "providerApi"), "SpotFleet") == 0)
			json_object_set_new(t, "fleetRole", json_string("arn:aws:iam::123456789012:role/fleet"));
		json_array_append(keep, t);
	}
	assert_int_equal(json_array_size(keep), 9);
	json_object_set_new(cfg, "templates", keep);
	if (pv_aws_new(&s, "orb", cfg, NULL) != 0)
		fail_msg("%s", pv_error_last());
	pv_strategy_unref(s);

	/* a launch path the table marks unsupported is refused at load, by
	 * name: a SpotFleet template without a fleet type it takes */
	json_object_set_new(cfg, "templates",
			    json_pack("[{s:s, s:s, s:s, s:s, s:s, s:s}]", "templateId", "sf", "providerApi", "SpotFleet",
				      "fleetType", "instant", "imageId", "ami-12345678", "vmType", "t3.micro", "fleetRole",
				      "arn:aws:iam::123456789012:role/fleet"));
	assert_int_equal(pv_aws_new(&s, "orb", cfg, NULL), PV_EINVAL);
	assert_non_null(strstr(pv_error_last(), "template 'sf': field 'fleetType'"));
	json_decref(cfg);
	json_decref(doc);
}

/* Runs `provisio --config DIR/provisio.json ARGS` in the emulator's
 * directory: its exit status, stdout in `out` (stderr in DIR/err). */
static int run_cli(const emu_proc *e, const char *args, char *out, size_t size)
{
	char cmd[2048];
	snprintf(cmd, sizeof cmd, "cd %s && HF_PROVIDER_LOGDIR=%s %s --config %s/provisio.json %s 2>%s/err", e->dir,
		 e->dir, PV_CLI_BIN, e->dir, args, e->dir);
	FILE *fp = popen(cmd, "r");
	assert_non_null(fp);
	size_t n = fread(out, 1, size - 1, fp);
	out[n] = '\0';
	int st = pclose(fp);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int cli(const emu_proc *e, const char *args, char *out, size_t size)
{
	char line[1024];
	snprintf(line, sizeof line, "templates validate %s", args);
	return run_cli(e, line, out, size);
}

/* The text of DIR/name (owned), "" when it does not exist. */
static char *slurp(const emu_proc *e, const char *name)
{
	char path[256];
	snprintf(path, sizeof path, "%s/%s", e->dir, name);
	FILE *f = fopen(path, "r");
	char *text = calloc(1, 65536);
	assert_non_null(text);
	if (f) {
		size_t n = fread(text, 1, 65535, f);
		text[n] = '\0';
		fclose(f);
	}
	return text;
}

/* provisio.json (one aws provider on the emulator, templates in t.json)
 * and t.json: a good template with an unknown field, one only a dry run
 * refuses, one with two fields the provider refuses. */
static void write_config(const emu_proc *e)
{
	char path[128];
	snprintf(path, sizeof path, "%s/provisio.json", e->dir);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fprintf(f, "{\"providers\": [{\"name\": \"aws\", \"type\": \"aws\", \"config\": {\"region\": \"us-east-1\","
		   " \"endpoint_url\": \"%s\", \"access_key_id\": \"${EMU_AK}\", \"secret_access_key\": \"${EMU_SK}\","
		   " \"imds\": false}}], \"default_strategy\": \"aws\", \"store\": {\"path\": \"%s/p.db\"},"
		   " \"broker\": {\"templates_file\": \"%s/t.json\"}}\n", e->url, e->dir, e->dir);
	fclose(f);
	snprintf(path, sizeof path, "%s/t.json", e->dir);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs("{\"templates\": ["
	      "{\"templateId\": \"good\", \"provider\": \"aws\", \"imageId\": \"ami-12345678\", \"vmType\": \"t3.micro\","
	      " \"colour\": \"blue\"},"
	      "{\"templateId\": \"badtype\", \"provider\": \"aws\", \"imageId\": \"ami-12345678\", \"vmType\": \"t3.bogus\"},"
	      "{\"templateId\": \"bad\", \"provider\": \"aws\", \"imageId\": \"ami-12345678\", \"vmType\": \"t3.micro\","
	      " \"tenancy\": \"dedicated\", \"iops\": 10}]}\n", f);
	fclose(f);
	setenv("EMU_AK", EMU_ACCESS_KEY, 1);
	setenv("EMU_SK", EMU_SECRET, 1);
}

/* `provisio templates validate [--dry-run]`: each template on its
 * strategy, every problem with the template and the field; the dry run
 * asks EC2 (the emulator refuses an instance type it does not have). */
static void test_templates_validate_command_lists_problems_and_dry_runs(void **state)
{
	(void)state;
	emu_proc e = start();
	write_config(&e);
	char out[8192];
	assert_int_equal(cli(&e, "", out, sizeof out), 1);
	assert_non_null(strstr(out, "warning colour: not a field the aws provider knows"));
	assert_non_null(strstr(out, "error tenancy: not supported"));
	assert_non_null(strstr(out, "error iops: must be an integer"));
	assert_null(strstr(out, "badtype                  aws              refused")); /* no call without --dry-run */
	assert_int_equal(emu_stat(&e, "calls", "RunInstances"), 0);

	assert_int_equal(cli(&e, "--dry-run", out, sizeof out), 1);
	assert_non_null(strstr(out, "good                     aws              valid (dry run)"));
	assert_non_null(strstr(out, "Invalid value 't3.bogus' for InstanceType"));
	assert_int_equal(emu_stat(&e, "calls", "RunInstances"), 2); /* good and badtype; bad never called */
	assert_int_equal(emu_stat(&e, "instances", "total"), 0);

	assert_int_equal(cli(&e, "good", out, sizeof out), 0);
	assert_int_equal(cli(&e, "nosuch", out, sizeof out), 1);
	emu_stop(&e);
}

/* `config validate` checks the templates file too (issue 15, last gaps):
 * the refused template is an error naming it and its field, the unknown
 * field a warning; no provider is called. */
static void test_config_validate_checks_the_templates_file(void **state)
{
	(void)state;
	emu_proc e = start();
	write_config(&e);
	char out[16384];
	assert_int_equal(run_cli(&e, "config validate", out, sizeof out), 1);
	json_t *doc = json_loads(out, 0, NULL);
	assert_non_null(doc);
	assert_true(json_is_false(json_object_get(doc, "valid")));
	if (json_integer_value(json_object_get(doc, "errors")) != 2) /* tenancy, iops */
		fail_msg("%s", out);
	assert_non_null(strstr(sget(doc, "templates_file"), "/t.json"));
	char *err = slurp(&e, "err");
	assert_non_null(strstr(err, "template 'bad' field 'tenancy' (aws): not supported"));
	assert_non_null(strstr(err, "template 'bad' field 'iops' (aws)"));
	assert_non_null(strstr(err, "template 'good' field 'colour' (aws): not a field the aws provider knows"));
	assert_null(strstr(err, "'badtype'")); /* its type is EC2's to refuse, in a dry run */
	free(err);
	json_decref(doc);
	assert_int_equal(emu_stat(&e, "calls", "RunInstances"), 0);

	/* fixed, the file is valid (the unknown field stays a warning) */
	char path[128];
	snprintf(path, sizeof path, "%s/t.json", e.dir);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs("{\"templates\": [{\"templateId\": \"good\", \"provider\": \"aws\", \"imageId\": \"ami-12345678\","
	      " \"vmType\": \"t3.micro\", \"colour\": \"blue\"}]}\n", f);
	fclose(f);
	assert_int_equal(run_cli(&e, "config validate", out, sizeof out), 0);
	doc = json_loads(out, 0, NULL);
	assert_true(json_is_true(json_object_get(doc, "valid")));
	assert_int_equal(json_integer_value(json_object_get(doc, "warnings")), 1);
	json_decref(doc);
	emu_stop(&e);
}

/* A template its provider refuses is never offered to Host Factory: left
 * out of getAvailableTemplates with a warning in the Host Factory log naming
 * it and its fields, refused by requestMachines with the same reason; the
 * other templates keep working, and `templates list` shows why. */
static void test_refused_template_is_not_offered_to_host_factory(void **state)
{
	(void)state;
	emu_proc e = start();
	write_config(&e);
	char out[16384];
	assert_int_equal(run_cli(&e, "hostfactory getAvailableTemplates -d '{}'", out, sizeof out), 0);
	json_t *doc = json_loads(out, 0, NULL);
	assert_non_null(doc);
	json_t *list = json_object_get(doc, "templates");
	assert_int_equal(json_array_size(list), 2);
	assert_string_equal(sget(json_array_get(list, 0), "templateId"), "good");
	assert_string_equal(sget(json_array_get(list, 1), "templateId"), "badtype");
	json_decref(doc);
	char *log = slurp(&e, "provisio.log");
	assert_non_null(strstr(log, "'bad' is left out of getAvailableTemplates"));
	assert_non_null(strstr(log, "tenancy: not supported"));
	free(log);

	assert_int_equal(run_cli(&e, "hostfactory requestMachines -d "
				     "'{\"template\": {\"templateId\": \"bad\", \"machineCount\": 1}}'",
				 out, sizeof out),
			 1);
	doc = json_loads(out, 0, NULL);
	assert_non_null(doc);
	assert_non_null(strstr(sget(doc, "message"), "template 'bad' is refused by its provider: tenancy: not supported"));
	json_decref(doc);
	assert_int_equal(emu_stat(&e, "calls", "RunInstances"), 0);

	assert_int_equal(run_cli(&e, "templates list --json", out, sizeof out), 0);
	doc = json_loads(out, 0, NULL);
	assert_non_null(doc);
	json_t *t;
	size_t i;
	int refused = 0;
	json_array_foreach(json_object_get(doc, "templates"), i, t) if (sget(t, "refused")) {
		refused++;
		assert_string_equal(sget(t, "templateId"), "bad");
		assert_non_null(strstr(sget(t, "refused"), "iops: "));
	}
	assert_int_equal(refused, 1);
	json_decref(doc);

	/* the good one still runs */
	assert_int_equal(run_cli(&e, "hostfactory requestMachines -d "
				     "'{\"template\": {\"templateId\": \"good\", \"machineCount\": 1}}'",
				 out, sizeof out),
			 0);
	assert_int_equal(emu_stat(&e, "instances", "total"), 1);
	emu_stop(&e);
}

/* ---- the original templates through the Host Factory scripts ------------------------ */

#define ORB_AL2023_61 "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-6.1-x86_64"

/* Runs scripts/hostfactory/SCRIPT.sh -f IN as Host Factory does (its
 * environment: conf, work and log directories under the emulator's); the
 * answer parsed (owned), and the exit status in *rc. */
static json_t *hf_script(const emu_proc *e, const char *script, const char *in, int *rc)
{
	char path[128], cmd[1024];
	snprintf(path, sizeof path, "%s/hf-in.json", e->dir);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(in, f);
	fclose(f);
	snprintf(cmd, sizeof cmd,
		 "HF_PROVIDER_CONFDIR=%s/conf HF_PROVIDER_WORKDIR=%s HF_PROVIDER_LOGDIR=%s PROVISIO_BIN=%s "
		 "%s/../../scripts/hostfactory/%s.sh -f %s 2>>%s/err",
		 e->dir, e->dir, e->dir, PV_CLI_BIN, PV_TEST_DATA_DIR, script, path, e->dir);
	FILE *fp = popen(cmd, "r");
	assert_non_null(fp);
	char *out = calloc(1, 1 << 20);
	assert_non_null(out);
	size_t n = fread(out, 1, (1 << 20) - 1, fp);
	out[n] = '\0';
	int st = pclose(fp);
	*rc = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
	json_t *doc = json_loads(out, 0, NULL);
	if (!doc)
		fail_msg("%s: not JSON: %s", script, out);
	free(out);
	return doc;
}

/* getRequestStatus of one request until it is no longer running (each
 * call asks EC2 again; the emulator settles at its next answer). */
static json_t *settled(const emu_proc *e, const char *request_id)
{
	char in[256];
	snprintf(in, sizeof in, "{\"requests\": [{\"requestId\": \"%s\"}]}", request_id);
	for (int round = 0; round < 20; round++) {
		int rc;
		json_t *doc = hf_script(e, "getRequestStatus", in, &rc);
		assert_int_equal(rc, 0);
		json_t *r = json_array_get(json_object_get(doc, "requests"), 0);
		if (strcmp(sget(r, "status"), "running") != 0) {
			json_t *out = json_incref(r);
			json_decref(doc);
			return out;
		}
		json_decref(doc);
	}
	fail_msg("request %s still running after 20 getRequestStatus calls", request_id);
	return NULL;
}

/* The original project's templates file (issue 15, last gaps), as a new
 * user runs it: copied into HF_PROVIDER_CONFDIR with the one field Spot
 * Fleet requires added (fleetRole), a provider aimed at the emulator by
 * endpoint_url alone, and every Host Factory call through the shipped
 * scripts for each providerApi and fleet type. The native-spec templates
 * are left out of getAvailableTemplates; every other one launches 2
 * machines, returns them, and nothing is left running: no maintain fleet
 * or Auto Scaling group replaces what Host Factory returned, although the
 * returning process never launched them. */
static void test_original_templates_through_host_factory_scripts(void **state)
{
	(void)state;
	emu_proc e;
	/* instances up and gone at once, and every status call asking EC2:
	 * the loops below wait for states, never for time */
	const char *args[] = {"--ssm-parameter", ORB_AL2023_61 "=" AL2023_AMI, "--boot-ms", "0", "--shutdown-ms", "0",
			      NULL};
	assert_int_equal(emu_start(&e, PV_EC2_EMULATOR, args), 0);
	char path[256];
	snprintf(path, sizeof path, "%s/conf", e.dir);
	assert_int_equal(mkdir(path, 0700), 0);
	snprintf(path, sizeof path, "%s/conf/provisio.json", e.dir);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fprintf(f, "{\"providers\": [{\"name\": \"aws\", \"type\": \"aws\", \"config\": {\"region\": \"us-east-1\","
		   " \"endpoint_url\": \"%s\", \"access_key_id\": \"${EMU_AK}\", \"secret_access_key\": \"${EMU_SK}\","
		   " \"imds\": false}}], \"default_strategy\": \"aws\","
		   " \"broker\": {\"status_max_age_seconds\": -1}}\n", e.url);
	fclose(f);
	setenv("EMU_AK", EMU_ACCESS_KEY, 1);
	setenv("EMU_SK", EMU_SECRET, 1);
	json_t *doc = json_load_file(PV_TEST_DATA_DIR "/hostfactory/awsprov_templates.json", 0, NULL);
	assert_non_null(doc);
	size_t i;
	json_t *t;
	json_array_foreach(json_object_get(doc, "templates"), i, t)
		if (strcmp(sget(t, "providerApi"), "SpotFleet") == 0)
			json_object_set_new(t, "fleetRole", json_string("arn:aws:iam::123456789012:role/fleet"));
	snprintf(path, sizeof path, "%s/conf/awsprov_templates.json", e.dir);
	assert_int_equal(json_dump_file(doc, path, JSON_INDENT(1)), 0);
	json_decref(doc);

	int rc;
	doc = hf_script(&e, "getAvailableTemplates", "{}", &rc);
	assert_int_equal(rc, 0);
	json_t *offered = json_incref(json_object_get(doc, "templates"));
	json_decref(doc);
	assert_int_equal(json_array_size(offered), 9);
	json_array_foreach(offered, i, t) assert_null(strstr(sget(t, "templateId"), "NativeSpec"));

	json_array_foreach(offered, i, t) {
		const char *id = sget(t, "templateId");
		char in[512];
		snprintf(in, sizeof in, "{\"template\": {\"templateId\": \"%s\", \"machineCount\": 2}}", id);
		doc = hf_script(&e, "requestMachines", in, &rc);
		if (rc != 0)
			fail_msg("requestMachines %s: %s", id, sget(doc, "message"));
		json_t *got = settled(&e, sget(doc, "requestId"));
		json_decref(doc);
		if (strcmp(sget(got, "status"), "complete") != 0 || json_array_size(json_object_get(got, "machines")) != 2)
			fail_msg("%s: %s with %zu machines", id, sget(got, "status"),
				 json_array_size(json_object_get(got, "machines")));
		json_t *ret = json_pack("{s:[]}", "machines"), *m;
		size_t k;
		json_array_foreach(json_object_get(got, "machines"), k, m) {
			assert_string_equal(sget(m, "status"), "running");
			json_array_append_new(json_object_get(ret, "machines"),
					      json_pack("{s:O, s:O}", "name", json_object_get(m, "name"), "machineId",
							json_object_get(m, "machineId")));
		}
		json_decref(got);
		char *ret_in = json_dumps(ret, JSON_COMPACT);
		json_decref(ret);
		doc = hf_script(&e, "requestReturnMachines", ret_in, &rc);
		free(ret_in);
		if (rc != 0)
			fail_msg("requestReturnMachines %s: %s", id, sget(doc, "message"));
		got = settled(&e, sget(doc, "requestId"));
		json_decref(doc);
		if (strcmp(sget(got, "status"), "complete") != 0)
			fail_msg("return of %s: %s", id, sget(got, "status"));
		json_decref(got);
		/* nothing of this template left running: not replaced */
		if (emu_stat(&e, "instances", "live") != 0)
			fail_msg("after the return of %s, %lld instance(s) still live", id, emu_stat(&e, "instances", "live"));
	}
	json_decref(offered);
	doc = hf_script(&e, "getReturnRequests", "{}", &rc);
	assert_int_equal(rc, 0);
	assert_int_equal(json_array_size(json_object_get(doc, "requests")), 0);
	json_decref(doc);
	assert_true(emu_stat(&e, "calls", "CreateAutoScalingGroup") == 1); /* Auto Scaling at endpoint_url */
	emu_stop(&e);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_run_instances_sends_every_field),
		cmocka_unit_test(test_heterogeneous_run_instances_split_on_demand_and_spot),
		cmocka_unit_test(test_capacity_in_one_subnet_moves_to_the_next),
		cmocka_unit_test(test_fleet_launch_template_and_overrides_carry_the_fields),
		cmocka_unit_test(test_ssm_image_is_resolved_and_cached),
		cmocka_unit_test(test_ssm_parameter_not_found_names_it),
		cmocka_unit_test(test_ssm_answer_matches_the_aws_cli),
		cmocka_unit_test(test_template_problems_are_all_listed_and_nothing_called),
		cmocka_unit_test(test_original_templates_are_checked_at_load),
		cmocka_unit_test(test_templates_validate_command_lists_problems_and_dry_runs),
		cmocka_unit_test(test_config_validate_checks_the_templates_file),
		cmocka_unit_test(test_refused_template_is_not_offered_to_host_factory),
		cmocka_unit_test(test_original_templates_through_host_factory_scripts),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
