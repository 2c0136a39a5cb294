/*
 * spot_requests.c - DescribeSpotInstanceRequests and interruption notices.
 *
 * Every spot instance EC2 launches (RunInstances with spot market options,
 * and the spot part of a fleet or group) comes from a spot instance request
 * `sir-…`, named by the instance's spotInstanceRequestId. Its state and
 * status code follow the instance, as EC2's request lifecycle does:
 * fulfilled (active) while it runs; marked-for-termination (closed) or
 * marked-for-stop / marked-for-hibernation (active) once EC2 has given the
 * two-minute notice, the instance still running; then
 * instance-terminated-no-capacity (closed) when it is taken back, or
 * instance-terminated-by-user (closed) after a TerminateInstances. Notices
 * come from the admin endpoint (POST /_emu/interrupt with "notice"), the
 * test deciding when; the requests are one-time (a persistent request would
 * open again). Not modelled: open / failed requests (RequestSpotInstances),
 * persistent requests, paging (EC2 pages with MaxResults; here one page).
 */
#include <stdio.h>
#include <string.h>
#include "emu.h"

#define MAX_IDS 1000

static const char *const request_filters[] = {
	"instance-id", "launched-availability-zone", "spot-instance-request-id", "state", "status-code",
	"type", "product-description", NULL,
};

/* The request's status code and state (*state), from its instance. */
static const char *status_code(emu *e, json_t *in, const char **state)
{
	int code;
	emu_state_of(e, in, &code);
	const char *notice = param(in, "notice");
	if (code == 16 || code == 0) { /* running, pending */
		if (notice) {
			*state = strcmp(notice, "marked-for-termination") == 0 ? "closed" : "active";
			return notice;
		}
		*state = "active";
		return "fulfilled";
	}
	*state = "closed";
	const char *why = param(json_object_get(in, "state_reason"), "code");
	return why && strcmp(why, "Server.SpotInstanceTermination") == 0 ? "instance-terminated-no-capacity"
									  : "instance-terminated-by-user";
}

static const char *status_message(const char *code)
{
	if (strcmp(code, "fulfilled") == 0)
		return "Your spot request is fulfilled.";
	if (strncmp(code, "marked-for-", 11) == 0)
		return "Spot Instance interruption notice: the instance will be interrupted in two minutes.";
	if (strcmp(code, "instance-terminated-no-capacity") == 0)
		return "Spot Instance terminated due to no available capacity.";
	return "Spot Instance terminated due to user-initiated termination.";
}

static const char *request_field(emu *e, json_t *in, const char *name, char *buf, size_t size)
{
	(void)buf;
	(void)size;
	const char *state;
	const char *code = status_code(e, in, &state);
	if (strcmp(name, "instance-id") == 0)
		return param(in, "id");
	if (strcmp(name, "launched-availability-zone") == 0)
		return param(in, "az");
	if (strcmp(name, "spot-instance-request-id") == 0)
		return param(in, "sir");
	if (strcmp(name, "state") == 0)
		return state;
	if (strcmp(name, "status-code") == 0)
		return code;
	if (strcmp(name, "type") == 0)
		return "one-time";
	return "Linux/UNIX"; /* product-description */
}

static void request_xml(emu *e, emu_buf *b, json_t *in)
{
	const char *state;
	const char *code = status_code(e, in, &state);
	const char *when = param(in, "notice_time") && strncmp(code, "marked-for-", 11) == 0 ? param(in, "notice_time")
											: param(in, "launch_time");
	const char *notice = param(in, "notice");
	const char *behaviour = !notice || strcmp(notice, "marked-for-termination") == 0 ? "terminate"
				: strcmp(notice, "marked-for-stop") == 0		  ? "stop"
										  : "hibernate";
	eb_add(b, "<item>");
	eb_elem(b, "spotInstanceRequestId", param(in, "sir"));
	eb_elem(b, "spotPrice", param(in, "spot_price") ? param(in, "spot_price") : "0.100000");
	eb_elem(b, "type", "one-time");
	eb_elem(b, "state", state);
	eb_add(b, "<status>");
	eb_elem(b, "code", code);
	eb_elem(b, "updateTime", when);
	eb_elem(b, "message", status_message(code));
	eb_add(b, "</status>");
	eb_add(b, "<launchSpecification>");
	eb_elem(b, "imageId", param(in, "image"));
	if (param(in, "key"))
		eb_elem(b, "keyName", param(in, "key"));
	eb_elem(b, "instanceType", param(in, "type"));
	eb_add(b, "<placement>");
	eb_elem(b, "availabilityZone", param(in, "az"));
	eb_add(b, "</placement>");
	if (param(in, "subnet"))
		eb_elem(b, "subnetId", param(in, "subnet"));
	eb_add(b, "</launchSpecification>");
	eb_elem(b, "instanceId", param(in, "id"));
	eb_elem(b, "createTime", param(in, "launch_time"));
	eb_elem(b, "productDescription", "Linux/UNIX");
	eb_elem(b, "launchedAvailabilityZone", param(in, "az"));
	eb_elem(b, "instanceInterruptionBehavior", behaviour);
	eb_add(b, "</item>");
}

static bool sir_ok(const char *id)
{
	size_t n = strlen(id);
	if (n < 12 || n > 24 || strncmp(id, "sir-", 4) != 0)
		return false;
	for (size_t i = 4; i < n; i++)
		if (!((id[i] >= '0' && id[i] <= '9') || (id[i] >= 'a' && id[i] <= 'z')))
			return false;
	return true;
}

/* The instances of SpotInstanceRequestId.N (every spot instance without
 * ids); NULL with the error in r. */
static json_t *requested(emu *e, json_t *p, const char *rid, emu_reply *r)
{
	json_t *out = json_array();
	if (!param(p, "SpotInstanceRequestId.1")) {
		size_t i;
		json_t *in;
		json_array_foreach(e->instances, i, in) if (param(in, "sir")) json_array_append(out, in);
		return out;
	}
	json_t *by_sir = json_object();
	size_t i;
	json_t *in;
	json_array_foreach(e->instances, i, in) if (param(in, "sir")) json_object_set(by_sir, param(in, "sir"), in);
	char msg[300];
	for (int k = 1; !r->status; k++) {
		const char *id = paramf(p, "SpotInstanceRequestId.%d", k);
		if (!id)
			break;
		if (k > MAX_IDS) {
			emu_error(r, 400, "InvalidParameterValue", "The maximum number of spot instance request IDs is 1000",
				  rid);
		} else if (!sir_ok(id)) {
			snprintf(msg, sizeof msg, "Invalid id: \"%.200s\"", id);
			emu_error(r, 400, "InvalidSpotInstanceRequestID.Malformed", msg, rid);
		} else if (!(in = json_object_get(by_sir, id))) {
			snprintf(msg, sizeof msg, "The spot instance request ID '%.200s' does not exist", id);
			emu_error(r, 400, "InvalidSpotInstanceRequestID.NotFound", msg, rid);
		} else {
			json_array_append(out, in);
		}
	}
	json_decref(by_sir);
	if (r->status) {
		json_decref(out);
		return NULL;
	}
	return out;
}

void emu_describe_spot_instance_requests(emu *e, json_t *p, const char *rid, emu_reply *r)
{
	json_t *filters = emu_filters(p, request_filters, rid, r);
	if (!filters)
		return;
	json_t *pool = requested(e, p, rid, r);
	if (!pool) {
		json_decref(filters);
		return;
	}
	if (is_true(p, "DryRun")) {
		json_decref(pool);
		json_decref(filters);
		return emu_dry_run_ok(r, rid);
	}
	emu_head(&r->body, "DescribeSpotInstanceRequests", rid);
	eb_add(&r->body, "<spotInstanceRequestSet>");
	size_t i;
	json_t *in;
	json_array_foreach(pool, i, in) if (emu_filters_match(e, filters, in, request_field)) request_xml(e, &r->body, in);
	eb_add(&r->body, "</spotInstanceRequestSet></DescribeSpotInstanceRequestsResponse>");
	json_decref(pool);
	json_decref(filters);
	r->status = 200;
}

void emu_spot_request_new(emu *e, json_t *in)
{
	char id[32];
	snprintf(id, sizeof id, "sir-%08llx", (unsigned long long)(emu_rand(e) & 0xffffffffull));
	json_object_set_new(in, "sir", json_string(id));
}

bool emu_spot_notice_behaviour_ok(const char *behaviour)
{
	return !behaviour || strcmp(behaviour, "terminate") == 0 || strcmp(behaviour, "stop") == 0 ||
	       strcmp(behaviour, "hibernate") == 0;
}

void emu_spot_notice(emu *e, json_t *in, const char *behaviour)
{
	(void)e;
	char when[32];
	emu_time_now(when, sizeof when);
	const char *code = !behaviour || strcmp(behaviour, "terminate") == 0 ? "marked-for-termination"
			   : strcmp(behaviour, "stop") == 0			? "marked-for-stop"
										: "marked-for-hibernation";
	json_object_set_new(in, "notice", json_string(code));
	json_object_set_new(in, "notice_time", json_string(when));
}
