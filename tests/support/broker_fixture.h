/*
 * broker_fixture.h - the world the broker tests stand in, built here once
 * instead of once per test file: a scratch directory for the test group,
 * sim providers registered in an initialized context, SQLite store files in
 * that directory, a broker over them, the files a configured process reads,
 * and the small steps those tests repeat (a Host Factory command from JSON
 * text, the requests in the store, a key of the store, a dead pid).
 *
 * Each test file keeps its own fixture struct (its tests poke at different
 * objects: two sims and a fallback, one sim and two brokers, ...) and builds
 * it from these calls. Every call asserts (cmocka) what it needs, so a
 * failed set-up fails the test where it happened, and tests read as their
 * checks.
 */
#ifndef PV_TEST_BROKER_FIXTURE_H
#define PV_TEST_BROKER_FIXTURE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include "provisio/provisio.h"

/* ---- the group's scratch directory ----------------------------------------------- */

/* The directory of the running test group (bf_group_setup made it). */
extern char bf_dir[256];

/* cmocka group setup and teardown: make bf_dir, /tmp/pv_<program>_XXXXXX,
 * and remove it with everything below it. 0 or -1. */
int bf_group_setup(void **state);
int bf_group_teardown(void **state);

/* A fresh store path in bf_dir: "<bf_dir>/<stem><n>.db", n counting up
 * over the whole program so no two tests share a file by accident. */
void bf_db_path(char *out, size_t size, const char *stem);

/* ---- building the world -------------------------------------------------------- */

/* JSON text parsed (asserted). The caller owns the reference. */
json_t *bf_json(const char *text);

/* A sim provider from its JSON configuration (NULL = "{}"). The caller owns
 * the reference (pv_strategy_unref). */
pv_strategy *bf_sim(const char *name, const char *config, const pv_clock *clock);

/* A context (clock NULL = system) with `strategies` registered in this
 * order and initialized. Registration takes its own references; the caller
 * owns the context (pv_context_free). */
pv_context *bf_context(const pv_clock *clock, pv_strategy *const *strategies, size_t n);

/* The SQLite store at `path`, opened (asserted). The caller closes it. */
pv_store *bf_store(const char *path);

/* pv_broker_new over `setup`, asserted to succeed; `templates` (JSON text)
 * replaces setup->templates when not NULL. The caller closes the broker. */
pv_broker *bf_broker(const pv_broker_setup *setup, const char *templates);

/* Closes the broker, then its store (either may be NULL). */
void bf_close(pv_broker *b, pv_store *st);

/* Frees the context, then drops the caller's reference on each strategy. */
void bf_release(pv_context *ctx, pv_strategy *const *strategies, size_t n);

/* ---- steps the tests repeat ------------------------------------------------------ */

/* A Host Factory command with JSON text input; its return code. The
 * answer (asserted non-NULL) is the caller's to json_decref. */
int bf_hf(pv_broker *b, pv_hf_command c, const char *input, json_t **out);

/* requestMachines of `count` machines of template `tmpl`, asserted to
 * succeed; the request id (caller frees). When `answer` is not NULL it
 * gets the whole answer (caller json_decrefs it). */
char *bf_hf_request(pv_broker *b, const char *tmpl, int count, json_t **answer);

/* How many requests (of every kind and state) the store holds. */
size_t bf_count_requests(pv_store *st);

/* The store's value of `key` (caller frees) or NULL when it has none. */
char *bf_kv_get(pv_store *st, const char *key);

/* Writes `key` = `value` in its own transaction. */
void bf_kv_put(pv_store *st, const char *key, const char *value);

/* The pid of a child that has exited and been reaped: surely not running. */
pid_t bf_dead_pid(void);

/* ---- files ------------------------------------------------------------------------- */

/* Writes `text` to `path` (asserted), replacing what was there. */
void bf_write_file(const char *path, const char *text);

/* Reads `path` into buf (NUL-terminated, at most size - 1 bytes); the
 * length read, asserted to be readable. */
size_t bf_read_file(const char *path, char *buf, size_t size);

/* Whether the file at `path` exists and its first 64 KiB contain `needle`. */
bool bf_file_has(const char *path, const char *needle);

#endif
