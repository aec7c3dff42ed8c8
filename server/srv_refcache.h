/* srv_refcache — references kept in memory within a budget.
 *
 * A job that names a reference borrows the loaded object (the core pipeline's sx_reference,
 * passed as sx_job_spec.reference_obj) instead of reading reference.h5 again. Entries are
 * loaded at start-up (catalog order, until the budget is used) and on first use; when the
 * loaded total exceeds the budget, the least recently used entries nobody holds are unloaded
 * first. An entry in use is never unloaded, so a reference larger than the whole budget still
 * runs (it is unloaded when its last job ends).
 *
 * The loader is injected (srv_engine.ref_load / ref_free): server/ links no numerics.
 * Thread-safe; a load runs outside the lock (other names stay usable meanwhile) and two
 * jobs wanting the same unloaded name load it once. */
#ifndef SRV_REFCACHE_H
#define SRV_REFCACHE_H

#include <jansson.h>
#include <stdint.h>

#include "sx_error.h"
#include "srv_registry.h"

/* Load the reference at path (a folder holding reference.h5); *bytes = its memory footprint.
 * NULL + st on error. */
typedef void *(*srv_ref_load_fn)(void *user, const char *path, int64_t *bytes, sx_status *st);
typedef void (*srv_ref_free_fn)(void *user, void *obj);

typedef struct srv_refcache srv_refcache;

/* budget in bytes (0: keep nothing loaded between jobs). NULL on out of memory. */
srv_refcache *srv_refcache_new(int64_t budget, srv_ref_load_fn load, srv_ref_free_fn free_fn,
                               void *user);
/* Unload everything. Every acquired object must have been released. */
void srv_refcache_free(srv_refcache *c);
/* The loaded object of reference `name` stored at path, loading it if needed; the caller
 * holds it until srv_refcache_release. NULL + st when loading fails. */
void *srv_refcache_acquire(srv_refcache *c, const char *name, const char *path, sx_status *st);
void srv_refcache_release(srv_refcache *c, void *obj);
/* Load the catalog's references (name order) while they fit in the budget; returns how many
 * were loaded. Errors are logged, not fatal (the reference loads again when a job needs it). */
int srv_refcache_preload(srv_refcache *c, srv_db *db, const char *data_dir);
/* Is `name` loaded now? *bytes (may be NULL) gets its footprint. */
/* The reference left the catalog: unload it now, or when the last job holding it is done; a
 * later reference of the same name is loaded anew. */
void srv_refcache_forget(srv_refcache *c, const char *name);
int srv_refcache_is_loaded(srv_refcache *c, const char *name, int64_t *bytes);
/* Loaded entries and their total bytes (metrics). */
void srv_refcache_stats(srv_refcache *c, int *n_loaded, int64_t *bytes, int64_t *budget);

#endif
