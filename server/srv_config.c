#include "srv_config.h"

#include <ctype.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "sx_log.h"

typedef enum { K_STR, K_INT, K_I64, K_DBL, K_BOOL, K_LEVEL } kind;

typedef struct key {
    const char *name;
    kind k;
    size_t off;
    size_t size; /* strings */
    const char *help;
} key;

#define F(x) offsetof(srv_config, x)
static const key keys[] = {
    {"listen", K_STR, F(listen), sizeof(((srv_config *)0)->listen), "HOST:PORT to listen on (127.0.0.1:8080)"},
    {"data_dir", K_STR, F(data_dir), sizeof(((srv_config *)0)->data_dir), "registry, uploads, jobs, references (./scalexd-data)"},
    {"registry", K_STR, F(registry), sizeof(((srv_config *)0)->registry), "PostgreSQL URL postgresql://USER@HOST:PORT/DB for several instances sharing one data dir (none: SQLite in the data dir)"},
    {"instance", K_STR, F(instance), sizeof(((srv_config *)0)->instance), "this instance's name on a shared registry, stable across restarts (host:port)"},
    {"workers", K_INT, F(workers), 0, "concurrent jobs (0 = automatic)"},
    {"threads_per_job", K_INT, F(threads_per_job), 0, "compute threads per job; workers x threads <= cores (0 = automatic)"},
    {"http_threads", K_INT, F(http_threads), 0, "HTTP event-loop threads (4)"},
    {"http_max_connections", K_INT, F(http_max_connections), 0, "open HTTP connections of all clients together (1000; each is a file descriptor)"},
    {"http_max_connections_per_ip", K_INT, F(http_max_connections_per_ip), 0, "open HTTP connections of one client address; more are closed at once (64; 0 = no limit, e.g. behind a reverse proxy)"},
    {"http_header_timeout", K_DBL, F(http_header_timeout_s), 0, "seconds a client has to send a request's line and headers, counted from the connection's start or its previous answer, however it trickles them; also the idle time of a kept-alive connection (20; 0 = off)"},
    {"http_body_timeout", K_DBL, F(http_body_timeout_s), 0, "seconds over which a request body must average http_body_min_rate (20; 0 = off)"},
    {"http_body_min_rate", K_INT, F(http_body_min_rate), 0, "bytes per second a request body must keep up; a slower one is cut (500; 0 = off)"},
    {"auth_cache_ttl", K_DBL, F(auth_cache_ttl_s), 0, "seconds a bearer token stays trusted without re-reading the registry: a token revoked by another process is refused within this time (10; 0 = no cache)"},
    {"job_cache_ttl", K_DBL, F(job_cache_ttl_s), 0, "seconds a job's status may be answered from memory; changes made through this daemon show at once, others (a second daemon on a shared registry) within this time (1; 0 = off)"},
    {"job_nice", K_INT, F(job_nice), 0, "nice value added to job threads so training never starves the HTTP threads (10; 0..19)"},
    {"max_upload_bytes", K_I64, F(max_upload_bytes), 0, "largest accepted upload (4 GiB)"},
    {"max_json_bytes", K_I64, F(max_json_bytes), 0, "largest JSON request body (1 MiB)"},
    {"cors_origin", K_STR, F(cors_origins), sizeof(((srv_config *)0)->cors_origins), "allowed browser origins, comma separated"},
    {"no_auth", K_BOOL, F(no_auth), 0, "no bearer tokens (only allowed on a loopback address)"},
    {"max_attempts", K_INT, F(max_attempts), 0, "runs of a job across crashes before SYSTEM_ERROR (3)"},
    {"user_max_jobs", K_INT, F(user_max_jobs), 0, "unfinished jobs per user before 429 (16)"},
    {"queue_cap", K_INT, F(queue_cap), 0, "queued jobs of all users before 429 (256)"},
    {"drain_grace", K_DBL, F(drain_grace_s), 0, "seconds SIGTERM lets running jobs finish (30)"},
    {"log_level", K_LEVEL, F(log_level), 0, "debug | info | warn | error (info)"},
    {"max_wait", K_DBL, F(max_wait_s), 0, "longest ?wait= in seconds (600)"},
    {"memory_budget", K_I64, F(memory_budget), 0, "memory for references kept loaded; least recently used unloaded first (2G)"},
    {"reference_sample", K_INT, F(reference_sample), 0, "most reference cells a job's UMAP result serves by default, a uniform sample of the layout for the web overlay (?sample=0 gives them all; 0 here = no limit) (50000)"},
    {"publish_references", K_STR, F(publish_references), sizeof(((srv_config *)0)->publish_references), "who may add a reference to the shared catalog (and withdraw their own): admins | everyone (admins)"},
    {"metrics_token", K_STR, F(metrics_token), sizeof(((srv_config *)0)->metrics_token), "a secret that /metrics then requires as a bearer token (none: /metrics is open; keep it on a private network)"},
    {"user_storage_quota", K_I64, F(user_storage_quota), 0, "bytes each user may keep in datasets and job results; an upload past it gets 413, a job 507 (0 = no quota)"},
    {"isolation", K_STR, F(isolation), sizeof(((srv_config *)0)->isolation), "process: uploads are read and jobs run in child processes under limits, so a crafted file costs one request, never the service; thread: in the daemon (debugging and measurement only) (process)"},
    {"validate_timeout", K_DBL, F(validate_timeout_s), 0, "seconds an upload's validation may take, plus 1 s per 20 MB (30)"},
    {"validate_memory", K_I64, F(validate_memory), 0, "address space of an upload's validation process (4G)"},
    {"job_timeout", K_DBL, F(job_timeout_s), 0, "seconds a job may run before it is stopped (0 = no limit)"},
    {"job_memory", K_I64, F(job_memory), 0, "address space of a job's process; a job that needs more fails with a message (16G)"},
    {"max_cells", K_I64, F(max_cells), 0, "most cells an uploaded or job input may hold; more is refused with 413 (2000000)"},
    {"max_genes", K_I64, F(max_genes), 0, "most genes / features / peaks of an input (1000000)"},
    {"max_nnz", K_I64, F(max_nnz), 0, "most stored entries of an input's matrix (4000000000)"},
    {"max_inflate_ratio", K_DBL, F(max_inflate_ratio), 0, "bytes an input may decompress to (gzip text) or declare (HDF5 datasets) per byte of the file, plus 16 MiB (100)"},
    {"max_inflate_bytes", K_I64, F(max_inflate_bytes), 0, "absolute cap of those bytes for one input (64G)"},
    {"max_line_bytes", K_I64, F(max_line_bytes), 0, "longest line of a text input (64M)"},
    {"web_dir", K_STR, F(web_dir), sizeof(((srv_config *)0)->web_dir), "folder of the web page served at / (automatic: <prefix>/share/scalexd/web or the source tree)"},
};
#define N_KEYS (sizeof keys / sizeof keys[0])

void srv_config_defaults(srv_config *c)
{
    memset(c, 0, sizeof *c);
    snprintf(c->listen, sizeof c->listen, "127.0.0.1:8080");
    snprintf(c->data_dir, sizeof c->data_dir, "scalexd-data");
    /* event-loop threads (epoll), each serving many keep-alive connections; 2 and 4 measure
     * the same on 2 cores (bench/bench_daemon.sh), and handlers block on the registry (a
     * network round trip with PostgreSQL), so a few more than one per core */
    c->http_threads = 4;
    /* libmicrohttpd's FD_SETSIZE-era default; one client address gets a fraction, so one
     * slow client cannot take them all (issue 14: 1,005 trickling connections locked out
     * everyone) */
    c->http_max_connections = 1000;
    c->http_max_connections_per_ip = 64;
    /* Apache mod_reqtimeout's defaults: header=20, body=20,MinRate=500 */
    c->http_header_timeout_s = 20;
    c->http_body_timeout_s = 20;
    c->http_body_min_rate = 500;
    c->auth_cache_ttl_s = 10;
    c->job_cache_ttl_s = 1;
    c->job_nice = 10;
    c->max_upload_bytes = (int64_t)4 << 30;
    c->max_json_bytes = 1 << 20;
    c->max_attempts = 3;
    c->user_max_jobs = 16;
    c->queue_cap = 256;
    snprintf(c->isolation, sizeof c->isolation, "process");
    snprintf(c->publish_references, sizeof c->publish_references, "admins");
    c->validate_timeout_s = 30;
    c->validate_memory = (int64_t)4 << 30;
    c->job_memory = (int64_t)16 << 30;
    c->drain_grace_s = 30;
    c->log_level = SX_LOG_INFO;
    c->max_wait_s = 600;
    srv_exec_config_defaults(&c->exec);
    c->memory_budget = (int64_t)2 << 30;
    c->reference_sample = 50000;
}

static const key *find_key(const char *name)
{
    char norm[64];
    size_t i = 0;
    for (; name[i] && i + 1 < sizeof norm; i++) norm[i] = name[i] == '-' ? '_' : name[i];
    norm[i] = 0;
    if (!strcmp(norm, "cors_origins")) snprintf(norm, sizeof norm, "cors_origin");
    for (size_t k = 0; k < N_KEYS; k++)
        if (!strcmp(keys[k].name, norm)) return &keys[k];
    return NULL;
}

int srv_config_set(srv_config *c, const char *name, const char *value, sx_status *st)
{
    const key *k = find_key(name);
    if (!k) { /* the executors' settings (srv_exec_table.c) */
        int rc = srv_exec_config_set(&c->exec, name, value, st);
        if (rc != SX_ENOTFOUND) return rc;
        return sx_status_set(st, SX_EINVAL, "unknown setting '%s': scalexd --help lists them", name);
    }
    char *p = (char *)c + k->off;
    char *end = NULL;
    errno = 0;
    switch (k->k) {
    case K_STR:
        if (!strcmp(k->name, "cors_origin") && *p && *value) {
            /* repeated --cors-origin flags accumulate */
            size_t n = strlen(p);
            snprintf(p + n, k->size - n, ",%s", value);
        } else if (snprintf(p, k->size, "%s", value) >= (int)k->size) {
            return sx_status_set(st, SX_EINVAL, "%s: value too long", k->name);
        }
        return SX_OK;
    case K_INT: {
        long v = strtol(value, &end, 10);
        if (errno || end == value || *end || v < 0 || v > 1000000)
            return sx_status_set(st, SX_EINVAL, "%s: expected a non-negative integer, got '%s'",
                                 k->name, value);
        *(int *)p = (int)v;
        return SX_OK;
    }
    case K_I64: {
        long long v = strtoll(value, &end, 10);
        if (errno || end == value || v <= 0)
            return sx_status_set(st, SX_EINVAL, "%s: expected a positive byte count, got '%s'",
                                 k->name, value);
        if (*end == 'k' || *end == 'K') v <<= 10, end++;
        else if (*end == 'M') v <<= 20, end++;
        else if (*end == 'G') v <<= 30, end++;
        if (*end) return sx_status_set(st, SX_EINVAL, "%s: expected a byte count like 1000000 or "
                                       "512M, got '%s'", k->name, value);
        *(int64_t *)p = v;
        return SX_OK;
    }
    case K_DBL: {
        double v = strtod(value, &end);
        if (errno || end == value || *end || v < 0)
            return sx_status_set(st, SX_EINVAL, "%s: expected a number of seconds, got '%s'",
                                 k->name, value);
        *(double *)p = v;
        return SX_OK;
    }
    case K_BOOL:
        if (!strcmp(value, "1") || !strcasecmp(value, "true") || !strcasecmp(value, "yes"))
            *(int *)p = 1;
        else if (!strcmp(value, "0") || !strcasecmp(value, "false") || !strcasecmp(value, "no"))
            *(int *)p = 0;
        else
            return sx_status_set(st, SX_EINVAL, "%s: expected true or false, got '%s'", k->name, value);
        return SX_OK;
    case K_LEVEL: {
        static const char *const lv[4] = {"debug", "info", "warn", "error"};
        for (int i = 0; i < 4; i++)
            if (!strcasecmp(value, lv[i])) {
                *(int *)p = i;
                return SX_OK;
            }
        return sx_status_set(st, SX_EINVAL, "log_level: expected debug, info, warn or error, got '%s'",
                             value);
    }
    }
    return SX_EINVAL;
}

static char *trim(char *s)
{
    while (isspace((unsigned char)*s)) s++;
    char *e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1])) *--e = 0;
    return s;
}

static int load_file(srv_config *c, const char *path, sx_status *st)
{
    FILE *f = fopen(path, "r");
    if (!f) return sx_status_set(st, SX_EIO, "cannot open config file %s: %s", path, strerror(errno));
    char line[4096];
    int lineno = 0, rc = SX_OK;
    while (fgets(line, sizeof line, f)) {
        lineno++;
        char *s = trim(line);
        if (!*s || *s == '#') continue;
        char *eq = strchr(s, '=');
        if (!eq) {
            rc = sx_status_set(st, SX_EINVAL, "%s:%d: expected 'name = value'", path, lineno);
            break;
        }
        *eq = 0;
        char *v = trim(eq + 1);
        size_t n = strlen(v);
        if (n >= 2 && (v[0] == '"' || v[0] == '\'') && v[n - 1] == v[0]) {
            v[n - 1] = 0;
            v++;
        }
        if ((rc = srv_config_set(c, trim(s), v, st))) {
            sx_status_prefix(st, "%s:%d: ", path, lineno);
            break;
        }
    }
    fclose(f);
    return rc;
}

/* SCALEXD_NAME, when set */
static int env_apply(srv_config *c, const char *name, sx_status *st)
{
    char env[64] = "SCALEXD_";
    for (size_t i = 0; name[i] && i < 50; i++)
        env[8 + i] = (char)toupper((unsigned char)name[i]), env[9 + i] = 0;
    const char *v = getenv(env);
    if (v && *v && srv_config_set(c, name, v, st)) return sx_status_prefix(st, "environment %s: ", env);
    return SX_OK;
}

int srv_config_load(srv_config *c, int argc, char **argv, int first, sx_status *st)
{
    const char *file = getenv("SCALEXD_CONFIG");
    for (int i = first; i < argc; i++) {
        if (!strcmp(argv[i], "--config") && i + 1 < argc) file = argv[i + 1];
        else if (!strncmp(argv[i], "--config=", 9)) file = argv[i] + 9;
    }
    int rc;
    if (file && *file && (rc = load_file(c, file, st))) return rc;
    for (size_t k = 0; k < N_KEYS; k++)
        if ((rc = env_apply(c, keys[k].name, st))) return rc;
    const srv_exec_key *xk;
    for (int k = 0; (xk = srv_exec_key_at(k)) != NULL; k++)
        if ((rc = env_apply(c, xk->name, st))) return rc;
    for (int i = first; i < argc; i++) {
        const char *a = argv[i];
        if (strncmp(a, "--", 2))
            return sx_status_set(st, SX_EINVAL, "unexpected argument '%s': settings are --name value", a);
        a += 2;
        if (!strcmp(a, "config")) {
            i++;
            continue;
        }
        if (!strncmp(a, "config=", 7)) continue;
        char name[64];
        const char *eq = strchr(a, '=');
        const char *val;
        if (eq) {
            snprintf(name, sizeof name, "%.*s", (int)(eq - a), a);
            val = eq + 1;
        } else {
            snprintf(name, sizeof name, "%s", a);
            const key *k = find_key(name);
            if (k && k->k == K_BOOL) {
                val = "true";
            } else if (i + 1 < argc) {
                val = argv[++i];
            } else {
                return sx_status_set(st, SX_EINVAL, "--%s needs a value", name);
            }
        }
        if ((rc = srv_config_set(c, name, val, st))) return rc;
    }
    return SX_OK;
}

int srv_host_is_loopback(const char *host)
{
    return !strncmp(host, "127.", 4) || !strcmp(host, "::1") || !strcmp(host, "[::1]") ||
           !strcmp(host, "localhost");
}

int srv_config_check(srv_config *c, sx_status *st)
{
    const char *colon = strrchr(c->listen, ':');
    if (!colon || colon == c->listen)
        return sx_status_set(st, SX_EINVAL, "--listen '%s': expected HOST:PORT, e.g. 127.0.0.1:8080",
                             c->listen);
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (*end || port < 0 || port > 65535)
        return sx_status_set(st, SX_EINVAL, "--listen '%s': the port must be 0..65535", c->listen);
    c->port = (int)port;
    snprintf(c->host, sizeof c->host, "%.*s", (int)(colon - c->listen), c->listen);
    if (c->host[0] == '[') { /* [::1]:8080 */
        size_t n = strlen(c->host);
        if (c->host[n - 1] == ']') {
            memmove(c->host, c->host + 1, n - 2);
            c->host[n - 2] = 0;
        }
    }
    if (c->no_auth && !srv_host_is_loopback(c->host))
        return sx_status_set(st, SX_EINVAL, "--no-auth is only allowed when listening on a loopback "
                             "address (127.0.0.1 or ::1), not '%s': create tokens with `scalexd "
                             "token create` instead", c->host);
    if (!c->data_dir[0]) return sx_status_set(st, SX_EINVAL, "--data-dir must not be empty");
    if (c->http_threads < 1) c->http_threads = 1;
    if (c->http_max_connections < 1)
        return sx_status_set(st, SX_EINVAL, "http_max_connections must be at least 1 (1000 is "
                             "the default)");
    if (c->job_nice > 19)
        return sx_status_set(st, SX_EINVAL, "job_nice is %d; nice values go up to 19 (10 is the "
                             "default, 0 runs jobs at the daemon's own priority)", c->job_nice);
    if (strcmp(c->publish_references, "admins") && strcmp(c->publish_references, "everyone"))
        return sx_status_set(st, SX_EINVAL, "publish_references is '%s'; use admins (the default) "
                             "or everyone", c->publish_references);
    if (c->user_storage_quota < 0)
        return sx_status_set(st, SX_EINVAL, "user_storage_quota must be >= 0 (0: no quota)");
    if (strcmp(c->isolation, "process") && strcmp(c->isolation, "thread"))
        return sx_status_set(st, SX_EINVAL, "isolation is '%s'; use process (the default) or "
                             "thread", c->isolation);
    if (c->validate_timeout_s <= 0 || c->validate_memory < (64 << 20) || c->job_memory < (256 << 20))
        return sx_status_set(st, SX_EINVAL, "validate_timeout must be > 0, validate_memory at least "
                             "64M and job_memory at least 256M");
    return SX_OK;
}

static void usage_line(const char *name, const char *help)
{
    char flag[64];
    snprintf(flag, sizeof flag, "--%s", name);
    for (char *p = flag + 2; *p; p++)
        if (*p == '_') *p = '-';
    fprintf(stderr, "  %-22s %s\n", flag, help);
}

void srv_config_usage(void)
{
    fprintf(stderr,
            "usage: scalexd [--listen HOST:PORT] [--data-dir DIR] [settings...]\n"
            "       scalexd token create --data-dir DIR --user NAME [--admin]\n"
            "       scalexd token list --data-dir DIR [--user NAME]\n"
            "       scalexd token revoke --data-dir DIR (ID | TOKEN | --user NAME)\n"
            "       scalexd reference add DIR --name NAME --data-dir DIR [--description TEXT]\n\n"
            "settings (flag --name, config file `name = value` via --config FILE or\n"
            "$SCALEXD_CONFIG, environment SCALEXD_NAME):\n");
    for (size_t k = 0; k < N_KEYS; k++) usage_line(keys[k].name, keys[k].help);
    const srv_exec_key *xk;
    char help[1024];
    for (int k = 0; (xk = srv_exec_key_at(k)) != NULL; k++)
        usage_line(xk->name, srv_exec_key_help(xk, help, sizeof help));
}
