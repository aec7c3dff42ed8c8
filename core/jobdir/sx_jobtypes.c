/* sx_jobtypes — see sx_jobtypes.h. */
#include "sx_jobtypes.h"

#include <string.h>

sx_job_type sx_job_type_parse(const char *name)
{
    if (!name) return 0;
    if (strcmp(name, "integrate") == 0) return SX_JOB_INTEGRATE;
    if (strcmp(name, "project") == 0 || strcmp(name, "projection") == 0) return SX_JOB_PROJECT;
    if (strcmp(name, "label_transfer") == 0 || strcmp(name, "transfer") == 0)
        return SX_JOB_TRANSFER;
    return 0;
}

const char *sx_job_type_name(sx_job_type t)
{
    switch (t) {
    case SX_JOB_INTEGRATE: return "integrate";
    case SX_JOB_PROJECT: return "project";
    case SX_JOB_TRANSFER: return "label_transfer";
    }
    return "unknown";
}
