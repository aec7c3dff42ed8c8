/* The PyTorch checkpoint reader against SCALEX's own output folder (shared/golden/scalex_outdir):
 * every tensor's key, dtype, shape, stride and storage (keys.txt, written by torch.load), its
 * values bit-exact against the raw storage bytes at the offsets facts.json lists (the fixture
 * checked those bytes against torch.load's tensors; no torch here), the gene list against
 * config.json, and the encoder maths against SCALEX's eval- and train-mode latents. Then hostile
 * files built from the golden bytes: each refused with a message, never crashing (ASan). */
#define _GNU_SOURCE /* memmem */
#include <zlib.h>

#include "nn_golden_util.h"
#include "sx_nn_scalex.h"
#include "sx_torch.h"
#include "sx_torch_internal.h"

#define GOLD "golden/scalex_outdir/"

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "open %s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)n + 1);
    ck_assert(fread(b, 1, (size_t)n, f) == (size_t)n);
    b[n] = 0;
    fclose(f);
    if (len) *len = (size_t)n;
    return b;
}

/* facts.json: data offset and size of a zip member, found by its exact quoted name. */
static void member(const char *facts, const char *name, long *off, long *size)
{
    char q[128];
    snprintf(q, sizeof q, "\"name\": \"%s\"", name);
    const char *p = strstr(facts, q);
    ck_assert_msg(p != NULL, "facts.json lacks %s", name);
    *size = strtol(strstr(p, "\"file_size\":") + 12, NULL, 10);
    *off = strtol(strstr(p, "\"data_offset\":") + 14, NULL, 10);
}

static uint32_t le32(const unsigned char *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

/* Parse "[a, b]" into dims; returns the count. */
static int dims_of(const char *s, int64_t *d)
{
    int n = 0;
    for (s = strchr(s, '[') + 1; *s && *s != ']';) {
        char *e;
        long long v = strtoll(s, &e, 10);
        if (e == s) { s++; continue; }
        d[n++] = v;
        s = e;
    }
    return n;
}

/* Every line of keys.txt against the reader, values against the raw bytes of model.pt. */
START_TEST(tensors_equal_torch)
{
    sx_status st = {0};
    size_t flen;
    char *keys = slurp(sx_test_shared(GOLD "keys.txt"), NULL);
    char *facts = slurp(sx_test_shared(GOLD "facts.json"), NULL);
    unsigned char *raw = (unsigned char *)slurp(sx_test_shared(GOLD "ref/checkpoint/model.pt"), &flen);
    sx_torch *t = sx_torch_open(sx_test_shared(GOLD "ref/checkpoint/model.pt"), &st);
    ck_assert_msg(t != NULL, "%s", st.msg);
    int row = 0;
    for (char *line = strtok(keys, "\n"); line; line = strtok(NULL, "\n")) {
        if (line[0] == '#') continue;
        char name[128], shape[64], dtype[32], stype[32], sfile[64], stride[64];
        long long numel, soff;
        ck_assert(sscanf(line, "%127[^\t]\t%63[^\t]\t%31[^\t]\t%lld\t%31[^\t]\t%63[^\t]\t%lld\t%63[^\t]",
                         name, shape, dtype, &numel, stype, sfile, &soff, stride) == 8);
        sx_torch_info in;
        ck_assert_int_eq(sx_torch_info_get(t, row, &in), SX_OK);
        ck_assert_str_eq(in.name, name); /* state_dict order */
        ck_assert_int_eq(sx_torch_find(t, name), row);
        int64_t d[8], s[8];
        int nd = dims_of(shape, d);
        ck_assert_int_eq(in.ndim, nd);
        ck_assert_int_eq(dims_of(stride, s), nd);
        for (int k = 0; k < nd; k++) {
            ck_assert_int_eq(in.shape[k], d[k]);
            ck_assert_int_eq(in.stride[k], s[k]);
        }
        ck_assert_int_eq(in.numel, numel);
        ck_assert_int_eq(in.offset, soff);
        ck_assert_str_eq(sx_torch_dtype_name(in.dtype), dtype + strlen("torch."));
        ck_assert_str_eq(in.storage, strrchr(sfile, '/') + 1);
        long off, size;
        member(facts, sfile, &off, &size);
        double *v = malloc((size_t)numel * sizeof *v);
        ck_assert_msg(sx_torch_tensor_f64(t, row, v, numel, &st) == SX_OK, "%s", st.msg);
        int is_f32 = strcmp(stype, "FloatStorage") == 0;
        ck_assert(is_f32 || strcmp(stype, "LongStorage") == 0);
        ck_assert_int_eq(size, numel * (is_f32 ? 4 : 8)); /* contiguous: one element per slot */
        for (long long k = 0; k < numel; k++) {
            const unsigned char *p = raw + off + (soff + k) * (is_f32 ? 4 : 8);
            double want;
            if (is_f32) {
                uint32_t w = le32(p);
                float f;
                memcpy(&f, &w, 4);
                want = f;
            } else {
                want = (double)(int64_t)(le32(p) | ((uint64_t)le32(p + 4) << 32));
            }
            ck_assert_msg(memcmp(&v[k], &want, sizeof want) == 0, "%s[%lld]: %.9g vs %.9g", name,
                          k, v[k], want);
        }
        if (strstr(name, "num_batches_tracked")) ck_assert(v[0] == 602.0); /* README */
        free(v);
        row++;
    }
    ck_assert_int_eq(row, 23);
    ck_assert_int_eq(sx_torch_n_tensors(t), 23);
    sx_torch_close(t);
    free(keys);
    free(facts);
    free(raw);
}
END_TEST

/* config.json's "n_top_features" -> "values": [...] as a list of strings. */
static char **json_genes(int64_t *n)
{
    char *js = slurp(sx_test_shared(GOLD "config.json"), NULL);
    char *p = strchr(strstr(strstr(js, "\"n_top_features\""), "\"values\""), '[') + 1;
    char **g = calloc(5000, sizeof *g);
    *n = 0;
    while ((p = strpbrk(p, "\"]")) && *p == '"') {
        char *e = strchr(p + 1, '"');
        ck_assert_msg(!memchr(p + 1, '\\', (size_t)(e - p - 1)), "escaped gene name");
        g[(*n)++] = strndup(p + 1, (size_t)(e - p - 1));
        p = e + 1;
    }
    free(js);
    return g;
}

START_TEST(config_equals_torch)
{
    sx_status st = {0};
    sx_scalex_config c;
    ck_assert_msg(sx_scalex_config_read(sx_test_shared(GOLD "ref/checkpoint/config.pt"), &c, &st)
                  == SX_OK, "%s", st.msg);
    int64_t n;
    char **g = json_genes(&n);
    ck_assert_int_eq(n, 1467);
    ck_assert_int_eq(c.n_genes, n);
    for (int64_t i = 0; i < n; i++) ck_assert_str_eq(c.genes[i], g[i]);
    /* README: enc = [['fc', 1024, 1, 'relu'], ['fc', 10, '', '']], dec = [['fc', 1467, 2,
     * 'sigmoid']], n_domain = 2 */
    ck_assert_int_eq(c.n_enc, 2);
    ck_assert_str_eq(c.enc[0].kind, "fc");
    ck_assert_int_eq(c.enc[0].width, 1024);
    ck_assert_int_eq(c.enc[0].norm, 1);
    ck_assert_str_eq(c.enc[0].act, "relu");
    ck_assert_int_eq(c.enc[1].width, 10);
    ck_assert_int_eq(c.enc[1].norm, 0);
    ck_assert_str_eq(c.enc[1].act, "");
    ck_assert_int_eq(c.n_dec, 1);
    ck_assert_int_eq(c.dec[0].width, 1467);
    ck_assert_int_eq(c.dec[0].norm, 2);
    ck_assert_str_eq(c.dec[0].act, "sigmoid");
    ck_assert_int_eq(c.n_domain, 2);
    sx_scalex_config_clear(&c);
    for (int64_t i = 0; i < n; i++) free(g[i]);
    free(g);
}
END_TEST

/* The folder as our model: every tensor bit-equal to the reader's, genes from config.pt, and
 * SCALEX's latents reproduced (eval: running statistics; train: SCALEX's recorded chunks). */
START_TEST(model_encodes_like_scalex)
{
    sx_status st = {0};
    sx_nn_model *m = sx_nn_model_from_scalex(sx_test_shared(GOLD "ref"), &st);
    ck_assert_msg(m != NULL, "%s", st.msg);
    sx_torch *t = sx_torch_open(sx_test_shared(GOLD "ref/checkpoint/model.pt"), &st);
    ck_assert_int_eq(sx_nn_model_n_tensors(m), sx_torch_n_tensors(t));
    for (int i = 0; i < sx_torch_n_tensors(t); i++) {
        sx_torch_info in;
        sx_torch_info_get(t, i, &in);
        double *a = malloc((size_t)in.numel * sizeof *a), *b = malloc((size_t)in.numel * sizeof *b);
        ck_assert_msg(sx_nn_model_get(m, in.name, a, in.numel, &st) == SX_OK, "%s", st.msg);
        ck_assert(sx_torch_tensor_f64(t, i, b, in.numel, &st) == SX_OK);
        ck_assert_msg(memcmp(a, b, (size_t)in.numel * sizeof *a) == 0, "%s differs", in.name);
        free(a);
        free(b);
    }
    sx_torch_close(t);
    int64_t ng, nv;
    const char *const *genes = sx_nn_model_genes(m, &ng);
    char **g = json_genes(&nv);
    ck_assert_int_eq(ng, nv);
    for (int64_t i = 0; i < ng; i++) ck_assert_str_eq(genes[i], g[i]);
    for (int64_t i = 0; i < nv; i++) free(g[i]);
    free(g);

    hid_t f = sx_h5_open_ro(sx_test_shared(GOLD "query_input.h5"), &st);
    ck_assert_msg(f >= 0, "%s", st.msg);
    int64_t nx, n_le;
    float *x = gread_f32(f, "X", &nx);
    double *le = gread(f, "latent_eval", &n_le), *lt = gread(f, "latent_train", NULL);
    int64_t *perm = NULL, np;
    ck_assert(sx_h5_read_i64(f, "train_chunk_perm", &perm, &np, &st) == SX_OK);
    H5Fclose(f);
    int64_t n = nx / 1467;
    ck_assert_int_eq(n, 290);
    ck_assert_int_eq(n_le, n * 10);
    sx_csr *csr = dense_csr(x, n, 1467);
    int32_t *dom = calloc((size_t)n, sizeof *dom);
    double *lat = malloc((size_t)n * 10 * sizeof *lat);
    sx_nn_infer_opts o;
    sx_nn_infer_opts_default(&o);
    o.eval = 1;
    o.threads = 1;
    ck_assert_msg(sx_nn_encode(m, csr, dom, &o, lat, NULL, &st) == SX_OK, "%s", st.msg);
    double w = cmp_arrays("eval latent", lat, le, n * 10, 1e-5, 0.1, 0);
    fprintf(stderr, "eval-mode latent vs SCALEX: worst relative %.3g (denominator at least 10%% of max |latent|)\n", w);
    /* train mode: one domain, chunks = perm[64c : 64c+64] exactly as SCALEX walked them */
    o.eval = 0;
    o.perm = perm;
    ck_assert_msg(sx_nn_encode(m, csr, dom, &o, lat, NULL, &st) == SX_OK, "%s", st.msg);
    w = cmp_arrays("train latent", lat, lt, n * 10, 1e-5, 0.1, 0);
    fprintf(stderr, "train-mode latent vs SCALEX: worst relative %.3g\n", w);
    sx_csr_free(csr);
    free(dom);
    free(lat);
    sx_free(x);
    sx_free(le);
    sx_free(lt);
    sx_free(perm);
    sx_nn_model_free(m);
}
END_TEST

/* ---- hostile files, built from the golden bytes ---- */

typedef struct zent {
    const char *name;
    const unsigned char *data;
    size_t len;
    int method;     /* written into the headers as is */
    int lie_len;    /* >0: the directory claims this size instead */
} zent;

static void put16(FILE *f, unsigned v) { fputc((int)(v & 255), f); fputc((int)(v >> 8), f); }
static void put32(FILE *f, uint32_t v) { put16(f, v & 0xFFFF); put16(f, v >> 16); }

/* A plain stored zip (classic end record) with the given members. */
static const char *write_zip(const zent *e, int n)
{
    static char path[600];
    snprintf(path, sizeof path, "%s/model.pt", sx_test_tmpdir());
    FILE *f = fopen(path, "wb");
    long *lho = calloc((size_t)n, sizeof *lho);
    for (int i = 0; i < n; i++) {
        lho[i] = ftell(f);
        put32(f, 0x04034b50u);
        put16(f, 20); put16(f, 0); put16(f, (unsigned)e[i].method); put32(f, 0);
        put32(f, (uint32_t)crc32(0, e[i].data, (uInt)e[i].len));
        put32(f, (uint32_t)e[i].len); put32(f, (uint32_t)e[i].len);
        put16(f, (unsigned)strlen(e[i].name)); put16(f, 0);
        fputs(e[i].name, f);
        fwrite(e[i].data, 1, e[i].len, f);
    }
    long cd = ftell(f);
    for (int i = 0; i < n; i++) {
        uint32_t len = e[i].lie_len ? (uint32_t)e[i].lie_len : (uint32_t)e[i].len;
        put32(f, 0x02014b50u);
        put16(f, 20); put16(f, 20); put16(f, 0); put16(f, (unsigned)e[i].method); put32(f, 0);
        put32(f, (uint32_t)crc32(0, e[i].data, (uInt)e[i].len));
        put32(f, len); put32(f, len);
        put16(f, (unsigned)strlen(e[i].name)); put16(f, 0); put16(f, 0); put16(f, 0);
        put16(f, 0); put32(f, 0); put32(f, (uint32_t)lho[i]);
        fputs(e[i].name, f);
    }
    long end = ftell(f);
    put32(f, 0x06054b50u);
    put16(f, 0); put16(f, 0); put16(f, (unsigned)n); put16(f, (unsigned)n);
    put32(f, (uint32_t)(end - cd)); put32(f, (uint32_t)cd); put16(f, 0);
    fclose(f);
    free(lho);
    return path;
}

typedef struct gold {
    unsigned char *raw;
    size_t rawlen;
    zent e[25];
    char names[25][32];
    int n;
    unsigned char *pkl; /* a modifiable copy of data.pkl */
    size_t pkl_len;
} gold;

/* The golden model.pt's members (data offsets from facts.json), data.pkl copied for edits. */
static void gold_load(gold *g)
{
    char *facts = slurp(sx_test_shared(GOLD "facts.json"), NULL);
    g->raw = (unsigned char *)slurp(sx_test_shared(GOLD "ref/checkpoint/model.pt"), &g->rawlen);
    g->n = 0;
    for (int i = -1; i < 24; i++) {
        char *nm = g->names[g->n];
        if (i < 0) snprintf(nm, 32, "model/data.pkl");
        else if (i < 23) snprintf(nm, 32, "model/data/%d", i);
        else snprintf(nm, 32, "model/version");
        long off, size;
        member(facts, nm, &off, &size);
        g->e[g->n++] = (zent){nm, g->raw + off, (size_t)size, 0, 0};
    }
    g->pkl_len = g->e[0].len;
    g->pkl = malloc(g->pkl_len + 64);
    memcpy(g->pkl, g->e[0].data, g->pkl_len);
    g->e[0].data = g->pkl;
    free(facts);
}

static void gold_free(gold *g)
{
    free(g->raw);
    free(g->pkl);
}

/* Replace the first `from` (flen bytes) in data.pkl by `to` (tlen bytes). */
static void pkl_patch(gold *g, const char *from, size_t flen, const char *to, size_t tlen)
{
    unsigned char *p = memmem(g->pkl, g->pkl_len, from, flen);
    ck_assert_msg(p != NULL, "pattern not in data.pkl");
    ck_assert(tlen <= flen + 64 - (g->pkl_len - g->e[0].len));
    memmove(p + tlen, p + flen, g->pkl_len - (size_t)(p - g->pkl) - flen);
    memcpy(p, to, tlen);
    g->pkl_len = g->pkl_len - flen + tlen;
    g->e[0].len = g->pkl_len;
}

/* Open must fail with `code` and a message containing `needle`. */
static void refused(const char *path, int code, const char *needle)
{
    sx_status st = {0};
    sx_torch *t = sx_torch_open(path, &st);
    ck_assert_msg(t == NULL, "accepted a hostile file (expected: %s)", needle);
    ck_assert_msg(st.code == code && strstr(st.msg, needle), "code %d, message '%s'; expected "
                  "code %d with '%s'", st.code, st.msg, code, needle);
    ck_assert_msg(!strstr(st.msg, "/tmp") && !strstr(st.msg, "golden"), "path leaked: %s", st.msg);
    fprintf(stderr, "refused: %s\n", st.msg);
}

START_TEST(rewritten_golden_loads)
{
    gold g;
    gold_load(&g);
    sx_status st = {0};
    sx_torch *t = sx_torch_open(write_zip(g.e, g.n), &st);
    ck_assert_msg(t != NULL, "the control file (golden members, re-zipped) fails: %s", st.msg);
    ck_assert_int_eq(sx_torch_n_tensors(t), 23);
    sx_torch_close(t);
    gold_free(&g);
}
END_TEST

START_TEST(hostile_globals)
{
    static const char *bad[][2] = {{"os\nsystem\n", "global 'os.system'"},
                                   {"posix\nsystem\n", "global 'posix.system'"},
                                   {"builtins\neval\n", "global 'builtins.eval'"},
                                   {"torch\nload\n", "global 'torch.load'"},
                                   {"subprocess\nPopen\n", "global 'subprocess.Popen'"}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        gold g;
        gold_load(&g);
        const char *from = "collections\nOrderedDict\n";
        pkl_patch(&g, from, strlen(from), bad[i][0], strlen(bad[i][0]));
        refused(write_zip(g.e, g.n), SX_EUNSUPPORTED, bad[i][1]);
        gold_free(&g);
    }
    /* INST ('i') and STACK_GLOBAL (0x93) reach globals another way: unknown opcodes here */
    gold g;
    gold_load(&g);
    pkl_patch(&g, "c", 1, "i", 1);
    refused(write_zip(g.e, g.n), SX_EUNSUPPORTED, "opcode 0x69");
    gold_free(&g);
}
END_TEST

START_TEST(hostile_tensors)
{
    gold g;
    /* W1's size (1024, 1467): BININT2 1024, BININT2 1467, TUPLE2 */
    static const char size_w1[] = "M\x00\x04M\xbb\x05\x86";
    gold_load(&g);
    pkl_patch(&g, size_w1, 7, "J\xff\xff\xff\x7fJ\xff\xff\xff\x7f\x86", 11);
    refused(write_zip(g.e, g.n), SX_EFORMAT, "storage holds 1502208");
    gold_free(&g);
    gold_load(&g); /* (2^62, 1467): the element count overflows */
    pkl_patch(&g, size_w1, 7, "\x8a\x08\x00\x00\x00\x00\x00\x00\x00\x40M\xbb\x05\x86", 14);
    refused(write_zip(g.e, g.n), SX_ELIMIT, "huge shape");
    gold_free(&g);
    gold_load(&g); /* shape (1, 1467) whose size-1 dim has a stride near 2^63 */
    pkl_patch(&g, size_w1, 7, "K\x01M\xbb\x05\x86", 6);
    pkl_patch(&g, "M\xbb\x05K\x01\x86", 6, "\x8a\x08\xff\xff\xff\xff\xff\xff\xff\x7fK\x01\x86",
              13);
    refused(write_zip(g.e, g.n), SX_ELIMIT, "strides overflow");
    gold_free(&g);
    gold_load(&g); /* the storage declares fewer elements than its tensor needs */
    pkl_patch(&g, "J\x00\xec\x16\x00", 5, "J\xff\xeb\x16\x00", 5); /* 1502208 -> 1502207 */
    refused(write_zip(g.e, g.n), SX_EFORMAT, "storage holds 1502207");
    gold_free(&g);
    gold_load(&g); /* the storage member is shorter than the storage it declares */
    g.e[1].len /= 2;
    refused(write_zip(g.e, g.n), SX_EFORMAT, "is shorter");
    gold_free(&g);
    gold_load(&g); /* a storage member missing */
    g.e[1] = g.e[--g.n];
    refused(write_zip(g.e, g.n), SX_EFORMAT, "which the file lacks");
    gold_free(&g);
    gold_load(&g); /* a memo id far past any real one */
    pkl_patch(&g, "q\x00", 2, "r\xff\xff\xff\xff", 5);
    refused(write_zip(g.e, g.n), SX_ELIMIT, "memo id");
    gold_free(&g);
    gold_load(&g); /* 70,000 nested MARKs */
    {
        size_t k = 70000;
        unsigned char *p = malloc(k + 4);
        p[0] = 0x80;
        p[1] = 2;
        memset(p + 2, '(', k);
        p[k + 2] = '.';
        g.e[0].data = p;
        g.e[0].len = k + 3;
        refused(write_zip(g.e, g.n), SX_ELIMIT, "MARKs");
        free(p);
    }
    gold_free(&g);
    gold_load(&g); /* a dict holding itself 1000 times: naming its tensors must not explode */
    {
        unsigned char *p = malloc(20000), *q = p;
        *q++ = 0x80; *q++ = 2; *q++ = '}'; *q++ = 'q'; *q++ = 0; *q++ = '(';
        for (int k = 0; k < 1000; k++) {
            char key[8];
            int kl = snprintf(key, sizeof key, "k%d", k);
            *q++ = 'X'; *q++ = (unsigned char)kl; *q++ = 0; *q++ = 0; *q++ = 0;
            memcpy(q, key, (size_t)kl);
            q += kl;
            *q++ = 'h'; *q++ = 0;
        }
        *q++ = 'u'; *q++ = '.';
        g.e[0].data = p;
        g.e[0].len = (size_t)(q - p);
        refused(write_zip(g.e, g.n), SX_ELIMIT, "nest or repeat");
        free(p);
    }
    gold_free(&g);
    gold_load(&g); /* cut short: the pickle ends before STOP */
    g.e[0].len -= 40;
    refused(write_zip(g.e, g.n), SX_EFORMAT, "truncated");
    gold_free(&g);
}
END_TEST

START_TEST(hostile_zips)
{
    gold g;
    static const char *escape[] = {"model/../../etc/passwd", "/abs/data/1", "model\\..\\x",
                                   "../model/data/1"};
    for (size_t i = 0; i < sizeof escape / sizeof escape[0]; i++) {
        gold_load(&g);
        g.e[2].name = escape[i];
        refused(write_zip(g.e, g.n), SX_EFORMAT, "escapes the archive");
        gold_free(&g);
    }
    gold_load(&g); /* two members with one name */
    g.e[2].name = g.e[3].name;
    refused(write_zip(g.e, g.n), SX_EFORMAT, "two entries named");
    gold_free(&g);
    gold_load(&g); /* deflated member */
    g.e[2].method = 8;
    refused(write_zip(g.e, g.n), SX_EUNSUPPORTED, "zip -0");
    gold_free(&g);
    gold_load(&g); /* the directory claims more bytes than the file has */
    g.e[g.n - 1].lie_len = 1 << 30;
    refused(write_zip(g.e, g.n), SX_EFORMAT, "runs past");
    gold_free(&g);
    /* the golden file itself, truncated at several points */
    gold_load(&g);
    const char *dir = sx_test_tmpdir();
    static const size_t cuts[] = {0, 1, 100, 3000000, 6229486 - 23, 6229486 - 1};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        char path[600];
        snprintf(path, sizeof path, "%s/cut%zu.pt", dir, i);
        FILE *f = fopen(path, "wb");
        fwrite(g.raw, 1, cuts[i], f);
        fclose(f);
        refused(path, SX_EFORMAT, "not a PyTorch checkpoint");
    }
    /* the legacy format: a bare pickle stream */
    char path[600];
    snprintf(path, sizeof path, "%s/legacy.pt", dir);
    FILE *f = fopen(path, "wb");
    fwrite("\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19.", 1, 15, f);
    fclose(f);
    refused(path, SX_EUNSUPPORTED, "_use_new_zipfile_serialization=True");
    gold_free(&g);
}
END_TEST

/* A flipped storage byte is caught by the CRC when the tensor is read. */
START_TEST(corrupt_storage_crc)
{
    gold g;
    gold_load(&g);
    size_t len;
    const char *path = write_zip(g.e, g.n);
    unsigned char *b = (unsigned char *)slurp(path, &len);
    unsigned char *hit = memmem(b, len, g.e[2].data, 64); /* model/data/1 */
    ck_assert(hit != NULL);
    hit[17] ^= 0x40;
    FILE *f = fopen(path, "wb");
    fwrite(b, 1, len, f);
    fclose(f);
    sx_status st = {0};
    sx_torch *t = sx_torch_open(path, &st);
    ck_assert_msg(t != NULL, "%s", st.msg);
    double v[1024];
    ck_assert_int_eq(sx_torch_tensor_f64(t, sx_torch_find(t, "encoder.enc.net.0.fc.bias"), v,
                                         1024, &st), SX_EFORMAT);
    ck_assert_msg(strstr(st.msg, "CRC"), "%s", st.msg);
    sx_torch_close(t);
    free(b);
    gold_free(&g);
}
END_TEST

/* Deterministic mutation fuzzing (runs under ASan/UBSan in the sanitizer build): random byte
 * changes to both golden pickles, run through the pickle machine directly, and to the whole of
 * config.pt, run through the config reader. Every outcome must be a clean accept or a refusal
 * with a message; the sanitizers catch anything else. */
static uint64_t rng_next(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static void mutate(unsigned char *b, size_t n, uint64_t *rs)
{
    int k = 1 + (int)(rng_next(rs) % 4);
    for (int i = 0; i < k; i++) {
        size_t at = (size_t)(rng_next(rs) % n);
        uint64_t r = rng_next(rs);
        b[at] = (r & 3) == 0 ? (unsigned char)(r >> 8) : (r & 3) == 1 ? b[at] ^ 0xFF
              : (r & 3) == 2 ? (unsigned char)"()}]qhrjRbustea.QcXJKM\x85\x86"[(r >> 8) % 24]
                             : 0;
    }
}

START_TEST(fuzz_mutations)
{
    gold g;
    gold_load(&g);
    size_t clen;
    unsigned char *cfg = (unsigned char *)slurp(sx_test_shared(GOLD "ref/checkpoint/config.pt"),
                                                &clen);
    char *facts = slurp(sx_test_shared(GOLD "facts.json"), NULL);
    long coff, csize;
    member(facts, "config/data.pkl", &coff, &csize);
    const unsigned char *pk[2] = {g.pkl, cfg + coff};
    size_t pn[2] = {g.pkl_len, (size_t)csize};
    unsigned char *buf = malloc(clen > g.pkl_len ? clen : g.pkl_len);
    uint64_t rs = 0x9E3779B97F4A7C15ull;
    int accepted = 0, refused_n = 0;
    for (int it = 0; it < 6000; it++) {
        int w = it & 1;
        memcpy(buf, pk[w], pn[w]);
        mutate(buf, pn[w], &rs);
        sx_status st = {0};
        sx_pkl *p = sx_pkl_parse(buf, pn[w], "fuzz", &st);
        if (p) accepted++;
        else { refused_n++; ck_assert_msg(st.code != SX_OK && st.msg[0], "silent refusal"); }
        sx_pkl_free(p);
    }
    const char *path = NULL;
    char dir_path[600];
    snprintf(dir_path, sizeof dir_path, "%s/config.pt", sx_test_tmpdir());
    path = dir_path;
    for (int it = 0; it < 1500; it++) {
        memcpy(buf, cfg, clen);
        /* half the time aim at the zip structure: headers, directory, end records */
        if (it & 1) {
            size_t at = (size_t)(rng_next(&rs) % 128);
            size_t where = (rng_next(&rs) & 1) ? at : clen - 1 - (size_t)(rng_next(&rs) % 240);
            buf[where] ^= (unsigned char)(1u << (rng_next(&rs) % 8));
        } else {
            mutate(buf, clen, &rs);
        }
        FILE *f = fopen(path, "wb");
        fwrite(buf, 1, clen, f);
        fclose(f);
        sx_status st = {0};
        sx_scalex_config c;
        if (sx_scalex_config_read(path, &c, &st) == SX_OK) {
            accepted++;
            sx_scalex_config_clear(&c);
        } else {
            refused_n++;
            ck_assert_msg(st.msg[0], "silent refusal");
        }
    }
    fprintf(stderr, "fuzz: %d accepted, %d refused, no crash\n", accepted, refused_n);
    free(buf);
    free(cfg);
    free(facts);
    gold_free(&g);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("torch");
    TCase *tc = tcase_create("golden");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, tensors_equal_torch);
    tcase_add_test(tc, config_equals_torch);
    tcase_add_test(tc, model_encodes_like_scalex);
    tcase_add_test(tc, rewritten_golden_loads);
    tcase_add_test(tc, hostile_globals);
    tcase_add_test(tc, hostile_tensors);
    tcase_add_test(tc, hostile_zips);
    tcase_add_test(tc, corrupt_storage_crc);
    tcase_add_test(tc, fuzz_mutations);
    suite_add_tcase(s, tc);
    return sx_test_run(s);
}
