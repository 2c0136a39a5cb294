/*
 * template_fields.h - what the aws provider does with each field of a Host
 * Factory / ORB template: sent to EC2, read by the broker, or refused.
 */
#ifndef PV_PROVIDERS_AWS_TEMPLATE_FIELDS_H
#define PV_PROVIDERS_AWS_TEMPLATE_FIELDS_H

#include <stdbool.h>
#include <stddef.h>
#include <jansson.h>

/* EC2 takes at most 16 KB of user data (before base64). */
#define AWS_USER_DATA_MAX 16384

/*
 * Checks every field of `tmpl` and appends one {"template_id", "field",
 * "level": "error" | "warning", "message"} to `problems` for each problem:
 * an unknown field is a warning (not sent to EC2), a known field the
 * provider does not support, or a bad value, an error. Returns the number
 * of errors.
 */
size_t aws_template_check(const json_t *tmpl, json_t *problems);

/* Whether providerApi `api` (NULL = RunInstances) with fleetType
 * `fleet_type` (NULL = the API's default) launches through this provider.
 * Part A of issue 15 (SpotFleet, ASG, EC2Fleet request / maintain) marks
 * its pairs supported in the table behind this. */
bool aws_launch_supported(const char *api, const char *fleet_type);

/* The problems joined into one message ("template 't1': field 'x': why;
 * ..."), at most `size` bytes, errors only when `errors_only`; `brief`
 * leaves the reasons out ("t1.x, t2.y"), for a list of
 * many templates whose reasons are logged one by one. */
void aws_template_problems_text(const json_t *problems, bool errors_only, bool brief, char *out, size_t size);

/* Reads a userDataScript file: a new string (caller frees), or NULL with
 * `why` saying why (missing, unreadable, over AWS_USER_DATA_MAX). */
char *aws_read_user_data_script(const char *path, char *why, size_t why_size);

/* An imageId that names an SSM parameter (/aws/service/..., any path
 * starting with '/', or resolve:ssm:NAME): the parameter name, else NULL
 * (a plain ami- id). Borrowed from `image_id`. */
const char *aws_image_ssm_name(const char *image_id);

#endif
