/*
 * pretokenize.c — the Split pre-tokenizer: the regex read from tokenizer.json,
 * compiled with PCRE2 (UTF + UCP, so \p{L}, \s etc. are Unicode-aware, and
 * JIT-compiled for speed), splitting text into the matches and the runs
 * between them ("Isolated"). Several Split steps apply in order, each to the
 * pieces of the previous one.
 *
 * HF `tokenizers` runs these regexes with Oniguruma. The two engines agree on
 * everything the known tokenizer files use except one code point: PCRE2's
 * Unicode \s also matches U+180E MONGOLIAN VOWEL SEPARATOR (it is in PCRE2's
 * \h), which stopped being White_Space in Unicode 6.3 and which Oniguruma's
 * \s does not match. md_pretok_compile therefore writes \s and \S outside
 * character classes, and \s inside them, as the explicit White_Space set.
 * (A \S inside a class is left to PCRE2; no known file has one.)
 */
#include <stdlib.h>
#include <string.h>

#include "common/status.h"
#include "tokenizer/tokenizer.h"

/* Unicode White_Space, as class members. */
static const char k_white_space[] =
    "\\t\\n\\x0B\\f\\r\\x20\\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}\\x{202F}\\x{205F}\\x{3000}";

/* Rewrites the \s / \S escapes of a pattern (see the file comment). *out is malloc'd. */
static md_status rewrite_space(const char *p, char **out) {
    const size_t n = strlen(p), ws = sizeof k_white_space - 1;
    size_t cap = n + 1, count = 0;
    for (size_t i = 0; i + 1 < n; i++)
        if (p[i] == '\\') count++, i++;
    cap += count * (ws + 3);
    char *o = malloc(cap), *q = o;
    if (!o) return md_fail(MD_ERR_OUT_OF_MEMORY, "tokenizer: out of memory");
    bool in_class = false;
    for (size_t i = 0; i < n; i++) {
        const char c = p[i];
        if (c == '\\' && i + 1 < n) {
            const char e = p[i + 1];
            if (e == 'Q') { /* \Q...\E is literal text: copy it through */
                const char *end = strstr(p + i + 2, "\\E");
                size_t stop = end ? (size_t)(end - p) + 2 : n;
                memcpy(q, p + i, stop - i);
                q += stop - i;
                i = stop - 1;
                continue;
            }
            if (e == 's' && in_class) {
                memcpy(q, k_white_space, ws), q += ws;
            } else if ((e == 's' || e == 'S') && !in_class) {
                *q++ = '[';
                if (e == 'S') *q++ = '^';
                memcpy(q, k_white_space, ws), q += ws;
                *q++ = ']';
            } else {
                *q++ = c, *q++ = e;
            }
            i++;
            continue;
        }
        if (!in_class && c == '[') {
            in_class = true;
            *q++ = c;
            /* a ']' right after '[' or '[^' is a literal member */
            if (i + 1 < n && p[i + 1] == '^') *q++ = p[++i];
            if (i + 1 < n && p[i + 1] == ']') *q++ = p[++i];
            continue;
        }
        if (in_class && c == '[' && i + 1 < n && p[i + 1] == ':') { /* POSIX class [:name:] */
            const char *end = strstr(p + i + 2, ":]");
            size_t stop = end ? (size_t)(end - p) + 2 : i + 1;
            memcpy(q, p + i, stop - i);
            q += stop - i;
            i = stop - 1;
            continue;
        }
        if (in_class && c == ']') in_class = false;
        *q++ = c;
    }
    *q = 0;
    *out = o;
    return MD_OK;
}

md_status md_pretok_compile(const char *pattern, bool literal, const char *where, pcre2_code **out) {
    *out = NULL;
    char *rewritten = NULL;
    const char *use = pattern;
    if (!literal) {
        md_status st = rewrite_space(pattern, &rewritten);
        if (st != MD_OK) return st;
        use = rewritten;
    }
    int err = 0;
    PCRE2_SIZE at = 0;
    const uint32_t opts = PCRE2_UTF | PCRE2_UCP | (literal ? PCRE2_LITERAL : 0);
    pcre2_code *code = pcre2_compile((PCRE2_SPTR)use, PCRE2_ZERO_TERMINATED, opts, &err, &at, NULL);
    free(rewritten);
    if (!code) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(err, msg, sizeof msg);
        return md_fail(MD_ERR_FORMAT, "tokenizer.json: %s: cannot compile the regex: %s", where, (const char *)msg);
    }
    /* JIT is an optimisation: pcre2_match falls back to the interpreter without it */
    (void)pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);
    *out = code;
    return MD_OK;
}

static md_status emit(const md_tokenizer_t *tok, int level, pcre2_match_data *md, const uint8_t *s, size_t n,
                      md_piece_fn fn, void *ctx) {
    if (n == 0) return MD_OK;
    if (level + 1 < tok->n_split) return md_pretok_split(tok, level + 1, md, s, n, fn, ctx);
    return fn(s, n, ctx);
}

md_status md_pretok_split(const md_tokenizer_t *tok, int level, pcre2_match_data *md, const uint8_t *s, size_t n,
                          md_piece_fn fn, void *ctx) {
    if (level >= tok->n_split) return n ? fn(s, n, ctx) : MD_OK;
    const pcre2_code *code = tok->split[level];
    md_status st;
    size_t off = 0, last = 0;
    while (off < n) {
        int rc = pcre2_match(code, s, n, off, PCRE2_NO_UTF_CHECK, md, NULL);
        if (rc == PCRE2_ERROR_NOMATCH) break;
        if (rc < 0) {
            PCRE2_UCHAR msg[256];
            pcre2_get_error_message(rc, msg, sizeof msg);
            return md_fail(MD_ERR_FORMAT, "%s: pre-tokenizer regex failed at byte %zu: %s", tok->path, off,
                           (const char *)msg);
        }
        const PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        const size_t ms = ov[0], me = ov[1];
        if (me == ms) { /* an empty match splits nothing: step over one character */
            off = ms + 1;
            while (off < n && (s[off] & 0xC0) == 0x80) off++;
            continue;
        }
        if (ms > last && (st = emit(tok, level, md, s + last, ms - last, fn, ctx)) != MD_OK) return st;
        if ((st = emit(tok, level, md, s + ms, me - ms, fn, ctx)) != MD_OK) return st;
        last = off = me;
    }
    return last < n ? emit(tok, level, md, s + last, n - last, fn, ctx) : MD_OK;
}
