#!/usr/bin/env bash
# Session 18: the random-verdict control (session 14's base, /tmp/lab14) under the more-prompts
# arm's settings (more_prompts.sh, ARM=prompts: 600 open and 600 closed prompts an iteration,
# min_agree 0.75, both orders), seeds 1-3; then the more-prompts arm's judge after three
# iterations on a grey image (evaluate_blind@3), for the with-image minus blind gap.
cd /work/main
export RAYON_NUM_THREADS=1
BIN=/tmp/lab13/judgeflow_new
MC=$(cat /tmp/lab14/ctrl_model.txt); CC=/tmp/lab14/cache_ctrl2_st
M=$(cat /tmp/lab13/out/B6s3/model.txt); C=/tmp/lab13/cache_st3
more=(--set filter.min_agree=0.75 --set sample_open.limit=600 --set sample_closed.limit=600)
ctrl() {
  local s=$1 core=$2
  taskset -c $core $BIN run pipelines/judge_lab_self_train.toml "evaluate@3[filter.keep=agree,seed=$s]" --cache $CC --jobs 1 --set base.path=$MC "${more[@]}" > /tmp/lab18/ctrl_prompts_s$s.run.txt 2>&1
  echo "ctrl prompts seed $s exit $? $(date)" >> /tmp/lab18/lab.log
}
blind() {
  local s=$1 core=$2
  taskset -c $core $BIN run pipelines/judge_lab_self_train.toml "evaluate_blind@3[filter.keep=agree,seed=$s]" --cache $C --jobs 1 --set base.path=$M "${more[@]}" > /tmp/lab18/blind_prompts_s$s.run.txt 2>&1
  echo "blind prompts seed $s exit $? $(date)" >> /tmp/lab18/lab.log
}
echo "ctrl/blind start $(date)" >> /tmp/lab18/lab.log
ctrl 1 0 & ctrl 2 1 & wait
ctrl 3 0 & (blind 1 1; blind 2 1; blind 3 1) & wait
for s in 1 2 3; do
  $BIN export pipelines/judge_lab_self_train.toml "evaluate@3[filter.keep=agree,seed=$s].judgements" --cache $CC --set base.path=$MC "${more[@]}" --to /tmp/lab18/exp/ctrl_prompts_s$s --format jsonl > /dev/null 2>&1 || echo "export ctrl $s failed" >> /tmp/lab18/lab.log
done
echo "ctrl/blind done $(date)" >> /tmp/lab18/lab.log
