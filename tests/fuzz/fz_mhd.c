#define _GNU_SOURCE
#include "fz_mhd.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "api.h"
#include "srv_util.h"

typedef struct fz_conn {
    struct MHD_PostProcessor *pp;
    int is_post;
    char last_file[256];
    uint64_t next_off;
    uint8_t sink;     /* every byte handed over is read into this, so ASan sees the reads */
    int parts;
} fz_conn;

static enum MHD_Result fz_iter(void *cls, enum MHD_ValueKind kind, const char *key,
                               const char *filename, const char *content_type,
                               const char *transfer_encoding, const char *data, uint64_t off,
                               size_t size)
{
    fz_conn *c = cls;
    (void)kind;
    size_t lens = (key ? strlen(key) : 0) + (content_type ? strlen(content_type) : 0) +
                  (transfer_encoding ? strlen(transfer_encoding) : 0);
    c->sink ^= (uint8_t)lens;
    for (size_t i = 0; i < size; i++) c->sink ^= (uint8_t)data[i];
    if (!filename) return MHD_YES;
    const char *base = filename;
    for (const char *p = filename; *p; p++)
        if (*p == '/' || *p == '\\') base = p + 1;
    (void)srv_name_ok(base);
    if (strcmp(c->last_file, filename) != 0 || off == 0) {
        snprintf(c->last_file, sizeof c->last_file, "%s", filename);
        c->next_off = 0;
        c->parts++;
    }
    /* a part's chunks arrive in order: post_iter relies on it (it appends to one file) */
    if (off != c->next_off) abort();
    c->next_off = off + size;
    return c->parts > 8 ? MHD_NO : MHD_YES;
}

static enum MHD_Result fz_answer(struct MHD_Connection *conn, int status)
{
    static const char body[] = "{}";
    struct MHD_Response *r =
        MHD_create_response_from_buffer(sizeof body - 1, (void *)body, MHD_RESPMEM_PERSISTENT);
    enum MHD_Result ret = MHD_queue_response(conn, (unsigned)status, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result fz_on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                     const char *method, const char *version,
                                     const char *upload_data, size_t *upload_data_size,
                                     void **con_cls)
{
    (void)cls;
    (void)url;
    (void)version;
    fz_conn *c = *con_cls;
    if (!c) {
        c = calloc(1, sizeof *c);
        if (!c) return MHD_NO;
        *con_cls = c;
        c->is_post = !strcmp(method, "POST");
        const char *ct = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Type");
        if (c->is_post && ct && !strncasecmp(ct, "multipart/form-data", 19))
            c->pp = MHD_create_post_processor(conn, 64 * 1024, fz_iter, c);
        return MHD_YES;
    }
    if (*upload_data_size) {
        if (c->pp) (void)MHD_post_process(c->pp, upload_data, *upload_data_size);
        *upload_data_size = 0;
        return MHD_YES;
    }
    /* the query string, as every list route reads it */
    api_req r;
    memset(&r, 0, sizeof r);
    r.conn = conn;
    api_resp o;
    api_resp_init(&o);
    int size = 0;
    int64_t offset = 0;
    int bad = api_page(&r, &o, 50, 1000, &size, &offset);
    if (!bad) {
        json_t *j = json_object();
        /* a list route has a next page only below its row count, far under 2^31 */
        api_next_token(j, offset < INT32_MAX, offset, size);
        json_decref(j);
    }
    /* SX_FUZZ_DEBUG=1: what the handler saw (for seeds) */
    if (getenv("SX_FUZZ_DEBUG"))
        fprintf(stderr, "fz: %s %s page %d/%lld %s parts %d\n", method, url, size,
                (long long)offset, bad ? o.body : "ok", c->parts);
    api_resp_free(&o);
    return fz_answer(conn, bad ? 400 : 200);
}

static void fz_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)conn;
    (void)toe;
    fz_conn *c = *con_cls;
    if (!c) return;
    if (c->pp) MHD_destroy_post_processor(c->pp);
    free(c);
    *con_cls = NULL;
}

static struct MHD_Daemon *fz_daemon(void)
{
    static struct MHD_Daemon *d;
    if (!d) {
        d = MHD_start_daemon(MHD_USE_NO_LISTEN_SOCKET, 0, NULL, NULL, fz_on_request, NULL,
                             MHD_OPTION_NOTIFY_COMPLETED, fz_completed, NULL,
                             MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)120, MHD_OPTION_END);
        if (!d) abort();
    }
    return d;
}

void fz_mhd_request(const uint8_t *req, size_t n)
{
    struct MHD_Daemon *d = fz_daemon();
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) != 0) abort();
    struct sockaddr_in peer;
    memset(&peer, 0, sizeof peer);
    peer.sin_family = AF_INET;
    peer.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (MHD_add_connection(d, sv[1], (struct sockaddr *)&peer, sizeof peer) != MHD_YES) {
        close(sv[0]);
        return; /* MHD closed sv[1] */
    }
    size_t sent = 0;
    int closed = 0;
    char buf[4096];
    /* rounds are bounded: an input that makes MHD wait for more bytes ends with the loop */
    for (int round = 0; round < 400 && !closed; round++) {
        if (sent < n) {
            ssize_t w = write(sv[0], req + sent, n - sent);
            if (w > 0) sent += (size_t)w;
            if (sent == n) shutdown(sv[0], SHUT_WR);
        } else if (n == 0 && round == 0) {
            shutdown(sv[0], SHUT_WR);
        }
        MHD_run(d);
        for (;;) {
            ssize_t r = read(sv[0], buf, sizeof buf);
            if (r == 0) closed = 1;
            if (r <= 0) break;
        }
    }
    close(sv[0]);
    /* let MHD notice the closed peer and release the connection */
    for (int round = 0; round < 4; round++) MHD_run(d);
}
