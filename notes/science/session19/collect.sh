#!/usr/bin/env bash
# Session 19: what five_iterations_600.sh, per_iteration.sh and control_five_iterations_600.sh
# produced, against B6s3's base and the control's base (session12/paired.py: the same 900 items
# a seed): -> paired.txt, gap.txt, per_iteration.txt, filter_kept.txt
cd /work/main
D=notes/science/session19; P=notes/science/session12/paired.py; E=/tmp/lab19/exp
BIN=/tmp/lab13/judgeflow_new; M=$(cat /tmp/lab13/out/B6s3/model.txt); MC=$(cat /tmp/lab14/ctrl_model.txt)
sets=(--set filter.min_agree=0.75 --set sample_open.limit=600 --set sample_closed.limit=600 --set world.count=3000)
for s in 1 2 3; do
  echo "== seed $s: B6s3, 5 iterations at 600 prompts (world 3,000), after 5 minus base"
  python3 $P /tmp/lab13/exp3/eval_base_s$s/judgements.jsonl $E/evaluate_5_s$s/judgements.jsonl
  echo "== seed $s: random-verdict control, same settings, after 5 minus its base"
  python3 $P /tmp/lab14/exp/ctrl_eval_base_s$s/judgements.jsonl $E/ctrl_evaluate_5_s$s/judgements.jsonl
done > $D/paired.txt 2>&1
for s in 1 2 3; do
  echo "== seed $s (base, base blind, after 5, after 5 blind)"
  python3 $D/gap.py /tmp/lab13/exp3/eval_base_s$s/judgements.jsonl /tmp/lab13/exp3/eval_base_blind_s$s/judgements.jsonl \
    $E/evaluate_5_s$s/judgements.jsonl $E/evaluate_blind_5_s$s/judgements.jsonl
done > $D/gap.txt 2>&1
for s in 1 2 3; do
  echo -n "seed $s overall by iteration (0 = base):"
  for f in /tmp/lab13/exp3/eval_base_s$s $E/evaluate_1_s$s $E/evaluate_2_s$s $E/evaluate_3_s$s $E/evaluate_4_s$s $E/evaluate_5_s$s; do
    python3 -c "
import json,sys
xs=[0.5 if r['verdict'] is None else float(r['agrees']) for r in map(json.loads, open('$f/judgements.jsonl'))]
print(f' {sum(xs)/len(xs):.3f}', end='')" 2>/dev/null || echo -n " -"
  done; echo
done > $D/per_iteration.txt
for s in 1 2 3; do for i in 1 2 3 4 5; do
  for arm in main ctrl; do
    if [ $arm = main ]; then m=$M; c=/tmp/lab13/cache_st3; else m=$MC; c=/tmp/lab14/cache_ctrl2_st; fi
    echo -n "$arm seed $s iteration $i: "
    $BIN show /tmp/lab15/lab5.toml "filter@$i[filter.keep=agree,seed=$s]" --cache $c --set base.path=$m "${sets[@]}" --port stats 2>&1 | grep -E "^total" | tr -s ' ' || echo
  done
done; done > $D/filter_kept.txt
