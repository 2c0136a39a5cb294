/*
 * call.c - one logical call to the endpoint: attempts, backoff, deadline.
 *
 * Retryable answers (docs/api.md: 429, 5xx, connection errors, timeouts)
 * are tried again up to max_retries times. The wait before the next attempt
 * is the server's Retry-After when it sent one (it knows its own load; coming
 * back sooner only earns another 429), otherwise "full jitter": uniform in
 * [0, min(max_ms, base_ms * 2^attempt)], which spreads a crowd of clients
 * that failed together instead of bringing them back in lock step.
 *
 * The operation's deadline bounds everything: each attempt's timeout is cut
 * to the time left, and a wait that would end at or past the deadline is not
 * started at all: the call returns the last failure at once, so a caller
 * (a fallback) still has time to try someone else. A Retry-After longer than
 * retry_after_max_ms is treated the same way.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include "provisio/error.h"
#include "providers/rest/rs.h"
#include "util/rng.h"

static bool is_json(const rs_reply *rep)
{
	/* "application/json" or "application/<x>+json", parameters allowed. */
	const char *ct = rep->content_type;
	if (strncasecmp(ct, "application/", 12) != 0)
		return false;
	size_t n = strcspn(ct, "; ");
	return (n == 16 && strncasecmp(ct, "application/json", 16) == 0) ||
	       (n > 17 && strncasecmp(ct + n - 5, "+json", 5) == 0);
}

static void count_failure(rs_provider *p, const rs_err *e)
{
	atomic_uint_fast64_t *c = NULL;
	if (e->status == 429)
		c = &p->throttled;
	else if (e->status >= 500)
		c = &p->server_errors;
	else if (strcmp(e->code, PV_ERR_TIMEOUT) == 0)
		c = &p->timeouts;
	else if (strcmp(e->code, RS_ERR_BAD_RESPONSE) == 0)
		c = &p->bad_responses;
	else if (strcmp(e->code, RS_ERR_AUTH) == 0)
		c = &p->auth_failures;
	else if (!e->status)
		c = &p->transport_errors;
	if (c)
		atomic_fetch_add_explicit(c, 1, memory_order_relaxed);
}

/* One attempt: true on a 2xx JSON answer. */
static bool attempt(rs_provider *p, rs_call *c, const char *url, const char *body,
		    int64_t timeout_ms, int64_t *retry_after_ms)
{
	rs_request rq = {c->method, url, body, c->idempotency_key, timeout_ms};
	rs_reply rep = {0};
	atomic_fetch_add_explicit(&p->requests, 1, memory_order_relaxed);
	rs_http_do(&p->http, &rq, &rep);
	json_decref(c->json);
	c->json = NULL;
	c->status = rep.status;
	*retry_after_ms = rep.retry_after_ms;
	if (rep.curl == CURLE_OK && rep.body && is_json(&rep))
		c->json = json_loadb(rep.body, rep.len, JSON_REJECT_DUPLICATES, NULL);
	bool ok = rep.curl == CURLE_OK && rep.status >= 200 && rep.status < 300 && c->json;
	if (!ok) {
		char what[160];
		snprintf(what, sizeof what, "rest '%s': %s %s", p->base.name, c->method, c->path);
		rs_err_from_reply(&c->err, &rep, c->json, what);
		count_failure(p, &c->err);
	} else {
		memset(&c->err, 0, sizeof c->err);
	}
	rs_reply_clear(&rep);
	return ok;
}

/* Full jitter: uniform in [0, min(max, base * 2^n)] milliseconds. The
 * sequence number makes it deterministic for a seeded strategy without a
 * lock on a shared generator. */
static uint64_t jitter_ms(rs_provider *p, unsigned n)
{
	uint64_t cap = (uint64_t)p->cfg.backoff_base_ms;
	for (unsigned i = 0; i < n && cap < (uint64_t)p->cfg.backoff_max_ms; i++)
		cap *= 2;
	if (cap > (uint64_t)p->cfg.backoff_max_ms)
		cap = (uint64_t)p->cfg.backoff_max_ms;
	uint64_t seq = atomic_fetch_add_explicit(&p->jitter_seq, 1, memory_order_relaxed);
	return pv_mix64(p->cfg.seed ^ pv_mix64(seq + 1)) % (cap + 1);
}

bool rs_call_run(rs_provider *p, const pv_operation *op, rs_call *c)
{
	char url[4096];
	if ((size_t)snprintf(url, sizeof url, "%s%s", p->cfg.endpoint, c->path) >= sizeof url) {
		rs_err_set(&c->err, PV_ERR_INVALID_PARAMETERS, PV_CLASS_PERMANENT,
			   "rest '%s': the request URL would be longer than %zu bytes", p->base.name,
			   sizeof url);
		return false;
	}
	char *body = c->body ? json_dumps(c->body, JSON_COMPACT) : NULL;
	if (c->body && !body) {
		rs_err_set(&c->err, PV_ERR_INTERNAL, PV_CLASS_INTERNAL, "out of memory");
		return false;
	}
	c->retry_after_ms = -1;
	unsigned max_attempts = c->no_retry ? 1u : (unsigned)p->cfg.max_retries + 1u;
	bool ok = false;
	for (;;) {
		int64_t timeout_ms = p->cfg.timeout_ms;
		uint64_t now = pv_clock_now(p->clock);
		if (op->deadline_ns) {
			if (now >= op->deadline_ns) {
				if (!c->err.set || c->attempts == 0)
					rs_err_set(&c->err, PV_ERR_TIMEOUT, PV_CLASS_TRANSIENT,
						   "rest '%s': the deadline passed before %s %s was sent",
						   p->base.name, c->method, c->path);
				c->gave_up = "deadline";
				break;
			}
			int64_t left_ms = (int64_t)((op->deadline_ns - now + PV_NS_PER_MS - 1) / PV_NS_PER_MS);
			if (left_ms < timeout_ms)
				timeout_ms = left_ms;
		}
		int64_t retry_after = -1;
		c->attempts++;
		if ((ok = attempt(p, c, url, body, timeout_ms, &retry_after)))
			break;
		if (retry_after >= 0)
			c->retry_after_ms = retry_after;
		if (!c->err.retryable || c->attempts >= max_attempts)
			break;
		if (retry_after > p->cfg.retry_after_max_ms) {
			c->gave_up = "retry_after_max";
			break;
		}
		uint64_t wait_ns = (retry_after >= 0 ? (uint64_t)retry_after : jitter_ms(p, c->attempts - 1)) *
				   PV_NS_PER_MS;
		if (op->deadline_ns && pv_clock_now(p->clock) + wait_ns >= op->deadline_ns) {
			c->gave_up = "deadline";
			break;
		}
		atomic_fetch_add_explicit(&p->retries, 1, memory_order_relaxed);
		atomic_fetch_add_explicit(&p->slept_ms, wait_ns / PV_NS_PER_MS, memory_order_relaxed);
		pv_clock_sleep(p->clock, wait_ns);
		c->slept_ns += wait_ns;
	}
	free(body);
	return ok;
}

void rs_call_annotate(const rs_call *c, pv_result *out)
{
	if (c->attempts > 0)
		out->attempts = c->attempts;
	if (c->attempts > 1 || c->slept_ns)
		pv_result_meta_set(out, "backoff_ms", json_integer((json_int_t)(c->slept_ns / PV_NS_PER_MS)));
	if (c->retry_after_ms >= 0 && !out->success)
		pv_result_meta_set(out, "retry_after_ms", json_integer(c->retry_after_ms));
	if (c->gave_up && !out->success)
		pv_result_meta_set(out, "gave_up", json_string(c->gave_up));
}
