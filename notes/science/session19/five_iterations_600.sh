#!/usr/bin/env bash
# Session 19: session 18's more-prompts arm (B6s3, min_agree 0.75, both orders, 600 open and 600
# closed prompts an iteration) for five iterations, on a world of 3,000 scenes (`world.count`;
# session 18 stopped at iteration 5's sampling: disjoint subsets of 600 need 3,000 open
# prompts). The self-training world only supplies prompts: the base is the same B6s3 directory,
# the bench the same 300 held-out scenes (disjoint seeds by construction), so gains stay paired
# with every earlier arm. Seeds 1-3; exports evaluate@5 and evaluate_blind@5 (evaluate@1-4:
# per_iteration.sh; this run did not compute them, so exporting evaluate@3 here failed).
cd /work/main
export RAYON_NUM_THREADS=1
M=$(cat /tmp/lab13/out/B6s3/model.txt); C=/tmp/lab13/cache_st3; BIN=/tmp/lab13/judgeflow_new
sets=(--set base.path=$M --set filter.min_agree=0.75 --set sample_open.limit=600
  --set sample_closed.limit=600 --set world.count=3000)
one() {
  local s=$1 core=$2
  taskset -c $core $BIN run /tmp/lab15/lab5.toml "evaluate@5[filter.keep=agree,seed=$s]" \
    "evaluate_blind@5[filter.keep=agree,seed=$s]" --cache $C --jobs 1 "${sets[@]}" \
    > /tmp/lab19/it5_s$s.run.txt 2>&1
  echo "seed $s exit $? $(date)" >> /tmp/lab19/lab.log
  for node in evaluate@5 evaluate_blind@5; do
    $BIN export /tmp/lab15/lab5.toml "$node[filter.keep=agree,seed=$s].judgements" --cache $C \
      "${sets[@]}" --to /tmp/lab19/exp/${node/@/_}_s$s --format jsonl > /dev/null 2>&1 \
      || echo "export $node $s failed" >> /tmp/lab19/lab.log
  done
}
echo "start $(date)" >> /tmp/lab19/lab.log
one 1 0 & one 2 1 & wait
one 3 0
echo "done $(date)" >> /tmp/lab19/lab.log
