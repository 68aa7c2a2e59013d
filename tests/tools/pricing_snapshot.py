#!/usr/bin/env python3
"""Regenerates manifests/pricing.json, ringlet's embedded price snapshot.

The snapshot is a subset of LiteLLM's model_prices_and_context_window.json,
with LiteLLM's own key and field names, so src/usage/pricing.rs reads it, a
synced registry/litellm-pricing.json and config.toml overrides alike. It keeps:

  - every model the shipped manifests name (manifests/*/*.toml, [models]),
    matched the way src/usage/pricing.rs matches names;
  - every direct Anthropic `claude-*` key;
  - the direct OpenAI GPT-5.x/GPT-6.x, codex and o-series chat keys;
  - Z.ai GLM, MiniMax, xAI grok, DeepSeek and Moonshot Kimi chat keys, under
    the provider-prefixed keys LiteLLM uses for them;

and of each entry only the fields the Rust code reads (FIELDS below), one
entry per line.

LiteLLM drops models some time after their deprecation date, but our usage
history still holds them (claude-sonnet-4-20250514 left LiteLLM in 1.103.7).
Older LiteLLM files given with --legacy fill those gaps: a key missing from the
newest file is taken from the first legacy file that has it, when it is a
Claude 4 (or later) key or a manifest model's match. Prices are never made up:
a manifest model that no file prices is reported and left out.

Each input is a LiteLLM JSON file or a litellm wheel (the JSON is read from
litellm/model_prices_and_context_window_backup.json inside it, and the version
from the wheel's name). PyPI ships both:

    pip download litellm --no-deps -d /tmp/litellm
    make pricing LITELLM=/tmp/litellm/litellm-<newest>-*.whl \\
        LITELLM_LEGACY=/tmp/litellm/litellm-1.103.6-*.whl
"""

import argparse
import glob
import json
import os
import re
import sys
import tomllib
import zipfile

# The fields src/usage/pricing.rs reads (`ModelPrice`), in output order.
META_FIELDS = ["litellm_provider", "mode", "max_input_tokens"]
PRICE_BASES = [
    "input_cost_per_token",
    "output_cost_per_token",
    "cache_creation_input_token_cost",
    "cache_creation_input_token_cost_above_1hr",
    "cache_read_input_token_cost",
]
# Long-context tiers the code knows (keep in step with `TIERS` in pricing.rs).
TIER_THRESHOLDS_K = [100, 200, 272, 512]
FIELDS = (
    META_FIELDS
    + PRICE_BASES
    + [f"{b}_above_{k}k_tokens" for k in TIER_THRESHOLDS_K for b in PRICE_BASES]
    + ["provider_specific_entry"]
)

# The models ringlet's usage cross-check against ccusage prices: the snapshot
# must hold these exact keys.
REQUIRED_KEYS = [
    "claude-sonnet-4-5-20250929",
    "claude-opus-4-5-20251101",
    "claude-haiku-4-5-20251001",
    "claude-sonnet-4-20250514",
    "claude-opus-4-1-20250805",
]

# Name matching, mirroring `candidates` in src/usage/pricing.rs.
PROVIDER_PREFIXES = ["anthropic/", "openai/", "zai/", "minimax/", "xai/", "deepseek/", "moonshot/"]
DATE_SUFFIX = re.compile(r"(?:[-@]20\d{6}|-20\d{2}-\d{2}-\d{2})$")

CHAT_MODES = ("chat", "responses")
OPENAI_MODEL = re.compile(r"^(gpt-[56]|o[1-9]|codex)")
OPENAI_SKIP = ("search", "deep-research", "audio", "realtime", "image", "transcribe", "tts")
CLAUDE_4_OR_LATER = re.compile(r"^claude-((opus|sonnet|haiku|[a-z]+)-[4-9]|[4-9]-)")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("litellm", help="newest LiteLLM JSON or litellm wheel")
    ap.add_argument("--legacy", action="append", default=[], help="older LiteLLM JSON or wheel (repeatable)")
    ap.add_argument("--manifests", default=None, help="manifests directory (default: the repo's)")
    ap.add_argument("-o", "--output", default=None, help="output file (default: manifests/pricing.json)")
    args = ap.parse_args()

    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    manifests = args.manifests or os.path.join(root, "manifests")
    output = args.output or os.path.join(root, "manifests", "pricing.json")

    newest, newest_label = load(args.litellm)
    legacy = [load(p) for p in args.legacy]

    out = {k: v for k, v in newest.items() if selected(k, v)}
    # Keys only older files have, newest legacy file first.
    pool, origin = {}, {}
    for table, label in legacy:
        for k, v in table.items():
            if k not in newest and k not in pool and selected(k, v):
                pool[k], origin[k] = v, label
    from_legacy = {}
    for k, v in pool.items():
        if CLAUDE_4_OR_LATER.match(k) and v.get("litellm_provider") == "anthropic":
            from_legacy[k] = v

    missing = []
    for model in manifest_models(manifests):
        key = resolve(model, {**out, **from_legacy})
        if key is None:
            key = resolve(model, newest)
            if key is not None:
                out[key] = newest[key]
        if key is None:
            key = resolve(model, pool)
            if key is not None:
                from_legacy[key] = pool[key]
        if key is None:
            missing.append(model)
        else:
            print(f"manifest model {model} -> {key}", file=sys.stderr)

    out.update(from_legacy)
    absent = [k for k in REQUIRED_KEYS if k not in out]
    if absent:
        sys.exit(f"pricing_snapshot: no LiteLLM price for {', '.join(absent)}; pass an older file with --legacy")

    labels = newest_label + "".join(
        f"; {', '.join(sorted(k for k in from_legacy if origin[k] == label))} from {label}"
        for _, label in legacy
        if any(origin[k] == label for k in from_legacy)
    )
    write(output, out, labels)
    size = os.path.getsize(output)
    print(f"wrote {output}: {len(out)} models, {size} bytes ({len(from_legacy)} from legacy files)", file=sys.stderr)
    for model in missing:
        print(f"warning: no LiteLLM price for manifest model {model}; left out", file=sys.stderr)


def load(path):
    """A LiteLLM price table and a label naming where it came from."""
    if path.endswith(".whl"):
        with zipfile.ZipFile(path) as whl:
            text = whl.read("litellm/model_prices_and_context_window_backup.json")
        m = re.match(r"litellm-([^-]+)-", os.path.basename(path))
        label = f"litellm {m.group(1)}" if m else os.path.basename(path)
    else:
        with open(path, "rb") as f:
            text = f.read()
        label = os.path.basename(path)
    table = json.loads(text)
    return {k: v for k, v in table.items() if isinstance(v, dict) and k != "sample_spec"}, label


def selected(key, entry):
    """Whether `key` is one of the model families the snapshot keeps."""
    provider, mode = entry.get("litellm_provider"), entry.get("mode")
    if mode not in CHAT_MODES:
        return False
    direct = "/" not in key
    if provider == "anthropic":
        return direct and key.startswith("claude-")
    if provider == "openai":
        return direct and bool(OPENAI_MODEL.match(key)) and not any(s in key for s in OPENAI_SKIP)
    if provider in ("zai", "minimax", "deepseek"):
        return True
    if provider == "xai":
        return "grok" in key
    if provider == "moonshot":
        return "kimi" in key
    return False


def manifest_models(manifests):
    names = []
    for path in sorted(glob.glob(os.path.join(manifests, "*", "*.toml"))):
        with open(path, "rb") as f:
            models = tomllib.load(f).get("models", {})
        for name in [models.get("default")] + models.get("supported", []) + models.get("available", []):
            if name and name not in names:
                names.append(name)
    return names


def resolve(model, table):
    """The key `model` matches in `table`, or None (never a fuzzy match)."""
    lower = {}
    for k in sorted(table):
        # A key that is already lower case wins a case-insensitive tie.
        if k.lower() not in lower or k == k.lower():
            lower[k.lower()] = k
    for c in candidates(model):
        if c in table:
            return c
        if c.lower() in lower:
            return lower[c.lower()]
    return None


def candidates(model):
    out = []

    def add(c):
        if c and c not in out:
            out.append(c)

    tails, t = [model], model
    while "/" in t:
        t = t.split("/", 1)[1]
        if t:
            tails.append(t)
    for t in tails:
        add(t)
        add(DATE_SUFFIX.sub("", t))
    bare = [tails[-1], DATE_SUFFIX.sub("", tails[-1])]
    for b in bare:
        for p in PROVIDER_PREFIXES:
            add(p + b)
    for b in bare:
        for v in variants(b):
            add(v)
            for p in PROVIDER_PREFIXES:
                add(p + v)
    return out


def variants(name):
    n = name.lower()
    out = [n]
    out.append(re.sub(r"(?<=\d)\.(?=\d)", "p", n))
    out.append(re.sub(r"(?<=\d)p(?=\d)", ".", n))
    if re.match(r"k\d", n):
        out.append("kimi-" + n)
    if n.startswith("kimi-k"):
        out.append(n[len("kimi-"):])
    if n.startswith("claude-"):
        out.append(n.replace(".", "-"))
    return out


def write(path, table, label):
    spec = {
        "snapshot": f"Subset of LiteLLM's model_prices_and_context_window.json ({label}), "
        "written by tests/tools/pricing_snapshot.py (make pricing). USD per token.",
    }
    lines = [f'"sample_spec": {json.dumps(spec, separators=(",", ":"))}']
    for key in sorted(table):
        entry = {f: table[key][f] for f in FIELDS if f in table[key]}
        lines.append(f"{json.dumps(key)}: {json.dumps(entry, separators=(',', ':'))}")
    with open(path, "w") as f:
        f.write("{\n" + ",\n".join(lines) + "\n}\n")


if __name__ == "__main__":
    main()
