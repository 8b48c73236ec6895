#!/usr/bin/env bash
# Held-out corruption kinds: self-training whose corruptions are attribute swaps only.
# ARM=main|ctrl CORE=N: seeds 2 and 3 (seed 1 started by hand with the same command).
cd /work/main
export RAYON_NUM_THREADS=1
if [ "$ARM" = main ]; then M=$(cat /tmp/lab13/out/B6s3/model.txt); C=/tmp/lab13/cache_st3; else M=$(cat /tmp/lab14/ctrl_model.txt); C=/tmp/lab14/cache_ctrl2_st; fi
while pgrep -f "attr_${ARM}_s1" > /dev/null || ! grep -q "^$ARM " /tmp/lab14/attr.log 2>/dev/null; do sleep 5; done
for s in 2 3; do
  taskset -c $CORE /tmp/lab13/judgeflow_new run pipelines/judge_lab_self_train.toml "evaluate@3[filter.keep=agree,seed=$s]" --cache $C --jobs 1 --set base.path=$M --set 'corrupt.kinds=["attribute"]' > /tmp/lab14/attr_${ARM}_s$s.run.txt 2>&1
  echo "$ARM seed $s $? $(date)" >> /tmp/lab14/attr.log
done
