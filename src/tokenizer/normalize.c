/*
 * normalize.c — the NFC normalizer, through utf8proc (Debian's libutf8proc;
 * its Unicode tables are the distribution's, 15.0 for utf8proc 2.8).
 */
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "common/status.h"
#include "tokenizer/tokenizer.h"

md_status md_normalize_nfc(const uint8_t *s, size_t n, uint8_t **out, size_t *out_len) {
    *out = NULL;
    /* Text whose code points are all below U+0300 (lead bytes < 0xCC) is already
     * NFC: nothing there decomposes or combines. English takes this path. */
    bool simple = true;
    for (size_t i = 0; i < n && simple; i++) simple = s[i] < 0xCC;
    if (simple) {
        *out_len = n;
        return MD_OK;
    }
    utf8proc_uint8_t *dst = NULL;
    utf8proc_ssize_t r = utf8proc_map(s, (utf8proc_ssize_t)n, &dst, UTF8PROC_STABLE | UTF8PROC_COMPOSE);
    if (r < 0) return md_fail(MD_ERR_INVALID_ARG, "tokenizer: NFC normalization failed: %s", utf8proc_errmsg(r));
    *out = dst;
    *out_len = (size_t)r;
    return MD_OK;
}
