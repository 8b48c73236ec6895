#!/usr/bin/env bash
# Session 22: self-training from today's B6s3-recipe base (.bin/b6s3, exported from
# judge_lab.toml's `pretrain` with session13/B6s3.sets.txt, trained here at 2 rayon threads)
# with session 19's settings, seeds 1-3, filter against no filter (the file's sweep):
# -> paired.txt (after K minus base, per seed), gap.txt (with the image minus blind, growth),
#    per_iteration.txt, filter_kept.txt. Paired scoring: session12/paired.py (unparseable = 0.5).
#   bash notes/science/session22/collect.sh K        (K: the last iteration run, 3 or 5)
cd /work/main
if [ "${1:-}" = oneorder ]; then
  BIN=/tmp/lab22/judgeflow; C=/tmp/lab22/cache_st; E=/tmp/lab22/exp; P=notes/science/session12/paired.py
  F1=/tmp/lab22/lab_oneorder.toml
  sed -e '/^"filter.keep"/d' pipelines/judge_lab_self_train.toml > $F1
  sets=(--set base.path=/work/main/.bin/b6s3 --set filter.min_agree=0.75 --set sample_open.limit=600
    --set sample_closed.limit=600 --set world.count=3000 --set iterate.self_train.times=5
    --set judge.orders=random)
  for s in 1 2 3; do
    for node in evaluate@5 evaluate_blind@5; do
      o=$E/oneorder_${node/@/_}_s$s
      [ -f $o/judgements.jsonl ] || $BIN export $F1 "$node[seed=$s].judgements" --cache $C "${sets[@]}" \
        --to $o --format jsonl > /dev/null 2>&1 || echo "export $node $s failed" >&2
    done
  done
  for s in 1 2 3; do
    echo "== seed $s, one order: after 5 minus base"
    python3 $P $E/eval_base_s$s/judgements.jsonl $E/oneorder_evaluate_5_s$s/judgements.jsonl
    echo "== seed $s: both orders minus one order, after 5"
    python3 $P $E/oneorder_evaluate_5_s$s/judgements.jsonl $E/evaluate_5_agree_s$s/judgements.jsonl
  done > notes/science/session22/oneorder_5.txt 2>&1
  exit 0
fi
K="${1:-5}"
D=notes/science/session22; P=notes/science/session12/paired.py; G=notes/science/session19/gap.py
BIN=/tmp/lab22/judgeflow; C=/tmp/lab22/cache_st; E=/tmp/lab22/exp
F=pipelines/judge_lab_self_train.toml
sets=(--set base.path=/work/main/.bin/b6s3 --set filter.min_agree=0.75 --set sample_open.limit=600
  --set sample_closed.limit=600 --set world.count=3000 --set iterate.self_train.times=$K)
mkdir -p $E
ex() { # NODE VARIANT OUTDIR
  [ -f "$3/judgements.jsonl" ] || $BIN export $F "$1[$2].judgements" --cache $C "${sets[@]}" \
    --to "$3" --format jsonl > /dev/null 2>&1 || echo "export $1[$2] failed" >&2
}
for s in 1 2 3; do for keep in agree all; do
  v="filter.keep=$keep,seed=$s"
  # The base's evaluations do not depend on the filter: their variant is the seed alone.
  ex eval_base "seed=$s" $E/eval_base_s$s; ex eval_base_blind "seed=$s" $E/eval_base_blind_s$s
  for i in $(seq 1 $K); do
    ex "evaluate@$i" "$v" $E/evaluate_${i}_${keep}_s$s; ex "evaluate_blind@$i" "$v" $E/evaluate_blind_${i}_${keep}_s$s
  done
done; done
for s in 1 2 3; do for keep in agree all; do
  echo "== seed $s, filter.keep=$keep: after $K minus base"
  python3 $P $E/eval_base_s$s/judgements.jsonl $E/evaluate_${K}_${keep}_s$s/judgements.jsonl
done
  echo "== seed $s: filter (agree) minus no filter (all), after $K"
  python3 $P $E/evaluate_${K}_all_s$s/judgements.jsonl $E/evaluate_${K}_agree_s$s/judgements.jsonl
done > $D/paired_$K.txt 2>&1
for s in 1 2 3; do
  echo "== seed $s (base, base blind, after $K, after $K blind), filter.keep=agree"
  python3 $G $E/eval_base_s$s/judgements.jsonl $E/eval_base_blind_s$s/judgements.jsonl \
    $E/evaluate_${K}_agree_s$s/judgements.jsonl $E/evaluate_blind_${K}_agree_s$s/judgements.jsonl
done > $D/gap_$K.txt 2>&1
score() { python3 -c "
import json,sys
xs=[0.5 if r['verdict'] is None else float(r['agrees']) for r in map(json.loads, open('$1/judgements.jsonl'))]
print(f' {sum(xs)/len(xs):.3f}', end='')" 2>/dev/null || echo -n " -"; }
for keep in agree all; do for s in 1 2 3; do
  echo -n "filter.keep=$keep seed $s overall by iteration (0 = base):"
  score $E/eval_base_s$s
  for i in $(seq 1 $K); do score $E/evaluate_${i}_${keep}_s$s; done; echo
  echo -n "filter.keep=$keep seed $s blind by iteration (0 = base):"
  score $E/eval_base_blind_s$s
  for i in $(seq 1 $K); do score $E/evaluate_blind_${i}_${keep}_s$s; done; echo
done; done > $D/per_iteration_$K.txt
for s in 1 2 3; do for i in $(seq 1 $K); do
  echo -n "seed $s iteration $i: "
  $BIN show $F "filter@$i[filter.keep=agree,seed=$s]" --cache $C "${sets[@]}" --port stats 2>&1 \
    | grep -E "^total" | tr -s ' ' || echo
done; done > $D/filter_kept_$K.txt
# Also in this folder: base.{perception,eval_base,eval_base_blind}.txt (`judgeflow show` of
# judge_lab.toml with session13/B6s3.sets.txt on this session's cache), base.pretrain.run.txt,
# self_train_{3,5}.run.txt (the runs' summaries), base_and_threads.sha256.txt (the exported base;
# 40-step pretrainings at RAYON_NUM_THREADS 1, 2 and 2 again: m_t1, m_t2, m_t2b, identical),
# judgements_raw.tar.gz (every exported judgements.jsonl).
# base/: the base model directory itself (1.3 MB), for `judgeflow judge`, for
# judge_lab_self_train.toml's `base.path`, or carried to a GPU machine for
# scripts/device_lab_self_train.sh (copy it under .bin/, which calls carry).
# The single-order arm (judge.orders = random, filter on), five iterations, seeds 1-3, from a
# copy of the file without the filter sweep (sed -e '/^"filter.keep"/d'):
#   bash notes/science/session22/collect.sh oneorder
