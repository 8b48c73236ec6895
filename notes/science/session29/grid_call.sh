#!/usr/bin/env bash
# Session 29's device call for #9: pipelines/self_train.toml as shipped (its own GPU pretraining,
# base seed 3) with session 28's CPU lever (`filter.min_agree = 0.25`, `filter.faithful = true`)
# as the whole grid -- main, control, nofilter, oneorder, oracle -- over seeds 1-3, and beside it
# the method at the shipped filter (main, seeds 1-3) for a same-base paired comparison. One cache:
# the pretraining and the first iteration's samples and judgements are shared. Every process runs
# at once (the micro judge leaves the GPU mostly idle). Re-running on the still-warm machine
# resumes from the cache. The bases are exported to $OUT/bases.tar once trained.
#   check here first: ./.bin/judgeflow check pipelines/self_train.toml --set filter.min_agree=0.25 --set filter.faithful=true [variant sets]
#   run: bash notes/science/session29/grid_call.sh SECONDS     (carry: .bin/judgeflow.xz)
set -uo pipefail
limit=${1:-560}
out="${OUT:-/tmp/out}"; mkdir -p "$out"
start=$(date +%s)
bash scripts/unpack_bin.sh judgeflow || exit 1
export JUDGEFLOW_MATMUL=cublas JUDGEFLOW_MATMUL_SMALL_M=cublas JUDGEFLOW_CACHE=/tmp/c_g29
# Collection (science_collect.py, one export per frame) and the archive need time after the runs.
runs=$(( limit - 70 ))
(RAW=/tmp/science_lever PARALLEL=1 ITERATIONS=7 \
    EXTRA_SETS="--set filter.min_agree=0.25 --set filter.faithful=true" \
    bash scripts/device_science.sh "$runs" "1 2 3" main control nofilter oneorder oracle) \
    > "$out/lever.log" 2>&1 &
(RAW=/tmp/science_method PARALLEL=1 ITERATIONS=7 \
    bash scripts/device_science.sh "$runs" "1 2 3" main) > "$out/method.log" 2>&1 &
wait
mkdir -p /tmp/bases
p=/tmp/science_lever_s1.toml
./.bin/judgeflow export "$p" pretrain.model --to /tmp/bases/st29_main > /dev/null 2>&1 \
    && echo "exported the base"
./.bin/judgeflow export "$p" pretrain.model --set pretrain.judge_verdicts=random \
    --to /tmp/bases/st29_control > /dev/null 2>&1 && echo "exported the control base"
tar -cf "$out/bases.tar" -C /tmp bases
echo "call done after $(( $(date +%s) - start )) s"
tail -n 30 "$out"/lever.log "$out"/method.log
grep -h "pretrain" /tmp/science_lever/run_s1_main.log | tail -3
