/* srv_pool — a tiny FIFO thread pool for short blocking work that must stay off the HTTP
 * threads but should not wait behind long jobs (validating an upload with the readers). */
#ifndef SRV_POOL_H
#define SRV_POOL_H

#include "sx_error.h"

typedef struct srv_pool srv_pool;
typedef void (*srv_task_fn)(void *arg);

srv_pool *srv_pool_start(int threads, sx_status *st);
/* Queue fn(arg); runs on a pool thread in submission order. SX_ESTATE once stopping. */
int srv_pool_submit(srv_pool *p, srv_task_fn fn, void *arg);
/* Run what is queued, then join and free. */
void srv_pool_stop(srv_pool *p);

#endif
