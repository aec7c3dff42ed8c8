/* srv_service: the dataset use cases — store an upload (validate, id, move into place, row;
 * undone on failure), delete, and the views. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "srv_layout.h"
#include "srv_service_internal.h"
#include "sx_format.h"
#include "srv_util.h"

/* Readers name the file in their messages; the client knows no spool path: say "the upload". */
static void scrub_path(char *msg, const char *path)
{
    size_t n = strlen(path);
    char *p;
    while (n && (p = strstr(msg, path))) {
        const char *rest = p + n;
        while (*rest && *rest != ':' && *rest != ' ' && *rest != ',') rest++; /* .h5ad suffix */
        static const char word[] = "the upload";
        memmove(p + sizeof word - 1, rest, strlen(rest) + 1);
        memcpy(p, word, sizeof word - 1);
    }
}

/* The readers' verdict on the upload; SRV_WHY_BAD_UPLOAD when they refuse its content. */
static int check_upload(const srv_service *svc, const srv_upload *up, srv_dataset_info *info,
                        srv_why *why, sx_status *st)
{
    int rc = svc->eng->validate(svc->eng->user, up->spool_path, info, st);
    if (!rc) return SX_OK;
    scrub_path(st->msg, up->spool_path);
    if (rc == SX_ENOMEM || rc == SX_EINTERNAL) return svc_why(why, SRV_WHY_NONE, rc);
    /* EIO here means the reader could not make sense of bytes we just wrote: the content */
    if (rc != SX_ELIMIT) {
        char m[SX_STATUS_MSG], formats[256];
        snprintf(m, sizeof m, "%s", st->msg);
        sx_format_list_text(formats, sizeof formats, 1);
        sx_status_set(st, rc, "the upload (%lld bytes, sha256 %s) is not a dataset this server "
                      "can read: %s. Send %s as the raw body, complete and unmodified",
                      (long long)up->bytes, up->sha256, m, formats);
    }
    return svc_why(why, SRV_WHY_BAD_UPLOAD, rc);
}

/* Move the upload to datasets/<id>[.<ext>]; rel[128] and abs[4300] say where it went. */
static int place_upload(const srv_service *svc, const srv_upload *up, const char *id,
                        const char *ext, char rel[128], char abs[4300], srv_why *why,
                        sx_status *st)
{
    int rc = srv_layout_dataset_rel(id, up->is_dir ? NULL : ext[0] ? ext : "bin", rel, 128, st);
    if (!rc) rc = srv_layout_datasets_dir(svc->data_dir, abs, 4300, st);
    if (!rc) rc = srv_mkdirs(abs, st);
    if (!rc) rc = srv_layout_abs(svc->data_dir, rel, abs, 4300, st);
    if (rc) return svc_why(why, SRV_WHY_NONE, rc);
    if (rename(up->spool_path, abs) != 0)
        return svc_why(why, SRV_WHY_UNSTORABLE,
                       sx_status_set(st, SX_EIO, "cannot store the upload"));
    return SX_OK;
}

int srv_service_dataset_store(const srv_service *svc, const srv_user *u, const srv_upload *up,
                              char id_out[32], char format_out[32], srv_why *why,
                              sx_status *st)
{
    srv_dataset_info info;
    memset(&info, 0, sizeof info);
    char rel[128], abs[4300], defname[64];
    srv_db *db = NULL;
    int rc = svc_check_storage(svc, u, up->bytes, why, st);
    if (rc) goto out;
    if ((rc = check_upload(svc, up, &info, why, st))) goto out;
    if ((rc = srv_random_id("ds_", id_out, 32, st))) goto out;
    if ((rc = place_upload(svc, up, id_out, info.ext, rel, abs, why, st))) goto out;
    const char *name = up->name;
    if (!name || !*name) {
        snprintf(defname, sizeof defname, "upload-%s", id_out + 3);
        name = defname;
    }
    srv_dataset_rec rec = {.owner = u->id, .name = name, .format = info.format, .path = rel,
                           .sha256 = up->sha256, .size_bytes = up->bytes, .n_obs = info.n_obs,
                           .n_vars = info.n_vars, .obs_columns = info.obs_columns};
    snprintf(rec.id, sizeof rec.id, "%s", id_out);
    db = svc_db(svc, why, st);
    rc = db ? srv_dataset_insert(db, &rec, st) : st->code;
    if (rc) {
        srv_rmtree(abs); /* no row: the file must not stay behind */
        if (db) svc_why(why, SRV_WHY_NONE, rc);
        goto out;
    }
    if (format_out) snprintf(format_out, 32, "%s", info.format);
    svc_why(why, SRV_WHY_NONE, SX_OK);
out:
    svc_put(svc, db);
    free(info.obs_columns);
    return rc;
}

int srv_service_dataset_delete(const srv_service *svc, const srv_user *u, const char *id,
                               srv_why *why, sx_status *st)
{
    srv_db *db = svc_db(svc, why, st);
    if (!db) return st->code;
    char *rel = NULL, abs[4300];
    /* one writer transaction with the in-use check, as a submit checks its inputs in its own:
     * of a delete and a submit of a job on the dataset, one wins and the other gets SX_ESTATE */
    if (srv_db_begin(db, NULL)) {
        svc_put(svc, db);
        return svc_why(why, SRV_WHY_BUSY, sx_status_set(st, SX_EIO, "the registry is busy"));
    }
    int rc = srv_dataset_delete(db, id, u, &rel, st);
    if (!rc && srv_db_commit(db, NULL)) {
        free(rel);
        rel = NULL;
        rc = sx_status_set(st, SX_EIO, "the registry could not commit");
        srv_db_rollback(db);
        svc_put(svc, db);
        return svc_why(why, SRV_WHY_BUSY, rc);
    }
    if (rc) srv_db_rollback(db);
    svc_put(svc, db);
    if (rc == SX_ESTATE) return svc_why(why, SRV_WHY_WRONG_STATE, rc);
    if (rc) return svc_lookup_fail(rc, SRV_WHY_NO_DATASET, why, st);
    if (srv_layout_abs(svc->data_dir, rel, abs, sizeof abs, NULL) == SX_OK)
        srv_rmtree(abs); /* a file, or an mtx folder */
    free(rel);
    return svc_why(why, SRV_WHY_NONE, SX_OK);
}

json_t *srv_service_dataset_get(const srv_service *svc, const srv_user *u, const char *id,
                                srv_why *why, sx_status *st)
{
    return svc_view(svc, srv_dataset_get, id, u, SRV_WHY_NO_DATASET, why, st);
}

json_t *srv_service_dataset_list(const srv_service *svc, const srv_user *u, int64_t offset,
                                 int limit, int *more, srv_why *why, sx_status *st)
{
    srv_db *db = svc_db(svc, why, st);
    if (!db) return NULL;
    json_t *a = srv_dataset_list(db, u, offset, limit, more, st);
    svc_put(svc, db);
    svc_why(why, SRV_WHY_NONE, a ? SX_OK : st->code);
    return a;
}
