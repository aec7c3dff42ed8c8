/* scalex run-job JOBDIR — run one job directory, as a cluster executor does (sbatch of the
 * CLI on a shared filesystem). Reads JOBDIR/job.json:
 *   {"type": "integrate"|"project"|"label_transfer", "inputs": ["file", ...],
 *    "reference": "path" | null, "options": {"name": value, ...}, "threads": n}
 * (option values: strings, numbers, booleans, or arrays of strings for list options), writes
 * the results into JOBDIR, keeps JOBDIR/status.json ({"state", "exit_code", "error"}) and
 * JOBDIR/progress.json ({"stage", "fraction", "message"}) current, and stops with state
 * "canceled" when a file JOBDIR/cancel appears. Exit code as the other commands.
 * The JSON reader below handles exactly that subset (no jansson in the CLI/core). */
#include <ctype.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "cmd_pipeline.h"
#include "sx_alloc.h"
#include "sx_cli.h"
#include "sx_log.h"

/* ---- minimal JSON ---- */
typedef struct jp {
    const char *s;
    const char *err;
} jp;

static void ws(jp *p)
{
    while (*p->s && isspace((unsigned char)*p->s)) p->s++;
}

/* Parse a string literal into a new buffer (escapes \" \\ \/ \n \t \r \b \f; \uXXXX < 0x80). */
static char *jstr(jp *p)
{
    ws(p);
    if (*p->s != '"') {
        p->err = "expected a string";
        return NULL;
    }
    p->s++;
    size_t cap = strlen(p->s) + 1, n = 0;
    char *o = sx_malloc(cap);
    if (!o) return NULL;
    while (*p->s && *p->s != '"') {
        char c = *p->s++;
        if (c == '\\') {
            char e = *p->s++;
            switch (e) {
            case 'n': c = '\n'; break;
            case 't': c = '\t'; break;
            case 'r': c = '\r'; break;
            case 'b': c = '\b'; break;
            case 'f': c = '\f'; break;
            case 'u': {
                unsigned v = 0;
                if (sscanf(p->s, "%4x", &v) != 1 || v >= 0x80) {
                    p->err = "unsupported \\u escape";
                    sx_free(o);
                    return NULL;
                }
                p->s += 4;
                c = (char)v;
                break;
            }
            case '\0': p->err = "unterminated string"; sx_free(o); return NULL;
            default: c = e;
            }
        }
        o[n++] = c;
    }
    if (*p->s != '"') {
        p->err = "unterminated string";
        sx_free(o);
        return NULL;
    }
    p->s++;
    o[n] = 0;
    return o;
}

/* A scalar as text: string, number, true/false, or null (returns NULL with *is_null). */
static char *jscalar(jp *p, int *is_null)
{
    ws(p);
    *is_null = 0;
    if (*p->s == '"') return jstr(p);
    if (strncmp(p->s, "null", 4) == 0) {
        p->s += 4;
        *is_null = 1;
        return NULL;
    }
    if (strncmp(p->s, "true", 4) == 0) {
        p->s += 4;
        return sx_strdup("true");
    }
    if (strncmp(p->s, "false", 5) == 0) {
        p->s += 5;
        return sx_strdup("false");
    }
    const char *b = p->s;
    while (*p->s && (isdigit((unsigned char)*p->s) || strchr("+-.eE", *p->s))) p->s++;
    if (p->s == b) {
        p->err = "expected a value";
        return NULL;
    }
    return sx_strndup(b, (size_t)(p->s - b));
}

static int expect(jp *p, char c)
{
    ws(p);
    if (*p->s != c) {
        static char msg[32];
        snprintf(msg, sizeof msg, "expected '%c'", c);
        p->err = msg;
        return -1;
    }
    p->s++;
    return 0;
}

typedef struct job_file {
    char *type, *reference;
    char **inputs;
    int n_inputs;
    int threads;
} job_file;

/* Array of strings. */
static int jstrings(jp *p, char ***out, int *n)
{
    if (expect(p, '[')) return -1;
    ws(p);
    if (*p->s == ']') {
        p->s++;
        return 0;
    }
    for (;;) {
        char *s = jstr(p);
        if (!s) return -1;
        char **nv = sx_reallocarray(*out, (size_t)*n + 1, sizeof *nv);
        if (!nv) {
            sx_free(s);
            return -1;
        }
        *out = nv;
        (*out)[(*n)++] = s;
        ws(p);
        if (*p->s == ',') {
            p->s++;
            continue;
        }
        return expect(p, ']');
    }
}

static int parse_job(const char *text, job_file *j, sx_pipeline_opts *po, sx_status *st)
{
    jp p = {text, NULL};
    if (expect(&p, '{')) goto bad;
    ws(&p);
    if (*p.s == '}') goto done;
    for (;;) {
        char *key = jstr(&p);
        if (!key || expect(&p, ':')) {
            sx_free(key);
            goto bad;
        }
        int isnull = 0;
        if (strcmp(key, "type") == 0) {
            j->type = jscalar(&p, &isnull);
        } else if (strcmp(key, "reference") == 0) {
            j->reference = jscalar(&p, &isnull);
        } else if (strcmp(key, "threads") == 0) {
            char *v = jscalar(&p, &isnull);
            j->threads = v ? atoi(v) : 0;
            sx_free(v);
        } else if (strcmp(key, "inputs") == 0) {
            if (jstrings(&p, &j->inputs, &j->n_inputs)) {
                sx_free(key);
                goto bad;
            }
        } else if (strcmp(key, "options") == 0) {
            if (expect(&p, '{')) {
                sx_free(key);
                goto bad;
            }
            ws(&p);
            if (*p.s == '}') p.s++;
            else
                for (;;) {
                    char *name = jstr(&p);
                    if (!name || expect(&p, ':')) {
                        sx_free(name);
                        sx_free(key);
                        goto bad;
                    }
                    ws(&p);
                    int rc = SX_OK;
                    if (*p.s == '[') {
                        char **vals = NULL;
                        int nv = 0;
                        if (jstrings(&p, &vals, &nv)) {
                            sx_free(name);
                            sx_free(key);
                            goto bad;
                        }
                        for (int k = 0; k < nv; k++) {
                            if (rc == SX_OK) rc = sx_pipeline_opts_set(po, name, vals[k], st);
                            sx_free(vals[k]);
                        }
                        sx_free(vals);
                    } else {
                        char *v = jscalar(&p, &isnull);
                        if (!v && !isnull) {
                            sx_free(name);
                            sx_free(key);
                            goto bad;
                        }
                        if (v) rc = sx_pipeline_opts_set(po, name, v, st);
                        sx_free(v);
                    }
                    sx_free(name);
                    if (rc != SX_OK) {
                        sx_free(key);
                        return rc;
                    }
                    ws(&p);
                    if (*p.s == ',') {
                        p.s++;
                        continue;
                    }
                    if (expect(&p, '}')) {
                        sx_free(key);
                        goto bad;
                    }
                    break;
                }
        } else {
            sx_status_set(st, SX_EINVAL, "job.json: unknown field '%s'", key);
            sx_free(key);
            return SX_EINVAL;
        }
        sx_free(key);
        if (p.err) goto bad;
        ws(&p);
        if (*p.s == ',') {
            p.s++;
            continue;
        }
        if (expect(&p, '}')) goto bad;
        break;
    }
done:
    return SX_OK;
bad:
    return sx_status_set(st, SX_EINVAL, "job.json: %s near offset %ld",
                         p.err ? p.err : "syntax error", (long)(p.s - text));
}

/* ---- status / progress files ---- */

typedef struct rj {
    const char *dir;
    atomic_int cancel;
    double last;
    sx_cli_progress cli;
} rj;

static void write_json_file(const char *dir, const char *name, const char *text)
{
    char path[4096], tmp[4200];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f) return;
    fputs(text, f);
    if (fclose(f) == 0) rename(tmp, path);
    else remove(tmp);
}

static void json_escape(char *out, size_t cap, const char *s)
{
    size_t n = 0;
    for (; s && *s && n + 7 < cap; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            out[n++] = '\\';
            out[n++] = (char)c;
        } else if (c < 0x20) {
            n += (size_t)snprintf(out + n, cap - n, "\\u%04x", c);
        } else {
            out[n++] = (char)c;
        }
    }
    out[n] = 0;
}

static void status_file(const char *dir, const char *state, int exit_code, int code,
                        const char *msg)
{
    char esc[2400], text[3000];
    json_escape(esc, sizeof esc, msg ? msg : "");
    if (code == SX_OK)
        snprintf(text, sizeof text, "{\"state\": \"%s\", \"exit_code\": %d, \"error\": null}\n",
                 state, exit_code);
    else
        snprintf(text, sizeof text,
                 "{\"state\": \"%s\", \"exit_code\": %d, \"error\": {\"code\": \"%s\", "
                 "\"message\": \"%s\"}}\n", state, exit_code, sx_errname(code), esc);
    write_json_file(dir, "status.json", text);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void rj_progress(void *user, const char *stage, double frac, const char *msg)
{
    rj *r = user;
    sx_cli_progress_fn(&r->cli, stage, frac, msg);
    double t = now_s();
    if (t - r->last < 1.0 && frac != 0) return;
    r->last = t;
    char esc[1200], text[1600], path[4096];
    json_escape(esc, sizeof esc, msg ? msg : "");
    snprintf(text, sizeof text, "{\"stage\": \"%s\", \"fraction\": %.4f, \"message\": \"%s\"}\n",
             stage ? stage : "", frac, esc);
    write_json_file(r->dir, "progress.json", text);
    snprintf(path, sizeof path, "%s/cancel", r->dir);
    struct stat sb;
    if (stat(path, &sb) == 0) atomic_store(&r->cancel, 1);
}

SX_CMD(run_job)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        FILE *to = argc < 2 ? stderr : stdout;
        fprintf(to, "usage: scalex run-job JOBDIR\nRun the job described by JOBDIR/job.json "
                    "(type, inputs, reference, options, threads); results, status.json and "
                    "progress.json are written into JOBDIR; create JOBDIR/cancel to stop it.\n");
        return argc < 2 ? 2 : 0;
    }
    const char *dir = argv[1];
    sx_status st;
    sx_status_clear(&st);
    job_file j;
    memset(&j, 0, sizeof j);
    sx_pipeline_opts *po = sx_pipeline_opts_new();
    char *text = NULL;
    int rc = SX_OK, exit_code;
    char path[4096];
    snprintf(path, sizeof path, "%s/job.json", dir);
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "scalex run-job: cannot read %s\n", path);
        sx_pipeline_opts_free(po);
        return 3;
    }
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    text = sx_malloc((size_t)(len > 0 ? len : 0) + 1);
    if (!text || !po || fread(text, 1, (size_t)len, f) != (size_t)len) {
        fclose(f);
        rc = sx_status_set(&st, SX_EIO, "cannot read %s", path);
        goto done;
    }
    fclose(f);
    text[len] = 0;
    if ((rc = parse_job(text, &j, po, &st)) != SX_OK) goto done;
    sx_job_type type = sx_job_type_parse(j.type);
    if (!type) {
        rc = sx_status_set(&st, SX_EINVAL, "job.json: unknown type '%s' (integrate, project, "
                           "label_transfer)", j.type ? j.type : "(none)");
        goto done;
    }
    rj r;
    memset(&r, 0, sizeof r);
    r.dir = dir;
    atomic_init(&r.cancel, 0);
    sx_cli_progress_init(&r.cli);
    status_file(dir, "running", 0, SX_OK, NULL);
    sx_log_set_sink(sx_cli_log_sink, &r.cli, SX_LOG_INFO);
    sx_progress prog = {.fn = rj_progress, .user = &r, .cancel = &r.cancel};
    sx_job_spec js = {.type = type, .inputs = (const char *const *)j.inputs,
                      .n_inputs = j.n_inputs, .reference = j.reference, .outdir = dir,
                      .opts = po, .threads = j.threads};
    rc = sx_pipeline_run(&js, &prog, &st);
    sx_log_set_sink(NULL, NULL, SX_LOG_WARN);
done:
    exit_code = sx_cli_exit_code(rc);
    status_file(dir, rc == SX_OK ? "succeeded" : rc == SX_ECANCELED ? "canceled" : "failed",
                exit_code, rc, st.msg);
    if (rc != SX_OK) fprintf(stderr, "scalex run-job: error (%s): %s\n", sx_errname(rc), st.msg);
    for (int k = 0; k < j.n_inputs; k++) sx_free(j.inputs[k]);
    sx_free(j.inputs);
    sx_free(j.type);
    sx_free(j.reference);
    sx_free(text);
    sx_pipeline_opts_free(po);
    return exit_code;
}
