/*
 * scratch_dir.h - the temporary directory a test group works in: made in
 * its setup, removed with everything below it in its teardown (with nftw,
 * not a shell, so a path is never interpreted).
 */
#ifndef PV_TEST_SCRATCH_DIR_H
#define PV_TEST_SCRATCH_DIR_H

#include <stddef.h>

/* A new directory /tmp/<prefix>XXXXXX, its path in dir. 0 or -1. */
int pv_test_scratch_make(char *dir, size_t size, const char *prefix);

/* Removes dir and everything below it. 0 or -1. */
int pv_test_scratch_remove(const char *dir);

#endif
