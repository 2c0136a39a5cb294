/*
 * error.h - return codes and the last error message of the calling thread.
 *
 * Every provisio function that can fail returns 0 on success or a negative
 * PV_E* code, and leaves a human-readable message for the calling thread
 * (libgit2's model). Messages never contain secrets.
 */
#ifndef PROVISIO_ERROR_H
#define PROVISIO_ERROR_H

#ifdef __cplusplus
extern "C" {
#endif

enum {
	PV_OK = 0,
	PV_ERROR = -1,        /* generic failure */
	PV_ENOMEM = -2,       /* out of memory */
	PV_EINVAL = -3,       /* invalid argument or configuration value */
	PV_ENOTFOUND = -4,    /* no such name */
	PV_EEXISTS = -5,      /* name already taken */
	PV_ESTATE = -6,       /* object not in a state that allows the call */
	PV_EUNSUPPORTED = -7, /* operation not supported */
	PV_EIO = -8,          /* file or network failure */
};

/* The message of the last error on this thread, "" when none. Borrowed:
 * valid until the next provisio call on this thread. */
const char *pv_error_last(void);

/* The code of the last error on this thread, PV_OK when none. */
int pv_error_last_code(void);

/* Records an error for this thread and returns `code` (printf-style). */
int pv_error_set(int code, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Forgets the last error of this thread. */
void pv_error_clear(void);

/* A short name for a PV_E* code ("PV_EINVAL"). */
const char *pv_error_name(int code);

#ifdef __cplusplus
}
#endif
#endif
