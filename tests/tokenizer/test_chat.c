/*
 * test_chat.c — md_chat_render against Qwen3.5's own chat template: every
 * conversation of tests/fixtures/chat/conversations.json (rendered by jinja2
 * with scripts/render_chat_fixtures.py) must come out byte for byte, and the
 * ones the template rejects must fail with MD_ERR_INVALID_ARG. Also checks the
 * defaults, invalid UTF-8 in a message, and that the rendered prompt of the
 * synthetic model's tokenizer starts and ends with the right special tokens.
 */
#include <stdlib.h>
#include <string.h>

#include "test_util.h"
#include "tok_test_util.h"

static const char *str_or_null(const cJSON *o, const char *key) {
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(it) ? it->valuestring : NULL;
}

static int check_fixtures(void) {
    char path[4096];
    snprintf(path, sizeof path, "%s/chat/conversations.json", md_test_fixtures());
    void *text = NULL;
    CHECK_MSG(md_test_read_file(path, &text) > 0, "cannot read %s", path);
    cJSON *fx = text ? cJSON_Parse(text) : NULL;
    free(text);
    if (!fx) return 0;
    int n_cases = 0, n_rendered = 0;
    const cJSON *c;
    cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(fx, "conversations")) {
        const char *name = str_or_null(c, "name");
        const cJSON *msgs = cJSON_GetObjectItemCaseSensitive(c, "messages"), *m;
        md_chat_message v[32];
        int n = 0;
        cJSON_ArrayForEach(m, msgs) {
            if (n < 32)
                v[n++] = (md_chat_message){.role = str_or_null(m, "role"), .content = str_or_null(m, "content"),
                                           .reasoning = str_or_null(m, "reasoning_content")};
        }
        md_chat_params p = md_chat_default_params();
        p.add_generation_prompt = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(c, "add_generation_prompt"));
        p.enable_thinking = !cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(c, "enable_thinking"));
        char *out = NULL;
        size_t len = 0;
        md_status st = md_chat_render(v, n, &p, &out, &len);
        const char *want = str_or_null(c, "expected");
        if (want) {
            CHECK_MSG(st == MD_OK && len == strlen(want) && memcmp(out, want, len) == 0,
                      "'%s': got %s", name, st == MD_OK ? tt_repr(out, len) : md_last_error());
            if (st == MD_OK) CHECK_MSG(out[len] == 0, "'%s': not NUL-terminated", name);
            n_rendered++;
        } else {
            CHECK_MSG(st == MD_ERR_INVALID_ARG && out == NULL, "'%s': expected the template's error '%s'", name,
                      str_or_null(c, "error"));
            CHECK_MSG(strstr(md_last_error(), "chat template") != NULL, "'%s': message '%s'", name, md_last_error());
        }
        free(out);
        n_cases++;
    }
    cJSON_Delete(fx);
    CHECK_MSG(n_rendered >= 20, "only %d rendered conversations in the fixture", n_rendered);
    return n_cases;
}

static void check_api(void) {
    md_chat_params d = md_chat_default_params();
    CHECK(d.add_generation_prompt && d.enable_thinking);
    /* NULL params = the defaults */
    md_chat_message one = {.role = "user", .content = "hi"};
    char *out = NULL;
    CHECK_OK(md_chat_render(&one, 1, NULL, &out, NULL));
    CHECK(out && !strcmp(out, "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n<think>\n"));
    free(out);
    /* invalid UTF-8 is refused, naming the message */
    md_chat_message bad[2] = {{.role = "user", .content = "ok"}, {.role = "user", .content = "bad \xC3\x28 byte"}};
    out = NULL;
    CHECK(md_chat_render(bad, 2, NULL, &out, NULL) == MD_ERR_INVALID_ARG && !out);
    CHECK_MSG(strstr(md_last_error(), "message 1") && strstr(md_last_error(), "UTF-8"), "got '%s'", md_last_error());
    /* role NULL */
    md_chat_message norole = {.content = "x"};
    CHECK(md_chat_render(&norole, 1, NULL, &out, NULL) == MD_ERR_INVALID_ARG);
}

int main(void) {
    int n = check_fixtures();
    fprintf(stderr, "test_chat: %d conversations checked\n", n);
    check_api();
    return md_test_finish("test_chat");
}
