/* sx_jobtypes — what a job is, as every layer names it: the job types and the shape of an
 * option's spec. The table of options itself belongs to core/pipeline
 * (sx_pipeline_option_specs); the daemon validates requests against it through these types
 * without linking the numerics. */
#ifndef SX_JOBTYPES_H
#define SX_JOBTYPES_H

typedef enum sx_job_type {
    SX_JOB_INTEGRATE = 1,
    SX_JOB_PROJECT = 2,
    SX_JOB_TRANSFER = 4 /* label transfer (also done by project when a label is given) */
} sx_job_type;

/* "integrate" / "project" / "label_transfer" <-> enum; returns 0 when unknown. */
sx_job_type sx_job_type_parse(const char *name);
const char *sx_job_type_name(sx_job_type t);

typedef enum { SX_POPT_BOOL, SX_POPT_INT, SX_POPT_FLOAT, SX_POPT_STRING, SX_POPT_LIST } sx_popt_type;

typedef struct sx_popt_spec {
    const char *name;   /* SCALEX's spelling, e.g. "batch_name", "max_iteration" */
    sx_popt_type type;
    const char *def;    /* default as text, NULL = none */
    const char *help;
    unsigned jobs;      /* bitmask of sx_job_type it applies to */
    /* added: value checks shared by the CLI and the API */
    const char *choices; /* "a|b|c": the allowed values of a STRING option (NULL = any) */
    double lo, hi;       /* INT/FLOAT range [lo, hi], checked when lo < hi */
} sx_popt_spec;

#endif
