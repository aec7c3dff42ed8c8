/* sx_torch_pickle — a small, bounded pickle machine for PyTorch checkpoints.
 *
 * It understands the opcodes torch.save (protocol 2) and pickle's later protocols use for
 * plain data, and a fixed allow-list of globals: the OrderedDict of a state_dict, the tensor
 * rebuild function and storage types, and the pandas Index / numpy array reconstruction of
 * SCALEX's config.pt. Each allowed call is *interpreted* (it builds a plain value); no other
 * global is ever accepted, whatever its arguments, so nothing in a file can run code.
 * Every structure is bounded: the stack, the mark stack, memo ids and the number of values,
 * and every length read from the stream is checked against the bytes left. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "sx_alloc.h"
#include "sx_torch_internal.h"

#define PKL_MAX_STACK (1 << 20)
#define PKL_MAX_MARKS (1 << 16)
#define PKL_MAX_MEMO (1 << 22)
#define PKL_MAX_VALUES (1 << 24)

enum {
    G_ODICT = 1, G_REBUILD, G_STORAGE, G_RECONSTRUCT, G_NDARRAY, G_DTYPE, G_CODECS,
    G_NEW_INDEX, G_INDEX
};

/* The allow-list: module, name, id, storage type for G_STORAGE. */
static const struct {
    const char *mod, *name;
    int id, dt;
} ALLOWED[] = {
    {"collections", "OrderedDict", G_ODICT, 0},
    {"torch._utils", "_rebuild_tensor_v2", G_REBUILD, 0},
    {"torch", "FloatStorage", G_STORAGE, SX_TDT_F32},
    {"torch", "DoubleStorage", G_STORAGE, SX_TDT_F64},
    {"torch", "HalfStorage", G_STORAGE, SX_TDT_F16},
    {"torch", "BFloat16Storage", G_STORAGE, SX_TDT_BF16},
    {"torch", "LongStorage", G_STORAGE, SX_TDT_I64},
    {"torch", "IntStorage", G_STORAGE, SX_TDT_I32},
    {"torch", "ShortStorage", G_STORAGE, SX_TDT_I16},
    {"torch", "CharStorage", G_STORAGE, SX_TDT_I8},
    {"torch", "ByteStorage", G_STORAGE, SX_TDT_U8},
    {"torch", "BoolStorage", G_STORAGE, SX_TDT_BOOL},
    {"numpy.core.multiarray", "_reconstruct", G_RECONSTRUCT, 0},
    {"numpy._core.multiarray", "_reconstruct", G_RECONSTRUCT, 0}, /* numpy >= 2 */
    {"numpy", "ndarray", G_NDARRAY, 0},
    {"numpy", "dtype", G_DTYPE, 0},
    {"_codecs", "encode", G_CODECS, 0},
    {"pandas.core.indexes.base", "_new_Index", G_NEW_INDEX, 0},
    {"pandas.core.indexes.base", "Index", G_INDEX, 0},
};

struct sx_pkl {
    sx_pv **all; /* every value made, freed together */
    size_t n_all, cap_all;
    sx_pv *root;
};

typedef struct pm {
    sx_pkl *p;
    const uint8_t *b;
    size_t n, pos;
    const char *label;
    sx_status *st;
    sx_pv **stack;
    size_t sp, scap;
    size_t *marks;
    size_t nmarks, mcap;
    sx_pv **memo;
    size_t memo_cap;
} pm;

static int fail(pm *m, int code, const char *fmt, const char *detail)
{
    char what[640];
    snprintf(what, sizeof what, fmt, detail);
    return sx_status_set(m->st, code, "'%s': %s (pickle byte %zu)", m->label, what, m->pos);
}

static sx_pv *newv(pm *m, sx_pv_kind k)
{
    sx_pkl *p = m->p;
    if (p->n_all >= PKL_MAX_VALUES) return NULL;
    if (p->n_all == p->cap_all) {
        size_t c = p->cap_all ? 2 * p->cap_all : 256;
        sx_pv **a = sx_reallocarray(p->all, c, sizeof *a);
        if (!a) return NULL;
        p->all = a;
        p->cap_all = c;
    }
    sx_pv *v = sx_calloc(1, sizeof *v);
    if (!v) return NULL;
    v->kind = k;
    p->all[p->n_all++] = v;
    return v;
}

static int oom(pm *m) { return fail(m, SX_ENOMEM, "%s", "out of memory or too many values"); }

static int push(pm *m, sx_pv *v)
{
    if (!v) return oom(m);
    if (m->sp == m->scap) {
        if (m->scap >= PKL_MAX_STACK)
            return fail(m, SX_ELIMIT, "%s", "the pickle stack grows past its bound; refusing");
        size_t c = m->scap ? 2 * m->scap : 64;
        sx_pv **s = sx_reallocarray(m->stack, c, sizeof *s);
        if (!s) return oom(m);
        m->stack = s;
        m->scap = c;
    }
    m->stack[m->sp++] = v;
    return SX_OK;
}

static int add_item(pm *m, sx_pv *c, sx_pv *v)
{
    if (c->n == c->cap) {
        size_t k = c->cap ? 2 * c->cap : 4;
        sx_pv **a = sx_reallocarray(c->items, k, sizeof *a);
        if (!a) return oom(m);
        c->items = a;
        c->cap = k;
    }
    c->items[c->n++] = v;
    return SX_OK;
}

static int need(pm *m, size_t k)
{
    if (m->n - m->pos < k)
        return fail(m, SX_EFORMAT, "%s", "the pickle stream is truncated");
    return SX_OK;
}

static int underflow(pm *m) { return fail(m, SX_EFORMAT, "%s", "pickle stack underflow; corrupt"); }

/* Top of stack, or NULL (with st set) when the stack above the last mark is too short. */
static sx_pv *pop(pm *m)
{
    size_t floor = m->nmarks ? m->marks[m->nmarks - 1] : 0;
    if (m->sp <= floor) {
        underflow(m);
        return NULL;
    }
    return m->stack[--m->sp];
}

static uint64_t rd_le(const uint8_t *p, int k)
{
    uint64_t v = 0;
    for (int i = k - 1; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}

/* Strings: BINUNICODE and friends (len bytes follow). */
static int op_string(pm *m, int lenbytes, sx_pv_kind kind)
{
    int rc = need(m, (size_t)lenbytes);
    if (rc) return rc;
    uint64_t len = rd_le(m->b + m->pos, lenbytes);
    m->pos += (size_t)lenbytes;
    if (len > m->n - m->pos) return need(m, m->n); /* truncated */
    sx_pv *v = newv(m, kind);
    if (!v || !(v->s = sx_strndup((const char *)m->b + m->pos, (size_t)len))) return oom(m);
    v->len = (size_t)len;
    m->pos += (size_t)len;
    return push(m, v);
}

static int op_int(pm *m, int k, int is_signed)
{
    int rc = need(m, (size_t)k);
    if (rc) return rc;
    uint64_t u = rd_le(m->b + m->pos, k);
    m->pos += (size_t)k;
    sx_pv *v = newv(m, SX_PV_INT);
    if (!v) return oom(m);
    if (is_signed && k < 8 && (u >> (8 * k - 1)) & 1) u |= ~0ULL << (8 * k);
    v->i = (int64_t)u;
    return push(m, v);
}

static int op_long1(pm *m)
{
    int rc = need(m, 1);
    if (rc) return rc;
    int k = m->b[m->pos++];
    if (k > 8) return fail(m, SX_EUNSUPPORTED, "%s", "an integer wider than 64 bits");
    if (k == 0) {
        sx_pv *v = newv(m, SX_PV_INT);
        return v ? push(m, v) : oom(m);
    }
    return op_int(m, k, 1);
}

static int op_float(pm *m)
{
    int rc = need(m, 8);
    if (rc) return rc;
    uint64_t u = 0;
    for (int i = 0; i < 8; i++) u = (u << 8) | m->b[m->pos + (size_t)i]; /* big-endian */
    m->pos += 8;
    sx_pv *v = newv(m, SX_PV_FLOAT);
    if (!v) return oom(m);
    memcpy(&v->f, &u, sizeof v->f);
    return push(m, v);
}

static int op_memo(pm *m, int k, int put)
{
    int rc = need(m, (size_t)k);
    if (rc) return rc;
    uint64_t id = rd_le(m->b + m->pos, k);
    m->pos += (size_t)k;
    /* picklers number memo slots from 0, one per PUT of 2+ bytes: an id past the stream's
     * length is hostile (it would only make us allocate) */
    if (id >= PKL_MAX_MEMO || id > m->n)
        return fail(m, SX_ELIMIT, "%s", "a memo id past its bound; refusing");
    if (!put) {
        if (id >= m->memo_cap || !m->memo[id])
            return fail(m, SX_EFORMAT, "%s", "the pickle reads a memo slot it never wrote");
        return push(m, m->memo[id]);
    }
    if (m->sp == 0) return underflow(m);
    if (id >= m->memo_cap) {
        size_t c = m->memo_cap ? m->memo_cap : 64;
        while (c <= id) c *= 2;
        sx_pv **a = sx_reallocarray(m->memo, c, sizeof *a);
        if (!a) return oom(m);
        memset(a + m->memo_cap, 0, (c - m->memo_cap) * sizeof *a);
        m->memo = a;
        m->memo_cap = c;
    }
    m->memo[id] = m->stack[m->sp - 1];
    return SX_OK;
}

static int op_global(pm *m)
{
    const uint8_t *s = m->b + m->pos, *end = m->b + m->n;
    const uint8_t *nl1 = memchr(s, '\n', (size_t)(end - s));
    const uint8_t *nl2 = nl1 ? memchr(nl1 + 1, '\n', (size_t)(end - nl1 - 1)) : NULL;
    if (!nl2 || nl1 - s > 200 || nl2 - nl1 > 200) return need(m, m->n);
    char full[420];
    snprintf(full, sizeof full, "%.*s.%.*s", (int)(nl1 - s), s, (int)(nl2 - nl1 - 1), nl1 + 1);
    m->pos = (size_t)(nl2 + 1 - m->b);
    for (size_t i = 0; i < sizeof ALLOWED / sizeof ALLOWED[0]; i++) {
        size_t ml = strlen(ALLOWED[i].mod);
        if ((size_t)(nl1 - s) == ml && memcmp(s, ALLOWED[i].mod, ml) == 0 &&
            strcmp(full + ml + 1, ALLOWED[i].name) == 0) {
            sx_pv *v = newv(m, SX_PV_GLOBAL);
            if (!v || !(v->s = sx_strdup(full))) return oom(m);
            v->i = ALLOWED[i].id;
            v->dt = ALLOWED[i].dt;
            return push(m, v);
        }
    }
    for (char *c = full; *c; c++)
        if ((unsigned char)*c < 32 || (unsigned char)*c > 126) *c = '?';
    return fail(m, SX_EUNSUPPORTED, "the checkpoint asks for global '%s', which a model file "
                "never needs; refusing it (nothing was executed)", full);
}

/* MARK ... TUPLE / LIST / DICT, and the MARK-based APPENDS / SETITEMS. Returns the slice. */
static int take_mark(pm *m, size_t *from)
{
    if (!m->nmarks) return fail(m, SX_EFORMAT, "%s", "a pickle opcode needs a MARK; corrupt");
    *from = m->marks[--m->nmarks];
    return SX_OK;
}

static int op_collect(pm *m, sx_pv_kind kind, size_t from)
{
    sx_pv *v = newv(m, kind);
    if (!v) return oom(m);
    size_t k = m->sp - from;
    if (k) {
        v->items = sx_mallocarray(k, sizeof *v->items);
        if (!v->items) return oom(m);
        memcpy(v->items, m->stack + from, k * sizeof *v->items);
    }
    v->n = v->cap = k;
    if (kind == SX_PV_DICT && k % 2) return fail(m, SX_EFORMAT, "%s", "odd dict items");
    m->sp = from;
    return push(m, v);
}

static int op_tuple_n(pm *m, size_t k)
{
    size_t floor = m->nmarks ? m->marks[m->nmarks - 1] : 0;
    if (m->sp < floor + k) return underflow(m);
    return op_collect(m, SX_PV_TUPLE, m->sp - k);
}

/* APPEND(S) / SETITEM(S): the items above `from` go into the container below them. */
static int op_extend(pm *m, size_t from, sx_pv_kind want)
{
    size_t floor = m->nmarks ? m->marks[m->nmarks - 1] : 0;
    if (from < floor + 1 || from > m->sp) return underflow(m);
    sx_pv *c = m->stack[from - 1];
    if (c->kind != want)
        return fail(m, SX_EFORMAT, "%s", want == SX_PV_LIST ? "APPENDS onto a non-list"
                                                           : "SETITEMS onto a non-dict");
    if (want == SX_PV_DICT && (m->sp - from) % 2)
        return fail(m, SX_EFORMAT, "%s", "odd dict items");
    for (size_t i = from; i < m->sp; i++)
        if (add_item(m, c, m->stack[i]) != SX_OK) return m->st->code;
    m->sp = from;
    return SX_OK;
}

static int pkl_reduce(pm *m, sx_pv *fn, sx_pv *args, sx_pv **out);
static int pkl_build(pm *m, sx_pv *obj, sx_pv *state);
static int pkl_persid(pm *m, sx_pv *pid, sx_pv **out);

static int op_call(pm *m, int op)
{
    sx_pv *b = pop(m), *a = b ? pop(m) : NULL, *r = NULL;
    if (!a) return m->st->code;
    if (op == 'R') {
        if (pkl_reduce(m, a, b, &r) != SX_OK) return m->st->code;
        return push(m, r);
    }
    if (pkl_build(m, a, b) != SX_OK) return m->st->code;
    return push(m, a);
}

/* Opcodes without arguments that only touch the stack. Returns 1 when handled. */
static int op_simple(pm *m, int op, int *rc)
{
    sx_pv *v;
    size_t from = 0;
    switch (op) {
    case '(':
        if (m->nmarks == m->mcap) {
            if (m->mcap >= PKL_MAX_MARKS) {
                *rc = fail(m, SX_ELIMIT, "%s", "too many nested MARKs; refusing");
                return 1;
            }
            size_t c = m->mcap ? 2 * m->mcap : 16;
            size_t *a = sx_reallocarray(m->marks, c, sizeof *a);
            if (!a) { *rc = oom(m); return 1; }
            m->marks = a;
            m->mcap = c;
        }
        m->marks[m->nmarks++] = m->sp;
        *rc = SX_OK;
        return 1;
    case 'N': case 0x88: case 0x89: case '}': case ']': case ')':
        v = newv(m, op == 'N' ? SX_PV_NONE : op == '}' ? SX_PV_DICT : op == ']' ? SX_PV_LIST
                    : op == ')' ? SX_PV_TUPLE : SX_PV_BOOL);
        if (v) v->i = op == 0x88;
        *rc = push(m, v);
        return 1;
    case 't': case 'l': case 'd':
        if ((*rc = take_mark(m, &from)) == SX_OK)
            *rc = op_collect(m, op == 't' ? SX_PV_TUPLE : op == 'l' ? SX_PV_LIST : SX_PV_DICT,
                             from);
        return 1;
    case 0x85: case 0x86: case 0x87:
        *rc = op_tuple_n(m, (size_t)(op - 0x84));
        return 1;
    case 'a': case 's':
        *rc = op_extend(m, m->sp - (op == 'a' ? 1 : 2), op == 'a' ? SX_PV_LIST : SX_PV_DICT);
        return 1;
    case 'e': case 'u':
        if ((*rc = take_mark(m, &from)) == SX_OK)
            *rc = op_extend(m, from, op == 'e' ? SX_PV_LIST : SX_PV_DICT);
        return 1;
    case '0':
        *rc = pop(m) ? SX_OK : m->st->code;
        return 1;
    case '1':
        if ((*rc = take_mark(m, &from)) == SX_OK) m->sp = from;
        return 1;
    case '2':
        *rc = m->sp ? push(m, m->stack[m->sp - 1]) : underflow(m);
        return 1;
    case 'R': case 'b':
        *rc = op_call(m, op);
        return 1;
    }
    return 0;
}

/* One opcode with arguments. */
static int step(pm *m, int op)
{
    int rc;
    if (op_simple(m, op, &rc)) return rc;
    switch (op) {
    case 0x80: return need(m, 1) ? m->st->code : (m->pos++, SX_OK); /* PROTO */
    case 0x95: if ((rc = need(m, 8))) return rc; m->pos += 8; return SX_OK; /* FRAME */
    case 'X': return op_string(m, 4, SX_PV_STR);
    case 0x8c: return op_string(m, 1, SX_PV_STR);
    case 'T': return op_string(m, 4, SX_PV_STR);
    case 'U': return op_string(m, 1, SX_PV_STR);
    case 'B': return op_string(m, 4, SX_PV_BYTES);
    case 'C': return op_string(m, 1, SX_PV_BYTES);
    case 'J': return op_int(m, 4, 1);
    case 'K': return op_int(m, 1, 0);
    case 'M': return op_int(m, 2, 0);
    case 0x8a: return op_long1(m);
    case 'G': return op_float(m);
    case 'q': return op_memo(m, 1, 1);
    case 'r': return op_memo(m, 4, 1);
    case 'h': return op_memo(m, 1, 0);
    case 'j': return op_memo(m, 4, 0);
    case 'c': return op_global(m);
    case 'Q': {
        sx_pv *pid = pop(m), *r = NULL;
        if (!pid || pkl_persid(m, pid, &r) != SX_OK) return m->st->code;
        return push(m, r);
    }
    }
    char what[64];
    snprintf(what, sizeof what, "0x%02x", op);
    return fail(m, SX_EUNSUPPORTED, "pickle opcode %s is not one a checkpoint uses; refusing "
                "it (nothing was executed)", what);
}

sx_pkl *sx_pkl_parse(const uint8_t *buf, size_t n, const char *label, sx_status *st)
{
    pm m = {.b = buf, .n = n, .label = label, .st = st};
    m.p = sx_calloc(1, sizeof *m.p);
    if (!m.p) {
        sx_status_set(st, SX_ENOMEM, "out of memory");
        return NULL;
    }
    int rc = SX_OK, stopped = 0;
    while (rc == SX_OK && !stopped) {
        if ((rc = need(&m, 1)) != SX_OK) break;
        int op = m.b[m.pos++];
        if (op == '.') {
            stopped = 1;
            if (m.sp != 1 || m.nmarks)
                rc = fail(&m, SX_EFORMAT, "%s", "the pickle stops with a malformed stack");
            else
                m.p->root = m.stack[0];
        } else {
            rc = step(&m, op);
        }
    }
    sx_free(m.stack);
    sx_free(m.marks);
    sx_free(m.memo);
    if (rc != SX_OK) {
        sx_pkl_free(m.p);
        return NULL;
    }
    return m.p;
}

const sx_pv *sx_pkl_root(const sx_pkl *p) { return p->root; }

void sx_pkl_free(sx_pkl *p)
{
    if (!p) return;
    for (size_t i = 0; i < p->n_all; i++) {
        sx_free(p->all[i]->s);
        sx_free(p->all[i]->items);
        sx_free(p->all[i]);
    }
    sx_free(p->all);
    sx_free(p);
}

const sx_pv *sx_pv_dict_get(const sx_pv *d, const char *key)
{
    if (!d || d->kind != SX_PV_DICT) return NULL;
    for (size_t i = d->n; i >= 2; i -= 2) /* the last one wins, as in Python */
        if (d->items[i - 2]->kind == SX_PV_STR && strcmp(d->items[i - 2]->s, key) == 0)
            return d->items[i - 1];
    return NULL;
}

/* ---- the allowed calls, interpreted ---- */

static int bad_call(pm *m, const sx_pv *fn)
{
    return fail(m, SX_EUNSUPPORTED, "the checkpoint calls '%s' with arguments a model file "
                "never uses; refusing (nothing was executed)",
                fn->kind == SX_PV_GLOBAL ? fn->s : "a non-callable value");
}

static int is_kind(const sx_pv *v, sx_pv_kind k) { return v && v->kind == k; }

/* A tuple of non-negative ints into dims[]; returns its length or -1. */
static int int_tuple(const sx_pv *t, int64_t *dims)
{
    if (!is_kind(t, SX_PV_TUPLE) || t->n > SX_PV_MAXDIM) return -1;
    for (size_t i = 0; i < t->n; i++) {
        if (!is_kind(t->items[i], SX_PV_INT) || t->items[i]->i < 0) return -1;
        dims[i] = t->items[i]->i;
    }
    return (int)t->n;
}

/* Element count of a shape, -1 on overflow past 2^62. */
static int64_t shape_numel(const int64_t *shape, int ndim)
{
    int64_t k = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] != 0 && k > ((int64_t)1 << 62) / shape[i]) return -1;
        k *= shape[i];
    }
    return k;
}

/* _rebuild_tensor_v2(storage, offset, size, stride, requires_grad, hooks[, metadata]):
 * checked here so a tensor can never address past its storage. */
static int call_rebuild(pm *m, const sx_pv *a, sx_pv **out)
{
    if (a->n < 6 || a->n > 7 || !is_kind(a->items[0], SX_PV_STORAGE) ||
        !is_kind(a->items[1], SX_PV_INT) || a->items[1]->i < 0)
        return fail(m, SX_EFORMAT, "%s", "a tensor record with malformed arguments");
    sx_pv *t = newv(m, SX_PV_TENSOR);
    if (!t || add_item(m, t, a->items[0]) != SX_OK) return oom(m);
    t->offset = a->items[1]->i;
    t->ndim = int_tuple(a->items[2], t->shape);
    if (t->ndim < 0 || int_tuple(a->items[3], t->stride) != t->ndim)
        return fail(m, SX_EFORMAT, "%s", "a tensor with a malformed or over-8-d shape/stride");
    int64_t numel = shape_numel(t->shape, t->ndim), extent = t->offset;
    if (numel < 0)
        return fail(m, SX_ELIMIT, "%s", "a tensor declares a huge shape (element count "
                    "overflows); refusing");
    for (int d = 0; numel > 0 && d < t->ndim; d++) {
        int64_t s = t->shape[d] - 1;
        /* a size-1 dim's stride is never used to address, but walking past it adds it once */
        if (t->stride[d] > ((int64_t)1 << 60) ||
            (t->stride[d] != 0 && s > (INT64_MAX / 4 - extent) / t->stride[d]))
            return fail(m, SX_ELIMIT, "%s", "a tensor's strides overflow; refusing");
        extent += s * t->stride[d];
    }
    int64_t have = a->items[0]->i;
    if ((numel > 0 && extent >= have) || t->offset > have) {
        char what[160];
        snprintf(what, sizeof what, "%lld elements but its storage holds %lld",
                 (long long)(numel > 0 ? extent + 1 : t->offset), (long long)have);
        return fail(m, SX_EFORMAT, "a tensor needs storage up to %s; the file is corrupt or "
                    "hostile", what);
    }
    t->dt = a->items[0]->dt;
    *out = t;
    return SX_OK;
}

/* ('storage', torch.<T>Storage, key, location, numel) -> a storage reference. */
static int pkl_persid(pm *m, sx_pv *pid, sx_pv **out)
{
    if (!is_kind(pid, SX_PV_TUPLE) || pid->n != 5 || !is_kind(pid->items[0], SX_PV_STR) ||
        strcmp(pid->items[0]->s, "storage") != 0 || !is_kind(pid->items[1], SX_PV_GLOBAL) ||
        pid->items[1]->i != G_STORAGE || !is_kind(pid->items[2], SX_PV_STR) ||
        !is_kind(pid->items[4], SX_PV_INT) || pid->items[4]->i < 0)
        return fail(m, SX_EUNSUPPORTED, "%s", "a persistent reference that is not a torch "
                    "storage; refusing");
    const char *key = pid->items[2]->s;
    if (!*key || strspn(key, "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_")
                     != strlen(key) || strlen(key) > 64)
        return fail(m, SX_EFORMAT, "%s", "a storage key with odd characters; refusing");
    int dt = pid->items[1]->dt;
    if (pid->items[4]->i > INT64_MAX / 8)
        return fail(m, SX_ELIMIT, "%s", "a storage declares a huge size; refusing");
    sx_pv *s = newv(m, SX_PV_STORAGE);
    if (!s || !(s->s = sx_strdup(key))) return oom(m);
    s->i = pid->items[4]->i;
    s->dt = dt;
    *out = s;
    return SX_OK;
}

/* _codecs.encode(str, 'latin1'): protocol 2's way of pickling bytes. */
static int call_codecs(pm *m, const sx_pv *a, sx_pv **out)
{
    if (a->n != 2 || !is_kind(a->items[0], SX_PV_STR) || !is_kind(a->items[1], SX_PV_STR) ||
        (strcmp(a->items[1]->s, "latin1") != 0 && strcmp(a->items[1]->s, "latin-1") != 0))
        return fail(m, SX_EUNSUPPORTED, "%s", "_codecs.encode with an unexpected codec");
    const uint8_t *u = (const uint8_t *)a->items[0]->s;
    size_t n = a->items[0]->len, k = 0;
    sx_pv *b = newv(m, SX_PV_BYTES);
    if (!b || !(b->s = sx_malloc(n + 1))) return oom(m);
    for (size_t i = 0; i < n; k++) {
        if (u[i] < 0x80) {
            b->s[k] = (char)u[i++];
        } else if ((u[i] & 0xE0) == 0xC0 && i + 1 < n && u[i] <= 0xC3) {
            b->s[k] = (char)(((u[i] & 0x03) << 6) | (u[i + 1] & 0x3F));
            i += 2;
        } else {
            return fail(m, SX_EFORMAT, "%s", "a latin1 byte string with a wide character");
        }
    }
    b->len = k;
    b->s[k] = 0;
    *out = b;
    return SX_OK;
}

static int pkl_reduce(pm *m, sx_pv *fn, sx_pv *args, sx_pv **out)
{
    if (!is_kind(fn, SX_PV_GLOBAL) || !is_kind(args, SX_PV_TUPLE)) return bad_call(m, fn);
    sx_pv **a = args->items;
    switch (fn->i) {
    case G_ODICT:
        if (args->n != 0) return bad_call(m, fn);
        return (*out = newv(m, SX_PV_DICT)) ? SX_OK : oom(m);
    case G_REBUILD:
        return call_rebuild(m, args, out);
    case G_CODECS:
        return call_codecs(m, args, out);
    case G_RECONSTRUCT: /* (ndarray, (0,), b'b'): an empty array that BUILD fills */
        if (args->n != 3 || !is_kind(a[0], SX_PV_GLOBAL) || a[0]->i != G_NDARRAY)
            return bad_call(m, fn);
        return (*out = newv(m, SX_PV_NDARRAY)) ? SX_OK : oom(m);
    case G_DTYPE: /* dtype('O8', False, True) */
        if (args->n != 3 || !is_kind(a[0], SX_PV_STR) || a[0]->len > 16) return bad_call(m, fn);
        if (!(*out = newv(m, SX_PV_DTYPE)) || !((*out)->s = sx_strdup(a[0]->s))) return oom(m);
        return SX_OK;
    case G_NEW_INDEX: { /* _new_Index(Index, {'data': ndarray, 'name': ...}) */
        const sx_pv *data = args->n == 2 ? sx_pv_dict_get(a[1], "data") : NULL;
        if (!is_kind(a[0], SX_PV_GLOBAL) || a[0]->i != G_INDEX || !is_kind(data, SX_PV_NDARRAY))
            return bad_call(m, fn);
        if (!(*out = newv(m, SX_PV_INDEX)) || add_item(m, *out, (sx_pv *)data)) return oom(m);
        return SX_OK;
    }
    }
    return bad_call(m, fn);
}

/* BUILD sets an object's state. Only an ndarray's state matters (its shape, dtype and
 * contents); the state of an OrderedDict (_metadata) or a dtype carries nothing we use. */
static int pkl_build(pm *m, sx_pv *obj, sx_pv *state)
{
    if (obj->kind != SX_PV_NDARRAY) return SX_OK;
    if (!is_kind(state, SX_PV_TUPLE) || state->n != 5 || !is_kind(state->items[2], SX_PV_DTYPE))
        return fail(m, SX_EFORMAT, "%s", "a numpy array with a malformed state");
    int nd = int_tuple(state->items[1], obj->shape);
    int64_t numel = nd < 0 ? -1 : shape_numel(obj->shape, nd);
    if (numel < 0) return fail(m, SX_EFORMAT, "%s", "a numpy array with a malformed shape");
    const sx_pv *dt = state->items[2], *data = state->items[4];
    obj->ndim = nd;
    obj->dt_obj = dt->s[0] == 'O';
    if (obj->dt_obj ? !is_kind(data, SX_PV_LIST) || (int64_t)data->n != numel
                    : !is_kind(data, SX_PV_BYTES))
        return fail(m, SX_EFORMAT, "%s", "a numpy array whose contents do not match its shape");
    obj->n = 0;
    if (add_item(m, obj, (sx_pv *)dt) || add_item(m, obj, (sx_pv *)data)) return m->st->code;
    return SX_OK;
}

size_t sx_tdt_size(int dt)
{
    static const size_t sz[] = {4, 8, 2, 2, 8, 4, 2, 1, 1, 1};
    return dt >= 0 && dt <= SX_TDT_BOOL ? sz[dt] : 0;
}

const char *sx_tdt_name(int dt)
{
    static const char *nm[] = {"float32", "float64", "float16", "bfloat16", "int64",
                               "int32", "int16", "int8", "uint8", "bool"};
    return dt >= 0 && dt <= SX_TDT_BOOL ? nm[dt] : "?";
}
