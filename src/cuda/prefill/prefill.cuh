/*
 * prefill.cuh — the prefill pipeline's state (see prefill.cu).
 */
#ifndef MD_CUDA_PREFILL_CUH
#define MD_CUDA_PREFILL_CUH

#include "cuda/backend.cuh"

struct md_prefill {
    int unused;
};

#endif
