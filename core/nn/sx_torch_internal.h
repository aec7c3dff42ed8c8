/* sx_torch_internal — the two layers under sx_torch.h: the zip container (sx_torch_zip.c)
 * and the bounded pickle machine (sx_torch_pickle.c). Private to core/nn.
 *
 * Nothing here executes code from a file: the pickle machine knows a fixed list of globals
 * and builds plain values for them; any other global is refused by name. */
#ifndef SX_TORCH_INTERNAL_H
#define SX_TORCH_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "sx_error.h"

/* ---- zip container (stored entries only) ---- */
typedef struct sx_tzip sx_tzip; /* opaque; owns the open file */

/* Open `path` and read its central directory. `label` names the file in messages (a file's
 * base name, never a server path). Refuses: the legacy (pre-1.6) torch format, compressed or
 * encrypted entries, names that escape ("../", absolute, backslashes), duplicate names,
 * entries that run past the central directory, inconsistent local headers. Caller frees. */
sx_tzip *sx_tzip_open(const char *path, const char *label, sx_status *st);
void sx_tzip_close(sx_tzip *z);
int64_t sx_tzip_count(const sx_tzip *z);
const char *sx_tzip_name(const sx_tzip *z, int64_t i); /* owned by z */
uint64_t sx_tzip_size(const sx_tzip *z, int64_t i);
/* Index of the entry called `name`, -1 when absent. */
int64_t sx_tzip_find(const sx_tzip *z, const char *name);
/* Read all of entry i into a new buffer (size sx_tzip_size) and check its CRC-32.
 * Caller frees with sx_free. */
int sx_tzip_read(const sx_tzip *z, int64_t i, uint8_t **out, sx_status *st);
const char *sx_tzip_label(const sx_tzip *z);

/* ---- pickle values ---- */
typedef enum {
    SX_PV_NONE, SX_PV_BOOL, SX_PV_INT, SX_PV_FLOAT, SX_PV_STR, SX_PV_BYTES, SX_PV_TUPLE,
    SX_PV_LIST, SX_PV_DICT, SX_PV_GLOBAL, SX_PV_STORAGE, SX_PV_TENSOR, SX_PV_NDARRAY,
    SX_PV_DTYPE, SX_PV_INDEX
} sx_pv_kind;

/* Storage element types (torch.<X>Storage). */
typedef enum {
    SX_TDT_F32, SX_TDT_F64, SX_TDT_F16, SX_TDT_BF16, SX_TDT_I64, SX_TDT_I32, SX_TDT_I16,
    SX_TDT_I8, SX_TDT_U8, SX_TDT_BOOL
} sx_tdt;

#define SX_PV_MAXDIM 8

/* One value. All values belong to the sx_pkl that made them (freed with it); a value may be
 * shared (memo) and a list may even contain itself, so walkers bound their depth.
 * STR/BYTES/GLOBAL: s (NUL-terminated), len; GLOBAL also `i` = its allow-list id.
 * TUPLE/LIST: items[0..n); DICT: items[2k] key, items[2k+1] value, in insertion order.
 * STORAGE: s = storage key ("0"), i = declared numel, dt. TENSOR: items[0] = storage,
 * offset, ndim, shape, stride. NDARRAY: dt_obj (1 = object array with items, else bytes in
 * s/len), ndim, shape. INDEX: items[0] = the data ndarray. DTYPE: s = numpy's code ("O8"). */
typedef struct sx_pv {
    sx_pv_kind kind;
    int64_t i;
    double f;
    char *s;
    size_t len;
    struct sx_pv **items;
    size_t n, cap;
    int dt;
    int dt_obj;
    int ndim;
    int64_t offset;
    int64_t shape[SX_PV_MAXDIM];
    int64_t stride[SX_PV_MAXDIM];
} sx_pv;

typedef struct sx_pkl sx_pkl; /* the machine's result: every value it made */

/* Run the pickle in buf[0..n). `label` names the stream in messages. Bounds: stack, marks,
 * memo ids, value count and nesting are all capped; the input is never read past n.
 * Returns NULL on error (st filled). Caller frees with sx_pkl_free. */
sx_pkl *sx_pkl_parse(const uint8_t *buf, size_t n, const char *label, sx_status *st);
const sx_pv *sx_pkl_root(const sx_pkl *p);
void sx_pkl_free(sx_pkl *p);

/* Value of `key` in a DICT (string keys), NULL when absent or d is not a dict. */
const sx_pv *sx_pv_dict_get(const sx_pv *d, const char *key);
/* The parsed pickle of an opened .pt file (what config.pt holds: no tensors). Owned by t. */
struct sx_torch;
const sx_pv *sx_torch_root(const struct sx_torch *t);

/* Bytes per element of a storage type. */
size_t sx_tdt_size(int dt);
const char *sx_tdt_name(int dt);

#endif
