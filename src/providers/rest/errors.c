/*
 * errors.c - what went wrong with an HTTP call, as a result code and class.
 *
 * The class drives every decision above this provider (a fallback retries
 * transient failures, skips capacity, stops on permanent ones; a breaker
 * ignores throttling), so the mapping follows docs/api.md's contract
 * exactly: 429/5xx/network/timeouts are retryable, 401/403 are
 * AUTH_FAILED, other 4xx are permanent. A 2xx that is not the JSON we
 * expect (a proxy's HTML page, a truncated body) is BAD_RESPONSE: transient
 * for the caller (another provider may do), not retried here (asking the
 * same broken thing again rarely helps).
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include "providers/rest/rs.h"

void rs_err_set(rs_err *e, const char *code, pv_error_class cls, const char *fmt, ...)
{
	e->set = true;
	snprintf(e->code, sizeof e->code, "%s", code);
	e->cls = cls;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(e->message, sizeof e->message, fmt, ap);
	va_end(ap);
}

static void from_transport(rs_err *e, const rs_reply *rep, const char *what)
{
	switch (rep->curl) {
	case CURLE_OPERATION_TIMEDOUT:
		rs_err_set(e, PV_ERR_TIMEOUT, PV_CLASS_TRANSIENT, "%s: timed out: %s", what, rep->curl_msg);
		e->retryable = true;
		break;
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_ISSUER_ERROR:
	case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
		/* The endpoint is not who the configuration says: asking
		 * again cannot change that. */
		rs_err_set(e, RS_ERR_TLS, PV_CLASS_PERMANENT, "%s: TLS verification failed: %s", what,
			   rep->curl_msg);
		break;
	case CURLE_WRITE_ERROR:
		if (rep->too_large) {
			rs_err_set(e, RS_ERR_BAD_RESPONSE, PV_CLASS_TRANSIENT,
				   "%s: the answer is larger than max_response_bytes", what);
			break;
		}
		/* fall through */
	case CURLE_OUT_OF_MEMORY:
		rs_err_set(e, PV_ERR_INTERNAL, PV_CLASS_INTERNAL, "%s: %s", what, rep->curl_msg);
		break;
	case CURLE_UNSUPPORTED_PROTOCOL:
	case CURLE_URL_MALFORMAT:
		rs_err_set(e, PV_ERR_INVALID_PARAMETERS, PV_CLASS_PERMANENT, "%s: %s", what, rep->curl_msg);
		break;
	default:
		/* Refused, reset, unresolvable, closed without an answer, a
		 * failed TLS handshake: the endpoint may come back. */
		rs_err_set(e, RS_ERR_CONNECTION, PV_CLASS_TRANSIENT, "%s: %s", what, rep->curl_msg);
		e->retryable = true;
		break;
	}
}

/* The code and class an HTTP status means on its own. */
static void status_class(long st, const char **code, pv_error_class *cls, bool *retry)
{
	*retry = false;
	if (st == 401 || st == 403) {
		*code = RS_ERR_AUTH;
		*cls = PV_CLASS_PERMANENT;
	} else if (st == 400 || st == 413 || st == 422) {
		*code = PV_ERR_INVALID_PARAMETERS;
		*cls = PV_CLASS_PERMANENT;
	} else if (st == 404) {
		*code = PV_ERR_NOT_FOUND;
		*cls = PV_CLASS_PERMANENT;
	} else if (st == 409) {
		*code = RS_ERR_CONFLICT;
		*cls = PV_CLASS_PERMANENT;
	} else if (st == 429) {
		*code = PV_ERR_THROTTLED;
		*cls = PV_CLASS_THROTTLED;
		*retry = true;
	} else if (st >= 500 && st <= 599) {
		*code = RS_ERR_SERVER;
		*cls = PV_CLASS_TRANSIENT;
		*retry = true;
	} else if (st >= 400 && st <= 499) {
		*code = RS_ERR_REJECTED;
		*cls = PV_CLASS_PERMANENT;
	} else {
		/* 1xx/3xx/2xx without the JSON we need: not the service we
		 * were told about (redirects are not followed). */
		*code = RS_ERR_BAD_RESPONSE;
		*cls = PV_CLASS_TRANSIENT;
	}
}

/* The code a provisio broker puts in the message of a failed request
 * ("... could be provisioned: CAPACITY: no room"); per thread. */
static _Thread_local char embedded[PV_RESULT_CODE_MAX];

static const char *embedded_code(const char *msg)
{
	const char *p = msg ? strstr(msg, "provisioned: ") : NULL;
	if (!p)
		return NULL;
	p += strlen("provisioned: ");
	size_t n = strspn(p, "ABCDEFGHIJKLMNOPQRSTUVWXYZ_");
	if (n < 3 || n >= sizeof embedded || p[n] != ':')
		return NULL;
	memcpy(embedded, p, n);
	embedded[n] = '\0';
	return embedded;
}

/* The class of a code another provisio reported. */
static pv_error_class remote_class(const char *code)
{
	static const char *const transient[] = {RS_ERR_CONNECTION, RS_ERR_UNHEALTHY, RS_ERR_SERVER,
						"CIRCUIT_OPEN", PV_ERR_EXECUTION_ERROR, NULL};
	for (const char *const *t = transient; *t; t++)
		if (strcmp(code, *t) == 0)
			return PV_CLASS_TRANSIENT;
	return pv_error_code_class(code);
}

void rs_err_from_reply(rs_err *e, const rs_reply *rep, const json_t *json, const char *what)
{
	memset(e, 0, sizeof *e);
	if (rep->curl != CURLE_OK) {
		from_transport(e, rep, what);
		return;
	}
	e->status = rep->status;
	const char *code;
	pv_error_class cls;
	status_class(rep->status, &code, &cls, &e->retryable);
	const json_t *err = json_object_get(json, "error");
	const char *rcode = json_string_value(json_object_get(err, "code"));
	const char *rmsg = json_string_value(json_object_get(err, "message"));
	const char *field = json_string_value(json_object_get(err, "field"));
	if (rcode)
		snprintf(e->remote_code, sizeof e->remote_code, "%s", rcode);
	if (field)
		snprintf(e->field, sizeof e->field, "%s", field);
	/* The remote's own verdict on why its providers failed is worth
	 * keeping: "full" sends a fallback elsewhere instead of retrying. */
	const char *inner = rcode && strcmp(rcode, "PROVISIONING_FAILED") == 0 ? embedded_code(rmsg) : NULL;
	if (rcode && strcmp(rcode, PV_ERR_CAPACITY) == 0 && rep->status >= 400)
		inner = PV_ERR_CAPACITY;
	if (inner) {
		code = inner;
		cls = remote_class(inner);
		e->retryable = cls == PV_CLASS_TRANSIENT || cls == PV_CLASS_THROTTLED;
	}
	if (rep->status >= 200 && rep->status < 300)
		rs_err_set(e, code, cls, "%s: HTTP %ld with a body that is not the expected JSON "
			   "(content type '%s')", what, rep->status,
			   rep->content_type[0] ? rep->content_type : "none");
	else if (rmsg)
		rs_err_set(e, code, cls, "%s: HTTP %ld %s%s%s%s%s", what, rep->status, rcode ? rcode : "",
			   rcode ? ": " : "", rmsg, field ? " (field " : "", field ? field : "");
	else
		rs_err_set(e, code, cls, "%s: HTTP %ld", what, rep->status);
	if (field && rmsg) {
		size_t n = strlen(e->message);
		if (n + 1 < sizeof e->message)
			snprintf(e->message + n, sizeof e->message - n, ")");
	}
}

void rs_err_to_result(const rs_err *e, pv_result *out)
{
	pv_result_fail(out, e->code, e->cls, "%s", e->message);
	if (e->status)
		pv_result_meta_set(out, "http_status", json_integer(e->status));
	if (e->remote_code[0])
		pv_result_meta_set(out, "remote_code", json_string(e->remote_code));
	if (e->field[0])
		pv_result_meta_set(out, "remote_field", json_string(e->field));
}
