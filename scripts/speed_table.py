#!/usr/bin/env python3
"""Prints the table of a `scripts/device_speed.sh` run: burn next to transformers, same config,
batch and lengths. Reads the JSON lines that script leaves in DIR.

    python3 scripts/speed_table.py DIR
"""

import json
import os
import sys


def load(path):
    try:
        with open(path) as f:
            lines = [l for l in f.read().splitlines() if l.strip().startswith("{")]
        return json.loads(lines[-1]) if lines else None
    except (OSError, ValueError):
        return None


def peak(path):
    try:
        for line in open(path):
            if line.startswith("peak_mem_mib"):
                return float(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def fmt(x, unit=""):
    return "-" if x is None else f"{x:,.1f}{unit}"


def step_ms(ref):
    """A transformers training result's step time in ms (older outputs give seconds)."""
    if not ref:
        return None
    if ref.get("step_ms") is not None:
        return ref["step_ms"]
    return ref["step_s"] * 1e3 if "step_s" in ref else None


def decode_rows(burn, torch_by_batch, label):
    rows = []
    if not burn:
        return [f"{label}: no burn result"]
    for r in burn.get("decode", []):
        ref = torch_by_batch.get(r["batch"])
        ref_tps = ref["generate"]["new_tokens_per_s"] if ref and "generate" in ref else None
        ratio = r["new_tokens_per_s"] / ref_tps if ref_tps else None
        rows.append(
            f"{label} decode b{r['batch']:<3} {r['placement']:<6} | burn {fmt(r['new_tokens_per_s'])} new tok/s "
            f"({fmt(r['decode_ms_per_step'])} ms/step, prefill {fmt(r['prefill_tokens_per_s'])} tok/s, "
            f"first call {fmt(r['first_call_s'])} s) | torch {fmt(ref_tps)} | burn/torch "
            f"{'-' if ratio is None else f'{ratio:.3f}'}"
        )
    return rows


def main():
    d = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("OUT", "/tmp/out")
    out = []
    tiny = load(f"{d}/tiny_burn.json")
    tiny_torch = {b: load(f"{d}/tiny_torch_{b}.json") for b in (16, 64)}
    out += decode_rows(tiny, {b: t for b, t in tiny_torch.items() if t}, "tiny")
    ref_ms = step_ms((tiny_torch.get(64) or {}).get("train"))
    clip_ms = step_ms((load(f"{d}/tiny_torch_clip.json") or {}).get("train"))
    fused = load(f"{d}/tiny_fusion.json")
    for label, run in (("tiny", tiny), ("tiny fused", fused)):
        if run and run.get("train"):
            t = run["train"]
            out.append(
                f"{label} train b{t['batch']} x {t['seq']} | burn {fmt(t['step_ms'])} ms/step "
                f"| torch {fmt(ref_ms)} ms/step, clipped to norm 1 as burn is {fmt(clip_ms)} "
                f"| burn time / torch time {fmt(t['step_ms'] / ref_ms if ref_ms else None)}, "
                f"clipped {fmt(t['step_ms'] / clip_ms if clip_ms else None)}"
            )
    if fused:
        out += decode_rows(fused, {b: t for b, t in tiny_torch.items() if t}, "tiny fused")
    second = load(f"{d}/tiny_burn_second.json")
    if tiny and second:
        for a, b in zip(
            [r for r in tiny["decode"] if r["placement"] == "device"], second["decode"]
        ):
            out.append(
                f"tiny warm-up b{a['batch']} device | first process {fmt(a['first_prefill_s'] + a['first_call_s'])} s "
                f"| second process (kernel cache) {fmt(b['first_prefill_s'] + b['first_call_s'])} s"
            )
    big = load(f"{d}/11b_burn.json")
    big_torch = {b: load(f"{d}/11b_torch_{b}.json") for b in (16, 64)}
    out += decode_rows(big, {b: t for b, t in big_torch.items() if t}, "11b")
    out.append(
        f"11b peak GPU memory (GiB, nvidia-smi) | burn {fmt(peak(f'{d}/11b_burn.log'))} "
        f"| torch b16 {fmt(peak(f'{d}/11b_torch_16.log'))} b64 {fmt(peak(f'{d}/11b_torch_64.log'))}"
    )
    print("\n".join(out))


if __name__ == "__main__":
    main()
