/*
 * status.c — per-thread last-error message and status names.
 */
#include "common/status.h"

#include <stdarg.h>
#include <stdio.h>

static _Thread_local char g_last_error[1024];

md_status md_fail(md_status st, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g_last_error, sizeof g_last_error, fmt, ap);
    va_end(ap);
    return st;
}

void md_clear_error(void) { g_last_error[0] = '\0'; }

const char *md_last_error(void) { return g_last_error; }

const char *md_status_name(md_status st) {
    switch (st) {
    case MD_OK: return "ok";
    case MD_ERR_INVALID_ARG: return "invalid argument";
    case MD_ERR_IO: return "I/O error";
    case MD_ERR_FORMAT: return "format error";
    case MD_ERR_CONFIG: return "config error";
    case MD_ERR_UNSUPPORTED: return "unsupported";
    case MD_ERR_OUT_OF_MEMORY: return "out of memory";
    case MD_ERR_CONTEXT_FULL: return "context full";
    case MD_ERR_NO_DEVICE: return "no device";
    case MD_ERR_DEVICE: return "device error";
    case MD_ERR_INTERRUPTED: return "interrupted";
    }
    return "unknown status";
}
