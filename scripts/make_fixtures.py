#!/usr/bin/env python3
"""make_fixtures.py — Hugging Face reference fixtures for megadelta's CPU engine.

For a few small random-weight Qwen3.5 configs that together cover every case the
engine must handle (release multimodal layout and flat CausalLM layout, config
under text_config or at the top level, rope in rope_parameters or legacy top-level
fields, tied and untied LM head, GQA, Hv = 2 Hk, dk != dv, partial rotary, an
unusual layer_types pattern, BF16 / F16 / F32 tensors mixed in one file, a sharded
checkpoint with an index), this script

  1. writes config.json in the target layout and builds the HF model from it
     (transformers' own reading of the config, float32, eager attention);
  2. gives EVERY tensor non-trivial random values (zero-centred norm weights not
     zero, gated-norm weight not one, A_log, dt_bias, conv taps, q_norm/k_norm),
     rounded to the dtype it is stored in, so the fp32 model computes over exactly
     the stored weights;
  3. saves the safetensors file(s) (release layout: plus a tiny vision tower and
     the mtp.* block, which the engine must skip);
  4. picks token ids (longer than the 64-token chunk of HF's chunked delta rule)
     and writes two references, little-endian float32 [T x V]:
       logits_prefill.f32  one HF forward over all tokens (chunked delta rule)
       logits_step.f32     HF's own cached decode, one token at a time
  5. checks that transformers loads the directory it wrote (from_pretrained) to
     the same weights and the same logits, and that its two modes agree;
     any failure stops the script with a message.

Each fixture directory is itself a model directory (config.json + safetensors)
plus meta.json and the two logits files. The ctest tests/cpu/test_hf_fixtures
compares the CPU engine with both references.

Run on the GPU machine (Python 3.12, torch, transformers 5.x, safetensors; the
models run on the CPU in float32 there, which is exact and fast at these sizes):
    python3 scripts/make_fixtures.py --out OUT [--tar FIXTURES.tar.gz]
then unpack into tests/fixtures/hf/. Without torch,
    python3 scripts/make_fixtures.py --plan --out DIR
writes the same layouts with placeholder weights and no logits, and prints the
sizes: a check of names, shapes, dtypes and sharding against the C loader
(`megadelta info -m DIR/<name>`) before spending GPU time.
"""
import argparse
import json
import math
import os
import random
import struct
import sys
import tarfile
import time
import zlib

# ---------------------------------------------------------------- the fixtures

FIXTURES = [
    {
        # The release multimodal wrapper, BF16, tied head, Hv = 2 Hk, dk != dv.
        "name": "tiny-release",
        "layout": "release",
        "seed": 11,
        "T": 80,
        "shards": 1,
        "tied": True,
        "mtp": True,
        "rope": "parameters",
        "text": {
            "vocab_size": 1000,
            "hidden_size": 128,
            "intermediate_size": 256,
            "num_hidden_layers": 4,
            "layer_types": ["linear_attention"] * 3 + ["full_attention"],
            "num_attention_heads": 4,
            "num_key_value_heads": 2,
            "head_dim": 64,
            "linear_num_key_heads": 2,
            "linear_num_value_heads": 4,
            "linear_key_head_dim": 32,
            "linear_value_head_dim": 64,
            "linear_conv_kernel_dim": 4,
            "rms_norm_eps": 1e-6,
            "max_position_embeddings": 262144,
            "rope_theta": 10000000.0,
            "partial_rotary_factor": 0.25,
            "mrope_section": [3, 3, 2],
        },
    },
    {
        # Flat CausalLM layout, fields at the top level, legacy rope fields,
        # untied head, GQA 8:1, an unusual layer pattern, BF16/F16/F32 mixed.
        "name": "flat-untied",
        "layout": "flat",
        "seed": 22,
        "T": 80,
        "shards": 1,
        "tied": False,
        "mtp": False,
        "rope": "legacy",
        "text": {
            "vocab_size": 777,
            "hidden_size": 192,
            "intermediate_size": 192,
            "num_hidden_layers": 5,
            "layer_types": ["full_attention", "linear_attention", "linear_attention", "full_attention",
                            "linear_attention"],
            "num_attention_heads": 8,
            "num_key_value_heads": 1,
            "head_dim": 64,
            "linear_num_key_heads": 4,
            "linear_num_value_heads": 4,
            "linear_key_head_dim": 32,
            "linear_value_head_dim": 32,
            "linear_conv_kernel_dim": 4,
            "rms_norm_eps": 1e-5,
            "max_position_embeddings": 256,
            "rope_theta": 1000000.0,
            "partial_rotary_factor": 0.5,
        },
    },
    {
        # Release layout in 3 shards with the 0.8B head dims (attention 256 with
        # 8 q / 2 kv heads, linear dk = dv = 128 with 2 key / 4 value heads).
        "name": "sharded-0.8b-heads",
        "layout": "release",
        "seed": 33,
        "T": 72,
        "shards": 3,
        "tied": True,
        "mtp": False,
        "rope": "parameters",
        "text": {
            "vocab_size": 1024,
            "hidden_size": 128,
            "intermediate_size": 256,
            "num_hidden_layers": 4,
            "layer_types": ["linear_attention", "full_attention", "linear_attention", "linear_attention"],
            "num_attention_heads": 8,
            "num_key_value_heads": 2,
            "head_dim": 256,
            "linear_num_key_heads": 2,
            "linear_num_value_heads": 4,
            "linear_key_head_dim": 128,
            "linear_value_head_dim": 128,
            "linear_conv_kernel_dim": 4,
            "rms_norm_eps": 1e-6,
            "max_position_embeddings": 1024,
            "rope_theta": 10000000.0,
            "partial_rotary_factor": 0.25,
            "mrope_section": [11, 11, 10],
        },
    },
]

# A vision tower as small as transformers allows: only there so the release
# files hold model.visual.* tensors the engine must skip.
TINY_VISION = {
    "model_type": "qwen3_5_vision",
    "depth": 1,
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_heads": 2,
    "in_channels": 3,
    "patch_size": 4,
    "spatial_merge_size": 2,
    "temporal_patch_size": 2,
    "num_position_embeddings": 16,
    "hidden_act": "gelu_pytorch_tanh",
}

DTYPE_SIZE = {"F32": 4, "F16": 2, "BF16": 2}


class FixtureError(Exception):
    pass


def die(msg):
    raise FixtureError(msg)


# ---------------------------------------------------------------- config.json

def text_fields(fx):
    """The text-model fields as written in config.json."""
    t = fx["text"]
    d = {
        "model_type": "qwen3_5_text",
        "vocab_size": t["vocab_size"],
        "hidden_size": t["hidden_size"],
        "intermediate_size": t["intermediate_size"],
        "num_hidden_layers": t["num_hidden_layers"],
        "num_attention_heads": t["num_attention_heads"],
        "num_key_value_heads": t["num_key_value_heads"],
        "head_dim": t["head_dim"],
        "linear_num_key_heads": t["linear_num_key_heads"],
        "linear_num_value_heads": t["linear_num_value_heads"],
        "linear_key_head_dim": t["linear_key_head_dim"],
        "linear_value_head_dim": t["linear_value_head_dim"],
        "linear_conv_kernel_dim": t["linear_conv_kernel_dim"],
        "layer_types": t["layer_types"],
        "full_attention_interval": 4,
        "hidden_act": "silu",
        "attention_bias": False,
        "attention_dropout": 0.0,
        "attn_output_gate": True,
        "rms_norm_eps": t["rms_norm_eps"],
        "max_position_embeddings": t["max_position_embeddings"],
        "initializer_range": 0.02,
        "use_cache": True,
        "tie_word_embeddings": fx["tied"],
        "eos_token_id": t["vocab_size"] - 5,
        "dtype": "bfloat16" if fx["layout"] == "release" else "float32",
    }
    if fx["rope"] == "parameters":
        d["rope_parameters"] = {
            "rope_type": "default",
            "rope_theta": t["rope_theta"],
            "partial_rotary_factor": t["partial_rotary_factor"],
            "mrope_interleaved": True,
            "mrope_section": t["mrope_section"],
        }
    else:  # older files: top-level fields, no rope_parameters
        d["rope_theta"] = t["rope_theta"]
        d["partial_rotary_factor"] = t["partial_rotary_factor"]
    if fx["mtp"]:
        d["mtp_num_hidden_layers"] = 1
        d["mtp_use_dedicated_embeddings"] = False
    return d


def config_json(fx):
    t = fx["text"]
    if fx["layout"] == "flat":
        d = {"architectures": ["Qwen3_5ForCausalLM"]}
        d.update(text_fields(fx))
        return d
    V = t["vocab_size"]
    vision = dict(TINY_VISION)
    vision["out_hidden_size"] = t["hidden_size"]
    return {
        "architectures": ["Qwen3_5ForConditionalGeneration"],
        "model_type": "qwen3_5",
        "tie_word_embeddings": fx["tied"],
        "image_token_id": V - 4,
        "video_token_id": V - 3,
        "vision_start_token_id": V - 2,
        "vision_end_token_id": V - 1,
        "text_config": text_fields(fx),
        "vision_config": vision,
    }


# ---------------------------------------------------------------- tensor specs

def layer_specs(p, t, full):
    """(name, shape, kind) of one decoder layer under prefix p."""
    H, I = t["hidden_size"], t["intermediate_size"]
    s = [
        (p + "input_layernorm.weight", [H], "norm"),
        (p + "post_attention_layernorm.weight", [H], "norm"),
        (p + "mlp.gate_proj.weight", [I, H], "in"),
        (p + "mlp.up_proj.weight", [I, H], "in"),
        (p + "mlp.down_proj.weight", [H, I], "out"),
    ]
    if full:
        D, Hq, Hkv = t["head_dim"], t["num_attention_heads"], t["num_key_value_heads"]
        s += [
            (p + "self_attn.q_proj.weight", [2 * Hq * D, H], "in"),
            (p + "self_attn.k_proj.weight", [Hkv * D, H], "in"),
            (p + "self_attn.v_proj.weight", [Hkv * D, H], "in"),
            (p + "self_attn.o_proj.weight", [H, Hq * D], "out"),
            (p + "self_attn.q_norm.weight", [D], "norm"),
            (p + "self_attn.k_norm.weight", [D], "norm"),
        ]
    else:
        Hk, Hv = t["linear_num_key_heads"], t["linear_num_value_heads"]
        Kd, Vd = Hk * t["linear_key_head_dim"], Hv * t["linear_value_head_dim"]
        cd = 2 * Kd + Vd
        s += [
            (p + "linear_attn.in_proj_qkv.weight", [cd, H], "in"),
            (p + "linear_attn.in_proj_z.weight", [Vd, H], "in"),
            (p + "linear_attn.in_proj_b.weight", [Hv, H], "in"),
            (p + "linear_attn.in_proj_a.weight", [Hv, H], "in"),
            (p + "linear_attn.conv1d.weight", [cd, 1, t["linear_conv_kernel_dim"]], "conv"),
            (p + "linear_attn.A_log", [Hv], "A_log"),
            (p + "linear_attn.dt_bias", [Hv], "dt_bias"),
            (p + "linear_attn.norm.weight", [t["linear_value_head_dim"]], "gnorm"),
            (p + "linear_attn.out_proj.weight", [H, Vd], "out"),
        ]
    return s


def text_specs(fx):
    """Every text-model tensor the engine reads, with its full name."""
    t = fx["text"]
    pre = "model.language_model." if fx["layout"] == "release" else "model."
    H, V = t["hidden_size"], t["vocab_size"]
    s = [(pre + "embed_tokens.weight", [V, H], "embed")]
    for i, lt in enumerate(t["layer_types"]):
        s += layer_specs("%slayers.%d." % (pre, i), t, lt == "full_attention")
    s.append((pre + "norm.weight", [H], "norm"))
    if not fx["tied"]:
        s.append(("lm_head.weight", [V, H], "head"))
    return s


def mtp_specs(fx):
    """The multi-token-prediction block at its real shapes (skipped by the engine)."""
    t = fx["text"]
    H = t["hidden_size"]
    s = [
        ("mtp.fc.weight", [H, 2 * H], "in"),
        ("mtp.pre_fc_norm_embedding.weight", [H], "norm"),
        ("mtp.pre_fc_norm_hidden.weight", [H], "norm"),
    ]
    s += layer_specs("mtp.layers.0.", t, True)
    s.append(("mtp.norm.weight", [H], "norm"))
    return s


def stored_dtype(fx, name, shape):
    """BF16 for the release files; the flat one mixes all three dtypes, with
    the large matrices in 2-byte types to keep the fixture small."""
    if fx["layout"] == "release":
        return "BF16"
    h = zlib.crc32(name.encode())
    if math.prod(shape) > 20000:
        return ("F16", "BF16")[h % 2]
    return ("F32", "F16", "BF16")[h % 3]


def numel(shape):
    return math.prod(shape)


def tokens_for(fx):
    """T token ids below V-4 (the top 4 ids are the image/video markers)."""
    r = random.Random(fx["seed"] * 7919)
    V = fx["text"]["vocab_size"]
    ids = [r.randrange(0, V - 4) for _ in range(fx["T"])]
    ids[0], ids[-1] = 0, V - 5  # the ends of the range too
    return ids


def shard_plan(names_bytes, n):
    """Splits (name, bytes) sorted by name into n shards of similar size."""
    if n == 1:
        return {name: "model.safetensors" for name, _ in names_bytes}
    total = sum(b for _, b in names_bytes)
    plan, acc = {}, 0
    for name, b in names_bytes:
        k = min(n - 1, int(acc * n / total))
        plan[name] = "model-%05d-of-%05d.safetensors" % (k + 1, n)
        acc += b
    if len(set(plan.values())) != n:
        die("shard plan left a shard empty")
    return plan


def write_json(path, obj):
    with open(path, "w") as f:
        json.dump(obj, f, indent=2)
        f.write("\n")


def write_index(d, plan, sizes):
    total = sum(sizes.values())
    write_json(os.path.join(d, "model.safetensors.index.json"),
               {"metadata": {"total_size": total}, "weight_map": dict(sorted(plan.items()))})


# ---------------------------------------------------------------- --plan (no torch)

def placeholder_bytes(dtype, shape, r):
    """Small random values in the stored dtype, pure Python (layout checks only)."""
    n = numel(shape)
    vals = [r.uniform(-0.1, 0.1) for _ in range(n)]
    if dtype == "F32":
        return struct.pack("<%df" % n, *vals)
    if dtype == "F16":
        return struct.pack("<%de" % n, *vals)
    raw = struct.pack("<%df" % n, *vals)  # BF16: the high halves (truncation is fine here)
    return b"".join(raw[i + 2:i + 4] for i in range(0, len(raw), 4))


def write_safetensors_py(path, tensors):
    """tensors: {name: (dtype, shape, bytes)}; larger elements first, as safetensors does."""
    order = sorted(tensors, key=lambda k: (-DTYPE_SIZE[tensors[k][0]], k))
    header, off = {"__metadata__": {"format": "pt"}}, 0
    for k in order:
        dt, shape, data = tensors[k]
        header[k] = {"dtype": dt, "shape": shape, "data_offsets": [off, off + len(data)]}
        off += len(data)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for k in order:
            f.write(tensors[k][2])


def plan_fixture(fx, out):
    d = os.path.join(out, fx["name"])
    os.makedirs(d, exist_ok=True)
    write_json(os.path.join(d, "config.json"), config_json(fx))
    specs = text_specs(fx) + (mtp_specs(fx) if fx["mtp"] else [])
    r = random.Random(fx["seed"])
    tensors = {}
    for name, shape, _ in specs:
        dt = stored_dtype(fx, name, shape)
        tensors[name] = (dt, shape, placeholder_bytes(dt, shape, r))
    if fx["layout"] == "release":  # a stand-in for the vision tower
        tensors["model.visual.patch_embed.proj.weight"] = ("BF16", [32, 3, 2, 4, 4],
                                                          placeholder_bytes("BF16", [32, 3, 2, 4, 4], r))
    plan = shard_plan(sorted((k, len(v[2])) for k, v in tensors.items()), fx["shards"])
    for fname in sorted(set(plan.values())):
        write_safetensors_py(os.path.join(d, fname), {k: v for k, v in tensors.items() if plan[k] == fname})
    if fx["shards"] > 1:
        write_index(d, plan, {k: len(v[2]) for k, v in tensors.items()})
    V, T = fx["text"]["vocab_size"], fx["T"]
    weights = sum(len(v[2]) for v in tensors.values())
    counts = {}
    for k, v in tensors.items():
        kind = "matrix" if len(v[1]) == 2 else "vector" if len(v[1]) == 1 else "conv"
        counts[v[0] + " " + kind] = counts.get(v[0] + " " + kind, 0) + 1
    print("%-20s weights %7.2f MB + logits 2 x %5.2f MB  dtypes %s" %
          (fx["name"], weights / 1e6, T * V * 4 / 1e6, counts))
    return weights + 2 * T * V * 4


# ---------------------------------------------------------------- the real run (torch)

def run_fixture(fx, out, torch, tf, st_torch, log):
    import transformers.models.qwen3_5 as q35

    name = fx["name"]
    d = os.path.join(out, name)
    os.makedirs(d, exist_ok=True)
    t = fx["text"]
    V, H, T = t["vocab_size"], t["hidden_size"], fx["T"]
    release = fx["layout"] == "release"
    write_json(os.path.join(d, "config.json"), config_json(fx))

    # 1. the model, as transformers reads the config we wrote
    if release:
        cfg = q35.Qwen3_5Config.from_pretrained(d)
        cls = q35.Qwen3_5ForConditionalGeneration
        tcfg = cfg.text_config
    else:
        cfg = q35.Qwen3_5TextConfig.from_pretrained(d)
        cls = q35.Qwen3_5ForCausalLM
        tcfg = cfg
    rp = dict(tcfg.rope_parameters)
    log("%s: HF reads layer_types=%s rope_parameters=%s tie=%s head_dim=%s eps=%s" %
        (name, tcfg.layer_types, rp, cfg.tie_word_embeddings, tcfg.head_dim, tcfg.rms_norm_eps))
    if list(tcfg.layer_types) != t["layer_types"]:
        die("%s: transformers reads layer_types %s" % (name, tcfg.layer_types))
    if abs(rp.get("rope_theta", 0) - t["rope_theta"]) > 1e-3 or \
            abs(rp.get("partial_rotary_factor", 0) - t["partial_rotary_factor"]) > 1e-9 or \
            rp.get("rope_type", "default") != "default":
        die("%s: transformers reads rope_parameters %s" % (name, rp))
    if bool(cfg.tie_word_embeddings) != fx["tied"] or abs(tcfg.rms_norm_eps - t["rms_norm_eps"]) > 1e-12:
        die("%s: transformers reads tie_word_embeddings=%s rms_norm_eps=%s" %
            (name, cfg.tie_word_embeddings, tcfg.rms_norm_eps))

    torch.manual_seed(fx["seed"])
    try:
        model = cls._from_config(cfg, attn_implementation="eager")
    except TypeError as e:
        log("%s: _from_config(attn_implementation=...) failed (%s); setting it afterwards" % (name, e))
        model = cls(cfg)
        model.set_attn_implementation("eager")
    model = model.float().eval()
    text_model = model.model.language_model if release else model.model
    if text_model.config._attn_implementation != "eager":
        die("%s: attention implementation is %s, not eager" % (name, text_model.config._attn_implementation))

    # 2. every tensor random, rounded to its stored dtype
    tdt = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16}
    sd = model.state_dict()
    stored = {}  # name -> tensor in its stored dtype

    def value(name, shape, kind):
        g = torch.Generator().manual_seed(fx["seed"] * 1000003 + zlib.crc32(name.encode()))
        u = lambda lo, hi: lo + (hi - lo) * torch.rand(shape, generator=g)
        if kind in ("in", "out", "embed", "head"):
            gain = {"in": 1.0, "out": 0.5, "embed": 2.5, "head": 2.5}[kind]
            return torch.randn(shape, generator=g) * (gain / math.sqrt(shape[-1]))
        if kind == "norm":    # zero-centred RMSNorm: scale 1 + w
            return u(-0.5, 0.5)
        if kind == "gnorm":   # gated RMSNorm: plain scale w
            return u(0.5, 1.5)
        if kind == "conv":
            return u(-0.6, 0.6)
        if kind == "A_log":   # A = exp(A_log) in [0.05, 3]: decays ~0.95 .. ~0.1 per step
            return torch.log(u(0.05, 3.0))
        if kind == "dt_bias":
            return u(-1.0, 1.0)
        raise ValueError(kind)

    assigned = set()
    for tname, shape, kind in text_specs(fx):
        dt = stored_dtype(fx, tname, shape)
        v = value(tname, shape, kind)
        if len(shape) == 2:
            # Matrices hold bf16-representable values whatever their stored
            # dtype: the GPU backend computes with bf16 weights, and this keeps
            # the GPU fixture error about bf16 arithmetic, not weight rounding.
            # Vectors keep full F32/F16 precision (the GPU keeps them in fp32).
            v = v.to(torch.bfloat16).float()
        v = v.to(tdt[dt])
        if tname not in sd:
            die("%s: transformers has no tensor '%s'" % (name, tname))
        if list(sd[tname].shape) != shape:
            die("%s: '%s' is %s in transformers, %s here" % (name, tname, list(sd[tname].shape), shape))
        sd[tname].copy_(v.float())
        stored[tname] = v.contiguous()
        assigned.add(tname)
    if release:
        for k in sorted(sd):
            if k.startswith("model.visual.") and not sd[k].is_floating_point():
                stored[k] = sd[k].clone().contiguous()
                assigned.add(k)
            elif k.startswith("model.visual."):
                g = torch.Generator().manual_seed(zlib.crc32(k.encode()))
                v = (torch.randn(sd[k].shape, generator=g) * 0.05).to(torch.bfloat16)
                sd[k].copy_(v.float())
                stored[k] = v.contiguous()
                assigned.add(k)
    if fx["mtp"]:
        for tname, shape, kind in mtp_specs(fx):
            stored[tname] = value(tname, shape, kind).to(torch.bfloat16).contiguous()
    left = set(sd) - assigned - ({"lm_head.weight"} if fx["tied"] else set())
    if left:
        die("%s: tensors not randomised: %s" % (name, sorted(left)))
    embed = sd[text_specs(fx)[0][0]]
    if fx["tied"] != torch.equal(model.lm_head.weight, embed):
        die("%s: lm_head tied=%s in transformers, expected %s" %
            (name, torch.equal(model.lm_head.weight, embed), fx["tied"]))

    # 3. the files
    sizes = {k: v.numel() * v.element_size() for k, v in stored.items()}
    plan = shard_plan(sorted(sizes.items()), fx["shards"])
    for fname in sorted(set(plan.values())):
        st_torch.save_file({k: v for k, v in stored.items() if plan[k] == fname}, os.path.join(d, fname),
                           metadata={"format": "pt"})
    if fx["shards"] > 1:
        write_index(d, plan, sizes)

    # 4. the references
    ids = torch.tensor([tokens_for(fx)], dtype=torch.long)
    with torch.no_grad():
        pos = torch.arange(T, dtype=torch.long)[None]
        prefill = model(input_ids=ids, position_ids=pos, use_cache=False).logits[0].float().clone()
        cache, rows = None, []
        for i in range(T):
            o = model(input_ids=ids[:, i:i + 1], position_ids=torch.tensor([[i]], dtype=torch.long),
                      past_key_values=cache, use_cache=True)
            cache = o.past_key_values
            rows.append(o.logits[0, -1].float().clone())
        step = torch.stack(rows)
    if list(prefill.shape) != [T, V] or list(step.shape) != [T, V]:
        die("%s: logits shapes %s / %s" % (name, list(prefill.shape), list(step.shape)))
    rel = lambda a, b: float((a - b).norm() / b.norm())
    pre_vs_step = rel(step, prefill)
    row_std = prefill.std(dim=1, unbiased=False)
    log("%s: HF prefill vs step rel L2 %.3g; logits row std min %.3f mean %.3f; argmax agree %d/%d" %
        (name, pre_vs_step, float(row_std.min()), float(row_std.mean()),
         int((prefill.argmax(1) == step.argmax(1)).sum()), T))
    if not (pre_vs_step < 1e-4) or not torch.isfinite(prefill).all() or not torch.isfinite(step).all():
        die("%s: transformers' prefill and step logits disagree (rel L2 %.3g)" % (name, pre_vs_step))

    # 5. transformers loads what we wrote to the same weights and logits
    try:
        m2, info = cls.from_pretrained(d, dtype=torch.float32, attn_implementation="eager",
                                       output_loading_info=True)
    except TypeError:
        m2, info = cls.from_pretrained(d, torch_dtype=torch.float32, attn_implementation="eager",
                                       output_loading_info=True)
    m2 = m2.float().eval()
    log("%s: from_pretrained info: %s" % (name, {k: sorted(v)[:8] for k, v in info.items() if v}))
    missing = set(info.get("missing_keys") or []) - ({"lm_head.weight"} if fx["tied"] else set())
    if missing or info.get("mismatched_keys"):
        die("%s: from_pretrained: missing %s mismatched %s" % (name, sorted(missing), info.get("mismatched_keys")))
    sd2 = m2.state_dict()
    for k, v in sd.items():
        if not torch.equal(sd2[k], v):
            die("%s: from_pretrained gives other values for '%s'" % (name, k))
    with torch.no_grad():
        again = m2(input_ids=ids, position_ids=pos, use_cache=False).logits[0].float()
    reload_diff = float((again - prefill).abs().max())
    if reload_diff > 1e-5 * float(prefill.abs().max()):
        die("%s: from_pretrained model gives other logits (max abs diff %.3g)" % (name, reload_diff))

    def f32_bytes(x):
        return struct.pack("<%df" % x.numel(), *x.reshape(-1).tolist())

    with open(os.path.join(d, "logits_prefill.f32"), "wb") as f:
        f.write(f32_bytes(prefill))
    with open(os.path.join(d, "logits_step.f32"), "wb") as f:
        f.write(f32_bytes(step))
    counts = {}
    for k, v in stored.items():
        dn = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16"}[v.dtype]
        counts[dn] = counts.get(dn, 0) + 1
    meta = {
        "name": name,
        "description": fx_description(fx),
        "layout": "Qwen3_5ForConditionalGeneration (release wrapper)" if release else "Qwen3_5ForCausalLM (flat)",
        "files": sorted(set(plan.values())),
        "tensor_dtypes": counts,
        "T": T,
        "V": V,
        "tokens": ids[0].tolist(),
        "references": {
            "logits_prefill.f32": "HF forward over all T tokens at once (chunked delta rule), [T x V] float32 LE",
            "logits_step.f32": "HF cached decode, one token at a time through past_key_values, [T x V] float32 LE",
        },
        "computed": "float32 on the CPU over exactly the stored weights, eager attention",
        "hf_prefill_vs_step_rel_l2": pre_vs_step,
        "from_pretrained_max_abs_diff": reload_diff,
        "logits_row_std_min": float(row_std.min()),
        "seed": fx["seed"],
        "transformers": tf.__version__,
        "torch": torch.__version__,
        "python": sys.version.split()[0],
    }
    write_json(os.path.join(d, "meta.json"), meta)


def fx_description(fx):
    t = fx["text"]
    return ("%s layout, %s head, %s rope fields, H=%d I=%d V=%d, layers %s, attention %d q / %d kv heads of %d "
            "(rotary %g), linear %d key / %d value heads, dk=%d dv=%d, %d shard(s)" %
            (fx["layout"], "tied" if fx["tied"] else "untied", fx["rope"], t["hidden_size"],
             t["intermediate_size"], t["vocab_size"],
             "".join("F" if x == "full_attention" else "L" for x in t["layer_types"]),
             t["num_attention_heads"], t["num_key_value_heads"], t["head_dim"], t["partial_rotary_factor"],
             t["linear_num_key_heads"], t["linear_num_value_heads"], t["linear_key_head_dim"],
             t["linear_value_head_dim"], fx["shards"]))


# ---------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True, help="directory; one fixture directory per config is written in it")
    ap.add_argument("--only", nargs="*", help="fixture names (default: all)")
    ap.add_argument("--plan", action="store_true", help="no torch: layouts with placeholder weights, and sizes")
    ap.add_argument("--tar", help="pack the fixture directories into this .tar.gz")
    ap.add_argument("--hf-src", help="copy transformers' qwen3_5 modeling/config sources into this directory")
    args = ap.parse_args()
    fixtures = [f for f in FIXTURES if not args.only or f["name"] in args.only]
    os.makedirs(args.out, exist_ok=True)

    if args.plan:
        total = sum(plan_fixture(fx, args.out) for fx in fixtures)
        print("total %.2f MB" % (total / 1e6))
        return

    # The optional fast packages replace HF's torch reference functions (the
    # chunked/recurrent delta rule, the causal conv) when importable; block
    # them so the references come from the plain torch code on the CPU.
    import importlib.util
    blocked = []
    for pkg in ("fla", "causal_conv1d"):
        if importlib.util.find_spec(pkg) is not None:
            sys.modules[pkg] = None
            blocked.append(pkg)
    import torch
    import transformers as tf
    import safetensors.torch as st_torch

    torch.set_grad_enabled(False)
    t0 = time.time()

    def log(msg):
        print("[%6.1fs] %s" % (time.time() - t0, msg), flush=True)

    log("torch %s, transformers %s, python %s, blocked %s" % (torch.__version__, tf.__version__,
                                                             sys.version.split()[0], blocked or "nothing"))
    if args.hf_src:
        import shutil
        import transformers.models.qwen3_5.modeling_qwen3_5 as mq
        import transformers.models.qwen3_5.configuration_qwen3_5 as cq
        os.makedirs(args.hf_src, exist_ok=True)
        for m in (mq, cq):
            shutil.copy(m.__file__, args.hf_src)
    failed = []
    for fx in fixtures:
        try:
            run_fixture(fx, args.out, torch, tf, st_torch, log)
            log("%s: done" % fx["name"])
        except Exception as e:  # go on with the others: one run should tell everything
            import traceback
            traceback.print_exc()
            log("%s: FAILED: %s: %s" % (fx["name"], type(e).__name__, e))
            failed.append(fx["name"])
    if args.tar:
        with tarfile.open(args.tar, "w:gz") as tar:
            for fx in fixtures:
                if fx["name"] not in failed:
                    tar.add(os.path.join(args.out, fx["name"]), arcname=fx["name"])
        log("packed %s (%.2f MB)" % (args.tar, os.path.getsize(args.tar) / 1e6))
    if failed:
        print("make_fixtures: error: failed: %s" % " ".join(failed), file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
