/*
 * sample.h — the sampler's internals that a device implementation of the
 * same sampling step needs (the GPU sampler reads them; see sample.c for the
 * exact order of the steps). Given the same logits, the same history window
 * and the same uniform draw, it must pick the same token.
 */
#ifndef MD_SAMPLE_H
#define MD_SAMPLE_H

#include <stdbool.h>
#include <stdint.h>

#include "megadelta.h"

const md_sampler_params *md_sampler_get_params(const md_sampler_t *s);
int md_sampler_vocab(const md_sampler_t *s);

/* The tokens the penalties look at, oldest first: the last penalty_last_n
 * accepted tokens (all with -1, none with 0). *n receives the count; the
 * pointer is valid until the next md_sampler_accept / reset. */
const int32_t *md_sampler_history(const md_sampler_t *s, int *n);

/* Whether a step reads more than the argmax: temperature > 0 or a penalty on. */
bool md_sampler_needs_logits(const md_sampler_t *s);

/* The one uniform draw in [0, 1) a sampling step consumes (greedy steps
 * consume none). 24 random bits, so it is exact in float. */
float md_sampler_next_uniform(md_sampler_t *s);

/* The step without its draw: u is the uniform md_sampler_next_uniform gave. */
int32_t md_sampler_sample_with(md_sampler_t *s, float *logits, float u);

#endif
