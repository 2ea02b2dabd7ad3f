/* Explicit pseudo-random state (xoshiro128+ seeded by splitmix64), passed to
 * every function that draws numbers, so every run is reproducible from its seed. */
#ifndef SEQMT_RNG_H
#define SEQMT_RNG_H

#include <stdint.h>

typedef struct {
    uint32_t s[4];
} rng_state;

/* Seeds state from a 64-bit seed; equal seeds give equal streams. */
void rng_seed(rng_state *rng, uint64_t seed);
/* Next 32 uniformly distributed bits. */
uint32_t rng_next(rng_state *rng);
/* Uniform float in [0, 1). */
float rng_uniform(rng_state *rng);
/* Uniform integer in [0, n) for n > 0. */
uint32_t rng_below(rng_state *rng, uint32_t n);

#endif
