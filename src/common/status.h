/*
 * status.h — recording errors. Every failing path calls md_fail() once with a
 * one-line message naming the file/tensor/field and the problem, and returns
 * the status it gives back. The message is kept per thread and read with
 * md_last_error().
 */
#ifndef MD_COMMON_STATUS_H
#define MD_COMMON_STATUS_H

#include "megadelta.h"

#if defined(__GNUC__)
#define MD_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define MD_PRINTF(a, b)
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* Records the message and returns st, so callers write `return md_fail(...)`. */
md_status md_fail(md_status st, const char *fmt, ...) MD_PRINTF(2, 3);
void md_clear_error(void);

#ifdef __cplusplus
}
#endif

/* Evaluates an md_status expression; on failure jumps to the caller's `fail` label
 * with `st` holding the status. */
#define MD_TRY(expr)                  \
    do {                              \
        st = (expr);                  \
        if (st != MD_OK) goto fail;   \
    } while (0)

#endif
