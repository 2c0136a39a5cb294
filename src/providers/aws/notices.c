/*
 * notices.c - spot interruption notices: EC2's two-minute warning.
 *
 * Before EC2 takes a spot instance back it marks the instance's spot
 * request: its status code becomes marked-for-termination (or
 * marked-for-stop / marked-for-hibernation, by the interruption behaviour)
 * while the instance still runs. DescribeSpotInstanceRequests is the Query
 * API's only view of it: DescribeInstanceStatus lists scheduled events
 * (maintenance, retirement), not spot interruptions, and rebalance
 * recommendations reach only EventBridge and the instance's own metadata.
 * So a status pass over live spot instances asks their requests (one call
 * per 200 ids, a describe token each) and marks the instances under a
 * notice: the broker reports them to Host Factory, which can drain them
 * before they go.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "providers/aws/aws_strategy.h"
#include "providers/aws/groups.h" /* aws_xml_list */

#define SPOT_REQUEST_BATCH 200

static bool live(const json_t *in)
{
	const char *st = json_string_value(json_object_get(in, "state"));
	return st && (strcmp(st, "running") == 0 || strcmp(st, "pending") == 0);
}

static bool is_notice(const char *code)
{
	return code && (strcmp(code, "marked-for-termination") == 0 || strcmp(code, "marked-for-stop") == 0 ||
			strcmp(code, "marked-for-hibernation") == 0);
}

/* One batch: the notices of its requests copied onto their instances. */
static char *ask(aws *a, const pv_operation *op, json_t *batch, json_t *by_request, unsigned *calls)
{
	static const char *const fields[] = {"spotInstanceRequestId", "instanceId", "status/code",
					     "status/message", "status/updateTime", NULL};
	aws_form f;
	aws_form_init(&f, aws_action_name(ACT_DESCRIBE_SPOT_INSTANCE_REQUESTS));
	size_t i;
	json_t *v;
	json_array_foreach(batch, i, v) aws_form_addf(&f, json_string_value(v), "SpotInstanceRequestId.%zu", i + 1);
	if (f.oom) {
		aws_form_free(&f);
		return strdup("out of memory");
	}
	aws_call c;
	bool ok = aws_do(a, ACT_DESCRIBE_SPOT_INSTANCE_REQUESTS, f.buf, op->deadline_ns, &c);
	aws_form_free(&f);
	*calls += c.attempts;
	char *err = NULL;
	if (!ok) {
		size_t n = 64 + strlen(c.ec2_code) + (c.ec2_message ? strlen(c.ec2_message) : strlen(c.reply.error));
		err = malloc(n);
		if (err)
			snprintf(err, n, "%s: %s", c.ec2_code[0] ? c.ec2_code : "error",
				 c.ec2_message ? c.ec2_message : c.reply.error);
		aws_call_free(&c);
		return err ? err : strdup("out of memory");
	}
	json_t *reqs = aws_xml_list(c.reply.body, c.reply.len, "spotInstanceRequestSet", fields, NULL);
	aws_call_free(&c);
	json_array_foreach(reqs, i, v) {
		const char *code = json_string_value(json_object_get(v, "code"));
		json_t *in = json_object_get(by_request, json_string_value(json_object_get(v, "spotInstanceRequestId")));
		if (!in || !is_notice(code))
			continue;
		json_object_set_new(in, "interruption_notice", json_string(code));
		json_t *msg = json_object_get(v, "message"), *when = json_object_get(v, "updateTime");
		if (msg)
			json_object_set(in, "interruption_notice_message", msg);
		if (when)
			json_object_set(in, "interruption_notice_time", when);
	}
	json_decref(reqs);
	return NULL;
}

char *aws_spot_notices(aws *a, const pv_operation *op, json_t *list, unsigned *calls)
{
	json_t *by_request = json_object(), *batch = json_array();
	char *err = NULL;
	size_t i;
	json_t *in;
	json_array_foreach(list, i, in) {
		const char *sir = json_string_value(json_object_get(in, "spot_request_id"));
		if (!sir || !live(in) || json_object_get(by_request, sir))
			continue;
		json_object_set(by_request, sir, in);
		json_array_append_new(batch, json_string(sir));
		if (json_array_size(batch) == SPOT_REQUEST_BATCH) {
			err = ask(a, op, batch, by_request, calls);
			json_array_clear(batch);
			if (err)
				break;
		}
	}
	if (!err && json_array_size(batch))
		err = ask(a, op, batch, by_request, calls);
	json_decref(batch);
	json_decref(by_request);
	return err;
}
