#include "srv_respcache.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "srv_util.h"

#define PROBE 4
#define ID_MAX 64

typedef struct entry {
    char id[ID_MAX]; /* "" = free */
    int64_t user;
    uint64_t gen;
    double born;     /* srv_mono_s() */
    char *body;      /* owned */
    size_t len;
} entry;

struct srv_respcache {
    double ttl_s;
    size_t cap; /* power of two */
    entry *e;
    pthread_mutex_t mu;
};

srv_respcache *srv_respcache_new(int capacity, double ttl_s)
{
    if (ttl_s <= 0) return NULL;
    srv_respcache *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    size_t cap = 16;
    while (cap < (size_t)(capacity > 0 ? capacity : 0) && cap < ((size_t)1 << 20)) cap <<= 1;
    if (!(c->e = calloc(cap, sizeof *c->e))) {
        free(c);
        return NULL;
    }
    c->ttl_s = ttl_s;
    c->cap = cap;
    pthread_mutex_init(&c->mu, NULL);
    return c;
}

void srv_respcache_free(srv_respcache *c)
{
    if (!c) return;
    for (size_t i = 0; i < c->cap; i++) free(c->e[i].body);
    pthread_mutex_destroy(&c->mu);
    free(c->e);
    free(c);
}

static size_t bucket(const srv_respcache *c, int64_t user, const char *id)
{
    uint64_t h = 1469598103934665603ull ^ (uint64_t)user; /* FNV-1a */
    for (const char *p = id; *p; p++) h = (h ^ (unsigned char)*p) * 1099511628211ull;
    return (size_t)h & (c->cap - 1);
}

static entry *at(srv_respcache *c, size_t b, int i) { return &c->e[(b + (size_t)i) & (c->cap - 1)]; }

char *srv_respcache_get(srv_respcache *c, int64_t user, const char *id, uint64_t gen, size_t *len)
{
    if (!c || strlen(id) >= ID_MAX) return NULL;
    size_t b = bucket(c, user, id);
    double now = srv_mono_s();
    char *out = NULL;
    pthread_mutex_lock(&c->mu);
    for (int i = 0; i < PROBE; i++) {
        entry *x = at(c, b, i);
        if (!x->id[0] || x->user != user || strcmp(x->id, id)) continue;
        if (x->gen == gen && now - x->born < c->ttl_s && (out = malloc(x->len + 1))) {
            memcpy(out, x->body, x->len + 1);
            *len = x->len;
        }
        break;
    }
    pthread_mutex_unlock(&c->mu);
    return out;
}

void srv_respcache_put(srv_respcache *c, int64_t user, const char *id, uint64_t gen,
                       const char *body, size_t len)
{
    if (!c || strlen(id) >= ID_MAX) return;
    char *copy = malloc(len + 1);
    if (!copy) return;
    memcpy(copy, body, len);
    copy[len] = 0;
    size_t b = bucket(c, user, id);
    double now = srv_mono_s();
    pthread_mutex_lock(&c->mu);
    /* the same key, else a free slot, else the oldest */
    entry *v = NULL;
    for (int i = 0; i < PROBE; i++) {
        entry *x = at(c, b, i);
        if (x->id[0] && x->user == user && !strcmp(x->id, id)) {
            v = x;
            break;
        }
        if (!v || (v->id[0] && (!x->id[0] || x->born < v->born))) v = x;
    }
    if (v->id[0] && !strcmp(v->id, id) && v->user == user && v->gen > gen) {
        /* a newer generation's body is there already: keep it */
        pthread_mutex_unlock(&c->mu);
        free(copy);
        return;
    }
    free(v->body);
    snprintf(v->id, sizeof v->id, "%s", id);
    v->user = user;
    v->gen = gen;
    v->born = now;
    v->body = copy;
    v->len = len;
    pthread_mutex_unlock(&c->mu);
}
