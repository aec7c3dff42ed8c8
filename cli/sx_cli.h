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

#endif
