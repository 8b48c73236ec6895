#!/usr/bin/env bash
# After control_rr.sh: self-training of the random-reasoning control at min_agree 0.75 (both
# orders, session 15's main setting), seeds 1-3 (1 and 2 in parallel on cores 0 and 1, then 3),
# with the base and blind base evaluations; then exports and paired gains.
cd /work/main
while [ ! -s /tmp/lab17/rr_model.txt ]; do sleep 20; done
MC=$(cat /tmp/lab17/rr_model.txt)
BIN=/tmp/lab17/judgeflow; C=/tmp/lab17/cache_rr_st
export RAYON_NUM_THREADS=1
one() {
  local s=$1 core=$2
  taskset -c $core $BIN run pipelines/judge_lab_self_train.toml "evaluate@3[filter.keep=agree,seed=$s]" "eval_base[seed=$s]" "eval_base_blind[seed=$s]" --cache $C --jobs 1 --set base.path=$MC --set filter.min_agree=0.75 > /tmp/lab17/rr_st_s$s.run.txt 2>&1
  echo "rr self-train seed $s exit $? $(date)" >> /tmp/lab17/rr_st.log
}
echo "start $(date)" >> /tmp/lab17/rr_st.log
one 1 0 & one 2 1 & wait
one 3 1
mkdir -p /tmp/lab17/exp
for s in 1 2 3; do
  $BIN export pipelines/judge_lab_self_train.toml "evaluate@3[filter.keep=agree,seed=$s].judgements" --cache $C --set base.path=$MC --set filter.min_agree=0.75 --to /tmp/lab17/exp/rr_s$s --format jsonl > /dev/null 2>&1 || echo "export rr $s failed" >> /tmp/lab17/rr_st.log
  $BIN export pipelines/judge_lab_self_train.toml "eval_base[seed=$s].judgements" --cache $C --set base.path=$MC --set filter.min_agree=0.75 --to /tmp/lab17/exp/rr_base_s$s --format jsonl > /dev/null 2>&1 || echo "export rr base $s failed" >> /tmp/lab17/rr_st.log
done
echo "done $(date)" >> /tmp/lab17/rr_st.log
