#!/usr/bin/env bash
# Session 16: the one-order arm at min_agree 0.75 (single_min_agree.sh) against session 15's
# both-order main arm at 0.75 and session 13's no-filter arm (the filter's threshold does not
# apply when everything is kept), on B6s3, three seeds, paired over the same 900 bench items.
cd /work/main
B=/tmp/lab13/judgeflow_new; E=/tmp/lab16/exp
M3=$(cat /tmp/lab13/out/B6s3/model.txt)
P=notes/science/session12/paired.py
for s in 1 2 3; do
  $B export pipelines/judge_lab_self_train.toml "evaluate@3[filter.keep=agree,seed=$s].judgements" --cache /tmp/lab13/cache_st3 --set base.path=$M3 --set filter.min_agree=0.75 --set judge.orders=random --to $E/single_ma0.75_s$s --format jsonl > /dev/null 2>&1 || echo "export single $s failed"
  echo "== seed $s: one order at 0.75, after 3 minus base"; python3 $P /tmp/lab13/exp3/eval_base_s$s/judgements.jsonl $E/single_ma0.75_s$s/judgements.jsonl
  echo "== seed $s: both orders minus one order at 0.75, after 3"; python3 $P $E/single_ma0.75_s$s/judgements.jsonl /tmp/lab15/exp/ma0.75_main_s$s/judgements.jsonl
  echo "== seed $s: filter at 0.75 minus no filter, after 3"; python3 $P /tmp/lab13/exp3/nofilter3_s$s/judgements.jsonl /tmp/lab15/exp/ma0.75_main_s$s/judgements.jsonl
  echo "== seed $s: no filter, after 3 minus base"; python3 $P /tmp/lab13/exp3/eval_base_s$s/judgements.jsonl /tmp/lab13/exp3/nofilter3_s$s/judgements.jsonl
done
