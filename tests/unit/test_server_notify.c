/*
 * test_server_notify.c - the systemd notification protocol (util/notify.h)
 * on real AF_UNIX datagram sockets: a path and an abstract name, the
 * watchdog interval, and `provisio serve` as a Type=notify service would
 * run it: READY=1 once it listens, WATCHDOG=1 pings, RELOADING=1 with
 * MONOTONIC_USEC then READY=1 on SIGHUP, STOPPING=1 on SIGTERM.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <cmocka.h>
#include "child_process.h"
#include "test_server_support.h"
#include "util/notify.h"
#include "wait.h"

/* A datagram socket bound to `name` ("/path" or "@abstract"), as systemd
 * makes for a Type=notify service. */
static int listen_at(const char *name)
{
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	size_t len = strlen(name);
	memcpy(sa.sun_path, name, len);
	if (name[0] == '@')
		sa.sun_path[0] = '\0';
	socklen_t salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len + (name[0] == '/'));
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, salen), 0);
	return fd;
}

/* The next datagram, or "" when none came within the tests' patience. */
static void next_message(int fd, char *out, size_t size)
{
	out[0] = '\0';
	struct pollfd p = {.fd = fd, .events = POLLIN};
	if (poll(&p, 1, PV_TEST_PATIENCE_S * 1000) != 1)
		return;
	ssize_t n = recv(fd, out, size - 1, 0);
	out[n > 0 ? n : 0] = '\0';
}

static void sends_to_a_path_socket(void **state)
{
	(void)state;
	char dir[256], name[300], got[256];
	assert_int_equal(pv_test_scratch_make(dir, sizeof dir, "pv_notify_"), 0);
	snprintf(name, sizeof name, "%s/notify", dir);
	int fd = listen_at(name);
	setenv("NOTIFY_SOCKET", name, 1);
	assert_int_equal(pv_notify("READY=1\nSTATUS=up"), 1);
	next_message(fd, got, sizeof got);
	assert_string_equal(got, "READY=1\nSTATUS=up");
	close(fd);
	unlink(name);
	rmdir(dir);
	unsetenv("NOTIFY_SOCKET");
}

static void sends_to_an_abstract_socket(void **state)
{
	(void)state;
	char name[64], got[256];
	snprintf(name, sizeof name, "@pv-notify-test-%d", (int)getpid());
	int fd = listen_at(name);
	setenv("NOTIFY_SOCKET", name, 1);
	assert_int_equal(pv_notify_reloading(), 1);
	next_message(fd, got, sizeof got);
	assert_non_null(strstr(got, "RELOADING=1\nMONOTONIC_USEC="));
	/* MONOTONIC_USEC is now on CLOCK_MONOTONIC, as systemd compares it */
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	unsigned long long sent = strtoull(strstr(got, "MONOTONIC_USEC=") + strlen("MONOTONIC_USEC="), NULL, 10);
	unsigned long long now = (unsigned long long)ts.tv_sec * 1000000ULL + (unsigned long long)ts.tv_nsec / 1000;
	assert_true(sent > 0 && sent <= now);
	close(fd);
	unsetenv("NOTIFY_SOCKET");
}

static void without_a_socket_nothing_is_sent(void **state)
{
	(void)state;
	unsetenv("NOTIFY_SOCKET");
	assert_int_equal(pv_notify("READY=1"), 0);
	setenv("NOTIFY_SOCKET", "relative/path", 1);
	assert_int_equal(pv_notify("READY=1"), PV_EINVAL);
	assert_non_null(strstr(pv_error_last(), "NOTIFY_SOCKET"));
	setenv("NOTIFY_SOCKET", "/nonexistent-dir-pv/notify", 1);
	assert_int_equal(pv_notify("READY=1"), PV_EIO);
	unsetenv("NOTIFY_SOCKET");
}

static void watchdog_interval_is_read_for_this_process_only(void **state)
{
	(void)state;
	unsetenv("WATCHDOG_PID");
	unsetenv("WATCHDOG_USEC");
	assert_int_equal(pv_notify_watchdog_usec(), 0);
	setenv("WATCHDOG_USEC", "3000000", 1);
	assert_int_equal(pv_notify_watchdog_usec(), 3000000);
	char pid[32];
	snprintf(pid, sizeof pid, "%d", (int)getpid());
	setenv("WATCHDOG_PID", pid, 1);
	assert_int_equal(pv_notify_watchdog_usec(), 3000000);
	snprintf(pid, sizeof pid, "%d", (int)getpid() + 1);
	setenv("WATCHDOG_PID", pid, 1);
	assert_int_equal(pv_notify_watchdog_usec(), 0); /* meant for another process */
	unsetenv("WATCHDOG_PID");
	setenv("WATCHDOG_USEC", "soon", 1);
	assert_int_equal(pv_notify_watchdog_usec(), 0);
	unsetenv("WATCHDOG_USEC");
}

/* The next message that is not a watchdog ping; counts the pings seen. */
static void next_state(int fd, char *out, size_t size, int *pings)
{
	for (;;) {
		next_message(fd, out, size);
		if (strcmp(out, "WATCHDOG=1") != 0)
			return;
		(*pings)++;
	}
}

static void serve_speaks_the_protocol_through_its_life(void **state)
{
	(void)state;
	ts_env e;
	ts_env_init(&e);
	ts_config(&e, NULL, NULL, NULL);
	char name[64], got[512];
	snprintf(name, sizeof name, "@pv-notify-serve-%d", (int)getpid());
	int fd = listen_at(name);
	pid_t parent = getpid();
	pid_t pid = fork();
	if (pid == 0) {
		pv_test_die_with_parent(parent);
		int nul = open("/dev/null", O_WRONLY);
		dup2(nul, 1);
		dup2(nul, 2);
		setenv("NOTIFY_SOCKET", name, 1);
		setenv("WATCHDOG_USEC", "200000", 1); /* a ping every 0.1 s */
		unsetenv("WATCHDOG_PID");
		execl(PV_CLI_BIN, "provisio", "--config", e.config, "serve", (char *)NULL);
		_exit(127);
	}
	int pings = 0;
	next_state(fd, got, sizeof got, &pings);
	assert_non_null(strstr(got, "READY=1"));
	assert_non_null(strstr(got, "STATUS=listening on http://127.0.0.1:"));
	/* the watchdog pings keep coming while it runs */
	while (pings < 3) {
		next_message(fd, got, sizeof got);
		assert_string_equal(got, "WATCHDOG=1");
		pings++;
	}
	kill(pid, SIGHUP);
	next_state(fd, got, sizeof got, &pings);
	assert_non_null(strstr(got, "RELOADING=1\nMONOTONIC_USEC="));
	next_state(fd, got, sizeof got, &pings);
	assert_string_equal(got, "READY=1");
	kill(pid, SIGTERM);
	next_state(fd, got, sizeof got, &pings);
	assert_string_equal(got, "STOPPING=1");
	int st = 0;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	close(fd);
	ts_env_clear(&e);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(sends_to_a_path_socket),
		cmocka_unit_test(sends_to_an_abstract_socket),
		cmocka_unit_test(without_a_socket_nothing_is_sent),
		cmocka_unit_test(watchdog_interval_is_read_for_this_process_only),
		cmocka_unit_test(serve_speaks_the_protocol_through_its_life),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
