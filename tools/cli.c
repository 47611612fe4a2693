/*
 * cli.c — shared flag parsing and model resolution for the subcommands.
 */
#include "cli.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "model/synth.h"

int cli_error(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("megadelta: error: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return 1;
}

int cli_fail(const char *what, md_status st) {
    const char *msg = md_last_error();
    return cli_error("%s: %s", what, msg && *msg ? msg : md_status_name(st));
}

bool cli_int(const char *flag, const char *value, long lo, long hi, int *out) {
    char *end = NULL;
    errno = 0;
    long v = value ? strtol(value, &end, 10) : 0;
    if (!value || !*value || *end || errno || v < lo || v > hi) {
        cli_error("%s expects an integer in %ld..%ld (got '%s')", flag, lo, hi, value ? value : "");
        return false;
    }
    *out = (int)v;
    return true;
}

bool cli_u64(const char *flag, const char *value, uint64_t *out) {
    char *end = NULL;
    errno = 0;
    unsigned long long v = value ? strtoull(value, &end, 10) : 0;
    if (!value || !*value || *end || errno || value[0] == '-') {
        cli_error("%s expects a non-negative integer (got '%s')", flag, value ? value : "");
        return false;
    }
    *out = v;
    return true;
}

const char *cli_value(int argc, char **argv, int *i) {
    if (*i + 1 >= argc) {
        cli_error("%s needs a value", argv[*i]);
        return NULL;
    }
    return argv[++*i];
}

const char cli_model_help[] =
    "  -m, --model DIR        model directory (config.json + safetensors)\n"
    "      --preset NAME      synthetic checkpoint instead of -m: tiny | qwen3.5-0.8b\n"
    "  -c, --ctx N            context size in tokens (default: min(max_position_embeddings, 32768))\n"
    "  -t, --threads N        CPU threads (default: all cores)\n"
    "      --backend B        auto | cpu | gpu\n"
    "      --kernel K         GPU decode path: auto | hopper | portable\n";

void cli_model_opts_init(cli_model_opts *o) {
    memset(o, 0, sizeof *o);
    o->params = md_session_default_params();
}

int cli_model_flag(cli_model_opts *o, int argc, char **argv, int *i) {
    const char *a = argv[*i], *v;
    if (!strcmp(a, "-m") || !strcmp(a, "--model")) {
        if (!(v = cli_value(argc, argv, i))) return -1;
        o->model_dir = v;
    } else if (!strcmp(a, "--preset")) {
        if (!(v = cli_value(argc, argv, i))) return -1;
        o->preset = v;
    } else if (!strcmp(a, "-c") || !strcmp(a, "--ctx")) {
        if (!(v = cli_value(argc, argv, i)) || !cli_int(a, v, 1, 1 << 24, &o->params.n_ctx)) return -1;
    } else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) {
        if (!(v = cli_value(argc, argv, i)) || !cli_int(a, v, 1, 1024, &o->params.n_threads)) return -1;
    } else if (!strcmp(a, "--backend")) {
        if (!(v = cli_value(argc, argv, i))) return -1;
        if (!strcmp(v, "auto")) o->params.backend = MD_BACKEND_AUTO;
        else if (!strcmp(v, "cpu")) o->params.backend = MD_BACKEND_CPU;
        else if (!strcmp(v, "gpu") || !strcmp(v, "cuda")) o->params.backend = MD_BACKEND_GPU;
        else return cli_error("--backend expects auto, cpu or gpu (got '%s')", v), -1;
    } else if (!strcmp(a, "--kernel")) {
        if (!(v = cli_value(argc, argv, i))) return -1;
        if (!strcmp(v, "auto")) o->params.kernel = MD_KERNEL_AUTO;
        else if (!strcmp(v, "hopper")) o->params.kernel = MD_KERNEL_HOPPER;
        else if (!strcmp(v, "portable")) o->params.kernel = MD_KERNEL_PORTABLE;
        else return cli_error("--kernel expects auto, hopper or portable (got '%s')", v), -1;
    } else {
        return 0;
    }
    return 1;
}

static void synth_progress(double f, void *ctx) {
    int *last = ctx;
    int pct = (int)(f * 100);
    if (pct >= *last + 5) {
        *last = pct;
        fprintf(stderr, "\rmegadelta: writing synthetic checkpoint... %3d%%", pct);
        fflush(stderr);
    }
}

md_status cli_model_dir(const cli_model_opts *o, const char *default_preset, char *dir, size_t n) {
    if (o->model_dir && o->preset) {
        cli_error("give either -m or --preset, not both");
        return MD_ERR_INVALID_ARG;
    }
    if (o->model_dir) {
        snprintf(dir, n, "%s", o->model_dir);
        return MD_OK;
    }
    const char *preset = o->preset ? o->preset : default_preset;
    if (!preset) {
        cli_error("no model: give -m DIR (a directory with config.json and safetensors) or --preset NAME");
        return MD_ERR_INVALID_ARG;
    }
    const char *cache = getenv("MEGADELTA_CACHE");
    const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
    char base[3072];
    if (cache && *cache) snprintf(base, sizeof base, "%s", cache);
    else if (xdg && *xdg) snprintf(base, sizeof base, "%s/megadelta", xdg);
    else snprintf(base, sizeof base, "%s/.cache/megadelta", home && *home ? home : "/tmp");
    snprintf(dir, n, "%s/synth-%s", base, preset);
    char done[4200];
    snprintf(done, sizeof done, "%s/.complete", dir);
    struct stat st;
    if (stat(done, &st) == 0) return MD_OK;
    fprintf(stderr, "megadelta: no model given; writing the synthetic '%s' checkpoint to %s (once)\n", preset, dir);
    int last = -5;
    md_status s = md_synth_write(preset, dir, 0, synth_progress, &last);
    if (last >= 0) fputc('\n', stderr);
    if (s != MD_OK) {
        cli_fail("synth", s);
        return s;
    }
    FILE *f = fopen(done, "w");
    if (f) fclose(f);
    return MD_OK;
}

bool cli_parse_ids(const char *text, int32_t **ids, int *n) {
    size_t cap = 64, k = 0;
    int32_t *v = malloc(cap * sizeof *v);
    if (!v) return cli_error("out of memory"), false;
    const char *p = text;
    for (;;) {
        while (*p == ' ' || *p == ',' || *p == '\t' || *p == '\n' || *p == '\r') p++;
        if (!*p) break;
        char *end;
        errno = 0;
        long x = strtol(p, &end, 10);
        if (end == p || errno || x < 0 || x > INT32_MAX) {
            free(v);
            cli_error("bad token id near '%.20s' (expected non-negative integers separated by spaces)", p);
            return false;
        }
        if (k == cap) {
            int32_t *nv = realloc(v, (cap *= 2) * sizeof *v);
            if (!nv) return free(v), cli_error("out of memory"), false;
            v = nv;
        }
        v[k++] = (int32_t)x;
        p = end;
    }
    *ids = v;
    *n = (int)k;
    return true;
}

double cli_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
