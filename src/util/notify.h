/*
 * notify.h - the systemd notification protocol (sd_notify) for a
 * Type=notify service, without libsystemd: one datagram a message to the
 * AF_UNIX socket named by $NOTIFY_SOCKET (a path, or "@name" for the
 * abstract namespace).
 *
 * `provisio serve` says READY=1 once it listens, RELOADING=1 (with
 * MONOTONIC_USEC) and READY=1 around a SIGHUP reload, STOPPING=1 when it
 * stops, and WATCHDOG=1 every half of $WATCHDOG_USEC (docs/packaging.md).
 */
#ifndef PV_UTIL_NOTIFY_H
#define PV_UTIL_NOTIFY_H

#include <stdint.h>

/*
 * Sends `state` ("READY=1", "STOPPING=1", ...; several lines allowed) to
 * $NOTIFY_SOCKET. 1 when sent, 0 when there is no socket to tell (not run
 * by systemd), or PV_EINVAL (the variable is not an absolute path or an
 * abstract name, or too long) / PV_EIO (the send failed), with the reason
 * in pv_error_last(). Any thread.
 */
int pv_notify(const char *state);

/* "RELOADING=1" with MONOTONIC_USEC=<now on CLOCK_MONOTONIC>, as systemd
 * 253's Type=notify-reload wants; same returns as pv_notify. */
int pv_notify_reloading(void);

/*
 * The watchdog interval systemd asks for, in microseconds: $WATCHDOG_USEC
 * when it is a positive integer and $WATCHDOG_PID is unset or this
 * process; else 0 (no watchdog). Ping at half of it.
 */
uint64_t pv_notify_watchdog_usec(void);

#endif
