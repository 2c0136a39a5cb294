/*
 * log.h - where provisio's diagnostics go.
 *
 * By default, warnings and errors go to stderr as one line each. A program
 * can raise or lower the level or send lines elsewhere (JSON logs, syslog).
 */
#ifndef PROVISIO_LOG_H
#define PROVISIO_LOG_H

#ifdef __cplusplus
extern "C" {
#endif

typedef enum pv_log_level {
	PV_LOG_DEBUG = 0,
	PV_LOG_INFO,
	PV_LOG_WARN,
	PV_LOG_ERROR,
	PV_LOG_OFF
} pv_log_level;

typedef void (*pv_log_sink)(void *user, pv_log_level level, const char *line);

void pv_log_set_level(pv_log_level level);
pv_log_level pv_log_get_level(void);
/* NULL restores stderr. */
void pv_log_set_sink(pv_log_sink sink, void *user);
const char *pv_log_level_name(pv_log_level level);

void pv_log(pv_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#ifdef __cplusplus
}
#endif
#endif
