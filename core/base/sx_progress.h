/* sx_progress — how long core/ work reports progress and learns it must stop.
 *
 * Every long core/ function takes a `const sx_progress *` (NULL allowed). The callback
 * runs on the calling (worker) thread; it must be cheap and must not call back into the
 * running function. `cancel` is polled: when *cancel becomes non-zero the function
 * returns SX_ECANCELED at its next check point, releasing what it allocated.
 */
#ifndef SX_PROGRESS_H
#define SX_PROGRESS_H

#include <stdatomic.h>

typedef struct sx_progress {
    /* stage: short stable name ("read", "preprocess", "train", "encode", "umap", ...);
     * frac: 0..1 within the stage, or -1 when unknown;
     * msg: one human line (epoch, loss, it/s, ETA) or NULL. */
    void (*fn)(void *user, const char *stage, double frac, const char *msg);
    void *user;
    atomic_int *cancel; /* may be NULL */
} sx_progress;

static inline void sx_progress_report(const sx_progress *p, const char *stage, double frac,
                                      const char *msg)
{
    if (p && p->fn) p->fn(p->user, stage, frac, msg);
}

static inline int sx_progress_cancelled(const sx_progress *p)
{
    return p && p->cancel && atomic_load(p->cancel) != 0;
}

#endif
