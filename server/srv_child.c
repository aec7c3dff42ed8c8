/* srv_child — see srv_child.h. */
#define _GNU_SOURCE
#include "srv_child.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
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
                                                 int out_fd, int err_fd, int in_fd)
{
    setpgid(0, 0);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(126); /* the parent died before the line above */
    int nul = in_fd >= 0 ? in_fd : open("/dev/null", O_RDONLY);
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

struct srv_child {
    pid_t pid;
    int out_fd, err_fd; /* read ends of its stdout and stderr (-1 once closed) */
    int in_fd;          /* write end of its stdin pipe, -1 when none (or sent) */
    int pid_fd;         /* pidfd: readable once it has ended (-1 where the kernel has none) */
    int reaped;         /* 1: wait4 took its status (below) */
    int status;
    struct rusage ru;
};

static int start_error(sx_status *st)
{
    return sx_status_set(st, SX_EIO, "cannot start a worker process: %s", strerror(errno));
}

int srv_child_start(char *const argv[], char *const env[], const srv_child_limits *lim,
                    int stdin_pipe, srv_child **out, sx_status *st)
{
    *out = NULL;
    srv_child *c = calloc(1, sizeof *c);
    if (!c) return sx_status_set(st, SX_ENOMEM, "out of memory");
    int p[3][2] = {{-1, -1}, {-1, -1}, {-1, -1}}; /* stdout, stderr, stdin */
    for (int i = 0; i < (stdin_pipe ? 3 : 2); i++)
        if (pipe2(p[i], O_CLOEXEC)) goto fail;
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid == 0) child_exec(argv, env, lim, parent, p[0][1], p[1][1], p[2][0]);
    if (pid < 0) goto fail;
    close(p[0][1]);
    close(p[1][1]);
    if (stdin_pipe) close(p[2][0]);
    setpgid(pid, pid); /* also here: the kill below must reach the group even if it races */
    fcntl(p[0][0], F_SETFL, O_NONBLOCK);
    fcntl(p[1][0], F_SETFL, O_NONBLOCK);
    *c = (srv_child){.pid = pid, .out_fd = p[0][0], .err_fd = p[1][0], .in_fd = p[2][1]};
    /* the waiter wakes when the child ends, not at its next 50 ms poll: a job's process
     * closes its pipes while it still tears down, before it can be reaped */
#ifdef SYS_pidfd_open
    c->pid_fd = (int)syscall(SYS_pidfd_open, pid, 0);
    if (c->pid_fd >= 0) fcntl(c->pid_fd, F_SETFD, FD_CLOEXEC);
#else
    c->pid_fd = -1;
#endif
    *out = c;
    return SX_OK;
fail:;
    int rc = start_error(st);
    for (int i = 0; i < 3; i++)
        for (int k = 0; k < 2; k++)
            if (p[i][k] >= 0) close(p[i][k]);
    free(c);
    return rc;
}

int srv_child_send(srv_child *c, const char *text, sx_status *st)
{
    if (c->in_fd < 0) return sx_status_set(st, SX_EINTERNAL, "the worker process takes no input");
    /* the child may have died: its closed pipe must give EPIPE here, not kill the caller */
    sigset_t pipe_sig, old;
    sigemptyset(&pipe_sig);
    sigaddset(&pipe_sig, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_sig, &old);
    size_t len = strlen(text), done = 0;
    int err = 0;
    while (done < len) {
        ssize_t n = write(c->in_fd, text + done, len - done);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            err = errno ? errno : EIO;
            break;
        }
        done += (size_t)n;
    }
    if (err == EPIPE) {
        struct timespec zero = {0, 0};
        sigtimedwait(&pipe_sig, NULL, &zero); /* consume the SIGPIPE now pending */
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    close(c->in_fd);
    c->in_fd = -1;
    if (err) return sx_status_set(st, SX_EIO, "the worker process did not take its input: %s",
                                  strerror(err));
    return SX_OK;
}

int srv_child_alive(srv_child *c)
{
    if (!c->reaped && wait4(c->pid, &c->status, WNOHANG, &c->ru) == c->pid) c->reaped = 1;
    return !c->reaped;
}

/* Close what is left of c's pipes and free it (it has been reaped). */
static void child_free(srv_child *c)
{
    if (c->out_fd >= 0) close(c->out_fd);
    if (c->err_fd >= 0) close(c->err_fd);
    if (c->in_fd >= 0) close(c->in_fd);
    if (c->pid_fd >= 0) close(c->pid_fd);
    free(c);
}

void srv_child_discard(srv_child *c)
{
    if (!c) return;
    kill(-c->pid, SIGKILL);
    while (!c->reaped && wait4(c->pid, &c->status, 0, &c->ru) < 0 && errno == EINTR) {}
    c->reaped = 1;
    child_free(c);
}

int srv_child_pid(const srv_child *c)
{
    return (int)c->pid;
}

int srv_child_wait(srv_child *c, const srv_child_limits *lim, size_t out_cap,
                   const srv_child_watch *w, srv_child_result *res, sx_status *st)
{
    (void)st;
    memset(res, 0, sizeof *res);
    double t0 = mono_s();
    int fds[2] = {c->out_fd, c->err_fd};
    sink out = {0};
    int killed = 0, done = c->reaped;
    const sx_progress *prog = w ? w->prog : NULL;
    double next_tick = t0 + (w ? w->tick_s : 0);
    while (!done) {
        struct pollfd pf[3];
        int np = 0;
        for (int i = 0; i < 2; i++)
            if (fds[i] >= 0) pf[np++] = (struct pollfd){.fd = fds[i], .events = POLLIN};
        if (c->pid_fd >= 0) pf[np++] = (struct pollfd){.fd = c->pid_fd, .events = POLLIN};
        poll(np ? pf : NULL, (nfds_t)np, 50);
        if (fds[0] >= 0) drain(&fds[0], &out, out_cap, NULL, 0);
        if (fds[1] >= 0) drain(&fds[1], NULL, 0, res->err_tail, sizeof res->err_tail);
        if (!srv_child_alive(c)) done = 1;
        if (done || killed) continue;
        if (w && w->tick && mono_s() >= next_tick) {
            w->tick(w->user);
            next_tick = mono_s() + w->tick_s;
        }
        if (sx_progress_cancelled(prog)) res->cancelled = killed = 1;
        else if (lim && lim->wall_seconds > 0 && mono_s() - t0 > lim->wall_seconds)
            res->timed_out = killed = 1;
        if (killed) kill(-c->pid, SIGKILL);
    }
    /* the child is gone; what its leftovers (a grandchild holding the pipes) wrote is not
     * waited for: the group is killed and the pipes closed */
    kill(-c->pid, SIGKILL);
    for (int i = 0; i < 2; i++)
        if (fds[i] >= 0) {
            drain(&fds[i], i == 0 ? &out : NULL, out_cap, res->err_tail, sizeof res->err_tail);
            if (fds[i] >= 0) close(fds[i]);
        }
    c->out_fd = c->err_fd = -1;
    reaped(res, c->status, &c->ru);
    res->wall_s = mono_s() - t0;
    res->out = out.buf;
    res->out_len = out.len;
    res->out_truncated = out.truncated;
    child_free(c);
    return SX_OK;
}

int srv_child_run(char *const argv[], char *const env[], const srv_child_limits *lim,
                  size_t out_cap, const srv_child_watch *w, srv_child_result *res,
                  sx_status *st)
{
    srv_child *c;
    memset(res, 0, sizeof *res);
    int rc = srv_child_start(argv, env, lim, 0, &c, st);
    return rc ? rc : srv_child_wait(c, lim, out_cap, w, res, st);
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
