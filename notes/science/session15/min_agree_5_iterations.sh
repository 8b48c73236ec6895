#!/usr/bin/env bash
# 5 iterations, min_agree arms: ARM CORE MA SEEDS
cd /work/main
export RAYON_NUM_THREADS=1
if [ "$ARM" = main ]; then M=$(cat /tmp/lab13/out/B6s3/model.txt); C=/tmp/lab13/cache_st3; else M=$(cat /tmp/lab14/ctrl_model.txt); C=/tmp/lab14/cache_ctrl2_st; fi
for s in $SEEDS; do
  taskset -c $CORE /tmp/lab13/judgeflow_new run /tmp/lab15/lab5.toml "evaluate@5[filter.keep=agree,seed=$s]" --cache $C --jobs 1 --set base.path=$M --set filter.min_agree=$MA > /tmp/lab15/it5_ma${MA}_${ARM}_s$s.run.txt 2>&1
  echo "it5 $ARM ma=$MA seed $s exit $? $(date)" >> /tmp/lab15/ma.log
done
