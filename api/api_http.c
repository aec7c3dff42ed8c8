/* libmicrohttpd glue: request contexts, auth, CORS, body streaming, async resume, logging.
 *
 * Life of a request: the first call of the access handler matches the route, checks the
 * token and the declared size (so an unauthenticated or oversized upload is refused before
 * a byte is stored); body calls append to a bounded buffer (JSON) or stream to a spool file
 * while hashing (uploads); the last call runs the handler. A handler that must wait
 * (readers, jobs) suspends the connection; a pool thread fills r->resp and resumes it, and
 * the access handler then sends what is ready. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "api.h"
#include "srv_layout.h"
#include "api_edge.h"
#include "srv_auth.h"
#include "srv_jobs.h"
#include "srv_respcache.h"
#include "srv_log.h"
#include "srv_util.h"
#include "sx_log.h"

const char *api_arg(api_req *r, const char *name)
{
    return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, name);
}

const char *api_header(api_req *r, const char *name)
{
    return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

srv_db *api_db(api_req *r, api_resp *o)
{
    sx_status st;
    srv_db *db = srv_registry_get(r->srv->reg, &st);
    if (!db) api_problem(o, 503, "unavailable", "the registry cannot be opened (%s): retry later",
                         st.msg);
    return db;
}

void api_db_put(api_req *r, srv_db *db) { srv_registry_put(r->srv->reg, db); }

int api_page(api_req *r, api_resp *o, int def, int max, int *size, int64_t *offset)
{
    const char *ps = api_arg(r, "page_size"), *pt = api_arg(r, "page_token");
    char *end;
    *size = def;
    *offset = 0;
    if (ps) {
        long v = strtol(ps, &end, 10);
        if (*end || end == ps || v < 1 || v > max) {
            return api_refuse(o, 400, "invalid-parameter", "page_size must be an integer from 1 "
                              "to %d, got '%s'", max, ps);
        }
        *size = (int)v;
    }
    if (pt && *pt) {
        long long v = strtoll(pt, &end, 10);
        if (*end || end == pt || v < 0) {
            return api_refuse(o, 400, "invalid-parameter", "page_token '%s' is not one this "
                              "server gave out: pass next_page_token from the previous page", pt);
        }
        *offset = v;
    }
    return 0;
}

void api_next_token(json_t *o, int more, int64_t offset, int size)
{
    if (more) {
        char t[32];
        snprintf(t, sizeof t, "%lld", (long long)(offset + size));
        json_object_set_new(o, "next_page_token", json_string(t));
    } else {
        json_object_set_new(o, "next_page_token", json_null());
    }
}

/* The request's Origin when this server allows it, else NULL. */
static const char *cors_origin(api_server *s, api_req *r)
{
    const char *origin = api_header(r, "Origin");
    for (int i = 0; origin && i < s->n_cors; i++)
        if (!strcmp(s->cors[i], origin) || !strcmp(s->cors[i], "*")) return origin;
    return NULL;
}

#define API_CORS_EXPOSE "Location, ETag, Retry-After, X-Request-Id"

static void add_cors(api_server *s, api_req *r, struct MHD_Response *resp)
{
    const char *origin = cors_origin(s, r);
    if (!origin) return;
    MHD_add_response_header(resp, "Access-Control-Allow-Origin", origin);
    MHD_add_response_header(resp, "Vary", "Origin");
    MHD_add_response_header(resp, "Access-Control-Expose-Headers", API_CORS_EXPOSE);
}

/* Count the answer and write its access log line; frees o. */
static void log_access(api_req *r, api_resp *o)
{
    int cls = o->status / 100;
    if (cls >= 1 && cls <= 5) atomic_fetch_add(&r->srv->requests[cls], 1);
    int level = o->status >= 500 ? SX_LOG_WARN : SX_LOG_INFO;
    if (level < sx_log_level()) { /* the access line is not wanted: do not build it */
        api_resp_free(o);
        return;
    }
    json_t *f = json_object();
    json_object_set_new(f, "request_id", json_string(r->rid));
    json_object_set_new(f, "method", json_string(r->method));
    json_object_set_new(f, "path", json_string(r->path));
    json_object_set_new(f, "status", json_integer(o->status));
    json_object_set_new(f, "ms", json_real((srv_mono_s() - r->t0) * 1e3));
    if (r->user.name[0]) json_object_set_new(f, "user", json_string(r->user.name));
    if (r->job_id[0]) json_object_set_new(f, "job", json_string(r->job_id));
    srv_log_event(level, "request", f);
    api_resp_free(o);
}

static enum MHD_Result send_resp(api_req *r, api_resp *o)
{
    struct MHD_Response *resp;
    if (o->fd >= 0) {
        resp = MHD_create_response_from_fd64((uint64_t)o->fd_len, o->fd);
        o->fd = -1; /* MHD closes it */
    } else {
        resp = MHD_create_response_from_buffer(o->len, o->body, MHD_RESPMEM_MUST_FREE);
        o->body = NULL;
    }
    if (!resp) return MHD_NO;
    if (o->ctype) MHD_add_response_header(resp, "Content-Type", o->ctype);
    if (o->location[0]) MHD_add_response_header(resp, "Location", o->location);
    if (o->etag[0]) MHD_add_response_header(resp, "ETag", o->etag);
    if (o->disposition[0]) MHD_add_response_header(resp, "Content-Disposition", o->disposition);
    if (o->retry_after > 0) {
        char ra[16];
        snprintf(ra, sizeof ra, "%d", o->retry_after);
        MHD_add_response_header(resp, "Retry-After", ra);
    }
    if (o->status == 401) MHD_add_response_header(resp, "WWW-Authenticate", "Bearer realm=\"scalexd\"");
    MHD_add_response_header(resp, "X-Request-Id", r->rid);
    MHD_add_response_header(resp, "Cache-Control", "no-store");
    add_cors(r->srv, r, resp);
    enum MHD_Result ret = MHD_queue_response(r->conn, (unsigned)o->status, resp);
    MHD_destroy_response(resp);
    api_edge_phase(r->conn, API_EDGE_BUSY);
    log_access(r, o);
    return ret;
}

/* Close and remove what the request spooled (renamed away when the upload was kept; a folder
 * for an mtx upload). */
static void drop_spool(api_req *r)
{
    if (r->spool_fd >= 0) close(r->spool_fd);
    r->spool_fd = -1;
    if (r->pp) MHD_destroy_post_processor(r->pp);
    r->pp = NULL;
    if (r->part_fd >= 0) close(r->part_fd);
    r->part_fd = -1;
    if (r->spool_path[0]) srv_rmtree(r->spool_path);
    if (r->spool_dir[0]) srv_rmtree(r->spool_dir);
    r->spool_path[0] = r->spool_dir[0] = 0;
}

/* Answer a problem while the body is still arriving, and close. libmicrohttpd 0.9.75 queues
 * a response only before the first body byte or after the last (MHD_queue_response answers
 * MHD_NO in between), so an over-limit chunked body would be read to its end (issue 14:
 * 13 GB) before its 413. The answer is written to the socket here, on the connection's own
 * thread while nothing else is being sent on it, then the write side is shut (the client
 * sees the end of the answer). The rest of the body is dropped for EDGE_LINGER (api_edge)
 * before the close, since closing with unread bytes resets the connection, and a reset can
 * discard the answer before the client reads it. Frees o. */
static void answer_mid_body(api_req *r, api_resp *o)
{
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(r->conn,
                                                                 MHD_CONNECTION_INFO_CONNECTION_FD);
    const char *origin = cors_origin(r->srv, r);
    char head[1024];
    int n = snprintf(head, sizeof head, "HTTP/1.1 %d %s\r\nContent-Type: %s\r\n"
                     "Content-Length: %zu\r\nConnection: close\r\nCache-Control: no-store\r\n"
                     "X-Request-Id: %s\r\n", o->status, api_status_title(o->status),
                     o->ctype ? o->ctype : "application/problem+json", o->len, r->rid);
    if (o->retry_after > 0)
        n += snprintf(head + n, sizeof head - (size_t)n, "Retry-After: %d\r\n", o->retry_after);
    if (origin && strlen(origin) < 300)
        n += snprintf(head + n, sizeof head - (size_t)n, "Access-Control-Allow-Origin: %s\r\n"
                      "Vary: Origin\r\nAccess-Control-Expose-Headers: " API_CORS_EXPOSE "\r\n",
                      origin);
    n += snprintf(head + n, sizeof head - (size_t)n, "\r\n");
    const char *part[2] = {head, o->body ? o->body : ""};
    size_t len[2] = {(size_t)n, o->body ? o->len : 0};
    for (int i = 0; ci && i < 2; i++)
        for (size_t w = 0; w < len[i];) {
            ssize_t k = send(ci->connect_fd, part[i] + w, len[i] - w, MSG_NOSIGNAL);
            if (k > 0) {
                w += (size_t)k;
                continue;
            }
            struct pollfd pf = {.fd = ci->connect_fd, .events = POLLOUT};
            /* the socket is non-blocking; a send buffer that stays full for a second means
             * a client that does not read: give up on the answer */
            if (k < 0 && (errno == EINTR || ((errno == EAGAIN || errno == EWOULDBLOCK) &&
                                            poll(&pf, 1, 1000) == 1)))
                continue;
            i = 2;
            break;
        }
    if (ci) shutdown(ci->connect_fd, SHUT_WR);
    drop_spool(r); /* now, not after the linger: a full disk gets its space back at once */
    r->resp_ready = 3;
    api_edge_phase(r->conn, API_EDGE_LINGER);
    log_access(r, o);
}

void api_async_done(api_req *r)
{
    r->resp_ready = 1;
    MHD_resume_connection(r->conn);
}

static int authenticate(api_req *r, api_resp *o)
{
    api_server *s = r->srv;
    if (s->cfg->no_auth) {
        r->user = s->local_user;
        return 0;
    }
    const char *h = api_header(r, "Authorization");
    if (!h || strncasecmp(h, "Bearer ", 7)) {
        return api_refuse(o, 401, "unauthorized", "this route needs a bearer token: send "
                          "'Authorization: Bearer TOKEN' (create one with `scalexd token create "
                          "--data-dir DIR --user NAME`)");
    }
    const char *tok = h + 7;
    while (*tok == ' ') tok++;
    sx_status st;
    sx_status_clear(&st);
    int rc = srv_auth_check(s->auth, tok, &r->user, &st);
    if (rc == SX_ENOTFOUND) {
        return api_refuse(o, 401, "unauthorized", "the bearer token is not known to this server: "
                          "check it, or create one with `scalexd token create`");
    }
    if (rc) {
        api_problem_sx(o, &st);
        return API_REFUSED;
    }
    return 0;
}

static int preflight(api_req *r, api_resp *o)
{
    /* CORS preflight: no auth (browsers send none); headers only for allowed origins */
    api_resp_init(o);
    o->status = 204;
    const char *origin = api_header(r, "Origin");
    for (int i = 0; origin && i < r->srv->n_cors; i++)
        if (!strcmp(r->srv->cors[i], origin) || !strcmp(r->srv->cors[i], "*")) return 1;
    return 0;
}

static enum MHD_Result send_preflight(api_req *r, int allowed)
{
    struct MHD_Response *resp = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    if (!resp) return MHD_NO;
    if (allowed) {
        MHD_add_response_header(resp, "Access-Control-Allow-Origin", api_header(r, "Origin"));
        MHD_add_response_header(resp, "Vary", "Origin");
        MHD_add_response_header(resp, "Access-Control-Allow-Methods",
                                "GET, HEAD, POST, DELETE, OPTIONS");
        MHD_add_response_header(resp, "Access-Control-Allow-Headers",
                                "Authorization, Content-Type, Accept, If-None-Match");
        MHD_add_response_header(resp, "Access-Control-Max-Age", "600");
    }
    enum MHD_Result ret = MHD_queue_response(r->conn, 204, resp);
    MHD_destroy_response(resp);
    api_edge_phase(r->conn, API_EDGE_BUSY);
    atomic_fetch_add(&r->srv->requests[2], 1);
    return ret;
}

/* ---- multipart/form-data ----
 * libmicrohttpd's post processor splits the body; every file part is written to
 * spool/<rid>.d/<its base name> as it arrives (never whole in memory) and hashed in arrival
 * order, so the sha256 of a one-file upload is that file's. One file becomes a plain upload;
 * three files must be an mtx folder (matrix.mtx, features.tsv or genes.tsv, barcodes.tsv,
 * each optionally .gz) and are validated and stored as a folder. */
static void mp_fail(api_req *r, const char *msg)
{
    if (!r->mp_err[0]) snprintf(r->mp_err, sizeof r->mp_err, "%s", msg);
}

/* too_large: 1 over the size limit, 2 an I/O error storing the body, 3 no space left */
static void store_failed(api_req *r, int err)
{
    if (!r->too_large) r->too_large = err == ENOSPC || err == EDQUOT ? 3 : 2;
}

static enum MHD_Result post_iter(void *cls, enum MHD_ValueKind kind, const char *key,
                                 const char *filename, const char *content_type,
                                 const char *transfer_encoding, const char *data, uint64_t off,
                                 size_t size)
{
    api_req *r = cls;
    (void)kind;
    (void)content_type;
    (void)transfer_encoding;
    if (r->mp_err[0] || r->too_large) return MHD_NO;
    if (!filename) { /* a plain field: only "name" means something */
        if (key && !strcmp(key, "name")) {
            size_t have = strlen(r->form_name);
            if (memchr(data, 0, size)) {
                mp_fail(r, "the name field holds a NUL byte: names are UTF-8 text");
                return MHD_NO;
            }
            if (have + size >= sizeof r->form_name) {
                mp_fail(r, "the name field is longer than 200 characters");
                return MHD_NO;
            }
            memcpy(r->form_name + have, data, size);
            r->form_name[have + size] = 0;
        }
        return MHD_YES;
    }
    const char *k = key ? key : "";
    int new_part = r->part_fd < 0 || strcmp(r->part_file, filename) || strcmp(r->part_key, k) ||
                   (off == 0 && r->part_written > 0);
    if (new_part) {
        if (r->part_fd >= 0 && close(r->part_fd) != 0) store_failed(r, errno);
        r->part_fd = -1;
        /* the base name only: a browser may send a path */
        const char *base = filename;
        for (const char *p = filename; *p; p++)
            if (*p == '/' || *p == '\\') base = p + 1;
        if (!srv_name_ok(base) || base[0] == '.' || strlen(base) >= sizeof r->parts[0]) {
            mp_fail(r, "a file part's name must be 1-64 letters, digits, '.', '_' or '-' "
                       "(like matrix.mtx.gz)");
            return MHD_NO;
        }
        if (r->n_parts == sx_format_max_members()) {
            char m[256], folders[200];
            snprintf(m, sizeof m, "at most %d files per upload (%s)", sx_format_max_members(),
                     sx_format_folders_text(folders, sizeof folders));
            mp_fail(r, m);
            return MHD_NO;
        }
        for (int i = 0; i < r->n_parts; i++)
            if (!strcmp(r->parts[i], base)) {
                mp_fail(r, "two file parts have the same name");
                return MHD_NO;
            }
        char path[4500];
        snprintf(path, sizeof path, "%s/%s", r->spool_dir, base);
        r->part_fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
        if (r->part_fd < 0) {
            store_failed(r, errno);
            return MHD_NO;
        }
        snprintf(r->parts[r->n_parts++], sizeof r->parts[0], "%s", base);
        snprintf(r->part_file, sizeof r->part_file, "%s", filename);
        snprintf(r->part_key, sizeof r->part_key, "%s", k);
        r->part_written = 0;
    }
    sx_sha256_update(&r->sha, data, size);
    for (size_t w = 0; w < size;) {
        ssize_t n = write(r->part_fd, data + w, size - w);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            store_failed(r, errno);
            return MHD_NO;
        }
        w += (size_t)n;
    }
    r->part_written += (int64_t)size;
    r->part_bytes += (int64_t)size;
    return MHD_YES;
}

static int begin_multipart(api_req *r, api_resp *o)
{
    sx_status st;
    if (srv_layout_spool_parts(r->srv->cfg->data_dir, r->rid, r->spool_dir, sizeof r->spool_dir,
                               &st) != SX_OK ||
        srv_mkdirs(r->spool_dir, &st) != SX_OK) {
        int err = errno;
        r->spool_dir[0] = 0;
        return api_edge_store_problem(o, err), 1;
    }
    r->pp = MHD_create_post_processor(r->conn, 64 * 1024, post_iter, r);
    if (!r->pp)
        return api_problem(o, 400, "bad-multipart", "the multipart/form-data body has no boundary "
                           "in its Content-Type: let the client build it (curl -F file=@FILE)"), 1;
    sx_sha256_init(&r->sha);
    return 0;
}

/* End of a multipart body: 0 and spool_path set to the file or folder, or a 4xx problem. */
static int end_multipart(api_req *r, api_resp *o)
{
    /* MHD_NO: the parser stopped inside a part, i.e. the body ended before its closing
     * boundary ("--BOUNDARY--"); the file part seen so far is truncated (issue 14) */
    int complete = MHD_destroy_post_processor(r->pp) == MHD_YES;
    r->pp = NULL;
    if (r->part_fd >= 0 && close(r->part_fd) != 0) store_failed(r, errno);
    r->part_fd = -1;
    if (r->too_large) return 0; /* 413 / 507 below */
    if (r->mp_err[0])
        return api_refuse(o, 400, "bad-multipart", "the multipart/form-data body was refused: "
                           "%s", r->mp_err);
    if (!complete)
        return api_refuse(o, 400, "bad-multipart", "the multipart/form-data body ended before "
                          "its closing boundary (--BOUNDARY--): the upload is incomplete; send "
                          "it again (curl -F file=@FILE builds a complete body)");
    if (!api_edge_text_ok(r->form_name, strlen(r->form_name)))
        return api_refuse(o, 400, "invalid-parameter", "the name field must be UTF-8 text");
    if (r->n_parts == 0)
        return api_refuse(o, 400, "bad-multipart", "the multipart/form-data body holds no file "
                           "part (or is malformed): send curl -F file=@FILE, or an mtx folder as "
                           "-F m=@matrix.mtx.gz -F f=@features.tsv.gz -F b=@barcodes.tsv.gz");
    r->received = r->part_bytes; /* what is stored, not the multipart framing */
    if (r->n_parts == 1) {
        char from[4500];
        snprintf(from, sizeof from, "%s/%s", r->spool_dir, r->parts[0]);
        sx_status st;
        if (srv_layout_spool_file(r->srv->cfg->data_dir, r->rid, r->spool_path,
                                  sizeof r->spool_path, &st) != SX_OK ||
            rename(from, r->spool_path) != 0) {
            r->spool_path[0] = 0;
            api_edge_store_problem(o, errno);
            return API_REFUSED;
        }
        srv_rmtree(r->spool_dir);
        r->spool_dir[0] = 0;
        return 0;
    }
    const char *names[SX_FORMAT_MAX_MEMBERS];
    char sent[SX_FORMAT_MAX_MEMBERS * 130] = "";
    for (int i = 0; i < r->n_parts; i++) {
        names[i] = r->parts[i];
        snprintf(sent + strlen(sent), sizeof sent - strlen(sent), "%s%s", i ? ", " : "",
                 r->parts[i]);
    }
    sx_format folder;
    sx_status fst;
    if (sx_format_folder_match(names, r->n_parts, &folder, &fst) != SX_OK)
        return api_refuse(o, 400, "bad-multipart", "%d files were sent (%s): %s", r->n_parts,
                           sent, fst.msg);
    snprintf(r->spool_path, sizeof r->spool_path, "%s", r->spool_dir);
    r->spool_dir[0] = 0;
    r->is_dir = 1;
    return 0;
}

/* First call: route, auth, size checks, open the spool. 0 = go on, else a response is ready. */
static int begin(api_req *r, api_resp *o)
{
    api_server *s = r->srv;
    int known = 0;
    /* HEAD is GET without the body: libmicrohttpd sends the headers only */
    r->route = api_route_match(strcmp(r->method, "HEAD") ? r->method : "GET", r->path, r->params,
                               &known);
    if (!r->route) {
        if (known)
            return api_problem(o, 405, "method-not-allowed", "%s is not allowed on %s: see "
                               "/v1/openapi.json for the methods of each path", r->method, r->path),
                   1;
        return api_problem(o, 404, "not-found", "no route %s %s: see /v1/openapi.json for the "
                           "API", r->method, r->path), 1;
    }
    if (r->route->auth && authenticate(r, o)) return 1;
    if (api_edge_check_request(r, o)) return 1;
    const char *cl = api_header(r, "Content-Length");
    long long declared = cl ? strtoll(cl, NULL, 10) : -1;
    if (r->route->body == API_BODY_JSON) {
        if (declared > s->cfg->max_json_bytes)
            return api_problem(o, 413, "too-large", "the JSON body is %lld bytes; this server "
                               "accepts at most %lld: send a smaller request, or ask the operator "
                               "to raise max_json_bytes (--max-json-bytes)", declared,
                               (long long)s->cfg->max_json_bytes), 1;
    } else if (r->route->body == API_BODY_UPLOAD) {
        if (atomic_load(&s->draining))
            return api_problem(o, 503, "unavailable", "the server is shutting down: retry on "
                               "another instance or in a minute"), (o->retry_after = 30), 1;
        if (declared > s->cfg->max_upload_bytes) {
            atomic_fetch_add(&s->uploads_rejected, 1);
            return api_problem(o, 413, "too-large", "the upload is %lld bytes; this server accepts "
                               "at most %lld (--max-upload-bytes): subset the data or ask the "
                               "operator", declared, (long long)s->cfg->max_upload_bytes), 1;
        }
        const char *ct = api_header(r, "Content-Type");
        if (ct && !strncasecmp(ct, "multipart/form-data", 19)) return begin_multipart(r, o);
        if (ct && !strncasecmp(ct, "multipart/", 10))
            return api_problem(o, 415, "unsupported-media-type", "only multipart/form-data is "
                               "accepted among multipart bodies (curl -F file=@FILE), or the "
                               "raw file with Content-Type: application/octet-stream"), 1;
        if (ct && !strncasecmp(ct, "application/x-www-form-urlencoded", 33))
            return api_problem(o, 415, "unsupported-media-type", "a form-encoded body mangles "
                               "binary files: send the raw file with Content-Type: "
                               "application/octet-stream (curl --data-binary @FILE -H "
                               "'Content-Type: application/octet-stream')"), 1;
        sx_status st;
        char dir[4200];
        if (srv_layout_spool_dir(s->cfg->data_dir, dir, sizeof dir, &st) ||
            srv_layout_spool_file(s->cfg->data_dir, r->rid, r->spool_path, sizeof r->spool_path,
                                  &st))
            return api_problem_sx(o, &st), 1;
        r->spool_fd = open(r->spool_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
        if (r->spool_fd < 0 && errno == ENOENT && srv_mkdirs(dir, &st) == SX_OK)
            r->spool_fd = open(r->spool_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
        if (r->spool_fd < 0) {
            int err = errno;
            r->spool_path[0] = 0;
            return api_edge_store_problem(o, err), 1;
        }
        sx_sha256_init(&r->sha);
    }
    return 0;
}

static void body_chunk(api_req *r, const char *data, size_t n)
{
    api_server *s = r->srv;
    if (r->too_large) return; /* discard the rest; the answer is 413 */
    api_edge_body(r->conn, n);
    if (r->route->body == API_BODY_JSON) {
        if ((int64_t)(r->body_len + n) > s->cfg->max_json_bytes) {
            r->too_large = 1;
            return;
        }
        if (r->body_len + n + 1 > r->body_cap) {
            size_t cap = (r->body_len + n + 1) * 2;
            char *nb = realloc(r->body, cap);
            if (!nb) {
                r->too_large = 1;
                return;
            }
            r->body = nb;
            r->body_cap = cap;
        }
        memcpy(r->body + r->body_len, data, n);
        r->body_len += n;
        r->body[r->body_len] = 0;
    } else if (r->route->body == API_BODY_UPLOAD && r->pp) {
        if (r->received + (int64_t)n > s->cfg->max_upload_bytes) {
            r->too_large = 1;
            return;
        }
        r->received += (int64_t)n;
        atomic_fetch_add(&s->upload_bytes, (long long)n);
        if (MHD_post_process(r->pp, data, n) != MHD_YES && !r->too_large)
            mp_fail(r, "the body is not valid multipart/form-data");
    } else if (r->route->body == API_BODY_UPLOAD && r->spool_fd >= 0) {
        if (r->received + (int64_t)n > s->cfg->max_upload_bytes) {
            r->too_large = 1;
            return;
        }
        sx_sha256_update(&r->sha, data, n);
        for (size_t w = 0; w < n;) {
            ssize_t k = write(r->spool_fd, data + w, n - w);
            if (k < 0 && errno == EINTR) continue;
            if (k < 0) {
                store_failed(r, errno); /* disk full or I/O error */
                return;
            }
            w += (size_t)k;
        }
        r->received += (int64_t)n;
        atomic_fetch_add(&s->upload_bytes, (long long)n);
    }
}

/* The problem for a body refused while it arrived (r->too_large, see store_failed). */
static void body_problem(api_req *r, api_resp *o)
{
    api_server *s = r->srv;
    if (r->too_large >= 2) {
        api_edge_store_problem(o, r->too_large == 3 ? ENOSPC : EIO);
        return;
    }
    if (r->route->body == API_BODY_UPLOAD) {
        atomic_fetch_add(&s->uploads_rejected, 1);
        api_problem(o, 413, "too-large", "the upload exceeds this server's limit of %lld bytes: "
                    "subset the data, or ask the operator to raise max_upload_bytes "
                    "(--max-upload-bytes)", (long long)s->cfg->max_upload_bytes);
    } else {
        api_problem(o, 413, "too-large", "the JSON body exceeds this server's limit of %lld "
                    "bytes: send a smaller request, or ask the operator to raise max_json_bytes "
                    "(--max-json-bytes)", (long long)s->cfg->max_json_bytes);
    }
}

/* Run the route's handler. GET /v1/jobs/{id} — status polling, the hottest route — is
 * answered from srv_respcache while this process wrote no job row since the body was read
 * (srv_job_generation: every writer raises it, so a client that changed a job never
 * reads the old state afterwards) and the body is young (job_cache_ttl: what another
 * instance on a shared registry wrote). */
static int run_handler(api_req *r)
{
    api_server *s = r->srv;
    int view = s->views && r->route->fn == api_h_job_get;
    uint64_t gen = view ? srv_job_generation() : 0; /* before reading the row */
    if (view) {
        size_t len = 0;
        char *b = srv_respcache_get(s->views, r->user.id, r->params[0], gen, &len);
        if (b) {
            free(r->resp.body);
            r->resp.body = b;
            r->resp.len = len;
            r->resp.status = 200;
            r->resp.ctype = "application/json";
            return API_DONE;
        }
    }
    int rc = r->route->fn(r, &r->resp);
    if (view && rc == API_DONE && r->resp.status == 200 && r->resp.body)
        srv_respcache_put(s->views, r->user.id, r->params[0], gen, r->resp.body, r->resp.len);
    return rc;
}

/* "r" + 16 hex digits, like srv_random_id, from a per-thread generator seeded once from
 * the system's random source: a getrandom call per request showed in profiles, and a
 * request id only has to be unique, not secret. */
static void request_id(char *out, size_t outsz)
{
    static _Thread_local uint64_t state;
    if (!state) {
        uint64_t seed = 0;
        if (srv_random_bytes((unsigned char *)&seed, sizeof seed, NULL) != SX_OK)
            seed = (uint64_t)(srv_mono_s() * 1e9);
        state = seed | 1;
    }
    /* splitmix64 */
    uint64_t z = (state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    snprintf(out, outsz, "r%016llx", (unsigned long long)z);
}

/* A declared body small enough to read and drop before a refusal's answer (16 MiB: a
 * fraction of a second over loopback, and bounded); chunked or larger ones are answered at once. */
static int small_body(struct MHD_Connection *conn)
{
    const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Length");
    if (!cl) return 0;
    char *end;
    long long n = strtoll(cl, &end, 10);
    return *end == 0 && end != cl && n > 0 && n <= (16LL << 20);
}

/* A request's first call (headers read): its state, its id, and an answer now when the
 * request is refused before any body (or is a CORS preflight). */
static enum MHD_Result on_headers(api_server *s, struct MHD_Connection *conn, const char *url,
                                  const char *method, void **con_cls)
{
    api_req *r = calloc(1, sizeof *r);
    if (!r) return MHD_NO;
    r->srv = s;
    r->conn = conn;
    r->spool_fd = -1;
    r->part_fd = -1;
    r->t0 = srv_mono_s();
    api_resp_init(&r->resp);
    snprintf(r->method, sizeof r->method, "%s", method);
    snprintf(r->path, sizeof r->path, "%s", url);
    const char *xr = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Request-Id");
    if (!xr || !srv_name_ok(xr) || strlen(xr) > 36 ||
        snprintf(r->rid, sizeof r->rid, "%s", xr) <= 0)
        request_id(r->rid, sizeof r->rid);
    *con_cls = r;
    if (!strcmp(method, "OPTIONS")) {
        r->first_done = 1;
        return send_preflight(r, preflight(r, &r->resp));
    }
    if (begin(r, &r->resp)) {
        r->first_done = 1;
        if (small_body(conn)) {
            /* answered after its body is read (and dropped): an answer sent before the body
             * makes libmicrohttpd close with unread bytes, the kernel resets, and a client
             * still sending never sees its 4xx. The body's rate is watched as any body's. */
            r->resp_ready = 4;
            api_edge_phase(conn, API_EDGE_BODY);
            return MHD_YES;
        }
        r->resp_ready = 2; /* sent now; a large or chunked body is not read */
        return send_resp(r, &r->resp);
    }
    r->first_done = 1;
    api_edge_phase(conn, r->route->body != API_BODY_NONE ? API_EDGE_BODY : API_EDGE_BUSY);
    return MHD_YES;
}

/* The body's end: the problem found while reading it, or the handler's answer (sent now, on
 * the call after an async handler resumes the connection, or after a synchronous answer to
 * a suspended upload). */
static enum MHD_Result on_body_end(api_req *r, struct MHD_Connection *conn)
{
    api_edge_phase(conn, API_EDGE_BUSY);
    if (r->spool_fd >= 0) {
        int bad = close(r->spool_fd) != 0;
        r->spool_fd = -1;
        if (bad && !r->too_large) r->too_large = 2;
    }
    int mp_bad = r->pp ? end_multipart(r, &r->resp) : 0;
    if (mp_bad) {
        /* the problem is written */
    } else if (r->too_large) { /* set by the body's last bytes, or at end_multipart */
        body_problem(r, &r->resp);
    } else {
        /* suspend first: a pool thread may finish and resume before the handler returns */
        if (r->route->body == API_BODY_UPLOAD) {
            r->suspended = 1;
            MHD_suspend_connection(conn);
        }
        int rc = run_handler(r);
        if (rc == API_ASYNC) return MHD_YES;
        if (r->suspended) {
            /* answered synchronously after all: resume and send on the next call */
            r->resp_ready = 1;
            MHD_resume_connection(conn);
            return MHD_YES;
        }
    }
    r->resp_ready = 2;
    return send_resp(r, &r->resp);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size, void **con_cls)
{
    api_server *s = cls;
    api_req *r = *con_cls;
    (void)version;
    if (!r) return on_headers(s, conn, url, method, con_cls);
    if (r->resp_ready == 4) { /* refused at its headers: drop the body, then answer */
        if (*upload_data_size) {
            api_edge_body(conn, *upload_data_size);
            *upload_data_size = 0;
            return MHD_YES;
        }
        r->resp_ready = 2;
        api_edge_phase(conn, API_EDGE_BUSY);
        return send_resp(r, &r->resp);
    }
    if (r->resp_ready == 2) { /* already answered: drop body bytes */
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (r->resp_ready == 3) { /* answered mid-body (answer_mid_body): drop the rest a moment */
        /* the body's end, or more than a generous linger's worth of bytes: close now */
        r->received += (int64_t)*upload_data_size; /* counts dropped bytes since the answer */
        if (!*upload_data_size || r->received > ((int64_t)64 << 20)) return MHD_NO;
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (*upload_data_size) {
        if (r->route) body_chunk(r, upload_data, *upload_data_size);
        *upload_data_size = 0;
        if (r->route && r->too_large) { /* refuse at once, not after the whole body */
            body_problem(r, &r->resp);
            r->received = 0;
            answer_mid_body(r, &r->resp);
        }
        return MHD_YES;
    }
    if (r->resp_ready == 1) { /* resumed after async work */
        r->resp_ready = 2;
        return send_resp(r, &r->resp);
    }
    if (r->suspended) return MHD_YES;
    /* end of the body: run the handler */
    return on_body_end(r, conn);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)toe;
    /* a kept-alive connection now waits for its next request's headers */
    api_edge_phase(conn, API_EDGE_HEADERS);
    api_req *r = *con_cls;
    if (!r) return;
    drop_spool(r);
    sx_sha256_free(&r->sha); /* an upload cut off before its end was never finished */
    api_resp_free(&r->resp);
    free(r->body);
    free(r);
    *con_cls = NULL;
}

/* The CORS allow-list from cors_origins (comma or space separated); out of memory ends it. */
static void cors_list(api_server *s, const char *origins)
{
    char *list = strdup(origins);
    for (char *save = NULL, *tok = list ? strtok_r(list, ", ", &save) : NULL; tok;
         tok = strtok_r(NULL, ", ", &save)) {
        char **nc = realloc(s->cors, (size_t)(s->n_cors + 1) * sizeof *nc);
        if (!nc) break;
        s->cors = nc;
        s->cors[s->n_cors++] = strdup(tok);
    }
    free(list);
}

/* The listening address of --listen (host) and --port, adding the flag its family needs to
 * flags. Returns non-zero when the host is not an IP address. */
static int listen_addr(const srv_config *cfg, struct sockaddr_storage *ss, unsigned *flags)
{
    if (strchr(cfg->host, ':')) {
        struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons((uint16_t)cfg->port);
        if (inet_pton(AF_INET6, cfg->host, &a6->sin6_addr) != 1) return 1;
        *flags |= MHD_USE_IPv6;
    } else {
        struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
        a4->sin_family = AF_INET;
        a4->sin_port = htons((uint16_t)cfg->port);
        const char *h = !strcmp(cfg->host, "localhost") ? "127.0.0.1" : cfg->host;
        if (inet_pton(AF_INET, h, &a4->sin_addr) != 1) return 1;
    }
    return 0;
}

/* The deadline thread and the HTTP daemon itself, listening; s->port is the bound port. */
static int start_listening(api_server *s, const srv_config *cfg, sx_status *st)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    /* a small pool of epoll event loops (http_threads) serves every connection; TURBO reads
     * and writes sockets before asking epoll, which took a third off the CPU per request of
     * status polling (bench/bench_daemon.sh) */
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_ALLOW_SUSPEND_RESUME |
                     MHD_USE_ERROR_LOG | MHD_USE_TURBO;
    if (listen_addr(cfg, &ss, &flags))
        return sx_status_set(st, SX_EINVAL, "--listen host '%s' is not an IP address: use "
                             "127.0.0.1, ::1 or 0.0.0.0", cfg->host);
    if (MHD_is_feature_supported(MHD_FEATURE_EPOLL) == MHD_YES) flags |= MHD_USE_EPOLL;
    if (!(s->edge = api_edge_new(cfg)))
        return sx_status_set(st, SX_ENOMEM, "cannot start the HTTP deadline thread: out of "
                             "memory or threads");
    /* the idle timeout stays for stalled answers (a client that stops reading); headers and
     * bodies have deadlines a trickle cannot extend (api_edge) */
    s->mhd = MHD_start_daemon(flags, (uint16_t)cfg->port, NULL, NULL, on_request, s,
                              /* first, so that every message goes through it */
                              MHD_OPTION_EXTERNAL_LOGGER, api_edge_mhd_log, s->edge,
                              MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
                              MHD_OPTION_THREAD_POOL_SIZE, (unsigned)cfg->http_threads,
                              MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
                              MHD_OPTION_NOTIFY_CONNECTION, api_edge_notify, s->edge,
                              MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)120,
                              MHD_OPTION_CONNECTION_LIMIT, (unsigned)cfg->http_max_connections,
                              MHD_OPTION_PER_IP_CONNECTION_LIMIT,
                              (unsigned)cfg->http_max_connections_per_ip,
                              MHD_OPTION_LISTENING_ADDRESS_REUSE, (unsigned)1,
                              MHD_OPTION_END);
    if (!s->mhd)
        return sx_status_set(st, SX_EIO, "cannot listen on %s:%d (%s): is the port in use?",
                             cfg->host, cfg->port, strerror(errno));
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(s->mhd, MHD_DAEMON_INFO_BIND_PORT);
    s->port = di ? di->port : cfg->port;
    return SX_OK;
}

api_server *api_server_start(const srv_config *cfg, srv_registry *reg, srv_jobs *jobs,
                             srv_pool *pool, const srv_engine *eng, sx_status *st)
{
    api_server *s = calloc(1, sizeof *s);
    if (!s) {
        sx_status_set(st, SX_ENOMEM, "out of memory");
        return NULL;
    }
    s->cfg = cfg;
    s->reg = reg;
    s->jobs = jobs;
    s->pool = pool;
    s->eng = eng;
    s->started = srv_mono_s();
    cors_list(s, cfg->cors_origins);
    /* 1024 tokens: far more than the clients of one daemon; each entry is ~100 bytes */
    if (!cfg->no_auth && !(s->auth = srv_auth_new(reg, 1024, cfg->auth_cache_ttl_s))) {
        sx_status_set(st, SX_ENOMEM, "out of memory");
        goto fail;
    }
    /* 256 job views: the jobs being polled at one time */
    s->views = srv_respcache_new(256, cfg->job_cache_ttl_s);
    if (cfg->no_auth) {
        srv_db *db = srv_registry_get(reg, st);
        int rc = db ? srv_user_ensure(db, "local", 1, &s->local_user, st) : st->code;
        srv_registry_put(reg, db);
        if (rc) goto fail;
    }
    if (start_listening(s, cfg, st)) goto fail;
    return s;
fail:
    api_edge_free(s->edge);
    srv_respcache_free(s->views);
    srv_auth_free(s->auth);
    for (int i = 0; i < s->n_cors; i++) free(s->cors[i]);
    free(s->cors);
    free(s);
    return NULL;
}

int api_server_port(const api_server *s) { return s->port; }

void api_server_quiesce(api_server *s)
{
    atomic_store(&s->draining, 1);
    /* close the listening socket: the load balancer moves on, open connections finish */
    MHD_socket fd = MHD_quiesce_daemon(s->mhd);
    if (fd != MHD_INVALID_SOCKET) close(fd);
}

void api_server_stop(api_server *s)
{
    if (!s) return;
    if (s->mhd) MHD_stop_daemon(s->mhd);
    api_edge_free(s->edge); /* after the daemon: no connection is tracked any more */
    srv_auth_free(s->auth);
    srv_respcache_free(s->views);
    for (int i = 0; i < s->n_cors; i++) free(s->cors[i]);
    free(s->cors);
    free(s);
}
