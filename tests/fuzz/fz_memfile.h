/* fz_memfile — give a fuzz input a file name without touching the disk.
 *
 * Why not HDF5's core driver: every reader takes a path (sx_io_read, sx_inspect_stream),
 * h5x_open stats the file for its size-plausibility checks, and sx_h5_open_ro opens with
 * the default file-access list; a core-driver entry would have to thread a fapl through
 * sx_h5.c / sx_h5x.c / sx_tenx_h5.c. Why not a memfd: HDF5 1.10 resolves a symlink such as
 * /proc/self/fd/N with realpath() and refuses the "memfd:x (deleted)" it gets. So each
 * input is written to a file in a private folder on /dev/shm (tmpfs: RAM, no disk I/O;
 * $TMPDIR only where /dev/shm is missing), named for the format ("in.h5ad", "in.csv.gz"),
 * and the readers run exactly as the daemon runs them, suffix-based detection included.
 * The previous file is unlinked first, so every input is a new inode: HDF5 caches open
 * files by (device, inode), and a handle leaked by one input must never serve stale bytes
 * to the next.
 */
#ifndef FZ_MEMFILE_H
#define FZ_MEMFILE_H

#include <stddef.h>
#include <stdint.h>

/* Store data as the current input; returns the path that reads it under NAME (one of
 * the names given by the driver, e.g. "in.h5ad"), valid until the next call. Aborts
 * on a system error (the fuzzer cannot go on without it). */
const char *fz_memfile(const char *name, const uint8_t *data, size_t size);

/* Quiet defaults for a fuzz run: HDF5's error stack off, log messages formatted (so their
 * code runs) and dropped. Idempotent. */
void fz_quiet(void);

/* One input through both paths the daemon takes with an upload: the bounded-memory
 * validation (sx_inspect_stream) and, when that accepts it, the full read a job does
 * (sx_io_read). NAME picks the file name, hence the format the suffix implies. */
void fz_read_both(const char *name, const uint8_t *data, size_t size);

#endif
