/*
 * errors.c - what an EC2 error means for provisio.
 *
 * The error class decides everything downstream: only transient and
 * throttled failures are retried (here and by the fallback strategy),
 * capacity failures send the request to another provider, permanent ones
 * go back to the user. The table follows EC2's documented error codes.
 */
#include <string.h>
#include "providers/aws/aws_internal.h"

typedef struct code_class {
	const char *code;
	pv_error_class cls;
	bool prefix; /* match "Code" and "Code.*" / "CodeSomething" */
} code_class;

static const code_class table[] = {
	{"RequestLimitExceeded", PV_CLASS_THROTTLED, false},
	{"Throttling", PV_CLASS_THROTTLED, true},
	{"RequestThrottled", PV_CLASS_THROTTLED, false},
	{"InsufficientInstanceCapacity", PV_CLASS_CAPACITY, false},
	{"InsufficientCapacity", PV_CLASS_CAPACITY, true},
	{"InsufficientHostCapacity", PV_CLASS_CAPACITY, false},
	{"InsufficientReservedInstanceCapacity", PV_CLASS_CAPACITY, false},
	{"InsufficientFreeAddressesInSubnet", PV_CLASS_CAPACITY, false},
	{"SpotMaxPriceTooLow", PV_CLASS_CAPACITY, false},
	{"MaxSpotInstanceCountExceeded", PV_CLASS_CAPACITY, false},
	{"MaxSpotFleetRequestCountExceeded", PV_CLASS_CAPACITY, false},
	{"InstanceLimitExceeded", PV_CLASS_CAPACITY, false},
	{"VcpuLimitExceeded", PV_CLASS_CAPACITY, false},
	{"Unsupported", PV_CLASS_CAPACITY, false}, /* type not offered in this AZ */
	{"InternalError", PV_CLASS_TRANSIENT, false},
	{"InternalFailure", PV_CLASS_TRANSIENT, false},
	{"ServiceUnavailable", PV_CLASS_TRANSIENT, false},
	{"Unavailable", PV_CLASS_TRANSIENT, false},
	{"AuthFailure", PV_CLASS_PERMANENT, true},
	{"UnauthorizedOperation", PV_CLASS_PERMANENT, false},
	{"SignatureDoesNotMatch", PV_CLASS_PERMANENT, false},
	{"InvalidClientTokenId", PV_CLASS_PERMANENT, false},
	{"OptInRequired", PV_CLASS_PERMANENT, false},
	{"Blocked", PV_CLASS_PERMANENT, false},
	{"IdempotentParameterMismatch", PV_CLASS_PERMANENT, false},
	{"InvalidParameter", PV_CLASS_PERMANENT, true},
	{"MissingParameter", PV_CLASS_PERMANENT, false},
	{"UnknownParameter", PV_CLASS_PERMANENT, false},
	{"InvalidAction", PV_CLASS_PERMANENT, false},
	{"DryRunOperation", PV_CLASS_PERMANENT, false},
};

static bool matches(const code_class *e, const char *code)
{
	size_t n = strlen(e->code);
	if (strncmp(code, e->code, n) != 0)
		return false;
	return code[n] == '\0' || e->prefix;
}

pv_error_class aws_error_class(const char *ec2_code, long http_status)
{
	if (ec2_code && *ec2_code) {
		for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
			if (matches(&table[i], ec2_code))
				return table[i].cls;
		/* InvalidInstanceID.NotFound, InvalidAMIID.Malformed, ...: the
		 * request names something that is not there or not valid. */
		if (strncmp(ec2_code, "Invalid", 7) == 0 || strstr(ec2_code, ".NotFound") ||
		    strstr(ec2_code, ".Malformed"))
			return PV_CLASS_PERMANENT;
	}
	if (http_status == 0 || http_status >= 500 || http_status == 408)
		return PV_CLASS_TRANSIENT;
	if (http_status == 429 || http_status == 503)
		return PV_CLASS_THROTTLED;
	return PV_CLASS_PERMANENT;
}

const char *aws_error_pv_code(pv_error_class cls, const char *ec2_code)
{
	/* InvalidInstanceID.NotFound, InvalidLaunchTemplateName.NotFoundException,
	 * InvalidLaunchTemplateId.VersionNotFound */
	if (ec2_code && strchr(ec2_code, '.') && strstr(ec2_code, "NotFound"))
		return PV_ERR_NOT_FOUND;
	switch (cls) {
	case PV_CLASS_THROTTLED:
		return PV_ERR_THROTTLED;
	case PV_CLASS_CAPACITY:
		return PV_ERR_CAPACITY;
	case PV_CLASS_PERMANENT:
		if (ec2_code && (strncmp(ec2_code, "Invalid", 7) == 0 ||
				 strcmp(ec2_code, "MissingParameter") == 0 ||
				 strcmp(ec2_code, "UnknownParameter") == 0 ||
				 strcmp(ec2_code, "IdempotentParameterMismatch") == 0))
			return PV_ERR_INVALID_PARAMETERS;
		if (ec2_code && (strncmp(ec2_code, "AuthFailure", 11) == 0 ||
				 strcmp(ec2_code, "UnauthorizedOperation") == 0 ||
				 strcmp(ec2_code, "SignatureDoesNotMatch") == 0 ||
				 strcmp(ec2_code, "InvalidClientTokenId") == 0))
			return "AUTH_FAILURE";
		return PV_ERR_EXECUTION_ERROR;
	case PV_CLASS_TRANSIENT:
		return PV_ERR_EXECUTION_ERROR;
	default:
		return PV_ERR_INTERNAL;
	}
}
