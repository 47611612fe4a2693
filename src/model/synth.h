/*
 * synth.h — synthetic checkpoints: a real model directory in the release
 * layout (config.json with text_config, BF16 model.safetensors with
 * model.language_model.* and mtp.* tensors, a small byte-level
 * tokenizer.json with the ChatML special tokens) filled with seeded random
 * weights of a preset's exact shapes.
 */
#ifndef MD_MODEL_SYNTH_H
#define MD_MODEL_SYNTH_H

#include <stdint.h>

#include "megadelta.h"

/* The preset names, NULL-terminated ("tiny", "qwen3.5-0.8b", ...). */
extern const char *const md_synth_presets[];

/* Writes the directory (created if missing). progress, when not NULL, is
 * called with the fraction of bytes written so far. */
md_status md_synth_write(const char *preset, const char *out_dir, uint64_t seed,
                         void (*progress)(double fraction, void *ctx), void *ctx);

#endif
