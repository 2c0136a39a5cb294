/*
 * spawn.c - starting and checking the supervised processes of the local
 * provider.
 *
 * After fork, the children call only async-signal-safe functions (the
 * caller may have threads), with every string prepared before the fork.
 * The double fork detaches the supervisor from the caller: the caller
 * reaps the short-lived middle child at once and never sees the machine
 * again except through its pid.
 *
 * The supervisor waits for a "go" from the caller before it runs the
 * command: the caller gives it once the machine's record names the
 * supervisor. A caller that dies first never gives it (the socket closes), and
 * the supervisor exits without running anything, so no machine runs that
 * its record does not name.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "providers/local/spawn.h"

/* Waits for the command; on SIGTERM/SIGINT stops it gracefully. Never returns. */
static void supervise(const char *command, long grace_ms)
{
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGCHLD);
	sigprocmask(SIG_BLOCK, &set, NULL);
	pid_t c = fork();
	if (c == 0) {
		sigprocmask(SIG_UNBLOCK, &set, NULL);
		setpgid(0, 0);
		execl("/bin/sh", "sh", "-c", command, (char *)NULL);
		_exit(127);
	}
	if (c < 0)
		_exit(1);
	setpgid(c, c);
	struct timespec tick = {1, 0};
	for (;;) {
		int sig = sigtimedwait(&set, NULL, &tick);
		if (waitpid(c, NULL, WNOHANG) == c)
			_exit(0); /* the command ended by itself: the machine is gone */
		if (sig != SIGTERM && sig != SIGINT)
			continue;
		kill(-c, SIGTERM);
		for (long waited = 0; waited < grace_ms; waited += 50) {
			struct timespec step = {0, 50 * 1000000L};
			sigtimedwait(&set, NULL, &step);
			if (waitpid(c, NULL, WNOHANG) == c)
				_exit(0);
		}
		kill(-c, SIGKILL);
		waitpid(c, NULL, 0);
		_exit(0);
	}
}

/* Blocks until the caller says go (1) or is gone (0: the pipe closed). */
static int await_go(int fd)
{
	char c;
	ssize_t r;
	do
		r = read(fd, &c, 1);
	while (r < 0 && errno == EINTR);
	close(fd);
	return r == 1;
}

int pv_local_spawn(const char *command, long grace_ms, pid_t *out, int *go)
{
	int fds[2], gofds[2];
	if (pipe2(fds, O_CLOEXEC) < 0)
		return -1;
	/* a socket, not a pipe: a go to a supervisor that died is an error
	 * (MSG_NOSIGNAL), never a SIGPIPE in the caller */
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, gofds) < 0) {
		close(fds[0]);
		close(fds[1]);
		return -1;
	}
	pid_t a = fork();
	if (a < 0) {
		close(fds[0]);
		close(fds[1]);
		close(gofds[0]);
		close(gofds[1]);
		return -1;
	}
	if (a == 0) {
		/* detach before the supervisor exists, so it never holds the caller's
		 * stdio, the store or Host Factory's pipes, even for an instant */
		setsid();
		int null = open("/dev/null", O_RDWR);
		dup2(null, 0);
		dup2(null, 1);
		dup2(null, 2);
		for (int fd = 3; fd < 4096; fd++)
			if (fd != fds[1] && fd != gofds[0])
				close(fd);
		pid_t s = fork();
		if (s == 0) {
			close(fds[1]);
			if (!await_go(gofds[0]))
				_exit(0); /* the caller died before it recorded us: no machine */
			supervise(command, grace_ms);
		}
		ssize_t w = write(fds[1], &s, sizeof s);
		_exit(w == (ssize_t)sizeof s && s > 0 ? 0 : 1);
	}
	close(fds[1]);
	close(gofds[0]);
	pid_t s = -1;
	ssize_t r;
	do
		r = read(fds[0], &s, sizeof s);
	while (r < 0 && errno == EINTR);
	close(fds[0]);
	int status = 0;
	while (waitpid(a, &status, 0) < 0 && errno == EINTR)
		;
	if (r != (ssize_t)sizeof s || s <= 0) {
		close(gofds[1]);
		return -1;
	}
	*out = s;
	*go = gofds[1];
	return 0;
}

int pv_local_go(int go, bool start)
{
	ssize_t w = 0;
	if (start)
		do
			w = send(go, "g", 1, MSG_NOSIGNAL);
		while (w < 0 && errno == EINTR);
	close(go);
	return !start || w == 1 ? 0 : -1;
}

unsigned long long pv_local_start_time(pid_t pid)
{
	char path[64], buf[1024];
	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return 0;
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = '\0';
	char *p = strrchr(buf, ')'); /* the command name may hold spaces and parentheses */
	if (!p || p[1] != ' ')
		return 0;
	char state = p[2];
	if (state == 'Z' || state == 'X')
		return 0; /* exited, not yet reaped: gone for our purposes */
	p += 2;
	/* fields after ')' start at 3 (state); starttime is field 22 */
	for (int field = 3; field < 22 && p; field++) {
		p = strchr(p, ' ');
		if (p)
			p++;
	}
	return p ? strtoull(p, NULL, 10) : 0;
}

bool pv_local_alive(pid_t pid, unsigned long long start_time)
{
	return pid > 0 && start_time && pv_local_start_time(pid) == start_time;
}
