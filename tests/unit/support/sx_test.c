#include "sx_test.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

static const char *join(const char *env, const char *rel)
{
    static char ring[8][4096];
    static int next;
    const char *base = getenv(env);
    if (!base || !*base) {
        fprintf(stderr, "%s is not set: run the tests through ctest\n", env);
        abort();
    }
    char *b = ring[next++ & 7];
    snprintf(b, 4096, "%s/%s", base, rel);
    return b;
}

const char *sx_test_shared(const char *rel) { return join("SX_SHARED", rel); }
const char *sx_test_source(const char *rel) { return join("SX_SOURCE_DIR", rel); }

const char *sx_test_tmpdir(void)
{
    static char ring[8][512];
    static int next;
    char *b = ring[next++ & 7];
    const char *t = getenv("TMPDIR");
    snprintf(b, 512, "%s/sxtest-XXXXXX", t && *t ? t : "/tmp");
    if (!mkdtemp(b)) {
        perror("mkdtemp");
        abort();
    }
    return b;
}

double sx_test_reldiff(double a, double b, double floor)
{
    double d = fabs(a - b), m = fabs(b);
    if (m < floor) m = floor;
    if (isnan(a) || isnan(b)) return isnan(a) && isnan(b) ? 0 : INFINITY;
    return d / m;
}

double sx_test_max_reldiff(const double *a, const double *b, int64_t n, double floor,
                           int64_t *worst)
{
    double mx = 0;
    int64_t w = -1;
    for (int64_t i = 0; i < n; i++) {
        double r = sx_test_reldiff(a[i], b[i], floor);
        if (r > mx || w < 0) {
            mx = r > mx ? r : mx;
            if (r >= mx) w = i;
        }
    }
    if (worst) *worst = w;
    return mx;
}

double sx_test_max_absdiff(const double *a, const double *b, int64_t n, int64_t *worst)
{
    double mx = 0;
    int64_t w = -1;
    for (int64_t i = 0; i < n; i++) {
        double d = fabs(a[i] - b[i]);
        if (isnan(d)) d = INFINITY;
        if (d > mx || w < 0) {
            if (d >= mx) w = i;
            mx = d > mx ? d : mx;
        }
    }
    if (worst) *worst = w;
    return mx;
}

int sx_test_run(Suite *s)
{
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
