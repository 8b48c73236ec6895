#!/usr/bin/env bash
# blind (grey image) scores after 3 iterations of the no-filter arm (keep = "all"), then the
# metrics of both evaluations per seed -> blind_metrics_no_filter.txt
cd /work/main
export RAYON_NUM_THREADS=1
M=$(cat /tmp/lab13/out/B6s3/model.txt); C=/tmp/lab13/cache_st3
for s in 1 2 3; do
  /tmp/lab13/judgeflow_new run pipelines/judge_lab_self_train.toml "evaluate_blind@3[filter.keep=all,seed=$s]" --cache $C --jobs 2 --set base.path=$M > /tmp/lab16/blind_nofilter_s$s.run.txt 2>&1
done
for s in 1 2 3; do for n in "evaluate@3" "evaluate_blind@3"; do
  echo "== no filter: $n[filter.keep=all,seed=$s]"
  /tmp/lab13/judgeflow_new show pipelines/judge_lab_self_train.toml "$n[filter.keep=all,seed=$s]" --cache $C --set base.path=$M 2>&1 | grep -E "^(dimension|general|hallucination|reasoning|overall)"
done; done > notes/science/session16/blind_metrics_no_filter.txt
