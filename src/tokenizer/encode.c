/*
 * encode.c — text to token ids, in HF `tokenizers`' order:
 *   1. the text must be valid UTF-8 (else MD_ERR_INVALID_ARG naming the byte);
 *   2. added tokens with normalized == false are cut out of the raw text;
 *   3. each remaining piece is NFC-normalized, then the normalized added
 *      tokens are cut out of it;
 *   4. the rest is split by the pre-tokenizer regex(es);
 *   5. each split is BPE-encoded over its bytes.
 * Nothing is added at the ends (no BOS/EOS): chat markers come from the text.
 */
#include <stdlib.h>
#include <string.h>

#include "common/status.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/utf8.h"

typedef struct encode_ctx {
    md_tokenizer_t *tok;
    md_bpe_scratch *scratch;
    pcre2_match_data *md;
    bool parse_special;
    md_ids out;
} encode_ctx;

static md_status on_piece(const uint8_t *s, size_t n, void *p) {
    encode_ctx *c = p;
    return md_bpe_word(c->tok, &c->scratch, s, n, &c->out);
}

static md_status split_and_bpe(encode_ctx *c, const uint8_t *s, size_t n) {
    return n ? md_pretok_split(c->tok, 0, c->md, s, n, on_piece, c) : MD_OK;
}

/* Cuts the added tokens of set out of s; other_fn handles the text between them. */
static md_status cut_added(encode_ctx *c, const md_added_set *set, const uint8_t *s, size_t n,
                           md_status (*other_fn)(encode_ctx *, const uint8_t *, size_t)) {
    md_status st;
    size_t pos = 0, prev_end = 0;
    md_added_match m;
    while (md_added_next(c->tok, set, s, n, &pos, prev_end, c->parse_special, &m)) {
        if (m.start < prev_end) m.start = prev_end; /* only a token that starts with spaces overlaps an rstrip */
        if (m.start > prev_end && (st = other_fn(c, s + prev_end, m.start - prev_end)) != MD_OK) return st;
        if ((st = md_ids_push(&c->out, m.id)) != MD_OK) return st;
        prev_end = m.end; /* the scan itself goes on from the token's end, as HF's does */
    }
    return prev_end < n ? other_fn(c, s + prev_end, n - prev_end) : MD_OK;
}

static md_status normalized_piece(encode_ctx *c, const uint8_t *s, size_t n) {
    uint8_t *norm = NULL;
    size_t nn = n;
    md_status st;
    if (c->tok->nfc && (st = md_normalize_nfc(s, n, &norm, &nn)) != MD_OK) return st;
    st = cut_added(c, &c->tok->norm_set, norm ? norm : s, nn, split_and_bpe);
    free(norm);
    return st;
}

md_status md_tokenizer_encode(const md_tokenizer_t *tok, const char *text, size_t len, bool parse_special,
                              int32_t **ids, int *n_ids) {
    *ids = NULL;
    *n_ids = 0;
    if (!tok || (!text && len)) return md_fail(MD_ERR_INVALID_ARG, "md_tokenizer_encode: bad arguments");
    if (len > (size_t)INT32_MAX / 2) return md_fail(MD_ERR_INVALID_ARG, "md_tokenizer_encode: text too long (%zu bytes)", len);
    const uint8_t *s = (const uint8_t *)text;
    const size_t bad = md_utf8_validate(s, len);
    if (bad < len)
        return md_fail(MD_ERR_INVALID_ARG, "text is not valid UTF-8: byte 0x%02X at offset %zu", s[bad], bad);
    /* the cache is the only state encode changes, and it has its own lock */
    encode_ctx c = {.tok = (md_tokenizer_t *)tok, .parse_special = parse_special};
    c.md = pcre2_match_data_create(32, NULL);
    if (!c.md) return md_fail(MD_ERR_OUT_OF_MEMORY, "tokenizer: out of memory");
    md_status st = cut_added(&c, &tok->raw_set, s, len, normalized_piece);
    pcre2_match_data_free(c.md);
    md_bpe_scratch_free(c.scratch);
    if (st != MD_OK) {
        free(c.out.v);
        return st;
    }
    if (!c.out.v && !(c.out.v = malloc(sizeof *c.out.v))) return md_fail(MD_ERR_OUT_OF_MEMORY, "tokenizer: out of memory");
    *ids = c.out.v;
    *n_ids = (int)c.out.n;
    return MD_OK;
}
