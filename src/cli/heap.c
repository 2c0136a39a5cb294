/*
 * heap.c - the heap of a short command in 2 MiB pages.
 *
 * Host Factory starts one process per call, and on a virtual machine much
 * of such a process's time goes to page faults: the first touch of every
 * 4 KiB page is a trap and a page-table update (about 18 us each on the
 * project's VM, where a getRequestStatus of 1,000 machines touched 670
 * pages). With its heap in transparent huge pages a call takes one fault
 * per 2 MiB instead (docs/hostfactory.md, "Cost of a call").
 *
 * glibc grows its heap with brk, and a huge page needs a 2 MiB-aligned
 * range advised MADV_HUGEPAGE before its first touch. So, before the first
 * malloc: the break moves to 16 KiB below a 2 MiB boundary (address space
 * only); malloc is told to grow the heap 32 MiB at a time, never to give it
 * back and to serve big blocks from it too; the first malloc creates the
 * heap, and all of it past those 16 KiB is advised. Long-running commands
 * (serve, top) keep glibc's defaults.
 *
 * Nothing changes when the kernel's THP is off, when malloc is not glibc's
 * own (sanitizers, valgrind: the first block is not where the heap was
 * placed), when something allocated before, or with PROVISIO_HUGE_PAGES=0.
 */
#include <malloc.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include "cli/cli.h"

#define HUGE_PAGE ((uintptr_t)2 << 20)
#define SMALL_LEAD ((uintptr_t)16 << 10) /* malloc's own first words, in small pages */
#define GROW_BY (32 << 20)

void pv_cli_heap_in_huge_pages(void)
{
	const char *env = getenv("PROVISIO_HUGE_PAGES");
	if ((env && strcmp(env, "0") == 0) || mallinfo2().arena != 0)
		return;
	uintptr_t brk_now = (uintptr_t)sbrk(0);
	uintptr_t start = (brk_now + SMALL_LEAD + HUGE_PAGE - 1) / HUGE_PAGE * HUGE_PAGE - SMALL_LEAD;
	if (sbrk((intptr_t)(start - brk_now)) == (void *)-1)
		return;
	mallopt(M_MMAP_THRESHOLD, GROW_BY);
	mallopt(M_TRIM_THRESHOLD, 2 * GROW_BY);
	mallopt(M_TOP_PAD, GROW_BY);
	void *volatile first = malloc(1); /* volatile: the compiler may not drop the pair */
	uintptr_t at = (uintptr_t)first, end = (uintptr_t)sbrk(0), huge = start + SMALL_LEAD;
	if (at >= start && at < huge && end >= huge + HUGE_PAGE)
		madvise((void *)huge, (end - huge) / HUGE_PAGE * HUGE_PAGE, MADV_HUGEPAGE);
	free(first);
}
