/*
 * groups.h - launches through a capacity group: Spot Fleet
 * (RequestSpotFleet), EC2 Fleet of type request or maintain (CreateFleet)
 * and Auto Scaling groups (CreateAutoScalingGroup). launch.c reads the
 * template and hands over what groups.c needs; ops.c hands the instances
 * to return to aws_groups_release first, so that a fleet or group that
 * maintains its capacity gives them up instead of replacing them.
 */
#ifndef PV_PROVIDERS_AWS_GROUPS_H
#define PV_PROVIDERS_AWS_GROUPS_H

#include "providers/aws/aws_strategy.h"

/* What a group launch needs, read by launch.c (all borrowed). */
typedef struct aws_group_launch {
	const char *api;        /* SpotFleet, EC2Fleet or ASG */
	const char *fleet_type; /* request or maintain (ASG: maintain) */
	const json_t *tmpl;
	const char *template_id, *request_id;
	const char *basis;      /* what the tokens derive from (one launch) */
	const char *lt_id, *lt_version; /* the launch template to launch from */
	const json_t *types;    /* [{"type", "weight"}] in preference order */
	const json_t *subnets;  /* [subnet id] */
	const json_t *tags;     /* {key: value}: provisio's and the template's */
	const char *price_type, *max_price;
	int64_t count;          /* capacity units */
	bool all_or_nothing;
	bool lt_owned;          /* the launch template was made for this group
				   (lt_name ends with its aws_group_lt_mark):
				   deleted with the group */
	const char *lt_name;
} aws_group_launch;

/* Whether a template launches through a group (SpotFleet, ASG, EC2Fleet
 * request / maintain). */
bool aws_template_uses_group(const json_t *tmpl);
/* Whether any of `templates` does. */
bool aws_groups_configured(const json_t *templates);
/* The fleet type a template asks for: instant, request or maintain, NULL
 * when it is not one of them or the API takes none (RunInstances): the
 * template field is then wrong. */
const char *aws_template_fleet_type(const json_t *tmpl);

/* Creates the fleet / group and answers what it launched (create_instances'
 * result: instances, instance_ids, count, fulfilled_capacity, group_id...). */
void aws_group_create(aws *a, const pv_operation *op, const aws_group_launch *g, json_t *data, pv_result *out);

/*
 * The return of `ids`: those launched by a fleet or group are given up
 * through it (maintain: target lowered first so nothing replaces them;
 * a fleet / group left with nothing is cancelled / deleted, terminating
 * with it), their {instance_id, state} appended to `done`. Returns a new
 * array of the ids that belong to no group (for TerminateInstances), or
 * NULL with `out` failed. *calls counts the calls made.
 */
json_t *aws_groups_release(aws *a, const pv_operation *op, json_t *ids, json_t *done, unsigned *calls,
			   pv_result *out);

/* ---- xml_list.c: the lists of fleet and Auto Scaling answers ------------ */

/* The text of the first element named `name` anywhere in the answer (depth
 * first) into `out` ("" when none). */
void aws_xml_find_text(const char *body, size_t len, const char *name, char *out, size_t size);
/* The items (<item> / <member>) of the first element named `list`: a new
 * array of objects with, for each of `fields` (NULL-terminated; "a/b" is a
 * path below the item), its text under the path's last name. `next_token`
 * (may be NULL) receives nextToken / NextToken as a new string or NULL.
 * NULL when the body is not XML. */
json_t *aws_xml_list(const char *body, size_t len, const char *list, const char *const *fields,
		     char **next_token);

/* The launch templates and instance weights of the first fleet / group of a
 * DescribeSpotFleetRequests, DescribeFleets or DescribeAutoScalingGroups
 * answer, whose list is `set` (spotFleetRequestConfigSet, fleetSet,
 * AutoScalingGroups): a new {"launch_templates": [{"id", "name"}, as the
 * answer gives them], "weights": {instance type: units}, "problems":
 * [weights that are not whole units from 1, said]}. NULL when the body is
 * not XML. */
json_t *aws_xml_group_launch(const char *body, size_t len, const char *set);

/* ---- whose launch template ------------------------------------------------------ */

/* The ClientToken of the group one launch (`basis`) makes through `api` /
 * `fleet_type` (an Auto Scaling group is named after it); `out` holds
 * AWS_CLIENT_TOKEN_MAX + 1 bytes. */
void aws_group_token(const aws *a, const char *api, const char *fleet_type, const char *basis, char *out);

/* What ends the name of a launch template made for one group: "-" and 16
 * hex digits of the group's token. Deterministic (a retried launch names
 * the same template, a lost answer is found by the name) and checkable
 * from the group alone after a restart (its token is in DescribeFleets /
 * DescribeSpotFleetRequests, in an Auto Scaling group's name). */
#define AWS_LT_MARK_SIZE 18
void aws_group_lt_mark(const char *token, char out[AWS_LT_MARK_SIZE]);

#endif
