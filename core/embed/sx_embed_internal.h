/* sx_embed_internal — helpers private to core/embed (not part of the public API).
 *
 * A small seeded generator (splitmix64 seeding xoshiro256**) so every stochastic step of
 * the module is reproducible from one integer seed without touching a global state, and
 * the worker-count rule shared by the threaded kernels.
 */
#ifndef SX_EMBED_INTERNAL_H
#define SX_EMBED_INTERNAL_H

#include <math.h>
#include <stdint.h>
#include <unistd.h>

typedef struct sx_rng {
    uint64_t s[4];
} sx_rng;

static inline uint64_t sx_splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* Seed from (seed, stream): distinct streams give independent sequences (per thread). */
static inline void sx_rng_seed(sx_rng *r, uint64_t seed, uint64_t stream)
{
    uint64_t x = seed ^ (stream * 0xd1342543de82ef95ULL + 0x632be59bd9b4e019ULL);
    for (int i = 0; i < 4; i++) r->s[i] = sx_splitmix64(&x);
}

static inline uint64_t sx_rng_next(sx_rng *r)
{
    uint64_t *s = r->s;
    uint64_t t = s[1] << 17, x = s[1] * 5;
    uint64_t res = ((x << 7) | (x >> 57)) * 9;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = (s[3] << 45) | (s[3] >> 19);
    return res;
}

/* Uniform integer in [0, n) (multiply-shift; bias < n / 2^64, irrelevant here). */
static inline int64_t sx_rng_below(sx_rng *r, int64_t n)
{
    return (int64_t)(((unsigned __int128)sx_rng_next(r) * (uint64_t)n) >> 64);
}

/* Uniform double in [0, 1). */
static inline double sx_rng_unif(sx_rng *r) { return (double)(sx_rng_next(r) >> 11) * 0x1.0p-53; }

/* Standard normal (Box-Muller; one value per call keeps the stream simple). */
static inline double sx_rng_normal(sx_rng *r)
{
    double u1 = sx_rng_unif(r), u2 = sx_rng_unif(r);
    if (u1 < 1e-300) u1 = 1e-300;
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

/* Worker count: n_threads > 0 is taken as is, otherwise the online CPUs (at most 64). */
static inline int sx_embed_threads(int n_threads)
{
    if (n_threads > 0) return n_threads > 256 ? 256 : n_threads;
    long c = sysconf(_SC_NPROCESSORS_ONLN);
    if (c < 1) c = 1;
    if (c > 64) c = 64;
    return (int)c;
}

#endif
