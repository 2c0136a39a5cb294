/*
 * errors.c - libvirt's errors in provisio's terms, and domain states.
 *
 * libvirt reports failures through a per-thread "last error" and, unless
 * told otherwise, prints each one to stderr. A library must not write to the
 * caller's stderr (Host Factory reads stdout and logs stderr), so a quiet
 * handler replaces the printing and each failure is captured right after
 * the call into an lv_err, whose code and class drive the kernel's retry
 * and fallback decisions: a host that cannot be reached is transient (try
 * again, or another provider), bad XML or a missing network is permanent.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <libvirt/virterror.h>
#include <libxml/parser.h>
#include "provisio/error.h"
#include "providers/libvirt/lv.h"

static void quiet_handler(void *user, virErrorPtr err)
{
	(void)user;
	(void)err; /* captured by the caller with virGetLastError */
}

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static int global_rc;

static void global_init_once(void)
{
	/* libxml2 wants its parser initialized before threads use it. */
	xmlInitParser();
	virSetErrorFunc(NULL, quiet_handler);
	global_rc = virInitialize() < 0 ? PV_ERROR : 0;
}

int lv_global_init(void)
{
	pthread_once(&global_once, global_init_once);
	if (global_rc < 0)
		return pv_error_set(PV_ERROR, "libvirt: virInitialize failed");
	return 0;
}

/* ---- classification ----------------------------------------------------- */

static bool is_connection_code(int code, int domain)
{
	switch (code) {
	case VIR_ERR_NO_CONNECT:
	case VIR_ERR_INVALID_CONN:
	case VIR_ERR_RPC:
	case VIR_ERR_UNKNOWN_HOST:
	case VIR_ERR_SSH:
	case VIR_ERR_LIBSSH:
	case VIR_ERR_GNUTLS_ERROR:
	case VIR_ERR_NO_SERVER:
		return true;
	case VIR_ERR_SYSTEM_ERROR: /* a socket failure when it comes from the RPC layer */
		return domain == VIR_FROM_RPC || domain == VIR_FROM_REMOTE;
	default:
		return false;
	}
}

static void classify(int code, int domain, char *pv_code, pv_error_class *cls)
{
	const char *c = PV_ERR_EXECUTION_ERROR;
	pv_error_class k = PV_CLASS_TRANSIENT;
	if (is_connection_code(code, domain)) {
		c = LV_ERR_CONNECTION;
	} else {
		switch (code) {
		case VIR_ERR_AUTH_FAILED:
		case VIR_ERR_AUTH_CANCELLED:
		case VIR_ERR_AUTH_UNAVAILABLE:
		case VIR_ERR_ACCESS_DENIED:
		case VIR_ERR_OPERATION_DENIED:
			c = LV_ERR_AUTH;
			k = PV_CLASS_PERMANENT;
			break;
		case VIR_ERR_XML_ERROR:
		case VIR_ERR_XML_DETAIL:
		case VIR_ERR_XML_INVALID_SCHEMA:
		case VIR_ERR_INVALID_ARG:
		case VIR_ERR_CONFIG_UNSUPPORTED:
		case VIR_ERR_OS_TYPE:
		case VIR_ERR_NO_NAME:
		case VIR_ERR_NO_OS:
		case VIR_ERR_NO_SOURCE:
		case VIR_ERR_NO_TARGET:
		case VIR_ERR_NO_NETWORK:
		case VIR_ERR_NO_STORAGE_POOL:
		case VIR_ERR_NO_STORAGE_VOL:
		case VIR_ERR_INVALID_MAC:
		case VIR_ERR_CPU_INCOMPATIBLE:
		case VIR_ERR_DOM_EXIST:
			c = PV_ERR_INVALID_PARAMETERS;
			k = PV_CLASS_PERMANENT;
			break;
		case VIR_ERR_NO_SUPPORT:
		case VIR_ERR_OPERATION_UNSUPPORTED:
		case VIR_ERR_ARGUMENT_UNSUPPORTED:
			c = PV_ERR_OPERATION_NOT_SUPPORTED;
			k = PV_CLASS_PERMANENT;
			break;
		case VIR_ERR_NO_DOMAIN:
			c = PV_ERR_NOT_FOUND;
			k = PV_CLASS_PERMANENT;
			break;
		default: /* timeouts, busy resources, agents, failed starts: may pass */
			break;
		}
	}
	snprintf(pv_code, PV_RESULT_CODE_MAX, "%s", c);
	*cls = k;
}

/* ---- capture ------------------------------------------------------------ */

static void capture(lv_err *e, bool open_failure, const char *fmt, va_list ap)
{
	char what[256];
	vsnprintf(what, sizeof what, fmt, ap);
	virErrorPtr ve = virGetLastError();
	e->set = true;
	e->host_scoped = false;
	e->vir_code = ve ? ve->code : 0;
	e->vir_domain = ve ? ve->domain : 0;
	snprintf(e->message, sizeof e->message, "%s: %s", what,
		 ve && ve->message ? ve->message : "unknown libvirt error");
	classify(e->vir_code, e->vir_domain, e->code, &e->cls);
	if (open_failure && strcmp(e->code, LV_ERR_AUTH) != 0) {
		/* Any other failure to open (no driver for the URI, refused,
		 * daemon down) is a connection problem: another host or a later
		 * try may work. */
		snprintf(e->code, sizeof e->code, "%s", LV_ERR_CONNECTION);
		e->cls = PV_CLASS_TRANSIENT;
	}
	virResetLastError();
}

void lv_err_capture(lv_err *e, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	capture(e, false, fmt, ap);
	va_end(ap);
}

static void capture_open(lv_err *e, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	capture(e, true, fmt, ap);
	va_end(ap);
}

void lv_err_capture_open(lv_err *e, const char *uri)
{
	capture_open(e, "cannot connect to '%s'", uri);
}

void lv_err_set(lv_err *e, const char *code, pv_error_class cls, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(e->message, sizeof e->message, fmt, ap);
	va_end(ap);
	e->set = true;
	e->host_scoped = false;
	e->vir_code = 0;
	e->vir_domain = 0;
	snprintf(e->code, sizeof e->code, "%s", code);
	e->cls = cls;
}

bool lv_err_is_connection(const lv_err *e)
{
	return e->set && (strcmp(e->code, LV_ERR_CONNECTION) == 0 ||
			  is_connection_code(e->vir_code, e->vir_domain));
}

void lv_err_to_result(const lv_err *e, pv_result *out)
{
	if (!e->set) {
		pv_result_fail(out, PV_ERR_EXECUTION_ERROR, PV_CLASS_TRANSIENT, "libvirt: unknown failure");
		return;
	}
	pv_result_fail(out, e->code, e->cls, "%s", e->message);
	if (e->vir_code)
		pv_result_meta_set(out, "libvirt_error", json_integer(e->vir_code));
}

json_t *lv_err_to_json(const lv_err *e)
{
	return json_pack("{s:s, s:s, s:s}", "code", e->code, "class", pv_error_class_name(e->cls),
			 "message", e->message);
}

/* ---- domain states ------------------------------------------------------ */

const char *lv_domain_state_name(int s)
{
	static const char *const names[] = {"nostate", "running", "blocked", "paused",
					    "shutdown", "shutoff", "crashed", "pmsuspended"};
	return s >= 0 && (size_t)s < sizeof names / sizeof names[0] ? names[s] : "unknown";
}

const char *pv_libvirt_machine_state(int vir_state, int reason)
{
	switch (vir_state) {
	case VIR_DOMAIN_NOSTATE:
		return "pending";
	case VIR_DOMAIN_RUNNING:
	case VIR_DOMAIN_BLOCKED: /* waiting on a resource, still a live machine */
		return "running";
	case VIR_DOMAIN_PAUSED:
		/* Paused while booting or migrating comes back by itself. */
		if (reason == VIR_DOMAIN_PAUSED_STARTING_UP || reason == VIR_DOMAIN_PAUSED_MIGRATION ||
		    reason == VIR_DOMAIN_PAUSED_POSTCOPY)
			return "pending";
		return "stopped";
	case VIR_DOMAIN_SHUTDOWN:
		return "stopping";
	case VIR_DOMAIN_SHUTOFF:
	case VIR_DOMAIN_PMSUSPENDED:
		return "stopped";
	case VIR_DOMAIN_CRASHED: /* the machine is gone; on_crash keeps only its definition */
		return "terminated";
	default:
		return "pending";
	}
}
