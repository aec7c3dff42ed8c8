/* sx_torch — a .pt file as a list of tensors: find <top>/data.pkl in the zip, run the pickle,
 * match every tensor to its storage member, and copy values out on request. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sx_alloc.h"
#include "sx_torch.h"
#include "sx_torch_internal.h"

/* data.pkl of a state_dict is a few KB; SCALEX's config.pt a few hundred KB for 30k genes. */
#define PKL_MAX_BYTES ((uint64_t)256 << 20)
#define NAME_DEPTH 4
/* dicts visited while naming tensors: a dict may hold itself many times over */
#define MAX_VISITS 100000

typedef struct tens {
    char *name;
    const sx_pv *v; /* the TENSOR value (owned by pkl) */
    int64_t entry;  /* zip member of its storage */
} tens;

struct sx_torch {
    sx_tzip *z;
    sx_pkl *pkl;
    tens *t;
    int n, cap;
    int64_t visits;
    char top[256];
};

static const char *base_name(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

/* The one "<top>/data.pkl" member (torch names top after the file it saved to). */
static int find_pickle(sx_torch *t, int64_t *idx, sx_status *st)
{
    *idx = -1;
    for (int64_t i = 0; i < sx_tzip_count(t->z); i++) {
        const char *nm = sx_tzip_name(t->z, i), *sl = strchr(nm, '/');
        if (!sl || strcmp(sl, "/data.pkl") != 0 || (size_t)(sl - nm) >= sizeof t->top) continue;
        if (*idx >= 0)
            return sx_status_set(st, SX_EFORMAT, "'%s' holds two pickles (two */data.pkl); "
                                 "not a torch.save file", sx_tzip_label(t->z));
        *idx = i;
        snprintf(t->top, sizeof t->top, "%.*s", (int)(sl - nm), nm);
    }
    if (*idx < 0)
        return sx_status_set(st, SX_EFORMAT, "'%s' is a zip without */data.pkl; not a file "
                             "written by torch.save", sx_tzip_label(t->z));
    return SX_OK;
}

/* torch >= 2.1 records the byte order of the storages; we read little-endian only. */
static int check_byteorder(sx_torch *t, sx_status *st)
{
    char nm[300];
    snprintf(nm, sizeof nm, "%s/byteorder", t->top);
    int64_t i = sx_tzip_find(t->z, nm);
    if (i < 0) return SX_OK;
    uint8_t *b = NULL;
    int rc = sx_tzip_size(t->z, i) > 16 ? SX_EFORMAT : sx_tzip_read(t->z, i, &b, st);
    if (rc == SX_OK && strncmp((char *)b, "little", 6) != 0)
        rc = sx_status_set(st, SX_EUNSUPPORTED, "'%s' stores big-endian tensors; re-save it "
                           "on a little-endian machine", sx_tzip_label(t->z));
    else if (rc == SX_EFORMAT && !b)
        rc = sx_status_set(st, SX_EFORMAT, "'%s': odd byteorder record", sx_tzip_label(t->z));
    sx_free(b);
    return rc;
}

static int add_tensor(sx_torch *t, const char *name, const sx_pv *v, sx_status *st)
{
    const sx_pv *s = v->items[0];
    char nm[300];
    snprintf(nm, sizeof nm, "%s/data/%s", t->top, s->s);
    int64_t e = sx_tzip_find(t->z, nm);
    if (e < 0)
        return sx_status_set(st, SX_EFORMAT, "'%s': tensor '%.100s' refers to storage '%s', "
                             "which the file lacks (truncated?)", sx_tzip_label(t->z), name, s->s);
    if (sx_tzip_size(t->z, e) / sx_tdt_size(s->dt) < (uint64_t)s->i)
        return sx_status_set(st, SX_EFORMAT, "'%s': storage '%s' of tensor '%.100s' is shorter "
                             "(%llu bytes) than it declares (%lld %s); the file is corrupt or "
                             "hostile", sx_tzip_label(t->z), s->s, name,
                             (unsigned long long)sx_tzip_size(t->z, e), (long long)s->i,
                             sx_tdt_name(s->dt));
    if (t->n == t->cap) {
        int c = t->cap ? 2 * t->cap : 32;
        tens *a = sx_reallocarray(t->t, (size_t)c, sizeof *a);
        if (!a) return sx_status_set(st, SX_ENOMEM, "out of memory");
        t->t = a;
        t->cap = c;
    }
    t->t[t->n].name = sx_strdup(name);
    if (!t->t[t->n].name) return sx_status_set(st, SX_ENOMEM, "out of memory");
    t->t[t->n].v = v;
    t->t[t->n++].entry = e;
    return SX_OK;
}

/* Tensors of a dict, recursing into nested dicts with dotted names (depth bounded: a hostile
 * pickle can build a dict that contains itself). */
static int collect(sx_torch *t, const sx_pv *d, const char *prefix, int depth, sx_status *st)
{
    if (!d || d->kind != SX_PV_DICT || depth > NAME_DEPTH) return SX_OK;
    if (++t->visits > MAX_VISITS || t->n >= MAX_VISITS)
        return sx_status_set(st, SX_ELIMIT, "'%s': the checkpoint's dicts nest or repeat far "
                             "more than a state_dict's; refusing", sx_tzip_label(t->z));
    for (size_t i = 0; i + 1 < d->n; i += 2) {
        const sx_pv *k = d->items[i], *v = d->items[i + 1];
        if (k->kind != SX_PV_STR || strlen(k->s) != k->len || k->len > 200) continue;
        char nm[1100];
        snprintf(nm, sizeof nm, "%s%s%s", prefix, *prefix ? "." : "", k->s);
        int rc = v->kind == SX_PV_TENSOR ? add_tensor(t, nm, v, st)
                                         : collect(t, v, nm, depth + 1, st);
        if (rc != SX_OK) return rc;
    }
    return SX_OK;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int check_unique(sx_torch *t, sx_status *st)
{
    char **v = sx_mallocarray((size_t)t->n + 1, sizeof *v);
    if (!v) return sx_status_set(st, SX_ENOMEM, "out of memory");
    for (int i = 0; i < t->n; i++) v[i] = t->t[i].name;
    qsort(v, (size_t)t->n, sizeof *v, cmp_str);
    int rc = SX_OK;
    for (int i = 1; i < t->n && rc == SX_OK; i++)
        if (strcmp(v[i - 1], v[i]) == 0)
            rc = sx_status_set(st, SX_EFORMAT, "'%s' has two tensors named '%.100s'; refusing "
                               "an ambiguous file", sx_tzip_label(t->z), v[i]);
    sx_free(v);
    return rc;
}

static int load(sx_torch *t, const char *label, sx_status *st)
{
    int64_t pi;
    int rc = find_pickle(t, &pi, st);
    if (rc == SX_OK) rc = check_byteorder(t, st);
    if (rc != SX_OK) return rc;
    if (sx_tzip_size(t->z, pi) > PKL_MAX_BYTES)
        return sx_status_set(st, SX_ELIMIT, "'%s': its pickle is %llu bytes, over our bound of "
                             "256 MiB for a checkpoint's structure", label,
                             (unsigned long long)sx_tzip_size(t->z, pi));
    uint8_t *b = NULL;
    if ((rc = sx_tzip_read(t->z, pi, &b, st)) != SX_OK) return rc;
    t->pkl = sx_pkl_parse(b, (size_t)sx_tzip_size(t->z, pi), label, st);
    sx_free(b);
    if (!t->pkl) return st->code;
    if ((rc = collect(t, sx_pkl_root(t->pkl), "", 0, st)) != SX_OK) return rc;
    return check_unique(t, st);
}

sx_torch *sx_torch_open(const char *path, sx_status *st)
{
    const char *label = base_name(path);
    sx_torch *t = sx_calloc(1, sizeof *t);
    if (!t) {
        sx_status_set(st, SX_ENOMEM, "out of memory");
        return NULL;
    }
    t->z = sx_tzip_open(path, label, st);
    if (!t->z || load(t, label, st) != SX_OK) {
        sx_torch_close(t);
        return NULL;
    }
    return t;
}

void sx_torch_close(sx_torch *t)
{
    if (!t) return;
    for (int i = 0; i < t->n; i++) sx_free(t->t[i].name);
    sx_free(t->t);
    sx_pkl_free(t->pkl);
    sx_tzip_close(t->z);
    sx_free(t);
}

int sx_torch_n_tensors(const sx_torch *t) { return t->n; }

int sx_torch_find(const sx_torch *t, const char *name)
{
    for (int i = 0; i < t->n; i++)
        if (strcmp(t->t[i].name, name) == 0) return i;
    return -1;
}

const char *sx_torch_dtype_name(int dtype) { return sx_tdt_name(dtype); }

int sx_torch_info_get(const sx_torch *t, int i, sx_torch_info *out)
{
    if (i < 0 || i >= t->n) return SX_EINVAL;
    const sx_pv *v = t->t[i].v;
    memset(out, 0, sizeof *out);
    out->name = t->t[i].name;
    out->dtype = v->dt;
    out->ndim = v->ndim;
    out->numel = 1;
    for (int d = 0; d < v->ndim; d++) {
        out->shape[d] = v->shape[d];
        out->stride[d] = v->stride[d];
        out->numel *= v->shape[d];
    }
    out->offset = v->offset;
    out->storage = v->items[0]->s;
    return SX_OK;
}

/* One stored element as double (little-endian in the file, whatever the host). */
static double elem(const uint8_t *p, int dt)
{
    uint64_t u = 0;
    size_t k = sx_tdt_size(dt);
    for (size_t i = k; i-- > 0;) u = (u << 8) | p[i];
    switch (dt) {
    case SX_TDT_F32: { uint32_t w = (uint32_t)u; float f; memcpy(&f, &w, 4); return f; }
    case SX_TDT_F64: { double f; memcpy(&f, &u, 8); return f; }
    case SX_TDT_BF16: { uint32_t w = (uint32_t)u << 16; float f; memcpy(&f, &w, 4); return f; }
    case SX_TDT_F16: {
        int e = (int)(u >> 10) & 31, mnt = (int)(u & 1023);
        double s = (u >> 15) ? -1.0 : 1.0;
        if (e == 0) return s * ldexp(mnt, -24);
        if (e == 31) return mnt ? NAN : s * INFINITY;
        return s * ldexp(mnt + 1024, e - 25);
    }
    case SX_TDT_I64: return (double)(int64_t)u;
    case SX_TDT_I32: return (double)(int32_t)(uint32_t)u;
    case SX_TDT_I16: return (double)(int16_t)(uint16_t)u;
    case SX_TDT_I8: return (double)(int8_t)(uint8_t)u;
    default: return (double)u; /* uint8, bool */
    }
}

/* Walk the tensor in C order through its strides; out64 or out32 receives the values. */
static int gather(const sx_torch *t, int i, double *out64, float *out32, int64_t n,
                  sx_status *st)
{
    sx_torch_info in;
    if (sx_torch_info_get(t, i, &in) != SX_OK)
        return sx_status_set(st, SX_EINVAL, "tensor index %d out of range", i);
    if (n != in.numel)
        return sx_status_set(st, SX_EINVAL, "tensor '%s' has %lld elements, not %lld", in.name,
                             (long long)in.numel, (long long)n);
    uint8_t *b = NULL;
    int rc = sx_tzip_read(t->z, t->t[i].entry, &b, st);
    if (rc != SX_OK) return rc;
    size_t isz = sx_tdt_size(in.dtype);
    int64_t idx[SX_TORCH_MAXDIM] = {0}, pos = in.offset;
    for (int64_t k = 0; k < n; k++) {
        double v = elem(b + (size_t)pos * isz, in.dtype);
        if (out64) out64[k] = v;
        else out32[k] = (float)v;
        for (int d = in.ndim - 1; d >= 0; d--) { /* odometer: pos follows the strides */
            pos += in.stride[d];
            if (++idx[d] < in.shape[d]) break;
            pos -= in.stride[d] * in.shape[d];
            idx[d] = 0;
        }
    }
    sx_free(b);
    return SX_OK;
}

int sx_torch_tensor_f64(const sx_torch *t, int i, double *out, int64_t n, sx_status *st)
{
    return gather(t, i, out, NULL, n, st);
}

int sx_torch_tensor_f32(const sx_torch *t, int i, float *out, int64_t n, sx_status *st)
{
    return gather(t, i, NULL, out, n, st);
}

const sx_pv *sx_torch_root(const sx_torch *t) { return sx_pkl_root(t->pkl); }
