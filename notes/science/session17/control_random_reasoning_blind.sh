#!/usr/bin/env bash
# Blind (grey image) evaluation of the random-reasoning control after three iterations, seeds 1-3.
cd /work/main
MC=$(cat /tmp/lab17/rr_model.txt); BIN=/tmp/lab17/judgeflow; C=/tmp/lab17/cache_rr_st
export RAYON_NUM_THREADS=1
one() { taskset -c $2 $BIN run pipelines/judge_lab_self_train.toml "evaluate_blind@3[filter.keep=agree,seed=$1]" --cache $C --jobs 1 --set base.path=$MC --set filter.min_agree=0.75 > /tmp/lab17/rr_blind_s$1.run.txt 2>&1; echo "blind seed $1 exit $? $(date)" >> /tmp/lab17/rr_blind.log; }
one 1 0 & one 2 1 & wait
one 3 0
