/* sx_io_mem — how the readers ask for the memory their final arrays live in.
 *
 * A reader fills a matrix of hundreds of MB once, front to back. With 4 KiB pages every
 * 4 KiB of it costs a page fault (on a virtual machine a trap to the hypervisor); the
 * faults were a tenth of the time of reading an h5ad from page cache. Transparent huge
 * pages make that one fault per 2 MiB. Linux runs THP in "madvise" mode by default on
 * Debian, so the reader asks for them; elsewhere this is a no-op.
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <sys/mman.h>
#include <unistd.h>

#include "sx_io_internal.h"

void sx_io_advise_huge(void *p, size_t bytes)
{
#ifdef MADV_HUGEPAGE
    const uintptr_t huge = (uintptr_t)2 << 20;
    if (!p || bytes < 2 * huge) return; /* small arrays: nothing to win */
    uintptr_t a = ((uintptr_t)p + huge - 1) & ~(huge - 1);
    uintptr_t b = ((uintptr_t)p + bytes) & ~(huge - 1);
    if (b > a) (void)madvise((void *)a, b - a, MADV_HUGEPAGE); /* advice: failure is harmless */
#else
    (void)p;
    (void)bytes;
#endif
}
