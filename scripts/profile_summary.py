#!/usr/bin/env python3
"""Summarises cubecl's profiling and compilation logs (scripts/device_profile.sh).

For each `<name>_profile.log` (lines `| 12.3µs     | kernel name`): launches, total time and the
top kernels by total time; for each `<name>_compile.log`: how many kernels were compiled.

    python3 scripts/profile_summary.py DIR
"""

import collections
import pathlib
import re
import sys

UNITS = {"ns": 1e-9, "µs": 1e-6, "us": 1e-6, "ms": 1e-3, "s": 1.0}
LINE = re.compile(r"^\|\s*([0-9.]+)\s*(ns|µs|us|ms|s)\s*\|\s*(.+?)\s*$")


def profile(path):
    total = collections.Counter()
    count = collections.Counter()
    for line in path.read_text(errors="replace").splitlines():
        m = LINE.match(line)
        if not m:
            continue
        seconds = float(m.group(1)) * UNITS[m.group(2)]
        # Kernel names carry their shapes and settings; the first word family is the kernel.
        name = m.group(3)[:120]
        total[name] += seconds
        count[name] += 1
    return total, count


def main():
    root = pathlib.Path(sys.argv[1])
    for log in sorted(root.glob("*_profile.log")):
        total, count = profile(log)
        launches = sum(count.values())
        seconds = sum(total.values())
        print(f"== {log.name}: {launches} launches, {seconds * 1e3:.1f} ms of kernel time, "
              f"{len(total)} distinct kernels")
        for name, t in total.most_common(25):
            print(f"  {t * 1e3:9.2f} ms  {count[name]:6d} x  {t / count[name] * 1e6:8.1f} us  {name}")
    for log in sorted(root.glob("*_compile.log")):
        text = log.read_text(errors="replace")
        compiled = len(re.findall(r"(?im)^\s*(\[?compil|kernel)", text))
        print(f"== {log.name}: {len(text.splitlines())} lines, ~{compiled} compilation records")
        print("  first lines:", *text.splitlines()[:3], sep="\n    ")


if __name__ == "__main__":
    main()
