#!/usr/bin/env bash
# Session 29's device call for #9: pipelines/self_train.toml as shipped (its own GPU pretraining,
# base seed 3) with session 28's CPU lever (`filter.min_agree = 0.25`, `filter.faithful = true`)
# as the whole grid over seeds 1-3, and beside it the method at the shipped filter (main, seeds
# 1-3) for a same-base paired comparison. One cache: the pretraining and the first iteration's
# samples and judgements are shared. First the lever's main and control and the method (nine
# processes at once: the micro judge leaves the GPU mostly idle), then the ablations (nofilter,
# oneorder, oracle; nine more) with the time left. Re-running on the still-warm machine
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
deadline=$(( start + limit - 70 ))
left() { echo $(( deadline - $(date +%s) )); }
lever="--set filter.min_agree=0.25 --set filter.faithful=true"
# First what decides the question: the lever's main and control arms, and the method at the
# shipped filter, seeds 1-3 (nine processes).
(RAW=/tmp/science_lever PARALLEL=1 ITERATIONS=7 EXTRA_SETS="$lever" \
    bash scripts/device_science.sh "$(left)" "1 2 3" main control) > "$out/lever.log" 2>&1 &
(RAW=/tmp/science_method PARALLEL=1 ITERATIONS=7 \
    bash scripts/device_science.sh "$(left)" "1 2 3" main) > "$out/method.log" 2>&1 &
wait
# Then the ablations with the lever, with whatever time is left (a later call resumes them).
if [ "$(left)" -gt 60 ]; then
    (RAW=/tmp/science_ablations PARALLEL=1 ITERATIONS=7 EXTRA_SETS="$lever" \
        bash scripts/device_science.sh "$(left)" "1 2 3" nofilter oneorder oracle) \
        > "$out/ablations.log" 2>&1
fi
mkdir -p /tmp/bases
p=/tmp/science_lever_s1.toml
./.bin/judgeflow export "$p" pretrain.model --to /tmp/bases/st29_main > /dev/null 2>&1 \
    && echo "exported the base"
./.bin/judgeflow export "$p" pretrain.model --set pretrain.judge_verdicts=random \
    --to /tmp/bases/st29_control > /dev/null 2>&1 && echo "exported the control base"
tar -cf "$out/bases.tar" -C /tmp bases
echo "call done after $(( $(date +%s) - start )) s"
tail -n 30 "$out"/*.log
grep -h "pretrain" /tmp/science_lever/run_s1_main.log | tail -3
