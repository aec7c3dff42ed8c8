/* srv_exec_slurm — the Slurm executor: sbatch / squeue / sacct / scancel.
 *
 * A unit is JOBDIR/slurm.sh (`exec WORKER run-job JOBDIR`) submitted with
 * `sbatch --parsable`; its output goes to JOBDIR/slurm-<id>.out. State comes from squeue
 * while slurmctld remembers the job (MinJobAge), then from sacct; Slurm's state words map
 * to the job states as in srv_slurm_map_state. The commands are run by their configured
 * names (a PATH lookup without '/'), so a test or a site wrapper can stand in for them.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "srv_exec_internal.h"
#include "srv_util.h"

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

static int slurm_submit(srv_exec *x, const char *jobdir, const char *job_id, const srv_exec_res *res,
                        char handle[64], sx_status *st)
{
    char script[4200], qw[2200], qd[8400], text[12000];
    snprintf(script, sizeof script, "%s/slurm.sh", jobdir);
    sh_quote(qw, sizeof qw, x->cfg.worker);
    sh_quote(qd, sizeof qd, jobdir);
    snprintf(text, sizeof text,
             "#!/bin/sh\n# scalexd job %s: run on a compute node by Slurm\n"
             "exec %s run-job %s\n", job_id, qw, qd);
    int rc = srv_write_file_atomic(script, text, strlen(text), st);
    if (rc) return rc;
    char a_name[96], a_chdir[4200], a_out[4200], a_cpus[32], a_mem[48], a_time[48], a_part[160],
        a_acct[160];
    char *argv[16];
    int k = 0;
    argv[k++] = x->cfg.sbatch;
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
    const char *part = res->partition[0] ? res->partition : x->cfg.partition;
    if (part[0]) {
        snprintf(a_part, sizeof a_part, "--partition=%s", part);
        argv[k++] = a_part;
    }
    if (x->cfg.account[0]) {
        snprintf(a_acct, sizeof a_acct, "--account=%s", x->cfg.account);
        argv[k++] = a_acct;
    }
    argv[k++] = script;
    argv[k] = NULL;
    char out[1024], err[512];
    int ex = srv_exec_command(argv, out, sizeof out, err, sizeof err);
    if (ex < 0)
        return sx_status_set(st, SX_EIO, "cannot run '%s': set slurm_sbatch to the sbatch of the "
                             "cluster", x->cfg.sbatch);
    if (ex != 0)
        return sx_status_set(st, SX_EIO, "sbatch refused job %s (exit %d): %s", job_id, ex,
                             err[0] ? err : out);
    return srv_slurm_parse_sbatch(out, handle, st);
}

static int slurm_poll(srv_exec *x, const char *handle, srv_exec_status *s, sx_status *st)
{
    char out[8192], err[512];
    /* -t all: without it squeue hides finished jobs it still remembers */
    char *qv[] = {x->cfg.squeue, (char *)"-h", (char *)"-t", (char *)"all", (char *)"-j",
                  (char *)handle, (char *)"-o", (char *)"%i|%T|%r", NULL};
    int ex = srv_exec_command(qv, out, sizeof out, err, sizeof err);
    if (ex < 0) return sx_status_set(st, SX_EIO, "cannot run '%s' (slurm_squeue)", x->cfg.squeue);
    /* squeue exits 1 with "Invalid job id specified" once slurmctld forgot the job */
    if (ex == 0 && srv_slurm_parse_squeue(out, handle, s)) return SX_OK;
    if (ex != 0 && !strstr(err, "Invalid job id"))
        return sx_status_set(st, SX_EIO, "squeue -j %s failed (exit %d): %s", handle, ex, err);
    char *av[] = {x->cfg.sacct, (char *)"-n", (char *)"-P", (char *)"-X", (char *)"-j",
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
    char out[512], err[512];
    char *argv[] = {x->cfg.scancel, (char *)handle, NULL};
    int ex = srv_exec_command(argv, out, sizeof out, err, sizeof err);
    if (ex < 0) return sx_status_set(st, SX_EIO, "cannot run '%s' (slurm_scancel)", x->cfg.scancel);
    if (ex != 0) return sx_status_set(st, SX_EIO, "scancel %s failed (exit %d): %s", handle, ex, err);
    return SX_OK;
}

const srv_exec_ops srv_exec_slurm_ops = {"slurm", NULL, slurm_submit, slurm_poll, slurm_cancel};
