#include "sx_log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static sx_log_sink cur_sink;
static void *cur_user;
static int cur_min = SX_LOG_WARN;

static const char *names[] = {"debug", "info", "warning", "error"};

void sx_log_set_sink(sx_log_sink sink, void *user, int min_level)
{
    pthread_mutex_lock(&lock);
    cur_sink = sink;
    cur_user = user;
    cur_min = min_level;
    pthread_mutex_unlock(&lock);
}

int sx_log_level(void) { return cur_min; }

void sx_log(int level, const char *fmt, ...)
{
    if (level < cur_min) return;
    char buf[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    pthread_mutex_lock(&lock);
    if (cur_sink)
        cur_sink(cur_user, level, buf);
    else
        fprintf(stderr, "scalex: %s: %s\n", names[level < 0 ? 0 : level > 3 ? 3 : level], buf);
    pthread_mutex_unlock(&lock);
}
