/*
 * spawn.h - detached supervised processes for the local provider.
 */
#ifndef PV_LOCAL_SPAWN_H
#define PV_LOCAL_SPAWN_H

#include <stdbool.h>
#include <sys/types.h>

/* Starts a detached supervisor running `/bin/sh -c command`; SIGTERM to
 * the supervisor stops the command (SIGKILL after grace_ms). 0 and the
 * supervisor's pid, or -1 (errno). */
int pv_local_spawn(const char *command, long grace_ms, pid_t *out);

/* Start time of a process (clock ticks since boot, /proc/PID/stat field
 * 22); 0 when it does not exist or is a zombie. */
unsigned long long pv_local_start_time(pid_t pid);

/* True when `pid` is still the process that started at `start_time`. */
bool pv_local_alive(pid_t pid, unsigned long long start_time);

#endif
