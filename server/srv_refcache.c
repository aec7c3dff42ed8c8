#include "srv_refcache.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "srv_layout.h"
#include "srv_log.h"
#include "srv_util.h"
#include "sx_log.h"

typedef struct entry {
    char *name;
    void *obj;          /* NULL while loading */
    int64_t bytes;
    int refs;           /* jobs holding obj */
    uint64_t last_use;  /* tick of the last acquire/release: LRU order */
    int loading;
    int withdrawn;      /* its reference left the catalog: never found again, freed when idle */
    struct entry *next;
} entry;

struct srv_refcache {
    pthread_mutex_t mu;
    pthread_cond_t cv;  /* a load finished */
    entry *head;
    int64_t budget, total;
    uint64_t tick;
    srv_ref_load_fn load;
    srv_ref_free_fn free_fn;
    void *user;
};

srv_refcache *srv_refcache_new(int64_t budget, srv_ref_load_fn load, srv_ref_free_fn free_fn,
                               void *user)
{
    srv_refcache *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->cv, NULL);
    c->budget = budget < 0 ? 0 : budget;
    c->load = load;
    c->free_fn = free_fn;
    c->user = user;
    return c;
}

static void unlink_entry(srv_refcache *c, entry *e)
{
    for (entry **p = &c->head; *p; p = &(*p)->next)
        if (*p == e) {
            *p = e->next;
            break;
        }
}

static void drop(srv_refcache *c, entry *e)
{
    unlink_entry(c, e);
    if (e->obj) {
        c->free_fn(c->user, e->obj);
        c->total -= e->bytes;
    }
    free(e->name);
    free(e);
}

/* Unload the least recently used entries nobody holds until the total fits (under mu). */
static void evict(srv_refcache *c)
{
    while (c->total > c->budget) {
        entry *lru = NULL;
        for (entry *e = c->head; e; e = e->next)
            if (e->obj && !e->refs && !e->loading && (!lru || e->last_use < lru->last_use)) lru = e;
        if (!lru) return; /* everything loaded is in use */
        json_t *f = json_object();
        json_object_set_new(f, "reference", json_string(lru->name));
        json_object_set_new(f, "bytes", json_integer(lru->bytes));
        json_object_set_new(f, "budget", json_integer(c->budget));
        srv_log_event(SX_LOG_INFO, "reference unloaded", f);
        drop(c, lru);
    }
}

void srv_refcache_free(srv_refcache *c)
{
    if (!c) return;
    while (c->head) drop(c, c->head);
    pthread_cond_destroy(&c->cv);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

static entry *find(srv_refcache *c, const char *name)
{
    for (entry *e = c->head; e; e = e->next)
        if (!e->withdrawn && !strcmp(e->name, name)) return e;
    return NULL;
}

void srv_refcache_forget(srv_refcache *c, const char *name)
{
    if (!c) return;
    pthread_mutex_lock(&c->mu);
    entry *e = find(c, name);
    if (e) {
        e->withdrawn = 1; /* a reference registered again under the name loads afresh */
        if (e->obj && !e->refs && !e->loading) drop(c, e);
    }
    pthread_mutex_unlock(&c->mu);
}

void *srv_refcache_acquire(srv_refcache *c, const char *name, const char *path, sx_status *st)
{
    pthread_mutex_lock(&c->mu);
    entry *e;
    for (;;) {
        e = find(c, name);
        if (!e || !e->loading) break;
        pthread_cond_wait(&c->cv, &c->mu); /* another job is loading it: share that load */
    }
    if (e) {
        e->refs++;
        e->last_use = ++c->tick;
        void *obj = e->obj;
        pthread_mutex_unlock(&c->mu);
        return obj;
    }
    e = calloc(1, sizeof *e);
    char *nm = strdup(name);
    if (!e || !nm) {
        free(e);
        free(nm);
        pthread_mutex_unlock(&c->mu);
        sx_status_set(st, SX_ENOMEM, "out of memory");
        return NULL;
    }
    e->name = nm;
    e->loading = 1;
    e->next = c->head;
    c->head = e;
    pthread_mutex_unlock(&c->mu);

    int64_t bytes = 0;
    double t0 = srv_mono_s();
    void *obj = c->load(c->user, path, &bytes, st);

    pthread_mutex_lock(&c->mu);
    e->loading = 0;
    pthread_cond_broadcast(&c->cv);
    if (!obj) {
        drop(c, e);
        pthread_mutex_unlock(&c->mu);
        return NULL;
    }
    e->obj = obj;
    e->bytes = bytes;
    e->refs = 1;
    e->last_use = ++c->tick;
    c->total += bytes;
    evict(c);
    json_t *f = json_object();
    json_object_set_new(f, "reference", json_string(name));
    json_object_set_new(f, "bytes", json_integer(bytes));
    json_object_set_new(f, "seconds", json_real(srv_mono_s() - t0));
    json_object_set_new(f, "loaded_bytes", json_integer(c->total));
    pthread_mutex_unlock(&c->mu);
    srv_log_event(SX_LOG_INFO, "reference loaded", f);
    return obj;
}

void srv_refcache_release(srv_refcache *c, void *obj)
{
    if (!c || !obj) return;
    pthread_mutex_lock(&c->mu);
    for (entry *e = c->head; e; e = e->next)
        if (e->obj == obj) {
            if (e->refs > 0) e->refs--;
            e->last_use = ++c->tick;
            if (e->withdrawn && !e->refs) drop(c, e);
            break;
        }
    evict(c);
    pthread_mutex_unlock(&c->mu);
}

int srv_refcache_preload(srv_refcache *c, srv_db *db, const char *data_dir)
{
    sx_status st;
    sx_status_clear(&st);
    json_t *list = srv_ref_list(db, &st);
    if (!list) {
        SX_WARN("references not preloaded: %s", st.msg);
        return 0;
    }
    int n = 0;
    size_t i;
    json_t *r;
    json_array_foreach(list, i, r) {
        const char *name = json_string_value(json_object_get(r, "name"));
        if (!name) continue;
        char *rel = srv_ref_path(db, name, &st);
        if (!rel) continue;
        char path[4400], file[4500];
        int bad = srv_layout_abs(data_dir, rel, path, sizeof path, NULL);
        free(rel);
        if (bad) continue;
        /* the file's size predicts the footprint: stop before a load that cannot fit */
        snprintf(file, sizeof file, "%s/reference.h5", path);
        struct stat sb;
        pthread_mutex_lock(&c->mu);
        int64_t room = c->budget - c->total;
        pthread_mutex_unlock(&c->mu);
        if (stat(file, &sb) != 0 || (int64_t)sb.st_size > room) continue;
        sx_status_clear(&st);
        void *obj = srv_refcache_acquire(c, name, path, &st);
        if (!obj) {
            SX_WARN("reference '%s' not preloaded: %s", name, st.msg);
            continue;
        }
        srv_refcache_release(c, obj);
        n += srv_refcache_is_loaded(c, name, NULL);
    }
    json_decref(list);
    return n;
}

int srv_refcache_is_loaded(srv_refcache *c, const char *name, int64_t *bytes)
{
    if (!c) return 0;
    pthread_mutex_lock(&c->mu);
    entry *e = find(c, name);
    int loaded = e && e->obj;
    if (bytes) *bytes = loaded ? e->bytes : 0;
    pthread_mutex_unlock(&c->mu);
    return loaded;
}

void srv_refcache_stats(srv_refcache *c, int *n_loaded, int64_t *bytes, int64_t *budget)
{
    int n = 0;
    int64_t b = 0, bud = 0;
    if (c) {
        pthread_mutex_lock(&c->mu);
        for (entry *e = c->head; e; e = e->next) n += e->obj != NULL;
        b = c->total;
        bud = c->budget;
        pthread_mutex_unlock(&c->mu);
    }
    if (n_loaded) *n_loaded = n;
    if (bytes) *bytes = b;
    if (budget) *budget = bud;
}
