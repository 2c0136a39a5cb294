/*
 * ssm.c - SSM Parameter Store's GetParameter (JSON protocol 1.1,
 * X-Amz-Target AmazonSSM.GetParameter, signed for service "ssm", at the same
 * endpoint), for launch images named by a parameter such as
 * /aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64.
 *
 * Parameters are String parameters at version 1, given at start
 * (--ssm-parameter NAME=VALUE) or at run time (POST /_emu/ssm_parameter);
 * those given at start survive /_emu/reset. A name this store does not
 * have is ParameterNotFound with an empty message, as SSM answers; a
 * request without Name, ValidationException; a body that is not JSON,
 * SerializationException. Not modelled: version and label selectors
 * (name:3), SecureString, GetParameters / GetParametersByPath.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "emu.h"

#define JSON_TYPE "application/x-amz-json-1.1"

void emu_ssm_error(emu_reply *r, int status, const char *type, const char *message, const char *rid)
{
	(void)rid; /* SSM sends it as the x-amzn-RequestId header only */
	r->status = status;
	snprintf(r->code, sizeof r->code, "%s", type);
	eb_free(&r->body);
	json_t *body = json_pack("{s:s, s:s}", "__type", type, "message", message ? message : "");
	char *text = json_dumps(body, JSON_COMPACT);
	eb_add(&r->body, text);
	free(text);
	json_decref(body);
	r->content_type = JSON_TYPE;
}

int emu_ssm_put(emu *e, const char *name, const char *value, bool seed, char *err, size_t size)
{
	if (!name || !*name || strlen(name) > 2048 || !value || !*value) {
		snprintf(err, size, "SSM parameter: name (1 to 2048 characters) and value (not empty) are required");
		return -1;
	}
	json_t *prm = json_pack("{s:s, s:i, s:I}", "value", value, "version", 1, "modified", (json_int_t)time(NULL));
	if (seed)
		json_object_set(e->ssm_seeds, name, prm);
	json_object_set_new(e->ssm, name, prm);
	return 0;
}

void emu_get_parameter(emu *e, json_t *body, const char *rid, emu_reply *r)
{
	if (!json_is_object(body))
		return emu_ssm_error(r, 400, "SerializationException", "The request body is not a JSON object", rid);
	const char *name = json_string_value(json_object_get(body, "Name"));
	if (!name)
		return emu_ssm_error(r, 400, "ValidationException",
				     "1 validation error detected: Value null at 'name' failed to satisfy constraint: "
				     "Member must not be null", rid);
	json_t *prm = json_object_get(e->ssm, name);
	if (!prm)
		return emu_ssm_error(r, 400, "ParameterNotFound", "", rid);
	const char *value = json_string_value(json_object_get(prm, "value"));
	char arn[2300];
	/* AWS's public parameters (/aws/service/...) have no account in their ARN. */
	snprintf(arn, sizeof arn, "arn:aws:ssm:%s:%s:parameter%s%s", e->region,
		 strncmp(name, "/aws/", 5) == 0 ? "" : "123456789012", name[0] == '/' ? "" : "/", name);
	json_t *ans = json_pack("{s:{s:s, s:s, s:s, s:O, s:I, s:s, s:s}}", "Parameter", "Name", name, "Type", "String",
				"Value", value, "Version", json_object_get(prm, "version"), "LastModifiedDate",
				json_integer_value(json_object_get(prm, "modified")), "ARN", arn, "DataType",
				strncmp(value, "ami-", 4) == 0 ? "aws:ec2:image" : "text");
	char *text = json_dumps(ans, JSON_COMPACT);
	eb_add(&r->body, text);
	free(text);
	json_decref(ans);
	r->content_type = JSON_TYPE;
	r->status = 200;
}
