/*
 * test_hf_fixtures.c — the CPU engine against Hugging Face transformers.
 *
 * For every fixture under tests/fixtures/hf (written by
 * scripts/make_fixtures.py: random-weight Qwen3.5 checkpoints with HF's fp32
 * logits), the CPU engine's logits must match BOTH references — HF's one-pass
 * forward (chunked delta rule) and HF's cached decode one token at a time —
 * in every mode: md_session_prefill over all tokens, md_session_decode one by
 * one, prefill in pieces followed by decode, and the last rows only. The rule
 * (md_compare_logits): ||out - ref|| / ||ref|| <= 1e-4 over all rows, and the
 * same argmax on every row whose reference top-1 minus top-2 gap exceeds
 * 0.001 x that row's standard deviation. The same again through the CLI
 * contract: `megadelta logits` file size and contents, --mode step, --last N.
 *
 * Run: ctest -R test_hf_fixtures (label cpu). Prints the measured error of
 * every fixture and mode.
 */
#include <stdlib.h>
#include <string.h>

#include "fixture.h"
#include "test_util.h"

#define REL_TOL 1e-4
#define GAP_FACTOR 0.001

/* out holds rows row0..row0+rows-1 of the fixture's sequence. */
static void check_rows(const fixture *f, const char *what, const float *out, int row0, int rows) {
    for (int r = 0; r < 2; r++) {
        md_logits_cmp c = md_compare_logits(out, f->ref[r] + (size_t)row0 * f->V, rows, f->V, GAP_FACTOR);
        fprintf(stderr, "%-20s %-26s vs HF %-7s rel L2 %.2e, argmax checked on %d/%d rows, %d differ\n", f->name,
                what, r ? "step" : "prefill", c.rel_l2, c.rows_checked, rows, c.argmax_mismatch);
        CHECK_MSG(c.finite, "%s %s: NaN or Inf in the logits", f->name, what);
        CHECK_MSG(c.rel_l2 <= REL_TOL, "%s %s vs %s: rel L2 %.3g > %g", f->name, what, k_ref_files[r], c.rel_l2, REL_TOL);
        CHECK_MSG(c.argmax_mismatch == 0, "%s %s vs %s: argmax differs on %d rows (first: row %d)", f->name, what,
                  k_ref_files[r], c.argmax_mismatch, row0 + c.first_mismatch);
        /* the argmax rule must actually be exercised, not pass on zero rows */
        CHECK_MSG(c.rows_checked * 10 >= rows * 9, "%s %s: only %d of %d rows have a clear top-1", f->name, what,
                  c.rows_checked, rows);
    }
}

static int argmax(const float *x, int n) {
    int best = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[best]) best = i;
    return best;
}

static void run_engine(const fixture *f) {
    const int T = f->T, V = f->V;
    md_model_t *m = NULL;
    md_session_t *s = NULL;
    CHECK_OK(md_model_load(f->dir, &m));
    if (!m) return;
    CHECK(md_model_get_info(m)->vocab_size == V);
    md_session_params p = md_session_default_params();
    p.backend = MD_BACKEND_CPU;
    CHECK_OK(md_session_init(m, &p, &s));
    if (!s) {
        md_model_free(m);
        return;
    }
    float *out = calloc((size_t)T * V, sizeof *out);

    /* all tokens at once */
    CHECK_OK(md_session_prefill(s, f->tokens, T, out, T));
    CHECK(md_session_pos(s) == T);
    check_rows(f, "prefill", out, 0, T);

    /* one by one through the decode path */
    CHECK_OK(md_session_reset(s));
    CHECK(md_session_pos(s) == 0);
    memset(out, 0, (size_t)T * V * sizeof *out);
    for (int t = 0; t < T; t++) CHECK_OK(md_session_decode(s, f->tokens[t], out + (size_t)t * V));
    check_rows(f, "decode", out, 0, T);

    /* two prefills (the second starts mid-sequence, across the 64 mark), then decode */
    CHECK_OK(md_session_reset(s));
    memset(out, 0, (size_t)T * V * sizeof *out);
    const int k1 = T / 3, k2 = T - 9;
    CHECK_OK(md_session_prefill(s, f->tokens, k1, out, k1));
    CHECK_OK(md_session_prefill(s, f->tokens + k1, k2 - k1, out + (size_t)k1 * V, k2 - k1));
    for (int t = k2; t < T; t++) CHECK_OK(md_session_decode(s, f->tokens[t], out + (size_t)t * V));
    check_rows(f, "prefill+prefill+decode", out, 0, T);

    /* only the last rows */
    CHECK_OK(md_session_reset(s));
    memset(out, 0, (size_t)T * V * sizeof *out);
    CHECK_OK(md_session_prefill(s, f->tokens, T, out, 3));
    check_rows(f, "prefill, last 3 rows", out, T - 3, 3);

    /* the argmax path: the reference's top-1 wherever its gap is clear */
    CHECK_OK(md_session_reset(s));
    int argmax_bad = 0;
    for (int t = 0; t < T; t++) {
        int32_t next = -1;
        CHECK_OK(md_session_decode_argmax(s, f->tokens[t], &next));
        md_logits_cmp c = md_compare_logits(f->ref[0] + (size_t)t * V, f->ref[0] + (size_t)t * V, 1, V, GAP_FACTOR);
        if (c.rows_checked && next != argmax(f->ref[0] + (size_t)t * V, V)) argmax_bad++;
    }
    CHECK_MSG(argmax_bad == 0, "%s: decode_argmax differs from HF's top-1 on %d rows", f->name, argmax_bad);

    free(out);
    md_session_free(s);
    md_model_free(m);
}

/* Runs `megadelta logits` and checks the file it writes: rows x V float32. */
static void run_cli_case(const fixture *f, const char *tokens, const char *extra, int rows, const char *what) {
    char out_path[4096], cmd[16384], log[8192];
    snprintf(out_path, sizeof out_path, "%s/%s-cli.f32", md_test_tmp(), f->name);
    remove(out_path);
    snprintf(cmd, sizeof cmd, "'%s' logits -m '%s' --tokens '%s' -o '%s' %s", md_test_bin(), f->dir, tokens, out_path,
             extra);
    int rc = md_test_run(cmd, log, sizeof log);
    CHECK_MSG(rc == 0, "%s: `megadelta logits %s` exited %d:\n%s", f->name, extra, rc, log);
    void *data = NULL;
    long n = md_test_read_file(out_path, &data);
    CHECK_MSG(n == (long)rows * f->V * 4, "%s: `megadelta logits %s` wrote %ld bytes, expected %d x %d x 4", f->name,
              extra, n, rows, f->V);
    if (n == (long)rows * f->V * 4) check_rows(f, what, data, f->T - rows, rows);
    free(data);
}

static void run_cli(const fixture *f) {
    char *tokens = fixture_tokens_arg(f);
    run_cli_case(f, tokens, "", f->T, "cli (default mode)");
    run_cli_case(f, tokens, "--mode prefill", f->T, "cli --mode prefill");
    run_cli_case(f, tokens, "--mode step", f->T, "cli --mode step");
    run_cli_case(f, tokens, "--last 5", 5, "cli --last 5");
    run_cli_case(f, tokens, "--mode step --last 7", 7, "cli --mode step --last 7");
    free(tokens);
}

int main(void) {
    char names[FIXTURE_MAX][128];
    const int n = fixture_list(names);
    /* scripts/make_fixtures.py writes three; fewer means a fixture went missing */
    CHECK_MSG(n >= 3, "found %d fixtures under %s/hf (expected at least 3)", n, md_test_fixtures());
    for (int i = 0; i < n; i++) {
        fixture f;
        bool ok = fixture_load(names[i], &f);
        CHECK_MSG(ok, "fixture %s does not load", names[i]);
        if (!ok) continue;
        run_engine(&f);
        run_cli(&f);
        fixture_free(&f);
    }
    return md_test_finish("test_hf_fixtures");
}
