/*
 * log.c - one-line diagnostics to stderr or a sink the program installs.
 */
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <pthread.h>
#include "provisio/log.h"

static atomic_int log_level = PV_LOG_WARN;
static pthread_mutex_t sink_lock = PTHREAD_MUTEX_INITIALIZER;
static pv_log_sink log_sink;
static void *log_user;

void pv_log_set_level(pv_log_level level) { atomic_store(&log_level, (int)level); }
pv_log_level pv_log_get_level(void) { return (pv_log_level)atomic_load(&log_level); }

void pv_log_set_sink(pv_log_sink sink, void *user)
{
	pthread_mutex_lock(&sink_lock);
	log_sink = sink;
	log_user = user;
	pthread_mutex_unlock(&sink_lock);
}

const char *pv_log_level_name(pv_log_level level)
{
	static const char *const names[] = {"debug", "info", "warn", "error", "off"};
	return (unsigned)level <= PV_LOG_OFF ? names[level] : "unknown";
}

void pv_log(pv_log_level level, const char *fmt, ...)
{
	if ((int)level < atomic_load_explicit(&log_level, memory_order_relaxed) || level >= PV_LOG_OFF)
		return;
	char line[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	pthread_mutex_lock(&sink_lock);
	if (log_sink)
		log_sink(log_user, level, line);
	else
		fprintf(stderr, "provisio %s: %s\n", pv_log_level_name(level), line);
	pthread_mutex_unlock(&sink_lock);
}
