/*
 * aws.h - the AWS EC2 provider.
 *
 * A strategy that launches, describes and terminates EC2 instances through
 * the EC2 Query API (RunInstances or CreateFleet type instant,
 * DescribeInstances, TerminateInstances, DescribeRegions), signed with
 * SigV4, with AWS's credentials chain, EC2 error classes, retries with
 * backoff and full jitter inside the operation deadline, client-side token
 * buckets and ClientToken idempotency. Registered by type name "aws".
 *
 * Configuration (JSON object; every field optional, see docs/aws.md):
 *
 *   {
 *     "region": "us-east-1",           else AWS_REGION, AWS_DEFAULT_REGION, profile config
 *     "profile": "default",            shared credentials/config profile
 *     "endpoint_url": "https://ec2.REGION.amazonaws.com",
 *     "access_key_id": "...", "secret_access_key": "...", "session_token": "...",
 *     "proxy": "http://proxy:3128",
 *     "connect_timeout_ms": 3000, "timeout_ms": 30000, "verify_tls": true,
 *     "max_retries": 5, "retry_base_ms": 100, "retry_max_ms": 20000,
 *     "max_instances_per_call": 100,   RunInstances MaxCount per call (1..1000)
 *     "describe_max_in_flight": 8,     DescribeInstances batches at once (1..64)
 *     "imds": true, "imds_endpoint": "http://169.254.169.254",
 *     "seed": 1,                       jitter seed (tests)
 *     "throttle": {"enabled": true,
 *                  "run_instances": {"capacity": 5, "refill_per_s": 2},
 *                  "mutating": {"capacity": 50, "refill_per_s": 5},
 *                  "describe": {"capacity": 100, "refill_per_s": 20},
 *                  "terminate": {"capacity": 100, "refill_per_s": 5}},
 *     "templates": [ {Host Factory template}, ... ]
 *   }
 */
#ifndef PROVISIO_AWS_H
#define PROVISIO_AWS_H

#include <stdint.h>
#include <jansson.h>
#include "clock.h"
#include "strategy.h"

#ifdef __cplusplus
extern "C" {
#endif

/* New AWS strategy (one reference). Validates the configuration only; the
 * credentials chain runs in init (pv_strategy_initialize), because IMDS is
 * a network call. `clock` NULL = system. 0, PV_EINVAL (message names the
 * field and its valid range) or PV_ENOMEM. */
int pv_aws_new(pv_strategy **out, const char *name, const json_t *config,
	       const pv_clock *clock);

/* EC2 API calls made by an AWS strategy for one action ("RunInstances"),
 * counting retries; 0 for an action it never called. */
uint64_t pv_aws_calls(pv_strategy *s, const char *action);

#ifdef __cplusplus
}
#endif
#endif
