/* sx_torch_config — SCALEX's checkpoint/config.pt: the gene list (a pickled pandas Index of
 * str) and the layer lists enc/dec with n_domain, read through the bounded pickle machine. */
#include <stdio.h>
#include <string.h>

#include "sx_alloc.h"
#include "sx_torch.h"
#include "sx_torch_internal.h"

static int bad_key(const char *label, const char *key, const char *want, sx_status *st)
{
    return sx_status_set(st, SX_EFORMAT, "'%s' is not a SCALEX config: its '%s' is missing or "
                         "not %s", label, key, want);
}

/* n_top_features: Index(data=object ndarray of str). */
static int read_genes(const sx_pv *root, const char *label, sx_scalex_config *c, sx_status *st)
{
    const sx_pv *ix = sx_pv_dict_get(root, "n_top_features");
    const sx_pv *arr = ix && ix->kind == SX_PV_INDEX ? ix->items[0] : NULL;
    if (!arr || !arr->dt_obj || arr->ndim != 1 || arr->n != 2)
        return bad_key(label, "n_top_features", "a pandas Index of gene names", st);
    const sx_pv *list = arr->items[1];
    c->genes = sx_calloc(list->n + 1, sizeof *c->genes);
    if (!c->genes) return sx_status_set(st, SX_ENOMEM, "out of memory");
    for (size_t i = 0; i < list->n; i++) {
        const sx_pv *g = list->items[i];
        if (g->kind != SX_PV_STR || strlen(g->s) != g->len)
            return bad_key(label, "n_top_features", "a list of gene-name strings", st);
        if (!(c->genes[i] = sx_strdup(g->s))) return sx_status_set(st, SX_ENOMEM, "out of memory");
        c->n_genes = (int64_t)i + 1;
    }
    return SX_OK;
}

/* [[kind, width, norm, act], ...]; norm and act may be '' (none). */
static int read_layers(const sx_pv *root, const char *key, const char *label,
                       sx_torch_layer **out, int *n, sx_status *st)
{
    const sx_pv *l = sx_pv_dict_get(root, key);
    if (!l || l->kind != SX_PV_LIST || l->n == 0 || l->n > 64)
        return bad_key(label, key, "a list of layers", st);
    *out = sx_calloc(l->n, sizeof **out);
    if (!*out) return sx_status_set(st, SX_ENOMEM, "out of memory");
    for (size_t i = 0; i < l->n; i++) {
        const sx_pv *e = l->items[i];
        if (e->kind != SX_PV_LIST || e->n != 4 || e->items[0]->kind != SX_PV_STR ||
            e->items[1]->kind != SX_PV_INT || e->items[1]->i <= 0)
            return bad_key(label, key, "a list of [kind, width, norm, activation]", st);
        sx_torch_layer *y = &(*out)[i];
        const sx_pv *norm = e->items[2], *act = e->items[3];
        if ((norm->kind != SX_PV_INT && !(norm->kind == SX_PV_STR && !norm->len)) ||
            act->kind != SX_PV_STR)
            return bad_key(label, key, "a list of [kind, width, norm, activation]", st);
        snprintf(y->kind, sizeof y->kind, "%s", e->items[0]->s);
        y->width = e->items[1]->i;
        y->norm = norm->kind == SX_PV_INT ? norm->i : 0;
        snprintf(y->act, sizeof y->act, "%s", act->s);
        *n = (int)i + 1;
    }
    return SX_OK;
}

int sx_scalex_config_read(const char *path, sx_scalex_config *c, sx_status *st)
{
    memset(c, 0, sizeof *c);
    sx_torch *t = sx_torch_open(path, st);
    if (!t) return st->code;
    const char *label = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
    const sx_pv *root = sx_torch_root(t), *nd = sx_pv_dict_get(root, "n_domain");
    int rc = read_genes(root, label, c, st);
    if (rc == SX_OK) rc = read_layers(root, "enc", label, &c->enc, &c->n_enc, st);
    if (rc == SX_OK) rc = read_layers(root, "dec", label, &c->dec, &c->n_dec, st);
    if (rc == SX_OK && (!nd || nd->kind != SX_PV_INT || nd->i < 1 || nd->i > 100000))
        rc = bad_key(label, "n_domain", "a positive integer", st);
    if (rc == SX_OK) c->n_domain = nd->i;
    sx_torch_close(t);
    if (rc != SX_OK) sx_scalex_config_clear(c);
    return rc;
}

void sx_scalex_config_clear(sx_scalex_config *c)
{
    if (!c) return;
    for (int64_t i = 0; c->genes && i < c->n_genes; i++) sx_free(c->genes[i]);
    sx_free(c->genes);
    sx_free(c->enc);
    sx_free(c->dec);
    memset(c, 0, sizeof *c);
}
