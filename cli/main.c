/* scalex — the command line: SCALEX's workflows on the libscalex engine. */
#include <stdio.h>
#include <string.h>

#include "sx_cli.h"
#include "sx_h5.h"

typedef int (*cmd_fn)(int, char **);

static const struct {
    const char *name;
    cmd_fn fn;
    const char *what;
} cmds[] = {
    {"inspect", sx_cmd_inspect, "summarise input files (format, shape, nnz, columns)"},
    {"convert", sx_cmd_convert, "convert any supported input(s) to .h5ad"},
    {"preprocess", sx_cmd_preprocess, "SCALEX preprocessing to a processed .h5ad"},
    {"integrate", sx_cmd_integrate, "integrate batches: preprocess, train, embed"},
    {"project", sx_cmd_project, "project a query onto a trained reference"},
    {"transfer", sx_cmd_transfer, "transfer labels from a reference to a query by kNN"},
    {"run-job", sx_cmd_run_job, "run a job directory (used by executors)"},
};

static void usage(FILE *to)
{
    fprintf(to, "usage: scalex COMMAND [options]   (scalex COMMAND --help for its options)\n\n"
                "commands:\n");
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
        if (cmds[i].fn) fprintf(to, "  %-12s %s\n", cmds[i].name, cmds[i].what);
    fprintf(to, "\nscalex %s\n", SX_VERSION);
}

int main(int argc, char **argv)
{
    sx_h5_quiet();
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("scalex %s\n", SX_VERSION);
        return 0;
    }
    /* SCALEX.py form: `scalex --data_list ... [--projection DIR]` */
    if (strncmp(argv[1], "--", 2) == 0) {
        int projection = 0;
        for (int i = 1; i < argc; i++)
            if (strcmp(argv[i], "--projection") == 0 || strncmp(argv[i], "--projection=", 13) == 0)
                projection = 1;
        cmd_fn fn = projection ? sx_cmd_project : sx_cmd_integrate;
        if (fn) return fn(argc, argv);
    }
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
        if (strcmp(argv[1], cmds[i].name) != 0) continue;
        if (!cmds[i].fn) {
            fprintf(stderr, "scalex: command '%s' is not part of this build\n", argv[1]);
            return 2;
        }
        return cmds[i].fn(argc - 1, argv + 1);
    }
    fprintf(stderr, "scalex: unknown command '%s'\n\n", argv[1]);
    usage(stderr);
    return 2;
}
