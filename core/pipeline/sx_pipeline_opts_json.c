/* sx_pipeline_opts_json — a JSON "options" object (the daemon's request, job.json) into
 * sx_pipeline_opts through the same text path the command line uses. */
#include <jansson.h>
#include <stdio.h>

#include "sx_jobdir.h"
#include "sx_pipeline.h"

int sx_pipeline_opts_from_json(sx_pipeline_opts *po, const struct json_t *options, sx_status *st)
{
    const char *k;
    json_t *v;
    if (!options) return SX_OK;
    if (!json_is_object(options)) return sx_status_set(st, SX_EINVAL, "options must be an object");
    json_object_foreach((json_t *)options, k, v) {
        char buf[64];
        int rc = SX_OK;
        const sx_popt_spec *sp = sx_pipeline_option_spec(k);
        if (json_is_array(v) && sp && sp->type == SX_POPT_STRING) { /* label: ["a", "b"] */
            char joined[1024] = "";
            size_t i, len = 0;
            json_t *x;
            json_array_foreach(v, i, x) {
                const char *t = sx_jobdir_option_text(x, buf, sizeof buf);
                if (t && len < sizeof joined) /* past the end: too long, refused below */
                    len += (size_t)snprintf(joined + len, sizeof joined - len, "%s%s",
                                            len ? "," : "", t);
            }
            if (len >= sizeof joined)
                return sx_status_set(st, SX_EINVAL, "option '%s': the list is too long", k);
            if ((rc = sx_pipeline_opts_set(po, k, joined, st))) return rc;
            continue;
        }
        if (json_is_array(v)) {
            size_t i;
            json_t *x;
            json_array_foreach(v, i, x) {
                const char *t = sx_jobdir_option_text(x, buf, sizeof buf);
                if (t && (rc = sx_pipeline_opts_set(po, k, t, st))) return rc;
            }
            continue;
        }
        const char *t = sx_jobdir_option_text(v, buf, sizeof buf);
        if (t && (rc = sx_pipeline_opts_set(po, k, t, st))) return rc; /* null: not set */
    }
    return SX_OK;
}
