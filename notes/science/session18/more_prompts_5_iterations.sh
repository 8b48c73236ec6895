#!/usr/bin/env bash
# Session 18: the more-prompts arm (more_prompts.sh, ARM=prompts) continued to five iterations,
# with session 15's five-iteration copy of the pipeline (/tmp/lab15/lab5.toml: `times = 5`,
# nothing else changed; iterations 1-3 come from the cache), seeds 1-3; exports the judgements.
# Outcome: every seed stopped at `sample_open`: disjoint subsets of 600 need 3,000 open prompts
# for five iterations, and the 2,000-scene world has 2,000 (judgeflow's `sample::subset`
# diagnostic names it and suggests more scenes, a lower limit or `subset = "seeded"`).
cd /work/main
export RAYON_NUM_THREADS=1
M=$(cat /tmp/lab13/out/B6s3/model.txt); C=/tmp/lab13/cache_st3; BIN=/tmp/lab13/judgeflow_new
more=(--set filter.min_agree=0.75 --set sample_open.limit=600 --set sample_closed.limit=600)
one() {
  local s=$1 core=$2
  taskset -c $core $BIN run /tmp/lab15/lab5.toml "evaluate@5[filter.keep=agree,seed=$s]" "evaluate_blind@5[filter.keep=agree,seed=$s]" --cache $C --jobs 1 --set base.path=$M "${more[@]}" > /tmp/lab18/it5_prompts_s$s.run.txt 2>&1
  echo "it5 prompts seed $s exit $? $(date)" >> /tmp/lab18/lab.log
}
one 1 0 & one 2 1 & wait
one 3 0
for s in 1 2 3; do
  $BIN export /tmp/lab15/lab5.toml "evaluate@5[filter.keep=agree,seed=$s].judgements" --cache $C --set base.path=$M "${more[@]}" --to /tmp/lab18/exp/it5_prompts_s$s --format jsonl > /dev/null 2>&1 || echo "export it5 $s failed" >> /tmp/lab18/lab.log
done
echo "it5 done $(date)" >> /tmp/lab18/lab.log
