#!/usr/bin/env bash
# Session 18: paired gains (session12/paired.py, the same 900 items a seed) of the more-prompts
# arm against B6s3's base and against session 15's main arm (300 prompts an iteration), and of
# the random-verdict control under the same settings against its base; the filter's kept
# judgements an iteration for both. -> more_prompts_paired.txt, more_prompts_filter_kept.txt
cd /work/main
P=notes/science/session12/paired.py; E=/tmp/lab18/exp; BIN=/tmp/lab13/judgeflow_new
M=$(cat /tmp/lab13/out/B6s3/model.txt); MC=$(cat /tmp/lab14/ctrl_model.txt)
more=(--set filter.min_agree=0.75 --set sample_open.limit=600 --set sample_closed.limit=600)
for s in 1 2 3; do
  echo "== seed $s: more prompts, after 3 minus base"; python3 $P /tmp/lab13/exp3/eval_base_s$s/judgements.jsonl $E/prompts_s$s/judgements.jsonl
  echo "== seed $s: more prompts minus 300 prompts (session 15's main arm at 0.75), after 3"; python3 $P /tmp/lab15/exp/ma0.75_main_s$s/judgements.jsonl $E/prompts_s$s/judgements.jsonl
  echo "== seed $s: random-verdict control, more prompts, after 3 minus base"; python3 $P /tmp/lab14/exp/ctrl_eval_base_s$s/judgements.jsonl $E/ctrl_prompts_s$s/judgements.jsonl
done > notes/science/session18/more_prompts_paired.txt
for s in 1 2 3; do for i in 1 2 3; do
  for arm in main ctrl; do
    if [ $arm = main ]; then m=$M; c=/tmp/lab13/cache_st3; else m=$MC; c=/tmp/lab14/cache_ctrl2_st; fi
    echo -n "$arm seed $s iteration $i: "
    $BIN show pipelines/judge_lab_self_train.toml "filter@$i[filter.keep=agree,seed=$s]" --cache $c --set base.path=$m "${more[@]}" --port stats 2>&1 | grep -E "^total" | tr -s ' '
  done
done; done > notes/science/session18/more_prompts_filter_kept.txt
