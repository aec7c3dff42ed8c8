/* sx_nn_internal — structures shared by the nn .c files (not part of the public API).
 *
 * Internal layout (why it differs from PyTorch's): the first-layer weight is stored
 * transposed and in column tiles: hidden units [t, t + SX_NN_W1_TILE) form one tile, a
 * row-major G x width block, and the tiles follow each other. One input gene's weights for a
 * tile are one contiguous short row, so the sparse forward adds rows of a block that is
 * contiguous (512 KiB for G = 2000 in float32: it stays in L2, and a plain G x H layout's
 * 4 KiB row stride would alias to a few cache sets and thrash), and the fused gradient +
 * Adam update streams each tile front to back. Use sx_nn_w1_index for element (g, h).
 * Everything else is stored exactly as the state_dict (out x in, row-major).
 */
#ifndef SX_NN_INTERNAL_H
#define SX_NN_INTERNAL_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "sx_nn.h"

enum { SX_TK_PARAM = 0, SX_TK_BUF = 1, SX_TK_NBT = 2 };

typedef struct sx_nn_tensor {
    char name[80];
    int kind;        /* SX_TK_* */
    int ndim;        /* 0, 1, 2 */
    int64_t dims[2]; /* PyTorch shape */
    int64_t numel;
    int64_t off;     /* element offset in param[] / buf[], or index in nbt[] */
    int transposed;  /* W1 only: stored transposed in tiles (sx_nn_w1_index) */
    int pidx;        /* parameter index for SX_TK_PARAM, else -1 */
} sx_nn_tensor;

/* Parameter indices (PyTorch parameters() order). DSBN unit d: gamma 10+2d, beta 11+2d. */
enum {
    SX_P_W1 = 0, SX_P_B1, SX_P_G1, SX_P_BE1, SX_P_WMU, SX_P_BMU, SX_P_WV, SX_P_BV, SX_P_WD,
    SX_P_BD, SX_P_DSBN0
};

struct sx_nn_model {
    int64_t G, H, Z, D;
    int dtype;
    size_t esz;
    int n_tensors;
    sx_nn_tensor *tens;
    int n_params;
    int *param_tensor;   /* param index -> tensor index */
    int64_t *param_off;  /* param index -> element offset in param[] */
    int64_t *param_n;    /* param index -> numel */
    int64_t n_param_el, n_buf_el;
    void *param;         /* dtype elements */
    void *buf;           /* running stats: rm1, rv1 (H each), then per domain rm_d, rv_d (G) */
    int64_t *nbt;        /* 1 + D counters */
    /* metadata */
    char **genes;
    int64_t n_genes_meta;
    char **domains;
    int64_t n_domain_names;
    double *scale;
    int64_t scale_width;
    char *prep_json;
    /* training log */
    int64_t log_n;
    double *log_recon, *log_kl;
    int64_t log_steps, log_best_epoch;
    double log_best_loss;
    int log_early_stopped;
    uint64_t log_seed;
};

/* First-layer weight tiles (see the layout note at the top). Tile j starts at element
 * j * SX_NN_W1_TILE * G of the W1 block (all earlier tiles are full); only the last tile of
 * an H that is not a multiple of SX_NN_W1_TILE is narrower. */
#define SX_NN_W1_TILE 64
/* Input genes per block of the sparse forward: 128 x 64 float weights = 32 KiB, reused by
 * every row of the minibatch from L1/L2 (32 was slower: short row loops; 512 no faster). */
#define SX_NN_KB 128
static inline int64_t sx_nn_w1_width(int64_t H, int64_t h)
{
    int64_t t0 = h - h % SX_NN_W1_TILE;
    return H - t0 < SX_NN_W1_TILE ? H - t0 : SX_NN_W1_TILE;
}
/* Element (input gene g, hidden unit h) of W1 inside its block. */
static inline int64_t sx_nn_w1_index(int64_t G, int64_t H, int64_t g, int64_t h)
{
    int64_t t0 = h - h % SX_NN_W1_TILE;
    return t0 * G + g * sx_nn_w1_width(H, h) + (h - t0);
}

/* Offsets of the parameters inside param[] (elements). */
static inline int64_t sx_nn_poff(const struct sx_nn_model *m, int p) { return m->param_off[p]; }
/* Buffer offsets. */
static inline int64_t sx_nn_boff_rm1(const struct sx_nn_model *m) { (void)m; return 0; }
static inline int64_t sx_nn_boff_rv1(const struct sx_nn_model *m) { return m->H; }
static inline int64_t sx_nn_boff_rm(const struct sx_nn_model *m, int64_t d)
{
    return 2 * m->H + 2 * d * m->G;
}
static inline int64_t sx_nn_boff_rv(const struct sx_nn_model *m, int64_t d)
{
    return 2 * m->H + (2 * d + 1) * m->G;
}

/* A model with zeroed storage and no initialization (for load / clone). */
struct sx_nn_model *sx_nn_model_alloc(const sx_nn_config *cfg, sx_status *st);

const sx_nn_tensor *sx_nn_find_tensor(const struct sx_nn_model *m, const char *name);
int sx_nn_param_index(const struct sx_nn_model *m, const char *name);

/* ---- RNG: xoshiro256** seeded through splitmix64 ---- */
typedef struct sx_nn_rng {
    uint64_t s[4];
} sx_nn_rng;
void sx_nn_rng_seed(sx_nn_rng *r, uint64_t seed);
uint64_t sx_nn_rng_next(sx_nn_rng *r);
/* Advance by 2^128 draws (xoshiro256**'s published jump): a stream seeded alike, then jumped,
 * never meets the unjumped one's draws. */
void sx_nn_rng_jump(sx_nn_rng *r);
double sx_nn_rng_uniform(sx_nn_rng *r);  /* [0, 1) with 53 bits */
double sx_nn_rng_normal(sx_nn_rng *r);   /* standard normal (Box-Muller, cosine value only) */
uint64_t sx_nn_rng_below(sx_nn_rng *r, uint64_t n); /* uniform in [0, n), unbiased */

/* OpenBLAS's current thread count (training and encoding set 1 for the sparse path and put
 * the caller's value back when they finish). */
int sx_nn_blas_threads(void);

/* ---- worker pool for the sparse first layer: splits [0, H) into per-thread ranges ---- */
typedef struct sx_nn_pool sx_nn_pool;
typedef void (*sx_nn_task)(void *arg, int64_t h0, int64_t h1);
sx_nn_pool *sx_nn_pool_new(int threads, sx_status *st); /* threads <= 1: runs inline */
void sx_nn_pool_free(sx_nn_pool *p);
/* Run fn over [0, n) split into contiguous ranges aligned to `align`; returns when done. */
void sx_nn_pool_run(sx_nn_pool *p, sx_nn_task fn, void *arg, int64_t n, int64_t align);
int sx_nn_pool_threads(const sx_nn_pool *p);

/* ---- workspace for one minibatch (both precisions; arrays hold dtype elements) ---- */
typedef struct sx_nn_ws {
    int64_t cap;            /* rows */
    int64_t B;              /* rows of the current minibatch */
    void *xd;               /* B x G dense input */
    void *a1, *xhat1, *hbn, *h;  /* B x H */
    void *mu, *s, *var, *sig, *z, *eps; /* B x Z */
    void *a2, *xhat2, *y2, *p;   /* B x G */
    void *da2, *dh, *da1;   /* B x G, B x H, B x H */
    void *da1p;             /* da1 packed per W1 tile (sparse gradient kernels) */
    void *a1p;              /* first-layer partial sums packed per W1 tile (sparse forward) */
    void *dz, *dmu, *ds;    /* B x Z */
    void *mean1, *invstd1;  /* H */
    void *mean2, *invstd2;  /* D x G */
    double *scratch;        /* 2 * max(G, H) */
    double *rowacc;         /* B: per-row loss sums */
    int64_t *dom_cnt;       /* D */
    int64_t *dom_rows;      /* B: rows grouped by domain */
    int64_t *dom_start;     /* D + 1 */
    int32_t *dom;           /* B: domain of each row */
    /* minibatch as CSR (rows b) and CSC (columns k) */
    int64_t nnz_cap;
    int64_t *rptr;          /* B + 1 */
    int64_t nblk;           /* gene blocks of SX_NN_KB columns */
    int64_t *bptr;          /* B x (nblk + 1): first nonzero of row b in gene block j */
    int32_t *ridx;          /* nnz */
    void *rval;             /* nnz (dtype) */
    int64_t *cptr;          /* G + 1 */
    int32_t *cidx;          /* nnz: row b */
    void *cval;             /* nnz */
    int enc_bn_applied, dec_dsbn_applied;
} sx_nn_ws;

int sx_nn_ws_reserve(sx_nn_ws *w, const struct sx_nn_model *m, int64_t rows, int64_t nnz,
                     sx_status *st);
void sx_nn_ws_free(sx_nn_ws *w);
/* Load rows[0..n) of x into the workspace (dense + CSR + CSC), domains included. */
int sx_nn_ws_load(sx_nn_ws *w, const struct sx_nn_model *m, const sx_csr *x,
                  const int64_t *rows, int64_t n, const int32_t *domain, int64_t fixed_domain,
                  sx_status *st);

/* Inference one chunk at a time through the training forward (sx_nn_fwd_*): latent
 * (target < 0) or imputation into domain `target`. Imputation's path, and the reference the
 * blocked encoder is checked against (bench_encode, tests). Arguments as sx_nn_encode. */
int sx_nn_infer_minibatch(struct sx_nn_model *m, const sx_csr *x, const int32_t *domain,
                          int64_t target, const sx_nn_infer_opts *opts, double *out,
                          const sx_progress *p, sx_status *st);
/* Inference: rows[0..n) of x as CSR (rptr, ridx, rval: all the encoder reads of the input),
 * with room for the encoder's n x SX_NN_W1_TILE tile of pre-activations (a1), n x H hidden
 * layer (h) and n x Z latent (mu). Such a workspace holds no dense, CSC, block-pointer or
 * domain copy and its capacities count only these arrays: it serves sx_nn_enc_rows_* only,
 * never a training step. */
int sx_nn_ws_load_csr(sx_nn_ws *w, const struct sx_nn_model *m, const sx_csr *x,
                      const int64_t *rows, int64_t n, sx_status *st);

struct sx_nn_trainer {
    struct sx_nn_model *m;
    sx_nn_train_opts o;
    sx_nn_ws w;
    sx_nn_pool *pool;
    sx_nn_rng rng;
    void *grad, *m1, *m2;   /* n_param_el each (dtype) */
    int64_t *steps;         /* per parameter */
    uint8_t *ever;          /* parameter has had a gradient */
    uint8_t *gstate;        /* SX_NN_GRAD_* of the last forward_backward */
    int w1_grad_ready;      /* grad[] holds the first-layer weight gradient */
    int have_fb;            /* a forward_backward ran since the last Adam step */
    int blas_prev;          /* OpenBLAS thread count to restore when the trainer is freed */
};

/* Precision-specific kernels (sx_nn_kernels.inc compiled as _f32 and _f64).
 * fwd: training-mode (eval = 0) or eval-mode forward of the loaded minibatch; update = move
 * running statistics (train mode only); flags: SX_FWD_EPS = z = mu + eps*sigma with w->eps
 * (else z = mu), SX_FWD_ENC_ONLY = stop after the heads (the decoder is not run);
 * dense = first layer through GEMM on the dense copy instead of the sparse kernel. */
enum { SX_FWD_EPS = 1, SX_FWD_ENC_ONLY = 2 };
#define SX_NN_DECLARE(sfx)                                                                     \
    void sx_nn_fwd_##sfx(struct sx_nn_model *m, sx_nn_ws *w, sx_nn_pool *pool, int eval,      \
                         int update, int flags, int dense);                                    \
    void sx_nn_loss_##sfx(const struct sx_nn_model *m, const sx_nn_ws *w, sx_nn_pool *pool,   \
                          sx_nn_losses *l);                                                    \
    void sx_nn_bwd_##sfx(struct sx_nn_trainer *t);                                            \
    void sx_nn_adam_##sfx(struct sx_nn_trainer *t);                                           \
    void sx_nn_init_##sfx(struct sx_nn_model *m, sx_nn_rng *r);                               \
    void sx_nn_enc_rows_##sfx(struct sx_nn_model *m, sx_nn_ws *w, const int64_t *cs,          \
                              int64_t nc, int eval, double *stats);                           \
    void sx_nn_bn1_running_##sfx(struct sx_nn_model *m, const double *stats, int64_t n);
/* enc_rows: inference encoder (latent mu into w->mu) for the rows loaded by
 * sx_nn_ws_load_csr, which are the chunks k = rows [cs[k], cs[k + 1]) for k < nc; eval = BN1
 * with running statistics, else each chunk's own; stats (train mode, may be NULL): nc x 2H
 * doubles receive each chunk's batch mean and variance (chunks of >= 2 rows), for
 * bn1_running, which moves BN1's running statistics by one chunk of n rows. */
SX_NN_DECLARE(f32)
SX_NN_DECLARE(f64)

#endif
