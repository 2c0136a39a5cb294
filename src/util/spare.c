/*
 * spare.c - one block kept per thread (see spare.h).
 */
#include <pthread.h>
#include <stdalign.h>
#include <stdbool.h>
#include <stdlib.h>
#include "util/spare.h"

typedef struct block {
	alignas(max_align_t) size_t size; /* usable bytes after the header */
} block;

static _Thread_local block *spare;
static _Thread_local bool registered; /* spare_key is set: the spare is freed at exit */
static pthread_key_t spare_key;
static pthread_once_t spare_once = PTHREAD_ONCE_INIT;

/* At thread exit (the thread's own variables are still there). */
static void spare_exit(void *unused)
{
	(void)unused;
	free(spare);
	spare = NULL;
}

static void spare_key_create(void) { pthread_key_create(&spare_key, spare_exit); }

void *pv_spare_alloc(size_t size)
{
	block *b = spare;
	if (b && b->size >= size) {
		spare = NULL;
		return b + 1;
	}
	if (!(b = malloc(sizeof *b + size)))
		return NULL;
	b->size = size;
	return b + 1;
}

void pv_spare_free(void *p)
{
	if (!p)
		return;
	block *b = (block *)p - 1;
	if (!registered) {
		pthread_once(&spare_once, spare_key_create);
		registered = pthread_setspecific(spare_key, &registered) == 0;
	}
	if (!registered || (spare && spare->size >= b->size)) {
		free(b);
		return;
	}
	if (spare)
		free(spare);
	spare = b;
}
