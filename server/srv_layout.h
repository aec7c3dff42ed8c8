/* srv_layout — the one module that knows how DATA_DIR is laid out.
 *
 *   DATA_DIR/registry.sqlite            the registry (SQLite; srv_registry.h)
 *   DATA_DIR/scalexd.port               the port a running daemon listens on
 *   DATA_DIR/spool/<rid>.part           an upload while it streams (a raw body)
 *   DATA_DIR/spool/<rid>.d/             an upload while it streams (multipart: its files)
 *   DATA_DIR/datasets/<id>.<ext>        a stored dataset (a file), or
 *   DATA_DIR/datasets/<id>/             a stored dataset (an mtx folder)
 *   DATA_DIR/references/<name>/         a registered reference (references/.tmp-* while placed)
 *   DATA_DIR/jobs/<id>/                 a job's working and output folder (core's job dir)
 *
 * The registry stores dataset and reference paths relative to DATA_DIR (the *_rel
 * functions), so a data dir can move; srv_layout_abs makes them absolute.
 *
 * Every function writes a NUL-terminated path into out[n] and returns SX_OK, or SX_ELIMIT
 * (st filled; out then holds no usable path) when the path does not fit. Thread-safe; no
 * allocation. */
#ifndef SRV_LAYOUT_H
#define SRV_LAYOUT_H

#include <stddef.h>

#include "sx_error.h"

/* datasets/<id>.<ext>, or datasets/<id> when ext is NULL (a folder) */
int srv_layout_dataset_rel(const char *id, const char *ext, char *out, size_t n, sx_status *st);
/* references/<name> */
int srv_layout_reference_rel(const char *name, char *out, size_t n, sx_status *st);
/* DATA_DIR/<rel> for a relative path the registry stored */
int srv_layout_abs(const char *data_dir, const char *rel, char *out, size_t n, sx_status *st);

/* The folders that hold those: DATA_DIR/datasets, DATA_DIR/references, DATA_DIR/spool. */
int srv_layout_datasets_dir(const char *data_dir, char *out, size_t n, sx_status *st);
int srv_layout_references_dir(const char *data_dir, char *out, size_t n, sx_status *st);
int srv_layout_spool_dir(const char *data_dir, char *out, size_t n, sx_status *st);
/* DATA_DIR/spool/<rid>.part and DATA_DIR/spool/<rid>.d */
int srv_layout_spool_file(const char *data_dir, const char *rid, char *out, size_t n,
                          sx_status *st);
int srv_layout_spool_parts(const char *data_dir, const char *rid, char *out, size_t n,
                           sx_status *st);
/* DATA_DIR/jobs/<id> */
int srv_layout_job_dir(const char *data_dir, const char *job_id, char *out, size_t n,
                       sx_status *st);
/* DATA_DIR/registry.sqlite and DATA_DIR/scalexd.port */
int srv_layout_registry_file(const char *data_dir, char *out, size_t n, sx_status *st);
int srv_layout_port_file(const char *data_dir, char *out, size_t n, sx_status *st);

#endif
