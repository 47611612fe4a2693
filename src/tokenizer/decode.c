/*
 * decode.c — token ids back to text, as HF's ByteLevel decoder does it: the
 * bytes of all tokens are joined, then turned into UTF-8 with each ill-formed
 * part replaced by U+FFFD. Added tokens go through the same mapping (their
 * characters map back through the ByteLevel alphabet when they all can).
 *
 * Ids the tokenizer does not know (a model's vocabulary is often larger than
 * its tokenizer's: Qwen3.5 pads it to 248320) decode to the visible
 * placeholder "<unk:ID>" instead of vanishing as they do in HF.
 *
 * The streaming decoder gives the same text in pieces: it holds back the
 * bytes of a character not yet complete, so a piece never ends inside one.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/status.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/utf8.h"

/* The bytes of one id into buf (grown as needed); skipped specials add nothing. */
static md_status append_id(const md_tokenizer_t *t, int32_t id, bool skip_special, uint8_t **buf, size_t *n,
                           size_t *cap) {
    if (id < 0) return md_fail(MD_ERR_INVALID_ARG, "token id %d is negative", id);
    char unk[32];
    const uint8_t *p;
    size_t len;
    if (id < t->n_ids && (t->flags[id] & MD_TOK_PRESENT)) {
        if (skip_special && (t->flags[id] & MD_TOK_SPECIAL)) return MD_OK;
        p = (const uint8_t *)t->arena + t->dec_off[id];
        len = t->dec_len[id];
    } else {
        len = (size_t)snprintf(unk, sizeof unk, "<unk:%d>", id);
        p = (const uint8_t *)unk;
    }
    if (*n + len > *cap) {
        size_t c = *cap ? *cap : 256;
        while (c < *n + len) c *= 2;
        uint8_t *b = realloc(*buf, c);
        if (!b) return md_fail(MD_ERR_OUT_OF_MEMORY, "tokenizer: out of memory");
        *buf = b;
        *cap = c;
    }
    memcpy(*buf + *n, p, len);
    *n += len;
    return MD_OK;
}

md_status md_tokenizer_decode(const md_tokenizer_t *tok, const int32_t *ids, int n, bool skip_special, char **text,
                              size_t *len) {
    *text = NULL;
    if (len) *len = 0;
    if (!tok || n < 0 || (!ids && n)) return md_fail(MD_ERR_INVALID_ARG, "md_tokenizer_decode: bad arguments");
    uint8_t *raw = NULL;
    size_t nr = 0, cap = 0;
    md_status st = MD_OK;
    for (int i = 0; i < n && st == MD_OK; i++) st = append_id(tok, ids[i], skip_special, &raw, &nr, &cap);
    char *out = st == MD_OK ? malloc(3 * nr + 1) : NULL;
    if (st == MD_OK && !out) st = md_fail(MD_ERR_OUT_OF_MEMORY, "tokenizer: out of memory");
    if (st != MD_OK) {
        free(raw);
        return st;
    }
    size_t k = md_utf8_lossy(raw, nr, (uint8_t *)out);
    out[k] = 0;
    free(raw);
    *text = out;
    if (len) *len = k;
    return MD_OK;
}

struct md_tokenizer_stream {
    const md_tokenizer_t *tok;
    bool skip_special;
    uint8_t *pending; /* bytes of an incomplete character, then the new token's */
    size_t n, cap;
    uint8_t *out;     /* the text handed out by the last call */
    size_t out_cap;
};

md_status md_tokenizer_stream_init(const md_tokenizer_t *tok, bool skip_special, md_tokenizer_stream_t **out) {
    *out = NULL;
    if (!tok) return md_fail(MD_ERR_INVALID_ARG, "md_tokenizer_stream_init: no tokenizer");
    md_tokenizer_stream_t *s = calloc(1, sizeof *s);
    if (!s) return md_fail(MD_ERR_OUT_OF_MEMORY, "tokenizer: out of memory");
    s->tok = tok;
    s->skip_special = skip_special;
    *out = s;
    return MD_OK;
}

void md_tokenizer_stream_free(md_tokenizer_stream_t *s) {
    if (!s) return;
    free(s->pending);
    free(s->out);
    free(s);
}

void md_tokenizer_stream_reset(md_tokenizer_stream_t *s) {
    if (s) s->n = 0;
}

/* Converts pending[0..upto) to text in s->out and keeps the rest pending. */
static md_status release(md_tokenizer_stream_t *s, size_t upto, const char **text, size_t *len) {
    if (3 * upto + 1 > s->out_cap) {
        size_t c = s->out_cap ? s->out_cap : 256;
        while (c < 3 * upto + 1) c *= 2;
        uint8_t *o = realloc(s->out, c);
        if (!o) return md_fail(MD_ERR_OUT_OF_MEMORY, "tokenizer: out of memory");
        s->out = o;
        s->out_cap = c;
    }
    size_t k = md_utf8_lossy(s->pending, upto, s->out);
    s->out[k] = 0;
    if (s->n > upto) memmove(s->pending, s->pending + upto, s->n - upto);
    s->n -= upto;
    *text = (const char *)s->out;
    *len = k;
    return MD_OK;
}

md_status md_tokenizer_stream_push(md_tokenizer_stream_t *s, int32_t id, const char **text, size_t *len) {
    *text = "";
    *len = 0;
    md_status st = append_id(s->tok, id, s->skip_special, &s->pending, &s->n, &s->cap);
    if (st != MD_OK) return st;
    return release(s, s->n - (size_t)md_utf8_incomplete_tail(s->pending, s->n), text, len);
}

md_status md_tokenizer_stream_flush(md_tokenizer_stream_t *s, const char **text, size_t *len) {
    *text = "";
    *len = 0;
    return release(s, s->n, text, len);
}
