#!/usr/bin/env python3
"""Side by side on one GPU: HF transformers and megadelta on the same checkpoint.

Runs `megadelta bench --json` (pp and tg) and HF transformers (bf16, eager, same
GPU, same run) on the same model directory, and prints tokens/s of both and the
ratio. Needs torch + transformers (the GPU machine has them).

  python3 bench/compare_hf.py --megadelta build-gpu/megadelta [-m DIR] [-p 512] [-n 128] [-r 3]

Without -m the synthetic Qwen3.5-0.8B is written (once) with `megadelta synth`.
HF prefill is timed as one forward over -p random tokens; HF decode as
`generate(max_new_tokens=n, min_new_tokens=n)` from one token, greedy (the same
work as megadelta's tg: n steps from an empty context). Medians over -r runs
after a warm-up, CUDA-synchronised wall time.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time


def megadelta_bench(exe, model, p, n, r):
    out = subprocess.run([exe, "bench", "-m", model, "-p", str(p), "-n", str(n), "-r", str(r), "--json"],
                         check=True, capture_output=True, text=True).stdout
    res = {}
    for line in out.splitlines():
        row = json.loads(line)
        if "test" in row:
            res[row["test"]] = row["tokens_per_second"]
    return res


def load_hf(model_dir, torch):
    """The text model as Qwen3_5ForCausalLM, from a flat or release-layout directory."""
    from safetensors.torch import load_file
    from transformers import AutoConfig, Qwen3_5ForCausalLM
    cfg = AutoConfig.from_pretrained(model_dir)
    text = getattr(cfg, "text_config", None) or cfg
    text.tie_word_embeddings = bool(getattr(cfg, "tie_word_embeddings", False))  # the top-level flag governs
    tied = text.tie_word_embeddings
    model = Qwen3_5ForCausalLM(text).to(torch.bfloat16)
    files = [f for f in sorted(os.listdir(model_dir)) if f.endswith(".safetensors")]
    state = {}
    for f in files:
        for k, v in load_file(os.path.join(model_dir, f)).items():
            if k.startswith("model.language_model."):
                state["model." + k[len("model.language_model."):]] = v
            elif k.startswith("model.") or k == "lm_head.weight":
                state[k] = v
    missing, _ = model.load_state_dict(state, strict=False)
    missing = [k for k in missing if not (k == "lm_head.weight" and tied)]
    if missing:
        sys.exit("compare_hf: tensors missing for transformers: %s" % missing[:5])
    if tied:
        model.tie_weights()
    model.set_attn_implementation("eager")
    return model.cuda().eval(), text.vocab_size


def hf_bench(model, vocab, p, n, r, torch):
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(0, vocab, (1, p), generator=g).cuda()
    one = ids[:, :1]

    def timed(fn):
        fn()  # warm-up
        ts = []
        for _ in range(r):
            torch.cuda.synchronize()
            t0 = time.perf_counter()
            fn()
            torch.cuda.synchronize()
            ts.append(time.perf_counter() - t0)
        return statistics.median(ts)

    with torch.no_grad():
        t_pp = timed(lambda: model(ids))
        t_tg = timed(lambda: model.generate(one, max_new_tokens=n, min_new_tokens=n, do_sample=False))
    return {"pp%d" % p: p / t_pp, "tg%d" % n: n / t_tg}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--megadelta", default="build/megadelta", help="the megadelta binary")
    ap.add_argument("-m", "--model", help="model directory (default: the synthetic qwen3.5-0.8b)")
    ap.add_argument("-p", type=int, default=512)
    ap.add_argument("-n", type=int, default=128)
    ap.add_argument("-r", type=int, default=3)
    args = ap.parse_args()
    model_dir = args.model
    if not model_dir:
        cache = os.environ.get("MEGADELTA_CACHE") or os.path.expanduser("~/.cache/megadelta")
        model_dir = os.path.join(cache, "synth-qwen3.5-0.8b")
        if not os.path.exists(os.path.join(model_dir, ".complete")):
            subprocess.run([args.megadelta, "synth", "--preset", "qwen3.5-0.8b", "--out", model_dir], check=True)
            open(os.path.join(model_dir, ".complete"), "w").close()
    import torch
    md = megadelta_bench(args.megadelta, model_dir, args.p, args.n, args.r)
    model, vocab = load_hf(model_dir, torch)
    hf = hf_bench(model, vocab, args.p, args.n, args.r, torch)
    print("device: %s, model: %s" % (torch.cuda.get_device_name(0), model_dir))
    print("| test | HF transformers t/s | megadelta t/s | ratio |")
    print("|---|---|---|---|")
    for test in hf:
        ratio = md.get(test, float("nan")) / hf[test]
        print("| %s | %.1f | %.1f | %.1fx |" % (test, hf[test], md.get(test, float("nan")), ratio))


if __name__ == "__main__":
    main()
