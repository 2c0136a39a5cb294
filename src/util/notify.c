/*
 * notify.c - sd_notify over $NOTIFY_SOCKET (notify.h says why no
 * libsystemd: one datagram is all it takes, and the Host Factory program
 * links no library it does not need).
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include "provisio/error.h"
#include "util/notify.h"

int pv_notify(const char *state)
{
	const char *name = getenv("NOTIFY_SOCKET");
	if (!name || !*name)
		return 0;
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	size_t len = strlen(name);
	if ((name[0] != '/' && name[0] != '@') || len < 2)
		return pv_error_set(PV_EINVAL, "NOTIFY_SOCKET '%s': not an absolute path or an @abstract name",
				    name);
	if (len >= sizeof sa.sun_path)
		return pv_error_set(PV_EINVAL, "NOTIFY_SOCKET: longer than %zu bytes", sizeof sa.sun_path - 1);
	memcpy(sa.sun_path, name, len);
	if (name[0] == '@')
		sa.sun_path[0] = '\0'; /* abstract: no file, the name follows a NUL */
	/* an abstract address is exactly as long as its name; a path ends at its NUL */
	socklen_t salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len + (name[0] == '/'));
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return pv_error_set(PV_EIO, "NOTIFY_SOCKET: socket: %s", strerror(errno));
	ssize_t n = sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&sa, salen);
	int err = errno;
	close(fd);
	if (n != (ssize_t)strlen(state))
		return pv_error_set(PV_EIO, "NOTIFY_SOCKET %s: cannot send '%s': %s", name, state,
				    n < 0 ? strerror(err) : "short write");
	return 1;
}

int pv_notify_reloading(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	char msg[96];
	snprintf(msg, sizeof msg, "RELOADING=1\nMONOTONIC_USEC=%llu",
		 (unsigned long long)ts.tv_sec * 1000000ULL + (unsigned long long)ts.tv_nsec / 1000ULL);
	return pv_notify(msg);
}

uint64_t pv_notify_watchdog_usec(void)
{
	const char *usec = getenv("WATCHDOG_USEC"), *pid = getenv("WATCHDOG_PID");
	if (!usec || !*usec)
		return 0;
	char *end;
	errno = 0;
	unsigned long long v = strtoull(usec, &end, 10);
	if (errno || *end || v == 0 || usec[0] == '-')
		return 0;
	if (pid && *pid) {
		long p = strtol(pid, &end, 10);
		if (*end || p != (long)getpid())
			return 0; /* meant for another process (the one that started us) */
	}
	return (uint64_t)v;
}
