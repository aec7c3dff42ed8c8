/* The executor table: names resolve to executors, an unknown name is refused with a message
 * listing the known ones, every executor's settings are reachable through the config
 * system under the names deploy/slurm/README.md documents (config file, flags, SCALEXD_*
 * environment), with their documented defaults, and each entry is complete. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "srv_config.h"
#include "srv_exec.h"
#include "srv_exec_internal.h"
#include "srv_registry.h"
#include "srv_util.h"
#include "sx_test.h"

START_TEST(names_resolve)
{
    sx_status st;
    srv_exec_config c;
    srv_exec_config_defaults(&c);
    ck_assert_str_eq(c.executor, "local");
    srv_exec *x = srv_exec_new(&c, NULL, NULL, NULL, NULL, NULL, &st);
    ck_assert_msg(x != NULL, "%s", st.msg);
    ck_assert_str_eq(srv_exec_name(x), "local");
    ck_assert(srv_exec_is_local(x));
    srv_exec_free(x);
    ck_assert(srv_exec_config_in_process(&c) && srv_exec_config_local_cores(&c));

    ck_assert_int_eq(srv_exec_config_set(&c, "executor", "slurm", &st), SX_OK);
    ck_assert(!srv_exec_config_in_process(&c) && !srv_exec_config_local_cores(&c));
    /* a unit elsewhere needs the registry to keep its id */
    ck_assert_ptr_null(srv_exec_new(&c, NULL, NULL, NULL, NULL, NULL, &st));
    ck_assert_ptr_nonnull(strstr(st.msg, "registry"));
    srv_registry *reg = srv_registry_open(sx_test_tmpdir(), &st);
    ck_assert_msg(reg != NULL, "%s", st.msg);
    x = srv_exec_new(&c, reg, NULL, NULL, NULL, NULL, &st);
    ck_assert_msg(x != NULL, "%s", st.msg);
    ck_assert_str_eq(srv_exec_name(x), "slurm");
    ck_assert(!srv_exec_is_local(x));
    srv_exec_free(x);
    srv_registry_close(reg);
}
END_TEST

START_TEST(unknown_refused_with_the_list)
{
    sx_status st;
    srv_exec_config c;
    srv_exec_config_defaults(&c);
    /* through the config system: refused when set */
    srv_config cfg;
    srv_config_defaults(&cfg);
    ck_assert_int_eq(srv_config_set(&cfg, "executor", "pbs", &st), SX_EINVAL);
    ck_assert_ptr_nonnull(strstr(st.msg, "'pbs'"));
    /* every executor is named, and only those of the table */
    int n = 0;
    for (const srv_exec_ops *o; (o = srv_exec_table_at(n)) != NULL; n++)
        ck_assert_msg(strstr(st.msg, o->name), "'%s' lacks %s", st.msg, o->name);
    ck_assert_int_eq(n, 2);
    ck_assert_ptr_nonnull(strstr(st.msg, "local or slurm")); /* deploy/slurm/README.md's words */
    ck_assert_str_eq(cfg.exec.executor, "local");          /* unchanged */
    /* a configuration built by hand: refused when the executor is made */
    snprintf(c.executor, sizeof c.executor, "kubernetes");
    ck_assert_ptr_null(srv_exec_new(&c, NULL, NULL, NULL, NULL, NULL, &st));
    ck_assert_ptr_nonnull(strstr(st.msg, "expected local or slurm, got 'kubernetes'"));
    ck_assert_ptr_null(srv_exec_table_find("kubernetes"));
    ck_assert_ptr_null(srv_exec_table_find(NULL));
}
END_TEST

/* the setting names in the README's table (`name` in the first column) */
static int readme_settings(char names[][64], int cap)
{
    sx_status st;
    char *doc = srv_read_file(sx_test_source("deploy/slurm/README.md"), 1 << 20, NULL, &st);
    ck_assert_msg(doc != NULL, "%s", st.msg);
    int n = 0;
    for (char *line = strtok(doc, "\n"); line; line = strtok(NULL, "\n")) {
        if (strncmp(line, "| `", 3)) continue;
        /* "| `a`, `b` | ..." : every `name` before the second '|' */
        char *end = strchr(line + 1, '|');
        for (char *p = line; end && (p = strchr(p, '`')) && p < end;) {
            char *q = strchr(p + 1, '`');
            if (!q || q > end) break;
            ck_assert_int_lt(n, cap);
            snprintf(names[n++], 64, "%.*s", (int)(q - p - 1), p + 1);
            p = q + 1;
        }
    }
    free(doc);
    return n;
}

START_TEST(settings_match_the_docs)
{
    char names[64][64];
    int n = readme_settings(names, 64);
    ck_assert_int_ge(n, 12);
    srv_exec_config c;
    srv_exec_config_defaults(&c);
    for (int i = 0; i < n; i++)
        ck_assert_msg(srv_exec_config_get(&c, names[i]) != NULL, "documented %s is no setting",
                      names[i]);
    const srv_exec_key *k;
    int nk = 0;
    for (; (k = srv_exec_key_at(nk)) != NULL; nk++) {
        int documented = 0;
        for (int i = 0; i < n; i++) documented |= !strcmp(names[i], k->name);
        ck_assert_msg(documented, "%s is not in deploy/slurm/README.md", k->name);
        char help[1024];
        ck_assert(srv_exec_key_help(k, help, sizeof help)[0]);
    }
    ck_assert_int_eq(nk, n);
    /* the README's defaults */
    ck_assert_str_eq(srv_exec_config_get(&c, "executor"), "local");
    ck_assert_str_eq(srv_exec_config_get(&c, "slurm_worker"), "scalex");
    ck_assert_str_eq(srv_exec_config_get(&c, "slurm_poll"), "5");
    ck_assert_str_eq(srv_exec_config_get(&c, "slurm_sbatch"), "sbatch");
    ck_assert_str_eq(srv_exec_config_get(&c, "slurm_partition"), "");
    ck_assert_ptr_null(srv_exec_config_get(&c, "slurm_gpus"));
}
END_TEST

START_TEST(settings_through_the_config_system)
{
    sx_status st;
    const char *dir = sx_test_tmpdir();
    char path[1024];
    snprintf(path, sizeof path, "%s/scalexd.conf", dir);
    FILE *f = fopen(path, "w");
    fputs("# deploy/slurm/README.md's example\nexecutor = slurm\n"
          "slurm_worker = /shared/opt/scalex/bin/scalex\nslurm_partition = short\n"
          "slurm_integrate = cpus=8,mem=32G,time=04:00:00,partition=long\nslurm_poll = 5\n",
          f);
    fclose(f);
    setenv("SCALEXD_SLURM_ACCOUNT", "singlecell", 1);
    setenv("SCALEXD_SLURM_PARTITION", "medium", 1); /* the environment beats the file */
    char *argv[] = {"scalexd", "--config", path, "--slurm-poll", "0.5", "--slurm-sbatch=/x/sbatch",
                    NULL};
    srv_config c;
    srv_config_defaults(&c);
    ck_assert_int_eq(srv_config_load(&c, 6, argv, 1, &st), SX_OK);
    unsetenv("SCALEXD_SLURM_ACCOUNT");
    unsetenv("SCALEXD_SLURM_PARTITION");
    ck_assert_str_eq(c.exec.executor, "slurm");
    ck_assert_str_eq(srv_exec_config_get(&c.exec, "slurm_worker"), "/shared/opt/scalex/bin/scalex");
    ck_assert_str_eq(srv_exec_config_get(&c.exec, "slurm_partition"), "medium");
    ck_assert_str_eq(srv_exec_config_get(&c.exec, "slurm_account"), "singlecell");
    ck_assert_str_eq(srv_exec_config_get(&c.exec, "slurm_poll"), "0.5");
    ck_assert_str_eq(srv_exec_config_get(&c.exec, "slurm_sbatch"), "/x/sbatch");
    ck_assert_str_eq(srv_exec_config_get(&c.exec, "slurm_integrate"),
                     "cpus=8,mem=32G,time=04:00:00,partition=long");
    ck_assert_str_eq(srv_exec_config_get(&c.exec, "slurm_squeue"), "squeue");
    /* values are checked like the other settings */
    ck_assert_int_eq(srv_config_set(&c, "slurm-poll", "soon", &st), SX_EINVAL);
    ck_assert_ptr_nonnull(strstr(st.msg, "expected a number of seconds"));
    ck_assert_int_eq(srv_config_set(&c, "slurm_poll", "-1", &st), SX_EINVAL);
    ck_assert_int_eq(srv_config_set(&c, "slurm_nodes", "4", &st), SX_EINVAL);
    ck_assert_ptr_nonnull(strstr(st.msg, "unknown setting 'slurm_nodes'"));
    /* bad resources are refused when the executor starts, naming the setting */
    ck_assert_int_eq(srv_config_set(&c, "slurm_project", "cpus=0", &st), SX_OK);
    srv_registry *reg = srv_registry_open(dir, &st);
    ck_assert_ptr_null(srv_exec_new(&c.exec, reg, NULL, NULL, NULL, NULL, &st));
    ck_assert_ptr_nonnull(strstr(st.msg, "slurm_project: "));
    ck_assert_ptr_nonnull(strstr(st.msg, "cpus=0"));
    srv_registry_close(reg);
}
END_TEST

/* what the table promises: a new executor is its own file plus one line */
START_TEST(entries_complete)
{
    for (int i = 0; srv_exec_table_at(i); i++) {
        const srv_exec_ops *o = srv_exec_table_at(i);
        ck_assert_ptr_eq(srv_exec_table_find(o->name), o);
        ck_assert(o->summary && o->summary[0]);
        ck_assert_msg(o->run || (o->submit && o->poll && o->cancel), "%s: neither in-process nor "
                      "submit/poll/cancel", o->name);
        size_t nl = strlen(o->name);
        for (const srv_exec_key *k = o->keys; k && k->name; k++) {
            ck_assert_msg(!strncmp(k->name, o->name, nl) && k->name[nl] == '_',
                          "%s's setting %s does not start with '%s_'", o->name, k->name, o->name);
            ck_assert(k->def && k->help);
        }
    }
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("exec_table");
    TCase *t = tcase_create("table");
    tcase_add_test(t, names_resolve);
    tcase_add_test(t, unknown_refused_with_the_list);
    tcase_add_test(t, settings_match_the_docs);
    tcase_add_test(t, settings_through_the_config_system);
    tcase_add_test(t, entries_complete);
    suite_add_tcase(s, t);
    return s;
}

int main(void) { return sx_test_run(suite()); }
