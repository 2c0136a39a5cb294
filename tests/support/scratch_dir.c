/*
 * scratch_dir.c - see scratch_dir.h.
 */
#define _XOPEN_SOURCE 700
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include "scratch_dir.h"

int pv_test_scratch_make(char *dir, size_t size, const char *prefix)
{
	int n = snprintf(dir, size, "/tmp/%sXXXXXX", prefix);
	return n > 0 && (size_t)n < size && mkdtemp(dir) ? 0 : -1;
}

static int remove_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

int pv_test_scratch_remove(const char *dir)
{
	return nftw(dir, remove_one, 16, FTW_DEPTH | FTW_PHYS) == 0 ? 0 : -1;
}
