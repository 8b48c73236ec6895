#!/usr/bin/env bash
# Session 29's device call for #9, without the pretraining: self_train.toml's loop, prompt world
# and 1,500-item bench on its own GPU-pretrained base as session 27 exported it (carried:
# .bin/bases_st/bases/st_main, base seed 3; the control st_control), through carried_base.py.
# The lever (`filter.min_agree = 0.25`, `filter.faithful = true`) on main and control, and the
# method at the shipped filter (main), seeds 1-3, first (nine processes at once); then the
# lever's ablations (nofilter, oneorder, oracle) with the time left. One cache; re-running on
# the still-warm machine resumes from it.
#   check here first: python3 notes/science/session29/carried_base.py DIR /tmp/stc.toml && judgeflow check /tmp/stc.toml --set ...
#   run: bash notes/science/session29/carried_call.sh SECONDS    (carry: .bin/judgeflow.xz, .bin/bases_st)
set -uo pipefail
limit=${1:-560}
out="${OUT:-/tmp/out}"; mkdir -p "$out"
start=$(date +%s)
bash scripts/unpack_bin.sh judgeflow || exit 1
export JUDGEFLOW_MATMUL=cublas JUDGEFLOW_MATMUL_SMALL_M=cublas JUDGEFLOW_CACHE=/tmp/c_g29c
python3 notes/science/session29/carried_base.py "$PWD/.bin/bases_st/bases/st_main" /tmp/self_train_carried.toml || exit 1
export PIPELINE=/tmp/self_train_carried.toml CONTROL_BASE=.bin/bases_st/bases/st_control
# Collection (science_collect.py, one export per frame) and the archive need time after the runs.
deadline=$(( start + limit - 60 ))
left() { echo $(( deadline - $(date +%s) )); }
lever="--set filter.min_agree=0.25 --set filter.faithful=true"
(RAW=/tmp/science_lever PARALLEL=1 ITERATIONS=7 EXTRA_SETS="$lever" \
    bash scripts/device_science.sh "$(left)" "1 2 3" main control) > "$out/lever.log" 2>&1 &
(RAW=/tmp/science_method PARALLEL=1 ITERATIONS=7 \
    bash scripts/device_science.sh "$(left)" "1 2 3" main) > "$out/method.log" 2>&1 &
wait
if [ "$(left)" -gt 60 ]; then
    (RAW=/tmp/science_ablations PARALLEL=1 ITERATIONS=7 EXTRA_SETS="$lever" \
        bash scripts/device_science.sh "$(left)" "1 2 3" nofilter oneorder oracle) \
        > "$out/ablations.log" 2>&1
fi
echo "call done after $(( $(date +%s) - start )) s"
tail -n 30 "$out"/*.log
