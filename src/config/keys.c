/*
 * keys.c - the keys each block of provisio.json may hold (keys.h): one
 * list a block, read by its validator and by the manual page.
 */
#include "config/keys.h"

const char *const pv_config_keys_top[] = {"version", "provider", "providers", "strategies",
					  "default_strategy", "context", "plugins", "broker", "store",
					  "server", "templates", "logging", "hostfactory", NULL};
const char *const pv_config_keys_graph[] = {"providers", "strategies", "default_strategy", "context", "plugins",
					    NULL};
const char *const pv_config_keys_provider[] = {"name", "type", "enabled", "priority", "weight",
					       "config", "selectable", "capabilities", "_at",
					       "_config_at", NULL};
const char *const pv_config_keys_strategy[] = {"name", "kind", "children", "primary", "fallbacks",
					       "child", "config", "selectable", "_at",
					       "_config_at", NULL};
const char *const pv_config_keys_context[] = {"selection_policy", "selection_criteria",
					      "health_check_interval_seconds",
					      "metrics_collection_enabled", "failover_enabled", "_at", NULL};
const char *const pv_config_keys_criteria[] = {"min_success_rate", "max_response_time_ms",
					       "require_healthy", "min_samples", "required_operations",
					       "required_features", "exclude", "prefer", NULL};
const char *const pv_config_keys_spec[] = {"type", "strategy", "load_balancing", "fallback",
					   "composite", "default_strategy", "plugins", NULL};
const char *const pv_config_keys_spec_provider[] = {"type", "enabled", "weight", "priority", NULL};
const char *const pv_config_keys_legacy[] = {"providers", "selection_policy", "health_check_interval",
					     "circuit_breaker", "default_provider_type", "default_provider_instance",
					     "provider_defaults", "active_provider", "plugins", NULL};
const char *const pv_config_keys_breaker[] = {"enabled", "failure_threshold", "recovery_timeout",
					      "half_open_max_calls", NULL};
const char *const pv_config_keys_store[] = {"url", "path", "busy_timeout_ms", NULL};
const char *const pv_config_keys_broker[] = {"status_max_age_seconds", "pending_timeout_seconds",
					     "creating_timeout_seconds", "grace_period_seconds",
					     "max_create_rounds", "call_timeout_ms", "templates_file", NULL};
const char *const pv_config_keys_server[] = {"listen", "reuse_port", "threads", "max_body_bytes",
					     "max_header_bytes", "max_connections", "max_connections_per_client",
					     "header_timeout_seconds", "body_timeout_seconds", "idle_timeout_seconds",
					     "shutdown_timeout_seconds", "access_log", "tls", "auth",
					     "reconcile_interval_seconds", "queue_poll_seconds", "terminate_orphans",
					     "allow_exec", "alerts", "logging", NULL};
const char *const pv_config_keys_server_tls[] = {"cert_file", "key_file", NULL};
const char *const pv_config_keys_server_auth[] = {"enabled", "tokens", "max_failures", "failure_window_seconds",
						  NULL};
const char *const pv_config_keys_server_token[] = {"name", "hash", "role", "sha256", NULL};
const char *const pv_config_keys_server_alerts[] = {"interval_seconds", "command", "webhook", "rules", NULL};
const char *const pv_config_keys_server_rule[] = {"name", "kind", "strategy", "threshold", "min_samples", NULL};
const char *const pv_config_keys_server_logging[] = {"level", "components", NULL};

static const pv_config_section sections[] = {
	{"", "The top-level sections; unknown ones are warnings (errors with --strict).", pv_config_keys_top},
	{"providers[]", "Format 2 (explicit graph): one provider instance; its type's own keys go in config.",
	 pv_config_keys_provider},
	{"strategies[]", "Format 2: a strategy over providers or strategies; kind is fallback, balancer, "
			 "composite or chaos.", pv_config_keys_strategy},
	{"context", "How the kernel picks among the selectable strategies and providers.", pv_config_keys_context},
	{"context.selection_criteria", "What a provider must meet to be selected.", pv_config_keys_criteria},
	{"provider", "Format 1 (the specification's block): these keys, plus one object a provider, named "
		     "by the provider.", pv_config_keys_spec},
	{"provider.NAME", "Format 1: one provider; every other key is its type's configuration.",
	 pv_config_keys_spec_provider},
	{"provider (legacy)", "Format 3 (the original project's provider list).", pv_config_keys_legacy},
	{"provider.circuit_breaker", "Format 3: the breaker of the failover chain.", pv_config_keys_breaker},
	{"store", "Where requests and machines are kept: SQLite (path) or PostgreSQL (url).",
	 pv_config_keys_store},
	{"broker", "Templates, timeouts and retries of the Host Factory requests.", pv_config_keys_broker},
	{"server", "provisio serve: listener, limits, reconciler (docs/serve.md).", pv_config_keys_server},
	{"server.tls", "HTTPS: both files, or neither.", pv_config_keys_server_tls},
	{"server.auth", "Bearer tokens and the lockout of failing clients.", pv_config_keys_server_auth},
	{"server.auth.tokens[]", "One token: its salted hash (provisio serve --hash-token) and role "
				 "(read or admin).", pv_config_keys_server_token},
	{"server.alerts", "Alert rules, evaluated every interval; a command or webhook is told.",
	 pv_config_keys_server_alerts},
	{"server.alerts.rules[]", "One rule; kind is unhealthy, success_rate_below, p95_above_ms, "
				  "breaker_open_for or orphans.", pv_config_keys_server_rule},
	{"server.logging", "Log level (debug, info, warn, error, off), overall and per component.",
	 pv_config_keys_server_logging},
};

const pv_config_section *pv_config_sections(size_t *n)
{
	*n = sizeof sections / sizeof sections[0];
	return sections;
}
