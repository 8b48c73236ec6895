#!/usr/bin/env bash
# Session 31: what `cpu_lab.sh S K` produced, per seed -> $D/paired_K.txt (after K minus base;
# session12/paired.py: the same 900 items, unparseable = 0.5), $D/gap_K.txt (with the image
# minus blind, session19/gap.py), $D/iterations.txt (each iteration's overall and by dimension).
#   bash notes/science/session31/cpu_collect.sh K "SEEDS" D   (HS, BIN, C as cpu_lab.sh's;
#   ARM names the arm's export folder, EXTRA its --set options: ARM=control_rr
#   EXTRA="--set pretrain.judge_verdicts=random_reasoning")
set -uo pipefail
cd /work/main
K="${1:-3}"; SEEDS="${2:-1 2 3}"; D="${3:-notes/science/session31/cpu_hs0}"
. notes/science/session31/lab_sets.sh
P=notes/science/session12/paired.py; G=notes/science/session19/gap.py; E=$C/../exp_${ARM:-main}
mkdir -p "$D" "$E"
for s in $SEEDS; do
    lab_sets "$s" "$K"
    # shellcheck disable=SC2206
    sets+=(${EXTRA:-})
    ex() { # NODE OUTDIR
        [ -f "$2/judgements.jsonl" ] || $BIN --cache "$C" export pipelines/self_train.toml \
            "$1.judgements" "${sets[@]}" --to "$2" --format jsonl > /dev/null 2>&1 \
            || echo "export $1 seed $s failed" >&2
    }
    ex eval_base "$E/base_s$s"; ex eval_base_blind "$E/base_blind_s$s"
    for i in $(seq 1 "$K"); do
        ex "evaluate@$i" "$E/it${i}_s$s"; ex "evaluate_blind@$i" "$E/it${i}_blind_s$s"
    done
done
for s in $SEEDS; do
    echo "== seed $s: after $K minus base"; python3 $P "$E/base_s$s/judgements.jsonl" "$E/it${K}_s$s/judgements.jsonl"
done > "$D/paired_$K.txt" 2>&1
for s in $SEEDS; do
    echo "== seed $s: with the image minus blind, base and after $K"
    python3 $G "$E/base_s$s/judgements.jsonl" "$E/base_blind_s$s/judgements.jsonl" \
        "$E/it${K}_s$s/judgements.jsonl" "$E/it${K}_blind_s$s/judgements.jsonl"
done > "$D/gap_$K.txt" 2>&1
python3 - "$E" "$K" "$SEEDS" > "$D/iterations.txt" <<'PY'
import json, sys
from collections import defaultdict
e, k, seeds = sys.argv[1], int(sys.argv[2]), sys.argv[3].split()
def acc(path):
    by = defaultdict(list)
    for line in open(path):
        r = json.loads(line)
        v = 0.5 if r["verdict"] is None else float(r["agrees"])
        by[r["kind"]].append(v); by["overall"].append(v)
    return {d: sum(x) / len(x) for d, x in by.items()}
print("seed  node  overall  general  hallucination  reasoning  (unparseable = 0.5)")
for s in seeds:
    for name in ["base", "base_blind"] + [f"it{i}" for i in range(1, k + 1)] + [f"it{k}_blind"]:
        try:
            a = acc(f"{e}/{name}_s{s}/judgements.jsonl")
        except FileNotFoundError:
            continue
        print(f"{s}  {name:<10} {a['overall']:.3f}  {a.get('general', 0):.3f}  "
              f"{a.get('hallucination', 0):.3f}  {a.get('reasoning', 0):.3f}")
PY
cat "$D/iterations.txt"
