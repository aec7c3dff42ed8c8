/* bench_clock_rng.h — what the training and encoding benches share: a clock reading in
 * seconds (CLOCK_MONOTONIC for wall, CLOCK_PROCESS_CPUTIME_ID for CPU) and a fixed-seed
 * xorshift64 stream for their synthetic counts (each bench program its own copy: the numbers
 * a bench generates do not depend on what else it ran). */
#ifndef BENCH_CLOCK_RNG_H
#define BENCH_CLOCK_RNG_H

#include <stdint.h>
#include <time.h>

static inline double clk(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static uint64_t rs = 88172645463325252ULL;
static inline uint64_t xr(void)
{
    rs ^= rs << 13;
    rs ^= rs >> 7;
    rs ^= rs << 17;
    return rs;
}
/* uniform in [0, 1) */
static inline double ur(void) { return (xr() >> 11) * 0x1.0p-53; }

#endif
