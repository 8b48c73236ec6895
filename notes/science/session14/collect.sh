#!/usr/bin/env bash
# Exports and paired differences for session 14's arms.
cd /work/main
B=/tmp/lab13/judgeflow_new
E=/tmp/lab14/exp
M3=$(cat /tmp/lab13/out/B6s3/model.txt)
MC=$(cat /tmp/lab14/ctrl_model.txt)
P=notes/science/session12/paired.py
what="$1"
if [ "$what" = control ]; then
  for s in 1 2 3; do
    for n in "eval_base[seed=$s]" "eval_base_blind[seed=$s]" "evaluate@3[filter.keep=agree,seed=$s]"; do
      tag=$(echo "$n" | sed 's/\[.*//; s/@/_/')
      $B export pipelines/judge_lab_self_train.toml "$n.judgements" --cache /tmp/lab14/cache_ctrl2_st --set base.path=$MC --to $E/ctrl_${tag}_s$s --format jsonl > /dev/null 2>&1 || echo "export $n failed"
    done
    echo "== control seed $s: after 3 minus base"; python3 $P $E/ctrl_eval_base_s$s/judgements.jsonl $E/ctrl_evaluate_3_s$s/judgements.jsonl
  done
fi
if [ "$what" = m6 ]; then
  for m in majority oracle; do for s in 1 2 3; do
    $B export pipelines/judge_lab_self_train.toml "evaluate@3[filter.keep=agree,seed=$s].judgements" --cache /tmp/lab13/cache_st3 --set base.path=$M3 --set vote.method=$m --set sample_closed.temperature=1.2 --set vote.max_pairs=6 --to $E/m6_${m}_s$s --format jsonl > /dev/null 2>&1 || echo "export failed"
  done; done
  for s in 1 2 3; do
    echo "== seed $s: T1.2, 6 vote pairs an iteration, majority after 3 minus base"; python3 $P /tmp/lab13/exp3/eval_base_s$s/judgements.jsonl $E/m6_majority_s$s/judgements.jsonl
    echo "== seed $s: T1.2, 6 vote pairs an iteration, oracle after 3 minus base"; python3 $P /tmp/lab13/exp3/eval_base_s$s/judgements.jsonl $E/m6_oracle_s$s/judgements.jsonl
    echo "== seed $s: T1.2, 6 vote pairs an iteration, majority minus oracle after 3"; python3 $P $E/m6_oracle_s$s/judgements.jsonl $E/m6_majority_s$s/judgements.jsonl
  done
fi
if [ "$what" = attr ]; then
  for s in 1 2 3; do
    $B export pipelines/judge_lab_self_train.toml "evaluate@3[filter.keep=agree,seed=$s].judgements" --cache /tmp/lab13/cache_st3 --set base.path=$M3 --set 'corrupt.kinds=["attribute"]' --to $E/attr_main_s$s --format jsonl > /dev/null 2>&1 || echo "export main $s failed"
    $B export pipelines/judge_lab_self_train.toml "evaluate@3[filter.keep=agree,seed=$s].judgements" --cache /tmp/lab14/cache_ctrl2_st --set base.path=$MC --set 'corrupt.kinds=["attribute"]' --to $E/attr_ctrl_s$s --format jsonl > /dev/null 2>&1 || echo "export ctrl $s failed"
    echo "== seed $s: attribute corruptions only, B6s3 (main), after 3 minus base"; python3 $P /tmp/lab13/exp3/eval_base_s$s/judgements.jsonl $E/attr_main_s$s/judgements.jsonl
    echo "== seed $s: attribute corruptions only, random-verdict control, after 3 minus base"; python3 $P $E/ctrl_eval_base_s$s/judgements.jsonl $E/attr_ctrl_s$s/judgements.jsonl
  done
fi
