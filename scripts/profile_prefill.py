#!/usr/bin/env python3
"""Where the last generate call's prefill goes, per kernel, from one cubecl profiling log of
scripts/device_decode_profile.sh (the `speed` run with N new tokens).

The log ends with the last call's decode steps; dropping DECODE_LAUNCHES launches from the end
(N x the launches per step that scripts/profile_decode.py prints) leaves the prefill's end. The
prefill's start: MARGIN launches before the COUNT-th last launch of MARKER, a kernel that runs a
known number of times a prefill (the vision encoder's attention: 40 layers x images). Times are
cubecl's "basic" profiler's, which waits for each kernel: an upper bound for small kernels.

    python3 scripts/profile_prefill.py LOG DECODE_LAUNCHES MARKER COUNT [MARGIN]
    e.g. python3 scripts/profile_prefill.py n8_profile.log $((8 * 3318)) SoftmaxRowsKernel 640
"""

import collections
import sys

from profile_decode import launches


def main():
    if len(sys.argv) not in (5, 6):
        raise SystemExit(__doc__)
    log, decode, marker, count = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
    margin = int(sys.argv[5]) if len(sys.argv) == 6 else 400
    found = launches(log)
    marks = [i for i, (name, _) in enumerate(found) if marker in name]
    if len(marks) < count:
        raise SystemExit(f"profile_prefill: {len(marks)} launches of {marker}, fewer than {count}")
    segment = found[max(0, marks[-count] - margin) : len(found) - decode]
    total, calls = collections.Counter(), collections.Counter()
    for name, s in segment:
        total[name] += s
        calls[name] += 1
    whole = sum(total.values())
    print(f"prefill: {len(segment)} launches, {whole:.3f} s of profiled kernel time")
    for name, s in total.most_common(15):
        print(f"  {s:8.3f} s {100 * s / whole:5.1f}%  {calls[name]:6d} x {s / calls[name] * 1e6:8.1f} us  {name[:90]}")


if __name__ == "__main__":
    main()
