/* srv_util — small helpers of the daemon: time, random ids, paths, files. */
#ifndef SRV_UTIL_H
#define SRV_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include "sx_error.h"

/* Wall clock in milliseconds since the Unix epoch. */
int64_t srv_now_ms(void);
/* Monotonic clock in seconds (durations). */
double srv_mono_s(void);
/* ISO 8601 UTC with milliseconds ("2024-05-01T12:00:00.123Z") into out[32]. */
void srv_iso_time(int64_t ms, char out[32]);
/* Fill out with n random bytes from the kernel (getrandom). */
int srv_random_bytes(void *out, size_t n, sx_status *st);
/* An id: prefix + 16 lowercase hex digits of randomness, into out (size >= 24). */
int srv_random_id(const char *prefix, char *out, size_t outsz, sx_status *st);
/* mkdir -p with mode 0750. */
int srv_mkdirs(const char *path, sx_status *st);
/* Remove a directory tree (best effort, no symlink following). */
void srv_rmtree(const char *path);
/* Remove every "<dir>/" from text, in place (server paths become data-dir-relative ones such
 * as "datasets/ds_1.h5ad", which say nothing of the server). */
void srv_redact_dir(char *text, const char *dir);
/* Bytes of the regular files under path (a file or a folder; links not followed). */
int64_t srv_tree_bytes(const char *path);
/* Copy a file (to dst.tmp then rename). */
int srv_copy_file(const char *src, const char *dst, sx_status *st);
/* Read a whole small file (<= max bytes) into a NUL-terminated malloc'd buffer (caller
 * frees with free). */
char *srv_read_file(const char *path, size_t max, size_t *len, sx_status *st);
/* Write a whole file atomically (tmp + fsync + rename). */
int srv_write_file_atomic(const char *path, const char *data, size_t len, sx_status *st);
/* Does a regular file exist? */
int srv_file_exists(const char *path);
/* Is the name safe as a single path component / reference name: [A-Za-z0-9._-]{1,64}, not
 * starting with '.'. */
int srv_name_ok(const char *s);
/* Number of online CPUs (>= 1). */
int srv_ncpu(void);

#endif
