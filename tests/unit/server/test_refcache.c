/* srv_refcache: least-recently-used unloading within the budget, held references never
 * unloaded, one load shared by concurrent jobs, load errors passed on, start-up preload from
 * the registry that stops at the budget. The loader is a fake whose footprint is the size of
 * the reference.h5 file the test wrote, so the expected residents follow from the sizes. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "srv_jobs.h"
#include "srv_refcache.h"
#include "srv_registry.h"
#include "sx_test.h"

typedef struct fake {
    atomic_int loads, frees;
    int slow_ms;
} fake;

typedef struct obj {
    char path[512];
} obj;

static void *fake_load(void *user, const char *path, int64_t *bytes, sx_status *st)
{
    fake *f = user;
    char file[600];
    snprintf(file, sizeof file, "%s/reference.h5", path);
    struct stat sb;
    if (stat(file, &sb) != 0) {
        sx_status_set(st, SX_ENOTFOUND, "%s: no reference.h5", path);
        return NULL;
    }
    if (f->slow_ms) usleep((useconds_t)f->slow_ms * 1000);
    atomic_fetch_add(&f->loads, 1);
    obj *o = calloc(1, sizeof *o);
    snprintf(o->path, sizeof o->path, "%s", path);
    *bytes = sb.st_size;
    return o;
}

static void fake_free(void *user, void *o)
{
    fake *f = user;
    atomic_fetch_add(&f->frees, 1);
    free(o);
}

/* DIR/refs/NAME/reference.h5 of `size` bytes; returns the folder */
static const char *make_ref(const char *dir, const char *name, size_t size)
{
    static char path[8][512];
    static int k;
    char *p = path[k++ % 8];
    snprintf(p, 512, "%s/refs", dir);
    mkdir(p, 0755);
    snprintf(p, 512, "%s/refs/%s", dir, name);
    mkdir(p, 0755);
    char file[600];
    snprintf(file, sizeof file, "%s/reference.h5", p);
    FILE *f = fopen(file, "wb");
    ck_assert_ptr_nonnull(f);
    for (size_t i = 0; i < size; i++) fputc('x', f);
    fclose(f);
    return p;
}

START_TEST(lru_within_budget)
{
    const char *dir = sx_test_tmpdir();
    fake f = {0};
    srv_refcache *c = srv_refcache_new(250, fake_load, fake_free, &f);
    sx_status st;
    const char *pa = make_ref(dir, "a", 100), *pb = make_ref(dir, "b", 100),
               *pc = make_ref(dir, "c", 100);
    void *a = srv_refcache_acquire(c, "a", pa, &st);
    ck_assert_ptr_nonnull(a);
    ck_assert_str_eq(((obj *)a)->path, pa);
    srv_refcache_release(c, a);
    void *b = srv_refcache_acquire(c, "b", pb, &st);
    srv_refcache_release(c, b);
    /* a is used again: b becomes the least recently used */
    void *a2 = srv_refcache_acquire(c, "a", pa, &st);
    ck_assert_ptr_eq(a2, a); /* no second load */
    srv_refcache_release(c, a2);
    ck_assert_int_eq(atomic_load(&f.loads), 2);
    void *cc = srv_refcache_acquire(c, "c", pc, &st);
    srv_refcache_release(c, cc);
    int64_t bytes = 0;
    ck_assert(srv_refcache_is_loaded(c, "a", &bytes));
    ck_assert_int_eq(bytes, 100);
    ck_assert(!srv_refcache_is_loaded(c, "b", NULL));
    ck_assert(srv_refcache_is_loaded(c, "c", NULL));
    int n;
    int64_t total, budget;
    srv_refcache_stats(c, &n, &total, &budget);
    ck_assert_int_eq(n, 2);
    ck_assert_int_eq(total, 200);
    ck_assert_int_eq(budget, 250);
    ck_assert_int_eq(atomic_load(&f.frees), 1);
    srv_refcache_free(c);
    ck_assert_int_eq(atomic_load(&f.frees), 3);
}
END_TEST

START_TEST(held_references_stay)
{
    const char *dir = sx_test_tmpdir();
    fake f = {0};
    srv_refcache *c = srv_refcache_new(150, fake_load, fake_free, &f);
    sx_status st;
    const char *pa = make_ref(dir, "a", 100), *pb = make_ref(dir, "b", 100),
               *pbig = make_ref(dir, "big", 400);
    void *a = srv_refcache_acquire(c, "a", pa, &st);
    void *b = srv_refcache_acquire(c, "b", pb, &st);
    /* over budget, but both are held by running jobs */
    ck_assert(srv_refcache_is_loaded(c, "a", NULL) && srv_refcache_is_loaded(c, "b", NULL));
    srv_refcache_release(c, b); /* b is now the only one free to go */
    ck_assert(!srv_refcache_is_loaded(c, "b", NULL));
    ck_assert(srv_refcache_is_loaded(c, "a", NULL));
    srv_refcache_release(c, a); /* fits again: stays */
    ck_assert(srv_refcache_is_loaded(c, "a", NULL));
    /* a reference larger than the whole budget runs, then leaves */
    void *big = srv_refcache_acquire(c, "big", pbig, &st);
    ck_assert_ptr_nonnull(big);
    ck_assert(srv_refcache_is_loaded(c, "big", NULL));
    ck_assert(!srv_refcache_is_loaded(c, "a", NULL)); /* a was unloaded to make room */
    srv_refcache_release(c, big);
    ck_assert(!srv_refcache_is_loaded(c, "big", NULL));
    /* a failed load is reported and leaves nothing behind */
    sx_status_clear(&st);
    ck_assert_ptr_null(srv_refcache_acquire(c, "gone", "/nonexistent/ref", &st));
    ck_assert_int_eq(st.code, SX_ENOTFOUND);
    ck_assert(!srv_refcache_is_loaded(c, "gone", NULL));
    srv_refcache_free(c);
    ck_assert_int_eq(atomic_load(&f.loads), atomic_load(&f.frees));
}
END_TEST

typedef struct tctx {
    srv_refcache *c;
    const char *path;
    void *got;
} tctx;

static void *grab(void *arg)
{
    tctx *t = arg;
    sx_status st;
    t->got = srv_refcache_acquire(t->c, "shared", t->path, &st);
    return NULL;
}

START_TEST(concurrent_jobs_share_one_load)
{
    const char *dir = sx_test_tmpdir();
    fake f = {.slow_ms = 100};
    srv_refcache *c = srv_refcache_new(1000, fake_load, fake_free, &f);
    const char *p = make_ref(dir, "shared", 100);
    pthread_t th[8];
    tctx t[8];
    for (int i = 0; i < 8; i++) {
        t[i] = (tctx){c, p, NULL};
        pthread_create(&th[i], NULL, grab, &t[i]);
    }
    for (int i = 0; i < 8; i++) pthread_join(th[i], NULL);
    ck_assert_int_eq(atomic_load(&f.loads), 1);
    for (int i = 0; i < 8; i++) {
        ck_assert_ptr_nonnull(t[i].got);
        ck_assert_ptr_eq(t[i].got, t[0].got);
        srv_refcache_release(c, t[i].got);
    }
    ck_assert(srv_refcache_is_loaded(c, "shared", NULL));
    srv_refcache_free(c);
    ck_assert_int_eq(atomic_load(&f.frees), 1);
}
END_TEST

START_TEST(preload_stops_at_budget)
{
    const char *dir = sx_test_tmpdir();
    sx_status st;
    srv_registry *reg = srv_registry_open(dir, &st);
    ck_assert_msg(reg, "%s", st.msg);
    srv_db *db = srv_registry_get(reg, &st);
    const char *names[] = {"alpha", "beta", "gamma"};
    for (int i = 0; i < 3; i++) {
        make_ref(dir, names[i], 100);
        char rel[64];
        snprintf(rel, sizeof rel, "refs/%s", names[i]);
        srv_ref_rec rec = {.name = names[i], .path = rel, .summary = "{}"};
        ck_assert_int_eq(srv_ref_insert(db, &rec, &st), SX_OK);
    }
    fake f = {0};
    srv_refcache *c = srv_refcache_new(250, fake_load, fake_free, &f);
    ck_assert_int_eq(srv_refcache_preload(c, db, dir), 2);
    ck_assert(srv_refcache_is_loaded(c, "alpha", NULL));
    ck_assert(srv_refcache_is_loaded(c, "beta", NULL));
    ck_assert(!srv_refcache_is_loaded(c, "gamma", NULL));
    ck_assert_int_eq(atomic_load(&f.loads), 2); /* gamma was not loaded and thrown away */
    srv_refcache_free(c);
    srv_registry_put(reg, db);
    srv_registry_close(reg);
}
END_TEST

/* The job runner hands a job the cached object of its reference, loaded once for two jobs. */
typedef struct seen {
    const void *obj[2];
    char path[2][600];
    atomic_int n;
} seen;

static int record_run(void *user, const srv_job_run *run, const sx_progress *prog, sx_status *st)
{
    (void)prog;
    (void)st;
    seen *s = user;
    int k = atomic_fetch_add(&s->n, 1);
    if (k < 2) {
        s->obj[k] = run->reference_obj;
        snprintf(s->path[k], sizeof s->path[k], "%s", run->reference ? run->reference : "");
    }
    return SX_OK;
}

START_TEST(runner_passes_the_loaded_reference)
{
    const char *dir = sx_test_tmpdir();
    sx_status st;
    srv_registry *reg = srv_registry_open(dir, &st);
    ck_assert_msg(reg, "%s", st.msg);
    srv_db *db = srv_registry_get(reg, &st);
    srv_user u;
    ck_assert_int_eq(srv_user_ensure(db, "u", 0, &u, &st), SX_OK);
    srv_dataset_rec d = {.owner = u.id, .name = "q", .format = "h5ad", .path = "datasets/q",
                         .sha256 = "00", .size_bytes = 1, .n_obs = 1, .n_vars = 1};
    snprintf(d.id, sizeof d.id, "ds_q");
    ck_assert_int_eq(srv_dataset_insert(db, &d, &st), SX_OK);
    const char *refdir = make_ref(dir, "panc", 100);
    srv_ref_rec rec = {.name = "panc", .path = "refs/panc", .summary = "{}"};
    ck_assert_int_eq(srv_ref_insert(db, &rec, &st), SX_OK);
    fake f = {0};
    seen s;
    memset(&s, 0, sizeof s);
    srv_refcache *c = srv_refcache_new(1000, fake_load, fake_free, &f);
    srv_jobs_config jc = {.reg = reg, .data_dir = dir, .workers = 1, .threads_per_job = 1,
                          .fn = record_run, .fn_user = &s, .poll_s = 0.1, .refs = c};
    srv_jobs *jobs = srv_jobs_start(&jc, &st);
    ck_assert_msg(jobs, "%s", st.msg);
    ck_assert_ptr_eq(srv_jobs_refcache(jobs), c);
    const char *req = "{\"datasets\":[\"ds_q\"],\"reference\":\"panc\",\"options\":{}}";
    ck_assert_int_eq(srv_job_insert(db, "job_a", u.id, "project", req, &st), SX_OK);
    ck_assert_int_eq(srv_job_insert(db, "job_b", u.id, "project", req, &st), SX_OK);
    srv_jobs_notify(jobs);
    char state[16] = "";
    for (int i = 0; i < 500; i++) {
        srv_job_state(db, "job_b", &u, state, NULL, &st);
        if (!strcmp(state, "COMPLETE")) break;
        usleep(20000);
    }
    ck_assert_str_eq(state, "COMPLETE");
    srv_jobs_stop(jobs, 1);
    ck_assert_int_eq(atomic_load(&s.n), 2);
    ck_assert_ptr_nonnull(s.obj[0]);
    ck_assert_ptr_eq(s.obj[0], s.obj[1]);
    ck_assert_int_eq(atomic_load(&f.loads), 1);
    /* the object is the one loaded from the registered folder */
    ck_assert_str_eq(((obj *)s.obj[0])->path, s.path[0]);
    ck_assert_str_eq(s.path[0] + strlen(s.path[0]) - strlen("refs/panc"), "refs/panc");
    (void)refdir;
    ck_assert(srv_refcache_is_loaded(c, "panc", NULL)); /* kept for the next job */
    srv_refcache_free(c);
    srv_registry_put(reg, db);
    srv_registry_close(reg);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("server_refcache");
    TCase *tc = tcase_create("refcache");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, lru_within_budget);
    tcase_add_test(tc, held_references_stay);
    tcase_add_test(tc, concurrent_jobs_share_one_load);
    tcase_add_test(tc, preload_stops_at_budget);
    tcase_add_test(tc, runner_passes_the_loaded_reference);
    suite_add_tcase(s, tc);
    return sx_test_run(s);
}
