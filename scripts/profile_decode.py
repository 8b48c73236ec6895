#!/usr/bin/env python3
"""Where one decode step's time goes: two cubecl profiling logs of the same `speed` run that
differ only in `--new-tokens` (scripts/device_decode_profile.sh).

- Launches per step: the per-kernel difference in launch counts between the two logs, divided
  by the extra steps. Counts do not depend on timing, so this is exact.
- Time per step: the last `STEPS` steps of the longer log (its timed call ends with decode
  steps), i.e. its last STEPS x launches-per-step entries, summed per kernel. Differencing the
  two logs' times instead does not work: the first run compiles the kernels the second finds in
  the cache, and cubecl's profiler counts that in the first launches.

cubecl's "basic" profiler waits for each kernel, so a small kernel shows ~13-15 us that is
mostly the wait; the sum is an upper bound of the kernels' own time.

    python3 scripts/profile_decode.py SHORT.log LONG.log EXTRA_STEPS [STEPS]
"""

import collections
import sys

# cubecl's profiler lines, as scripts/profile_summary.py reads them (this directory is on the path
# when a script here runs).
from profile_summary import LINE, UNITS


def launches(path):
    """The profiled launches in order: (kernel name, seconds)."""
    out = []
    for line in open(path, errors="replace"):
        m = LINE.match(line)
        if m:
            out.append((m.group(3)[:140], float(m.group(1)) * UNITS[m.group(2)]))
    return out


def main():
    if len(sys.argv) not in (4, 5):
        raise SystemExit(__doc__)
    short, long = launches(sys.argv[1]), launches(sys.argv[2])
    extra = float(sys.argv[3])
    steps = int(sys.argv[4]) if len(sys.argv) == 5 else 16
    per_step = (len(long) - len(short)) / extra
    if per_step <= 0:
        raise SystemExit("profile_decode: the longer run has no more launches than the shorter")
    tail = long[-int(round(per_step * steps)):]
    total, count = collections.Counter(), collections.Counter()
    for name, s in tail:
        total[name] += s
        count[name] += 1
    step_s = sum(total.values()) / steps
    print(f"one decode step: {per_step:.0f} launches, {step_s * 1e3:.2f} ms of profiled kernel time "
          f"(the last {steps} steps of the longer run; {len(short)} and {len(long)} launches in all)")
    for name, t in total.most_common(25):
        print(f"  {t / steps * 1e3:8.3f} ms {100 * t / steps / step_s:5.1f}%  {count[name] / steps:6.1f} x "
              f"{t / count[name] * 1e6:7.1f} us  {name}")


if __name__ == "__main__":
    main()
