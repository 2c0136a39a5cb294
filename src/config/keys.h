/*
 * keys.h - every key the configuration's validators accept, section by
 * section. The validators check a file against these very arrays, and
 * provisio.json(5) is generated from them (`provisio help --man 5`), so a
 * key added to a validator appears in the manual page.
 */
#ifndef PV_CONFIG_KEYS_H
#define PV_CONFIG_KEYS_H

#include <stddef.h>

/* NULL-terminated; keys starting with '_' are the loader's bookkeeping. */
extern const char *const pv_config_keys_top[];
extern const char *const pv_config_keys_graph[];
extern const char *const pv_config_keys_provider[];
extern const char *const pv_config_keys_strategy[];
extern const char *const pv_config_keys_context[];
extern const char *const pv_config_keys_criteria[];
extern const char *const pv_config_keys_spec[];
extern const char *const pv_config_keys_spec_provider[];
extern const char *const pv_config_keys_legacy[];
extern const char *const pv_config_keys_breaker[];
extern const char *const pv_config_keys_store[];
extern const char *const pv_config_keys_broker[];
extern const char *const pv_config_keys_server[];
extern const char *const pv_config_keys_server_tls[];
extern const char *const pv_config_keys_server_auth[];
extern const char *const pv_config_keys_server_token[];
extern const char *const pv_config_keys_server_alerts[];
extern const char *const pv_config_keys_server_rule[];
extern const char *const pv_config_keys_server_logging[];

/* One block of the file: where it is, what it is for, and its keys. */
typedef struct pv_config_section {
	const char *path;        /* "server.tls", "providers[]" */
	const char *about;       /* one sentence */
	const char *const *keys; /* one of the arrays above */
} pv_config_section;

/* Every section, in the order the manual page shows them; static. */
const pv_config_section *pv_config_sections(size_t *n);

#endif
