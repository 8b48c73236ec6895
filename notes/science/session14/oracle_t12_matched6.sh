#!/usr/bin/env bash
# Core 0: majority vs oracle with hotter closed-ended sampling (T 1.2), B6s3, three seeds.
cd /work/main
BIN=/tmp/lab13/judgeflow_new
M3=$(cat /tmp/lab13/out/B6s3/model.txt)
export RAYON_NUM_THREADS=1
for s in 1 2 3; do for m in majority oracle; do
  taskset -c 0 nice -n 5 "$BIN" run pipelines/judge_lab_self_train.toml "evaluate@3[filter.keep=agree,seed=$s]" --cache /tmp/lab13/cache_st3 --jobs 1 --set base.path=$M3 --set vote.method=$m --set sample_closed.temperature=1.2 --set vote.max_pairs=6 > /tmp/lab14/t12m6_${m}_s$s.run.txt 2>&1
  echo "T1.2 max_pairs 6 $m seed $s exit $? $(date)"
done; done
echo "== done $(date)"
