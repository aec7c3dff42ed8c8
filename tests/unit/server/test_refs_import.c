/* srv_refs_add with an import (a foreign reference folder, e.g. SCALEX's outdir), driven by a
 * fake import so the registry side is tested without the numerics: the folder is detected, its
 * converter writes reference.h5, the listed files are kept byte for byte under <source>/, the
 * catalog row says source / source_version / cells / genes; our own folders say "scalexd"; a
 * failed conversion leaves no reference and no leftover folder; a folder neither kind is
 * refused with a message naming both. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "srv_refs.h"
#include "srv_registry.h"
#include "sx_test.h"

static void put_file(const char *dir, const char *rel, const char *text)
{
    char p[1200];
    snprintf(p, sizeof p, "%s/%s", dir, rel);
    char *slash = strrchr(p, '/');
    *slash = 0;
    mkdir(p, 0755);
    *slash = '/';
    FILE *f = fopen(p, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
}

/* a fresh fake SCALEX folder <tmp>/<name> with checkpoint/model.pt = "weights" */
static void scalex_dir(char *out, size_t cap, const char *name)
{
    snprintf(out, cap, "%s/%s", sx_test_tmpdir(), name);
    mkdir(out, 0755);
    put_file(out, "checkpoint/model.pt", "weights");
}

static int same_text(const char *path, const char *text)
{
    char buf[256] = {0};
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    return n == strlen(text) && !memcmp(buf, text, n);
}

static int fake_detect(const char *dir)
{
    char p[1200];
    snprintf(p, sizeof p, "%s/checkpoint/model.pt", dir);
    struct stat sb;
    return stat(p, &sb) == 0;
}

static int fake_convert(const char *dir, const char *out_h5, srv_ref_import_info *info,
                        sx_status *st)
{
    char p[1200];
    snprintf(p, sizeof p, "%s/broken", dir);
    struct stat sb;
    if (stat(p, &sb) == 0) return sx_status_set(st, SX_EFORMAT, "model.pt: truncated");
    FILE *f = fopen(out_h5, "w");
    if (!f) return sx_status_set(st, SX_EIO, "cannot write");
    fputs("converted", f);
    fclose(f);
    info->n_cells = 910;
    info->n_genes = 1467;
    snprintf(info->version, sizeof info->version, "%s", strstr(dir, "v107") ? "1.0.7" : "");
    return SX_OK;
}

static const char *const keep[] = {"checkpoint/model.pt", "log.txt", "absent.txt", NULL};
static const srv_ref_import imp = {"scalex", "a folder SCALEX wrote", fake_detect, fake_convert,
                                   keep};

typedef struct env {
    srv_registry *reg;
    srv_db *db;
    const char *data;
} env;

static void env_open(env *e)
{
    sx_status st = {0};
    e->data = sx_test_tmpdir();
    e->reg = srv_registry_open(e->data, &st);
    ck_assert_msg(e->reg != NULL, "%s", st.msg);
    e->db = srv_registry_get(e->reg, &st);
    ck_assert_msg(e->db != NULL, "%s", st.msg);
}

static void env_close(env *e)
{
    srv_registry_put(e->reg, e->db);
    srv_registry_close(e->reg);
}

static json_t *row(env *e, const char *name)
{
    sx_status st = {0};
    json_t *j = srv_ref_get(e->db, name, &st);
    ck_assert_msg(j != NULL, "%s", st.msg);
    return j;
}

START_TEST(scalex_folder_imported)
{
    env e;
    env_open(&e);
    char src[600];
    scalex_dir(src, sizeof src, "v107");
    put_file(src, "log.txt", "log");
    sx_status st = {0};
    srv_ref_add a = {.name = "pbmc", .src_dir = src, .import = &imp,
                     .label_columns_json = "[\"cell_type\"]"};
    ck_assert_msg(srv_refs_add(e.db, e.data, &a, &st) == SX_OK, "%s", st.msg);
    char p[1200];
    snprintf(p, sizeof p, "%s/references/pbmc/reference.h5", e.data);
    ck_assert(same_text(p, "converted"));
    snprintf(p, sizeof p, "%s/references/pbmc/scalex/checkpoint/model.pt", e.data);
    ck_assert(same_text(p, "weights"));
    snprintf(p, sizeof p, "%s/references/pbmc/scalex/log.txt", e.data);
    ck_assert(same_text(p, "log"));
    json_t *j = row(&e, "pbmc");
    ck_assert_str_eq(json_string_value(json_object_get(j, "source")), "scalex");
    ck_assert_str_eq(json_string_value(json_object_get(j, "source_version")), "1.0.7");
    ck_assert_int_eq(json_integer_value(json_object_get(j, "cells")), 910);
    ck_assert_int_eq(json_integer_value(json_object_get(j, "genes")), 1467);
    ck_assert_str_eq(json_string_value(json_array_get(json_object_get(j, "label_columns"), 0)),
                     "cell_type");
    json_decref(j);
    /* the same name again */
    ck_assert_int_eq(srv_refs_add(e.db, e.data, &a, &st), SX_ESTATE);
    env_close(&e);
}
END_TEST

START_TEST(version_null_and_own_folders)
{
    env e;
    env_open(&e);
    char src[600], own[600];
    scalex_dir(src, sizeof src, "plain");
    snprintf(own, sizeof own, "%s", sx_test_tmpdir());
    put_file(own, "reference.h5", "ours");
    sx_status st = {0};
    srv_ref_add a = {.name = "s", .src_dir = src, .import = &imp};
    ck_assert_msg(srv_refs_add(e.db, e.data, &a, &st) == SX_OK, "%s", st.msg);
    srv_ref_add b = {.name = "o", .src_dir = own, .import = &imp};
    ck_assert_msg(srv_refs_add(e.db, e.data, &b, &st) == SX_OK, "%s", st.msg);
    json_t *j = row(&e, "s");
    ck_assert(json_is_null(json_object_get(j, "source_version")));
    json_decref(j);
    j = row(&e, "o");
    ck_assert_str_eq(json_string_value(json_object_get(j, "source")), "scalexd");
    ck_assert_str_eq(json_string_value(json_object_get(j, "source_version")),
                     json_string_value(json_object_get(j, "model_version")));
    json_decref(j);
    env_close(&e);
}
END_TEST

START_TEST(failures_leave_nothing)
{
    env e;
    env_open(&e);
    char src[600], empty[600];
    scalex_dir(src, sizeof src, "bad");
    put_file(src, "broken", "");
    sx_status st = {0};
    srv_ref_add a = {.name = "bad", .src_dir = src, .import = &imp};
    ck_assert_int_eq(srv_refs_add(e.db, e.data, &a, &st), SX_EFORMAT);
    ck_assert_ptr_nonnull(strstr(st.msg, "truncated"));
    ck_assert_ptr_null(srv_ref_get(e.db, "bad", &st));
    char p[1200];
    snprintf(p, sizeof p, "%s/references", e.data);
    DIR *d = opendir(p);
    struct dirent *de;
    while (d && (de = readdir(d)))
        ck_assert_msg(de->d_name[0] == '.' && (!de->d_name[1] || !strcmp(de->d_name, "..")),
                      "left over: %s", de->d_name);
    if (d) closedir(d);
    snprintf(empty, sizeof empty, "%s", sx_test_tmpdir());
    srv_ref_add b = {.name = "none", .src_dir = empty, .import = &imp};
    ck_assert_int_eq(srv_refs_add(e.db, e.data, &b, &st), SX_ENOTFOUND);
    ck_assert_msg(strstr(st.msg, "reference.h5") && strstr(st.msg, "SCALEX wrote"), "%s", st.msg);
    env_close(&e);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("refs_import");
    TCase *tc = tcase_create("import");
    tcase_add_test(tc, scalex_folder_imported);
    tcase_add_test(tc, version_null_and_own_folders);
    tcase_add_test(tc, failures_leave_nothing);
    suite_add_tcase(s, tc);
    return sx_test_run(s);
}
