/*
 * json.c — typed cJSON getters with one-line errors.
 */
#include "common/json.h"

#include <math.h>
#include <stdlib.h>

#include "common/mapped_file.h"
#include "common/status.h"

md_status md_json_parse_file(const char *path, cJSON **out) {
    *out = NULL;
    char *text = NULL;
    size_t len = 0;
    md_status st = md_read_text_file(path, &text, &len);
    if (st != MD_OK) return st;
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(text, len, &end, 0);
    if (!root) {
        size_t at = end ? (size_t)(end - text) : 0;
        free(text);
        return md_fail(MD_ERR_FORMAT, "%s: invalid JSON near byte %zu", path, at);
    }
    free(text);
    *out = root;
    return MD_OK;
}

md_status md_json_int(const cJSON *obj, const char *key, int64_t def, int64_t *out, bool *present,
                      const char *where) {
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (present) *present = it != NULL && !cJSON_IsNull(it);
    if (!it || cJSON_IsNull(it)) {
        *out = def;
        return MD_OK;
    }
    if (!cJSON_IsNumber(it) || it->valuedouble != floor(it->valuedouble) || fabs(it->valuedouble) > 9.0e15)
        return md_fail(MD_ERR_CONFIG, "%s: field '%s' must be an integer", where, key);
    *out = (int64_t)it->valuedouble;
    return MD_OK;
}

md_status md_json_num(const cJSON *obj, const char *key, double def, double *out, bool *present,
                      const char *where) {
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (present) *present = it != NULL && !cJSON_IsNull(it);
    if (!it || cJSON_IsNull(it)) {
        *out = def;
        return MD_OK;
    }
    if (!cJSON_IsNumber(it)) return md_fail(MD_ERR_CONFIG, "%s: field '%s' must be a number", where, key);
    *out = it->valuedouble;
    return MD_OK;
}

md_status md_json_bool(const cJSON *obj, const char *key, bool def, bool *out, bool *present,
                       const char *where) {
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (present) *present = it != NULL && !cJSON_IsNull(it);
    if (!it || cJSON_IsNull(it)) {
        *out = def;
        return MD_OK;
    }
    if (!cJSON_IsBool(it)) return md_fail(MD_ERR_CONFIG, "%s: field '%s' must be true or false", where, key);
    *out = cJSON_IsTrue(it);
    return MD_OK;
}

md_status md_json_str(const cJSON *obj, const char *key, const char **out, const char *where) {
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);
    *out = NULL;
    if (!it || cJSON_IsNull(it)) return MD_OK;
    if (!cJSON_IsString(it)) return md_fail(MD_ERR_CONFIG, "%s: field '%s' must be a string", where, key);
    *out = it->valuestring;
    return MD_OK;
}
