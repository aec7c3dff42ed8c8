/* sx_umap_sgd — the UMAP transform's epoch kernel (sx_umap_internal.h says why it is one). */
#include <stddef.h>
#include <string.h>

#include "sx_alloc.h"
#include "sx_embed_internal.h"
#include "sx_umap_internal.h"

/* Samples drawn before they are computed (a batch's ids stay in L2). Its query cells are
 * split into 8 runs, one per vector lane: the lanes' chains are independent (one cell's
 * samples are sequential: each starts where the previous one moved it), and longer runs
 * leave fewer lanes idle at the end of a batch. */
#define TB_SAMPLES 2048
/* Samples ahead (per lane) whose reference points are prefetched, on layouts of more than
 * TB_PREFETCH_FROM points: a 1M-cell layout (8 MB) misses the caches at nearly every
 * negative sample; a 100k-cell one (800 KB) stays in L2, where prefetching costs more
 * instructions than it saves. */
#define TB_PREFETCH 2
#ifndef TB_PREFETCH_FROM
#define TB_PREFETCH_FROM 262144
#endif

typedef float v8 __attribute__((vector_size(32)));
typedef int32_t v8i __attribute__((vector_size(32)));
#define V8(c) ((v8){c, c, c, c, c, c, c, c})
#define V8I(c) ((v8i){c, c, c, c, c, c, c, c})

struct sx_umap_tscratch {
    int32_t *sj;   /* query row of each drawn sample */
    int32_t *cnt;  /* lanes it uses: the edge's tail, then its negative samples */
    int32_t *off;  /* its first entry in ids */
    int32_t *ids;  /* reference rows: per sample, the edge's tail then the negative samples */
    int max_lanes; /* ids one sample can need (see sx_umap_tscratch_new) */
    int cap;       /* ids capacity */
};

sx_umap_tscratch *sx_umap_tscratch_new(int neg_rate)
{
    sx_umap_tscratch *w = sx_calloc(1, sizeof *w);
    if (!w) return NULL;
    /* an edge is due again at most eps + 1 epochs after its last sample (eps >= 1), so it
     * owes at most 2 neg_rate + 1 negative samples; + 2 for the float rounding of the
     * schedule */
    int rate = neg_rate > 0 ? neg_rate : 0;
    w->max_lanes = 1 + 2 * rate + 3;
    w->cap = TB_SAMPLES * (rate + 2) + w->max_lanes;
    w->sj = sx_mallocarray(TB_SAMPLES, sizeof *w->sj);
    w->cnt = sx_mallocarray(TB_SAMPLES, sizeof *w->cnt);
    w->off = sx_mallocarray(TB_SAMPLES, sizeof *w->off);
    w->ids = sx_mallocarray((size_t)w->cap, sizeof *w->ids);
    if (!w->sj || !w->cnt || !w->off || !w->ids) {
        sx_umap_tscratch_free(w);
        return NULL;
    }
    return w;
}

void sx_umap_tscratch_free(sx_umap_tscratch *w)
{
    if (!w) return;
    sx_free(w->sj);
    sx_free(w->cnt);
    sx_free(w->off);
    sx_free(w->ids);
    sx_free(w);
}

/* ------------------------------------------------------ float32 vector math ---- */

/* Macros and pointer arguments: a 32-byte vector passed by value or returned changes the
 * calling convention between the AVX2 clone and the default one (clang refuses it). */
#define VSEL(m, a, b) ((v8)(((v8i)(a) & (m)) | ((v8i)(b) & ~(m))))
#define VCLIP(v, lo, hi) VSEL((v) < (lo), lo, VSEL((v) > (hi), hi, v))

/* x^b = 2^(b log2 x) for positive x (a denormal x gives a finite, inexact power: never
 * seen, as squared distances of a layout are far above 1e-38): Cephes' logf and exp2f
 * polynomials (about 1 ulp each); b log2 x is rounded to float as expf(b * logf(x))
 * rounds it, so the power's relative error is at most 1.3e-6 over [1e-6, 1e5] (checked
 * against double pow), as the libm version's. */
static inline __attribute__((always_inline)) void vpow(v8 *xp, float b)
{
    v8i xi = (v8i)*xp;
    v8i ex = ((xi >> 23) & 0xff) - 126;
    v8 m = (v8)((xi & 0x007fffff) | 0x3f000000); /* mantissa in [0.5, 1) */
    v8i small = m < V8(0.707106781186547524f);
    v8 e = __builtin_convertvector(ex + small, v8); /* small lanes: -1 */
    m = m + (v8)(small & (v8i)m) - V8(1.0f);      /* 2m - 1 or m - 1 */
    /* Estrin's scheme: the pow is a chain of dependent operations per lane, and its
     * latency (not the operation count) bounds the kernel */
    v8 m2 = m * m, m3 = m2 * m, m4 = m2 * m2, m8 = m4 * m4;
    v8 y = (V8(3.3333331174E-1f) + V8(-2.4999993993E-1f) * m) +
           m2 * (V8(2.0000714765E-1f) + V8(-1.6668057665E-1f) * m) +
           m4 * ((V8(1.4249322787E-1f) + V8(-1.2420140846E-1f) * m) +
                 m2 * (V8(1.1676998740E-1f) + V8(-1.1514610310E-1f) * m)) +
           m8 * V8(7.0376836292E-2f);
    v8 lnm = m + (y * m3 - V8(0.5f) * m2); /* ln of the mantissa */
    /* 2^t, t = b log2 x = b log2(e) ln(m) + b e, clamped to the normal range */
    v8 t = lnm * V8(b * 1.44269504088896341f) + e * V8(b);
    t = VCLIP(t, V8(-126.0f), V8(126.0f));
    v8 r = t + V8(12582912.0f); /* 1.5 * 2^23: round to the nearest integer */
    v8i n = (v8i)r - (v8i)V8(12582912.0f);
    v8 f = t - (r - V8(12582912.0f)); /* in [-0.5, 0.5] */
    v8 f2 = f * f, f4 = f2 * f2;
    v8 p = (V8(1.0f) + V8(6.931472028550421E-1f) * f) +
           f2 * (V8(2.402264791363012E-1f) + V8(5.550332471162809E-2f) * f) +
           f4 * ((V8(9.618437357674640E-3f) + V8(1.339887440266574E-3f) * f) +
                 f2 * V8(1.535336188319500E-4f));
    *xp = (v8)((v8i)p + (n << 23));
}

/* ------------------------------------------------------------------ kernel ---- */

#if defined(__x86_64__) && !defined(__SANITIZE_ADDRESS__)
#include <immintrin.h>
#define SX_TSGD_X86 1
/* The lanes' reference rows ids[at] and their layout points in three gather instructions
 * (the portable loop takes about fifty). Row indices are doubled in int32: the AVX2 path
 * is taken only for layouts under 2^30 points. */
__attribute__((target("avx2"))) static inline void tgather_avx2(const float *tail,
                                                                const int32_t *ids,
                                                                const v8i *at, v8i *iv, v8 *ox,
                                                                v8 *oy)
{
    __m256i a, r;
    memcpy(&a, at, sizeof a);
    r = _mm256_i32gather_epi32((const int *)ids, a, 4);
    __m256i r2 = _mm256_add_epi32(r, r);
    __m256 x = _mm256_i32gather_ps(tail, r2, 4), y = _mm256_i32gather_ps(tail + 1, r2, 4);
    memcpy(iv, &r, sizeof r);
    memcpy(ox, &x, sizeof x);
    memcpy(oy, &y, sizeof y);
}
#else
#define SX_TSGD_X86 0
#endif

typedef struct tconst {
    float a, b, alpha, m2ab, two_gb;
} tconst;

/* One step of the 8 lanes: each lane computes the next drawn sample of its run of query
 * cells: the edge's attraction (p = 0) and its negative samples' repulsion (p >= 1), all
 * from the cell's position before the sample (umap moves it after each; the sum is applied
 * at once), so the pows of one step are independent. Coefficients as umap: attraction
 * -2ab d^(2b-2) / (1 + a d^2b), repulsion 2 gamma b / ((0.001 + d^2)(1 + a d^2b)), each
 * coordinate clipped to +-4; a negative sample on the cell's own spot pushes by +4 unless
 * its row equals the query's (umap's j == k). Lanes whose run is done have cnt 0. */
static inline __attribute__((always_inline)) void tstep(const sx_umap_tsgd *T,
                                                        const sx_umap_tscratch *w,
                                                        const int *s, const int *e,
                                                        const tconst *K, int avx2)
{
    const float *tail = T->tail;
    float *head = T->head;
    int32_t jl[8], cl[8], ol[8], maxc = 0;
    v8 c0, c1;
    for (int l = 0; l < 8; l++) {
        int on = s[l] < e[l], q = on ? s[l] : 0;
        jl[l] = w->sj[q];
        cl[l] = on ? w->cnt[q] : 0;
        ol[l] = w->off[q];
        c0[l] = head[2 * (int64_t)jl[l]];
        c1[l] = head[2 * (int64_t)jl[l] + 1];
        maxc = cl[l] > maxc ? cl[l] : maxc;
    }
    v8i cv, jv, ov;
    memcpy(&cv, cl, sizeof cv);
    memcpy(&jv, jl, sizeof jv);
    memcpy(&ov, ol, sizeof ov);
    v8 acc0 = V8(0.0f), acc1 = V8(0.0f);
    for (int p = 0; p < maxc; p++) {
        v8 ox, oy;
        v8i iv;
#if SX_TSGD_X86
        if (avx2) {
            v8i at = ov + (V8I(p) & (V8I(p) < cv)); /* lanes past their count: the tail */
            tgather_avx2(tail, w->ids, &at, &iv, &ox, &oy);
        } else
#endif
            for (int l = 0; l < 8; l++) {
                int32_t r = w->ids[ol[l] + (p < cl[l] ? p : 0)];
                iv[l] = r;
                ox[l] = tail[2 * (int64_t)r];
                oy[l] = tail[2 * (int64_t)r + 1];
            }
        v8 ex = c0 - ox, ey = c1 - oy;
        v8 q2 = ex * ex + ey * ey;
        v8i pos = q2 > V8(0.0f);
        v8 qs = VSEL(pos, q2, V8(1.0f)), pb = qs;
        vpow(&pb, K->b);
        v8 num = p == 0 ? V8(K->m2ab) * pb : V8(K->two_gb);
        v8 den = p == 0 ? qs : qs + V8(0.001f);
        v8 coef = num / (den * (V8(K->a) * pb + V8(1.0f)));
        v8i quirk = p == 0 ? V8I(0) : ~pos & (iv != jv);
        v8 fx = coef * ex, fy = coef * ey;
        v8 gx = VSEL(pos, VCLIP(fx, V8(-4.0f), V8(4.0f)), quirk & (v8i)V8(4.0f));
        v8 gy = VSEL(pos, VCLIP(fy, V8(-4.0f), V8(4.0f)), quirk & (v8i)V8(4.0f));
        v8i act = V8I(p) < cv;
        acc0 += (v8)(act & (v8i)gx);
        acc1 += (v8)(act & (v8i)gy);
    }
    c0 += V8(K->alpha) * acc0;
    c1 += V8(K->alpha) * acc1;
    for (int l = 0; l < 8; l++) {
        if (!cl[l]) continue;
        head[2 * (int64_t)jl[l]] = c0[l];
        head[2 * (int64_t)jl[l] + 1] = c1[l];
    }
}

static inline __attribute__((always_inline)) void tprefetch(const sx_umap_tsgd *T,
                                                            const sx_umap_tscratch *w, int s)
{
    const int32_t *id = w->ids + w->off[s];
    for (int l = 0; l < w->cnt[s]; l++) __builtin_prefetch(T->tail + 2 * (int64_t)id[l]);
}

/* Compute the ns drawn samples: 8 runs of whole query cells, one per lane. */
static inline __attribute__((always_inline)) void tflush(const sx_umap_tsgd *T,
                                                         const sx_umap_tscratch *w, int ns,
                                                         const tconst *K, int avx2)
{
    int s[8], e[8], bd[9];
    bd[0] = 0;
    bd[8] = ns;
    for (int g = 1; g < 8; g++) {
        int b = ns * g / 8;
        if (b < bd[g - 1]) b = bd[g - 1];
        while (b > 0 && b < ns && w->sj[b] == w->sj[b - 1]) b++;
        bd[g] = b;
    }
    for (int g = 0; g < 8; g++) {
        s[g] = bd[g];
        e[g] = bd[g + 1];
    }
    const int pf = T->n_tail > TB_PREFETCH_FROM;
    for (int g = 0; pf && g < 8; g++)
        for (int p = s[g]; p < s[g] + TB_PREFETCH && p < e[g]; p++) tprefetch(T, w, p);
    for (;;) {
        int any = 0;
        for (int g = 0; g < 8; g++) {
            if (s[g] >= e[g]) continue;
            any = 1;
            if (pf && s[g] + TB_PREFETCH < e[g]) tprefetch(T, w, s[g] + TB_PREFETCH);
        }
        if (!any) break;
        tstep(T, w, s, e, K, avx2);
        for (int g = 0; g < 8; g++) s[g] += s[g] < e[g];
    }
}

static inline __attribute__((always_inline)) void tchunk(const sx_umap_tsgd *T,
                                                         sx_umap_tscratch *w, int64_t e0,
                                                         int64_t e1, int64_t c, int epoch,
                                                         float alpha, int avx2)
{
    sx_rng rng;
    sx_rng_seed(&rng, T->seed, (uint64_t)epoch * (uint64_t)T->n_chunks + (uint64_t)c + 1);
    const float a = T->a, b = T->b, two_gb = 2.0f * T->gamma * b, m2ab = -2.0f * a * b;
    const float n = (float)epoch, inv_neg = 1.0f / (float)T->neg_rate;
    tconst K = {.a = a, .b = b, .alpha = alpha, .m2ab = m2ab, .two_gb = two_gb};
    const int32_t *eh = T->eh, *et = T->et;
    const float *eps = T->eps;
    float *next = T->next, *next_neg = T->next_neg;
    const int64_t n_tail = T->n_tail;
    int ns = 0, used = 0;
    /* Draw: the due edges and their negative samples, in edge order from the chunk's stream
     * (nothing drawn depends on a position). Due edges are found 8 at a time (a bit mask,
     * then its set bits): about a third are due, at random, which a branch per edge
     * mispredicts. */
    for (int64_t b0 = e0; b0 < e1; b0 += 8) {
        unsigned due = 0;
        if (e1 - b0 >= 8) {
            for (int l = 0; l < 8; l++) due |= (unsigned)!(next[b0 + l] > n) << l;
        } else {
            for (int l = 0; l < e1 - b0; l++) due |= (unsigned)!(next[b0 + l] > n) << l;
        }
        for (; due; due &= due - 1) {
            int64_t ed = b0 + __builtin_ctz(due);
            next[ed] += eps[ed];
            int n_neg = 0;
            if (T->neg_rate > 0) {
                float epn = eps[ed] * inv_neg;
                n_neg = (int)((n - next_neg[ed]) / epn);
                if (n_neg > 0) next_neg[ed] += (float)n_neg * epn;
                if (n_neg < 0) n_neg = 0;
            }
            /* unreachable bound (see sx_umap_tscratch_new); keeps the buffer safe */
            if (n_neg > w->max_lanes - 1) n_neg = w->max_lanes - 1;
            if (ns == TB_SAMPLES || used + w->max_lanes > w->cap) {
                tflush(T, w, ns, &K, avx2);
                ns = used = 0;
            }
            int32_t *id = w->ids + used, k = et[ed];
            w->sj[ns] = eh[ed];
            w->cnt[ns] = 1 + n_neg;
            w->off[ns] = used;
            id[0] = k;
            for (int p = 1; p <= n_neg; p++) id[p] = (int32_t)sx_umap_rng_index(&rng, n_tail);
            used += 1 + n_neg;
            ns++;
        }
    }
    tflush(T, w, ns, &K, avx2);
}

static void tchunk_default(const sx_umap_tsgd *T, sx_umap_tscratch *w, int64_t e0, int64_t e1,
                           int64_t c, int epoch, float alpha)
{
    tchunk(T, w, e0, e1, c, epoch, alpha, 0);
}

#if SX_TSGD_X86
/* AVX2 with FMA (gcc contracts the polynomials' multiply-adds): results differ from the
 * portable path's in the last bits, never between runs or thread counts on one machine. */
__attribute__((target("avx2,fma"))) static void tchunk_avx2(const sx_umap_tsgd *T,
                                                             sx_umap_tscratch *w, int64_t e0,
                                                             int64_t e1, int64_t c, int epoch,
                                                             float alpha)
{
    tchunk(T, w, e0, e1, c, epoch, alpha, 1);
}
#endif

void sx_umap_tsgd_chunk(const sx_umap_tsgd *T, sx_umap_tscratch *w, int64_t e0, int64_t e1,
                        int64_t c, int epoch, float alpha)
{
#if SX_TSGD_X86
    if (T->n_tail < (1 << 30) && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
        tchunk_avx2(T, w, e0, e1, c, epoch, alpha);
        return;
    }
#endif
    tchunk_default(T, w, e0, e1, c, epoch, alpha);
}
