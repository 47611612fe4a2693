/*
 * cmd_tokenize.c — `megadelta tokenize`: text to ids, ids to text. The output
 * is a contract other tools read: the ids on one line separated by single
 * spaces (an empty line for empty text); with --decode, the text exactly,
 * no newline added.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const char usage[] =
    "usage: megadelta tokenize (--tokenizer FILE | -m DIR) (-p TEXT | -f FILE) [--no-special]\n"
    "       megadelta tokenize (--tokenizer FILE | -m DIR) --decode \"ID ID ...\" [--skip-special]\n"
    "Prints the token ids of the text on one line, separated by single spaces;\n"
    "with --decode prints the text of the ids exactly (no newline added).\n"
    "  --tokenizer FILE   a Hugging Face tokenizer.json\n"
    "  -m, --model DIR    the model directory's tokenizer.json\n"
    "  -p, --prompt TEXT  the text to tokenize\n"
    "  -f, --file FILE    the text to tokenize, read as bytes (- for stdin)\n"
    "      --no-special   tokenize special-token text such as <|im_end|> as ordinary text\n"
    "      --decode IDS   ids separated by spaces or commas\n"
    "      --skip-special leave special tokens out of the decoded text\n"
    "Text must be valid UTF-8 (an error names the first bad byte). Ids the tokenizer\n"
    "does not have decode as <unk:ID>.\n";

/* Reads a whole file (or stdin for "-") as bytes. */
static bool read_all(const char *path, char **out, size_t *len) {
    FILE *f = strcmp(path, "-") ? fopen(path, "rb") : stdin;
    if (!f) return cli_error("cannot open '%s'", path), false;
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    size_t got;
    while (buf && (got = fread(buf + n, 1, cap - n, f)) > 0) {
        n += got;
        if (n == cap) {
            char *nb = realloc(buf, cap *= 2);
            if (!nb) free(buf);
            buf = nb;
        }
    }
    const bool err = ferror(f);
    if (f != stdin) fclose(f);
    if (!buf) return cli_error("out of memory reading '%s'", path), false;
    if (err) {
        free(buf);
        return cli_error("cannot read '%s'", path), false;
    }
    *out = buf;
    *len = n;
    return true;
}

int cmd_tokenize(int argc, char **argv) {
    const char *tok_path = NULL, *model_dir = NULL, *prompt = NULL, *file = NULL, *decode = NULL;
    bool parse_special = true, skip_special = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(usage, stdout);
            return 0;
        } else if (!strcmp(a, "--tokenizer")) {
            if (!(tok_path = cli_value(argc, argv, &i))) return 1;
        } else if (!strcmp(a, "-m") || !strcmp(a, "--model")) {
            if (!(model_dir = cli_value(argc, argv, &i))) return 1;
        } else if (!strcmp(a, "-p") || !strcmp(a, "--prompt")) {
            if (!(prompt = cli_value(argc, argv, &i))) return 1;
        } else if (!strcmp(a, "-f") || !strcmp(a, "--file")) {
            if (!(file = cli_value(argc, argv, &i))) return 1;
        } else if (!strcmp(a, "--decode")) {
            if (!(decode = cli_value(argc, argv, &i))) return 1;
        } else if (!strcmp(a, "--no-special")) {
            parse_special = false;
        } else if (!strcmp(a, "--skip-special")) {
            skip_special = true;
        } else {
            return cli_error("tokenize: unknown option '%s'\n%s", a, usage);
        }
    }
    if (!!tok_path + !!model_dir != 1) return cli_error("tokenize: give either --tokenizer FILE or -m DIR\n%s", usage);
    if (!!prompt + !!file + !!decode != 1) return cli_error("tokenize: give one of -p TEXT, -f FILE or --decode IDS\n%s", usage);

    md_tokenizer_t *tok = NULL;
    md_status st = tok_path ? md_tokenizer_load(tok_path, &tok) : md_tokenizer_load_dir(model_dir, &tok);
    if (st != MD_OK) return cli_fail("loading the tokenizer", st);
    int rc = 1;
    if (decode) {
        int32_t *ids = NULL;
        int n = 0;
        char *text = NULL;
        size_t len = 0;
        if (cli_parse_ids(decode, &ids, &n)) {
            if ((st = md_tokenizer_decode(tok, ids, n, skip_special, &text, &len)) == MD_OK) {
                rc = fwrite(text, 1, len, stdout) == len ? 0 : 1;
            } else {
                cli_fail("decoding", st);
            }
        }
        free(text);
        free(ids);
    } else {
        char *owned = NULL;
        size_t len = prompt ? strlen(prompt) : 0;
        if (prompt || read_all(file, &owned, &len)) {
            int32_t *ids = NULL;
            int n = 0;
            if ((st = md_tokenizer_encode(tok, prompt ? prompt : owned, len, parse_special, &ids, &n)) == MD_OK) {
                for (int i = 0; i < n; i++) printf(i ? " %d" : "%d", ids[i]);
                putchar('\n');
                rc = 0;
            } else {
                cli_fail("tokenizing", st);
            }
            free(ids);
        }
        free(owned);
    }
    md_tokenizer_free(tok);
    if (fflush(stdout) != 0) rc = 1;
    return rc;
}
