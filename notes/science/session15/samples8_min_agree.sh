#!/usr/bin/env bash
# eight judgements per order, min_agree 0.75: ARM CORE SEEDS
cd /work/main
export RAYON_NUM_THREADS=1
if [ "$ARM" = main ]; then M=$(cat /tmp/lab13/out/B6s3/model.txt); C=/tmp/lab13/cache_st3; else M=$(cat /tmp/lab14/ctrl_model.txt); C=/tmp/lab14/cache_ctrl2_st; fi
for s in $SEEDS; do
  nice -n 19 taskset -c $CORE /tmp/lab13/judgeflow_new run pipelines/judge_lab_self_train.toml "evaluate@3[filter.keep=agree,seed=$s]" --cache $C --jobs 1 --set base.path=$M --set filter.min_agree=0.75 --set judge.samples=8 > /tmp/lab15/s8_${ARM}_s$s.run.txt 2>&1
  echo "s8 $ARM seed $s exit $? $(date)" >> /tmp/lab15/ma.log
done
