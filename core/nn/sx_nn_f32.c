/* sx_nn_f32 — the float32 (production) instantiation of sx_nn_kernels.inc. */
/* The kernels are short loops over hidden units / genes: full vectorization (O3 cost model)
 * and sqrt without errno (so it vectorizes) are what make the Adam and sparse loops fast. */
#pragma GCC optimize("O3", "-fno-math-errno")
#include <cblas.h>
#include <math.h>
#include <string.h>

#include "sx_alloc.h"
#include "sx_nn_internal.h"

#define R float
#define SFX(name) name##_f32
#define GEMM cblas_sgemm
#define RSQRT sqrtf
#define REXP expf
#define RLOG logf
#define RLOG1P log1pf
#define TILE 64
#define SX_VMATH 1

/* ---- vectorized exp / log for the B x G sigmoid and BCE (the largest elementwise work of a
 * step). Cephes single-precision polynomials (about 1 ulp, as PyTorch's Sleef u10 kernels);
 * a block with any lane outside the reduced range is done with libm instead, so overflow,
 * underflow, denormals, 0 and 1 behave exactly as the scalar code. ---- */
typedef float sx_v16 __attribute__((vector_size(64)));
typedef int32_t sx_v16i __attribute__((vector_size(64)));
#define V16(c) ((sx_v16){c, c, c, c, c, c, c, c, c, c, c, c, c, c, c, c})

#if defined(__SANITIZE_ADDRESS__) || !defined(__x86_64__)
#define SX_VHOT static
#else
#define SX_VHOT __attribute__((target_clones("avx512f", "avx2", "default"))) static
#endif

/* exp(x) for x in [-87, 88], in place (pointer arguments: a 64-byte vector passed by value
 * would depend on the ABI of the target clone) */
static inline __attribute__((always_inline)) void sx_vexp(sx_v16 *xp)
{
    const sx_v16 x = *xp;
    sx_v16 fx = x * V16(1.44269504088896341f);
    sx_v16 n = __builtin_convertvector(
        __builtin_convertvector(fx + (sx_v16)((sx_v16i)(fx >= V16(0.0f)) & (sx_v16i)V16(0.5f)) -
                                    (sx_v16)((sx_v16i)(fx < V16(0.0f)) & (sx_v16i)V16(0.5f)),
                                sx_v16i),
        sx_v16); /* round to nearest (ties away), as floorf(fx + 0.5) up to ties */
    sx_v16 r = x - n * V16(0.693359375f);
    r = r - n * V16(-2.12194440e-4f);
    sx_v16 z = r * r;
    sx_v16 y = V16(1.9875691500E-4f);
    y = y * r + V16(1.3981999507E-3f);
    y = y * r + V16(8.3334519073E-3f);
    y = y * r + V16(4.1665795894E-2f);
    y = y * r + V16(1.6666665459E-1f);
    y = y * r + V16(5.0000001201E-1f);
    y = y * z + r + V16(1.0f);
    sx_v16i e = (__builtin_convertvector(n, sx_v16i) + 127) << 23;
    *xp = y * (sx_v16)e;
}

/* log(x) for normal positive finite x, in place */
static inline __attribute__((always_inline)) void sx_vlog(sx_v16 *xp)
{
    const sx_v16 x = *xp;
    sx_v16i xi = (sx_v16i)x;
    sx_v16i ex = ((xi >> 23) & 0xff) - 126;
    sx_v16 m = (sx_v16)((xi & 0x007fffff) | 0x3f000000); /* mantissa in [0.5, 1) */
    sx_v16i small = m < V16(0.707106781186547524f);
    sx_v16 e = __builtin_convertvector(ex + small, sx_v16); /* small lanes: -1 */
    m = m + (sx_v16)(small & (sx_v16i)m) - V16(1.0f);    /* 2m - 1 or m - 1 */
    sx_v16 z = m * m;
    sx_v16 y = V16(7.0376836292E-2f);
    y = y * m + V16(-1.1514610310E-1f);
    y = y * m + V16(1.1676998740E-1f);
    y = y * m + V16(-1.2420140846E-1f);
    y = y * m + V16(1.4249322787E-1f);
    y = y * m + V16(-1.6668057665E-1f);
    y = y * m + V16(2.0000714765E-1f);
    y = y * m + V16(-2.4999993993E-1f);
    y = y * m + V16(3.3333331174E-1f);
    y = y * m * z;
    y = y + e * V16(-2.12194440e-4f);
    y = y - V16(0.5f) * z;
    *xp = m + y + e * V16(0.693359375f);
}

static inline __attribute__((always_inline)) int sx_vany(const sx_v16i *cp)
{
    const sx_v16i c = *cp;
    int32_t a[16];
    memcpy(a, &c, sizeof a);
    int r = 0;
    for (int j = 0; j < 16; j++) r |= a[j];
    return r != 0;
}

SX_VHOT void sigmoid_arr_f32(const float *y, float *p, int64_t n)
{
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        sx_v16 v;
        memcpy(&v, y + i, sizeof v);
        sx_v16 x = -v;
        sx_v16i bad = (x < V16(-87.0f)) | (x > V16(88.0f)) | (x != x);
        if (sx_vany(&bad)) {
            for (int j = 0; j < 16; j++) p[i + j] = 1.0f / (1.0f + expf(-y[i + j]));
            continue;
        }
        sx_vexp(&x);
        sx_v16 r = V16(1.0f) / (V16(1.0f) + x);
        memcpy(p + i, &r, sizeof r);
    }
    for (; i < n; i++) p[i] = 1.0f / (1.0f + expf(-y[i]));
}

static inline float bce_term(float pi, float xi)
{
    float lp = logf(pi), l1p = log1pf(-pi);
    if (lp < -100.0f) lp = -100.0f;
    if (l1p < -100.0f) l1p = -100.0f;
    return (xi - 1.0f) * l1p - xi * lp;
}

SX_VHOT double bce_sum_f32(const float *p, const float *x, int64_t n)
{
    double acc[16] = {0};
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        sx_v16 pv, xv, t;
        memcpy(&pv, p + i, sizeof pv);
        memcpy(&xv, x + i, sizeof xv);
        /* fast path: p and 1 - p both normal, so log(p) and log1p(-p) > -100 need no clamp */
        sx_v16 w = V16(1.0f) - pv;
        sx_v16i bad = (pv < V16(1e-30f)) | (w < V16(1e-30f)) | (pv != pv);
        if (sx_vany(&bad)) {
            for (int j = 0; j < 16; j++) acc[j] += (double)bce_term(p[i + j], x[i + j]);
            continue;
        }
        sx_v16 lp = pv;
        sx_vlog(&lp);
        /* log1p(-p) = log(w) * (-p) / (w - 1) when w != 1 (rounding of 1 - p cancels) */
        sx_v16 lw = w, wm1 = w - V16(1.0f);
        sx_vlog(&lw);
        sx_v16i one = wm1 == V16(0.0f);
        sx_v16 den = (sx_v16)((~one & (sx_v16i)wm1) | (one & (sx_v16i)V16(1.0f)));
        sx_v16 l1p = (sx_v16)((~one & (sx_v16i)(lw * (-pv) / den)) | (one & (sx_v16i)(-pv)));
        t = (xv - V16(1.0f)) * l1p - xv * lp;
        float tf[16];
        memcpy(tf, &t, sizeof tf);
        for (int j = 0; j < 16; j++) acc[j] += (double)tf[j];
    }
    double s = 0;
    for (int j = 0; j < 16; j++) s += acc[j];
    for (; i < n; i++) s += (double)bce_term(p[i], x[i]);
    return s;
}

#include "sx_nn_kernels.inc"
