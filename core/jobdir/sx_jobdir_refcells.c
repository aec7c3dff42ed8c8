/* sx_jobdir_refcells — refcells.json: where a projection's reference cells live (see
 * sx_jobdir.h), and the fingerprint that tells a reference's cells from another's. */
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "sx_jobdir.h"

/* FNV-1a, 64 bits: an identity, not a security measure (the files are the daemon's own) */
static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 0x100000001b3ULL;
    return h;
}

enum { SAMPLED = 4096 };

void sx_jobdir_fingerprint(const char *const *names, int64_t n, const double *vd,
                           const float *vf, int dim, char out[SX_JOBDIR_FP_LEN])
{
    uint64_t h = 0xcbf29ce484222325ULL, nn = (uint64_t)n, dd = (uint64_t)dim;
    h = fnv(fnv(h, &nn, 8), &dd, 8);
    /* evenly spaced rows, the first and the last among them: a reference registered again
     * (trained anew, or its layout recomputed) differs in every row; hashing all of a
     * million cells per job would cost what this change saves */
    int64_t m = n < SAMPLED ? n : SAMPLED;
    for (int64_t k = 0; k < m; k++) {
        int64_t i = m > 1 ? (int64_t)((double)k * (double)(n - 1) / (double)(m - 1)) : 0;
        const char *s = names && names[i] ? names[i] : "";
        h = fnv(h, s, strlen(s) + 1);
        for (int d = 0; d < dim; d++) {
            double v = vd ? vd[i * dim + d] : (double)vf[i * dim + d];
            h = fnv(h, &v, 8);
        }
    }
    snprintf(out, SX_JOBDIR_FP_LEN, "%016llx", (unsigned long long)h);
}

int sx_jobdir_refcells_write(const char *dir, const sx_jobdir_refcells *rc_, sx_status *st)
{
    char path[4400], tmp[4500];
    int rc = sx_jobdir_path(dir, SX_JOBDIR_REFCELLS, path, sizeof path, st);
    if (rc) return rc;
    json_t *j = json_pack("{s:I, s:s?, s:s?}", "cells", (json_int_t)rc_->cells, "latent",
                          rc_->latent[0] ? rc_->latent : NULL, "umap",
                          rc_->umap[0] ? rc_->umap : NULL);
    if (!j) return sx_status_set(st, SX_ENOMEM, "out of memory");
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    if (json_dump_file(j, tmp, JSON_COMPACT) != 0 || rename(tmp, path) != 0) {
        remove(tmp);
        rc = sx_status_set(st, SX_EIO, "cannot write %s (disk full?)", SX_JOBDIR_REFCELLS);
    }
    json_decref(j);
    return rc;
}

static void fp_copy(char out[SX_JOBDIR_FP_LEN], const json_t *v)
{
    const char *s = json_string_value(v);
    snprintf(out, SX_JOBDIR_FP_LEN, "%s", s && strlen(s) == SX_JOBDIR_FP_LEN - 1 ? s : "");
}

int sx_jobdir_refcells_read(const char *dir, sx_jobdir_refcells *out, sx_status *st)
{
    char path[4400];
    memset(out, 0, sizeof *out);
    int rc = sx_jobdir_path(dir, SX_JOBDIR_REFCELLS, path, sizeof path, st);
    if (rc) return rc;
    FILE *f = fopen(path, "r");
    if (!f) return sx_status_set(st, SX_ENOTFOUND, "no %s", SX_JOBDIR_REFCELLS);
    json_t *j = json_loadf(f, 0, NULL);
    fclose(f);
    json_t *c = json_object_get(j, "cells");
    if (!json_is_integer(c) || json_integer_value(c) < 0) {
        json_decref(j);
        return sx_status_set(st, SX_EFORMAT, "%s is damaged: run the job again",
                             SX_JOBDIR_REFCELLS);
    }
    out->cells = (int64_t)json_integer_value(c);
    fp_copy(out->latent, json_object_get(j, "latent"));
    fp_copy(out->umap, json_object_get(j, "umap"));
    json_decref(j);
    return SX_OK;
}
