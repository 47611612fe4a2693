/*
 * utf8.c — UTF-8 validation, lossy conversion and incomplete-tail detection
 * (see utf8.h). Well-formedness follows Unicode table 3-7: no overlongs, no
 * surrogates (ED A0..BF), nothing above U+10FFFF.
 */
#include "tokenizer/utf8.h"

#include <string.h>
#include <utf8proc.h>

/* The valid range of the second byte after each lead byte (table 3-7); the
 * remaining continuation bytes are always 80..BF. */
static bool second_ok(uint8_t lead, uint8_t b) {
    switch (lead) {
    case 0xE0: return b >= 0xA0 && b <= 0xBF;
    case 0xED: return b >= 0x80 && b <= 0x9F;
    case 0xF0: return b >= 0x90 && b <= 0xBF;
    case 0xF4: return b >= 0x80 && b <= 0x8F;
    default: return b >= 0x80 && b <= 0xBF;
    }
}

/* Total length a lead byte announces, 0 for bytes that cannot start a character. */
static int seq_len(uint8_t lead) {
    if (lead < 0x80) return 1;
    if (lead >= 0xC2 && lead <= 0xDF) return 2;
    if (lead >= 0xE0 && lead <= 0xEF) return 3;
    if (lead >= 0xF0 && lead <= 0xF4) return 4;
    return 0;
}

/* How many bytes of s[0..n) (at most the announced length) form a valid prefix. */
static int valid_prefix(const uint8_t *s, size_t n, int want) {
    int k = 1;
    if (want >= 2 && (size_t)k < n && second_ok(s[0], s[1])) {
        k = 2;
        while (k < want && (size_t)k < n && (s[k] & 0xC0) == 0x80) k++;
    }
    return k;
}

int md_utf8_decode(const uint8_t *s, size_t n, uint32_t *cp) {
    if (n == 0) return 0;
    const uint8_t b = s[0];
    const int want = seq_len(b);
    if (want == 0) return 0;
    if (want == 1) {
        *cp = b;
        return 1;
    }
    if ((size_t)want > n || valid_prefix(s, n, want) != want) return 0;
    uint32_t c = b & (0x7F >> want);
    for (int i = 1; i < want; i++) c = (c << 6) | (s[i] & 0x3F);
    *cp = c;
    return want;
}

int md_utf8_invalid_len(const uint8_t *s, size_t n) {
    const int want = seq_len(s[0]);
    if (want <= 1) return 1;
    return valid_prefix(s, n, want);
}

size_t md_utf8_validate(const uint8_t *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        if (s[i] < 0x80) { /* ASCII runs are the common case */
            i++;
            continue;
        }
        uint32_t cp;
        int k = md_utf8_decode(s + i, n - i, &cp);
        if (k == 0) return i;
        i += (size_t)k;
    }
    return n;
}

int md_utf8_incomplete_tail(const uint8_t *s, size_t n) {
    /* a character is at most 4 bytes: look at the last 3 possible lead positions */
    for (int back = 1; back <= 3 && (size_t)back <= n; back++) {
        const uint8_t *p = s + n - back;
        const int want = seq_len(p[0]);
        if (want == 0) {
            if ((p[0] & 0xC0) == 0x80) continue; /* a continuation byte: the lead is further back */
            return 0;
        }
        if (want <= back) return 0; /* complete (or ill-formed, which waiting cannot fix) */
        return valid_prefix(p, (size_t)back, want) == back ? back : 0;
    }
    return 0;
}

size_t md_utf8_lossy(const uint8_t *s, size_t n, uint8_t *out) {
    size_t i = 0, o = 0;
    while (i < n) {
        uint32_t cp;
        int k = md_utf8_decode(s + i, n - i, &cp);
        if (k > 0) {
            memcpy(out + o, s + i, (size_t)k);
            o += (size_t)k;
            i += (size_t)k;
        } else {
            out[o++] = 0xEF, out[o++] = 0xBF, out[o++] = 0xBD;
            i += (size_t)md_utf8_invalid_len(s + i, n - i);
        }
    }
    return o;
}

int md_utf8_encode(uint32_t cp, uint8_t *out) {
    if (cp < 0x80) {
        out[0] = (uint8_t)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (uint8_t)(0xC0 | (cp >> 6));
        out[1] = (uint8_t)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (uint8_t)(0xE0 | (cp >> 12));
        out[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (uint8_t)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (uint8_t)(0xF0 | (cp >> 18));
    out[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (uint8_t)(0x80 | (cp & 0x3F));
    return 4;
}

bool md_unicode_is_py_space(uint32_t cp) {
    /* CPython: bidirectional class WS, B or S, or category Zs */
    if (cp <= 0x20) return cp == 0x20 || (cp >= 0x09 && cp <= 0x0D) || (cp >= 0x1C && cp <= 0x1F);
    switch (cp) {
    case 0x85: case 0xA0: case 0x1680: case 0x2028: case 0x2029: case 0x202F: case 0x205F: case 0x3000:
        return true;
    default:
        return cp >= 0x2000 && cp <= 0x200A;
    }
}

bool md_unicode_is_white_space(uint32_t cp) {
    if (cp <= 0x20) return cp == 0x20 || (cp >= 0x09 && cp <= 0x0D);
    switch (cp) {
    case 0x85: case 0xA0: case 0x1680: case 0x2028: case 0x2029: case 0x202F: case 0x205F: case 0x3000:
        return true;
    default:
        return cp >= 0x2000 && cp <= 0x200A;
    }
}

bool md_unicode_is_word(uint32_t cp) {
    if (cp < 0x80) return (cp >= '0' && cp <= '9') || (cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z') || cp == '_';
    if (cp == 0x200C || cp == 0x200D) return true;
    if ((cp >= 0x24B6 && cp <= 0x24E9) || (cp >= 0x1F130 && cp <= 0x1F149) || (cp >= 0x1F150 && cp <= 0x1F169) ||
        (cp >= 0x1F170 && cp <= 0x1F189))
        return true;
    switch (utf8proc_category((utf8proc_int32_t)cp)) {
    case UTF8PROC_CATEGORY_LU: case UTF8PROC_CATEGORY_LL: case UTF8PROC_CATEGORY_LT: case UTF8PROC_CATEGORY_LM:
    case UTF8PROC_CATEGORY_LO: case UTF8PROC_CATEGORY_MN: case UTF8PROC_CATEGORY_MC: case UTF8PROC_CATEGORY_ME:
    case UTF8PROC_CATEGORY_ND: case UTF8PROC_CATEGORY_NL: case UTF8PROC_CATEGORY_PC:
        return true;
    default:
        return false;
    }
}

uint32_t md_utf8_prev(const uint8_t *s, size_t i) {
    size_t k = i - 1;
    while (k > 0 && (s[k] & 0xC0) == 0x80 && i - k < 4) k--;
    uint32_t cp = 0xFFFD;
    md_utf8_decode(s + k, i - k, &cp);
    return cp;
}
