/*
 * test_gpu_vs_cpu.c — the GPU decode path against the CPU oracle.
 * Feeds `steps` pseudo-random tokens one by one through both backends and
 * compares every step's logits: ||gpu - cpu|| / ||cpu|| <= 1e-2 and the same
 * argmax wherever the CPU's top-1 minus top-2 gap exceeds 0.1 x the row's
 * standard deviation. Then checks that md_session_generate_argmax (many steps
 * in one launch) yields the same greedy tokens as one-by-one decoding, and that
 * GPU prefill matches the CPU on the whole sequence.
 * Usage: test_gpu_vs_cpu --preset NAME | -m DIR  [--steps N] [--kernel auto|hopper|portable]
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "gpu_test_common.h"

int main(int argc, char **argv) {
    const char *preset = "tiny", *dir = NULL, *kernel = "auto";
    int steps = 64;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--preset")) preset = argv[i + 1];
        else if (!strcmp(argv[i], "-m")) dir = argv[i + 1];
        else if (!strcmp(argv[i], "--steps")) steps = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--kernel")) kernel = argv[i + 1];
    }
    char buf[4096];
    if (!dir && !(dir = gpu_test_preset_dir(preset, buf, sizeof buf))) return 1;
    md_model_t *m = NULL;
    CHECK_OK(md_model_load(dir, &m));
    if (!m) return md_test_finish("test_gpu_vs_cpu");
    const int V = md_model_get_info(m)->vocab_size;
    md_session_params pc = md_session_default_params(), pg = pc;
    pc.backend = MD_BACKEND_CPU;
    pg.backend = MD_BACKEND_GPU;
    pg.kernel = gpu_test_kernel(kernel);
    pc.n_ctx = pg.n_ctx = steps + 8;
    md_session_t *sc = NULL, *sg = NULL;
    CHECK_OK(md_session_init(m, &pc, &sc));
    CHECK_OK(md_session_init(m, &pg, &sg));
    if (!sc || !sg) return md_test_finish("test_gpu_vs_cpu");

    int32_t *toks = malloc((size_t)steps * sizeof *toks);
    float *lc = malloc((size_t)steps * V * sizeof *lc), *lg = malloc((size_t)steps * V * sizeof *lg);
    uint64_t x = 0x9e3779b97f4a7c15ull;
    for (int t = 0; t < steps; t++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        toks[t] = (int32_t)(x % (uint64_t)V);
    }
    double worst = 0;
    int worst_step = -1, mismatches = 0, checked = 0;
    for (int t = 0; t < steps; t++) {
        CHECK_OK(md_session_decode(sc, toks[t], lc + (size_t)t * V));
        CHECK_OK(md_session_decode(sg, toks[t], lg + (size_t)t * V));
        md_logits_cmp c = md_compare_logits(lg + (size_t)t * V, lc + (size_t)t * V, 1, V, 0.1);
        if (c.rel_l2 > worst) worst = c.rel_l2, worst_step = t;
        mismatches += c.argmax_mismatch;
        checked += c.rows_checked;
    }
    fprintf(stderr, "%s, kernel %s: %d steps, worst rel L2 %.3e (step %d), argmax %d/%d rows differ\n", dir, kernel, steps, worst,
            worst_step, mismatches, checked);
    CHECK_MSG(worst <= 1e-2, "step logits differ from the CPU: rel L2 %.3e at step %d", worst, worst_step);
    CHECK_MSG(mismatches == 0, "%d argmax mismatches", mismatches);

    /* greedy tokens: one launch of many steps == step-by-step argmax */
    const int n_gen = steps / 2;
    int32_t *gen = malloc((size_t)n_gen * sizeof *gen), *ref = malloc((size_t)n_gen * sizeof *ref);
    CHECK_OK(md_session_reset(sg));
    CHECK_OK(md_session_generate_argmax(sg, toks[0], n_gen, gen, NULL));
    CHECK_OK(md_session_reset(sg));
    int32_t tok = toks[0];
    for (int i = 0; i < n_gen; i++) {
        CHECK_OK(md_session_decode_argmax(sg, tok, &ref[i]));
        tok = ref[i];
    }
    int diff = 0;
    for (int i = 0; i < n_gen; i++) diff += gen[i] != ref[i];
    CHECK_MSG(diff == 0, "generate_argmax differs from step-by-step argmax in %d of %d tokens", diff, n_gen);

    /* GPU prefill over the whole sequence against the CPU's step logits */
    CHECK_OK(md_session_reset(sg));
    CHECK_OK(md_session_prefill(sg, toks, steps, lg, steps));
    md_logits_cmp c = md_compare_logits(lg, lc, steps, V, 0.1);
    fprintf(stderr, "prefill(%d): rel L2 %.3e, argmax %d/%d rows differ\n", steps, c.rel_l2, c.argmax_mismatch, c.rows_checked);
    CHECK_MSG(c.rel_l2 <= 1e-2, "GPU prefill logits differ: rel L2 %.3e", c.rel_l2);
    CHECK_MSG(c.argmax_mismatch == 0, "GPU prefill: %d argmax mismatches (first row %d)", c.argmax_mismatch, c.first_mismatch);

    free(gen);
    free(ref);
    free(toks);
    free(lc);
    free(lg);
    md_session_free(sc);
    md_session_free(sg);
    md_model_free(m);
    return md_test_finish("test_gpu_vs_cpu");
}
