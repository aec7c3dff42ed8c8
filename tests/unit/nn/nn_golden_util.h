/* Helpers shared by the nn golden tests (header-only: each test file is its own executable). */
#ifndef NN_GOLDEN_UTIL_H
#define NN_GOLDEN_UTIL_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sx_alloc.h"
#include "sx_h5.h"
#include "sx_matrix.h"
#include "sx_nn.h"
#include "sx_test.h"

#define NN_G 37
#define NN_H 16
#define NN_Z 4
#define NN_D 3

static inline hid_t gopen(const char *name)
{
    sx_status st = {0};
    char rel[128];
    snprintf(rel, sizeof rel, "golden/nn/%s", name);
    hid_t f = sx_h5_open_ro(sx_test_shared(rel), &st);
    ck_assert_msg(f >= 0, "open %s: %s", name, st.msg);
    return f;
}

static inline double *gread(hid_t f, const char *path, int64_t *n)
{
    sx_status st = {0};
    double *v = NULL;
    int64_t k = 0;
    ck_assert_msg(sx_h5_read_f64(f, path, &v, &k, &st) == SX_OK, "read %s: %s", path, st.msg);
    if (n) *n = k;
    return v;
}

static inline float *gread_f32(hid_t f, const char *path, int64_t *n)
{
    sx_status st = {0};
    float *v = NULL;
    int64_t k = 0;
    ck_assert_msg(sx_h5_read_f32(f, path, &v, &k, &st) == SX_OK, "read %s: %s", path, st.msg);
    if (n) *n = k;
    return v;
}

static inline int32_t *gread_dom(hid_t f, const char *path, int64_t *n)
{
    sx_status st = {0};
    int64_t *v = NULL, k = 0;
    ck_assert_msg(sx_h5_read_i64(f, path, &v, &k, &st) == SX_OK, "read %s: %s", path, st.msg);
    int32_t *d = sx_mallocarray((size_t)k, sizeof(int32_t));
    for (int64_t i = 0; i < k; i++) d[i] = (int32_t)v[i];
    sx_free(v);
    if (n) *n = k;
    return d;
}

/* noinline: inlined, gcc 12 mistakes the returned string for a pointer to the local `s`
 * (-Wdangling-pointer false positive in callers) */
static __attribute__((noinline, unused)) char *gattr(hid_t f, const char *path, const char *name)
{
    sx_status st = {0};
    char *s = NULL;
    ck_assert_msg(sx_h5_attr_string(f, path, name, &s, &st) == SX_OK, "attr %s@%s: %s", path,
                  name, st.msg);
    return s;
}

static inline int64_t gattr_i64(hid_t f, const char *path, const char *name)
{
    sx_status st = {0};
    int64_t *v = NULL, n = 0;
    ck_assert_msg(sx_h5_attr_i64(f, path, name, &v, &n, &st) == SX_OK && n == 1, "attr %s@%s: %s",
                  path, name, st.msg);
    int64_t r = v[0];
    sx_free(v);
    return r;
}

/* Dense rows (n x g float32) -> CSR, built here so the test does not rely on nn code. */
static inline sx_csr *dense_csr(const float *a, int64_t n, int64_t g)
{
    sx_status st = {0};
    sx_csr *m = sx_csr_from_dense(a, n, g, &st);
    ck_assert_msg(m != NULL, "csr: %s", st.msg);
    return m;
}

/* Model with the golden's state (group `grp`, e.g. "init_state") in dtype. */
static inline sx_nn_model *gmodel(hid_t f, const char *grp, int dtype)
{
    sx_status st = {0};
    sx_nn_config c = {NN_G, NN_H, NN_Z, NN_D, dtype};
    sx_nn_model *m = sx_nn_model_new(&c, 1, &st);
    ck_assert_msg(m != NULL, "%s", st.msg);
    for (int i = 0; i < sx_nn_model_n_tensors(m); i++) {
        const char *nm = sx_nn_model_tensor_name(m, i);
        char p[160];
        snprintf(p, sizeof p, "%s/%s", grp, nm);
        int64_t n;
        double *v = gread(f, p, &n);
        ck_assert_msg(sx_nn_model_set(m, nm, v, n, &st) == SX_OK, "%s", st.msg);
        sx_free(v);
    }
    return m;
}

/* |a - b| <= tol * max(|b|, floor_frac * max|b over the tensor|, abs_floor). Reports worst. */
static inline double cmp_arrays(const char *what, const double *a, const double *b, int64_t n,
                                double tol, double floor_frac, double abs_floor)
{
    double mx = 0;
    for (int64_t i = 0; i < n; i++) mx = fmax(mx, fabs(b[i]));
    double fl = fmax(floor_frac * mx, abs_floor), worst = 0;
    int64_t wi = 0;
    for (int64_t i = 0; i < n; i++) {
        double r = sx_test_reldiff(a[i], b[i], fl);
        if (!(r <= worst)) {
            worst = r;
            wi = i;
        }
    }
    ck_assert_msg(worst <= tol, "%s: worst relative difference %.3g > %.1g at %lld (ours %.10g, "
                  "golden %.10g)", what, worst, tol, (long long)wi, a[wi], b[wi]);
    return worst;
}

static inline int json_has(const char *json, const char *name)
{
    char q[160];
    snprintf(q, sizeof q, "\"%s\"", name);
    return strstr(json, q) != NULL;
}

/* Parameter step count from the golden `step` JSON ({"name": k, ...}). */
static inline long json_int(const char *json, const char *name)
{
    char q[160];
    snprintf(q, sizeof q, "\"%s\":", name);
    const char *hit = strstr(json, q);
    if (!hit) ck_abort_msg("%s not in JSON", name);
    return strtol(hit + strlen(q), NULL, 10);
}

static inline int is_param(const char *name)
{
    size_t l = strlen(name);
    return (l > 7 && strcmp(name + l - 7, ".weight") == 0) ||
           (l > 5 && strcmp(name + l - 5, ".bias") == 0);
}

#endif
