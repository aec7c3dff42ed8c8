/* srv_config — scalexd settings from defaults < config file < environment < flags.
 *
 * Every setting has one name used in all three places: flag --max-upload-bytes, config
 * file line `max_upload_bytes = 1000000` (or with dashes), environment
 * SCALEXD_MAX_UPLOAD_BYTES. The config file is --config FILE or $SCALEXD_CONFIG. */
#ifndef SRV_CONFIG_H
#define SRV_CONFIG_H

#include <stdint.h>

#include "sx_error.h"
#include "srv_exec.h"

typedef struct srv_config {
    char listen[256];        /* HOST:PORT */
    char host[200];
    int port;
    char data_dir[2048];
    char registry[1024];     /* "" = SQLite in the data dir, else a PostgreSQL URL */
    char instance[128];      /* name among instances sharing a registry ("" = HOST:PORT) */
    int workers;             /* 0 = automatic */
    int threads_per_job;     /* 0 = cores / workers */
    int http_threads;
    int http_max_connections;        /* open connections of all clients together */
    int http_max_connections_per_ip; /* open connections of one client address; 0 = no limit */
    double http_header_timeout_s;    /* request line + headers must arrive within (0 = off) */
    double http_body_timeout_s;      /* window over which a body must keep http_body_min_rate */
    int http_body_min_rate;          /* bytes/s a request body must average per window (0 = off) */
    double auth_cache_ttl_s; /* seconds a resolved bearer token is trusted (srv_auth); 0 = off */
    double job_cache_ttl_s;  /* seconds a GET /v1/jobs/{id} body may be reused (srv_respcache) */
    int job_nice;            /* added to job worker threads' nice value (srv_jobs); 0 = none */
    int64_t max_upload_bytes;
    int64_t max_json_bytes;
    char cors_origins[2048]; /* comma separated, "" = no CORS */
    int no_auth;
    int max_attempts;        /* runs of one job across restarts before SYSTEM_ERROR */
    int user_max_jobs;       /* unfinished jobs per user */
    int queue_cap;           /* QUEUED jobs of everyone */
    double drain_grace_s;
    int log_level;           /* SX_LOG_* */
    double max_wait_s;       /* cap of ?wait= */
    int64_t memory_budget;   /* bytes of loaded references (srv_refcache) */
    int reference_sample;    /* reference cells of a job's UMAP served by default (0 = all) */
    /* input size budget (sx_io_limits.h); 0 = the readers' defaults */
    int64_t max_cells, max_genes, max_nnz, max_inflate_bytes, max_line_bytes;
    double max_inflate_ratio;
    char web_dir[2048];      /* folder of the web page served at / ("" = automatic) */
    char publish_references[16]; /* "admins" (default) or "everyone": who may add to the catalog */
    char metrics_token[128];  /* "" = /metrics open; else it needs "Authorization: Bearer <this>" */
    int64_t user_storage_quota; /* bytes of datasets + results per user (0 = no quota) */
    char isolation[16];      /* "process": uploads and jobs in child processes; "thread": in-process */
    double validate_timeout_s; /* base wall-clock limit of an upload's validation child */
    int64_t validate_memory; /* address space of a validation child */
    double job_timeout_s;    /* wall-clock limit of a job's child (0 = none) */
    int64_t job_memory;      /* address space of a job's child */
    srv_exec_config exec;    /* executor and the executors' own settings (srv_exec.h) */
} srv_config;

void srv_config_defaults(srv_config *c);
/* Apply one setting by name (dashes or underscores); SX_EINVAL for an unknown name or a
 * bad value, with a message saying what is expected. */
int srv_config_set(srv_config *c, const char *name, const char *value, sx_status *st);
/* Config file, then environment, then argv[first..argc) flags (--name value, --name=value,
 * --no-auth). Unknown flags are errors. */
int srv_config_load(srv_config *c, int argc, char **argv, int first, sx_status *st);
/* Split listen into host/port; check that --no-auth is used only on loopback. */
int srv_config_check(srv_config *c, sx_status *st);
/* Is the host a loopback address (127.0.0.0/8, ::1, localhost)? */
int srv_host_is_loopback(const char *host);
/* Usage text of every setting. */
void srv_config_usage(void);

#endif
