/*
 * rest.h - the generic REST provider: the spec's provider1/provider2.
 *
 * A strategy that talks to any HTTP service implementing the provider-facing
 * subset of provisio's own REST API (docs/api.md), so one provisio can broker
 * for another: a site broker in front of a central one, or a vendor service
 * that speaks the same shape. Operations map onto HTTP calls:
 *
 *   create_instances             POST /api/v1/requests  (Idempotency-Key)
 *   get_instance_status          GET  /api/v1/machines?ids=...
 *   describe_resource_instances  GET  /api/v1/machines?request_id=...
 *   terminate_instances          POST /api/v1/returns
 *   get_available_templates      GET  /api/v1/templates
 *   validate_template            GET  /api/v1/templates/{id}
 *   health_check                 GET  /ready
 *
 * Configuration (JSON; docs/rest.md lists defaults and ranges). The spec's
 * fields come first and a spec block works unchanged:
 *
 *   {
 *     "endpoint_url": "https://api.provider1.com",   required, http(s)
 *     "api_key": "${PROVIDER1_API_KEY}",             bearer token (optional)
 *     "region": "region1",
 *     "timeout": 30,                                 seconds per HTTP attempt
 *     "max_retries": 3,                              retries on 429/5xx/network
 *     "verify_tls": true, "ca_file": "/etc/ssl/site-ca.pem",
 *     "connect_timeout": 5,                          seconds
 *     "backoff": {"base_ms": 200, "max_ms": 10000, "retry_after_max_ms": 60000},
 *     "max_instances_per_request": 50,
 *     "max_connections": 16,                         pooled curl handles
 *     "seed": 0                                      jitter seed; 0 = from time
 *   }
 *
 * The api_key is a secret: it goes only into the Authorization header and
 * never into a log line, an error message, a result or stats.
 */
#ifndef PROVISIO_REST_H
#define PROVISIO_REST_H

#include <jansson.h>
#include "clock.h"
#include "strategy.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * New REST strategy (one reference; release with pv_strategy_unref). Makes
 * no network call: init only prepares the HTTP client, so a configured but
 * unreachable endpoint does not stop a process from starting. `clock` NULL =
 * system; it measures deadlines and carries the backoff sleeps. Returns 0,
 * PV_EINVAL (the message names the field and its valid range, never the
 * key) or PV_ENOMEM. Registered as types "rest", "provider1", "provider2".
 */
int pv_rest_new(pv_strategy **out, const char *name, const json_t *config,
		const pv_clock *clock);

#ifdef __cplusplus
}
#endif
#endif
