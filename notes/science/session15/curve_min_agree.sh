#!/usr/bin/env bash
# evaluate@1 and @2 at min_agree 0.75 (per-iteration curve): ARM CORE
cd /work/main
export RAYON_NUM_THREADS=1
if [ "$ARM" = main ]; then M=$(cat /tmp/lab13/out/B6s3/model.txt); C=/tmp/lab13/cache_st3; else M=$(cat /tmp/lab14/ctrl_model.txt); C=/tmp/lab14/cache_ctrl2_st; fi
for s in 1 2 3; do
  taskset -c $CORE /tmp/lab13/judgeflow_new run pipelines/judge_lab_self_train.toml "evaluate@1[filter.keep=agree,seed=$s]" "evaluate@2[filter.keep=agree,seed=$s]" --cache $C --jobs 1 --set base.path=$M --set filter.min_agree=0.75 > /tmp/lab15/curve_${ARM}_s$s.run.txt 2>&1
  echo "curve $ARM seed $s exit $? $(date)" >> /tmp/lab15/ma.log
done
