/*
 * test_gpu_repeat.c — the decode kernel is bitwise repeatable: `runs` times
 * from a reset, the same tokens give byte-identical logits at every step.
 */
#include <stdlib.h>
#include <string.h>

#include "gpu_test_common.h"

int main(int argc, char **argv) {
    const char *preset = "tiny";
    int runs = 100, steps = 16;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--preset")) preset = argv[i + 1];
        else if (!strcmp(argv[i], "--runs")) runs = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--steps")) steps = atoi(argv[i + 1]);
    }
    char buf[4096];
    const char *dir = gpu_test_preset_dir(preset, buf, sizeof buf);
    if (!dir) return 1;
    md_model_t *m = NULL;
    CHECK_OK(md_model_load(dir, &m));
    if (!m) return md_test_finish("test_gpu_repeat");
    const int V = md_model_get_info(m)->vocab_size;
    md_session_params pg = md_session_default_params();
    pg.backend = MD_BACKEND_GPU;
    pg.n_ctx = steps + 1;
    md_session_t *s = NULL;
    CHECK_OK(md_session_init(m, &pg, &s));
    if (!s) return md_test_finish("test_gpu_repeat");
    float *first = malloc((size_t)steps * V * sizeof *first), *cur = malloc((size_t)V * sizeof *cur);
    int differing = 0;
    for (int r = 0; r < runs; r++) {
        CHECK_OK(md_session_reset(s));
        for (int t = 0; t < steps; t++) {
            const int32_t tok = (int32_t)((t * 7919 + 13) % V);
            float *dst = r == 0 ? first + (size_t)t * V : cur;
            CHECK_OK(md_session_decode(s, tok, dst));
            if (r > 0 && memcmp(cur, first + (size_t)t * V, (size_t)V * sizeof *cur) != 0) {
                if (differing++ == 0) fprintf(stderr, "run %d step %d differs from run 0\n", r, t);
            }
        }
    }
    CHECK_MSG(differing == 0, "%d of %d step results were not bitwise identical", differing, runs * steps);
    fprintf(stderr, "%d runs x %d steps: %d differing\n", runs, steps, differing);
    free(first);
    free(cur);
    md_session_free(s);
    md_model_free(m);
    return md_test_finish("test_gpu_repeat");
}
