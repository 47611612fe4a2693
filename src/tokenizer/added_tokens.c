/*
 * added_tokens.c — finding the added tokens (<|im_start|>, <think>, ...) in
 * text before anything else touches it, with HF `tokenizers`' rules:
 * - tokens with normalized == false are matched in the raw text, the others in
 *   the normalized pieces between those (two passes, two sets);
 * - leftmost-longest matching: the earliest match wins, the longest token at
 *   that position; the scan goes on after the token (not after stripped space);
 * - single_word: no match when a word character touches either end;
 * - lstrip / rstrip: the match absorbs the whitespace on that side (lstrip not
 *   reaching into the previous match);
 * - with parse_special false (HF's encode_special_tokens) a special token's
 *   match is skipped and its text is tokenized as ordinary text.
 */
#include <stdlib.h>
#include <string.h>

#include "common/status.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/utf8.h"

static md_status build_set(md_tokenizer_t *t, md_added_set *set, bool normalized) {
    memset(set->first, 0, sizeof set->first);
    set->n = 0;
    set->index = malloc((size_t)(t->n_added ? t->n_added : 1) * sizeof *set->index);
    if (!set->index) return md_fail(MD_ERR_OUT_OF_MEMORY, "tokenizer: out of memory");
    for (int i = 0; i < t->n_added; i++) {
        const md_added_token *a = &t->added[i];
        if (a->normalized != normalized || a->pattern_len == 0) continue;
        set->index[set->n++] = i;
        set->first[(uint8_t)a->pattern[0]] = 1;
    }
    return MD_OK;
}

md_status md_added_sets_build(md_tokenizer_t *t) {
    md_status st = build_set(t, &t->raw_set, false);
    return st == MD_OK ? build_set(t, &t->norm_set, true) : st;
}

/* The longest token of set starting at text[i], or -1. */
static int longest_at(const md_tokenizer_t *t, const md_added_set *set, const uint8_t *text, size_t n, size_t i) {
    int best = -1;
    uint32_t best_len = 0;
    for (int k = 0; k < set->n; k++) {
        const md_added_token *a = &t->added[set->index[k]];
        if (a->pattern_len > best_len && a->pattern_len <= n - i && memcmp(a->pattern, text + i, a->pattern_len) == 0) {
            best = set->index[k];
            best_len = a->pattern_len;
        }
    }
    return best;
}

bool md_added_next(const md_tokenizer_t *t, const md_added_set *set, const uint8_t *text, size_t n, size_t *pos,
                   size_t prev_end, bool parse_special, md_added_match *m) {
    if (set->n == 0) return false;
    size_t i = *pos;
    while (i < n) {
        if (!set->first[text[i]]) {
            i++;
            continue;
        }
        const int k = longest_at(t, set, text, n, i);
        if (k < 0) {
            i++;
            continue;
        }
        const md_added_token *a = &t->added[k];
        size_t start = i, stop = i + a->pattern_len;
        i = stop; /* the scan resumes after the token itself */
        if (a->special && !parse_special) continue;
        if (a->single_word) {
            uint32_t cp;
            if (start > 0 && md_unicode_is_word(md_utf8_prev(text, start))) continue;
            if (stop < n && md_utf8_decode(text + stop, n - stop, &cp) && md_unicode_is_word(cp)) continue;
        }
        if (a->lstrip) {
            while (start > prev_end) {
                size_t k2 = start - 1;
                while (k2 > prev_end && (text[k2] & 0xC0) == 0x80) k2--;
                uint32_t cp;
                if (!md_utf8_decode(text + k2, start - k2, &cp) || !md_unicode_is_white_space(cp)) break;
                start = k2;
            }
        }
        if (a->rstrip) {
            uint32_t cp;
            int len;
            while (stop < n && (len = md_utf8_decode(text + stop, n - stop, &cp)) > 0 && md_unicode_is_white_space(cp))
                stop += (size_t)len;
        }
        m->start = start;
        m->end = stop;
        m->id = a->id;
        *pos = i;
        return true;
    }
    *pos = n;
    return false;
}
