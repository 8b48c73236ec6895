#!/usr/bin/env python3
"""Fused against unfused: two `speed` outputs of the same arguments, one from a build with
burn's fusion (`--features judgeflow/fusion`), one without (scripts/device_speed.sh, `fusion`).

Both builds seed the same weights and batches, so the training losses step by step and the
device placement's greedy tokens should agree: the issue's bar is 1e-3 relative on the losses
and identical greedy generations. Prints both figures and PASS or FAIL; exit status 1 on FAIL
or when either file lacks what is compared.

    python3 scripts/fusion_check.py UNFUSED.json FUSED.json
    python3 scripts/fusion_check.py --losses-only A.json B.json   (training runs only: the
        greedy tokens are not compared; scripts/device_optimizer.sh)
"""

import sys

# The last JSON line of a `speed` output, as the speed table reads it (this directory is on the
# path when a script here runs).
from speed_table import load as last_json

TOLERANCE = 1e-3


def load(path):
    result = last_json(path)
    if result is None:
        raise SystemExit(f"fusion_check: no JSON result in {path}")
    return result


def main():
    args = sys.argv[1:]
    losses_only = args[:1] == ["--losses-only"]
    args = args[1:] if losses_only else args
    if len(args) != 2:
        raise SystemExit(__doc__)
    a, b = load(args[0]), load(args[1])
    ok = True
    la = (a.get("train") or {}).get("losses") or []
    lb = (b.get("train") or {}).get("losses") or []
    if not la or len(la) != len(lb):
        print(f"losses: cannot compare ({len(la)} against {len(lb)} steps)")
        ok = False
    else:
        rel = [abs(x - y) / max(abs(x), 1e-12) for x, y in zip(la, lb)]
        worst = max(range(len(rel)), key=rel.__getitem__)
        passed = rel[worst] <= TOLERANCE
        ok &= passed
        print(
            f"losses: {len(la)} steps, largest relative difference {rel[worst]:.2e} at step "
            f"{worst + 1} ({la[worst]:.6f} against {lb[worst]:.6f}), first step {rel[0]:.2e}, "
            f"tolerance {TOLERANCE:g}: {'PASS' if passed else 'FAIL'}"
        )
    if losses_only:
        sys.exit(0 if ok else 1)
    ga = (a.get("greedy_host_vs_device") or {}).get("device_tokens")
    gb = (b.get("greedy_host_vs_device") or {}).get("device_tokens")
    if not ga or not gb or len(ga) != len(gb):
        print("greedy tokens: cannot compare (missing in one output)")
        ok = False
    else:
        same = sum(x == y for x, y in zip(ga, gb))
        first = sum(x[:1] == y[:1] for x, y in zip(ga, gb))
        prefix = [next((i for i, (p, q) in enumerate(zip(x, y)) if p != q), len(x)) for x, y in zip(ga, gb)]
        passed = same == len(ga)
        ok &= passed
        print(
            f"greedy tokens: {same} of {len(ga)} rows identical, first token {first} of {len(ga)}, "
            f"shortest common prefix {min(prefix)} of {len(ga[0])} tokens: {'PASS' if passed else 'FAIL'}"
        )
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
