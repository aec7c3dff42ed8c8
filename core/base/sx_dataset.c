#include "sx_dataset.h"

#include <string.h>

#include "sx_alloc.h"

sx_dataset *sx_dataset_new(int64_t n_obs, int64_t n_vars, sx_status *st)
{
    sx_dataset *d = sx_calloc(1, sizeof *d);
    if (!d) goto oom;
    d->obs = sx_frame_new(n_obs, NULL, st);
    d->var = sx_frame_new(n_vars, NULL, st);
    d->uns = sx_uns_new_dict();
    if (!d->obs || !d->var || !d->uns) goto oom;
    return d;
oom:
    sx_dataset_free(d);
    sx_status_set(st, SX_ENOMEM, "cannot allocate a dataset of %lld x %lld", (long long)n_obs,
                  (long long)n_vars);
    return NULL;
}

static void free_dense(sx_dense *a, int n)
{
    for (int i = 0; i < n; i++) {
        sx_free(a[i].name);
        sx_free(a[i].v);
    }
    sx_free(a);
}

void sx_dataset_free(sx_dataset *d)
{
    if (!d) return;
    sx_csr_free(d->X);
    sx_frame_free(d->obs);
    sx_frame_free(d->var);
    free_dense(d->obsm, d->n_obsm);
    free_dense(d->varm, d->n_varm);
    for (int i = 0; i < d->n_layers; i++) {
        sx_free(d->layers[i].name);
        sx_csr_free(d->layers[i].m);
    }
    sx_free(d->layers);
    for (int i = 0; i < d->n_obsp; i++) {
        sx_free(d->obsp[i].name);
        sx_csr_free(d->obsp[i].m);
    }
    sx_free(d->obsp);
    sx_csr_free(d->raw_X);
    sx_frame_free(d->raw_var);
    sx_uns_free(d->uns);
    sx_free(d);
}

static sx_dense *find_dense(sx_dense *a, int n, const char *name)
{
    for (int i = 0; i < n; i++)
        if (strcmp(a[i].name, name) == 0) return &a[i];
    return NULL;
}

sx_dense *sx_dataset_obsm(const sx_dataset *d, const char *name)
{
    return find_dense(d->obsm, d->n_obsm, name);
}

static int set_dense(sx_dense **arr, int *n, const char *name, const double *v, int64_t rows,
                     int64_t cols, int f32, sx_status *st)
{
    size_t cnt = (size_t)rows * (size_t)cols;
    double *copy = sx_mallocarray(cnt ? cnt : 1, sizeof(double));
    if (!copy) return sx_status_set(st, SX_ENOMEM, "out of memory storing '%s'", name);
    if (cnt) memcpy(copy, v, cnt * sizeof(double));
    sx_dense *ex = find_dense(*arr, *n, name);
    if (ex) {
        sx_free(ex->v);
        ex->v = copy;
        ex->n_rows = rows;
        ex->n_cols = cols;
        ex->f32 = f32;
        return SX_OK;
    }
    char *nm = sx_strdup(name);
    sx_dense *na = nm ? sx_reallocarray(*arr, (size_t)*n + 1, sizeof(sx_dense)) : NULL;
    if (!na) {
        sx_free(nm);
        sx_free(copy);
        return sx_status_set(st, SX_ENOMEM, "out of memory storing '%s'", name);
    }
    *arr = na;
    na[*n] = (sx_dense){nm, rows, cols, copy, f32};
    (*n)++;
    return SX_OK;
}

int sx_dataset_set_obsm(sx_dataset *d, const char *name, const double *v, int64_t n_rows,
                        int64_t n_cols, int f32, sx_status *st)
{
    if (n_rows != d->obs->n_rows)
        return sx_status_set(st, SX_EINVAL, "obsm '%s' has %lld rows, dataset has %lld cells",
                             name, (long long)n_rows, (long long)d->obs->n_rows);
    return set_dense(&d->obsm, &d->n_obsm, name, v, n_rows, n_cols, f32, st);
}

int sx_dataset_set_varm(sx_dataset *d, const char *name, const double *v, int64_t n_rows,
                        int64_t n_cols, int f32, sx_status *st)
{
    if (n_rows != d->var->n_rows)
        return sx_status_set(st, SX_EINVAL, "varm '%s' has %lld rows, dataset has %lld genes",
                             name, (long long)n_rows, (long long)d->var->n_rows);
    return set_dense(&d->varm, &d->n_varm, name, v, n_rows, n_cols, f32, st);
}

static sx_csr *find_named(const sx_layer *a, int n, const char *name)
{
    for (int i = 0; i < n; i++)
        if (strcmp(a[i].name, name) == 0) return a[i].m;
    return NULL;
}

/* Add or replace a named sparse matrix; takes ownership of m (freed on error). */
static int set_named(sx_layer **arr, int *n, const char *name, sx_csr *m, sx_status *st)
{
    for (int i = 0; i < *n; i++)
        if (strcmp((*arr)[i].name, name) == 0) {
            sx_csr_free((*arr)[i].m);
            (*arr)[i].m = m;
            return SX_OK;
        }
    char *nm = sx_strdup(name);
    sx_layer *nl = nm ? sx_reallocarray(*arr, (size_t)*n + 1, sizeof(sx_layer)) : NULL;
    if (!nl) {
        sx_free(nm);
        sx_csr_free(m);
        return sx_status_set(st, SX_ENOMEM, "out of memory storing '%s'", name);
    }
    *arr = nl;
    nl[(*n)++] = (sx_layer){nm, m};
    return SX_OK;
}

sx_csr *sx_dataset_layer(const sx_dataset *d, const char *name)
{
    return find_named(d->layers, d->n_layers, name);
}

int sx_dataset_set_layer(sx_dataset *d, const char *name, sx_csr *m, sx_status *st)
{
    return set_named(&d->layers, &d->n_layers, name, m, st);
}

sx_csr *sx_dataset_obsp(const sx_dataset *d, const char *name)
{
    return find_named(d->obsp, d->n_obsp, name);
}

int sx_dataset_set_obsp(sx_dataset *d, const char *name, sx_csr *m, sx_status *st)
{
    int64_t n = d->obs->n_rows;
    if (m->n_rows != n || m->n_cols != n) {
        int64_t r = m->n_rows, c = m->n_cols;
        sx_csr_free(m);
        return sx_status_set(st, SX_EINVAL, "obsp '%s' is %lld x %lld, expected %lld x %lld", name,
                             (long long)r, (long long)c, (long long)n, (long long)n);
    }
    return set_named(&d->obsp, &d->n_obsp, name, m, st);
}

int sx_dataset_validate(const sx_dataset *d, const char *what, sx_status *st)
{
    int64_t n = d->obs->n_rows, g = d->var->n_rows;
    if (!what) what = "dataset";
    if (d->X && (d->X->n_rows != n || d->X->n_cols != g))
        return sx_status_set(st, SX_EFORMAT,
                             "%s: X is %lld x %lld but obs has %lld rows and var %lld rows", what,
                             (long long)d->X->n_rows, (long long)d->X->n_cols, (long long)n,
                             (long long)g);
    for (int i = 0; i < d->n_obsm; i++)
        if (d->obsm[i].n_rows != n)
            return sx_status_set(st, SX_EFORMAT, "%s: obsm/%s has %lld rows, expected %lld", what,
                                 d->obsm[i].name, (long long)d->obsm[i].n_rows, (long long)n);
    for (int i = 0; i < d->n_varm; i++)
        if (d->varm[i].n_rows != g)
            return sx_status_set(st, SX_EFORMAT, "%s: varm/%s has %lld rows, expected %lld", what,
                                 d->varm[i].name, (long long)d->varm[i].n_rows, (long long)g);
    for (int i = 0; i < d->n_layers; i++)
        if (d->layers[i].m->n_rows != n || d->layers[i].m->n_cols != g)
            return sx_status_set(st, SX_EFORMAT, "%s: layer %s is %lld x %lld, expected %lld x %lld",
                                 what, d->layers[i].name, (long long)d->layers[i].m->n_rows,
                                 (long long)d->layers[i].m->n_cols, (long long)n, (long long)g);
    for (int i = 0; i < d->n_obsp; i++)
        if (d->obsp[i].m->n_rows != n || d->obsp[i].m->n_cols != n)
            return sx_status_set(st, SX_EFORMAT, "%s: obsp/%s is not %lld x %lld", what,
                                 d->obsp[i].name, (long long)n, (long long)n);
    if (d->raw_X && (d->raw_X->n_rows != n || !d->raw_var ||
                     d->raw_X->n_cols != d->raw_var->n_rows))
        return sx_status_set(st, SX_EFORMAT, "%s: raw/X shape does not match obs and raw/var",
                             what);
    return SX_OK;
}

static int take_dense_rows(sx_dense *a, const int64_t *rows, int64_t n, sx_status *st)
{
    double *v = sx_mallocarray((size_t)(n ? n : 1) * (size_t)(a->n_cols ? a->n_cols : 1),
                               sizeof(double));
    if (!v) return sx_status_set(st, SX_ENOMEM, "out of memory subsetting '%s'", a->name);
    for (int64_t i = 0; i < n; i++)
        memcpy(v + i * a->n_cols, a->v + rows[i] * a->n_cols, (size_t)a->n_cols * sizeof(double));
    sx_free(a->v);
    a->v = v;
    a->n_rows = n;
    return SX_OK;
}

/* Subset every obsp graph to rows x rows; drop them all when a row repeats. */
static int take_obsp(sx_dataset *d, const int64_t *rows, int64_t n, sx_status *st)
{
    int64_t old = d->obs->n_rows;
    int64_t *map = sx_mallocarray((size_t)(old ? old : 1), sizeof(int64_t));
    if (!map) return sx_status_set(st, SX_ENOMEM, "out of memory subsetting obsp");
    for (int64_t j = 0; j < old; j++) map[j] = -1;
    int repeats = 0;
    for (int64_t k = 0; k < n; k++) {
        if (map[rows[k]] >= 0) repeats = 1;
        map[rows[k]] = k;
    }
    int rc = SX_OK;
    for (int i = 0; i < d->n_obsp && rc == SX_OK; i++) {
        if (repeats) break;
        sx_csr *r = sx_csr_take_rows(d->obsp[i].m, rows, n, st);
        sx_csr *c = r ? sx_csr_remap_cols(r, map, n, st) : NULL;
        sx_csr_free(r);
        if (!c) {
            rc = st ? st->code : SX_ENOMEM;
            break;
        }
        sx_csr_free(d->obsp[i].m);
        d->obsp[i].m = c;
    }
    if (repeats) {
        for (int i = 0; i < d->n_obsp; i++) {
            sx_free(d->obsp[i].name);
            sx_csr_free(d->obsp[i].m);
        }
        sx_free(d->obsp);
        d->obsp = NULL;
        d->n_obsp = 0;
    }
    sx_free(map);
    return rc;
}

int sx_dataset_take_obs(sx_dataset *d, const int64_t *rows, int64_t n, sx_status *st)
{
    sx_frame *obs = sx_frame_take_rows(d->obs, rows, n, st);
    if (!obs) return st ? st->code : SX_ENOMEM;
    sx_csr *X = NULL, *raw = NULL;
    if (d->X && !(X = sx_csr_take_rows(d->X, rows, n, st))) goto fail;
    if (d->raw_X && !(raw = sx_csr_take_rows(d->raw_X, rows, n, st))) goto fail;
    for (int i = 0; i < d->n_layers; i++) {
        sx_csr *l = sx_csr_take_rows(d->layers[i].m, rows, n, st);
        if (!l) goto fail;
        sx_csr_free(d->layers[i].m);
        d->layers[i].m = l;
    }
    for (int i = 0; i < d->n_obsm; i++)
        if (take_dense_rows(&d->obsm[i], rows, n, st) != SX_OK) goto fail;
    if (d->n_obsp && take_obsp(d, rows, n, st) != SX_OK) goto fail;
    sx_frame_free(d->obs);
    d->obs = obs;
    if (d->X) {
        sx_csr_free(d->X);
        d->X = X;
    }
    if (d->raw_X) {
        sx_csr_free(d->raw_X);
        d->raw_X = raw;
    }
    return SX_OK;
fail:
    /* layers/obsm already replaced stay consistent only if all succeeded; report the error */
    sx_frame_free(obs);
    sx_csr_free(X);
    sx_csr_free(raw);
    return st ? st->code : SX_ENOMEM;
}

int sx_dataset_take_vars(sx_dataset *d, const int64_t *cols, int64_t n, sx_status *st)
{
    int64_t g = d->var->n_rows;
    int64_t *map = sx_mallocarray((size_t)(g ? g : 1), sizeof(int64_t));
    if (!map) return sx_status_set(st, SX_ENOMEM, "out of memory selecting genes");
    for (int64_t j = 0; j < g; j++) map[j] = -1;
    int dup = 0;
    for (int64_t k = 0; k < n; k++) {
        if (cols[k] < 0 || cols[k] >= g) {
            sx_free(map);
            return sx_status_set(st, SX_EINVAL, "gene %lld out of range", (long long)cols[k]);
        }
        if (map[cols[k]] >= 0) dup = 1;
        map[cols[k]] = k;
    }
    if (dup) {
        sx_free(map);
        return sx_status_set(st, SX_EINVAL, "gene selection repeats a gene");
    }
    sx_frame *var = sx_frame_take_rows(d->var, cols, n, st);
    sx_csr *X = NULL;
    int rc = SX_OK;
    if (!var) goto fail;
    if (d->X && !(X = sx_csr_remap_cols(d->X, map, n, st))) goto fail;
    for (int i = 0; i < d->n_layers; i++) {
        sx_csr *l = sx_csr_remap_cols(d->layers[i].m, map, n, st);
        if (!l) goto fail;
        sx_csr_free(d->layers[i].m);
        d->layers[i].m = l;
    }
    for (int i = 0; i < d->n_varm; i++)
        if (take_dense_rows(&d->varm[i], cols, n, st) != SX_OK) goto fail;
    sx_frame_free(d->var);
    d->var = var;
    if (d->X) {
        sx_csr_free(d->X);
        d->X = X;
    }
    sx_free(map);
    return SX_OK;
fail:
    rc = st ? st->code : SX_ENOMEM;
    sx_frame_free(var);
    sx_csr_free(X);
    sx_free(map);
    return rc;
}
