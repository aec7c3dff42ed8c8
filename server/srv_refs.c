#include "srv_refs.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "srv_layout.h"
#include "srv_util.h"

/* hard link (same filesystem, free and immutable enough: results are never rewritten in
 * place) or copy */
static int place(const char *src, const char *dst, sx_status *st)
{
    if (link(src, dst) == 0) return SX_OK;
    return srv_copy_file(src, dst, st);
}

static json_t *first_of(json_t *o, const char *const *keys)
{
    for (; *keys; keys++) {
        json_t *v = json_object_get(o, *keys);
        if (v) return v;
    }
    return NULL;
}

/* 1 when the source is a foreign folder the import converts (never for a job's folder) */
static int importing(const srv_ref_add *a)
{
    return a->import && !a->job_id && a->import->detect(a->src_dir);
}

/* A new reference's name and source: a valid name nobody took, and a reference.h5 in the
 * source directory (or a foreign folder the import converts). */
static int check_new(srv_db *db, const srv_ref_add *a, sx_status *st)
{
    if (!srv_name_ok(a->name))
        return sx_status_set(st, SX_EINVAL, "reference name '%s' is not valid: use 1-64 letters, "
                             "digits, '.', '_' or '-'", a->name ? a->name : "");
    char src[4200];
    snprintf(src, sizeof src, "%s/reference.h5", a->src_dir);
    if (!srv_file_exists(src) && !importing(a)) {
        if (a->job_id) /* no server path in what a client reads */
            return sx_status_set(st, SX_ENOTFOUND, "job '%s' has no reference.h5: register the "
                                 "output of a finished integrate job", a->job_id);
        return sx_status_set(st, SX_ENOTFOUND, "%s has no reference.h5: register the output of a "
                             "finished integrate job%s%s", a->src_dir, a->import ? ", or " : "",
                             a->import ? a->import->what : "");
    }
    char *exists = srv_ref_path(db, a->name, NULL);
    if (exists) {
        free(exists);
        return sx_status_set(st, SX_ESTATE, "a reference named '%s' already exists: choose another "
                             "name", a->name);
    }
    return SX_OK;
}

/* The references directory (dir) and in it a fresh directory (tmp) the new reference's files
 * go to before they are placed under the reference's name at once. */
static int make_tmp(const char *data_dir, const char *name, char *dir, size_t dircap, char *tmp,
                    size_t tmpcap, sx_status *st)
{
    int rc = srv_layout_references_dir(data_dir, dir, dircap, st);
    if (rc) return rc;
    rc = srv_mkdirs(dir, st);
    if (rc) return rc;
    char rnd[32];
    if ((rc = srv_random_id("", rnd, sizeof rnd, st))) return rc;
    snprintf(tmp, tmpcap, "%s/.tmp-%s-%s", dir, name, rnd);
    return srv_mkdirs(tmp, st);
}

/* A foreign folder: our reference.h5 converted from it, and its own files kept verbatim
 * under tmp/<source>/ (the provenance: what SCALEX wrote, usable by SCALEX again). */
static int import_tmp(const srv_ref_add *a, const char *tmp, srv_ref_import_info *info,
                      sx_status *st)
{
    char src[4200], dst[4400];
    snprintf(dst, sizeof dst, "%s/reference.h5", tmp);
    int rc = a->import->convert(a->src_dir, dst, info, st);
    for (const char *const *k = a->import->keep; !rc && k && *k; k++) {
        snprintf(src, sizeof src, "%s/%s", a->src_dir, *k);
        if (!srv_file_exists(src)) continue;
        snprintf(dst, sizeof dst, "%s/%s/%s", tmp, a->import->source, *k);
        *strrchr(dst, '/') = 0; /* its folder first */
        if ((rc = srv_mkdirs(dst, st))) break;
        snprintf(dst, sizeof dst, "%s/%s/%s", tmp, a->import->source, *k);
        rc = place(src, dst, st);
    }
    return rc;
}

/* reference.h5 and the job's other files a reference keeps, into tmp */
static int fill_tmp(const srv_ref_add *a, const char *tmp, sx_status *st)
{
    char src[4200], dst[4400];
    int rc;
    snprintf(src, sizeof src, "%s/reference.h5", a->src_dir);
    snprintf(dst, sizeof dst, "%s/reference.h5", tmp);
    if ((rc = place(src, dst, st))) return rc;
    /* the model and the reference cells' table, when the job wrote them */
    static const char *const extra[] = {"adata.h5ad", "result.json", "checkpoint/model.h5"};
    for (size_t i = 0; i < sizeof extra / sizeof *extra; i++) {
        snprintf(src, sizeof src, "%s/%s", a->src_dir, extra[i]);
        if (!srv_file_exists(src)) continue;
        if (strchr(extra[i], '/')) {
            snprintf(dst, sizeof dst, "%s/checkpoint", tmp);
            if ((rc = srv_mkdirs(dst, st))) return rc;
        }
        snprintf(dst, sizeof dst, "%s/%s", tmp, extra[i]);
        if ((rc = place(src, dst, st))) return rc;
    }
    return SX_OK;
}

/* The catalog summary (compact JSON text; the caller frees it) from the job's result.json
 * (sizes and version) or what an import found (imp, NULL for our own folders), and the label
 * columns given. */
static char *ref_summary(const srv_ref_add *a, const srv_ref_import_info *imp)
{
    char src[4200];
    json_t *sum = json_object();
    json_object_set_new(sum, "source", json_string(imp ? a->import->source : "scalexd"));
    if (imp) {
        json_object_set_new(sum, "source_version", imp->version[0] ? json_string(imp->version)
                                                                   : json_null());
        json_object_set_new(sum, "cells", json_integer(imp->n_cells));
        json_object_set_new(sum, "genes", json_integer(imp->n_genes));
    }
    snprintf(src, sizeof src, "%s/result.json", a->src_dir);
    json_t *res = json_load_file(src, 0, NULL);
    static const char *const kc[] = {"n_obs", "n_cells", "cells", NULL};
    static const char *const kg[] = {"n_vars", "n_genes", "genes", NULL};
    static const char *const kv[] = {"model_version", "version", NULL};
    json_t *v;
    if (res && (v = first_of(res, kc)) && json_is_integer(v)) json_object_set(sum, "cells", v);
    if (res && (v = first_of(res, kg)) && json_is_integer(v)) json_object_set(sum, "genes", v);
    if (res && (v = first_of(res, kv)) && json_is_string(v)) json_object_set(sum, "model_version", v);
    if (!json_object_get(sum, "model_version"))
        json_object_set_new(sum, "model_version", json_string(SX_VERSION));
    if (!imp) json_object_set(sum, "source_version", json_object_get(sum, "model_version"));
    json_decref(res);
    json_t *lc = a->label_columns_json ? json_loads(a->label_columns_json, 0, NULL) : NULL;
    json_object_set_new(sum, "label_columns", lc ? lc : json_array());
    char *sum_text = json_dumps(sum, JSON_COMPACT);
    json_decref(sum);
    return sum_text;
}

int srv_refs_add(srv_db *db, const char *data_dir, const srv_ref_add *a, sx_status *st)
{
    char dir[4200], tmp[4300], dst[4400];
    int rc = check_new(db, a, st);
    if (rc) return rc;
    if ((rc = make_tmp(data_dir, a->name, dir, sizeof dir, tmp, sizeof tmp, st))) return rc;
    srv_ref_import_info info = {0};
    int imp = importing(a);
    if ((rc = imp ? import_tmp(a, tmp, &info, st) : fill_tmp(a, tmp, st))) goto fail;
    char *sum_text = ref_summary(a, imp ? &info : NULL);
    snprintf(dst, sizeof dst, "%s/%s", dir, a->name);
    if (rename(tmp, dst) != 0) {
        free(sum_text);
        rc = sx_status_set(st, errno == EEXIST || errno == ENOTEMPTY ? SX_ESTATE : SX_EIO,
                           "cannot place reference '%s': %s", a->name, strerror(errno));
        goto fail;
    }
    char rel[200];
    srv_layout_reference_rel(a->name, rel, sizeof rel, NULL); /* fits: srv_name_ok */
    srv_ref_rec rec = {.name = a->name, .path = rel, .job_id = a->job_id,
                       .description = a->description, .species = a->species, .tissue = a->tissue,
                       .summary = sum_text, .owner = a->owner};
    rc = srv_ref_insert(db, &rec, st);
    free(sum_text);
    if (rc) {
        srv_rmtree(dst);
        return rc;
    }
    return SX_OK;
fail:
    srv_rmtree(tmp);
    return rc;
}
