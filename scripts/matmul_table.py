#!/usr/bin/env python3
"""Prints the table of a `scripts/device_matmul.sh` run: per matmul strategy pair (products over
32 rows : the rest) and attention kernel, the speed example's generate figures, its matmul
check and its attention check (error, and time against the materialised attention), beside
transformers' figures for the same shape from the same device run.

    python3 scripts/matmul_table.py DIR
"""

import glob
import json
import os
import sys


def json_lines(path):
    try:
        with open(path) as f:
            return [json.loads(l) for l in f if l.strip().startswith("{")]
    except (OSError, ValueError):
        return []


def fmt(x, digits=1):
    return "-" if x is None else f"{x:,.{digits}f}"


def main():
    d = sys.argv[1] if len(sys.argv) > 1 else "/tmp/matmul_raw"
    refs = {}
    for path in glob.glob(f"{d}/*_torch_*.json"):
        lines = json_lines(path)
        if lines:
            refs[int(path.rsplit("_", 1)[1].split(".")[0])] = lines[-1]
    rows = []
    for path in sorted(glob.glob(f"{d}/*.stdout")):
        tag = os.path.basename(path)[: -len(".stdout")]
        lines = json_lines(path)
        check = next((l["matmul_check"] for l in lines if "matmul_check" in l), None)
        result = next((l for l in lines if "decode" in l), None)
        attn = next((l["attention_check"] for l in lines if "attention_check" in l), None)
        worst = max((c["max_rel_err"] for c in check), default=None) if check else None
        finite = all(c["finite"] for c in check) if check else None
        head = f"{tag:<40} | check max rel err {fmt(worst, 4)}{'' if finite in (None, True) else ' NON-FINITE'}"
        if attn:
            head += (
                f" | attention {attn['kernel'] or 'materialized'}: rel err {fmt(attn['max_rel_err'], 4)}"
                f"{'' if attn['finite'] else ' NON-FINITE'}, {fmt(attn.get('kernel_s', 0) * 1e3)} ms"
                f" vs materialised {fmt(attn.get('materialized_s', 0) * 1e3)} ms"
            )
            for dec in attn.get("decoding", []):
                head += (
                    f" | decoding {dec['name']} (kv {dec['kv_len']}): rel err {fmt(dec['max_rel_err'], 4)}"
                    f"{'' if dec['finite'] else ' NON-FINITE'}"
                )
        if not result:
            rows.append(f"{head} | no timing (see {tag}.log)")
            continue
        for r in result["decode"]:
            ref = refs.get(r["batch"], {}).get("generate")
            ref_tps = ref["new_tokens_per_s"] if ref else None
            ratio = r["new_tokens_per_s"] / ref_tps if ref_tps else None
            rows.append(
                f"{head} | b{r['batch']} prefill {fmt(r['prefill_s'], 2)} s, decode "
                f"{fmt(r['decode_ms_per_step'])} ms/step, {fmt(r['new_tokens_per_s'])} new tok/s, "
                f"first call {fmt(r['first_call_s'])} s | transformers {fmt(ref_tps)} "
                f"({fmt(ref['call_s'] if ref else None, 2)} s"
                + (
                    f"; one-token call {fmt(ref['one_new_token_call_s'], 2)} s, decode "
                    f"{fmt(ref['decode_ms_per_step'])} ms/step"
                    if ref and "one_new_token_call_s" in ref
                    else ""
                )
                + f") | burn/transformers {fmt(ratio, 3)}"
            )
        train = result.get("train")
        if train:
            ref = (refs.get(64) or {}).get("train") or {}
            ref_ms = ref.get("step_ms") or (ref["step_s"] * 1e3 if "step_s" in ref else None)
            rows.append(
                f"{head} | train b{train['batch']} x {train['seq']}: {fmt(train['step_ms'])} ms/step "
                f"| transformers {fmt(ref_ms)} ms/step | burn time / transformers {fmt(train['step_ms'] / ref_ms if ref_ms else None, 2)}"
            )
    # `MATMUL_BENCH=1`: each configuration's products, side by side.
    benches = {}
    for path in sorted(glob.glob(f"{d}/*.stdout")):
        tag = os.path.basename(path)[: -len(".stdout")]
        bench = next((l["matmul_bench"] for l in json_lines(path) if "matmul_bench" in l), None)
        if bench:
            benches[tag] = bench
    if benches:
        rows.append("")
        rows.append("products (ms, TFLOP/s) | " + " | ".join(benches))
        names = [b["name"] for b in next(iter(benches.values()))]
        for i, name in enumerate(names):
            cells = []
            for bench in benches.values():
                b = bench[i] if i < len(bench) else None
                cells.append(f"{b['ms']:.3f} ms, {b['tflops']:.1f}" if b else "-")
            rows.append(f"{name} | " + " | ".join(cells))
    print("\n".join(rows) if rows else f"no results in {d}")


if __name__ == "__main__":
    main()
