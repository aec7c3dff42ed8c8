/* sx_cli — the `scalex` command: subcommand entry points and a small option parser that
 * every subcommand uses, so `--help` always lists each option with its default and a bad
 * option always exits 2 with a message saying what to change.
 *
 * Subcommands are weak symbols: main.c lists them all; a subcommand whose source is not in
 * the build reports that instead of failing to link.
 */
#ifndef SX_CLI_H
#define SX_CLI_H

#include <stdint.h>
#include <stdio.h>

#include "sx_io_limits.h"

#define SX_CMD(name) int sx_cmd_##name(int argc, char **argv)
SX_CMD(inspect) __attribute__((weak));
SX_CMD(convert) __attribute__((weak));
SX_CMD(preprocess) __attribute__((weak));
SX_CMD(integrate) __attribute__((weak));
SX_CMD(project) __attribute__((weak));
SX_CMD(transfer) __attribute__((weak));
SX_CMD(run_job) __attribute__((weak));

typedef enum { SX_OPT_FLAG, SX_OPT_STR, SX_OPT_INT, SX_OPT_FLOAT, SX_OPT_LIST } sx_opt_type;

typedef struct sx_opt {
    const char *name;     /* long name without dashes, SCALEX's spelling: "batch_name" */
    sx_opt_type type;
    const char *def;      /* default as text (NULL = none); shown by --help */
    const char *help;
    /* filled by sx_args_parse */
    int set;              /* given on the command line */
    const char *str;      /* STR: value (or def) */
    int64_t i;            /* INT (or FLAG: 1 when given) */
    double f;             /* FLOAT */
    const char **list;    /* LIST: values (points into argv), n_list of them */
    int n_list;
} sx_opt;

/* Parse argv[1..] against opts[0..n). Also accepts --name=value and -o as --outdir /
 * --output when such an option exists. Positional arguments go to the option named
 * "positional" if present (type LIST), else are an error. Returns 0, 1 when --help was
 * printed (caller exits 0), or 2 after printing the error (caller exits 2).
 * The list arrays are allocated; release with sx_args_free. */
int sx_args_parse(const char *cmd, const char *summary, sx_opt *opts, int n, int argc,
                  char **argv);
void sx_args_free(sx_opt *opts, int n);
sx_opt *sx_args_get(sx_opt *opts, int n, const char *name);
void sx_args_usage(const char *cmd, const char *summary, const sx_opt *opts, int n, FILE *to);

/* The input size budget as options, for every command that reads user files: the limits of
 * sx_io_limits.h, spelt as scalexd's settings (the defaults shown are that header's). Put the
 * rows in an option table with SX_ARGS_LIMIT_OPTS (or append them with sx_args_add_limits),
 * then read them after sx_args_parse with sx_args_limits. */
#define SX_ARGS_N_LIMITS 6
#define SX_ARGS_LIMIT_OPTS                                                                       \
    {.name = "max_cells", .type = SX_OPT_INT, .def = "2000000",                                 \
     .help = "refuse an input with more cells"},                                                \
    {.name = "max_genes", .type = SX_OPT_INT, .def = "1000000",                                 \
     .help = "refuse an input with more genes, features or peaks"},                             \
    {.name = "max_nnz", .type = SX_OPT_INT, .def = "4000000000",                                \
     .help = "refuse a matrix with more stored entries"},                                       \
    {.name = "max_inflate_ratio", .type = SX_OPT_FLOAT, .def = "100",                           \
     .help = "bytes an input may decompress or declare per byte of file (+16 MiB)"},            \
    {.name = "max_inflate_bytes", .type = SX_OPT_INT, .def = "68719476736",                     \
     .help = "bytes any input may decompress or declare at most"},                              \
    {.name = "max_line_bytes", .type = SX_OPT_INT, .def = "67108864",                           \
     .help = "longest line of a text input"}
/* Append the SX_ARGS_N_LIMITS rows at opts[n..] (room is the caller's); returns the new n. */
int sx_args_add_limits(sx_opt *opts, int n);
/* After sx_args_parse: the limits given on the command line into *l (those not given stay 0,
 * i.e. the defaults). 0, or 2 after printing which value to change. */
int sx_args_limits(const char *cmd, const sx_opt *opts, int n, sx_io_limits *l);

#endif
