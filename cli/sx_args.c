#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sx_alloc.h"
#include "sx_cli.h"

static const char *type_word(sx_opt_type t)
{
    switch (t) {
    case SX_OPT_FLAG: return "";
    case SX_OPT_STR: return " TEXT";
    case SX_OPT_INT: return " N";
    case SX_OPT_FLOAT: return " X";
    case SX_OPT_LIST: return " VALUE...";
    }
    return "";
}

void sx_args_usage(const char *cmd, const char *summary, const sx_opt *opts, int n, FILE *to)
{
    fprintf(to, "usage: scalex %s [options]\n%s\n\noptions:\n", cmd, summary);
    for (int k = 0; k < n; k++) {
        char left[96];
        if (strcmp(opts[k].name, "positional") == 0)
            snprintf(left, sizeof left, "  INPUT...");
        else
            snprintf(left, sizeof left, "  --%s%s", opts[k].name, type_word(opts[k].type));
        fprintf(to, "%-34s %s", left, opts[k].help ? opts[k].help : "");
        if (opts[k].def) fprintf(to, " (default: %s)", opts[k].def);
        fputc('\n', to);
    }
    fprintf(to, "  %-32s %s\n", "--help", "show this help and exit");
}

sx_opt *sx_args_get(sx_opt *opts, int n, const char *name)
{
    for (int k = 0; k < n; k++)
        if (strcmp(opts[k].name, name) == 0) return &opts[k];
    return NULL;
}

static int set_scalar(const char *cmd, sx_opt *o, const char *v)
{
    char *end = NULL;
    switch (o->type) {
    case SX_OPT_STR:
        o->str = v;
        return 0;
    case SX_OPT_INT:
        o->i = strtoll(v, &end, 10);
        if (!*v || *end) {
            fprintf(stderr, "scalex %s: --%s expects a whole number, got '%s'\n", cmd, o->name, v);
            return 2;
        }
        return 0;
    case SX_OPT_FLOAT:
        o->f = strtod(v, &end);
        if (!*v || *end) {
            fprintf(stderr, "scalex %s: --%s expects a number, got '%s'\n", cmd, o->name, v);
            return 2;
        }
        return 0;
    default:
        return 0;
    }
}

static int push(sx_opt *o, const char *v)
{
    const char **nl = sx_reallocarray(o->list, (size_t)o->n_list + 1, sizeof(char *));
    if (!nl) return -1;
    o->list = nl;
    o->list[o->n_list++] = v;
    return 0;
}

int sx_args_parse(const char *cmd, const char *summary, sx_opt *opts, int n, int argc,
                  char **argv)
{
    for (int k = 0; k < n; k++) {
        opts[k].set = 0;
        opts[k].list = NULL;
        opts[k].n_list = 0;
        opts[k].str = NULL;
        opts[k].i = 0;
        opts[k].f = 0;
        if (opts[k].def && opts[k].type != SX_OPT_LIST && opts[k].type != SX_OPT_FLAG)
            set_scalar(cmd, &opts[k], opts[k].def);
    }
    sx_opt *pos = sx_args_get(opts, n, "positional");
    for (int a = 1; a < argc; a++) {
        const char *arg = argv[a];
        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            sx_args_usage(cmd, summary, opts, n, stdout);
            return 1;
        }
        if (arg[0] != '-' || arg[1] == '\0') {
            if (!pos) {
                fprintf(stderr, "scalex %s: unexpected argument '%s' (see --help)\n", cmd, arg);
                return 2;
            }
            if (push(pos, arg) != 0) return 2;
            pos->set = 1;
            continue;
        }
        char name[128];
        const char *val = NULL;
        if (strcmp(arg, "-o") == 0) {
            snprintf(name, sizeof name, "%s", sx_args_get(opts, n, "outdir") ? "outdir" : "output");
        } else {
            const char *s = arg + (arg[1] == '-' ? 2 : 1);
            const char *eq = strchr(s, '=');
            size_t len = eq ? (size_t)(eq - s) : strlen(s);
            if (len >= sizeof name) len = sizeof name - 1;
            memcpy(name, s, len);
            name[len] = '\0';
            for (char *c = name; *c; c++)
                if (*c == '-') *c = '_'; /* --batch-name works like --batch_name */
            if (eq) val = eq + 1;
        }
        sx_opt *o = sx_args_get(opts, n, name);
        if (!o || strcmp(name, "positional") == 0) {
            fprintf(stderr, "scalex %s: unknown option '%s' (see scalex %s --help)\n", cmd, arg,
                    cmd);
            return 2;
        }
        o->set = 1;
        if (o->type == SX_OPT_FLAG) {
            o->i = 1;
            if (val && (strcmp(val, "0") == 0 || strcmp(val, "false") == 0)) o->i = 0;
            continue;
        }
        if (o->type == SX_OPT_LIST) {
            if (val && push(o, val) != 0) return 2;
            while (a + 1 < argc && (argv[a + 1][0] != '-' || argv[a + 1][1] == '\0'))
                if (push(o, argv[++a]) != 0) return 2;
            if (o->n_list == 0) {
                fprintf(stderr, "scalex %s: --%s needs at least one value\n", cmd, o->name);
                return 2;
            }
            continue;
        }
        if (!val) {
            if (a + 1 >= argc) {
                fprintf(stderr, "scalex %s: --%s needs a value\n", cmd, o->name);
                return 2;
            }
            val = argv[++a];
        }
        int rc = set_scalar(cmd, o, val);
        if (rc) return rc;
    }
    return 0;
}

void sx_args_free(sx_opt *opts, int n)
{
    for (int k = 0; k < n; k++) {
        sx_free(opts[k].list);
        opts[k].list = NULL;
        opts[k].n_list = 0;
    }
}

static const sx_opt limit_opts[SX_ARGS_N_LIMITS] = {SX_ARGS_LIMIT_OPTS};

int sx_args_add_limits(sx_opt *opts, int n)
{
    for (int k = 0; k < SX_ARGS_N_LIMITS; k++) opts[n++] = limit_opts[k];
    return n;
}

int sx_args_limits(const char *cmd, const sx_opt *opts, int n, sx_io_limits *l)
{
    memset(l, 0, sizeof *l);
    for (int k = 0; k < SX_ARGS_N_LIMITS; k++) {
        const sx_opt *o = sx_args_get((sx_opt *)opts, n, limit_opts[k].name);
        if (!o || !o->set) continue;
        char text[64];
        if (o->type == SX_OPT_FLOAT) snprintf(text, sizeof text, "%.17g", o->f);
        else snprintf(text, sizeof text, "%lld", (long long)o->i);
        sx_status st;
        if (sx_io_limits_set(l, o->name, text, &st) != SX_OK) {
            fprintf(stderr, "scalex %s: %s (see scalex %s --help)\n", cmd, st.msg, cmd);
            return 2;
        }
    }
    return 0;
}
