#!/usr/bin/env bash
# paired gains for min_agree arms: MA=0.75 SEEDS="1 2 3"
cd /work/main
B=/tmp/lab13/judgeflow_new; E=/tmp/lab15/exp
M3=$(cat /tmp/lab13/out/B6s3/model.txt); MC=$(cat /tmp/lab14/ctrl_model.txt)
P=notes/science/session12/paired.py
EXTRA="${EXTRA:-}"; TAG="${TAG:-ma$MA}"
for s in $SEEDS; do
  $B export pipelines/judge_lab_self_train.toml "evaluate@3[filter.keep=agree,seed=$s].judgements" --cache /tmp/lab13/cache_st3 --set base.path=$M3 --set filter.min_agree=$MA $EXTRA --to $E/${TAG}_main_s$s --format jsonl > /dev/null 2>&1 || echo "export main $s failed"
  $B export pipelines/judge_lab_self_train.toml "evaluate@3[filter.keep=agree,seed=$s].judgements" --cache /tmp/lab14/cache_ctrl2_st --set base.path=$MC --set filter.min_agree=$MA $EXTRA --to $E/${TAG}_ctrl_s$s --format jsonl > /dev/null 2>&1 || echo "export ctrl $s failed"
  echo "== seed $s: $TAG, B6s3 (main), after 3 minus base"; python3 $P /tmp/lab13/exp3/eval_base_s$s/judgements.jsonl $E/${TAG}_main_s$s/judgements.jsonl
  echo "== seed $s: $TAG, random-verdict control, after 3 minus base"; python3 $P /tmp/lab14/exp/ctrl_eval_base_s$s/judgements.jsonl $E/${TAG}_ctrl_s$s/judgements.jsonl
done
