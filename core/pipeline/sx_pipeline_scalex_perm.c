/* sx_pipeline_scalex_perm — the walk order of SCALEX's inference sampler, drawn as SCALEX draws
 * it: np.random.seed(seed) at the start of every SCALEX() call, then the sampler's
 * np.random.permutation(n) is the first numpy draw (training draws only from torch's RNG).
 * With the same seed the domain-pure chunks, and so the train-mode BN statistics and the
 * latent, are SCALEX's own (shared/golden/scalex_outdir: query_input.h5 records them).
 *
 * numpy's legacy RandomState: MT19937 seeded with init_genrand (mt19937_seed), permutation =
 * shuffle of arange(n) walking i = n-1 .. 1 with j = random_interval(i): the smallest
 * all-ones mask >= i, 32-bit draws (64-bit, high word first, when i > 2^32-1) masked and
 * rejected while > i. */
#include "sx_pipeline_scalex.h"

#define MT_N 624
#define MT_M 397

typedef struct mt19937 {
    uint32_t key[MT_N];
    int pos;
} mt19937;

static void mt_seed(mt19937 *s, uint32_t seed)
{
    for (int i = 0; i < MT_N; i++) {
        s->key[i] = seed;
        seed = 1812433253u * (seed ^ (seed >> 30)) + (uint32_t)i + 1u;
    }
    s->pos = MT_N;
}

static void mt_refill(mt19937 *s)
{
    for (int i = 0; i < MT_N; i++) {
        uint32_t y = (s->key[i] & 0x80000000u) | (s->key[(i + 1) % MT_N] & 0x7fffffffu);
        s->key[i] = s->key[(i + MT_M) % MT_N] ^ (y >> 1) ^ ((y & 1u) ? 0x9908b0dfu : 0u);
    }
    s->pos = 0;
}

static uint32_t mt_next(mt19937 *s)
{
    if (s->pos == MT_N) mt_refill(s);
    uint32_t y = s->key[s->pos++];
    y ^= y >> 11;
    y ^= (y << 7) & 0x9d2c5680u;
    y ^= (y << 15) & 0xefc60000u;
    return y ^ (y >> 18);
}

/* numpy's random_interval(max): uniform in [0, max] by masked rejection */
static uint64_t interval(mt19937 *s, uint64_t max)
{
    uint64_t mask = max, v;
    for (int sh = 1; sh < 64; sh <<= 1) mask |= mask >> sh;
    if (max <= 0xffffffffu) {
        while ((v = (mt_next(s) & mask)) > max) {}
    } else {
        do {
            uint64_t hi = mt_next(s);
            v = ((hi << 32) | mt_next(s)) & mask;
        } while (v > max);
    }
    return v;
}

void sx_scalex_permutation(int64_t *perm, int64_t n, uint64_t seed)
{
    mt19937 s;
    mt_seed(&s, (uint32_t)seed); /* numpy takes 0..2^32-1; a larger seed keeps its low word */
    for (int64_t i = 0; i < n; i++) perm[i] = i;
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = (int64_t)interval(&s, (uint64_t)i), t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
}
