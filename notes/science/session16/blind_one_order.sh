#!/usr/bin/env bash
# blind (grey image) scores after 3 iterations of the one-order arm at min_agree 0.75: CORE SEEDS
cd /work/main
export RAYON_NUM_THREADS=1
M=$(cat /tmp/lab13/out/B6s3/model.txt); C=/tmp/lab13/cache_st3
for s in $SEEDS; do
  taskset -c $CORE /tmp/lab13/judgeflow_new run pipelines/judge_lab_self_train.toml "evaluate_blind@3[filter.keep=agree,seed=$s]" --cache $C --jobs 1 --set base.path=$M --set filter.min_agree=0.75 --set judge.orders=random > /tmp/lab16/blind_single_s$s.run.txt 2>&1
  echo "blind single seed $s exit $? $(date)" >> /tmp/lab16/single.log
done
