#!/usr/bin/env bash
# Session 19: five_iterations_600.sh's evaluate at iterations 1-4 (its run asked only for
# iteration 5; the trained models are cached, so only the evaluations run), exported for the
# per-iteration trajectory. SEEDS="1 2" CORE=1 bash per_iteration.sh
cd /work/main
export RAYON_NUM_THREADS=1
M=$(cat /tmp/lab13/out/B6s3/model.txt); C=/tmp/lab13/cache_st3; BIN=/tmp/lab13/judgeflow_new
sets=(--set base.path=$M --set filter.min_agree=0.75 --set sample_open.limit=600
  --set sample_closed.limit=600 --set world.count=3000)
for s in ${SEEDS:-1 2 3}; do
  nodes=(); for i in 1 2 3 4; do nodes+=("evaluate@$i[filter.keep=agree,seed=$s]"); done
  taskset -c ${CORE:-1} $BIN run /tmp/lab15/lab5.toml "${nodes[@]}" --cache $C --jobs 1 "${sets[@]}" \
    > /tmp/lab19/per_iteration_s$s.run.txt 2>&1
  echo "per-iteration seed $s exit $? $(date)" >> /tmp/lab19/lab.log
  for i in 1 2 3 4; do
    $BIN export /tmp/lab15/lab5.toml "evaluate@$i[filter.keep=agree,seed=$s].judgements" --cache $C \
      "${sets[@]}" --to /tmp/lab19/exp/evaluate_${i}_s$s --format jsonl > /dev/null 2>&1 \
      || echo "export evaluate@$i $s failed" >> /tmp/lab19/lab.log
  done
done
