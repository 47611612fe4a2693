/*
 * test_text_cli.c — `megadelta tokenize`, `generate` and `chat` end to end on
 * the tiny synthetic model, as a user runs them:
 * - tokenize: the one-line id format, --decode printing the exact text,
 *   --no-special, and clear failures (invalid UTF-8, missing tokenizer,
 *   unsupported tokenizer kind, bad ids);
 * - generate: streamed text on stdout, exactly one summary line on stderr
 *   with the counts and speeds, --chat using the chat template (the prompt
 *   count equals the template's tokens), --no-think, --stop, same seed same
 *   text, a prompt longer than the context refused;
 * - Ctrl-C: generate stops cleanly (summary, "interrupted", status 130);
 *   chat stops the reply and takes the next message; a second Ctrl-C exits.
 * For Ctrl-C the child's stdout is a 4 KiB pipe the test does not read yet,
 * so the child is still generating (blocked on output) when the signal comes.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "model/synth.h"
#include "test_util.h"

static char g_dir[4096];
static char g_out[1 << 17];

static int run_cli(const char *args, char *out, size_t n) {
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "%s %s", md_test_bin(), args);
    return md_test_run(cmd, out, n);
}

/* Runs a command with stdout and stderr captured separately. */
static int run_split(const char *args, char *out, size_t n_out, char *err, size_t n_err) {
    char cmd[8192], path_out[4096], path_err[4096];
    snprintf(path_out, sizeof path_out, "%s/stdout.txt", md_test_tmp());
    snprintf(path_err, sizeof path_err, "%s/stderr.txt", md_test_tmp());
    snprintf(cmd, sizeof cmd, "( %s %s > '%s' 2> '%s' )", md_test_bin(), args, path_out, path_err);
    int rc = md_test_run(cmd, NULL, 0);
    void *data = NULL;
    long k = md_test_read_file(path_out, &data);
    if (out) {
        size_t m = k > 0 ? ((size_t)k < n_out - 1 ? (size_t)k : n_out - 1) : 0;
        if (m) memcpy(out, data, m);
        out[m] = 0;
    }
    free(data);
    data = NULL;
    k = md_test_read_file(path_err, &data);
    if (err) {
        size_t m = k > 0 ? ((size_t)k < n_err - 1 ? (size_t)k : n_err - 1) : 0;
        if (m) memcpy(err, data, m);
        err[m] = 0;
    }
    free(data);
    return rc;
}

static int count_lines(const char *s) {
    int n = 0;
    for (; *s; s++) n += *s == '\n';
    return n;
}

/* The summary line's numbers; false when the line is not there exactly once. */
static bool parse_summary(const char *err, int *prompt, int *gen, char *stop, size_t stop_n) {
    const char *p = strstr(err, "megadelta: prompt ");
    if (!p || strstr(p + 1, "megadelta: prompt ")) return false;
    double pp, tg;
    char stop_buf[64] = "";
    if (sscanf(p, "megadelta: prompt %d tokens, generated %d tokens, prefill %lf tok/s, decode %lf tok/s", prompt, gen,
               &pp, &tg) != 4)
        return false;
    const char *s = strstr(p, "stop: ");
    if (s) sscanf(s + 6, "%63[^,)]", stop_buf);
    snprintf(stop, stop_n, "%s", stop_buf);
    return pp >= 0 && tg >= 0;
}

static void test_tokenize(void) {
    char args[8192];
    snprintf(args, sizeof args, "tokenize -m '%s' -p 'the cat'", g_dir);
    int rc = run_cli(args, g_out, sizeof g_out);
    /* synth's merges: "Ġt" + "he" -> "Ġthe" does not apply at the start: t h e -> t, he */
    CHECK_MSG(rc == 0 && count_lines(g_out) == 1, "tokenize output '%s'", g_out);
    int32_t *ids = NULL;
    int n = 0;
    md_tokenizer_t *tok = NULL;
    CHECK_OK(md_tokenizer_load_dir(g_dir, &tok));
    if (!tok) return;
    CHECK_OK(md_tokenizer_encode(tok, "the cat", 7, true, &ids, &n));
    char want[512];
    size_t k = 0;
    for (int i = 0; i < n; i++) k += (size_t)snprintf(want + k, sizeof want - k, i ? " %d" : "%d", ids[i]);
    snprintf(want + k, sizeof want - k, "\n");
    CHECK_MSG(!strcmp(g_out, want), "tokenize printed '%s', want '%s'", g_out, want);
    /* --decode prints the text exactly, no newline */
    snprintf(args, sizeof args, "tokenize -m '%s' --decode '%s' 2>/dev/null", g_dir, want);
    rc = run_cli(args, g_out, sizeof g_out);
    CHECK_MSG(rc == 0 && !strcmp(g_out, "the cat"), "decode printed '%s'", g_out);
    free(ids);
    /* special tokens: parsed by default, text with --no-special */
    snprintf(args, sizeof args, "tokenize -m '%s' -p '<|im_end|>'", g_dir);
    run_cli(args, g_out, sizeof g_out);
    char im_end[32];
    snprintf(im_end, sizeof im_end, "%d\n", md_tokenizer_token_id(tok, "<|im_end|>"));
    CHECK_MSG(!strcmp(g_out, im_end), "'<|im_end|>' gave '%s'", g_out);
    snprintf(args, sizeof args, "tokenize -m '%s' -p '<|im_end|>' --no-special", g_dir);
    run_cli(args, g_out, sizeof g_out);
    CHECK_MSG(count_lines(g_out) == 1 && strchr(g_out, ' '), "--no-special gave '%s'", g_out);
    /* empty text: an empty line */
    snprintf(args, sizeof args, "tokenize -m '%s' -p ''", g_dir);
    CHECK(run_cli(args, g_out, sizeof g_out) == 0 && !strcmp(g_out, "\n"));
    /* ids the tokenizer lacks (the model's vocabulary is larger) */
    snprintf(args, sizeof args, "tokenize -m '%s' --decode '1020 65'", g_dir);
    CHECK_MSG(run_cli(args, g_out, sizeof g_out) == 0 && !strcmp(g_out, "<unk:1020>A"), "got '%s'", g_out);
    md_tokenizer_free(tok);

    /* errors: invalid UTF-8 names the offset; bad ids; missing tokenizer; unsupported kind */
    char path[4096];
    snprintf(path, sizeof path, "%s/bad_utf8.txt", md_test_tmp());
    md_test_write_file(path, "ok\xC3(", 4);
    snprintf(args, sizeof args, "tokenize -m '%s' -f '%s'", g_dir, path);
    rc = run_cli(args, g_out, sizeof g_out);
    CHECK_MSG(rc == 1 && strstr(g_out, "not valid UTF-8") && strstr(g_out, "offset 2"), "invalid UTF-8: rc %d, '%s'", rc,
              g_out);
    snprintf(args, sizeof args, "tokenize -m '%s' --decode '1 x 2'", g_dir);
    CHECK(run_cli(args, g_out, sizeof g_out) == 1 && strstr(g_out, "bad token id"));
    snprintf(args, sizeof args, "tokenize -m '%s' -p hi", md_test_tmp());
    rc = run_cli(args, g_out, sizeof g_out);
    CHECK_MSG(rc == 1 && strstr(g_out, "no tokenizer.json"), "missing tokenizer: rc %d, '%s'", rc, g_out);
    snprintf(path, sizeof path, "%s/wordpiece.json", md_test_tmp());
    const char *wp = "{\"model\": {\"type\": \"WordPiece\", \"vocab\": {\"[UNK]\": 0}, \"unk_token\": \"[UNK]\"}}";
    md_test_write_file(path, wp, strlen(wp));
    snprintf(args, sizeof args, "tokenize --tokenizer '%s' -p hi", path);
    rc = run_cli(args, g_out, sizeof g_out);
    CHECK_MSG(rc == 1 && strstr(g_out, "WordPiece") && strstr(g_out, "not supported"), "unsupported: rc %d, '%s'", rc,
              g_out);
}

static void test_generate_cli(void) {
    char args[8192], out1[1 << 15], out2[1 << 15], err[8192], stop[64];
    int prompt = 0, gen = 0;
    snprintf(args, sizeof args, "generate -m '%s' -p 'Hello there' -n 12 --temp 0.9 --seed 3 -t 1", g_dir);
    int rc = run_split(args, out1, sizeof out1, err, sizeof err);
    CHECK_MSG(rc == 0 && parse_summary(err, &prompt, &gen, stop, sizeof stop) && gen == 12 && prompt > 0 &&
                  !strcmp(stop, "length"),
              "generate: rc %d, stderr '%s'", rc, err);
    CHECK_MSG(count_lines(err) == 1, "stderr should be the one summary line: '%s'", err);
    CHECK(strlen(out1) > 0);
    rc = run_split(args, out2, sizeof out2, err, sizeof err);
    CHECK_MSG(rc == 0 && !strcmp(out1, out2), "same seed, different text");
    snprintf(args, sizeof args, "generate -m '%s' -p 'Hello there' -n 12 --temp 0.9 --seed 4 -t 1", g_dir);
    run_split(args, out2, sizeof out2, err, sizeof err);
    CHECK_MSG(strcmp(out1, out2) != 0, "different seeds, same text");

    /* --chat: the prompt is the template's; --no-think adds the empty think block */
    md_tokenizer_t *tok = NULL;
    CHECK_OK(md_tokenizer_load_dir(g_dir, &tok));
    for (int think = 0; think < 2 && tok; think++) {
        md_chat_message m[2] = {{.role = "system", .content = "Be brief."}, {.role = "user", .content = "Hi there"}};
        md_chat_params cp = md_chat_default_params();
        cp.enable_thinking = think;
        char *text = NULL;
        int32_t *ids = NULL;
        int n = 0;
        CHECK_OK(md_chat_render(m, 2, &cp, &text, NULL));
        CHECK_OK(md_tokenizer_encode(tok, text, strlen(text), true, &ids, &n));
        snprintf(args, sizeof args, "generate -m '%s' --chat --system 'Be brief.' -p 'Hi there' -n 5 -t 1 %s", g_dir,
                 think ? "" : "--no-think");
        rc = run_split(args, out1, sizeof out1, err, sizeof err);
        CHECK_MSG(rc == 0 && parse_summary(err, &prompt, &gen, stop, sizeof stop) && prompt == n,
                  "--chat (thinking %d): prompt %d tokens, template gives %d; stderr '%s'", think, prompt, n, err);
        free(text);
        free(ids);
    }
    md_tokenizer_free(tok);

    /* --stop: the output ends right before the first occurrence */
    snprintf(args, sizeof args, "generate -m '%s' -p 'Hello' -n 30 -t 1 --ignore-eos", g_dir);
    run_split(args, out1, sizeof out1, err, sizeof err);
    const size_t full = strlen(out1);
    CHECK(full > 20);
    /* the stop string: a whole "<unk:N>" placeholder from the middle of the text (plain ASCII) */
    const char *mid = full > 20 ? strstr(out1 + full / 2, "<unk:") : NULL;
    CHECK_MSG(mid != NULL, "no placeholder in the second half of '%s'", out1);
    if (mid) {
        char s[16];
        snprintf(s, sizeof s, "%.*s", (int)(strchr(mid, '>') - mid + 1), mid);
        const char *first = strstr(out1, s);
        {
            snprintf(args, sizeof args, "generate -m '%s' -p 'Hello' -n 30 -t 1 --ignore-eos --stop '%s'", g_dir, s);
            rc = run_split(args, out2, sizeof out2, err, sizeof err);
            CHECK_MSG(rc == 0 && strlen(out2) == (size_t)(first - out1) && !strncmp(out1, out2, strlen(out2)) &&
                          strstr(err, "stop: stop string"),
                      "--stop '%s': got %zu bytes, want %zu; stderr '%s'", s, strlen(out2), (size_t)(first - out1), err);
        }
    }
    /* a prompt longer than the context */
    snprintf(args, sizeof args, "generate -m '%s' -p 'a long prompt that will not fit' -c 4 -t 1", g_dir);
    rc = run_split(args, out1, sizeof out1, err, sizeof err);
    CHECK_MSG(rc == 1 && strstr(err, "context") && strstr(err, "--ctx") && !out1[0], "long prompt: rc %d, '%s'", rc, err);
    /* invalid UTF-8 in the prompt file */
    char path[4096];
    snprintf(path, sizeof path, "%s/bad_prompt.txt", md_test_tmp());
    md_test_write_file(path, "hi \xFF there", 10);
    snprintf(args, sizeof args, "generate -m '%s' -f '%s' -t 1", g_dir, path);
    rc = run_split(args, out1, sizeof out1, err, sizeof err);
    CHECK_MSG(rc == 1 && strstr(err, "not valid UTF-8") && strstr(err, "offset 3"), "bad prompt: rc %d, '%s'", rc, err);
    /* a model directory without tokenizer.json */
    char nodir[4096], cmd[16384];
    snprintf(nodir, sizeof nodir, "%s/no_tokenizer", md_test_tmp());
    snprintf(cmd, sizeof cmd, "mkdir -p '%s' && cp '%s/config.json' '%s/model.safetensors' '%s/'", nodir, g_dir, g_dir, nodir);
    CHECK(md_test_run(cmd, NULL, 0) == 0);
    snprintf(args, sizeof args, "generate -m '%s' -p hi -t 1", nodir);
    rc = run_split(args, out1, sizeof out1, err, sizeof err);
    CHECK_MSG(rc == 1 && strstr(err, "no tokenizer.json"), "missing tokenizer: rc %d, '%s'", rc, err);
    /* bad flag values are refused with the flag's name */
    snprintf(args, sizeof args, "generate -m '%s' -p hi --top-p 2", g_dir);
    CHECK(run_split(args, out1, sizeof out1, err, sizeof err) == 1 && strstr(err, "--top-p"));
}

/* ------------------------------------------------------------ Ctrl-C */

typedef struct child {
    pid_t pid;
    int in, out, err; /* our ends */
} child;

static bool spawn(char *const argv[], child *c) {
    int pin[2], pout[2], perr[2];
    if (pipe(pin) || pipe(pout) || pipe(perr)) return false;
    fcntl(pout[1], F_SETPIPE_SZ, 4096); /* the child blocks on output soon */
    c->pid = fork();
    if (c->pid < 0) return false;
    if (c->pid == 0) {
        dup2(pin[0], 0), dup2(pout[1], 1), dup2(perr[1], 2);
        close(pin[0]), close(pin[1]), close(pout[0]), close(pout[1]), close(perr[0]), close(perr[1]);
        signal(SIGINT, SIG_DFL);
        execv(argv[0], argv);
        _exit(127);
    }
    close(pin[0]), close(pout[1]), close(perr[1]);
    c->in = pin[1], c->out = pout[0], c->err = perr[0];
    return true;
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Waits until the child's stdout pipe holds at least n bytes and stops
 * growing for 0.4 s: the pipe is full and the child blocked writing, mid-reply. */
static bool wait_output(const child *c, int n, double timeout) {
    const double t0 = now();
    int last = -1;
    double since = 0;
    while (now() - t0 < timeout) {
        int avail = 0;
        if (ioctl(c->out, FIONREAD, &avail) != 0) return false;
        if (avail != last) {
            last = avail;
            since = now();
        } else if (avail >= n && now() - since >= 0.4) {
            return true;
        }
        usleep(20000);
    }
    return false;
}

/* Reads stdout and stderr to EOF (with the child's exit), returns the status. */
static int finish(child *c, char *out, size_t n_out, char *err, size_t n_err, double timeout) {
    size_t ko = 0, ke = 0;
    struct pollfd fds[2] = {{.fd = c->out, .events = POLLIN}, {.fd = c->err, .events = POLLIN}};
    bool open_o = true, open_e = true;
    const double t0 = now();
    while ((open_o || open_e) && now() - t0 < timeout) {
        if (poll(fds, 2, 200) <= 0) continue;
        char buf[4096];
        for (int i = 0; i < 2; i++) {
            if (!(fds[i].revents & (POLLIN | POLLHUP))) continue;
            ssize_t got = read(fds[i].fd, buf, sizeof buf);
            if (got <= 0) {
                fds[i].fd = -1;
                if (i == 0) open_o = false;
                else open_e = false;
                continue;
            }
            char *dst = i == 0 ? out : err;
            size_t *k = i == 0 ? &ko : &ke;
            const size_t cap = i == 0 ? n_out : n_err;
            size_t take = (size_t)got < cap - 1 - *k ? (size_t)got : cap - 1 - *k;
            memcpy(dst + *k, buf, take);
            *k += take;
        }
    }
    out[ko] = 0;
    err[ke] = 0;
    if (open_o || open_e) kill(c->pid, SIGKILL);
    int status = 0;
    waitpid(c->pid, &status, 0);
    close(c->out), close(c->err);
    if (c->in >= 0) close(c->in);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static void test_ctrl_c(void) {
    static char out[1 << 18], err[1 << 14];
    char bin[4096];
    snprintf(bin, sizeof bin, "%s", md_test_bin());
    /* generate: one Ctrl-C stops it cleanly */
    char *gen_argv[] = {bin, "generate", "-m", g_dir, "-p", "Hello", "-n", "3000", "--ignore-eos", "-t", "1", NULL};
    child c;
    CHECK(spawn(gen_argv, &c));
    CHECK_MSG(wait_output(&c, 4000, 60), "generate produced no output");
    kill(c.pid, SIGINT);
    int rc = finish(&c, out, sizeof out, err, sizeof err, 60);
    int prompt = 0, gen = 0;
    char stop[64];
    CHECK_MSG(rc == 130 && parse_summary(err, &prompt, &gen, stop, sizeof stop) && !strcmp(stop, "interrupted") &&
                  gen > 0 && gen < 3000,
              "generate after Ctrl-C: status %d, stderr '%s'", rc, err);

    /* chat: Ctrl-C ends the reply and the REPL reads the next command (a
     * /reset, which it acknowledges on stderr), then /exit: status 0 */
    /* -n 1000: enough text (~8 KiB) to fill the pipe */
    char *chat_argv[] = {bin, "chat", "-m", g_dir, "-n", "1000", "--ignore-eos", "-t", "1", NULL};
    CHECK(spawn(chat_argv, &c));
    CHECK(write(c.in, "hello\n", 6) == 6);
    CHECK_MSG(wait_output(&c, 4000, 60), "chat produced no output");
    kill(c.pid, SIGINT);
    usleep(100000);
    CHECK(write(c.in, "/reset\n/exit\n", 13) == 13);
    rc = finish(&c, out, sizeof out, err, sizeof err, 120);
    const char *first = strstr(err, "megadelta: prompt ");
    const char *cleared = first ? strstr(first, "conversation cleared") : NULL;
    CHECK_MSG(rc == 0 && first && strstr(first, "stop: interrupted") && cleared,
              "chat after Ctrl-C: status %d, stderr '%s'", rc, err);

    /* chat: a second Ctrl-C during a reply exits at once */
    CHECK(spawn(chat_argv, &c));
    CHECK(write(c.in, "hello\n", 6) == 6);
    CHECK(wait_output(&c, 4000, 60));
    kill(c.pid, SIGINT);
    usleep(50000);
    kill(c.pid, SIGINT);
    rc = finish(&c, out, sizeof out, err, sizeof err, 60);
    CHECK_MSG(rc == 130, "chat after two Ctrl-C: status %d", rc);
}

static void test_chat_turns(void) {
    /* three turns through a pipe: three replies, each with its summary line */
    char args[8192], out[1 << 15], err[8192];
    char path[4096];
    snprintf(path, sizeof path, "%s/chat_in.txt", md_test_tmp());
    const char *in = "Hi\nA second\\\nline\n\n/reset\nThird\n";
    md_test_write_file(path, in, strlen(in));
    snprintf(args, sizeof args, "chat -m '%s' -n 6 --seed 1 --temp 0.8 -t 1 --system 'Be kind.' < '%s'", g_dir, path);
    int rc = run_split(args, out, sizeof out, err, sizeof err);
    int summaries = 0;
    for (const char *p = err; (p = strstr(p, "megadelta: prompt ")); p++) summaries++;
    CHECK_MSG(rc == 0 && summaries == 3 && strstr(err, "conversation cleared"), "chat: rc %d, stderr '%s'", rc, err);
    CHECK(strlen(out) > 0);
}

int main(void) {
    snprintf(g_dir, sizeof g_dir, "%s/tiny", md_test_tmp());
    CHECK_OK(md_synth_write("tiny", g_dir, 0, NULL, NULL));
    test_tokenize();
    test_generate_cli();
    test_chat_turns();
    test_ctrl_c();
    return md_test_finish("test_text_cli");
}
