/*
 * test_context.c — the session's context size and state handling, checked
 * against the HF fixtures (tests/fixtures/hf) so "state unchanged" means "the
 * logits that follow still match transformers":
 *   - default n_ctx = min(max_position_embeddings, 32768); larger is an error;
 *   - a sequence that fills the context exactly works, one more token is
 *     MD_ERR_CONTEXT_FULL (prefill, decode, generate) with pos and state unchanged;
 *   - a rejected call (context full, token id outside the vocabulary) leaves
 *     the state as it was: the sequence goes on and still matches HF;
 *   - reset forgets everything: after another sequence, the fixture's logits again;
 *   - the CLI's -c/--ctx: too large, or too small for the tokens, is one error
 *     line and a non-zero exit.
 * Run: ctest -R test_context (label cpu).
 */
#include <stdlib.h>
#include <string.h>

#include "fixture.h"
#include "test_util.h"

#define REL_TOL 1e-4
#define GAP_FACTOR 0.001

static bool rows_match(const fixture *f, const float *out, int row0, int rows) {
    md_logits_cmp c = md_compare_logits(out, f->ref[0] + (size_t)row0 * f->V, rows, f->V, GAP_FACTOR);
    if (c.rel_l2 <= REL_TOL && c.argmax_mismatch == 0) return true;
    fprintf(stderr, "%s rows %d..%d: rel L2 %.3g, %d argmax differ\n", f->name, row0, row0 + rows - 1, c.rel_l2,
            c.argmax_mismatch);
    return false;
}

static bool contains(const char *s, const char *sub) { return s && strstr(s, sub) != NULL; }

static md_session_t *open_session(md_model_t *m, int n_ctx) {
    md_session_params p = md_session_default_params();
    p.backend = MD_BACKEND_CPU;
    p.n_ctx = n_ctx;
    md_session_t *s = NULL;
    CHECK_OK(md_session_init(m, &p, &s));
    return s;
}

/* Default and maximum context sizes. */
static void check_ctx_limits(const fixture *f, md_model_t *m) {
    const int max_pos = md_model_get_info(m)->max_position_embeddings;
    const int want = max_pos < 32768 ? max_pos : 32768;
    md_session_t *s = open_session(m, 0);
    CHECK_MSG(s && md_session_n_ctx(s) == want, "%s: default n_ctx %d, expected min(%d, 32768)", f->name,
              s ? md_session_n_ctx(s) : -1, max_pos);
    md_session_free(s);

    md_session_params p = md_session_default_params();
    p.backend = MD_BACKEND_CPU;
    p.n_ctx = max_pos + 1;
    static int sentinel;
    s = (md_session_t *)&sentinel; /* must come back NULL */
    md_status st = md_session_init(m, &p, &s);
    CHECK_MSG(st == MD_ERR_INVALID_ARG && s == NULL, "%s: n_ctx %d past max_position_embeddings gave %s", f->name,
              p.n_ctx, md_status_name(st));
    CHECK_MSG(contains(md_last_error(), "max_position_embeddings"), "message: %s", md_last_error());
    p.n_ctx = -1;
    CHECK(md_session_init(m, &p, &s) == MD_ERR_INVALID_ARG && s == NULL);
}

/* A context of exactly T tokens: full is fine, one more is refused. */
static void check_full_context(const fixture *f, md_model_t *m) {
    const int T = f->T, V = f->V;
    md_session_t *s = open_session(m, T);
    if (!s) return;
    float *out = calloc((size_t)T * V, sizeof *out);
    int32_t next = -1;

    /* 2/3 of the sequence, then a prefill one token too long: refused, nothing changes */
    const int k = 2 * T / 3;
    CHECK_OK(md_session_prefill(s, f->tokens, k, out, k));
    int32_t *too_long = malloc((size_t)(T - k + 1) * sizeof *too_long);
    memcpy(too_long, f->tokens + k, (size_t)(T - k) * sizeof *too_long);
    too_long[T - k] = f->tokens[0];
    md_status st = md_session_prefill(s, too_long, T - k + 1, out + (size_t)k * V, 1);
    CHECK_MSG(st == MD_ERR_CONTEXT_FULL, "prefill past the context gave %s", md_status_name(st));
    CHECK_MSG(contains(md_last_error(), "context"), "message: %s", md_last_error());
    CHECK(md_session_pos(s) == k);

    /* a token outside the vocabulary in the middle of a batch: refused, nothing changes */
    int32_t bad[3] = {f->tokens[k], V, f->tokens[k + 1]};
    st = md_session_prefill(s, bad, 3, NULL, 0);
    CHECK_MSG(st == MD_ERR_INVALID_ARG, "token id %d gave %s", V, md_status_name(st));
    CHECK(md_session_pos(s) == k);
    CHECK(md_session_decode(s, -1, NULL) == MD_ERR_INVALID_ARG);
    CHECK(md_session_pos(s) == k);

    /* the rest fills the context exactly and still matches transformers */
    CHECK_OK(md_session_prefill(s, f->tokens + k, T - k - 1, out + (size_t)k * V, T - k - 1));
    CHECK_OK(md_session_decode(s, f->tokens[T - 1], out + (size_t)(T - 1) * V));
    CHECK(md_session_pos(s) == T);
    CHECK_MSG(rows_match(f, out, 0, T), "%s: logits after refused calls differ from HF", f->name);

    /* full: every way of adding a token is refused */
    CHECK(md_session_decode(s, f->tokens[0], out) == MD_ERR_CONTEXT_FULL);
    CHECK(md_session_decode_argmax(s, f->tokens[0], &next) == MD_ERR_CONTEXT_FULL);
    CHECK(md_session_prefill(s, f->tokens, 1, out, 1) == MD_ERR_CONTEXT_FULL);
    CHECK(md_session_generate_argmax(s, f->tokens[0], 1, NULL, NULL) == MD_ERR_CONTEXT_FULL);
    CHECK(md_session_pos(s) == T);

    /* reset after another sequence: the fixture's logits again */
    CHECK_OK(md_session_reset(s));
    CHECK(md_session_pos(s) == 0);
    int32_t *other = malloc((size_t)T * sizeof *other);
    for (int i = 0; i < T; i++) other[i] = f->tokens[T - 1 - i];
    CHECK_OK(md_session_prefill(s, other, T, NULL, 0));
    CHECK_OK(md_session_reset(s));
    memset(out, 0, (size_t)T * V * sizeof *out);
    CHECK_OK(md_session_prefill(s, f->tokens, T, out, T));
    CHECK_MSG(rows_match(f, out, 0, T), "%s: logits after reset differ from HF", f->name);

    free(other);
    free(too_long);
    free(out);
    md_session_free(s);
}

static int count_lines(const char *s) {
    int n = 0;
    for (; *s; s++) n += *s == '\n';
    return n;
}

/* Expects the CLI to fail cleanly: exit status 1, exactly one line "megadelta: error: ...<needle>...". */
static void check_cli_error(const char *args, const char *needle) {
    char cmd[8192], log[8192];
    snprintf(cmd, sizeof cmd, "'%s' %s", md_test_bin(), args);
    int rc = md_test_run(cmd, log, sizeof log);
    CHECK_MSG(rc == 1, "`megadelta %s` exited %d (expected 1)", args, rc);
    CHECK_MSG(count_lines(log) == 1 && strncmp(log, "megadelta: error: ", 18) == 0 && contains(log, needle),
              "`megadelta %s` should print one error line naming '%s', printed:\n%s", args, needle, log);
}

static void check_cli(const fixture *f, md_model_t *m) {
    const int max_pos = md_model_get_info(m)->max_position_embeddings;
    char args[4096], out[4096];
    snprintf(out, sizeof out, "%s/ctx.f32", md_test_tmp());
    snprintf(args, sizeof args, "logits -m '%s' --ctx %d --tokens '1 2 3' -o '%s'", f->dir, max_pos + 1, out);
    check_cli_error(args, "max_position_embeddings");
    snprintf(args, sizeof args, "logits -m '%s' -c 4 --tokens '1 2 3 4 5' -o '%s'", f->dir, out);
    check_cli_error(args, "context");
    snprintf(args, sizeof args, "logits -m '%s' --mode step -c 4 --tokens '1 2 3 4 5' -o '%s'", f->dir, out);
    check_cli_error(args, "context");
    snprintf(args, sizeof args, "logits -m '%s' --ctx 0 --tokens '1 2 3' -o '%s'", f->dir, out);
    check_cli_error(args, "--ctx");

    /* -c exactly T works and is the same contract */
    char *tokens = fixture_tokens_arg(f), cmd[16384], log[8192];
    snprintf(cmd, sizeof cmd, "'%s' logits -m '%s' -c %d --tokens '%s' -o '%s'", md_test_bin(), f->dir, f->T, tokens, out);
    int rc = md_test_run(cmd, log, sizeof log);
    CHECK_MSG(rc == 0, "-c %d: exit %d:\n%s", f->T, rc, log);
    void *data = NULL;
    long n = md_test_read_file(out, &data);
    CHECK(n == (long)f->T * f->V * 4);
    if (n == (long)f->T * f->V * 4) CHECK_MSG(rows_match(f, data, 0, f->T), "%s: CLI -c %d", f->name, f->T);
    free(data);
    free(tokens);
}

int main(void) {
    char names[FIXTURE_MAX][128];
    const int n = fixture_list(names);
    CHECK_MSG(n >= 2, "found %d fixtures under %s/hf", n, md_test_fixtures());
    bool saw_small = false, saw_large = false; /* max_position_embeddings below and above 32768 */
    for (int i = 0; i < n; i++) {
        fixture f;
        if (!fixture_load(names[i], &f)) {
            CHECK_MSG(false, "fixture %s does not load", names[i]);
            continue;
        }
        md_model_t *m = NULL;
        CHECK_OK(md_model_load(f.dir, &m));
        if (m) {
            const int max_pos = md_model_get_info(m)->max_position_embeddings;
            saw_small |= max_pos < 32768;
            saw_large |= max_pos > 32768;
            check_ctx_limits(&f, m);
            check_full_context(&f, m);
            if (i == 0) check_cli(&f, m);
        }
        md_model_free(m);
        fixture_free(&f);
    }
    CHECK_MSG(saw_small && saw_large, "the fixtures should include max_position_embeddings below and above 32768");
    return md_test_finish("test_context");
}
