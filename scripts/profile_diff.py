#!/usr/bin/env python3
"""Where one decode step's time goes: the difference of two cubecl profiling logs of the same
`speed` run that differ only in `--new-tokens` (scripts/device_decode_profile.sh).

Both runs pay the same initialisation and prefill, so the per-kernel difference in launches and
time, divided by the extra steps, is what the extra decode steps cost. Prints launches and
kernel time per step, and the kernels that take most of it. cubecl's "basic" profiler waits for
each kernel, so the times are the kernels' own, and the sum is below the step's wall time by
what the host spends between launches.

    python3 scripts/profile_diff.py SHORT.log LONG.log EXTRA_STEPS
"""

import collections
import re
import sys

UNITS = {"ns": 1e-9, "µs": 1e-6, "us": 1e-6, "ms": 1e-3, "s": 1.0}
LINE = re.compile(r"^\|\s*([0-9.]+)\s*(ns|µs|us|ms|s)\s*\|\s*(.+?)\s*$")


def profile(path):
    total, count = collections.Counter(), collections.Counter()
    for line in open(path, errors="replace"):
        m = LINE.match(line)
        if m:
            name = m.group(3)[:140]
            total[name] += float(m.group(1)) * UNITS[m.group(2)]
            count[name] += 1
    return total, count


def main():
    if len(sys.argv) != 4:
        raise SystemExit(__doc__)
    (ta, ca), (tb, cb) = profile(sys.argv[1]), profile(sys.argv[2])
    steps = float(sys.argv[3])
    names = set(tb) | set(ta)
    dt = {n: (tb[n] - ta[n]) / steps for n in names}
    dc = {n: (cb[n] - ca[n]) / steps for n in names}
    step_s = sum(dt.values())
    print(f"per extra decode step: {sum(dc.values()):.0f} launches, {step_s * 1e3:.2f} ms of kernel time "
          f"({steps:g} extra steps; short run {sum(ca.values())} launches, long run {sum(cb.values())})")
    for n in sorted(names, key=lambda n: -dt[n])[:30]:
        if dc[n] <= 0 and dt[n] <= 0:
            continue
        per = dt[n] / dc[n] * 1e6 if dc[n] > 0 else float("nan")
        print(f"  {dt[n] * 1e3:8.3f} ms {100 * dt[n] / step_s if step_s else 0:5.1f}%  {dc[n]:7.1f} x {per:8.1f} us  {n}")


if __name__ == "__main__":
    main()
