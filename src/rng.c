#include "rng.h"

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);

    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

void rng_seed(rng_state *rng, uint64_t seed)
{
    uint64_t a = splitmix64(&seed), b = splitmix64(&seed);

    rng->s[0] = (uint32_t)a;
    rng->s[1] = (uint32_t)(a >> 32);
    rng->s[2] = (uint32_t)b;
    rng->s[3] = (uint32_t)(b >> 32) | 1u; /* never all zero */
}

static uint32_t rotl(uint32_t x, int k)
{
    return (x << k) | (x >> (32 - k));
}

uint32_t rng_next(rng_state *rng)
{
    uint32_t *s = rng->s;
    uint32_t result = s[0] + s[3];
    uint32_t t = s[1] << 9;

    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 11);
    return result;
}

float rng_uniform(rng_state *rng)
{
    return (float)(rng_next(rng) >> 8) * (1.0f / 16777216.0f);
}

uint32_t rng_below(rng_state *rng, uint32_t n)
{
    return (uint32_t)(((uint64_t)rng_next(rng) * n) >> 32);
}
