/* The web page: GET / serves web/index.html and GET /web/{file} the page's other files
 * (app.js, app.css). Both are open routes: the page holds no data, it asks the user for a
 * token and calls the API with it like any other client.
 *
 * Where web/ is, first found wins: the web_dir setting; <prefix>/share/scalexd/web next to
 * an installed <prefix>/bin/scalexd; the source tree this file was compiled from (so a
 * build-dir binary serves the checkout's web/ without an install step). */
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api.h"
#include "srv_config.h"

static const struct {
    const char *ext, *ctype;
} static_types[] = {
    {".html", "text/html; charset=utf-8"},
    {".js", "text/javascript; charset=utf-8"},
    {".css", "text/css; charset=utf-8"},
    {".svg", "image/svg+xml"},
    {".png", "image/png"},
    {".ico", "image/x-icon"},
};

/* Is dir/index.html there? */
static int has_index(const char *dir)
{
    char p[PATH_MAX + 16];
    snprintf(p, sizeof p, "%s/index.html", dir);
    return access(p, R_OK) == 0;
}

/* Strip the last path component of p in place ("/a/b/c" -> "/a/b"); 0 when none is left. */
static int up(char *p)
{
    char *s = strrchr(p, '/');
    if (!s || s == p) return 0;
    *s = 0;
    return 1;
}

/* The web/ folder into out, or 0 when none is found. */
static int web_dir(const api_server *s, char *out, size_t n)
{
    if (s->cfg->web_dir[0]) {
        snprintf(out, n, "%s", s->cfg->web_dir);
        return has_index(out);
    }
    char exe[PATH_MAX];
    ssize_t k = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (k > 0) {
        exe[k] = 0;
        if (up(exe) && up(exe)) { /* <prefix>/bin/scalexd -> <prefix> */
            if (snprintf(out, n, "%s/share/scalexd/web", exe) < (int)n && has_index(out)) return 1;
        }
    }
    /* CMake compiles with absolute source paths: <src>/api/api_static.c -> <src>/web */
    char src[PATH_MAX];
    snprintf(src, sizeof src, "%s", __FILE__);
    if (src[0] == '/' && up(src) && up(src)) {
        if (snprintf(out, n, "%s/web", src) < (int)n && has_index(out)) return 1;
    }
    return 0;
}

/* A plain file name: letters, digits, '.', '_', '-', not starting with '.' (no traversal,
 * no hidden files), with a known extension. Its content type, or NULL. */
static const char *static_type(const char *name)
{
    if (!name[0] || name[0] == '.' || strlen(name) > 100) return NULL;
    for (const char *c = name; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
              *c == '.' || *c == '_' || *c == '-'))
            return NULL;
    const char *dot = strrchr(name, '.');
    if (!dot) return NULL;
    for (size_t i = 0; i < sizeof static_types / sizeof static_types[0]; i++)
        if (!strcmp(dot, static_types[i].ext)) return static_types[i].ctype;
    return NULL;
}

int api_h_static(api_req *r, api_resp *o)
{
    const char *name = r->route->pattern[1] == 0 ? "index.html" : r->params[0];
    const char *ctype = static_type(name);
    if (!ctype)
        return api_problem(o, 404, "not-found", "'%s' is not a file of the web page: it serves "
                           "/ and /web/app.js-style names", name);
    char dir[PATH_MAX];
    if (!web_dir(r->srv, dir, sizeof dir))
        return api_problem(o, 404, "not-found", "the web page is not installed: set web_dir to "
                           "the folder holding index.html (the repository's web/, or "
                           "<prefix>/share/scalexd/web)");
    char path[PATH_MAX + 128];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    struct stat sb;
    if (fd < 0 || fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        if (fd >= 0) close(fd);
        return api_problem(o, 404, "not-found", "the web page has no file '%s' (in %s)", name, dir);
    }
    o->fd = fd;
    o->fd_len = sb.st_size;
    o->status = 200;
    o->ctype = ctype;
    return API_DONE;
}
