/*
 * ssm.c - launch images named by an SSM parameter.
 *
 * AWS publishes its current images as public SSM parameters
 * (/aws/service/ami-amazon-linux-latest/...), and templates of the
 * original project name them in imageId. EC2 takes only an ami- id, so
 * the parameter is resolved first: SSM GetParameter (JSON protocol 1.1,
 * POST with X-Amz-Target AmazonSSM.GetParameter, signed for service ssm at
 * the provider's endpoint), cached for ssm_cache_ttl_s (300 s by default:
 * AWS moves these parameters when it publishes a new image, a few times a
 * month, and a request must not wait on SSM every time).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "provisio/error.h"
#include "providers/aws/aws_strategy.h"

static bool cached(aws *a, const char *key, char *out, size_t size)
{
	pthread_mutex_lock(&a->lock);
	json_t *e = json_object_get(a->image_cache, key);
	uint64_t exp = (uint64_t)json_integer_value(json_object_get(e, "expires_ns"));
	const char *v = json_string_value(json_object_get(e, "image"));
	bool hit = v && pv_clock_now(a->clock) < exp;
	if (hit)
		snprintf(out, size, "%s", v);
	pthread_mutex_unlock(&a->lock);
	return hit;
}

int aws_ssm_image(aws *a, const pv_operation *op, const char *name, char *out, size_t size, pv_result *res)
{
	char key[2100];
	snprintf(key, sizeof key, "ssm:%s", name);
	if (cached(a, key, out, size))
		return 0;
	json_t *req = json_pack("{s:s}", "Name", name);
	char *body = json_dumps(req, JSON_COMPACT);
	json_decref(req);
	aws_call c;
	bool ok = body && aws_do(a, ACT_SSM_GET_PARAMETER, body, op->deadline_ns, &c);
	free(body);
	if (!ok && strcmp(c.ec2_code, "ParameterNotFound") == 0) {
		pv_result_fail(res, PV_ERR_NOT_FOUND, PV_CLASS_PERMANENT,
			       "aws '%s': template field 'imageId': SSM parameter '%s' not found (ParameterNotFound)",
			       a->base.name, name);
		pv_result_meta_set(res, "ssm_parameter", json_string(name));
		aws_call_free(&c);
		return -1;
	}
	if (!ok) {
		aws_call_fail(a, ACT_SSM_GET_PARAMETER, &c, res);
		pv_result_meta_set(res, "ssm_parameter", json_string(name));
		aws_call_free(&c);
		return -1;
	}
	json_t *ans = json_loadb(c.reply.body, c.reply.len, 0, NULL);
	const char *v = json_string_value(json_object_get(json_object_get(ans, "Parameter"), "Value"));
	int rc = 0;
	if (!v || strncmp(v, "ami-", 4) != 0) {
		pv_result_fail(res, PV_ERR_INVALID_PARAMETERS, PV_CLASS_PERMANENT,
			       "aws '%s': template field 'imageId': SSM parameter '%s' holds %s%s%s, not an image id",
			       a->base.name, name, v ? "'" : "no value", v ? v : "", v ? "'" : "");
		rc = -1;
	} else {
		snprintf(out, size, "%s", v);
		pthread_mutex_lock(&a->lock);
		json_object_set_new(a->image_cache, key,
				    json_pack("{s:s, s:I}", "image", v, "expires_ns",
					      (json_int_t)(pv_clock_now(a->clock) + a->ssm_ttl_ns)));
		pthread_mutex_unlock(&a->lock);
	}
	json_decref(ans);
	aws_call_free(&c);
	return rc;
}
