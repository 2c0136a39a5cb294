/*
 * child_process.h - for tests that fork a server (the EC2 emulator,
 * provisio serve): the child dies with the test. Without it a test that
 * fails an assertion (cmocka longjmps past the cleanup) leaves the server
 * running, and a server holding the test's output pipe keeps ctest, or a
 * shell reading it, waiting forever.
 */
#ifndef PV_TEST_CHILD_PROCESS_H
#define PV_TEST_CHILD_PROCESS_H

#include <signal.h>
#include <sys/prctl.h>
#include <unistd.h>

/* Call in the child right after fork(); `parent` is getpid() taken before
 * the fork (so a parent that already died is noticed too). */
static inline void pv_test_die_with_parent(pid_t parent)
{
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent)
		_exit(125);
}

#endif
