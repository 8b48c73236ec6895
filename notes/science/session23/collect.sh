#!/usr/bin/env bash
# Session 23: self-training from the continued base (continue.toml: session 22's base + 600
# steps with reasoning rows) with reasoning prompts (main) and without (noreason), seeds 1-3,
# K iterations (lab.sh run K) -> paired_K.txt (after K minus base, main minus noreason),
# across_seeds_K.txt, per_iteration_K.txt, gap_K.txt, filter_kept_K.txt, vote_K.txt (the
# reasoning votes' label precision). Paired scoring: session12/paired.py (unparseable = 0.5).
#   bash notes/science/session23/collect.sh K
cd /work/main
K="${1:-3}"
# BASE (default the continued base) and OUT (default this folder) for another base:
#   BASE=/tmp/lab23/base_judged OUT=notes/science/session23/judged bash .../collect.sh 3
D=${OUT:-notes/science/session23}; P=notes/science/session12/paired.py; G=notes/science/session19/gap.py
L=${L:-/tmp/lab23}; BIN=${BIN:-$L/judgeflow}; C=$L/cache_st; F=$L/lab_self_train.toml
BASE=${BASE:-$L/base_cont}; E=$L/exp_$(basename $BASE)
mkdir -p $D
sets=(--set base.path=$BASE --set filter.min_agree=0.75 --set sample_open.limit=600
  --set sample_closed.limit=600 --set sample_reasoning.limit=600 --set world.count=3000
  --set iterate.self_train.times=$K)
nr=(--set world.reasoning_examples=0 --set sample_reasoning.limit=0)
mkdir -p $E
ex() { # NODE SEED OUTDIR [SETS...]
  local node="$1" s="$2" o="$3"; shift 3
  [ -f "$o/judgements.jsonl" ] || $BIN export $F "$node[seed=$s].judgements" --cache $C \
    "${sets[@]}" "$@" --to "$o" --format jsonl > /dev/null 2>&1 || echo "export $node $s $* failed" >&2
}
for s in 1 2 3; do
  ex eval_base $s $E/eval_base_s$s; ex eval_base_blind $s $E/eval_base_blind_s$s
  for i in $(seq 1 $K); do
    ex "evaluate@$i" $s $E/evaluate_${i}_main_s$s; ex "evaluate_blind@$i" $s $E/evaluate_blind_${i}_main_s$s
    ex "evaluate@$i" $s $E/evaluate_${i}_noreason_s$s "${nr[@]}"
    ex "evaluate_blind@$i" $s $E/evaluate_blind_${i}_noreason_s$s "${nr[@]}"
  done
done
for s in 1 2 3; do
  for v in main noreason; do
    echo "== $v seed $s: after $K minus base"
    python3 $P $E/eval_base_s$s/judgements.jsonl $E/evaluate_${K}_${v}_s$s/judgements.jsonl
  done
  echo "== main minus noreason seed $s: after $K"
  python3 $P $E/evaluate_${K}_noreason_s$s/judgements.jsonl $E/evaluate_${K}_main_s$s/judgements.jsonl
  # The oracle arm (lab.sh oracle K), where it ran: gold decides every closed-ended pair.
  ex "evaluate@$K" $s $E/evaluate_${K}_oracle_s$s --set vote.method=oracle --set vote_reasoning.method=oracle
  if [ -f $E/evaluate_${K}_oracle_s$s/judgements.jsonl ]; then
    echo "== oracle seed $s: after $K minus base"
    python3 $P $E/eval_base_s$s/judgements.jsonl $E/evaluate_${K}_oracle_s$s/judgements.jsonl
    echo "== oracle minus main seed $s: after $K"
    python3 $P $E/evaluate_${K}_main_s$s/judgements.jsonl $E/evaluate_${K}_oracle_s$s/judgements.jsonl
  fi
done > $D/paired_$K.txt 2>&1
python3 notes/science/session23/across_seeds.py $D/paired_$K.txt > $D/across_seeds_$K.txt
for s in 1 2 3; do for v in main noreason; do
  echo "== seed $s $v (base, base blind, after $K, after $K blind)"
  python3 $G $E/eval_base_s$s/judgements.jsonl $E/eval_base_blind_s$s/judgements.jsonl \
    $E/evaluate_${K}_${v}_s$s/judgements.jsonl $E/evaluate_blind_${K}_${v}_s$s/judgements.jsonl
done; done > $D/gap_$K.txt 2>&1
score() { python3 -c "
import json,sys
xs=[0.5 if r['verdict'] is None else float(r['agrees']) for r in map(json.loads, open('$1/judgements.jsonl'))]
print(f' {sum(xs)/len(xs):.3f}', end='')" 2>/dev/null || echo -n " -"; }
for v in main noreason; do for s in 1 2 3; do
  echo -n "$v seed $s overall by iteration (0 = base):"; score $E/eval_base_s$s
  for i in $(seq 1 $K); do score $E/evaluate_${i}_${v}_s$s; done; echo
  echo -n "$v seed $s blind by iteration (0 = base):"; score $E/eval_base_blind_s$s
  for i in $(seq 1 $K); do score $E/evaluate_blind_${i}_${v}_s$s; done; echo
done; done > $D/per_iteration_$K.txt
for s in 1 2 3; do for i in $(seq 1 $K); do
  echo -n "main seed $s iteration $i: "
  $BIN show $F "filter@$i[seed=$s]" --cache $C "${sets[@]}" --port stats 2>&1 | grep -E "^total" | tr -s ' ' || echo
  echo -n "noreason seed $s iteration $i: "
  $BIN show $F "filter@$i[seed=$s]" --cache $C "${sets[@]}" "${nr[@]}" --port stats 2>&1 | grep -E "^total" | tr -s ' ' || echo
done; done > $D/filter_kept_$K.txt
# The reasoning votes: pairs, and how many prefer the gold final answer (label_correct).
for s in 1 2 3; do for i in $(seq 1 $K); do
  o=$E/vote_reasoning_${i}_s$s
  [ -f $o/pairs.jsonl ] || $BIN export $F "vote_reasoning@$i[seed=$s].pairs" --cache $C "${sets[@]}" \
    --to $o --format jsonl > /dev/null 2>&1
  o2=$E/vote_${i}_s$s
  [ -f $o2/pairs.jsonl ] || $BIN export $F "vote@$i[seed=$s].pairs" --cache $C "${sets[@]}" \
    --to $o2 --format jsonl > /dev/null 2>&1
  python3 -c "
import json
for name, path in (('reasoning', '$o/pairs.jsonl'), ('closed', '$o2/pairs.jsonl')):
    rows = [json.loads(l) for l in open(path)]
    ok = sum(1 for r in rows if r['label_correct'] is True)
    print(f'seed $s iteration $i {name} votes: {len(rows)} pairs, label correct {ok} ({ok / max(len(rows), 1):.3f})')"
done; done > $D/vote_$K.txt 2>&1
tar -czf $D/judgements_raw.tar.gz --exclude="*.png" -C $L $(basename $E)
