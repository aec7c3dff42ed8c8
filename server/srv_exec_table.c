/* srv_exec_table — the executors scalexd knows, in the order --help lists them. Adding an
 * executor is its own srv_exec_<name>.c plus one line here (and its extern below). */
#include <string.h>

#include "srv_exec_internal.h"

extern const srv_exec_ops srv_exec_local_ops;
extern const srv_exec_ops srv_exec_slurm_ops;

static const srv_exec_ops *const table[] = {
    &srv_exec_local_ops,
    &srv_exec_slurm_ops,
};

const srv_exec_ops *srv_exec_table_at(int i)
{
    return i >= 0 && i < (int)(sizeof table / sizeof table[0]) ? table[i] : NULL;
}

const srv_exec_ops *srv_exec_table_find(const char *name)
{
    for (int i = 0; name && srv_exec_table_at(i); i++)
        if (!strcmp(table[i]->name, name)) return table[i];
    return NULL;
}
