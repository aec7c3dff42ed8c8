/* sx_log — levelled logging for core/. A process installs one sink (the CLI: stderr and
 * log.txt; the daemon: JSON lines). Default sink: stderr for WARN and above.
 * Thread-safe: the sink is called under a mutex. */
#ifndef SX_LOG_H
#define SX_LOG_H

enum { SX_LOG_DEBUG = 0, SX_LOG_INFO = 1, SX_LOG_WARN = 2, SX_LOG_ERROR = 3 };

typedef void (*sx_log_sink)(void *user, int level, const char *msg);

void sx_log_set_sink(sx_log_sink sink, void *user, int min_level);
int sx_log_level(void);
void sx_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define SX_INFO(...) sx_log(SX_LOG_INFO, __VA_ARGS__)
#define SX_WARN(...) sx_log(SX_LOG_WARN, __VA_ARGS__)
#define SX_DEBUG(...) sx_log(SX_LOG_DEBUG, __VA_ARGS__)

#endif
