#!/usr/bin/env bash
# Background science queue, core 1.
cd /work/main
BIN=/tmp/lab13/judgeflow_new
M3=$(cat /tmp/lab13/out/B6s3/model.txt)
export RAYON_NUM_THREADS=1
run() { taskset -c 1 "$BIN" "$@"; }
echo "== control pretrain start $(date)"
run run pipelines/judge_lab.toml eval_base eval_base_blind --cache /tmp/lab14/cache_ctrl2 --jobs 1 \
  --set pipeline.seed=3 $(cat /tmp/lab13/B6.sets) --set pretrain.judge_verdicts=random > /tmp/lab14/ctrl_pretrain.run.txt 2>&1
echo "control pretrain exit $? $(date)"
MC=$(run show pipelines/judge_lab.toml pretrain --port model --cache /tmp/lab14/cache_ctrl2 --set pipeline.seed=3 $(cat /tmp/lab13/B6.sets) --set pretrain.judge_verdicts=random | head -1 | sed 's/^[^:]*: //')
echo "$MC" > /tmp/lab14/ctrl_model.txt
for s in 1 2 3; do
  run run pipelines/judge_lab_self_train.toml "evaluate@3[filter.keep=agree,seed=$s]" "eval_base[seed=$s]" "eval_base_blind[seed=$s]" --cache /tmp/lab14/cache_ctrl2_st --jobs 1 --set base.path=$MC > /tmp/lab14/ctrl_st_s$s.run.txt 2>&1
  echo "control self-train seed $s exit $? $(date)"
done
echo "== done $(date)"
