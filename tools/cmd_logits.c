/*
 * cmd_logits.c — `megadelta logits`: the logits of every position (or the
 * last N) as little-endian float32, row-major [rows x vocab]. The contract
 * other checks depend on; the CPU backend is the default (it is the oracle).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const char usage[] =
    "usage: megadelta logits -m DIR --tokens \"ID ID ...\" -o FILE [options]\n"
    "Writes the logits of every position (or of the last N) as little-endian\n"
    "float32, row-major [rows x vocab].\n"
    "  --tokens \"ID ...\"       token ids, separated by spaces or commas\n"
    "  -o, --out FILE         output file\n"
    "  --mode prefill|step    prefill: all tokens at once (default); step: one by one through decode\n"
    "  --last N               only the last N positions\n"
    "(the backend defaults to cpu here: this command is the reference)\n";

int cmd_logits(int argc, char **argv) {
    cli_model_opts mo;
    cli_model_opts_init(&mo);
    mo.params.backend = MD_BACKEND_CPU;
    const char *tokens_text = NULL, *out_path = NULL, *mode = "prefill";
    int last = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        int r = cli_model_flag(&mo, argc, argv, &i);
        if (r < 0) return 1;
        if (r > 0) continue;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            printf("%s%s", usage, cli_model_help);
            return 0;
        } else if (!strcmp(a, "--tokens")) {
            if (!(tokens_text = cli_value(argc, argv, &i))) return 1;
        } else if (!strcmp(a, "-o") || !strcmp(a, "--out")) {
            if (!(out_path = cli_value(argc, argv, &i))) return 1;
        } else if (!strcmp(a, "--mode")) {
            if (!(mode = cli_value(argc, argv, &i))) return 1;
            if (strcmp(mode, "prefill") && strcmp(mode, "step"))
                return cli_error("--mode expects prefill or step (got '%s')", mode);
        } else if (!strcmp(a, "--last")) {
            if (!(v = cli_value(argc, argv, &i)) || !cli_int(a, v, 1, 1 << 30, &last)) return 1;
        } else {
            return cli_error("logits: unknown option '%s'\n%s", a, usage);
        }
    }
    if (!tokens_text || !out_path) return cli_error("logits needs --tokens and -o\n%s", usage);
    int32_t *ids = NULL;
    int n = 0;
    if (!cli_parse_ids(tokens_text, &ids, &n)) return 1;
    if (n == 0) return free(ids), cli_error("--tokens holds no token ids");
    int rows = last ? (last < n ? last : n) : n;

    char dir[4096];
    md_model_t *model = NULL;
    md_session_t *s = NULL;
    float *logits = NULL;
    FILE *f = NULL;
    int rc = 1;
    md_status st = cli_model_dir(&mo, NULL, dir, sizeof dir);
    if (st != MD_OK) goto done;
    if ((st = md_model_load(dir, &model)) != MD_OK) {
        cli_fail("loading the model", st);
        goto done;
    }
    if ((st = md_session_init(model, &mo.params, &s)) != MD_OK) {
        cli_fail("creating the session", st);
        goto done;
    }
    const size_t V = (size_t)md_model_get_info(model)->vocab_size;
    logits = malloc((size_t)rows * V * sizeof *logits);
    if (!logits) {
        cli_error("out of memory for %d x %zu logits", rows, V);
        goto done;
    }
    if (!strcmp(mode, "prefill")) {
        st = md_session_prefill(s, ids, n, logits, rows);
    } else {
        for (int t = 0; t < n && st == MD_OK; t++) {
            const int row = t - (n - rows);
            st = md_session_decode(s, ids[t], row >= 0 ? logits + (size_t)row * V : NULL);
        }
    }
    if (st != MD_OK) {
        cli_fail("forward pass", st);
        goto done;
    }
    if (!(f = fopen(out_path, "wb"))) {
        cli_error("%s: cannot write", out_path);
        goto done;
    }
    /* little-endian hosts only (x86-64, arm64): the floats are written as they lie in memory */
    if (fwrite(logits, sizeof *logits, (size_t)rows * V, f) != (size_t)rows * V) {
        cli_error("%s: write failed", out_path);
        goto done;
    }
    if (fclose(f) != 0) {
        f = NULL;
        cli_error("%s: write failed", out_path);
        goto done;
    }
    f = NULL;
    fprintf(stderr, "wrote %d x %zu logits (%s, %s backend) to %s\n", rows, V, mode, md_session_backend_name(s), out_path);
    rc = 0;
done:
    if (f) fclose(f);
    free(logits);
    free(ids);
    md_session_free(s);
    md_model_free(model);
    return rc;
}
