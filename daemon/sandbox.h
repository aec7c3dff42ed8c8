/* sandbox — the daemon's work on untrusted bytes, moved into child processes.
 *
 * Upload validation opens a user's file with libhdf5 and the text readers. libhdf5 1.10
 * segfaults and loops forever on crafted files (../shared/security/fuzz), so the daemon
 * process never does that itself: sandbox_wrap_validate() replaces the engine's in-process
 * validate with one that runs `scalexd __validate FILE` (this same binary) under
 * srv_child's limits and reads its one-line JSON answer. A child that crashes, runs out of
 * memory or time costs that upload a 422, never the service.
 *
 * Ownership: the sandbox struct is the caller's (static or on main's stack) and must outlive
 * the engine it wraps.
 */
#ifndef SANDBOX_H
#define SANDBOX_H

#include <stdint.h>

#include "srv_child.h"
#include "srv_config.h"
#include "srv_engine.h"

typedef struct sandbox {
    char exe[4096];               /* absolute path of this binary (/proc/self/exe at start) */
    char worker[4096];            /* the job runner: `scalex` next to exe */
    srv_child_limits validate;    /* limits of a validation child (wall: the base deadline) */
    double validate_mb_per_s;     /* + size / this many MB/s to the deadline (large uploads) */
    srv_child_limits job;         /* limits of a job's child (wall 0: no deadline) */
    srv_engine inner;             /* the in-process engine, run inside the child */
} sandbox;

/* Fill sb with the limits of cfg (validate_*, job_*) and the in-process engine *eng (whose user is the daemon's `engine`),
 * then point eng->validate at the child-process version. Returns SX_EIO when the binary's own path cannot be found. */
int sandbox_wrap_validate(sandbox *sb, const srv_config *cfg, srv_engine *eng, sx_status *st);

/* Point eng->run at the child-process version too: each job runs as `scalex run-job JOBDIR`
 * (the job-directory protocol, as on a Slurm node) under sb->job's limits; progress is relayed
 * from the job directory, a cancel kills the child's process group, and a child that crashes or
 * is killed ends the job with a message instead of the daemon. References are prepared for the
 * children (their flat map written once) instead of loaded into the daemon. Call after
 * sandbox_wrap_validate; SX_ENOTFOUND when `scalex` is not installed next to scalexd. */
int sandbox_wrap_run(sandbox *sb, const srv_config *cfg, srv_engine *eng, sx_status *st);

/* `scalexd __validate FILE`: run the in-process validation of eng on FILE and print one JSON
 * line ({"ok":true,"format",...} or {"ok":false,"code","message"}) on stdout. Exit 0 when an
 * answer was printed. */
int sandbox_validate_main(const srv_engine *eng, int argc, char **argv);

#endif
