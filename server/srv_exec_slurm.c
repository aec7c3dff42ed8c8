/* srv_exec_slurm — the Slurm executor: sbatch / squeue / sacct / scancel.
 *
 * A unit is JOBDIR/slurm.sh (`exec WORKER run-job JOBDIR`) submitted with
 * `sbatch --parsable`; its output goes to JOBDIR/slurm-<id>.out. State comes from squeue
 * while slurmctld remembers the job (MinJobAge), then from sacct; Slurm's state words map
 * to the job states as in srv_slurm_map_state. The commands are run by their configured
 * names (a PATH lookup without '/'), so a test or a site wrapper can stand in for them.
 *
 * Everything Slurm is in this file: its settings (slurm_*: commands, worker, partition,
 * account, poll interval, resources per job type), its state words, and its explanations
 * of failures (time limit, memory, a node failure, an scancel by someone else).
 */
#include "srv_exec_slurm.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "srv_exec_internal.h"
#include "srv_jobs.h"
#include "srv_util.h"

/* the settings, as scalexd has always spelled them (deploy/slurm/README.md) */
static const srv_exec_key slurm_keys[] = {
    {"slurm_sbatch", SRV_XKEY_TEXT, "sbatch", "sbatch command (sbatch, found on PATH)"},
    {"slurm_squeue", SRV_XKEY_TEXT, "squeue", "squeue command (squeue)"},
    {"slurm_sacct", SRV_XKEY_TEXT, "sacct", "sacct command (sacct)"},
    {"slurm_scancel", SRV_XKEY_TEXT, "scancel", "scancel command (scancel)"},
    {"slurm_worker", SRV_XKEY_TEXT, "scalex", "the scalex binary on the compute nodes (scalex)"},
    {"slurm_partition", SRV_XKEY_TEXT, "", "Slurm partition (the cluster's default)"},
    {"slurm_account", SRV_XKEY_TEXT, "", "Slurm account to charge (none)"},
    {"slurm_poll", SRV_XKEY_SECONDS, "5", "seconds between squeue/sacct polls (5)"},
    {"slurm_integrate", SRV_XKEY_TEXT, "", "integrate jobs: cpus=N,mem=16G,time=04:00:00[,partition=P]"},
    {"slurm_project", SRV_XKEY_TEXT, "", "project jobs: cpus=N,mem=SIZE,time=LIMIT[,partition=P]"},
    {"slurm_label_transfer", SRV_XKEY_TEXT, "", "label_transfer jobs: cpus=N,mem=SIZE,time=LIMIT"},
    {NULL, SRV_XKEY_TEXT, NULL, NULL},
};

/* the job types with a resources setting slurm_<type> */
static const char *const res_types[] = {"integrate", "project", "label_transfer"};

typedef struct slurm {
    const char *sbatch, *squeue, *sacct, *scancel; /* into x->cfg: live as long as x */
    const char *worker, *partition, *account;
} slurm;

static const struct {
    const char *word, *abbr;
    srv_xstate state;
} slurm_states[] = {
    {"PENDING", "PD", SRV_X_QUEUED},        {"CONFIGURING", "CF", SRV_X_QUEUED},
    {"REQUEUED", "RQ", SRV_X_QUEUED},       {"REQUEUE_HOLD", "RH", SRV_X_QUEUED},
    {"REQUEUE_FED", "RF", SRV_X_QUEUED},    {"RESV_DEL_HOLD", "RD", SRV_X_QUEUED},
    {"RUNNING", "R", SRV_X_RUNNING},        {"COMPLETING", "CG", SRV_X_RUNNING},
    {"STAGE_OUT", "SO", SRV_X_RUNNING},     {"SIGNALING", "SI", SRV_X_RUNNING},
    {"SUSPENDED", "S", SRV_X_RUNNING},      {"STOPPED", "ST", SRV_X_RUNNING},
    {"RESIZING", "RS", SRV_X_RUNNING},      {"COMPLETED", "CD", SRV_X_COMPLETE},
    {"FAILED", "F", SRV_X_EXECUTOR_ERROR},  {"TIMEOUT", "TO", SRV_X_EXECUTOR_ERROR},
    {"OUT_OF_MEMORY", "OOM", SRV_X_EXECUTOR_ERROR}, {"DEADLINE", "DL", SRV_X_EXECUTOR_ERROR},
    {"SPECIAL_EXIT", "SE", SRV_X_EXECUTOR_ERROR}, {"REVOKED", "RV", SRV_X_EXECUTOR_ERROR},
    /* the cluster failed the job, not the job itself */
    {"NODE_FAIL", "NF", SRV_X_SYSTEM_ERROR}, {"BOOT_FAIL", "BF", SRV_X_SYSTEM_ERROR},
    {"PREEMPTED", "PR", SRV_X_SYSTEM_ERROR}, {"CANCELLED", "CA", SRV_X_CANCELED},
};

srv_xstate srv_slurm_map_state(const char *s)
{
    if (!s) return SRV_X_UNKNOWN;
    while (*s == ' ') s++;
    /* "CANCELLED by 1000", "CANCELLED+" (sacct without -P) */
    size_t n = strcspn(s, " +\t\r\n");
    for (size_t i = 0; i < sizeof slurm_states / sizeof slurm_states[0]; i++) {
        if ((strlen(slurm_states[i].word) == n && !strncmp(s, slurm_states[i].word, n)) ||
            (strlen(slurm_states[i].abbr) == n && !strncmp(s, slurm_states[i].abbr, n)))
            return slurm_states[i].state;
    }
    return SRV_X_UNKNOWN;
}

int srv_slurm_parse_sbatch(const char *out, char handle[64], sx_status *st)
{
    /* "1234\n", or "1234;cluster\n" on a federation; sbatch may print warnings first */
    const char *line = out;
    while (line && *line) {
        size_t n = strspn(line, "0123456789");
        if (n > 0 && n < 32 && (line[n] == ';' || line[n] == '\n' || line[n] == '\r' || !line[n])) {
            snprintf(handle, 64, "%.*s", (int)n, line);
            return SX_OK;
        }
        line = strchr(line, '\n');
        if (line) line++;
    }
    return sx_status_set(st, SX_EIO, "sbatch --parsable printed no job id: '%.200s'", out ? out : "");
}

/* Find the line of ID in "|"-separated output: fields[0] = id. Returns 1 when found. */
static int find_line(const char *out, const char *id, char *fields[4], char *buf, size_t cap)
{
    const char *line = out;
    size_t idn = strlen(id);
    while (line && *line) {
        const char *nl = strchr(line, '\n');
        size_t len = nl ? (size_t)(nl - line) : strlen(line);
        if (len < cap && !strncmp(line, id, idn) && line[idn] == '|') {
            memcpy(buf, line, len);
            buf[len] = 0;
            if (len && buf[len - 1] == '\r') buf[len - 1] = 0;
            int k = 0;
            char *p = buf;
            while (k < 4) {
                fields[k++] = p;
                p = strchr(p, '|');
                if (!p) break;
                *p++ = 0;
            }
            while (k < 4) fields[k++] = (char *)"";
            return 1;
        }
        line = nl ? nl + 1 : NULL;
    }
    return 0;
}

int srv_slurm_parse_squeue(const char *out, const char *id, srv_exec_status *s)
{
    char buf[512], *f[4];
    memset(s, 0, sizeof *s);
    if (!find_line(out, id, f, buf, sizeof buf)) return 0;
    snprintf(s->raw, sizeof s->raw, "%.*s", (int)strcspn(f[1], " "), f[1]);
    if (strcmp(f[2], "None")) snprintf(s->reason, sizeof s->reason, "%s", f[2]);
    s->state = srv_slurm_map_state(f[1]);
    return 1;
}

int srv_slurm_parse_sacct(const char *out, const char *id, srv_exec_status *s)
{
    char buf[512], *f[4];
    memset(s, 0, sizeof *s);
    if (!find_line(out, id, f, buf, sizeof buf)) return 0;
    snprintf(s->raw, sizeof s->raw, "%.*s", (int)strcspn(f[1], " +"), f[1]);
    snprintf(s->reason, sizeof s->reason, "%s", f[2]); /* ExitCode "1:0" */
    s->state = srv_slurm_map_state(f[1]);
    return 1;
}

int srv_slurm_parse_res(const char *spec, srv_slurm_res *res, sx_status *st)
{
    memset(res, 0, sizeof *res);
    if (!spec || !*spec) return SX_OK;
    char buf[256];
    if (snprintf(buf, sizeof buf, "%s", spec) >= (int)sizeof buf) goto bad;
    char *save = NULL;
    for (char *t = strtok_r(buf, ", ", &save); t; t = strtok_r(NULL, ", ", &save)) {
        char *eq = strchr(t, '=');
        if (!eq || eq == t || !eq[1]) goto bad;
        *eq = 0;
        const char *v = eq + 1;
        /* values go to sbatch as separate argv words: no shell, but keep them plain */
        for (const char *p = v; *p; p++)
            if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789:-_.+", *p))
                goto bad;
        if (!strcmp(t, "cpus")) {
            char *end;
            long n = strtol(v, &end, 10);
            if (*end || n < 1 || n > 4096) goto bad;
            res->cpus = (int)n;
        } else if (!strcmp(t, "mem") && strlen(v) < sizeof res->mem) {
            snprintf(res->mem, sizeof res->mem, "%s", v);
        } else if (!strcmp(t, "time") && strlen(v) < sizeof res->time) {
            snprintf(res->time, sizeof res->time, "%s", v);
        } else if (!strcmp(t, "partition") && strlen(v) < sizeof res->partition) {
            snprintf(res->partition, sizeof res->partition, "%s", v);
        } else {
            goto bad;
        }
    }
    return SX_OK;
bad:
    return sx_status_set(st, SX_EINVAL, "Slurm resources '%s': expected comma-separated cpus=N, "
                         "mem=SIZE (e.g. 16G), time=LIMIT (e.g. 04:00:00), partition=NAME", spec);
}

/* the resources of a job type (slurm_<type>; checked by slurm_open) */
static void res_of(const srv_exec *x, const char *type, srv_slurm_res *res)
{
    char key[64];
    snprintf(key, sizeof key, "slurm_%s", type);
    if (srv_slurm_parse_res(srv_exec_config_get(&x->cfg, key), res, NULL) != SX_OK)
        memset(res, 0, sizeof *res);
}

static int slurm_open(srv_exec *x, sx_status *st)
{
    for (size_t i = 0; i < sizeof res_types / sizeof res_types[0]; i++) {
        srv_slurm_res r;
        char key[64];
        snprintf(key, sizeof key, "slurm_%s", res_types[i]);
        if (srv_slurm_parse_res(srv_exec_config_get(&x->cfg, key), &r, st))
            return sx_status_prefix(st, "%s: ", key);
    }
    slurm *s = calloc(1, sizeof *s);
    if (!s) return sx_status_set(st, SX_ENOMEM, "out of memory");
    s->sbatch = srv_exec_config_get(&x->cfg, "slurm_sbatch");
    s->squeue = srv_exec_config_get(&x->cfg, "slurm_squeue");
    s->sacct = srv_exec_config_get(&x->cfg, "slurm_sacct");
    s->scancel = srv_exec_config_get(&x->cfg, "slurm_scancel");
    s->worker = srv_exec_config_get(&x->cfg, "slurm_worker");
    s->partition = srv_exec_config_get(&x->cfg, "slurm_partition");
    s->account = srv_exec_config_get(&x->cfg, "slurm_account");
    x->poll_s = strtod(srv_exec_config_get(&x->cfg, "slurm_poll"), NULL);
    x->impl = s;
    return SX_OK;
}

static void slurm_close(srv_exec *x)
{
    free(x->impl);
    x->impl = NULL;
}

/* cpus= of the job type's resources, else the job's thread budget */
static int slurm_unit_threads(srv_exec *x, const srv_job_run *run)
{
    srv_slurm_res r;
    res_of(x, run->type, &r);
    return r.cpus > 0 ? r.cpus : run->threads > 0 ? run->threads : 1;
}

/* 'text' for sh, with ' escaped */
static void sh_quote(char *out, size_t cap, const char *s)
{
    size_t n = 0;
    if (cap < 3) return;
    out[n++] = '\'';
    for (; *s && n + 6 < cap; s++) {
        if (*s == '\'') {
            memcpy(out + n, "'\\''", 4);
            n += 4;
        } else {
            out[n++] = *s;
        }
    }
    out[n++] = '\'';
    out[n] = 0;
}

static int slurm_submit(srv_exec *x, const srv_job_run *run, int threads, char handle[64],
                        sx_status *st)
{
    const slurm *sl = x->impl;
    const char *jobdir = run->outdir, *job_id = run->id;
    srv_slurm_res r, *res = &r;
    res_of(x, run->type, res);
    res->cpus = threads;
    char script[4200], qw[2200], qd[8400], text[12000];
    snprintf(script, sizeof script, "%s/slurm.sh", jobdir);
    sh_quote(qw, sizeof qw, sl->worker);
    sh_quote(qd, sizeof qd, jobdir);
    snprintf(text, sizeof text,
             "#!/bin/sh\n# scalexd job %s: run on a compute node by Slurm\n"
             "exec %s run-job %s\n", job_id, qw, qd);
    int rc = srv_write_file_atomic(script, text, strlen(text), st);
    if (rc) return rc;
    char a_name[96], a_chdir[4200], a_out[4200], a_cpus[32], a_mem[256], a_time[256],
        a_part[SRV_EXEC_VALUE_MAX + 16], a_acct[SRV_EXEC_VALUE_MAX + 16];
    char *argv[16];
    int k = 0;
    argv[k++] = (char *)sl->sbatch;
    argv[k++] = (char *)"--parsable";
    snprintf(a_name, sizeof a_name, "--job-name=scalex-%s", job_id);
    argv[k++] = a_name;
    snprintf(a_chdir, sizeof a_chdir, "--chdir=%s", jobdir);
    argv[k++] = a_chdir;
    snprintf(a_out, sizeof a_out, "--output=%s/slurm-%%j.out", jobdir);
    argv[k++] = a_out;
    snprintf(a_cpus, sizeof a_cpus, "--cpus-per-task=%d", res->cpus > 0 ? res->cpus : 1);
    argv[k++] = a_cpus;
    if (res->mem[0]) {
        snprintf(a_mem, sizeof a_mem, "--mem=%s", res->mem);
        argv[k++] = a_mem;
    }
    if (res->time[0]) {
        snprintf(a_time, sizeof a_time, "--time=%s", res->time);
        argv[k++] = a_time;
    }
    const char *part = res->partition[0] ? res->partition : sl->partition;
    if (part[0]) {
        snprintf(a_part, sizeof a_part, "--partition=%s", part);
        argv[k++] = a_part;
    }
    if (sl->account[0]) {
        snprintf(a_acct, sizeof a_acct, "--account=%s", sl->account);
        argv[k++] = a_acct;
    }
    argv[k++] = script;
    argv[k] = NULL;
    char out[1024], err[512];
    int ex = srv_exec_command(argv, out, sizeof out, err, sizeof err);
    if (ex < 0)
        return sx_status_set(st, SX_EIO, "cannot run '%s': set slurm_sbatch to the sbatch of the "
                             "cluster", sl->sbatch);
    if (ex != 0)
        return sx_status_set(st, SX_EIO, "sbatch refused job %s (exit %d): %s", job_id, ex,
                             err[0] ? err : out);
    return srv_slurm_parse_sbatch(out, handle, st);
}

static int slurm_poll(srv_exec *x, const char *handle, srv_exec_status *s, sx_status *st)
{
    const slurm *sl = x->impl;
    char out[8192], err[512];
    /* -t all: without it squeue hides finished jobs it still remembers */
    char *qv[] = {(char *)sl->squeue, (char *)"-h", (char *)"-t", (char *)"all", (char *)"-j",
                  (char *)handle, (char *)"-o", (char *)"%i|%T|%r", NULL};
    int ex = srv_exec_command(qv, out, sizeof out, err, sizeof err);
    if (ex < 0) return sx_status_set(st, SX_EIO, "cannot run '%s' (slurm_squeue)", sl->squeue);
    /* squeue exits 1 with "Invalid job id specified" once slurmctld forgot the job */
    if (ex == 0 && srv_slurm_parse_squeue(out, handle, s)) return SX_OK;
    if (ex != 0 && !strstr(err, "Invalid job id"))
        return sx_status_set(st, SX_EIO, "squeue -j %s failed (exit %d): %s", handle, ex, err);
    char *av[] = {(char *)sl->sacct, (char *)"-n", (char *)"-P", (char *)"-X", (char *)"-j",
                  (char *)handle, (char *)"-o", (char *)"JobIDRaw,State,ExitCode", NULL};
    ex = srv_exec_command(av, out, sizeof out, err, sizeof err);
    if (ex == 0 && srv_slurm_parse_sacct(out, handle, s)) return SX_OK;
    /* no accounting storage, or not recorded yet: the caller falls back to status.json */
    memset(s, 0, sizeof *s);
    snprintf(s->reason, sizeof s->reason, "%.100s", ex == 0 ? "not in sacct" : err);
    return SX_OK;
}

static int slurm_cancel(srv_exec *x, const char *handle, sx_status *st)
{
    const slurm *sl = x->impl;
    char out[512], err[512];
    char *argv[] = {(char *)sl->scancel, (char *)handle, NULL};
    int ex = srv_exec_command(argv, out, sizeof out, err, sizeof err);
    if (ex < 0) return sx_status_set(st, SX_EIO, "cannot run '%s' (slurm_scancel)", sl->scancel);
    if (ex != 0) return sx_status_set(st, SX_EIO, "scancel %s failed (exit %d): %s", handle, ex, err);
    return SX_OK;
}

/* Slurm's words for endings the neutral loop can only describe in general */
static int slurm_explain(srv_exec *x, srv_exec_why why, const srv_job_run *run, const char *handle,
                         const srv_exec_status *es, sx_status *st)
{
    (void)x;
    switch (why) {
    case SRV_XW_FAILED: /* kills the worker never saw */
        if (!strcmp(es->raw, "TIMEOUT"))
            return sx_status_set(st, SX_ELIMIT, "the job ran past its Slurm time limit (job %s): "
                                 "raise time= in slurm_%s, or make the job smaller", handle,
                                 run->type);
        if (!strcmp(es->raw, "OUT_OF_MEMORY"))
            return sx_status_set(st, SX_ELIMIT, "the job ran out of its Slurm memory (job %s): "
                                 "raise mem= in slurm_%s, or make the job smaller", handle,
                                 run->type);
        return SX_OK;
    case SRV_XW_NO_STATUS:
        return sx_status_set(st, SX_EDATA, "slurm job %s ended %s%s%s before the worker wrote its "
                             "status; see slurm-%s.out in the job directory", handle, es->raw,
                             es->reason[0] ? ", exit " : "", es->reason, handle);
    case SRV_XW_SYSTEM:
        return sx_status_set(st, SX_EIO, "slurm job %s ended %s%s%s: the cluster failed, not the "
                             "job; submit it again", handle, es->raw, es->reason[0] ? " " : "",
                             es->reason);
    case SRV_XW_CANCELED:
        return sx_status_set(st, SX_ECANCELED, "canceled at the cluster (scancel by an "
                             "administrator?)");
    case SRV_XW_LOST:
        return sx_status_set(st, SX_EIO, "slurm lost job %s: neither squeue nor sacct knows it "
                             "and it wrote no final status", handle);
    }
    return SX_OK;
}

const srv_exec_ops srv_exec_slurm_ops = {
    .name = "slurm",
    .summary = "a Slurm cluster, settings slurm_*",
    .local_cores = 0, /* a worker thread only waits on the cluster */
    .keys = slurm_keys,
    .open = slurm_open,
    .close = slurm_close,
    .unit_threads = slurm_unit_threads,
    .submit = slurm_submit,
    .poll = slurm_poll,
    .cancel = slurm_cancel,
    .explain = slurm_explain,
};
