#include "srv_auth.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "sx_sha256.h"
#include "srv_util.h"

/* A bucket is a run of PROBE slots starting at hash % capacity: a lookup looks at all of
 * them (no tombstones needed), an insert takes a free or expired slot, else the one that
 * expires first. */
#define PROBE 8

typedef struct entry {
    char hash[65];   /* "" = free */
    srv_user user;
    double expires;  /* srv_mono_s() */
} entry;

struct srv_auth {
    srv_registry *reg;
    double ttl_s;
    size_t cap;      /* power of two */
    entry *e;
    pthread_mutex_t mu;
    long long hits, misses;
};

srv_auth *srv_auth_new(srv_registry *reg, int capacity, double ttl_s)
{
    srv_auth *a = calloc(1, sizeof *a);
    if (!a) return NULL;
    size_t cap = 16;
    while (cap < (size_t)(capacity > 0 ? capacity : 0) && cap < ((size_t)1 << 24)) cap <<= 1;
    a->e = calloc(cap, sizeof *a->e);
    if (!a->e) {
        free(a);
        return NULL;
    }
    a->reg = reg;
    a->ttl_s = ttl_s;
    a->cap = cap;
    pthread_mutex_init(&a->mu, NULL);
    return a;
}

void srv_auth_free(srv_auth *a)
{
    if (!a) return;
    pthread_mutex_destroy(&a->mu);
    free(a->e);
    free(a);
}

static void token_hash(const char *token, char hex[65])
{
    sx_sha256 c;
    sx_sha256_init(&c);
    sx_sha256_update(&c, token, strlen(token));
    sx_sha256_final_hex(&c, hex);
}

static size_t bucket(const srv_auth *a, const char hex[65])
{
    /* the hash is uniform: its first 16 hex digits are as good an index as any */
    size_t h = 0;
    for (int i = 0; i < 16; i++) {
        char c = hex[i];
        h = h << 4 | (size_t)(c <= '9' ? c - '0' : c - 'a' + 10);
    }
    return h & (a->cap - 1);
}

static entry *slot(srv_auth *a, size_t b, int i) { return &a->e[(b + (size_t)i) & (a->cap - 1)]; }

static int lookup(srv_auth *a, const char hex[65], srv_user *u)
{
    int hit = 0;
    size_t b = bucket(a, hex);
    double now = srv_mono_s();
    pthread_mutex_lock(&a->mu);
    for (int i = 0; i < PROBE; i++) {
        entry *x = slot(a, b, i);
        if (x->hash[0] && !memcmp(x->hash, hex, 64)) {
            if (x->expires > now) {
                *u = x->user;
                hit = 1;
            } else {
                x->hash[0] = 0; /* expired: read the registry again */
            }
            break;
        }
    }
    if (hit) a->hits++;
    else a->misses++;
    pthread_mutex_unlock(&a->mu);
    return hit;
}

static void store(srv_auth *a, const char hex[65], const srv_user *u)
{
    size_t b = bucket(a, hex);
    double now = srv_mono_s();
    pthread_mutex_lock(&a->mu);
    /* the same hash (another thread stored it meanwhile), else a free or expired slot, else
     * the live entry that expires first */
    entry *victim = NULL;
    double best = 0;
    for (int i = 0; i < PROBE; i++) {
        entry *x = slot(a, b, i);
        if (x->hash[0] && !memcmp(x->hash, hex, 64)) {
            victim = x;
            break;
        }
        double score = !x->hash[0] || x->expires <= now ? -1 : x->expires;
        if (!victim || score < best) {
            victim = x;
            best = score;
        }
    }
    memcpy(victim->hash, hex, 65);
    victim->user = *u;
    victim->expires = now + a->ttl_s;
    pthread_mutex_unlock(&a->mu);
}

int srv_auth_check(srv_auth *a, const char *token, srv_user *u, sx_status *st)
{
    char hex[65];
    int cached = a->ttl_s > 0;
    if (cached) {
        token_hash(token, hex);
        if (lookup(a, hex, u)) return SX_OK;
    }
    srv_db *db = srv_registry_get(a->reg, st);
    if (!db) return st->code ? st->code : SX_EIO;
    int rc = cached ? srv_token_lookup_hash(db, hex, u, st) : srv_token_lookup(db, token, u, st);
    srv_registry_put(a->reg, db);
    if (rc == SX_OK && cached) store(a, hex, u);
    return rc;
}

void srv_auth_stats_get(srv_auth *a, srv_auth_stats *out)
{
    memset(out, 0, sizeof *out);
    if (!a) return;
    pthread_mutex_lock(&a->mu);
    out->hits = a->hits;
    out->misses = a->misses;
    for (size_t i = 0; i < a->cap; i++) out->entries += a->e[i].hash[0] != 0;
    pthread_mutex_unlock(&a->mu);
}
