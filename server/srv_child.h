/* srv_child — run a program in a child process under resource limits, so that work on
 * untrusted bytes (upload validation, jobs) can crash, hang or balloon without taking the
 * daemon with it.
 *
 * The child is fork()ed and immediately exec()s argv[0] (nothing but async-signal-safe calls
 * between the two: the daemon is multi-threaded). Before exec it gets its own process group
 * (so a kill reaches its threads' helpers too), a parent-death signal, srv_seccomp's filter (a daemon that dies
 * takes its children), no new privileges, every descriptor but stdio closed, and the
 * setrlimit()s of srv_child_limits. The parent reads stdout (kept up to out_cap bytes) and
 * the tail of stderr, polls the cancel flag, and SIGKILLs the process group at the wall
 * deadline. A child that outputs more than out_cap keeps running but its surplus is dropped
 * and reported (out_truncated).
 *
 * A child may also be started ahead of its work (a pre-started job runner, already through
 * exec and its libraries' start-up): srv_child_start with a stdin pipe, later srv_child_send
 * of its one line of work and srv_child_wait, which applies the same watch, deadline (counted
 * from the wait, not the start) and kill as srv_child_run. rlimits are per process and set at
 * the start: RLIMIT_CPU counts the child's start-up too (an idle wait costs none).
 *
 * Thread-safety: srv_child_run may be called from several threads at once; it blocks the
 * calling thread until the child has been reaped. A started srv_child has one owner at a
 * time; any thread of the process may wait for it.
 */
#ifndef SRV_CHILD_H
#define SRV_CHILD_H

#include <stddef.h>
#include <stdint.h>

#include "sx_error.h"
#include "sx_progress.h"

typedef struct srv_child_limits {
    int64_t as_bytes;     /* RLIMIT_AS (address space); 0 = inherit */
    int cpu_seconds;      /* RLIMIT_CPU (SIGXCPU, then SIGKILL); 0 = inherit */
    double wall_seconds;  /* SIGKILL of the process group after this; 0 = no deadline */
    int nofile;           /* RLIMIT_NOFILE; 0 = inherit */
    int64_t fsize_bytes;  /* RLIMIT_FSIZE: the largest file it may write; 0 = inherit */
    int no_seccomp;       /* 1: without srv_seccomp's filter (a child that needs the network) */
} srv_child_limits;

typedef struct srv_child_result {
    int exited;          /* 1: exited normally and exit_code is valid */
    int exit_code;
    int signal;          /* the signal that ended it, 0 if it exited */
    int timed_out;       /* killed at the wall deadline */
    int cancelled;       /* killed because the cancel flag was raised */
    char *out;           /* stdout (NUL-terminated, out_len bytes), malloc'd; NULL if none */
    size_t out_len;
    int out_truncated;   /* the child wrote more than out_cap bytes */
    char err_tail[2048]; /* the last bytes of stderr, NUL-terminated */
    double wall_s;       /* elapsed seconds */
    double cpu_s;        /* user + system CPU seconds of the child */
    int64_t max_rss_kb;  /* its peak resident set */
} srv_child_result;

/* What the parent does while it waits: prog's cancel flag (may be NULL) is polled every 50 ms,
 * and tick (may be NULL) is called every tick_s seconds (e.g. to relay the child's progress
 * file). */
typedef struct srv_child_watch {
    const sx_progress *prog;
    void (*tick)(void *user);
    void *user;
    double tick_s;
} srv_child_watch;

/* Run argv (argv[0] an absolute path, NULL-terminated) with limits lim (NULL: none) and env
 * (NULL: inherit), watched by w (NULL: nothing to watch). Returns SX_OK when
 * the child was started and reaped, whatever it ended with (see res); SX_EIO (message) when it
 * could not be started. res is filled in either case; free with srv_child_result_free. */
int srv_child_run(char *const argv[], char *const env[], const srv_child_limits *lim,
                  size_t out_cap, const srv_child_watch *w, srv_child_result *res,
                  sx_status *st);
void srv_child_result_free(srv_child_result *res);

/* A started child, not yet waited for (opaque). Owned by the caller until srv_child_wait or
 * srv_child_discard frees it: one of the two must be called, or the child is left a zombie. */
typedef struct srv_child srv_child;

/* Start argv under lim (the rlimits, process group, seccomp... of srv_child_run) and return at
 * once. stdin_pipe 1: its stdin is a pipe the caller writes once with srv_child_send (else
 * /dev/null). *out is set on SX_OK; SX_EIO (message) when it could not be started. */
int srv_child_start(char *const argv[], char *const env[], const srv_child_limits *lim,
                    int stdin_pipe, srv_child **out, sx_status *st);
/* Write text to its stdin and close the pipe (the child then reads EOF). SX_EIO when the child
 * no longer reads it (it died): discard it. Never raises SIGPIPE in the caller. */
int srv_child_send(srv_child *c, const char *text, sx_status *st);
/* 1 while it runs; 0 once it has ended (it is then reaped: only srv_child_wait's result or
 * srv_child_discard remain). */
int srv_child_alive(srv_child *c);
/* Its process id (logs and tests). */
int srv_child_pid(const srv_child *c);
/* Watch c until it ends, as srv_child_run does (lim's wall deadline counted from this call;
 * its rlimits are the ones it was started with), fill res and free c. SX_OK once reaped. */
int srv_child_wait(srv_child *c, const srv_child_limits *lim, size_t out_cap,
                   const srv_child_watch *w, srv_child_result *res, sx_status *st);
/* SIGKILL its process group, reap it and free c; NULL: nothing. */
void srv_child_discard(srv_child *c);

/* One line for logs and error messages: "exited with 3", "killed by signal 11 (Segmentation
 * fault)", "killed at its 60 s deadline", ... into out. */
void srv_child_describe(const srv_child_result *res, const srv_child_limits *lim, char *out,
                        size_t outsz);

#endif
