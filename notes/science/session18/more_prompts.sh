#!/usr/bin/env bash
# Session 18: B6s3 (session 13's base) self-trained at min_agree 0.75, both orders (session 15's
# main arm), with twice the prompts an iteration (limit 600 open and 600 closed instead of 300)
# and, as a second arm, eight judgements an order instead of four (min_agree 0.75: six of eight);
# seeds 1-3, three iterations, the same 900 bench items as every earlier arm.
#   ARM=prompts|samples bash notes/science/session18/more_prompts.sh
cd /work/main
export RAYON_NUM_THREADS=1
M=$(cat /tmp/lab13/out/B6s3/model.txt); C=/tmp/lab13/cache_st3; BIN=/tmp/lab13/judgeflow_new
case "$ARM" in
  prompts) sets=(--set sample_open.limit=600 --set sample_closed.limit=600) ;;
  samples) sets=(--set judge.samples=8) ;;
  *) echo "ARM=prompts|samples"; exit 2 ;;
esac
one() {
  local s=$1 core=$2
  taskset -c $core $BIN run pipelines/judge_lab_self_train.toml "evaluate@3[filter.keep=agree,seed=$s]" --cache $C --jobs 1 --set base.path=$M --set filter.min_agree=0.75 "${sets[@]}" > /tmp/lab18/${ARM}_s$s.run.txt 2>&1
  echo "$ARM seed $s exit $? $(date)" >> /tmp/lab18/lab.log
}
echo "$ARM start $(date)" >> /tmp/lab18/lab.log
one 1 0 & one 2 1 & wait
one 3 0
mkdir -p /tmp/lab18/exp
for s in 1 2 3; do
  $BIN export pipelines/judge_lab_self_train.toml "evaluate@3[filter.keep=agree,seed=$s].judgements" --cache $C --set base.path=$M --set filter.min_agree=0.75 "${sets[@]}" --to /tmp/lab18/exp/${ARM}_s$s --format jsonl > /dev/null 2>&1 || echo "export $ARM $s failed" >> /tmp/lab18/lab.log
done
echo "$ARM done $(date)" >> /tmp/lab18/lab.log
