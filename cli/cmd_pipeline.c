/* cmd_pipeline — shared driver of the pipeline subcommands. */
#include "cmd_pipeline.h"

#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "sx_alloc.h"
#include "sx_cli.h"
#include "sx_log.h"

int sx_cli_exit_code(int c)
{
    switch (c) {
    case SX_OK: return 0;
    case SX_EINVAL: return 2;
    case SX_EIO:
    case SX_ENOTFOUND: return 3;
    case SX_EFORMAT:
    case SX_EUNSUPPORTED: return 4;
    case SX_EGENES: return 5;
    case SX_EDATA:
    case SX_ELIMIT: return 6;
    case SX_ENOMEM: return 7;
    case SX_ECANCELED: return 130;
    default: return 1;
    }
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

void sx_cli_progress_init(sx_cli_progress *p)
{
    memset(p, 0, sizeof *p);
    p->tty = isatty(2);
}

void sx_cli_progress_fn(void *user, const char *stage, double frac, const char *msg)
{
    sx_cli_progress *p = user;
    double t = now_s();
    int new_stage = strncmp(p->stage, stage ? stage : "", sizeof p->stage - 1) != 0;
    if (new_stage) snprintf(p->stage, sizeof p->stage, "%s", stage ? stage : "");
    if (p->tty) {
        if (!new_stage && t - p->last_print < 0.1 && frac < 1) return;
        char bar[31];
        int fill = frac >= 0 ? (int)(frac * 30 + 0.5) : 0;
        if (fill > 30) fill = 30;
        for (int i = 0; i < 30; i++) bar[i] = i < fill ? '#' : (frac >= 0 ? '.' : ' ');
        bar[30] = 0;
        if (frac >= 0)
            fprintf(stderr, "\r\033[K%-10s [%s] %3.0f%% %s", p->stage, bar, frac * 100,
                    msg ? msg : "");
        else
            fprintf(stderr, "\r\033[K%-10s %s", p->stage, msg ? msg : "");
        p->bar_shown = 1;
    } else {
        if (!new_stage && t - p->last_print < 5.0) return;
        if (frac >= 0)
            fprintf(stderr, "scalex: %s %.0f%%%s%s\n", p->stage, frac * 100, msg ? " " : "",
                    msg ? msg : "");
        else
            fprintf(stderr, "scalex: %s%s%s\n", p->stage, msg ? " " : "", msg ? msg : "");
    }
    fflush(stderr);
    p->last_print = t;
}

void sx_cli_log_sink(void *user, int level, const char *msg)
{
    sx_cli_progress *p = user;
    if (p && p->tty && p->bar_shown) {
        fputs("\r\033[K", stderr);
        p->bar_shown = 0;
    }
    fprintf(stderr, "scalex: %s%s\n", level >= SX_LOG_WARN ? "warning: " : "", msg);
}

static sx_opt_type opt_type(sx_popt_type t)
{
    switch (t) {
    case SX_POPT_BOOL: return SX_OPT_FLAG;
    case SX_POPT_INT: return SX_OPT_INT;
    case SX_POPT_FLOAT: return SX_OPT_FLOAT;
    case SX_POPT_STRING: return SX_OPT_STR;
    case SX_POPT_LIST: return SX_OPT_LIST;
    }
    return SX_OPT_STR;
}

int sx_cli_pipeline_main(sx_job_type type, const char *cmd, const char *summary, int argc,
                         char **argv)
{
    int ns, n = 0, rc = 2;
    const sx_popt_spec *sp = sx_pipeline_option_specs(&ns);
    sx_opt *opts = sx_calloc((size_t)ns + 8 + SX_ARGS_N_LIMITS, sizeof *opts);
    sx_pipeline_opts *po = sx_pipeline_opts_new();
    const char **inputs = NULL;
    int n_inputs = 0;
    sx_status st;
    sx_status_clear(&st);
    if (!opts || !po) {
        fprintf(stderr, "scalex %s: out of memory\n", cmd);
        rc = 7;
        goto out;
    }
    if (type == SX_JOB_PROJECT) {
        opts[n++] = (sx_opt){.name = "projection", .type = SX_OPT_STR,
                             .help = "reference to project onto: an integrate output folder or its "
                                     "reference.h5 (required)"};
        opts[n++] = (sx_opt){.name = "gene_table", .type = SX_OPT_STR,
                             .help = "two-column TSV, query gene -> reference gene (orthologs, "
                                     "synonyms), applied before name matching (default: "
                                     "genes.tsv in the reference folder when present)"};
    }
    if (type == SX_JOB_TRANSFER) {
        opts[n++] = (sx_opt){.name = "reference", .type = SX_OPT_STR,
                             .help = "reference: .h5ad with obsm <rep> and obs <label>, or an "
                                     "integrate folder / reference.h5 (required)"};
        opts[n++] = (sx_opt){.name = "query", .type = SX_OPT_STR,
                             .help = "query .h5ad with obsm <rep> (e.g. a project output) "
                                     "(required)"};
    }
    opts[n++] = (sx_opt){.name = "outdir", .type = SX_OPT_STR, .def = "output/",
                         .help = "output folder (-o)"};
    n = sx_args_add_limits(opts, n); /* read options, not the pipeline's: before the table */
    int first_table = n;
    for (int i = 0; i < ns; i++) {
        if (!(sp[i].jobs & (unsigned)type)) continue;
        if (type == SX_JOB_TRANSFER && strcmp(sp[i].name, "data_list") == 0) continue;
        opts[n++] = (sx_opt){.name = sp[i].name, .type = opt_type(sp[i].type),
                             .def = sp[i].type == SX_POPT_BOOL ? NULL : sp[i].def,
                             .help = sp[i].help};
    }
    if (type != SX_JOB_TRANSFER)
        opts[n++] = (sx_opt){.name = "positional", .type = SX_OPT_LIST,
                             .help = "input files (same as --data_list)"};
    int pr = sx_args_parse(cmd, summary, opts, n, argc, argv);
    if (pr == 1) {
        fprintf(stdout, "\nexit codes: 0 done, 2 bad option, 3 missing/unwritable file, 4 bad "
                        "format, 5 too few shared genes, 6 data problem, 7 out of memory, "
                        "130 canceled, 1 other\n");
        rc = 0;
        goto out;
    }
    if (pr != 0) goto out;
    /* copy what was given into the pipeline options (validated against the table) */
    for (int k = first_table; k < n; k++) {
        sx_opt *o = &opts[k];
        if (!o->set || strcmp(o->name, "positional") == 0) continue;
        char buf[64];
        int r = SX_OK;
        switch (o->type) {
        case SX_OPT_FLAG: r = sx_pipeline_opts_set(po, o->name, o->i ? "true" : "false", &st); break;
        case SX_OPT_INT:
            snprintf(buf, sizeof buf, "%lld", (long long)o->i);
            r = sx_pipeline_opts_set(po, o->name, buf, &st);
            break;
        case SX_OPT_FLOAT:
            snprintf(buf, sizeof buf, "%.17g", o->f);
            r = sx_pipeline_opts_set(po, o->name, buf, &st);
            break;
        case SX_OPT_STR: r = sx_pipeline_opts_set(po, o->name, o->str, &st); break;
        case SX_OPT_LIST:
            for (int j = 0; j < o->n_list && r == SX_OK; j++)
                r = sx_pipeline_opts_set(po, o->name, o->list[j], &st);
            break;
        }
        if (r != SX_OK) {
            fprintf(stderr, "scalex %s: %s (see scalex %s --help)\n", cmd, st.msg, cmd);
            goto out;
        }
    }
    sx_io_limits lim;
    if (sx_args_limits(cmd, opts, n, &lim)) goto out;
    sx_opt *pos = sx_args_get(opts, n, "positional");
    const char *const *dl = NULL;
    int n_dl = sx_pipeline_opts_list(po, "data_list", &dl);
    const char *reference = NULL;
    if (type == SX_JOB_TRANSFER) {
        sx_opt *r = sx_args_get(opts, n, "reference"), *q = sx_args_get(opts, n, "query");
        if (!r->set || !q->set) {
            fprintf(stderr, "scalex %s: --reference and --query are required (see --help)\n", cmd);
            goto out;
        }
        reference = r->str;
        inputs = sx_calloc(1, sizeof *inputs);
        if (!inputs) goto out;
        inputs[0] = q->str;
        n_inputs = 1;
    } else {
        n_inputs = n_dl + (pos ? pos->n_list : 0);
        inputs = sx_calloc((size_t)n_inputs + 1, sizeof *inputs);
        if (!inputs) goto out;
        for (int j = 0; j < n_dl; j++) inputs[j] = dl[j];
        for (int j = 0; pos && j < pos->n_list; j++) inputs[n_dl + j] = pos->list[j];
        if (n_inputs == 0) {
            fprintf(stderr, "scalex %s: no input data: give --data_list FILE... (see --help)\n",
                    cmd);
            goto out;
        }
        if (type == SX_JOB_PROJECT) {
            sx_opt *r = sx_args_get(opts, n, "projection");
            if (!r->set) {
                fprintf(stderr, "scalex %s: --projection REFDIR is required (see --help)\n", cmd);
                goto out;
            }
            reference = r->str;
        }
    }
    sx_cli_progress cp;
    sx_cli_progress_init(&cp);
    sx_log_set_sink(sx_cli_log_sink, &cp, SX_LOG_INFO);
    sx_progress prog = {.fn = sx_cli_progress_fn, .user = &cp, .cancel = NULL};
    sx_job_spec job = {.type = type,
                       .inputs = inputs,
                       .n_inputs = n_inputs,
                       .reference = reference,
                       .outdir = sx_args_get(opts, n, "outdir")->str,
                       .opts = po,
                       .threads = 0,
                       .gene_table = type == SX_JOB_PROJECT && sx_args_get(opts, n, "gene_table")->set
                                         ? sx_args_get(opts, n, "gene_table")->str
                                         : NULL,
                       .limits = &lim};
    int r = sx_pipeline_run(&job, &prog, &st);
    if (cp.tty && cp.bar_shown) fputs("\r\033[K", stderr);
    sx_log_set_sink(NULL, NULL, SX_LOG_WARN);
    if (r != SX_OK) {
        fprintf(stderr, "scalex %s: error (%s): %s\n", cmd, sx_errname(r), st.msg);
        rc = sx_cli_exit_code(r);
    } else {
        fprintf(stderr, "scalex %s: results in %s\n", cmd, job.outdir);
        rc = 0;
    }
out:
    if (opts) sx_args_free(opts, n);
    sx_free(opts);
    sx_free(inputs);
    sx_pipeline_opts_free(po);
    return rc;
}
