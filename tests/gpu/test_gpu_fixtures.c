/*
 * test_gpu_fixtures.c — the GPU backend against the HF transformers fixtures
 * (tests/fixtures/hf/*): for both decode paths (hopper where the device has
 * it, portable always) and both modes (step: decode one token at a time;
 * prefill: all tokens at once), ||gpu - hf|| / ||hf|| <= 1e-2 and the same
 * argmax on every row whose reference top-1 minus top-2 gap exceeds 0.1 x the
 * row's standard deviation, against both HF references (prefill and step).
 */
#include <stdlib.h>

#include "../cpu/fixture.h"
#include "test_util.h"

static void check_mode(const fixture *fx, md_model_t *m, md_kernel kernel, bool step) {
    md_session_params p = md_session_default_params();
    p.backend = MD_BACKEND_GPU;
    p.kernel = kernel;
    p.n_ctx = fx->T;
    md_session_t *s = NULL;
    CHECK_OK(md_session_init(m, &p, &s));
    if (!s) return;
    float *out = malloc((size_t)fx->T * fx->V * sizeof *out);
    if (step) {
        for (int t = 0; t < fx->T; t++) CHECK_OK(md_session_decode(s, fx->tokens[t], out + (size_t)t * fx->V));
    } else {
        CHECK_OK(md_session_prefill(s, fx->tokens, fx->T, out, fx->T));
    }
    for (int r = 0; r < 2; r++) {
        md_logits_cmp c = md_compare_logits(out, fx->ref[r], fx->T, fx->V, 0.1);
        fprintf(stderr, "%-20s %-8s %-7s vs HF %-7s rel L2 %.3e, argmax %d/%d rows differ\n", fx->name,
                kernel == MD_KERNEL_HOPPER ? "hopper" : "portable", step ? "step" : "prefill", r ? "step" : "prefill", c.rel_l2,
                c.argmax_mismatch, c.rows_checked);
        CHECK_MSG(c.rel_l2 <= 1e-2, "%s: rel L2 %.3e", fx->name, c.rel_l2);
        CHECK_MSG(c.argmax_mismatch == 0, "%s: %d argmax mismatches, first at row %d", fx->name, c.argmax_mismatch, c.first_mismatch);
    }
    free(out);
    md_session_free(s);
}

int main(void) {
    char names[FIXTURE_MAX][128];
    const int n = fixture_list(names);
    CHECK_MSG(n >= 3, "expected at least 3 fixtures under %s/hf, found %d", md_test_fixtures(), n);
    int major = 0;
    for (int i = 0; i < n; i++) {
        fixture fx;
        CHECK(fixture_load(names[i], &fx));
        if (!fx.tokens) continue;
        md_model_t *m = NULL;
        CHECK_OK(md_model_load(fx.dir, &m));
        if (m) {
            md_session_params p = md_session_default_params();
            p.backend = MD_BACKEND_GPU;
            p.n_ctx = 8;
            md_session_t *s = NULL;
            if (!major && md_session_init(m, &p, &s) == MD_OK) {
                md_gpu_info info;
                if (md_session_gpu_info(s, &info) == MD_OK) major = info.cc_major;
                md_session_free(s);
            }
            for (int k = 0; k < 2; k++) {
                const md_kernel kern = k == 0 ? MD_KERNEL_PORTABLE : MD_KERNEL_HOPPER;
                if (kern == MD_KERNEL_HOPPER && major < 9) continue;
                check_mode(&fx, m, kern, true);
                check_mode(&fx, m, kern, false);
            }
            md_model_free(m);
        }
        fixture_free(&fx);
    }
    return md_test_finish("test_gpu_fixtures");
}
