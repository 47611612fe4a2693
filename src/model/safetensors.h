/*
 * safetensors.h — one memory-mapped .safetensors file, its header parsed and
 * checked: header size within the file, every dtype known, byte sizes that
 * match the shapes, offsets inside the data area and not overlapping.
 */
#ifndef MD_MODEL_SAFETENSORS_H
#define MD_MODEL_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "common/mapped_file.h"
#include "megadelta.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum md_dtype {
    MD_DTYPE_F32 = 0,
    MD_DTYPE_F16,
    MD_DTYPE_BF16,
    MD_DTYPE_OTHER, /* a valid safetensors dtype the engine does not compute with (I64, F8_E4M3, ...) */
} md_dtype;

#define MD_MAX_DIMS 8

typedef struct md_tensor {
    const char *name;          /* points into the owning file's name storage */
    const char *file;          /* the file's path */
    md_dtype dtype;
    char dtype_name[12];       /* as written in the header, e.g. "BF16" */
    int ndim;
    int64_t shape[MD_MAX_DIMS];
    int64_t numel;
    const uint8_t *data;       /* into the map */
    size_t nbytes;
} md_tensor;

typedef struct md_safetensors {
    char *path;
    md_mapped_file map;
    md_tensor *tensors;        /* [n_tensors], in header order */
    int n_tensors;
    char *names;               /* storage for tensor names */
} md_safetensors;

md_status md_safetensors_open(const char *path, md_safetensors *out);
void md_safetensors_close(md_safetensors *f);

const char *md_dtype_name(md_dtype dt);
size_t md_dtype_size(md_dtype dt);

#ifdef __cplusplus
}
#endif

#endif
