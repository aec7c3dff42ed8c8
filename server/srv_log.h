/* srv_log — the daemon's JSON-lines log on stderr: one object per line with ts, level, msg
 * and context fields (request_id, job, ...). Also installed as core's sx_log sink. */
#ifndef SRV_LOG_H
#define SRV_LOG_H

#include <jansson.h>

/* Route core's sx_log through the JSON-lines writer (min_level: SX_LOG_*). */
void srv_log_install(int min_level);
/* Write one line; takes ownership of fields (may be NULL). Thread-safe. */
void srv_log_event(int level, const char *msg, json_t *fields);

#endif
