/*
 * test_util.h — the small harness every test uses: CHECK macros that count
 * failures and keep going, comparison of logits against a reference by the
 * project's rule (relative L2 error and argmax where the top-1 gap is clear),
 * and paths from the environment set by tests/CMakeLists.txt.
 */
#ifndef MD_TEST_UTIL_H
#define MD_TEST_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "megadelta.h"

extern int md_test_failures;

#define CHECK(cond)                                                                         \
    do {                                                                                    \
        if (!(cond)) {                                                                      \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);        \
            md_test_failures++;                                                             \
        }                                                                                   \
    } while (0)

#define CHECK_MSG(cond, ...)                                                                \
    do {                                                                                    \
        if (!(cond)) {                                                                      \
            fprintf(stderr, "%s:%d: CHECK failed: %s: ", __FILE__, __LINE__, #cond);        \
            fprintf(stderr, __VA_ARGS__);                                                   \
            fputc('\n', stderr);                                                            \
            md_test_failures++;                                                             \
        }                                                                                   \
    } while (0)

/* A call expected to succeed. */
#define CHECK_OK(expr)                                                                      \
    do {                                                                                    \
        md_status st_ = (expr);                                                             \
        if (st_ != MD_OK) {                                                                 \
            fprintf(stderr, "%s:%d: %s failed: %s\n", __FILE__, __LINE__, #expr, md_last_error()); \
            md_test_failures++;                                                             \
        }                                                                                   \
    } while (0)

/* Exit code for main(): prints a summary. */
int md_test_finish(const char *name);

const char *md_test_fixtures(void); /* tests/fixtures */
const char *md_test_tmp(void);      /* a scratch directory for this test */
const char *md_test_bin(void);      /* the megadelta CLI */

/* Result of comparing logits rows to a reference. */
typedef struct md_logits_cmp {
    double rel_l2;        /* ||out - ref|| / ||ref|| over all rows */
    int rows_checked;     /* rows whose reference top-1 gap passed the threshold */
    int argmax_mismatch;  /* of those, rows with a different argmax */
    int first_mismatch;   /* first such row, -1 when none */
    bool finite;          /* no NaN/Inf in out */
} md_logits_cmp;

/* gap_factor: a row's argmax is checked when its reference top-1 minus top-2
 * exceeds gap_factor x the row's standard deviation. */
md_logits_cmp md_compare_logits(const float *out, const float *ref, int rows, int vocab, double gap_factor);

/* Reads a whole binary file; returns its size in bytes (or -1). */
long md_test_read_file(const char *path, void **data);
bool md_test_write_file(const char *path, const void *data, size_t n);
/* Runs a shell command; returns its exit status and (if out) its stdout+stderr. */
int md_test_run(const char *cmd, char *out, size_t out_size);

#endif
