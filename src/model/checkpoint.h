/*
 * checkpoint.h — all safetensors files of a model directory (a single
 * model.safetensors, or the shards listed by model.safetensors.index.json)
 * and lookup of tensors by name across them.
 */
#ifndef MD_MODEL_CHECKPOINT_H
#define MD_MODEL_CHECKPOINT_H

#include "model/safetensors.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct md_checkpoint {
    md_safetensors *files;   /* [n_files] */
    int n_files;
    const md_tensor **index; /* [n_tensors] sorted by name */
    int n_tensors;
} md_checkpoint;

md_status md_checkpoint_open(const char *dir, md_checkpoint *out);
void md_checkpoint_close(md_checkpoint *ck);
/* NULL when absent. */
const md_tensor *md_checkpoint_find(const md_checkpoint *ck, const char *name);

#ifdef __cplusplus
}
#endif

#endif
