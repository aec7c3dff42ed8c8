/* sx_torch — read PyTorch checkpoint files (torch.save's zip format, torch >= 1.6) without
 * Python or libtorch: a state_dict's tensors, and SCALEX's checkpoint/config.pt.
 *
 * A .pt file is a zip holding <top>/data.pkl (a pickle) and one <top>/data/<key> member per
 * storage (raw little-endian elements). The pickle is run by a bounded machine that knows
 * only the globals these files use and refuses any other by name; nothing is executed.
 * Legacy (pre-1.6) files and zips re-compressed by other tools are refused with a message
 * saying how to re-save them. Every tensor is checked against its storage (shape, strides,
 * offset, overflow) when the file is opened; storage bytes are CRC-checked when read.
 *
 * Messages name the file by its base name only. Handles are not shared between threads
 * without a lock (reads use pread, but keep it simple: one thread per handle).
 */
#ifndef SX_TORCH_H
#define SX_TORCH_H

#include <stdint.h>

#include "sx_error.h"

typedef struct sx_torch sx_torch; /* opaque: an opened checkpoint */

/* Element types of a tensor (its storage type). */
enum {
    SX_TORCH_F32 = 0, SX_TORCH_F64, SX_TORCH_F16, SX_TORCH_BF16, SX_TORCH_I64, SX_TORCH_I32,
    SX_TORCH_I16, SX_TORCH_I8, SX_TORCH_U8, SX_TORCH_BOOL
};

#define SX_TORCH_MAXDIM 8

typedef struct sx_torch_info {
    const char *name;  /* the state_dict key; owned by the handle */
    int dtype;         /* SX_TORCH_* */
    int ndim;          /* 0 for a scalar */
    int64_t shape[SX_TORCH_MAXDIM];
    int64_t stride[SX_TORCH_MAXDIM]; /* in elements */
    int64_t offset;    /* storage offset, in elements */
    int64_t numel;
    const char *storage; /* the storage key ("0" -> member <top>/data/0); owned by the handle */
} sx_torch_info;

/* Open and parse a .pt file. Tensors are those of the top-level dict (a state_dict), in its
 * order; nested dicts contribute "outer.inner" names. Caller frees with sx_torch_close.
 * Errors: SX_EIO (cannot open), SX_EFORMAT (corrupt or hostile), SX_EUNSUPPORTED (legacy
 * format, compressed entries, a global we do not allow), SX_ELIMIT (a bound exceeded). */
sx_torch *sx_torch_open(const char *path, sx_status *st);
void sx_torch_close(sx_torch *t);

int sx_torch_n_tensors(const sx_torch *t);
/* Index of a tensor by name, -1 when absent. */
int sx_torch_find(const sx_torch *t, const char *name);
/* Fill *out for tensor i (0 <= i < n). Returns SX_EINVAL for a bad index. */
int sx_torch_info_get(const sx_torch *t, int i, sx_torch_info *out);
/* dtype as text ("float32", "int64", ...). */
const char *sx_torch_dtype_name(int dtype);

/* Copy tensor i as row-major (C order) values converted to double / float; n must equal its
 * numel. Integer tensors convert exactly up to 2^53; float16/bfloat16 widen exactly. */
int sx_torch_tensor_f64(const sx_torch *t, int i, double *out, int64_t n, sx_status *st);
int sx_torch_tensor_f32(const sx_torch *t, int i, float *out, int64_t n, sx_status *st);

/* ---- SCALEX's checkpoint/config.pt ----
 * torch.save({'n_top_features': pandas Index of gene names, 'enc': [[kind, width, norm, act],
 * ...], 'dec': [...], 'n_domain': int}). `norm` is an int (1 = BatchNorm, >1 = one BN per
 * domain) or '' (none), stored as 0; `act` '' is stored as "". */
typedef struct sx_torch_layer {
    char kind[16];   /* "fc" */
    int64_t width;
    int64_t norm;
    char act[16];    /* "relu", "sigmoid", "" */
} sx_torch_layer;

typedef struct sx_scalex_config {
    char **genes;          /* n_genes names, in model input order */
    int64_t n_genes;
    sx_torch_layer *enc;
    int n_enc;
    sx_torch_layer *dec;
    int n_dec;
    int64_t n_domain;
} sx_scalex_config;

/* Read config.pt into *c (zeroed first). Free with sx_scalex_config_clear. Errors as for
 * sx_torch_open, plus SX_EFORMAT naming a missing or mistyped key. */
int sx_scalex_config_read(const char *path, sx_scalex_config *c, sx_status *st);
void sx_scalex_config_clear(sx_scalex_config *c);

#endif
