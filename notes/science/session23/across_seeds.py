"""Across-seed summary of session12/paired.py blocks.

    python3 across_seeds.py paired.txt

Reads blocks headed `== LABEL seed S...` (LABEL: anything before ` seed `) and, for every
LABEL and dimension, prints the mean over seeds of the paired difference B - A with a 95%
t interval over the seeds (n - 1 degrees of freedom) and the per-seed values."""
import math
import re
import sys
from collections import defaultdict

T975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571}
by = defaultdict(list)
label = None
for line in open(sys.argv[1]):
    m = re.match(r"== (.*?) ?seed (\d+)(.*)", line)
    if m:
        label = (m.group(1) + m.group(3)).strip(" :,")
        continue
    parts = line.split()
    if label and len(parts) >= 5 and parts[0] in ("general", "hallucination", "reasoning", "overall"):
        by[(label, parts[0])].append(float(parts[4]))
for (lab, dim), xs in sorted(by.items()):
    n = len(xs)
    mean = sum(xs) / n
    if n > 1:
        sd = math.sqrt(sum((x - mean) ** 2 for x in xs) / (n - 1))
        half = T975[n - 1] * sd / math.sqrt(n)
        ci = f"[{mean - half:+.3f}, {mean + half:+.3f}]"
    else:
        ci = "(one seed)"
    seeds = ", ".join(f"{x:+.3f}" for x in xs)
    print(f"{lab:45s} {dim:14s} {mean:+.3f} {ci} (per seed {seeds})")
