/*
 * qkv_rows.h — the decode megakernel's dealing of the attention
 * in-projection's rows to CTAs (qkv_rows.c).
 */
#ifndef MD_CUDA_DECODE_QKV_ROWS_H
#define MD_CUDA_DECODE_QKV_ROWS_H

#include "megadelta.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The rows of w_qkv ([per query head: D query rows, D gate rows][k: kvd]
 * [v: kvd], hq heads, qd = hq D) that CTA c of G multiplies: [t[4c], t[4c +
 * 1]) (q, k or v rows), then [t[4c + 2], t[4c + 3]) (gate rows), with
 * att_ctas CTAs running whole-context attention items. Sets *out to a
 * malloc'ed [4G]. */
md_status md_dec_qkv_table(int hq, int D, int qd, int kvd, int G, int att_ctas, int **out);

#ifdef __cplusplus
}
#endif

#endif
