/* cmd_pipeline — what `scalex integrate / project / transfer / run-job` share: the option
 * table of core/pipeline turned into sx_opt rows, the terminal progress display and the
 * exit-code convention. */
#ifndef CMD_PIPELINE_H
#define CMD_PIPELINE_H

#include "sx_pipeline.h"

/* Exit codes: 0 success; 2 bad usage or option value; 3 input/output (missing or unreadable
 * file, cannot write); 4 unsupported or corrupt input format; 5 query and reference share
 * too few genes; 6 data problem (e.g. no cell survives the filters); 7 out of memory;
 * 130 canceled; 1 anything else. */
int sx_cli_exit_code(int sx_code);

/* Run a pipeline job of `type` from argv (argv[0] is the command name). `extra` names the
 * command-specific options: "projection" (project), "reference"+"query" (transfer). */
int sx_cli_pipeline_main(sx_job_type type, const char *cmd, const char *summary, int argc,
                         char **argv);

/* Progress display on stderr: a one-line bar (stage, fraction, message: epoch, loss, it/s,
 * ETA) on a terminal, otherwise plain lines at most every few seconds and at stage changes. */
typedef struct sx_cli_progress {
    int tty;
    double last_print;
    char stage[32];
    int bar_shown;
} sx_cli_progress;
void sx_cli_progress_init(sx_cli_progress *p);
void sx_cli_progress_fn(void *user, const char *stage, double frac, const char *msg);
/* Log sink for the CLI: INFO lines to stderr (clearing the bar first). */
void sx_cli_log_sink(void *user, int level, const char *msg);

#endif
