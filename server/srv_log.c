#include "srv_log.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "sx_log.h"
#include "srv_util.h"

static const char *const level_names[4] = {"debug", "info", "warn", "error"};

void srv_log_event(int level, const char *msg, json_t *fields)
{
    if (level < sx_log_level()) {
        json_decref(fields);
        return;
    }
    json_t *o = json_object();
    char ts[32];
    srv_iso_time(srv_now_ms(), ts);
    json_object_set_new(o, "ts", json_string(ts));
    json_object_set_new(o, "level", json_string(level_names[level < 0 ? 0 : level > 3 ? 3 : level]));
    json_object_set_new(o, "msg", json_string(msg ? msg : ""));
    if (fields) json_object_update(o, fields);
    json_decref(fields);
    char *line = json_dumps(o, JSON_COMPACT | JSON_ENSURE_ASCII);
    json_decref(o);
    if (!line) return;
    /* one write per line so concurrent lines never interleave */
    size_t n = strlen(line);
    line[n] = '\n';
    fwrite(line, 1, n + 1, stderr);
    fflush(stderr);
    line[n] = 0;
    free(line);
}

static void sink(void *user, int level, const char *msg)
{
    (void)user;
    /* core messages about a job start with "job <id>": lift the id into a field */
    json_t *f = NULL;
    if (!strncmp(msg, "job ", 4)) {
        char id[32];
        if (sscanf(msg + 4, "%31[A-Za-z0-9_]", id) == 1) {
            f = json_object();
            json_object_set_new(f, "job", json_string(id));
        }
    }
    srv_log_event(level, msg, f);
}

void srv_log_install(int min_level) { sx_log_set_sink(sink, NULL, min_level); }
