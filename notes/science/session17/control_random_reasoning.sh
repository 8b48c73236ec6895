#!/usr/bin/env bash
# Random-reasoning control: B6s3's corpus and pretraining, every judge-format row's verdict and
# claim marks redrawn (pretrain.judge_verdicts=random_reasoning); then self-training at
# min_agree 0.75 (session 15's main setting), three seeds. Core 1.
cd /work/main
BIN=/tmp/lab17/judgeflow
export RAYON_NUM_THREADS=1
SETS="--set pipeline.seed=3 $(cat /tmp/lab13/B6.sets) --set pretrain.judge_verdicts=random_reasoning"
run() { taskset -c ${CORE:-1} "$BIN" "$@"; }
echo "== control_rr pretrain start $(date)"
run run pipelines/judge_lab.toml eval_base eval_base_blind --cache /tmp/lab17/cache_rr --jobs 1 $SETS > /tmp/lab17/rr_pretrain.run.txt 2>&1
echo "control_rr pretrain exit $? $(date)"
MC=$(run show pipelines/judge_lab.toml pretrain --port model --cache /tmp/lab17/cache_rr $SETS | head -1 | sed 's/^[^:]*: //')
echo "$MC" > /tmp/lab17/rr_model.txt
echo "model $MC"
