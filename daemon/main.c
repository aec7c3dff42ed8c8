/* scalexd — the SCALEX daemon: `scalexd [settings]` serves in the foreground;
 * `scalexd token create|list|revoke` and `scalexd reference add` manage the registry (also while a
 * daemon runs: SQLite WAL + busy timeout).
 *
 * Start-up order matters for crash safety: the registry is migrated and jobs the previous
 * process left running are reconciled before any worker or HTTP thread exists. Shutdown
 * (SIGTERM/SIGINT) drains: stop accepting, let running jobs finish within the grace period,
 * re-queue the rest, answer waiting clients, then exit. */
#include <dirent.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "api_server.h"
#include "engine.h"
#include "sandbox.h"
#include "srv_config.h"
#include "srv_exec.h"
#include "srv_jobs.h"
#include "srv_layout.h"
#include "srv_log.h"
#include "srv_pool.h"
#include "srv_refs.h"
#include "srv_refcache.h"
#include "srv_registry.h"
#include "srv_util.h"
#include "sx_log.h"
#include "sx_pipeline_scalex.h"

static int die(const sx_status *st)
{
    fprintf(stderr, "scalexd: %s\n", st->msg);
    return st->code == SX_EINVAL ? 2 : 1;
}

/* tiny flag reader for the subcommands: --name VALUE */
static const char *flag(int argc, char **argv, const char *name)
{
    for (int i = 0; i < argc; i++)
        if (!strcmp(argv[i], name)) return i + 1 < argc ? argv[i + 1] : NULL;
    return NULL;
}

static int has(int argc, char **argv, const char *name)
{
    for (int i = 0; i < argc; i++)
        if (!strcmp(argv[i], name)) return 1;
    return 0;
}

static int data_dir_of(int argc, char **argv, char *out, size_t n, sx_status *st)
{
    const char *d = flag(argc, argv, "--data-dir");
    if (!d) d = getenv("SCALEXD_DATA_DIR");
    if (!d) return sx_status_set(st, SX_EINVAL, "--data-dir DIR is required");
    snprintf(out, n, "%s", d);
    return SX_OK;
}

/* --registry URL or $SCALEXD_REGISTRY: the PostgreSQL registry ("" = SQLite in the data dir) */
static const char *registry_of(int argc, char **argv)
{
    const char *u = flag(argc, argv, "--registry");
    return u ? u : getenv("SCALEXD_REGISTRY");
}

static int cmd_token(int argc, char **argv)
{
    sx_status st;
    sx_status_clear(&st);
    const char *sub = argc >= 1 ? argv[0] : "";
    if (strcmp(sub, "create") && strcmp(sub, "list") && strcmp(sub, "revoke")) {
        fprintf(stderr,
                "usage: scalexd token create --data-dir DIR [--registry URL] --user NAME [--admin]\n"
                "       scalexd token list   --data-dir DIR [--registry URL] [--user NAME]\n"
                "       scalexd token revoke --data-dir DIR [--registry URL] (TOKEN | ID) [--user NAME]\n"
                "       scalexd token revoke --data-dir DIR [--registry URL] --user NAME   (all of NAME's)\n");
        return 2;
    }
    char dir[4096];
    const char *user = flag(argc, argv, "--user");
    if (data_dir_of(argc, argv, dir, sizeof dir, &st)) return die(&st);
    /* revoke's positional argument: the first word that is neither a flag nor a flag's value */
    const char *what = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strncmp(argv[i], "--", 2)) {
            if (strcmp(argv[i], "--admin") && i + 1 < argc) i++;
            continue;
        }
        what = argv[i];
        break;
    }
    if (!strcmp(sub, "create") && !user) {
        fprintf(stderr, "scalexd: --user NAME is required\n");
        return 2;
    }
    if (!strcmp(sub, "revoke") && !what && !user) {
        fprintf(stderr, "scalexd: token revoke needs a token, a token id (scalexd token list) "
                        "or --user NAME\n");
        return 2;
    }
    srv_registry *reg = srv_registry_open_url(dir, registry_of(argc, argv), &st);
    if (!reg) return die(&st);
    srv_db *db = srv_registry_get(reg, &st);
    int rc = db ? SX_OK : st.code;
    if (rc == SX_OK && !strcmp(sub, "create")) {
        char tok[80];
        rc = srv_token_create(db, user, has(argc, argv, "--admin"), tok, &st);
        if (rc == SX_OK) printf("%s\n", tok);
    } else if (rc == SX_OK && !strcmp(sub, "list")) {
        json_t *a = srv_token_list(db, user, &st);
        rc = a ? SX_OK : st.code;
        size_t k;
        json_t *t;
        if (a) printf("%-12s  %-24s  %-5s  %s\n", "ID", "USER", "ADMIN", "CREATED");
        json_array_foreach(a, k, t)
            printf("%-12s  %-24s  %-5s  %s\n", json_string_value(json_object_get(t, "id")),
                   json_string_value(json_object_get(t, "user")),
                   json_is_true(json_object_get(t, "admin")) ? "yes" : "no",
                   json_string_value(json_object_get(t, "created")));
        json_decref(a);
    } else if (rc == SX_OK) {
        int n = 0;
        rc = srv_token_revoke(db, what, user, &n, &st);
        if (rc == SX_OK)
            printf("revoked %d token%s; a running daemon refuses %s within its auth_cache_ttl "
                   "(10 s by default)\n", n, n == 1 ? "" : "s", n == 1 ? "it" : "them");
    }
    srv_registry_put(reg, db);
    srv_registry_close(reg);
    return rc ? die(&st) : 0;
}

/* `reference add` on a folder SCALEX wrote: converted by core/pipeline (server/ sees no
 * numerics), SCALEX's own files kept as the reference's provenance */
static int scalex_convert(const char *dir, const char *out_h5, srv_ref_import_info *info,
                          sx_status *st)
{
    sx_scalex_info in;
    int rc = sx_reference_write_scalex(dir, out_h5, &in, st);
    if (rc) return rc;
    info->n_cells = in.n_cells;
    info->n_genes = in.n_genes;
    snprintf(info->version, sizeof info->version, "%s", in.version);
    return SX_OK;
}

static const char *const scalex_files[] = {"checkpoint/model.pt", "checkpoint/config.pt",
                                           "adata.h5ad", "log.txt", NULL};
static const srv_ref_import scalex_import = {
    "scalex", "a folder SCALEX wrote (checkpoint/model.pt, checkpoint/config.pt, adata.h5ad)",
    sx_reference_is_scalex, scalex_convert, scalex_files};

static int cmd_reference(int argc, char **argv)
{
    sx_status st;
    sx_status_clear(&st);
    if (argc < 2 || strcmp(argv[0], "add")) {
        fprintf(stderr, "usage: scalexd reference add DIR --name NAME --data-dir DIR "
                        "[--registry URL] [--description TEXT] [--species S] [--tissue T] "
                        "[--labels COL,COL]\n  DIR: a `scalex integrate` output folder, or a "
                        "folder SCALEX wrote (SCALEX(..., outdir=DIR))\n");
        return 2;
    }
    char dir[4096];
    const char *name = flag(argc, argv, "--name");
    if (data_dir_of(argc, argv, dir, sizeof dir, &st)) return die(&st);
    if (!name) {
        fprintf(stderr, "scalexd: --name NAME is required\n");
        return 2;
    }
    char src[4096];
    if (!realpath(argv[1], src)) {
        fprintf(stderr, "scalexd: %s: no such folder\n", argv[1]);
        return 2;
    }
    char *cols = NULL;
    const char *labels = flag(argc, argv, "--labels");
    if (labels) {
        json_t *a = json_array();
        char *copy = strdup(labels), *save = NULL;
        for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save))
            json_array_append_new(a, json_string(t));
        free(copy);
        cols = json_dumps(a, JSON_COMPACT);
        json_decref(a);
    }
    srv_registry *reg = srv_registry_open_url(dir, registry_of(argc, argv), &st);
    if (!reg) return die(&st);
    srv_db *db = srv_registry_get(reg, &st);
    srv_ref_add a = {.name = name, .src_dir = src, .description = flag(argc, argv, "--description"),
                     .species = flag(argc, argv, "--species"), .tissue = flag(argc, argv, "--tissue"),
                     .label_columns_json = cols, .import = &scalex_import};
    int rc = db ? srv_refs_add(db, dir, &a, &st) : st.code;
    /* the map, index and calibrations now, so the daemon's first load only maps them (a
     * 1M-cell reference: 10 s here instead of before the daemon answers); a failure leaves
     * that to the daemon's load */
    char *rel = rc == SX_OK ? srv_ref_path(db, name, &st) : NULL;
    char abs[4400];
    sx_status ps;
    sx_status_clear(&ps);
    if (rel && srv_layout_abs(dir, rel, abs, sizeof abs, &ps) == SX_OK &&
        sandbox_ref_prepare(abs, &ps) != SX_OK)
        fprintf(stderr, "scalexd: %s registered; its map is left to the daemon's first load "
                        "(%s)\n", name, ps.msg);
    free(rel);
    srv_registry_put(reg, db);
    srv_registry_close(reg);
    free(cols);
    if (rc) return die(&st);
    printf("%s\n", name);
    return 0;
}

/* leftovers of uploads that were streaming when the last process died. With a shared
 * (PostgreSQL) registry other instances may be streaming into the same spool right now:
 * only entries untouched for a day are leftovers then. */
static void clean_spool(const char *data_dir, int shared)
{
    char dir[4200];
    sx_status st;
    if (srv_layout_spool_dir(data_dir, dir, sizeof dir, &st)) return;
    if (!shared) {
        srv_rmtree(dir);
    } else {
        DIR *d = opendir(dir);
        struct dirent *e;
        time_t old = time(NULL) - 24 * 3600;
        while (d && (e = readdir(d))) {
            char p[4500];
            struct stat sb;
            if (e->d_name[0] == '.') continue;
            snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
            if (!lstat(p, &sb) && sb.st_mtime < old) srv_rmtree(p); /* files too */
        }
        if (d) closedir(d);
    }
    srv_mkdirs(dir, &st);
}

/* What serve() starts, in start-up order; serve_stop() ends it. Lives in serve()'s frame:
 * the engine, the sandbox and the API keep pointers into it. */
typedef struct {
    srv_config cfg;
    sigset_t set; /* the signals sigwait takes */
    engine eng_state;
    srv_engine eng;
    sandbox sb;
    srv_registry *reg;
    int shared; /* a PostgreSQL registry other instances share */
    srv_exec *exec;
    srv_refcache *refs;
    srv_jobs *jobs;
    srv_pool *pool;
    api_server *api;
} daemon_run;

/* Settings, logging, signals and the engine (wrapped in the sandbox unless isolation=thread). */
static int setup(daemon_run *d, int argc, char **argv, sx_status *st)
{
    srv_config_defaults(&d->cfg);
    if (srv_config_load(&d->cfg, argc, argv, 1, st) || srv_config_check(&d->cfg, st)) return 1;
    srv_log_install(d->cfg.log_level);

    /* signals are taken by sigwait in this thread only: block them before any thread exists */
    sigemptyset(&d->set);
    sigaddset(&d->set, SIGTERM);
    sigaddset(&d->set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &d->set, NULL);
    signal(SIGPIPE, SIG_IGN);

    engine_init(&d->eng_state, &d->eng);
    engine_configure(&d->eng_state, &d->cfg);
    /* uploads are read and jobs run in child processes (sandbox.h): the daemon never opens a
     * user's file itself */
    if (!strcmp(d->cfg.isolation, "process")) {
        if (sandbox_wrap_validate(&d->sb, &d->cfg, &d->eng, st)) return 1;
        if (sandbox_wrap_run(&d->sb, &d->cfg, &d->eng, st)) return 1;
    } else {
        SX_WARN("isolation=thread: uploads are read and jobs run inside the daemon; one crafted "
                "file can stop the service (use only to debug or measure)");
    }
    if (!d->eng_state.hdf5_threadsafe)
        SX_WARN("this HDF5 is not thread-safe: concurrent jobs and uploads may crash; run with "
                "--workers 1");
    return SX_OK;
}

/* Workers and threads per job the settings left open (0), within the cores when jobs run here. */
static void size_workers(srv_config *cfg)
{
    int cores = srv_ncpu();
    /* a remote executor's worker thread only waits on the cluster: many, and no core cap */
    int remote = !srv_exec_config_local_cores(&cfg->exec);
    if (cfg->workers <= 0) cfg->workers = remote ? 32 : cores >= 4 ? 2 : 1;
    if (cfg->threads_per_job <= 0) cfg->threads_per_job = cores / cfg->workers;
    if (cfg->threads_per_job < 1) cfg->threads_per_job = 1;
    if (!remote && cfg->workers * cfg->threads_per_job > cores) {
        int t = cores / cfg->workers;
        SX_WARN("%d workers x %d threads exceed the %d cores: using %d thread(s) per job",
                cfg->workers, cfg->threads_per_job, cores, t < 1 ? 1 : t);
        cfg->threads_per_job = t < 1 ? 1 : t;
    }
}

/* The registry, and this process's instance name in it. */
static int open_registry(daemon_run *d, sx_status *st)
{
    d->reg = srv_registry_open_url(d->cfg.data_dir, d->cfg.registry, st);
    if (!d->reg) return 1;
    d->shared = srv_registry_kind(d->reg) == SRV_DB_POSTGRES;
    if (d->cfg.instance[0]) {
        srv_registry_set_instance(d->reg, d->cfg.instance);
    } else { /* HOST:PORT: stable across restarts, distinct for instances on one host */
        char host[100] = "scalexd", inst[128];
        gethostname(host, sizeof host - 1);
        snprintf(inst, sizeof inst, "%s:%d", host, d->cfg.port);
        srv_registry_set_instance(d->reg, inst);
    }
    return SX_OK;
}

/* references the jobs will want, loaded before the first request (within the budget) */
static void preload_refs(daemon_run *d, srv_db *db)
{
    d->refs = srv_refcache_new(d->cfg.memory_budget, d->eng.ref_load, d->eng.ref_free,
                               d->eng.user);
    int nl = d->refs ? srv_refcache_preload(d->refs, db, d->cfg.data_dir) : 0;
    int nloaded = 0;
    int64_t bytes = 0;
    srv_refcache_stats(d->refs, &nloaded, &bytes, NULL);
    json_t *f = json_object();
    json_object_set_new(f, "loaded", json_integer(nl));
    json_object_set_new(f, "bytes", json_integer(bytes));
    json_object_set_new(f, "budget", json_integer(d->cfg.memory_budget));
    srv_log_event(SX_LOG_INFO, "references preloaded", f);
}

/* The executor, and the jobs the previous process left: re-attached at a remote executor,
 * else re-queued or failed; then the references and the upload spool. */
static int reconcile(daemon_run *d, sx_status *st)
{
    srv_db *db = srv_registry_get(d->reg, st);
    int nq = 0, nf = 0;
    /* jobs still at a remote executor are re-attached, not re-run: before reconciling */
    d->exec = db ? srv_exec_new(&d->cfg.exec, d->reg, d->eng.run, d->eng.user, NULL,
                                &d->eng_state, st) : NULL;
    if (d->exec) srv_exec_set_limits(d->exec, &d->eng_state.limits);
    int nr = d->exec ? srv_exec_prepare_reattach(d->exec, db, st) : -1;
    if (nr > 0) SX_WARN("%d job(s) still at %s: re-attaching", nr, srv_exec_name(d->exec));
    if (!db || nr < 0 || srv_job_reconcile(db, d->cfg.max_attempts, &nq, &nf, st) < 0) {
        srv_registry_put(d->reg, db);
        return 1;
    }
    if (d->eng.ref_load && srv_exec_config_in_process(&d->cfg.exec)) preload_refs(d, db);
    srv_registry_put(d->reg, db);
    if (nq || nf) SX_WARN("reconciled jobs of the previous run: %d re-queued, %d failed", nq, nf);
    clean_spool(d->cfg.data_dir, d->shared);
    return SX_OK;
}

/* The job workers (running jobs through the executor, local or remote) and the thread pool
 * that answers waiting clients. */
static int start_workers(daemon_run *d, sx_status *st)
{
    srv_jobs_config jc = {.reg = d->reg, .data_dir = d->cfg.data_dir, .workers = d->cfg.workers,
                          .threads_per_job = d->cfg.threads_per_job,
                          .fn = srv_exec_job_fn, .fn_user = d->exec, /* local or remote */
                          .refs = d->refs, .nice = d->cfg.job_nice};
    d->jobs = srv_jobs_start(&jc, st);
    if (!d->jobs) return 1;
    d->pool = srv_pool_start(2, st);
    return d->pool ? SX_OK : 1;
}

/* The HTTP API, then the port file and the "listening" event clients and tests wait for. */
static int start_api(daemon_run *d, sx_status *st)
{
    const srv_config *cfg = &d->cfg;
    d->api = api_server_start(cfg, d->reg, d->jobs, d->pool, &d->eng, st);
    if (!d->api) return 1;
    char portfile[4200], port[16];
    srv_layout_port_file(cfg->data_dir, portfile, sizeof portfile, st);
    snprintf(port, sizeof port, "%d\n", api_server_port(d->api));
    srv_write_file_atomic(portfile, port, strlen(port), NULL);
    json_t *f = json_object();
    json_object_set_new(f, "host", json_string(cfg->host));
    json_object_set_new(f, "port", json_integer(api_server_port(d->api)));
    json_object_set_new(f, "data_dir", json_string(cfg->data_dir));
    json_object_set_new(f, "workers", json_integer(cfg->workers));
    json_object_set_new(f, "executor", json_string(cfg->exec.executor));
    json_object_set_new(f, "registry", json_string(d->shared ? "postgresql" : "sqlite"));
    json_object_set_new(f, "instance", json_string(srv_registry_instance(d->reg)));
    json_object_set_new(f, "threads_per_job", json_integer(cfg->threads_per_job));
    json_object_set_new(f, "auth", json_boolean(!cfg->no_auth));
    json_object_set_new(f, "version", json_string(SX_VERSION));
    srv_log_event(SX_LOG_INFO, "listening", f);
    return SX_OK;
}

/* Wait for SIGTERM or SIGINT, then stop accepting connections. */
static void wait_signal(daemon_run *d)
{
    int sig = 0;
    sigwait(&d->set, &sig);
    json_t *f = json_object();
    json_object_set_new(f, "signal", json_integer(sig));
    json_object_set_new(f, "grace_seconds", json_real(d->cfg.drain_grace_s));
    srv_log_event(SX_LOG_INFO, "draining", f);
    api_server_quiesce(d->api);
}

/* Drain and stop what started, in the order that lets running jobs finish and waiting
 * clients get their answers; rc is serve()'s exit code. */
static int serve_stop(daemon_run *d, int rc)
{
    srv_jobs_stop(d->jobs, d->cfg.drain_grace_s); /* answers waiters through the pool */
    sandbox_stop(&d->sb); /* the pre-started job runners, killed and reaped */
    srv_exec_free(d->exec);
    srv_pool_stop(d->pool);
    api_server_stop(d->api);
    srv_refcache_free(d->refs); /* after the workers: nothing holds a reference now */
    srv_registry_close(d->reg);
    if (rc == 0) srv_log_event(SX_LOG_INFO, "stopped", NULL);
    return rc;
}

static int serve(int argc, char **argv)
{
    daemon_run d;
    memset(&d, 0, sizeof d);
    sx_status st;
    sx_status_clear(&st);
    if (setup(&d, argc, argv, &st)) return die(&st);
    size_workers(&d.cfg);
    if (open_registry(&d, &st)) return die(&st);
    if (reconcile(&d, &st) || sandbox_start(&d.sb, &d.cfg, &st) || start_workers(&d, &st) ||
        start_api(&d, &st)) {
        die(&st);
        return serve_stop(&d, 1);
    }
    wait_signal(&d);
    return serve_stop(&d, 0);
}

/* `scalexd __validate FILE`: the child side of upload validation (sandbox.h) */
static int cmd_validate(int argc, char **argv)
{
    engine eng_state;
    srv_engine eng;
    engine_init(&eng_state, &eng);
    /* the daemon's size budget, handed over as `--max_cells N ...` after the file */
    for (int i = 3; i + 1 < argc; i += 2) {
        sx_status st;
        if (strncmp(argv[i], "--", 2) || sx_io_limits_set(&eng_state.limits, argv[i] + 2,
                                                           argv[i + 1], &st)) {
            fprintf(stderr, "scalexd __validate: bad limit '%s'\n", argv[i]);
            return 2;
        }
    }
    return sandbox_validate_main(&eng, argc, argv);
}

int main(int argc, char **argv)
{
    if (argc > 1 && !strcmp(argv[1], "__validate")) return cmd_validate(argc, argv);
    if (argc > 1 && !strcmp(argv[1], "token")) return cmd_token(argc - 2, argv + 2);
    if (argc > 1 && !strcmp(argv[1], "reference")) return cmd_reference(argc - 2, argv + 2);
    if (has(argc, argv, "--help") || has(argc, argv, "-h")) {
        srv_config_usage();
        return 0;
    }
    if (has(argc, argv, "--version")) {
        printf("scalexd %s\n", SX_VERSION);
        return 0;
    }
    return serve(argc, argv);
}
