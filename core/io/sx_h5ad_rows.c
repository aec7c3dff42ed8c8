/* sx_h5ad_rows — an h5ad's CSR X in row slabs (see the header for why). The metadata is read
 * with the whole-file reader's helpers (sx_h5x.h), so limits, layouts and messages are the
 * same; only X's entries are read differently: a slab at a time into reused buffers. */
#include "sx_h5ad_rows.h"

#include <math.h>
#include <pthread.h>
#include <string.h>

#include "sx_alloc.h"
#include "sx_h5x.h"
#include "sx_io_internal.h"
#include "sx_log.h"

/* One slab's buffers (grown, never shrunk: slabs are alike) and, with read-ahead, the
 * outcome of its read. */
typedef struct slab_buf {
    int32_t *ind;         /* cap entries each */
    float *val;
    int64_t *ptr;         /* slab offsets, cap_rows + 1 */
    int64_t cap, cap_rows;
    sx_csr v;             /* the slab read into it */
    int64_t row0;
    int rc;
    sx_status st;
} slab_buf;

struct sx_h5ad_rows {
    h5x_ctx c;
    h5x_mat m;
    sx_uns *uns;          /* until taken */
    sx_frame *obs, *var;  /* obs until taken */
    int64_t next;         /* first row of the next slab read */
    int check_vals;
    h5x_vstats vs;
    slab_buf b[2];        /* b[1] only with read-ahead */
    /* read-ahead (sx_h5ad_rows_read_ahead): the thread fills b[0], b[1], b[0]... in order
     * and the caller takes them in that order; full[i] says b[i] holds a slab not yet
     * released; held = the buffer the caller's current view points into (-1: none) */
    int ahead, stop, done, warned;
    pthread_t th;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int full[2], take, held;
    int64_t ahead_rows, ahead_entries;
};

/* X as a CSR group (modern, 0.7 or h5sparse), the matrix a default read would use. */
static int x_is_csr(h5x_ctx *c, const sx_read_opts *opts)
{
    const char *ul = opts && opts->use_layer ? opts->use_layer : NULL;
    if (ul && *ul && strcmp(ul, "X") != 0) return 0;
    if (h5x_objtype(c->f, "X") != H5O_TYPE_GROUP) return 0;
    char enc[64], fmt[16];
    h5x_attr_str(c->f, "X", "encoding-type", enc, sizeof enc);
    h5x_attr_str(c->f, "X", "h5sparse_format", fmt, sizeof fmt);
    return strcmp(enc, "csr_matrix") == 0 || (!enc[0] && strcmp(fmt, "csr") == 0);
}

/* uns, obs, var and X's structure, in sx_h5ad_read's order and with its checks. */
static int read_meta(sx_h5ad_rows *r, sx_status *st)
{
    h5x_ctx *c = &r->c;
    if (!(r->uns = h5x_read_uns(c, "uns", st))) return st->code;
    if (!(r->obs = h5x_read_frame(c, "obs", "obs", r->uns, st))) return st->code;
    if (!(r->var = h5x_read_frame(c, "var", "var", r->uns, st))) return st->code;
    if (h5x_mat_open(c, c->f, "X", "X", &r->m, st) != SX_OK) return st->code;
    if (r->m.n_rows != r->obs->n_rows || r->m.n_cols != r->var->n_rows)
        return sx_status_set(st, SX_EFORMAT, "%s: element 'X' is %lld x %lld (shape attribute) "
                             "but obs has %lld rows and var %lld; the file is inconsistent",
                             c->path, (long long)r->m.n_rows, (long long)r->m.n_cols,
                             (long long)r->obs->n_rows, (long long)r->var->n_rows);
    return SX_OK;
}

int sx_h5ad_rows_open(const char *path, const sx_read_opts *opts, const sx_progress *prog,
                      sx_h5ad_rows **out, sx_status *st)
{
    *out = NULL;
    sx_format fmt;
    if (sx_format_sniff(path, &fmt, NULL, st) != SX_OK) return st->code;
    if (fmt != SX_FMT_H5AD) return SX_OK;
    sx_h5ad_rows *r = sx_calloc(1, sizeof *r);
    if (!r) return sx_status_set(st, SX_ENOMEM, "out of memory");
    r->m.data = r->m.indices = -1;
    r->vs.first_bad = -1;
    r->check_vals = !(opts && opts->skip_values_check);
    int rc = h5x_open(&r->c, path, prog, st);
    if (rc == SX_OK) {
        h5x_set_limits(&r->c, opts ? opts->limits : NULL);
        r->c.threads = opts ? opts->threads : 1;
        if (!x_is_csr(&r->c, opts)) {
            sx_h5ad_rows_close(r);
            return SX_OK;
        }
        rc = read_meta(r, st);
    }
    if (rc != SX_OK) {
        sx_h5ad_rows_close(r);
        return rc;
    }
    *out = r;
    return SX_OK;
}

void sx_h5ad_rows_close(sx_h5ad_rows *r)
{
    if (!r) return;
    if (r->ahead) { /* the thread first: it may be inside HDF5 */
        pthread_mutex_lock(&r->mu);
        r->stop = 1;
        pthread_cond_broadcast(&r->cv);
        pthread_mutex_unlock(&r->mu);
        pthread_join(r->th, NULL);
        pthread_mutex_destroy(&r->mu);
        pthread_cond_destroy(&r->cv);
    }
    h5x_mat_close(&r->m);
    h5x_close(&r->c);
    sx_uns_free(r->uns);
    sx_frame_free(r->obs);
    sx_frame_free(r->var);
    for (int i = 0; i < 2; i++) {
        sx_free(r->b[i].ind);
        sx_free(r->b[i].val);
        sx_free(r->b[i].ptr);
    }
    sx_free(r);
}

int64_t sx_h5ad_rows_n_obs(const sx_h5ad_rows *r) { return r->m.n_rows; }
int64_t sx_h5ad_rows_n_vars(const sx_h5ad_rows *r) { return r->m.n_cols; }
const sx_frame *sx_h5ad_rows_var(const sx_h5ad_rows *r) { return r->var; }

sx_frame *sx_h5ad_rows_take_obs(sx_h5ad_rows *r)
{
    sx_frame *f = r->obs;
    r->obs = NULL;
    return f;
}

sx_uns *sx_h5ad_rows_take_uns(sx_h5ad_rows *r)
{
    sx_uns *u = r->uns;
    r->uns = NULL;
    return u;
}

/* Buffers for rows rows and n entries. They are sized for the largest slab the limits allow
 * (want) at once: a buffer that grew by a little at every slab was new memory each time,
 * and faulting it in cost as much as the read. */
static int reserve(const sx_h5ad_rows *r, slab_buf *b, int64_t rows, int64_t n, int64_t want,
                   sx_status *st)
{
    if (n > b->cap) {
        if (want > r->m.nnz) want = r->m.nnz;
        if (want < n) want = n;
        sx_free(b->ind);
        sx_free(b->val);
        b->ind = sx_mallocarray((size_t)want, sizeof *b->ind);
        b->val = sx_mallocarray((size_t)want, sizeof *b->val);
        b->cap = b->ind && b->val ? want : 0;
        sx_io_advise_huge(b->ind, (size_t)b->cap * sizeof *b->ind); /* 1 fault per 2 MiB */
        sx_io_advise_huge(b->val, (size_t)b->cap * sizeof *b->val);
    }
    if (!b->ptr || rows > b->cap_rows) {
        sx_free(b->ptr);
        b->ptr = sx_mallocarray((size_t)rows + 1, sizeof *b->ptr);
        b->cap_rows = b->ptr ? rows : 0;
    }
    if ((n > 0 && !b->cap) || !b->ptr)
        return sx_status_set(st, SX_ENOMEM, "%s: out of memory for a slab of %lld rows, %lld "
                             "entries", r->c.path, (long long)rows, (long long)n);
    return SX_OK;
}

/* NaN/Inf in X is an error, as in sx_h5ad_read (the counts are those of the rows read). */
static int slab_values(sx_h5ad_rows *r, const float *v, int64_t n, sx_status *st)
{
    h5x_vstats *s = &r->vs;
    h5x_vstats_count(s, v, n);
    if (!r->check_vals || s->n_nan + s->n_inf == 0) return SX_OK;
    return sx_status_set(st, SX_EDATA, "%s: element 'X' holds NaN or infinite values (%lld NaN "
                         "and %lld infinite in the first %lld entries; the first at stored entry "
                         "%lld); replace them (e.g. with 0) before loading", r->c.path,
                         (long long)s->n_nan, (long long)s->n_inf, (long long)s->n,
                         (long long)s->first_bad);
}

/* Raw counts are expected: a few negative or fractional values are worth a warning, as the
 * whole-file reader gives. */
static void counts_warning(const sx_h5ad_rows *r)
{
    const h5x_vstats *s = &r->vs;
    int64_t bad = s->n_neg > s->n_nonint ? s->n_neg : s->n_nonint;
    if (s->n == 0 || bad == 0 || (double)bad > 0.01 * (double)s->n) return;
    SX_WARN("%s: X looks like counts but %lld of its %lld stored values are negative and %lld "
            "not integers; check that this is the raw count matrix", r->c.path,
            (long long)s->n_neg, (long long)s->n, (long long)s->n_nonint);
}

/* Rows [r0, r1) to read: at most max_rows and max_entries entries, at least one row. */
static int64_t slab_end(const sx_h5ad_rows *r, int64_t r0, int64_t max_rows, int64_t max_entries)
{
    int64_t n = r->m.n_rows, r1 = r0 + max_rows < n ? r0 + max_rows : n;
    const int64_t *p = r->m.ptr;
    if (p[r1] - p[r0] <= max_entries) return r1;
    int64_t lo = r0 + 1, hi = r1; /* the last end within max_entries, by bisection */
    while (lo < hi) {
        int64_t mid = lo + (hi - lo + 1) / 2;
        if (p[mid] - p[r0] <= max_entries) lo = mid;
        else hi = mid - 1;
    }
    return lo;
}

/* The next slab into b (b->v; n_rows 0 at the end). All the HDF5 calls of the slab reads
 * are here: with read-ahead only its thread runs this. */
static int read_slab(sx_h5ad_rows *r, slab_buf *b, int64_t max_rows, int64_t max_entries,
                     sx_status *st)
{
    int64_t r0 = r->next, n = r->m.n_rows;
    memset(&b->v, 0, sizeof b->v);
    b->v.n_cols = r->m.n_cols;
    b->row0 = r0;
    if (r0 >= n) {
        if (reserve(r, b, 0, 0, 0, st) != SX_OK) return st->code;
        b->ptr[0] = 0;
        b->v.indptr = b->ptr;
        return SX_OK;
    }
    if (sx_progress_cancelled(r->c.prog))
        return sx_status_set(st, SX_ECANCELED, "reading %s canceled", r->c.path);
    max_entries = max_entries > 0 ? max_entries : (8LL << 20);
    int64_t r1 = slab_end(r, r0, max_rows > 0 ? max_rows : 65536, max_entries);
    const int64_t *p = r->m.ptr;
    int64_t nz = p[r1] - p[r0];
    if (reserve(r, b, r1 - r0, nz, max_entries, st) != SX_OK) return st->code;
    r->m.unsorted = 0;
    if (h5x_mat_csr_rows(&r->c, &r->m, r0, r1, b->ind, b->val, st) != SX_OK) return st->code;
    if (slab_values(r, b->val, nz, st) != SX_OK) return st->code;
    for (int64_t i = r0; i <= r1; i++) b->ptr[i - r0] = p[i] - p[r0];
    b->v = (sx_csr){r1 - r0, r->m.n_cols, b->ptr, b->ind, b->val};
    /* rows the whole-file reader would sort and merge are sorted and merged here, row by
     * row as it does, so the values are the same */
    if (r->m.unsorted && sx_csr_canonicalize(&b->v, st) != SX_OK) return st->code;
    r->next = r1;
    return SX_OK;
}

/* The read-ahead thread: fills the free buffer with the next slab, until the end, an
 * error or close. */
static void *ahead_run(void *arg)
{
    sx_h5ad_rows *r = arg;
    int w = 0;
    pthread_mutex_lock(&r->mu);
    for (;;) {
        while (!r->stop && r->full[w]) pthread_cond_wait(&r->cv, &r->mu);
        if (r->stop) break;
        pthread_mutex_unlock(&r->mu);
        slab_buf *b = &r->b[w];
        sx_status_clear(&b->st);
        b->rc = read_slab(r, b, r->ahead_rows, r->ahead_entries, &b->st);
        int last = b->rc != SX_OK || b->v.n_rows == 0;
        pthread_mutex_lock(&r->mu);
        r->full[w] = 1;
        pthread_cond_broadcast(&r->cv);
        if (last) break;
        w ^= 1;
    }
    pthread_mutex_unlock(&r->mu);
    return NULL;
}

int sx_h5ad_rows_read_ahead(sx_h5ad_rows *r, int64_t max_rows, int64_t max_entries,
                            sx_status *st)
{
    if (r->ahead || r->done) return SX_OK;
    r->ahead_rows = max_rows;
    r->ahead_entries = max_entries;
    r->held = -1;
    if (pthread_mutex_init(&r->mu, NULL) != 0) return SX_OK;
    if (pthread_cond_init(&r->cv, NULL) != 0) {
        pthread_mutex_destroy(&r->mu);
        return SX_OK;
    }
    if (pthread_create(&r->th, NULL, ahead_run, r) != 0) { /* read on the caller's thread */
        pthread_cond_destroy(&r->cv);
        pthread_mutex_destroy(&r->mu);
        return SX_OK;
    }
    r->ahead = 1;
    return SX_OK;
}

/* With read-ahead: release the caller's buffer, wait for the next one in order. The last
 * (end or error) stays held, so later calls give it again. */
static slab_buf *take_ahead(sx_h5ad_rows *r)
{
    pthread_mutex_lock(&r->mu);
    if (r->done) {
        pthread_mutex_unlock(&r->mu);
        return &r->b[r->held];
    }
    if (r->held >= 0) {
        r->full[r->held] = 0;
        pthread_cond_broadcast(&r->cv);
    }
    int i = r->take;
    while (!r->full[i]) pthread_cond_wait(&r->cv, &r->mu);
    r->take ^= 1;
    r->held = i;
    slab_buf *b = &r->b[i];
    r->done = b->rc != SX_OK || b->v.n_rows == 0;
    pthread_mutex_unlock(&r->mu);
    return b;
}

int sx_h5ad_rows_next(sx_h5ad_rows *r, int64_t max_rows, int64_t max_entries, sx_csr *slab,
                      int64_t *row0, sx_status *st)
{
    slab_buf *b;
    if (r->ahead) {
        b = take_ahead(r);
        if (b->rc != SX_OK) {
            *st = b->st;
            return b->rc;
        }
    } else {
        b = &r->b[0];
        if (read_slab(r, b, max_rows, max_entries, st) != SX_OK) return st->code;
        r->done = b->v.n_rows == 0;
    }
    if (b->v.n_rows == 0 && !r->warned) {
        counts_warning(r);
        r->warned = 1;
    }
    *slab = b->v;
    if (row0) *row0 = b->row0;
    return SX_OK;
}
