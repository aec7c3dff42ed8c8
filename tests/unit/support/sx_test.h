/* sx_test — helpers shared by the Check unit tests.
 * Paths to ../shared come from the SX_SHARED environment variable that ctest sets. */
#ifndef SX_TEST_H
#define SX_TEST_H

#include <check.h>
#include <stdint.h>

/* "$SX_SHARED/rel" in a static buffer ring (valid for the next 7 calls). Aborts the test
 * with a clear message if SX_SHARED is unset. */
const char *sx_test_shared(const char *rel);
/* "$SX_SOURCE_DIR/rel", same rules. */
const char *sx_test_source(const char *rel);
/* A fresh temporary directory (mkdtemp under TMPDIR or /tmp); caller may leave it. */
const char *sx_test_tmpdir(void);

/* Relative difference |a-b| / max(|b|, floor). */
double sx_test_reldiff(double a, double b, double floor);
/* Max relative difference over n values, index of the worst in *worst (may be NULL). */
double sx_test_max_reldiff(const double *a, const double *b, int64_t n, double floor,
                           int64_t *worst);
double sx_test_max_absdiff(const double *a, const double *b, int64_t n, int64_t *worst);

/* Run one suite, print Check's summary, return the process exit code. */
int sx_test_run(Suite *s);

#endif
