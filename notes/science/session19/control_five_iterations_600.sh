#!/usr/bin/env bash
# Session 19: the random-verdict control (session 14's base, /tmp/lab14) under
# five_iterations_600.sh's settings (600 open and 600 closed prompts an iteration on a world of
# 3,000 scenes, min_agree 0.75, both orders, five iterations). CORE=N SEEDS="..." to place it.
cd /work/main
export RAYON_NUM_THREADS=1
BIN=/tmp/lab13/judgeflow_new
MC=$(cat /tmp/lab14/ctrl_model.txt); CC=/tmp/lab14/cache_ctrl2_st
sets=(--set base.path=$MC --set filter.min_agree=0.75 --set sample_open.limit=600
  --set sample_closed.limit=600 --set world.count=3000)
for s in ${SEEDS:-1 2 3}; do
  taskset -c ${CORE:-0} $BIN run /tmp/lab15/lab5.toml "evaluate@5[filter.keep=agree,seed=$s]" \
    --cache $CC --jobs 1 "${sets[@]}" > /tmp/lab19/ctrl_s$s.run.txt 2>&1
  echo "ctrl seed $s exit $? $(date)" >> /tmp/lab19/lab.log
  $BIN export /tmp/lab15/lab5.toml "evaluate@5[filter.keep=agree,seed=$s].judgements" --cache $CC \
    "${sets[@]}" --to /tmp/lab19/exp/ctrl_evaluate_5_s$s --format jsonl > /dev/null 2>&1 \
    || echo "export ctrl $s failed" >> /tmp/lab19/lab.log
done
