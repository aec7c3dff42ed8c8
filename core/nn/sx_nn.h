/* sx_nn — the SCALEX network: VAE with a domain-specific batch-norm decoder, its training
 * loop, inference (latent, imputation) and model file.
 *
 * Numerics follow docs/ALGORITHM.md §4–6 with the corrections of §13 (PyTorch 1.13 float32
 * semantics: BN rules incl. one-row minibatches and one-row domains, BCE log clamp at -100,
 * KL through Normal(mu, sqrt(var)), Adam with coupled L2 weight decay).
 *
 * Precision: a model is float32 (production) or float64 (reference, used by tests to reach
 * 1e-10 agreement with the golden float64 runs). Every kernel exists in both precisions
 * (sx_nn_kernels.inc compiled twice); the precision is fixed when the model is created.
 *
 * Tensors are addressed by SCALEX's state_dict key names (ALGORITHM.md §7.1), e.g.
 * "encoder.enc.net.0.fc.weight" (H x G, out x in, row-major) or
 * "decoder.net.0.norm.bns.2.running_var". Values cross the API as double (exact for both
 * precisions) so callers never depend on the internal layout.
 *
 * Threads: with the sparse first layer (default) a pool of `threads` pthreads splits every
 * large piece of a step by features (hidden units for the first layer, BN1 and the fused
 * gradient + Adam pass over W1; genes for DSBN, sigmoid and the BCE gradient; rows for the
 * loss), and OpenBLAS is set to one thread for the small GEMMs left (its spinning threads
 * would compete with the pool). With the dense first layer OpenBLAS gets `threads`. Each
 * per-feature sum keeps its order, so results are identical for any thread count.
 */
#ifndef SX_NN_H
#define SX_NN_H

#include <stdint.h>

#include "sx_error.h"
#include "sx_matrix.h"
#include "sx_progress.h"

enum { SX_NN_F32 = 0, SX_NN_F64 = 1 };

/* Current model file format version (attribute "format_version" of the HDF5 root). */
#define SX_NN_FORMAT_VERSION 1

typedef struct sx_nn_config {
    int64_t n_genes;   /* G, input and output width */
    int64_t n_hidden;  /* H, 1024 in SCALEX */
    int64_t n_latent;  /* Z, 10 in SCALEX */
    int64_t n_domains; /* D >= 1; D == 1 uses one plain BatchNorm (different key names) */
    int dtype;         /* SX_NN_F32 or SX_NN_F64 */
} sx_nn_config;

/* SCALEX sizes for G genes and D domains, float32. */
void sx_nn_config_default(sx_nn_config *c, int64_t n_genes, int64_t n_domains);

typedef struct sx_nn_model sx_nn_model; /* opaque */

/* New model with PyTorch default initialization (uniform +-1/sqrt(fan_in) for Linear weights
 * and biases, BN gamma 1 / beta 0 / running mean 0 / var 1) drawn from our own RNG seeded by
 * `seed` (statistically, not bitwise, equal to PyTorch's). Caller frees with sx_nn_model_free. */
sx_nn_model *sx_nn_model_new(const sx_nn_config *cfg, uint64_t seed, sx_status *st);
/* New model with every weight and buffer zero and no metadata, for a caller that sets each
 * tensor itself (a model read from a flat reference map): no initialization to pay for. */
sx_nn_model *sx_nn_model_new_zero(const sx_nn_config *cfg, sx_status *st);
void sx_nn_model_free(sx_nn_model *m);
/* Deep copy (weights, buffers, metadata). Caller frees. `dtype` may differ from the source
 * (float32 <-> float64 conversion, as PyTorch's .double()/.float()). */
sx_nn_model *sx_nn_model_clone(const sx_nn_model *m, int dtype, sx_status *st);
void sx_nn_model_get_config(const sx_nn_model *m, sx_nn_config *out);

/* State-dict access. Tensors are enumerated in state_dict order (parameters and buffers
 * interleaved as PyTorch does). `numel` is the element count (1 for num_batches_tracked). */
int sx_nn_model_n_tensors(const sx_nn_model *m);
const char *sx_nn_model_tensor_name(const sx_nn_model *m, int i); /* owned by m */
/* Shape of a tensor: ndim 0, 1 or 2 and dims. Returns SX_ENOTFOUND for an unknown name. */
int sx_nn_model_tensor_shape(const sx_nn_model *m, const char *name, int *ndim, int64_t dims[2],
                             sx_status *st);
/* Copy a tensor out as double (row-major, PyTorch's layout), n must equal numel. */
int sx_nn_model_get(const sx_nn_model *m, const char *name, double *out, int64_t n,
                    sx_status *st);
/* Set a tensor from double values (rounded to the model's precision). */
int sx_nn_model_set(sx_nn_model *m, const char *name, const double *v, int64_t n,
                    sx_status *st);

/* ---- metadata slots filled by the pipeline (all copied; NULL clears) ---- */
int sx_nn_model_set_genes(sx_nn_model *m, const char *const *genes, int64_t n, sx_status *st);
int sx_nn_model_set_domains(sx_nn_model *m, const char *const *names, int64_t n, sx_status *st);
/* Per-domain scale factors (e.g. MaxAbs maxima), D rows x `width` columns, row-major. */
int sx_nn_model_set_scale(sx_nn_model *m, const double *v, int64_t width, sx_status *st);
/* Preprocessing settings as one JSON text. */
int sx_nn_model_set_prep_json(sx_nn_model *m, const char *json, sx_status *st);
/* Borrowed views (NULL / 0 when unset); valid until the next setter or free. */
const char *const *sx_nn_model_genes(const sx_nn_model *m, int64_t *n);
const char *const *sx_nn_model_domains(const sx_nn_model *m, int64_t *n);
const double *sx_nn_model_scale(const sx_nn_model *m, int64_t *width);
const char *sx_nn_model_prep_json(const sx_nn_model *m);

/* Training log kept in the model (filled by sx_nn_train, saved in the model file). */
typedef struct sx_nn_train_log {
    int64_t n_epochs;      /* epochs actually run */
    const double *recon;   /* per epoch: mean recon loss */
    const double *kl;      /* per epoch: mean 0.5*KL */
    int64_t steps;         /* optimizer steps run */
    int64_t best_epoch;    /* 0-based epoch of the lowest monitored loss */
    double best_loss;
    int early_stopped;     /* 1 when patience ran out */
    uint64_t seed;
} sx_nn_train_log;
void sx_nn_model_train_log(const sx_nn_model *m, sx_nn_train_log *out); /* borrowed arrays */

/* ---- model file (HDF5) ----
 * Layout: root attributes format="scalexd-model", format_version, sizes; group "state" with
 * one dataset per state_dict key (float32, or float64 for a float64 model; num_batches_tracked
 * int64 scalar); optional "genes", "domains" (strings), "scale" (D x width float64), attribute
 * "preprocess" (JSON), group "train_log". Load rejects a file of another format, an unknown
 * version or inconsistent shapes (SX_EFORMAT / SX_EUNSUPPORTED) naming the element.
 * Save writes to path (replaced if present); the caller renames into place if needed. */
int sx_nn_model_save(const sx_nn_model *m, const char *path, sx_status *st);
sx_nn_model *sx_nn_model_load(const char *path, sx_status *st); /* caller frees */

/* ---- training ---- */
enum { SX_NN_ADAM_TORCH2 = 0, SX_NN_ADAM_TORCH113 = 1 };
enum { SX_NN_FIRST_SPARSE = 0, SX_NN_FIRST_DENSE = 1 };
enum { SX_NN_FINAL_BEST = 0, SX_NN_FINAL_LAST = 1 };
enum { SX_NN_STOP_STEPS = 0, SX_NN_STOP_SCALEX = 1 };

typedef struct sx_nn_train_opts {
    int64_t batch_size;    /* 64 */
    int64_t max_iteration; /* 30000; n_epoch = ceil(max_iteration / floor(N / batch_size)) */
    double lr;             /* 2e-4 */
    double weight_decay;   /* 5e-4, classic L2 added to the gradient */
    double beta1, beta2, adam_eps; /* 0.9, 0.999, 1e-8 */
    int patience;          /* 10 epochs without strict improvement stop training */
    int early_stopping;    /* SX_NN_STOP_STEPS (default): a stop also needs patience_steps
                              optimizer steps since the best epoch, so a small set (a few
                              steps per epoch, a noisy epoch loss) is not stopped after a
                              handful of tiny epochs; SX_NN_STOP_SCALEX: patience epochs only
                              (SCALEX v1.0.0's EarlyStopping) */
    int64_t patience_steps; /* 1000 (SX_NN_STOP_STEPS only; = SCALEX's 10 epochs of a set of
                               100 steps per epoch, 6400 cells: larger sets stop as SCALEX) */
    uint64_t seed;         /* minibatch order and reparameterization noise: the stream of
                              sx_nn_model_new's seed jumped 2^128 draws on, so the same
                              seed never re-uses the init's draws */
    int threads;           /* 0 = all cores; else the training pool's threads (see top) */
    int adam_mode;         /* SX_NN_ADAM_TORCH2 (default): a DSBN unit absent from a step is
                              skipped; SX_NN_ADAM_TORCH113: once it had a gradient it keeps
                              receiving a zero one (decay, moments, step count) */
    int first_layer;       /* SX_NN_FIRST_SPARSE (default) or SX_NN_FIRST_DENSE (sgemm) */
    int final_weights;     /* SX_NN_FINAL_BEST (default: the network keeps the best epoch's
                              weights, so the model file and the latent agree) or
                              SX_NN_FINAL_LAST (reference: last epoch unless stopped early) */
    int keep_grads;        /* tests: materialize the first-layer weight gradient instead of
                              fusing it into the Adam update */
    /* Replay hooks for tests (NULL in production): per-epoch permutations of the N rows
     * (n_epoch x N) and per-step noise (steps x batch_size x Z). */
    const int64_t *replay_perm;
    const float *replay_eps;
} sx_nn_train_opts;
void sx_nn_train_opts_default(sx_nn_train_opts *o);

/* Train `m` on x (N x G CSR, values in [0,1]) with domain[i] in [0, D). Runs SCALEX's loop
 * (§6): shuffled drop_last minibatches, n_epoch epochs, early stopping on the epoch loss.
 * Reports per epoch through p (stage "train"; recon, KL, it/s, ETA) and honours cancel.
 * Errors: SX_EINVAL (shape/domain/N < batch_size), SX_EDATA (NaN loss), SX_ECANCELED. */
int sx_nn_train(sx_nn_model *m, const sx_csr *x, const int32_t *domain,
                const sx_nn_train_opts *o, const sx_progress *p, sx_status *st);

/* ---- step-level API (tests, benchmarks) ---- */
typedef struct sx_nn_trainer sx_nn_trainer; /* model (borrowed) + Adam state + workspace */

sx_nn_trainer *sx_nn_trainer_new(sx_nn_model *m, const sx_nn_train_opts *o, sx_status *st);
void sx_nn_trainer_free(sx_nn_trainer *t);

typedef struct sx_nn_losses {
    double recon; /* BCE sum over genes, mean over rows */
    double kl_raw; /* KL sum over latent dims, mean over rows */
    double kl;    /* 0.5 * kl_raw, the reported kl_loss */
    double total; /* recon + kl */
} sx_nn_losses;

/* Forward (training mode) + backward on rows[0..n) of x (rows == NULL: all rows in order).
 * eps: n x Z noise (NULL: drawn from the trainer's RNG). Updates BN running statistics. */
int sx_nn_trainer_forward_backward(sx_nn_trainer *t, const sx_csr *x, const int64_t *rows,
                                   int64_t n, const int32_t *domain, const float *eps,
                                   sx_nn_losses *loss, sx_status *st);
/* Forward only, training mode (eval = 0: batch statistics, running stats updated as PyTorch
 * does) or eval mode (running statistics; nothing updated). No gradients. */
int sx_nn_trainer_forward(sx_nn_trainer *t, const sx_csr *x, const int64_t *rows, int64_t n,
                          const int32_t *domain, const float *eps, int eval,
                          sx_nn_losses *loss, sx_status *st);
/* Adam step with the gradients of the last forward_backward. */
int sx_nn_trainer_adam(sx_nn_trainer *t, sx_status *st);

/* Gradient status of a parameter after forward_backward. */
enum { SX_NN_GRAD_NONE = 0, SX_NN_GRAD_ZERO = 1, SX_NN_GRAD_VALUE = 2 };
int sx_nn_trainer_grad_state(const sx_nn_trainer *t, const char *param);
/* Copy the gradient / Adam moments / Adam step count of a parameter (as double). The
 * first-layer weight gradient is only available with keep_grads or the dense first layer. */
enum { SX_NN_WHAT_GRAD = 0, SX_NN_WHAT_EXP_AVG = 1, SX_NN_WHAT_EXP_AVG_SQ = 2 };
int sx_nn_trainer_get(const sx_nn_trainer *t, int what, const char *param, double *out,
                      int64_t n, sx_status *st);
int64_t sx_nn_trainer_adam_steps(const sx_nn_trainer *t, const char *param);
/* Intermediate of the last forward, n_rows x width, by golden name: enc_linear, enc_bn,
 * enc_relu, mu, var_head, var, z, dec_linear, dec_dsbn, recon. */
int sx_nn_trainer_activation(const sx_nn_trainer *t, const char *name, double *out, int64_t n,
                             sx_status *st);

/* ---- inference ---- */
typedef struct sx_nn_infer_opts {
    int64_t batch_size;       /* 64: size of the domain-pure chunks */
    int eval;                 /* 0 (SCALEX default): BN in training mode with each chunk's
                                 statistics; 1: running statistics */
    const int64_t *perm;      /* order in which cells are walked (NULL = input order) */
    int update_running_stats; /* train mode only: update running stats as PyTorch does */
    int threads;              /* as in sx_nn_train_opts */
} sx_nn_infer_opts;
void sx_nn_infer_opts_default(sx_nn_infer_opts *o);

/* SCALEX's inference sampler (§6.3): walks perm (or 0..n-1), one open list per domain, emits
 * a list when it reaches batch_size, then the leftovers in order of first appearance.
 * *idx (n entries) and *off (*n_chunks + 1) are allocated; caller frees with sx_free. */
int sx_nn_domain_chunks(const int32_t *domain, int64_t n, int64_t n_domains,
                        const int64_t *perm, int64_t batch_size, int64_t **idx, int64_t **off,
                        int64_t *n_chunks, sx_status *st);

/* Latent = mu for every row of x, written row-major to latent (N x Z) in input order.
 * SCALEX's chunks (above) keep their meaning: BN1 uses each chunk's own statistics (or the
 * running ones with eval). The work is blocked for speed: the first layer of ~512 rows of
 * whole chunks at a time, blocks shared out among `threads` threads; each latent depends only
 * on its chunk, so the result is the same for any thread count (and, for hidden widths that
 * are multiples of 64, bit for bit that of encoding chunk by chunk). */
int sx_nn_encode(sx_nn_model *m, const sx_csr *x, const int32_t *domain,
                 const sx_nn_infer_opts *o, double *latent, const sx_progress *p,
                 sx_status *st);
/* Imputation: decoder(mu, target_domain) for every row, out is N x G in input order. */
int sx_nn_impute(sx_nn_model *m, const sx_csr *x, const int32_t *domain, int64_t target_domain,
                 const sx_nn_infer_opts *o, double *out, const sx_progress *p, sx_status *st);

/* Set the BLAS thread count (0 = leave as is). */
void sx_nn_set_threads(int threads);

#endif
