#!/usr/bin/env python3
"""Summarises a collapsed-stack sampling profile (`thread;outer;...;inner COUNT` lines, as the
`speed` example writes under JUDGEFLOW_PPROF): per thread, its share of the samples, then the
functions with the most samples on top of the stack (self) and anywhere in it (inclusive).

Names are shortened: generic arguments and hashes dropped, so that monomorphised copies of one
function add up. `--frame NAME` also prints, for stacks through a function whose shortened name
contains NAME, what it calls directly (inclusive), the drill-down a flame graph gives by eye.

    python3 scripts/profile_collapsed.py PROFILE.txt [--top 40] [--frame NAME ...]
"""
import argparse
import collections
import re


def short(name: str) -> str:
    # Drop generic arguments (nested <...>), then the `::h0123abcd` hash suffix.
    out, depth = [], 0
    for ch in name:
        if ch == "<":
            depth += 1
        elif ch == ">":
            depth = max(0, depth - 1)
        elif depth == 0:
            out.append(ch)
    s = "".join(out)
    s = re.sub(r"::h[0-9a-f]{16}$", "", s)
    s = s.replace("{{closure}}", "{closure}")
    return s


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("profile")
    ap.add_argument("--top", type=int, default=40)
    ap.add_argument("--frame", action="append", default=[])
    a = ap.parse_args()
    per_thread = collections.Counter()
    self_t = collections.defaultdict(collections.Counter)
    incl_t = collections.defaultdict(collections.Counter)
    children = {f: collections.defaultdict(collections.Counter) for f in a.frame}
    total = 0
    with open(a.profile) as f:
        for line in f:
            stack, _, count = line.rstrip("\n").rpartition(" ")
            n = int(count)
            parts = stack.split(";")
            thread, frames = parts[0], [short(p) for p in parts[1:]]
            thread = re.sub(r"[0-9]+$", "N", thread)
            total += n
            per_thread[thread] += n
            if frames:
                self_t[thread][frames[-1]] += n
            for fr in set(frames):
                incl_t[thread][fr] += n
            for want in a.frame:
                seen = set()
                for i, fr in enumerate(frames):
                    if want in fr and i + 1 < len(frames):
                        callee = frames[i + 1]
                        if callee not in seen:
                            children[want][thread][callee] += n
                            seen.add(callee)
                        break
                else:
                    if any(want in fr for fr in frames[-1:]):
                        children[want][thread]["(self)"] += n
    print(f"{total} samples")
    for thread, n in per_thread.most_common():
        if n < total * 0.01:
            continue
        print(f"\n=== thread {thread}: {n} samples ({100 * n / total:.1f}%)")
        print("  -- self (top of stack)")
        for fr, c in self_t[thread].most_common(a.top):
            print(f"  {100 * c / n:5.1f}%  {fr}")
        print("  -- inclusive")
        for fr, c in incl_t[thread].most_common(a.top * 2):
            print(f"  {100 * c / n:5.1f}%  {fr}")
        for want in a.frame:
            ch = children[want][thread]
            if not ch:
                continue
            print(f"  -- callees of *{want}* (first match in each stack)")
            for fr, c in ch.most_common(a.top):
                print(f"  {100 * c / n:5.1f}%  {fr}")


if __name__ == "__main__":
    main()
