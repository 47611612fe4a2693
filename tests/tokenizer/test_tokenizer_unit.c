/*
 * test_tokenizer_unit.c — the tokenizer on small hand-made tokenizer.json
 * files, where the right answer is known by construction:
 * - BPE merge order: lower rank first, leftmost first among equal ranks,
 *   overlapping pairs, merges written as "a b" or ["a", "b"];
 * - added tokens, special-token parsing on and off, NFC before the split;
 * - invalid UTF-8 input is an error naming the offset (the documented
 *   behaviour), for each kind of ill-formed sequence;
 * - decoding: unknown ids as <unk:ID>, broken UTF-8 as U+FFFD, the streaming
 *   decoder holding back partial characters;
 * - unsupported or malformed files and a missing tokenizer fail with the
 *   right status and a message naming the field;
 * - JSON escapes in the vocabulary, ignore_merges, the GPT-2 regex of
 *   ByteLevel(use_regex), a 1 MB whitespace run, round trips, and two
 *   threads encoding at once.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "test_util.h"
#include "tok_test_util.h"
#include "tokenizer/tokenizer.h"

/* ------------------------------------------------------------ building files */

static char g_path[4096];

/* The byte-level symbol of byte b as UTF-8. */
static void byte_sym(int b, char out[4]) {
    uint32_t cp = md_byte_level_cp((uint8_t)b);
    if (cp < 0x80) {
        out[0] = (char)cp, out[1] = 0;
    } else {
        out[0] = (char)(0xC0 | (cp >> 6)), out[1] = (char)(0x80 | (cp & 0x3F)), out[2] = 0;
    }
}

typedef struct spec {
    const char *const *merges; /* pairs "a b" of byte-level strings; tokens are added for them */
    int n_merges;
    bool merges_as_strings;
    const char *regex;         /* NULL: split on nothing (one piece) */
    bool nfc;
    bool ignore_merges;
    const char *extra_token;   /* a vocabulary entry without a merge */
} spec;

/* Writes a byte-level BPE tokenizer: ids 0-255 the bytes, then one token per
 * merge, then <|end|> (special) and <tag> (not special) as added tokens. */
static const char *write_tok(const char *name, const spec *s) {
    cJSON *root = cJSON_CreateObject();
    cJSON *added = cJSON_AddArrayToObject(root, "added_tokens");
    cJSON *model = cJSON_CreateObject();
    cJSON_AddStringToObject(model, "type", "BPE");
    cJSON *vocab = cJSON_AddObjectToObject(model, "vocab");
    cJSON *merges = cJSON_AddArrayToObject(model, "merges");
    char sym[4];
    for (int b = 0; b < 256; b++) {
        byte_sym(b, sym);
        cJSON_AddNumberToObject(vocab, sym, b);
    }
    int id = 256;
    for (int i = 0; i < s->n_merges; i++) {
        char a[64], b[64], joined[128];
        sscanf(s->merges[i], "%63s %63s", a, b);
        snprintf(joined, sizeof joined, "%s%s", a, b);
        if (!cJSON_GetObjectItemCaseSensitive(vocab, joined)) cJSON_AddNumberToObject(vocab, joined, id++);
        if (s->merges_as_strings) {
            cJSON_AddItemToArray(merges, cJSON_CreateString(s->merges[i]));
        } else {
            cJSON *pair = cJSON_CreateArray();
            cJSON_AddItemToArray(pair, cJSON_CreateString(a));
            cJSON_AddItemToArray(pair, cJSON_CreateString(b));
            cJSON_AddItemToArray(merges, pair);
        }
    }
    if (s->extra_token) cJSON_AddNumberToObject(vocab, s->extra_token, id++);
    const char *names[2] = {"<|end|>", "<tag>"};
    for (int i = 0; i < 2; i++) {
        cJSON *t = cJSON_CreateObject();
        cJSON_AddNumberToObject(t, "id", 1000 + i);
        cJSON_AddStringToObject(t, "content", names[i]);
        cJSON_AddBoolToObject(t, "special", i == 0);
        cJSON_AddBoolToObject(t, "normalized", 0);
        cJSON_AddItemToArray(added, t);
    }
    if (s->nfc) cJSON_AddStringToObject(cJSON_AddObjectToObject(root, "normalizer"), "type", "NFC");
    else cJSON_AddNullToObject(root, "normalizer");
    cJSON *pre = cJSON_AddObjectToObject(root, "pre_tokenizer");
    cJSON_AddStringToObject(pre, "type", "Sequence");
    cJSON *list = cJSON_AddArrayToObject(pre, "pretokenizers");
    if (s->regex) {
        cJSON *split = cJSON_CreateObject();
        cJSON_AddStringToObject(split, "type", "Split");
        cJSON_AddStringToObject(cJSON_AddObjectToObject(split, "pattern"), "Regex", s->regex);
        cJSON_AddStringToObject(split, "behavior", "Isolated");
        cJSON_AddBoolToObject(split, "invert", 0);
        cJSON_AddItemToArray(list, split);
    }
    cJSON *bl = cJSON_CreateObject();
    cJSON_AddStringToObject(bl, "type", "ByteLevel");
    cJSON_AddBoolToObject(bl, "add_prefix_space", 0);
    cJSON_AddBoolToObject(bl, "use_regex", 0);
    cJSON_AddItemToArray(list, bl);
    cJSON_AddStringToObject(cJSON_AddObjectToObject(root, "decoder"), "type", "ByteLevel");
    cJSON_AddBoolToObject(model, "ignore_merges", s->ignore_merges);
    cJSON_AddItemToObject(root, "model", model);
    char *text = cJSON_Print(root);
    cJSON_Delete(root);
    snprintf(g_path, sizeof g_path, "%s/%s.json", md_test_tmp(), name);
    md_test_write_file(g_path, text, strlen(text));
    free(text);
    return g_path;
}

static const char *write_text(const char *name, const char *text) {
    snprintf(g_path, sizeof g_path, "%s/%s.json", md_test_tmp(), name);
    md_test_write_file(g_path, text, strlen(text));
    return g_path;
}

static md_tokenizer_t *load(const char *path) {
    md_tokenizer_t *t = NULL;
    CHECK_OK(md_tokenizer_load(path, &t));
    return t;
}

/* Encodes text and compares with the ids listed (terminated by -1). */
static void expect_ids(md_tokenizer_t *t, const char *text, bool special, const int32_t *want, const char *what) {
    int32_t *ids = NULL;
    int n = 0;
    md_status st = md_tokenizer_encode(t, text, strlen(text), special, &ids, &n);
    int k = 0;
    while (want[k] >= 0) k++;
    bool ok = st == MD_OK && n == k;
    for (int i = 0; ok && i < n; i++) ok = ids[i] == want[i];
    CHECK_MSG(ok, "%s: %s gave %d ids (%d %d %d ...), want %d", what, tt_repr(text, strlen(text)), n,
              n > 0 ? ids[0] : -1, n > 1 ? ids[1] : -1, n > 2 ? ids[2] : -1, k);
    free(ids);
}

static char *decode(md_tokenizer_t *t, const int32_t *ids, int n, bool skip) {
    char *text = NULL;
    CHECK_OK(md_tokenizer_decode(t, ids, n, skip, &text, NULL));
    return text;
}

/* ------------------------------------------------------------ tests */

static void test_merge_order(void) {
    const char *m1[] = {"a b", "b c"};
    spec s = {.merges = m1, .n_merges = 2};
    md_tokenizer_t *t = load(write_tok("order1", &s));
    if (!t) return;
    /* ab (256) has rank 0: it wins over bc (257) */
    expect_ids(t, "abc", true, (int32_t[]){256, 'c', -1}, "rank 0 first");
    md_tokenizer_free(t);

    const char *m2[] = {"b c", "a b"};
    spec s2 = {.merges = m2, .n_merges = 2, .merges_as_strings = true};
    t = load(write_tok("order2", &s2));
    if (!t) return;
    expect_ids(t, "abc", true, (int32_t[]){'a', 256, -1}, "rank 0 first (\"a b\" strings)");
    md_tokenizer_free(t);

    /* overlapping pairs of one rank: the leftmost merges first */
    const char *m3[] = {"a a"};
    spec s3 = {.merges = m3, .n_merges = 1};
    t = load(write_tok("order3", &s3));
    if (!t) return;
    expect_ids(t, "aaa", true, (int32_t[]){256, 'a', -1}, "a a leftmost");
    md_tokenizer_free(t);
    /* chains: aa (256), aaa (257), aaaa (258) */
    const char *m4[] = {"a a", "aa a", "aa aa"};
    spec s4 = {.merges = m4, .n_merges = 3};
    t = load(write_tok("order4", &s4));
    if (!t) return;
    expect_ids(t, "aaa", true, (int32_t[]){257, -1}, "aa then aa+a");
    expect_ids(t, "aaaa", true, (int32_t[]){258, -1}, "a a twice, then aa+aa");
    /* a a a a a: (a a) at 0 and 2 (rank 0), then aa+a (rank 1) at 2 before aa+aa (rank 2) */
    expect_ids(t, "aaaaa", true, (int32_t[]){256, 257, -1}, "rank 1 before rank 2");
    md_tokenizer_free(t);
}

static void test_added_and_special(void) {
    const char *m[] = {"h e", "he l", "hel l", "hell o"};
    spec s = {.merges = m, .n_merges = 4, .regex = " ?\\p{L}+|\\s+|."};
    md_tokenizer_t *t = load(write_tok("added", &s));
    if (!t) return;
    expect_ids(t, "hello", true, (int32_t[]){259, -1}, "hello");
    expect_ids(t, "hello<|end|>hello", true, (int32_t[]){259, 1000, 259, -1}, "special parsed");
    /* with parsing off the special token is text; <tag> (not special) still matches */
    expect_ids(t, "<|end|>", false, (int32_t[]){'<', '|', 'e', 'n', 'd', '|', '>', -1}, "special as text");
    expect_ids(t, "<tag>x<tag>", false, (int32_t[]){1001, 'x', 1001, -1}, "non-special added token");
    CHECK(md_tokenizer_token_id(t, "<|end|>") == 1000 && md_tokenizer_token_id(t, "hello") == 259);
    CHECK(md_tokenizer_token_id(t, "absent") == -1);
    CHECK(md_tokenizer_is_special(t, 1000) && !md_tokenizer_is_special(t, 1001) && !md_tokenizer_is_special(t, 259));
    CHECK(md_tokenizer_token_str(t, 1001) && !strcmp(md_tokenizer_token_str(t, 1001), "<tag>"));
    CHECK(md_tokenizer_token_str(t, 999) == NULL && md_tokenizer_token_str(t, -1) == NULL);
    CHECK(md_tokenizer_n_vocab(t) == 1002);
    /* decode: specials kept or skipped, holes and ids past the end as <unk:ID> */
    char *x = decode(t, (int32_t[]){259, 1000, 1001, 500, 70000}, 5, false);
    CHECK_MSG(x && !strcmp(x, "hello<|end|><tag><unk:500><unk:70000>"), "got %s", x ? x : "");
    free(x);
    x = decode(t, (int32_t[]){1000, 259, 1000}, 3, true);
    CHECK(x && !strcmp(x, "hello"));
    free(x);
    char *bad = NULL;
    CHECK(md_tokenizer_decode(t, (int32_t[]){5, -3}, 2, false, &bad, NULL) == MD_ERR_INVALID_ARG && !bad);
    md_tokenizer_free(t);
}

static void test_nfc(void) {
    spec s = {.nfc = true, .regex = "\\p{L}+|\\p{M}+|."};
    md_tokenizer_t *t = load(write_tok("nfc", &s));
    if (!t) return;
    /* e + combining acute composes to U+00E9 (C3 A9) before the split */
    expect_ids(t, "e\xCC\x81", true, (int32_t[]){0xC3, 0xA9, -1}, "NFC composes");
    /* the Angstrom sign U+212B becomes U+00C5 */
    expect_ids(t, "\xE2\x84\xAB", true, (int32_t[]){0xC3, 0x85, -1}, "NFC singleton");
    md_tokenizer_free(t);
    spec s2 = {.nfc = false, .regex = "\\p{L}+|\\p{M}+|."};
    t = load(write_tok("nonfc", &s2));
    if (!t) return;
    expect_ids(t, "e\xCC\x81", true, (int32_t[]){'e', 0xCC, 0x81, -1}, "no normalizer");
    md_tokenizer_free(t);
}

static void test_invalid_utf8(void) {
    spec s = {.regex = "\\S+|\\s+"};
    md_tokenizer_t *t = load(write_tok("utf8", &s));
    if (!t) return;
    struct {
        const char *text;
        size_t len, offset;
    } bad[] = {
        {"abc\xFF", 4, 3},          /* a byte that never occurs */
        {"\xC0\xAF", 2, 0},         /* overlong */
        {"x\xED\xA0\x80", 4, 1},    /* a surrogate */
        {"ok \xE4\xB8", 5, 3},      /* truncated at the end */
        {"\x80 lone", 6, 0},        /* a continuation byte alone */
        {"\xF4\x90\x80\x80", 4, 0}, /* above U+10FFFF */
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        int32_t *ids = (int32_t *)1;
        int n = -1;
        md_status st = md_tokenizer_encode(t, bad[i].text, bad[i].len, true, &ids, &n);
        char want[64];
        snprintf(want, sizeof want, "offset %zu", bad[i].offset);
        CHECK_MSG(st == MD_ERR_INVALID_ARG && ids == NULL && n == 0 && strstr(md_last_error(), "UTF-8") &&
                      strstr(md_last_error(), want),
                  "invalid case %zu: status %d, message '%s'", i, st, md_last_error());
    }
    /* NUL bytes are valid text */
    int32_t *ids = NULL;
    int n = 0;
    CHECK_OK(md_tokenizer_encode(t, "a\0b", 3, true, &ids, &n));
    CHECK(n == 3 && ids[0] == 'a' && ids[1] == 0 && ids[2] == 'b');
    char *back = NULL;
    size_t len = 0;
    CHECK_OK(md_tokenizer_decode(t, ids, n, false, &back, &len));
    CHECK(len == 3 && back && memcmp(back, "a\0b", 3) == 0);
    free(back);
    free(ids);
    /* empty text: no ids, not an error */
    ids = NULL;
    CHECK_OK(md_tokenizer_encode(t, "", 0, true, &ids, &n));
    CHECK(n == 0 && ids != NULL);
    free(ids);
    md_tokenizer_free(t);
}

static void test_decode_stream(void) {
    spec s = {0};
    md_tokenizer_t *t = load(write_tok("stream", &s));
    if (!t) return;
    /* U+1F600 is F0 9F 98 80: one byte token each */
    const int32_t emoji[] = {0xF0, 0x9F, 0x98, 0x80};
    md_tokenizer_stream_t *st = NULL;
    CHECK_OK(md_tokenizer_stream_init(t, false, &st));
    if (!st) return;
    const char *piece;
    size_t len;
    for (int i = 0; i < 3; i++) {
        CHECK_OK(md_tokenizer_stream_push(st, emoji[i], &piece, &len));
        CHECK_MSG(len == 0, "byte %d of a 4-byte character was released early", i);
    }
    CHECK_OK(md_tokenizer_stream_push(st, emoji[3], &piece, &len));
    CHECK(len == 4 && memcmp(piece, "\xF0\x9F\x98\x80", 4) == 0);
    /* an ill-formed sequence is released at once as U+FFFD, then the next character */
    CHECK_OK(md_tokenizer_stream_push(st, 0xE0, &piece, &len));
    CHECK(len == 0);
    CHECK_OK(md_tokenizer_stream_push(st, 'A', &piece, &len));
    CHECK(len == 4 && memcmp(piece, "\xEF\xBF\xBD" "A", 4) == 0);
    /* an incomplete character at the end comes out of the flush as U+FFFD */
    CHECK_OK(md_tokenizer_stream_push(st, 0xE4, &piece, &len));
    CHECK_OK(md_tokenizer_stream_push(st, 0xB8, &piece, &len));
    CHECK(len == 0);
    CHECK_OK(md_tokenizer_stream_flush(st, &piece, &len));
    CHECK(len == 3 && memcmp(piece, "\xEF\xBF\xBD", 3) == 0);
    /* reset forgets held bytes */
    CHECK_OK(md_tokenizer_stream_push(st, 0xF0, &piece, &len));
    md_tokenizer_stream_reset(st);
    CHECK_OK(md_tokenizer_stream_flush(st, &piece, &len));
    CHECK(len == 0);
    md_tokenizer_stream_free(st);
    /* the whole decode agrees: the maximal-subpart rule */
    char *x = decode(t, (int32_t[]){0xF0, 0x9F, 'x', 0xC3}, 4, false);
    CHECK_MSG(x && !strcmp(x, "\xEF\xBF\xBDx\xEF\xBF\xBD"), "got %s", x ? tt_repr(x, strlen(x)) : "");
    free(x);
    md_tokenizer_free(t);
}

static void expect_fail(const char *name, const char *json, md_status want, const char *needle) {
    md_tokenizer_t *t = (md_tokenizer_t *)1;
    md_status st = md_tokenizer_load(write_text(name, json), &t);
    CHECK_MSG(st == want && t == NULL && strstr(md_last_error(), needle), "%s: status %d (want %d), message '%s'",
              name, st, want, md_last_error());
    if (st == MD_OK) md_tokenizer_free(t);
}

static void test_bad_files(void) {
#define MODEL_OK "\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 1, \"ab\": 2}, \"merges\": [\"a b\"]}"
#define PRE_OK "\"pre_tokenizer\": {\"type\": \"ByteLevel\", \"add_prefix_space\": false, \"use_regex\": false}"
#define DEC_OK "\"decoder\": {\"type\": \"ByteLevel\"}"
    /* the minimal good file loads */
    md_tokenizer_t *t = NULL;
    CHECK_OK(md_tokenizer_load(write_text("good", "{" MODEL_OK ", " PRE_OK ", " DEC_OK "}"), &t));
    md_tokenizer_free(t);
    expect_fail("wordpiece",
                "{\"model\": {\"type\": \"WordPiece\", \"vocab\": {\"a\": 0}, \"unk_token\": \"[UNK]\"}, " PRE_OK ", " DEC_OK "}",
                MD_ERR_UNSUPPORTED, "model type 'WordPiece'");
    expect_fail("unigram", "{\"model\": {\"type\": \"Unigram\", \"vocab\": [[\"a\", 0.0]]}, " PRE_OK ", " DEC_OK "}",
                MD_ERR_UNSUPPORTED, "model type 'Unigram'");
    expect_fail("nfkc", "{\"normalizer\": {\"type\": \"NFKC\"}, " MODEL_OK ", " PRE_OK ", " DEC_OK "}",
                MD_ERR_UNSUPPORTED, "normalizer type 'NFKC'");
    expect_fail("metaspace", "{" MODEL_OK ", \"pre_tokenizer\": {\"type\": \"Metaspace\"}, " DEC_OK "}",
                MD_ERR_UNSUPPORTED, "pre_tokenizer type 'Metaspace'");
    expect_fail("no_bytelevel",
                "{" MODEL_OK ", \"pre_tokenizer\": {\"type\": \"Split\", \"pattern\": {\"Regex\": \"a\"}, "
                "\"behavior\": \"Isolated\"}, " DEC_OK "}",
                MD_ERR_UNSUPPORTED, "no ByteLevel");
    expect_fail("removed",
                "{" MODEL_OK ", \"pre_tokenizer\": {\"type\": \"Sequence\", \"pretokenizers\": [{\"type\": \"Split\", "
                "\"pattern\": {\"Regex\": \"a\"}, \"behavior\": \"Removed\"}, {\"type\": \"ByteLevel\", "
                "\"use_regex\": false}]}, " DEC_OK "}",
                MD_ERR_UNSUPPORTED, "behavior 'Removed'");
    expect_fail("bad_regex",
                "{" MODEL_OK ", \"pre_tokenizer\": {\"type\": \"Sequence\", \"pretokenizers\": [{\"type\": \"Split\", "
                "\"pattern\": {\"Regex\": \"(unclosed\"}, \"behavior\": \"Isolated\"}, {\"type\": \"ByteLevel\", "
                "\"use_regex\": false}]}, " DEC_OK "}",
                MD_ERR_FORMAT, "cannot compile the regex");
    expect_fail("wp_decoder", "{" MODEL_OK ", " PRE_OK ", \"decoder\": {\"type\": \"WordPiece\"}}", MD_ERR_UNSUPPORTED,
                "decoder type 'WordPiece'");
    expect_fail("no_decoder", "{" MODEL_OK ", " PRE_OK "}", MD_ERR_UNSUPPORTED, "decoder");
    expect_fail("byte_fallback",
                "{\"model\": {\"type\": \"BPE\", \"byte_fallback\": true, \"vocab\": {\"a\": 0}, \"merges\": []}, " PRE_OK
                ", " DEC_OK "}",
                MD_ERR_UNSUPPORTED, "byte_fallback");
    expect_fail("prefix_space",
                "{" MODEL_OK ", \"pre_tokenizer\": {\"type\": \"ByteLevel\", \"add_prefix_space\": true}, " DEC_OK "}",
                MD_ERR_UNSUPPORTED, "add_prefix_space");
    expect_fail("merge_unknown",
                "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 1}, \"merges\": [\"a b\"]}, " PRE_OK ", " DEC_OK "}",
                MD_ERR_FORMAT, "model.merges[0]");
    expect_fail("merge_three", "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": [\"a b c\"]}, " PRE_OK
                ", " DEC_OK "}", MD_ERR_FORMAT, "model.merges[0]");
    expect_fail("vocab_not_int", "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": \"zero\"}, \"merges\": []}, " PRE_OK
                ", " DEC_OK "}", MD_ERR_FORMAT, "model.vocab");
    expect_fail("bad_escape", "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\\q\": 0}, \"merges\": []}, " PRE_OK ", " DEC_OK
                "}", MD_ERR_FORMAT, "model.vocab");
    expect_fail("lone_surrogate", "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"\\ud800\": 0}, \"merges\": []}, " PRE_OK
                ", " DEC_OK "}", MD_ERR_FORMAT, "model.vocab");
    expect_fail("truncated", "{" MODEL_OK ", " PRE_OK ", \"decoder\": {\"type\": ", MD_ERR_FORMAT, "invalid JSON");
    expect_fail("not_json", "this is not json", MD_ERR_FORMAT, "");
    expect_fail("no_model", "{\"version\": \"1.0\"}", MD_ERR_FORMAT, "no 'model'");
    expect_fail("empty", "", MD_ERR_FORMAT, "empty");
    expect_fail("added_no_content", "{\"added_tokens\": [{\"id\": 5}], " MODEL_OK ", " PRE_OK ", " DEC_OK "}", MD_ERR_FORMAT,
                "added_tokens entry 5");
    /* missing files and directories */
    t = (md_tokenizer_t *)1;
    CHECK(md_tokenizer_load("/nonexistent/tokenizer.json", &t) == MD_ERR_IO && t == NULL);
    CHECK(strstr(md_last_error(), "/nonexistent/tokenizer.json"));
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/empty_model_dir", md_test_tmp());
    mkdir(dir, 0755);
    t = (md_tokenizer_t *)1;
    CHECK(md_tokenizer_load_dir(dir, &t) == MD_ERR_IO && t == NULL);
    CHECK_MSG(strstr(md_last_error(), "no tokenizer.json") && strstr(md_last_error(), dir), "got '%s'", md_last_error());
}

static void test_escapes_and_options(void) {
    /* escapes in vocabulary strings: \u0120 is "Ġ" (a space), a surrogate pair is U+1F600 */
    const char *json =
        "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"\\u0120\": 0, \"a\": 1, \"\\u0120a\": 2, \"\\\"\": 3, "
        "\"\\ud83d\\ude00\": 4, \"\\/\": 5}, \"merges\": [[\"\\u0120\", \"a\"]]}, " PRE_OK ", " DEC_OK "}";
    md_tokenizer_t *t = load(write_text("escapes", json));
    if (t) {
        CHECK(md_tokenizer_token_id(t, "\xC4\xA0" "a") == 2);
        CHECK(md_tokenizer_token_id(t, "\"") == 3 && md_tokenizer_token_id(t, "\xF0\x9F\x98\x80") == 4);
        CHECK(md_tokenizer_token_id(t, "/") == 5);
        expect_ids(t, " a", true, (int32_t[]){2, -1}, "escaped merge");
        md_tokenizer_free(t);
    }
    /* ignore_merges: a word in the vocabulary is one token even without merges to build it */
    spec s = {.regex = "\\p{L}+|.", .ignore_merges = true, .extra_token = "xyz"};
    t = load(write_tok("ignore_merges", &s));
    if (t) {
        expect_ids(t, "xyz xy", true, (int32_t[]){256, ' ', 'x', 'y', -1}, "ignore_merges");
        md_tokenizer_free(t);
    }
    /* ByteLevel with use_regex splits by GPT-2's regex: "'s" and " world" are pieces */
    const char *gpt2 = "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"'\": 0, \"s\": 1, \"'s\": 2, \"\\u0120\": 3, "
                       "\"w\": 4, \"\\u0120w\": 5}, \"merges\": [\"' s\", \"\\u0120 w\"]}, "
                       "\"pre_tokenizer\": {\"type\": \"ByteLevel\", \"add_prefix_space\": false, \"use_regex\": true}, " DEC_OK "}";
    t = load(write_text("gpt2", gpt2));
    if (t) {
        expect_ids(t, "'s w", true, (int32_t[]){2, 5, -1}, "GPT-2 regex");
        md_tokenizer_free(t);
    }
}

static void test_long_and_roundtrip(void) {
    const char *m[] = {"\xC4\xA0 \xC4\xA0", "\xC4\xA0\xC4\xA0 \xC4\xA0\xC4\xA0", "t h", "th e"};
    spec s = {.merges = m, .n_merges = 4, .nfc = true,
              .regex = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?[\\p{L}\\p{M}]+|\\p{N}| ?[^\\s\\p{L}\\p{M}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"};
    md_tokenizer_t *t = load(write_tok("long", &s));
    if (!t) return;
    /* 1 MB of spaces: one regex piece, BPE of a million symbols */
    const size_t n = 1 << 20;
    char *text = malloc(n + 2);
    memset(text, ' ', n);
    text[n] = 'x';
    text[n + 1] = 0;
    int32_t *ids = NULL;
    int n_ids = 0;
    CHECK_OK(md_tokenizer_encode(t, text, n + 1, true, &ids, &n_ids));
    CHECK_MSG(n_ids > 0 && n_ids < (int)(n / 3), "1 MB of spaces gave %d ids", n_ids);
    char *back = NULL;
    size_t len = 0;
    CHECK_OK(md_tokenizer_decode(t, ids, n_ids, false, &back, &len));
    CHECK(len == n + 1 && back && memcmp(back, text, n + 1) == 0);
    free(back);
    free(ids);
    free(text);
    /* random valid UTF-8 (already NFC: no combining marks) decodes back to itself */
    static const char *const pieces[] = {"the", " ", "  ", "\n", "\r\n", "\t", "x", "'s", "'LL", "42", "\xE4\xB8\xAD",
                                         "\xF0\x9F\x98\x80", "\xC3\xA9", "<|end|>", "<tag>", "!?", "\xD0\x96",
                                         "\xE0\xA4\xA8\xE0\xA4\xBF", "\xE2\x80\x8D"};
    uint64_t r = 12345;
    for (int round = 0; round < 200; round++) {
        char buf[512];
        size_t k = 0;
        int parts = 1 + (int)(r % 30);
        for (int i = 0; i < parts; i++) {
            r = r * 6364136223846793005ull + 1442695040888963407ull;
            const char *p = pieces[(r >> 33) % (sizeof pieces / sizeof *pieces)];
            memcpy(buf + k, p, strlen(p));
            k += strlen(p);
        }
        ids = NULL;
        CHECK_OK(md_tokenizer_encode(t, buf, k, true, &ids, &n_ids));
        back = NULL;
        CHECK_OK(md_tokenizer_decode(t, ids, n_ids, false, &back, &len));
        CHECK_MSG(len == k && back && memcmp(back, buf, k) == 0, "round trip of %s", tt_repr(buf, k));
        free(back);
        free(ids);
    }
    md_tokenizer_free(t);
}

typedef struct thread_arg {
    md_tokenizer_t *tok;
    const char *text;
    int32_t *ids;
    int n;
    md_status st;
} thread_arg;

static void *encode_thread(void *p) {
    thread_arg *a = p;
    for (int i = 0; i < 20 && a->st == MD_OK; i++) {
        free(a->ids);
        a->st = md_tokenizer_encode(a->tok, a->text, strlen(a->text), true, &a->ids, &a->n);
    }
    return NULL;
}

static void test_threads(void) {
    const char *m[] = {"t h", "th e", "\xC4\xA0 th"};
    spec s = {.merges = m, .n_merges = 3, .regex = " ?\\p{L}+|\\s+|."};
    md_tokenizer_t *t = load(write_tok("threads", &s));
    if (!t) return;
    const char *text = "the theme of the thesis is the other thing, then the end <|end|> the";
    thread_arg a[2] = {{.tok = t, .text = text}, {.tok = t, .text = text}};
    pthread_t th[2];
    for (int i = 0; i < 2; i++) pthread_create(&th[i], NULL, encode_thread, &a[i]);
    for (int i = 0; i < 2; i++) pthread_join(th[i], NULL);
    int32_t *ref = NULL;
    int n_ref = 0;
    CHECK_OK(md_tokenizer_encode(t, text, strlen(text), true, &ref, &n_ref));
    for (int i = 0; i < 2; i++)
        CHECK(a[i].st == MD_OK && a[i].n == n_ref && memcmp(a[i].ids, ref, (size_t)n_ref * sizeof *ref) == 0);
    free(ref);
    free(a[0].ids);
    free(a[1].ids);
    md_tokenizer_free(t);
}

int main(void) {
    test_merge_order();
    test_added_and_special();
    test_nfc();
    test_invalid_utf8();
    test_decode_stream();
    test_bad_files();
    test_escapes_and_options();
    test_long_and_roundtrip();
    test_threads();
    return md_test_finish("test_tokenizer_unit");
}
