/* srv_exec_internal — the executor object shared by srv_exec*.c (not for other files). */
#ifndef SRV_EXEC_INTERNAL_H
#define SRV_EXEC_INTERNAL_H

#include "srv_exec.h"

struct srv_exec {
    srv_exec_config cfg;
    const srv_exec_ops *ops;
    struct srv_registry *reg;
    srv_exec_fn local_fn, after;
    void *local_user, *after_user;
};

extern const srv_exec_ops srv_exec_local_ops;
extern const srv_exec_ops srv_exec_slurm_ops;

#endif
