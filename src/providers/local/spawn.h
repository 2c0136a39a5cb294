/*
 * spawn.h - detached supervised processes for the local provider.
 */
#ifndef PV_LOCAL_SPAWN_H
#define PV_LOCAL_SPAWN_H

#include <stdbool.h>
#include <sys/types.h>

/* Starts a detached supervisor that, once told to go, runs `/bin/sh -c
 * command`; SIGTERM to the supervisor stops the command (SIGKILL after
 * grace_ms). 0, the supervisor's pid and the descriptor that tells it to go
 * (pv_local_go), or -1 (errno). Until then the command does not run, and
 * if the descriptor closes without a go (the caller died) it never will:
 * the supervisor exits. */
int pv_local_spawn(const char *command, long grace_ms, pid_t *out, int *go);

/* Lets the supervisor of `go` run its command (start) or not (it exits),
 * and closes `go`. 0, or -1 when the go could not be given. */
int pv_local_go(int go, bool start);

/* Start time of a process (clock ticks since boot, /proc/PID/stat field
 * 22); 0 when it does not exist or is a zombie. */
unsigned long long pv_local_start_time(pid_t pid);

/* True when `pid` is still the process that started at `start_time`. */
bool pv_local_alive(pid_t pid, unsigned long long start_time);

#endif
