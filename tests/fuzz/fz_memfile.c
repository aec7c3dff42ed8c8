#define _GNU_SOURCE
#include "fz_memfile.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sx_h5.h"
#include "sx_inspect.h"
#include "sx_io.h"
#include "sx_log.h"

static char fz_dir[256];
static char fz_path[400];

static void fz_cleanup(void)
{
    if (fz_path[0]) unlink(fz_path);
    if (fz_dir[0]) rmdir(fz_dir);
}

static void fz_die(const char *what)
{
    perror(what);
    abort();
}

const char *fz_memfile(const char *name, const uint8_t *data, size_t size)
{
    if (!fz_dir[0]) {
        /* SX_FUZZ_TMP: set by scripts/fuzz.sh to a folder it removes, since a crashing
         * input ends the process before atexit runs */
        const char *tmp = getenv("TMPDIR"), *own = getenv("SX_FUZZ_TMP");
        const char *base = own && *own ? own
                           : access("/dev/shm", W_OK) == 0 ? "/dev/shm"
                           : tmp && *tmp ? tmp : "/tmp";
        snprintf(fz_dir, sizeof fz_dir, "%s/sxfuzz.XXXXXX", base);
        if (!mkdtemp(fz_dir)) fz_die("mkdtemp");
        atexit(fz_cleanup);
    }
    if (fz_path[0]) unlink(fz_path);
    snprintf(fz_path, sizeof fz_path, "%s/%s", fz_dir, name);
    int fd = open(fz_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) fz_die("open fuzz input");
    for (size_t w = 0; w < size;) {
        ssize_t n = write(fd, data + w, size - w);
        if (n <= 0) fz_die("write fuzz input");
        w += (size_t)n;
    }
    close(fd);
    return fz_path;
}

static void fz_drop(void *user, int level, const char *msg)
{
    (void)user;
    (void)level;
    (void)msg;
}

void fz_quiet(void)
{
    sx_h5_quiet();
    sx_log_set_sink(fz_drop, NULL, SX_LOG_DEBUG);
}

void fz_read_both(const char *name, const uint8_t *data, size_t size)
{
    fz_quiet();
    const char *path = fz_memfile(name, data, size);
    sx_status st;
    sx_status_clear(&st);
    sx_inspect *r = sx_inspect_stream(path, NULL, NULL, &st);
    /* SX_FUZZ_DEBUG=1: say what the readers answered (for seeds and reproducers) */
    int debug = getenv("SX_FUZZ_DEBUG") != NULL;
    if (debug) fprintf(stderr, "fz: inspect %s: %s\n", name, r ? "ok" : st.msg);
    if (!r) return;
    sx_inspect_free(r);
    /* for text formats sx_inspect_stream already was the whole read */
    size_t n = strlen(name);
    if (strcmp(name + (n > 3 ? n - 3 : 0), ".h5") != 0 &&
        strcmp(name + (n > 5 ? n - 5 : 0), ".h5ad") != 0)
        return;
    sx_dataset *d = sx_io_read(path, NULL, NULL, &st);
    if (debug) fprintf(stderr, "fz: read %s: %s\n", name, d ? "ok" : st.msg);
    sx_dataset_free(d);
}
