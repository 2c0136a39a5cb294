/*
 * error.c - the per-thread last error (libgit2's git_error_last model).
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include "provisio/error.h"
#include "util/utf8.h"

static _Thread_local char last_message[512];
static _Thread_local int last_code;

const char *pv_error_last(void) { return last_message; }
int pv_error_last_code(void) { return last_code; }

int pv_error_set(int code, const char *fmt, ...)
{
	/* Format aside first: callers may pass pv_error_last() as an argument
	 * to wrap the previous message. Cut on a character boundary and kept
	 * valid UTF-8: the message ends up in JSON answers, which refuse
	 * anything else. */
	char text[sizeof last_message];
	va_list ap;
	va_start(ap, fmt);
	pv_utf8_vformat(text, sizeof text, fmt, ap);
	va_end(ap);
	memcpy(last_message, text, sizeof text);
	last_code = code;
	return code;
}

void pv_error_clear(void)
{
	last_message[0] = '\0';
	last_code = PV_OK;
}

const char *pv_error_name(int code)
{
	switch (code) {
	case PV_OK: return "PV_OK";
	case PV_ERROR: return "PV_ERROR";
	case PV_ENOMEM: return "PV_ENOMEM";
	case PV_EINVAL: return "PV_EINVAL";
	case PV_ENOTFOUND: return "PV_ENOTFOUND";
	case PV_EEXISTS: return "PV_EEXISTS";
	case PV_ESTATE: return "PV_ESTATE";
	case PV_EUNSUPPORTED: return "PV_EUNSUPPORTED";
	case PV_EIO: return "PV_EIO";
	default: return code > 0 ? "PV_INFO" : "PV_EUNKNOWN";
	}
}
