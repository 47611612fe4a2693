/*
 * json_scan.c — the bulk reader of tokenizer.json (see json_scan.h).
 * Follows RFC 8259 for what it reads: strings with the escapes \" \\ \/ \b
 * \f \n \r \t \uXXXX (surrogate pairs combined, lone surrogates rejected).
 */
#include "tokenizer/json_scan.h"

#include <string.h>

#include "tokenizer/utf8.h"

const char *md_jscan_ws(const char *p, const char *end) {
    while (p < end && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t')) p++;
    return p;
}

/* End of the string literal at p (the '"'), escapes skipped, or NULL. */
static const char *skip_string(const char *p, const char *end) {
    for (p++; p < end; p++) {
        const char *q = memchr(p, '"', (size_t)(end - p));
        if (!q) return NULL;
        /* the quote closes the string unless an odd number of backslashes precede it */
        size_t bs = 0;
        while (q - bs > p && q[-1 - (ptrdiff_t)bs] == '\\') bs++;
        if (bs % 2 == 0) return q + 1;
        p = q;
    }
    return NULL;
}

const char *md_jscan_skip(const char *p, const char *end) {
    p = md_jscan_ws(p, end);
    if (p >= end) return NULL;
    if (*p == '"') return skip_string(p, end);
    if (*p == '{' || *p == '[') {
        int depth = 0;
        while (p < end) {
            const char c = *p;
            if (c == '"') {
                if (!(p = skip_string(p, end))) return NULL;
                continue;
            }
            if (c == '{' || c == '[') depth++;
            if (c == '}' || c == ']') {
                if (--depth == 0) return p + 1;
            }
            p++;
        }
        return NULL;
    }
    /* number, true, false, null */
    const char *q = p;
    while (q < end && *q != ',' && *q != '}' && *q != ']' && *q != ' ' && *q != '\n' && *q != '\r' && *q != '\t') q++;
    return q > p ? q : NULL;
}

const char *md_jscan_member(const char *obj, const char *end, const char *key) {
    const char *p = md_jscan_ws(obj, end);
    if (p >= end || *p != '{') return NULL;
    const size_t klen = strlen(key);
    p++;
    for (;;) {
        p = md_jscan_ws(p, end);
        if (p >= end || *p != '"') return NULL;
        const char *kend = skip_string(p, end);
        if (!kend) return NULL;
        /* keys of interest have no escapes: compare the raw literal */
        const bool match = (size_t)(kend - p) == klen + 2 && memcmp(p + 1, key, klen) == 0;
        p = md_jscan_ws(kend, end);
        if (p >= end || *p != ':') return NULL;
        p = md_jscan_ws(p + 1, end);
        if (match) return p;
        if (!(p = md_jscan_skip(p, end))) return NULL;
        p = md_jscan_ws(p, end);
        if (p < end && *p == ',') p++;
        else return NULL;
    }
}

static int hex4(const char *p, const char *end) {
    if (end - p < 4) return -1;
    int v = 0;
    for (int i = 0; i < 4; i++) {
        const char c = p[i];
        v <<= 4;
        if (c >= '0' && c <= '9') v |= c - '0';
        else if (c >= 'a' && c <= 'f') v |= c - 'a' + 10;
        else if (c >= 'A' && c <= 'F') v |= c - 'A' + 10;
        else return -1;
    }
    return v;
}

const char *md_jscan_string(const char *p, const char *end, char *out, size_t cap, size_t *len) {
    if (p >= end || *p != '"' || cap < 5) return NULL;
    size_t k = 0;
    for (p++; p < end;) {
        if (k + 4 >= cap) return NULL; /* room for one more character (<= 4 bytes) and the NUL */
        const char c = *p;
        if (c == '"') {
            out[k] = 0;
            *len = k;
            return p + 1;
        }
        if (c != '\\') {
            out[k++] = c;
            p++;
            continue;
        }
        if (end - p < 2) return NULL;
        const char e = p[1];
        p += 2;
        switch (e) {
        case '"': out[k++] = '"'; break;
        case '\\': out[k++] = '\\'; break;
        case '/': out[k++] = '/'; break;
        case 'b': out[k++] = '\b'; break;
        case 'f': out[k++] = '\f'; break;
        case 'n': out[k++] = '\n'; break;
        case 'r': out[k++] = '\r'; break;
        case 't': out[k++] = '\t'; break;
        case 'u': {
            int cp = hex4(p, end);
            if (cp < 0) return NULL;
            p += 4;
            if (cp >= 0xDC00 && cp <= 0xDFFF) return NULL; /* a lone low surrogate */
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                int lo = (end - p >= 6 && p[0] == '\\' && p[1] == 'u') ? hex4(p + 2, end) : -1;
                if (lo < 0xDC00 || lo > 0xDFFF) return NULL;
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                p += 6;
            }
            /* 6 (or 12) escape bytes always hold the 1-4 UTF-8 bytes */
            k += (size_t)md_utf8_encode((uint32_t)cp, (uint8_t *)out + k);
            break;
        }
        default: return NULL;
        }
    }
    return NULL;
}

const char *md_jscan_uint(const char *p, const char *end, int64_t *v) {
    p = md_jscan_ws(p, end);
    int64_t x = 0;
    const char *q = p;
    while (q < end && *q >= '0' && *q <= '9' && q - p < 12) x = x * 10 + (*q++ - '0');
    if (q == p || (q < end && (*q == '.' || *q == 'e' || *q == 'E' || (*q >= '0' && *q <= '9')))) return NULL;
    *v = x;
    return q;
}
