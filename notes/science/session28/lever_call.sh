#!/usr/bin/env bash
# For the next device call (not run in session 28): pipelines/self_train.toml as shipped (its own
# GPU pretraining, base seed 3) with session 28's CPU lever, `filter.min_agree = 0.25` and
# `filter.faithful = true`, seeds 1-3 of the method beside seed 1's random-verdict control, seven
# iterations, one cache; re-running on the still-warm machine resumes from it. The method at the
# shipped settings is session 27's (+0.075 [+0.033, +0.118] after seven).
#   check here first: ./.bin/judgeflow check pipelines/self_train.toml --set filter.min_agree=0.25 --set filter.faithful=true
#   run: bash notes/science/session28/lever_call.sh SECONDS     (carry: .bin/judgeflow.xz)
set -uo pipefail
limit=${1:-560}
out="${OUT:-/tmp/out}"; mkdir -p "$out"
export JUDGEFLOW_MATMUL=cublas JUDGEFLOW_MATMUL_SMALL_M=cublas JUDGEFLOW_CACHE=/tmp/c_lever
export EXTRA_SETS="--set filter.min_agree=0.25 --set filter.faithful=true"
(RAW=/tmp/science_lever1 PARALLEL=1 ITERATIONS=7 bash scripts/device_science.sh "$limit" "1" main control) \
    > "$out/lever1.log" 2>&1 &
(RAW=/tmp/science_lever23 ITERATIONS=7 bash scripts/device_science.sh "$limit" "2 3" main) \
    > "$out/lever23.log" 2>&1 &
wait
cat "$out"/lever*.log
