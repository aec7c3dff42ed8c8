/* srv_exec_slurm — the pieces of the Slurm executor exposed for unit tests (the executor
 * itself is reached through the executor table: executor = slurm). */
#ifndef SRV_EXEC_SLURM_H
#define SRV_EXEC_SLURM_H

#include "srv_exec.h"

/* Slurm state word (squeue %T / sacct State, e.g. "CANCELLED by 0", "OUT_OF_MEMORY") ->
 * executor state. Unknown words map to SRV_X_UNKNOWN. */
srv_xstate srv_slurm_map_state(const char *slurm_state);
/* `sbatch --parsable` output ("1234" or "1234;cluster") -> id into handle[64]. */
int srv_slurm_parse_sbatch(const char *out, char handle[64], sx_status *st);
/* `squeue -h -j ID -o %i|%T|%r` output -> status of ID; returns 1 when ID is listed, 0 when
 * not (a predicate, not an error). */
int srv_slurm_parse_squeue(const char *out, const char *id, srv_exec_status *s);
/* `sacct -n -P -X -j ID -o JobIDRaw,State,ExitCode` output -> status of ID; 1 when listed. */
int srv_slurm_parse_sacct(const char *out, const char *id, srv_exec_status *s);

/* Resources of one submission, from a slurm_<type> setting. */
typedef struct srv_slurm_res {
    int cpus;            /* 0 = the job's thread budget */
    char mem[32];        /* "16G", "" = cluster default */
    char time[32];       /* "04:00:00", "" = partition default */
    char partition[128]; /* "" = slurm_partition */
} srv_slurm_res;

/* "cpus=4,mem=16G,time=04:00:00,partition=p" -> res (SX_EINVAL with a message if bad). */
int srv_slurm_parse_res(const char *spec, srv_slurm_res *res, sx_status *st);

#endif
