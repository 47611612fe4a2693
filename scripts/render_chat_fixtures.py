#!/usr/bin/env python3
"""render_chat_fixtures.py — expected chat prompts from Qwen3.5's own template.

Renders a set of conversations with jinja2 through the chat template that
Qwen3.5 checkpoints ship (shared/data/qwen3.5-chat-template.jinja, used only as
the oracle and never committed), in the environment transformers'
apply_chat_template uses (sandboxed, trim_blocks, lstrip_blocks, loopcontrols,
raise_exception), and writes tests/fixtures/chat/conversations.json: each
conversation with its options and the rendered string, or the error the
template raises. tests/tokenizer/test_chat.c checks md_chat_render against it
byte for byte.

  python3 scripts/render_chat_fixtures.py [--template PATH] [--out FILE]
"""
import argparse
import json
import os
import sys

import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_TEMPLATE = os.path.join(HERE, "..", "..", "shared", "data", "qwen3.5-chat-template.jinja")
DEFAULT_OUT = os.path.join(HERE, "..", "tests", "fixtures", "chat", "conversations.json")


def U(c):
    return {"role": "user", "content": c}


def A(c, reasoning=None):
    m = {"role": "assistant", "content": c}
    if reasoning is not None:
        m["reasoning_content"] = reasoning
    return m


def S(c):
    return {"role": "system", "content": c}


def T(c):
    return {"role": "tool", "content": c}


# (name, messages, options); options: add_generation_prompt (default True),
# enable_thinking (absent = not passed to the template)
CONVERSATIONS = [
    ("single user", [U("Hello!")], {}),
    ("single user, thinking off", [U("Hello!")], {"enable_thinking": False}),
    ("single user, thinking on explicitly", [U("Hello!")], {"enable_thinking": True}),
    ("system and user", [S("You are a helpful assistant."), U("What is 2+2?")], {}),
    ("system and user, thinking off", [S("You are terse."), U("Name a colour.")], {"enable_thinking": False}),
    ("two turns", [U("Hi"), A("Hello! How can I help?"), U("Tell me a joke.")], {}),
    ("earlier reasoning in content is dropped",
     [U("What is 3*4?"), A("<think>\n3*4 is 12.\n</think>\n\n12"), U("And 5*6?")], {}),
    ("earlier reasoning_content is dropped",
     [U("Capital of France?"), A("Paris.", reasoning="The user asks about France."), U("And Italy?")], {}),
    ("reasoning after the last query is kept",
     [U("Think about it."), A("Done.", reasoning="Let me think.")], {"add_generation_prompt": False}),
    ("reasoning in content after the last query is kept",
     [U("Think."), A("<think>\nhmm\n\n</think>\n\nThe answer.")], {"add_generation_prompt": False}),
    ("close tag without open tag",
     [U("Q"), A("some reasoning\n</think>\n\nanswer"), U("next")], {}),
    ("close tag without open tag, last turn",
     [U("Q"), A("some reasoning\n</think>\n\nanswer")], {"add_generation_prompt": False}),
    ("surrounding whitespace is trimmed",
     [S("  \n system text \t\n"), U("\n\n  padded user  \n"), A("  reply  "), U("\u3000ideographic\u00a0")], {}),
    ("no generation prompt", [S("sys"), U("only a user turn")], {"add_generation_prompt": False}),
    ("tool results share one user turn",
     [U("What's the weather in Paris?"), A("I'll check."), T("{\"temp\": 21}"), T("{\"sky\": \"clear\"}")], {}),
    ("tool response user message is not a query",
     [U("Compute it."), A("<think>\nneed tool\n</think>\n\nCalling."),
      U("<tool_response>\n42\n</tool_response>")], {}),
    ("empty reasoning_content keeps the tags in content",
     [U("x"), A("<think>\nr\n</think>\n\ny", reasoning="")], {"add_generation_prompt": False}),
    ("reasoning with surrounding newlines",
     [U("q"), A("answer", reasoning="\n\n  deep thought  \n\n")], {"add_generation_prompt": False}),
    ("several close tags",
     [U("q"), A("<think>a</think>b</think>\nc")], {"add_generation_prompt": False}),
    ("unicode content",
     [S("\u4f60\u662f\u52a9\u624b\u3002"), U("\u65e5\u672c\u8a9e\u3067\u7b54\u3048\u3066 \U0001f642"),
      A("\u306f\u3044\u3002", reasoning="\u8003\u3048\u4e2d"), U("\u0645\u0631\u062d\u0628\u0627 \U0001f468\u200d\U0001f469")],
     {"enable_thinking": False}),
    ("empty user content", [U("")], {}),
    ("assistant content null", [U("call a tool"), A(None), T("result"), U("thanks")], {}),
    ("three turns with system, thinking off",
     [S("Be brief."), U("One"), A("<think>\n\n</think>\n\n1"), U("Two"), A("2"), U("Three")],
     {"enable_thinking": False}),
    ("no-think reply in history", [U("Hi"), A("<think>\n\n</think>\n\nHello."), U("Bye")], {}),
    ("open tag only in content", [U("q"), A("<think>unfinished"), U("again")], {}),
    ("special tokens inside content", [U("<|im_start|>x<|im_end|>"), A("<|endoftext|>"), U("y")], {}),
    ("assistant last without reasoning", [S("s"), U("u"), A("a")], {"add_generation_prompt": False}),
    ("tool message first", [T("orphan result"), U("now a question")], {}),
    # the template raises for these
    ("no messages", [], {}),
    ("system not first", [U("a"), S("late system")], {}),
    ("unknown role", [U("a"), {"role": "narrator", "content": "x"}], {}),
    ("no user query", [S("only system"), A("and assistant")], {}),
    ("only tool responses", [U("<tool_response>\nx\n</tool_response>")], {}),
]


def make_env():
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                        extensions=["jinja2.ext.loopcontrols"])

    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    return env


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--template", default=DEFAULT_TEMPLATE)
    ap.add_argument("--out", default=DEFAULT_OUT)
    args = ap.parse_args()
    with open(args.template, encoding="utf-8") as f:
        template = make_env().from_string(f.read())
    cases = []
    for name, messages, opts in CONVERSATIONS:
        kwargs = {"messages": messages, "add_generation_prompt": opts.get("add_generation_prompt", True)}
        if "enable_thinking" in opts:
            kwargs["enable_thinking"] = opts["enable_thinking"]
        case = {"name": name, "messages": messages, "add_generation_prompt": kwargs["add_generation_prompt"],
                "enable_thinking": opts.get("enable_thinking")}
        try:
            case["expected"] = template.render(**kwargs)
        except jinja2.exceptions.TemplateError as e:
            case["error"] = str(e)
        cases.append(case)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump({"jinja2_version": jinja2.__version__, "conversations": cases}, f, ensure_ascii=True, indent=1)
        f.write("\n")
    ok = sum(1 for c in cases if "expected" in c)
    print(f"wrote {args.out}: {ok} rendered, {len(cases) - ok} raising")
    return 0


if __name__ == "__main__":
    sys.exit(main())
