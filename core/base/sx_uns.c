#include "sx_uns.h"

#include <string.h>

#include "sx_alloc.h"

sx_uns *sx_uns_new_dict(void)
{
    sx_uns *u = sx_calloc(1, sizeof *u);
    if (u) u->kind = SX_UNS_DICT;
    return u;
}

void sx_uns_free(sx_uns *u)
{
    if (!u) return;
    sx_free(u->key);
    sx_free(u->str);
    sx_free(u->ai);
    sx_free(u->af);
    if (u->as)
        for (int64_t i = 0; i < u->n; i++) sx_free(u->as[i]);
    sx_free(u->as);
    for (int i = 0; i < u->n_kids; i++) sx_uns_free(u->kids[i]);
    sx_free(u->kids);
    sx_free(u);
}

sx_uns *sx_uns_copy(const sx_uns *u)
{
    sx_uns *c = sx_calloc(1, sizeof *c);
    if (!c) return NULL;
    c->kind = u->kind;
    c->i = u->i;
    c->f = u->f;
    c->n = u->n;
    c->dims[0] = u->dims[0];
    c->dims[1] = u->dims[1];
    size_t n = (size_t)(u->n ? u->n : 1);
    if ((u->key && !(c->key = sx_strdup(u->key))) || (u->str && !(c->str = sx_strdup(u->str))))
        goto fail;
    if (u->ai) {
        if (!(c->ai = sx_mallocarray(n, sizeof(int64_t)))) goto fail;
        memcpy(c->ai, u->ai, (size_t)u->n * sizeof(int64_t));
    }
    if (u->af) {
        if (!(c->af = sx_mallocarray(n, sizeof(double)))) goto fail;
        memcpy(c->af, u->af, (size_t)u->n * sizeof(double));
    }
    if (u->as) {
        if (!(c->as = sx_calloc(n, sizeof(char *)))) goto fail;
        for (int64_t i = 0; i < u->n; i++)
            if (!(c->as[i] = sx_strdup(u->as[i] ? u->as[i] : ""))) goto fail;
    }
    if (u->n_kids) {
        if (!(c->kids = sx_calloc((size_t)u->n_kids, sizeof(sx_uns *)))) goto fail;
        for (int i = 0; i < u->n_kids; i++) {
            c->n_kids = i + 1;
            if (!(c->kids[i] = sx_uns_copy(u->kids[i]))) goto fail;
        }
    }
    return c;
fail:
    sx_uns_free(c);
    return NULL;
}

sx_uns *sx_uns_get(const sx_uns *dict, const char *key)
{
    if (!dict || dict->kind != SX_UNS_DICT) return NULL;
    for (int i = 0; i < dict->n_kids; i++)
        if (strcmp(dict->kids[i]->key, key) == 0) return dict->kids[i];
    return NULL;
}

sx_uns *sx_uns_path(const sx_uns *root, const char *path)
{
    char part[512];
    const sx_uns *cur = root;
    while (cur && *path) {
        const char *slash = strchr(path, '/');
        size_t len = slash ? (size_t)(slash - path) : strlen(path);
        if (len >= sizeof part) return NULL;
        memcpy(part, path, len);
        part[len] = '\0';
        cur = sx_uns_get(cur, part);
        path += len + (slash ? 1 : 0);
    }
    return (sx_uns *)cur;
}

sx_uns *sx_uns_attach(sx_uns *dict, const char *key, sx_uns *node)
{
    if (!dict || dict->kind != SX_UNS_DICT || !node) {
        sx_uns_free(node);
        return NULL;
    }
    char *k = sx_strdup(key);
    if (!k) {
        sx_uns_free(node);
        return NULL;
    }
    sx_free(node->key);
    node->key = k;
    for (int i = 0; i < dict->n_kids; i++)
        if (strcmp(dict->kids[i]->key, key) == 0) {
            sx_uns_free(dict->kids[i]);
            dict->kids[i] = node;
            return node;
        }
    sx_uns **nk = sx_reallocarray(dict->kids, (size_t)dict->n_kids + 1, sizeof(sx_uns *));
    if (!nk) {
        sx_uns_free(node);
        return NULL;
    }
    dict->kids = nk;
    dict->kids[dict->n_kids++] = node;
    return node;
}

static sx_uns *leaf(sx_uns_kind kind)
{
    sx_uns *u = sx_calloc(1, sizeof *u);
    if (u) u->kind = kind;
    return u;
}

sx_uns *sx_uns_set_dict(sx_uns *dict, const char *key)
{
    sx_uns *ex = sx_uns_get(dict, key);
    if (ex && ex->kind == SX_UNS_DICT) return ex;
    return sx_uns_attach(dict, key, sx_uns_new_dict());
}

sx_uns *sx_uns_set_string(sx_uns *dict, const char *key, const char *val)
{
    sx_uns *u = leaf(SX_UNS_STRING);
    if (u && !(u->str = sx_strdup(val ? val : ""))) {
        sx_uns_free(u);
        return NULL;
    }
    return sx_uns_attach(dict, key, u);
}

sx_uns *sx_uns_set_int(sx_uns *dict, const char *key, int64_t val)
{
    sx_uns *u = leaf(SX_UNS_INT);
    if (u) u->i = val;
    return sx_uns_attach(dict, key, u);
}

sx_uns *sx_uns_set_float(sx_uns *dict, const char *key, double val)
{
    sx_uns *u = leaf(SX_UNS_FLOAT);
    if (u) u->f = val;
    return sx_uns_attach(dict, key, u);
}

sx_uns *sx_uns_set_bool(sx_uns *dict, const char *key, int val)
{
    sx_uns *u = leaf(SX_UNS_BOOL);
    if (u) u->i = val != 0;
    return sx_uns_attach(dict, key, u);
}

sx_uns *sx_uns_set_ints(sx_uns *dict, const char *key, const int64_t *v, int64_t n)
{
    sx_uns *u = leaf(SX_UNS_ARR_INT);
    if (!u) return NULL;
    u->n = u->dims[0] = n;
    if (!(u->ai = sx_mallocarray((size_t)(n ? n : 1), sizeof(int64_t)))) {
        sx_uns_free(u);
        return NULL;
    }
    if (n) memcpy(u->ai, v, (size_t)n * sizeof(int64_t));
    return sx_uns_attach(dict, key, u);
}

sx_uns *sx_uns_set_floats(sx_uns *dict, const char *key, const double *v, int64_t n)
{
    sx_uns *u = leaf(SX_UNS_ARR_FLOAT);
    if (!u) return NULL;
    u->n = u->dims[0] = n;
    if (!(u->af = sx_mallocarray((size_t)(n ? n : 1), sizeof(double)))) {
        sx_uns_free(u);
        return NULL;
    }
    if (n) memcpy(u->af, v, (size_t)n * sizeof(double));
    return sx_uns_attach(dict, key, u);
}

sx_uns *sx_uns_set_strings(sx_uns *dict, const char *key, const char *const *v, int64_t n)
{
    sx_uns *u = leaf(SX_UNS_ARR_STRING);
    if (!u) return NULL;
    u->n = u->dims[0] = n;
    if (!(u->as = sx_calloc((size_t)(n ? n : 1), sizeof(char *)))) {
        sx_uns_free(u);
        return NULL;
    }
    for (int64_t i = 0; i < n; i++)
        if (!(u->as[i] = sx_strdup(v[i] ? v[i] : ""))) {
            sx_uns_free(u);
            return NULL;
        }
    return sx_uns_attach(dict, key, u);
}
