/* srv_child — see srv_child.h. */
#define _GNU_SOURCE
#include "srv_child.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "srv_seccomp.h"
#include "sx_alloc.h"

extern char **environ;

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void limit(int resource, int64_t v)
{
    if (v <= 0) return;
    struct rlimit rl = {(rlim_t)v, (rlim_t)v};
    setrlimit(resource, &rl);
}

/* In the child between fork and exec: async-signal-safe calls only (the daemon's other
 * threads may hold locks, e.g. malloc's, that will never be released here). */
static void __attribute__((noreturn)) child_exec(char *const argv[], char *const env[],
                                                 const srv_child_limits *lim, pid_t parent,
                                                 int out_fd, int err_fd)
{
    setpgid(0, 0);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(126); /* the parent died before the line above */
    int nul = open("/dev/null", O_RDONLY);
    if (nul >= 0) dup2(nul, 0);
    dup2(out_fd, 1);
    dup2(err_fd, 2);
    /* the daemon's sockets, database and other children's pipes stay out of the child */
    close_range(3, ~0U, 0);
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    sigaction(SIGPIPE, &dfl, NULL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    if (lim) {
#ifndef __SANITIZE_ADDRESS__
        limit(RLIMIT_AS, lim->as_bytes);
#endif /* AddressSanitizer reserves terabytes of shadow address space: a sanitizer build's
        * children run without the address-space cap (the other limits hold) */
        limit(RLIMIT_CPU, lim->cpu_seconds);
        limit(RLIMIT_NOFILE, lim->nofile);
        limit(RLIMIT_FSIZE, lim->fsize_bytes);
    }
    struct rlimit nocore = {0, 0};
    setrlimit(RLIMIT_CORE, &nocore); /* a crashing reader must not leave a core of user data */
    prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
    if (!lim || !lim->no_seccomp) srv_seccomp_install();
    execve(argv[0], argv, env ? env : environ);
    _exit(127);
}

typedef struct sink {
    char *buf;
    size_t len, cap;
    int truncated;
} sink;

/* Append to the stdout buffer, keeping at most cap bytes. */
static void sink_put(sink *s, const char *p, size_t n, size_t cap)
{
    if (s->len + n > cap) {
        s->truncated = 1;
        n = cap > s->len ? cap - s->len : 0;
    }
    if (!n) return;
    if (s->len + n + 1 > s->cap) {
        size_t nc = s->cap ? s->cap : 4096;
        while (nc < s->len + n + 1) nc *= 2;
        char *nb = realloc(s->buf, nc);
        if (!nb) {
            s->truncated = 1;
            return;
        }
        s->buf = nb;
        s->cap = nc;
    }
    memcpy(s->buf + s->len, p, n);
    s->len += n;
    s->buf[s->len] = 0;
}

/* Keep the last sizeof(err_tail)-1 bytes of stderr. */
static void tail_put(char *tail, size_t tailsz, const char *p, size_t n)
{
    size_t have = strlen(tail), room = tailsz - 1;
    if (n >= room) {
        memcpy(tail, p + n - room, room);
        tail[room] = 0;
        return;
    }
    if (have + n > room) {
        size_t drop = have + n - room;
        memmove(tail, tail + drop, have - drop);
        have -= drop;
    }
    memcpy(tail + have, p, n);
    tail[have + n] = 0;
}

/* Read what is there on fd; returns 0 at EOF (fd closed), 1 otherwise. */
static int drain(int *fd, sink *out, size_t out_cap, char *tail, size_t tailsz)
{
    char buf[65536];
    for (;;) {
        ssize_t n = read(*fd, buf, sizeof buf);
        if (n > 0) {
            if (out) sink_put(out, buf, (size_t)n, out_cap);
            else tail_put(tail, tailsz, buf, (size_t)n);
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return 1;
        close(*fd);
        *fd = -1;
        return 0;
    }
}

static void reaped(srv_child_result *res, int status, const struct rusage *ru)
{
    if (WIFEXITED(status)) {
        res->exited = 1;
        res->exit_code = WEXITSTATUS(status);
    } else if (WIFSIGNALED(status)) {
        res->signal = WTERMSIG(status);
    }
    res->cpu_s = (double)ru->ru_utime.tv_sec + (double)ru->ru_utime.tv_usec * 1e-6 +
                 (double)ru->ru_stime.tv_sec + (double)ru->ru_stime.tv_usec * 1e-6;
    res->max_rss_kb = ru->ru_maxrss;
}

int srv_child_run(char *const argv[], char *const env[], const srv_child_limits *lim,
                  size_t out_cap, const srv_child_watch *w, srv_child_result *res,
                  sx_status *st)
{
    memset(res, 0, sizeof *res);
    int po[2], pe[2];
    if (pipe2(po, O_CLOEXEC)) return sx_status_set(st, SX_EIO, "cannot start a worker process: %s", strerror(errno));
    if (pipe2(pe, O_CLOEXEC)) {
        close(po[0]), close(po[1]);
        return sx_status_set(st, SX_EIO, "cannot start a worker process: %s", strerror(errno));
    }
    double t0 = mono_s();
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid == 0) child_exec(argv, env, lim, parent, po[1], pe[1]);
    close(po[1]);
    close(pe[1]);
    if (pid < 0) {
        close(po[0]), close(pe[0]);
        return sx_status_set(st, SX_EIO, "cannot start a worker process: %s", strerror(errno));
    }
    setpgid(pid, pid); /* also here: the kill below must reach the group even if it races */
    fcntl(po[0], F_SETFL, O_NONBLOCK);
    fcntl(pe[0], F_SETFL, O_NONBLOCK);
    int fds[2] = {po[0], pe[0]};
    sink out = {0};
    int killed = 0, done = 0, status = 0;
    const sx_progress *prog = w ? w->prog : NULL;
    double next_tick = t0 + (w ? w->tick_s : 0);
    struct rusage ru;
    memset(&ru, 0, sizeof ru);
    while (!done) {
        struct pollfd pf[2];
        int np = 0;
        for (int i = 0; i < 2; i++)
            if (fds[i] >= 0) pf[np++] = (struct pollfd){.fd = fds[i], .events = POLLIN};
        if (np) poll(pf, (nfds_t)np, 50);
        else poll(NULL, 0, 50);
        if (fds[0] >= 0) drain(&fds[0], &out, out_cap, NULL, 0);
        if (fds[1] >= 0) drain(&fds[1], NULL, 0, res->err_tail, sizeof res->err_tail);
        pid_t got = wait4(pid, &status, WNOHANG, &ru);
        if (got == pid) done = 1;
        if (done || killed) continue;
        if (w && w->tick && mono_s() >= next_tick) {
            w->tick(w->user);
            next_tick = mono_s() + w->tick_s;
        }
        if (sx_progress_cancelled(prog)) res->cancelled = killed = 1;
        else if (lim && lim->wall_seconds > 0 && mono_s() - t0 > lim->wall_seconds)
            res->timed_out = killed = 1;
        if (killed) kill(-pid, SIGKILL);
    }
    /* the child is gone; what its leftovers (a grandchild holding the pipes) wrote is not
     * waited for: the group is killed and the pipes closed */
    kill(-pid, SIGKILL);
    for (int i = 0; i < 2; i++)
        if (fds[i] >= 0) {
            drain(&fds[i], i == 0 ? &out : NULL, out_cap, res->err_tail, sizeof res->err_tail);
            if (fds[i] >= 0) close(fds[i]);
        }
    reaped(res, status, &ru);
    res->wall_s = mono_s() - t0;
    res->out = out.buf;
    res->out_len = out.len;
    res->out_truncated = out.truncated;
    return SX_OK;
}

void srv_child_result_free(srv_child_result *res)
{
    if (!res) return;
    free(res->out);
    res->out = NULL;
    res->out_len = 0;
}

void srv_child_describe(const srv_child_result *res, const srv_child_limits *lim, char *out,
                        size_t outsz)
{
    if (res->timed_out)
        snprintf(out, outsz, "stopped at its %.0f s time limit", lim ? lim->wall_seconds : 0.0);
    else if (res->cancelled)
        snprintf(out, outsz, "stopped on request");
    else if (res->signal == SIGXCPU || (res->signal == SIGKILL && lim && lim->cpu_seconds > 0 &&
                                        res->cpu_s >= lim->cpu_seconds))
        snprintf(out, outsz, "stopped at its %d s CPU limit", lim ? lim->cpu_seconds : 0);
    else if (res->signal)
        snprintf(out, outsz, "crashed (signal %d, %s)", res->signal,
                 sigdescr_np(res->signal) ? sigdescr_np(res->signal) : "unknown");
    else
        snprintf(out, outsz, "exited with status %d", res->exit_code);
}
