/* fuzz_jobspec — libFuzzer driver for a job's options as the daemon and the CLI take them.
 *
 * The input is JSON, parsed as the API parses a POST /v1/jobs body (jansson,
 * JSON_REJECT_DUPLICATES); its "options" object (or the whole object when it has none) is
 * applied option by option through sx_pipeline_opts_set with the daemon's text conversion
 * (engine.c set_opts: booleans as true/false, integers as %lld, reals as %.17g, arrays one
 * element at a time). "type" goes through sx_job_type_parse. Not JSON: the bytes are taken
 * as NUL-separated name/value pairs, the way `scalex run-job` and the CLI flags hand text.
 *
 * Oracle beyond the sanitizers: whatever sx_pipeline_opts_set accepts, the typed getters
 * must give back inside the option's declared range / choices (a value that passes the
 * check but reads back out of range would reach the trainer unchecked). */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sx_pipeline.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_readback(const sx_pipeline_opts *po)
{
    int n = 0;
    const sx_popt_spec *specs = sx_pipeline_option_specs(&n);
    for (int i = 0; i < n; i++) {
        const sx_popt_spec *s = &specs[i];
        if (!sx_pipeline_opts_is_set(po, s->name)) continue;
        double v = 0;
        switch (s->type) {
        case SX_POPT_INT: v = (double)sx_pipeline_opts_int(po, s->name); break;
        case SX_POPT_FLOAT:
            v = sx_pipeline_opts_float(po, s->name);
            if (!isfinite(v)) {
                fprintf(stderr, "option %s reads back non-finite\n", s->name);
                abort();
            }
            break;
        case SX_POPT_BOOL: (void)sx_pipeline_opts_bool(po, s->name); continue;
        case SX_POPT_LIST: {
            const char *const *vals;
            int k = sx_pipeline_opts_list(po, s->name, &vals);
            for (int j = 0; j < k; j++)
                if (!vals[j]) abort();
            continue;
        }
        case SX_POPT_STRING: {
            const char *t = sx_pipeline_opts_str(po, s->name);
            if (!t) abort();
            continue;
        }
        }
        if (s->lo < s->hi && (v < s->lo || v > s->hi)) {
            fprintf(stderr, "option %s accepted but reads back %g outside [%g, %g]\n", s->name, v,
                    s->lo, s->hi);
            abort();
        }
    }
}

/* engine.c set_opts's conversion of one JSON value to the option text */
static int set_json(sx_pipeline_opts *po, const char *k, json_t *v, sx_status *st)
{
    char buf[64] = "";
    const char *t = buf;
    if (json_is_string(v)) t = json_string_value(v);
    else if (json_is_boolean(v)) t = json_is_true(v) ? "true" : "false";
    else if (json_is_integer(v)) snprintf(buf, sizeof buf, "%lld", (long long)json_integer_value(v));
    else if (json_is_real(v)) snprintf(buf, sizeof buf, "%.17g", json_real_value(v));
    else return SX_OK;
    return sx_pipeline_opts_set(po, k, t, st);
}

static void apply_json(sx_pipeline_opts *po, json_t *req)
{
    json_t *type = json_object_get(req, "type");
    if (json_is_string(type)) (void)sx_job_type_name(sx_job_type_parse(json_string_value(type)));
    json_t *opts = json_object_get(req, "options");
    if (!json_is_object(opts)) opts = req;
    const char *k;
    json_t *v;
    sx_status st;
    sx_status_clear(&st);
    json_object_foreach(opts, k, v) {
        if (json_is_array(v)) {
            size_t i;
            json_t *x;
            json_array_foreach(v, i, x) (void)set_json(po, k, x, &st);
        } else {
            (void)set_json(po, k, v, &st);
        }
    }
}

static void apply_pairs(sx_pipeline_opts *po, const uint8_t *data, size_t size)
{
    char *buf = malloc(size + 2);
    if (!buf) return;
    memcpy(buf, data, size);
    buf[size] = buf[size + 1] = '\0';
    sx_status st;
    sx_status_clear(&st);
    for (char *p = buf; p < buf + size;) {
        char *name = p, *value = p + strlen(p) + 1;
        if (value > buf + size) break;
        (void)sx_pipeline_opts_set(po, name, value, &st);
        (void)sx_pipeline_option_spec(name);
        p = value + strlen(value) + 1;
    }
    free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    sx_pipeline_opts *po = sx_pipeline_opts_new();
    if (!po) return 0;
    json_error_t err;
    json_t *req = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, &err);
    if (json_is_object(req)) apply_json(po, req);
    else if (!req) apply_pairs(po, data, size);
    json_decref(req);
    check_readback(po);
    sx_pipeline_opts_free(po);
    return 0;
}
