#!/usr/bin/env bash
# Session 25: what `lab.sh run K [keep]` produced -> paired_K_<keep>.txt (after K minus base,
# per seed; session12/paired.py: the same 900 items a seed, unparseable = 0.5),
# across_seeds_K_<keep>.txt, gap_K_<keep>.txt (with the image minus blind), per_iteration_K_<keep>.txt.
#   bash notes/science/session25/collect.sh K [agree|all]
# (session 26: L, BIN, BASE and WORLD as lab.sh's; D the folder the tables go to; session 27:
# EXTRA, more --set options, as lab.sh's)
cd /work/main
K="${1:-3}"; keep="${2:-agree}"
D=${D:-notes/science/session25}; P=notes/science/session12/paired.py; G=notes/science/session19/gap.py
L=${L:-/tmp/lab25}; BIN=${BIN:-$L/judgeflow}; C=$L/cache_st; F=$L/lab_self_train.toml
BASE=${BASE:-$PWD/pipelines/bases/judge_lab_b6s3}; E=$L/exp
sets=(--set base.path=$BASE --set filter.min_agree=0.75 --set sample_open.limit=600
    --set sample_closed.limit=600 --set world.count=${WORLD:-3000} --set world.reasoning_examples=0
    --set sample_reasoning.limit=0 --set iterate.self_train.times=$K --set filter.keep=$keep ${EXTRA:-})
mkdir -p $E
ex() { # NODE SEED OUTDIR
  [ -f "$3/judgements.jsonl" ] || $BIN export $F "$1[seed=$2].judgements" --cache $C \
    "${sets[@]}" --to "$3" --format jsonl > /dev/null 2>&1 || echo "export $1 $2 failed" >&2
}
for s in 1 2 3; do
  ex eval_base $s $E/eval_base_s$s; ex eval_base_blind $s $E/eval_base_blind_s$s
  for i in $(seq 1 $K); do
    ex "evaluate@$i" $s $E/evaluate_${i}_${keep}_s$s; ex "evaluate_blind@$i" $s $E/evaluate_blind_${i}_${keep}_s$s
  done
done
for s in 1 2 3; do
  echo "== $keep seed $s: after $K minus base"
  python3 $P $E/eval_base_s$s/judgements.jsonl $E/evaluate_${K}_${keep}_s$s/judgements.jsonl
done > $D/paired_${K}_$keep.txt 2>&1
python3 notes/science/session23/across_seeds.py $D/paired_${K}_$keep.txt > $D/across_seeds_${K}_$keep.txt
for s in 1 2 3; do
  echo "== seed $s $keep (base, base blind, after $K, after $K blind)"
  python3 $G $E/eval_base_s$s/judgements.jsonl $E/eval_base_blind_s$s/judgements.jsonl \
    $E/evaluate_${K}_${keep}_s$s/judgements.jsonl $E/evaluate_blind_${K}_${keep}_s$s/judgements.jsonl
done > $D/gap_${K}_$keep.txt 2>&1
score() { python3 -c "
import json
xs=[0.5 if r['verdict'] is None else float(r['agrees']) for r in map(json.loads, open('$1/judgements.jsonl'))]
print(f' {sum(xs)/len(xs):.3f}', end='')" 2>/dev/null || echo -n " -"; }
for s in 1 2 3; do
  echo -n "seed $s $keep by iteration (0 = base):"; score $E/eval_base_s$s
  for i in $(seq 1 $K); do score $E/evaluate_${i}_${keep}_s$s; done; echo
done > $D/per_iteration_${K}_$keep.txt
