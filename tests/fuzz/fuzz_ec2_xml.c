/*
 * fuzz_ec2_xml.c - libFuzzer target for EC2's answers as the AWS provider
 * reads them (src/providers/aws/xml.c, libxml2): any bytes as an error
 * body, DescribeInstances / RunInstances, TerminateInstances,
 * DescribeRegions, CreateFleet, a launch template id and a request id.
 * What comes out is JSON the provider builds its results from: it must be
 * serialisable.
 */
#include <stdint.h>
#include <stdlib.h>
#include "provisio/log.h"
#include "providers/aws/aws_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(json_t *j)
{
	if (j) {
		char *text = json_dumps(j, JSON_ENCODE_ANY);
		if (!text)
			abort(); /* a string that is not UTF-8 got in */
		free(text);
	}
	json_decref(j);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int quiet;
	if (!quiet++)
		pv_log_set_level(PV_LOG_OFF);
	const char *body = (const char *)data;
	char code[128], rid[128], lt[128];
	char *message = NULL;
	if (aws_xml_error(body, size, code, sizeof code, &message, rid, sizeof rid) == 0)
		check(json_pack("{s:s, s:s?, s:s}", "code", code, "message", message, "request_id", rid));
	free(message);
	char *next = NULL;
	check(aws_xml_instances(body, size, &next));
	free(next);
	check(aws_xml_terminated(body, size));
	check(aws_xml_regions(body, size));
	check(aws_xml_fleet(body, size));
	aws_xml_launch_template_id(body, size, lt, sizeof lt);
	aws_xml_request_id(body, size, rid, sizeof rid);
	return 0;
}
