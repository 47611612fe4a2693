/*
 * prefill.cu — GPU prefill. This first version feeds the prompt through the
 * decode megakernel one token at a time: exact by construction (it is the
 * decode path), slow for long prompts. The chunked, tensor-core prefill
 * replaces it.
 */
#include <stdlib.h>

#include "cuda/common.cuh"
#include "cuda/prefill/prefill.cuh"

md_status md_prefill_init(md_session_t *s) {
    md_cuda_ctx *g = md_cuda_of(s);
    g->pre = (struct md_prefill *)calloc(1, sizeof *g->pre);
    return g->pre ? MD_OK : md_fail(MD_ERR_OUT_OF_MEMORY, "prefill: out of memory");
}

void md_prefill_free(md_session_t *s) {
    md_cuda_ctx *g = md_cuda_of(s);
    free(g->pre);
    g->pre = NULL;
}

md_status md_prefill_run(md_session_t *s, const int32_t *tokens, int n, float *d_logits, int n_rows) {
    md_cuda_ctx *g = md_cuda_of(s);
    const size_t V = (size_t)g->dims.vocab;
    for (int t = 0; t < n; t++) {
        const int row = t - (n - n_rows);
        md_status st = md_decode_run(s, s->pos + t, tokens[t], 1, NULL, row >= 0 ? d_logits + (size_t)row * V : NULL, NULL);
        if (st != MD_OK) return st;
    }
    return MD_OK;
}
