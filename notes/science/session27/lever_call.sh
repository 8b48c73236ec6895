#!/usr/bin/env bash
# Session 27's third device call: hallucinations that add their object first as often as last
# (`corrupt.hallucination_place = anywhere`, the `anywhere` variant) in the lab's loop
# (scripts/device_lab_self_train.sh, seven iterations, a 4,200-scene prompt world), from
#   b6s3  the shipped base (pairs with the first call's main7: same bench, prompts and base)
#   st    self_train.toml's own GPU-pretrained base, exported by the second call (carried as
#         .bin/bases_st/bases/st_main; pairs with that call's self_train.toml main, whose bench
#         and prompt world are the same)
# each with its own cache and raw folder; what is done by the deadline is collected.
#   run: bash notes/science/session27/lever_call.sh SECONDS   (carry: .bin/judgeflow.xz, .bin/bases_st)
set -uo pipefail
limit=${1:-240}
out="${OUT:-/tmp/out}"; mkdir -p "$out"
bash scripts/unpack_bin.sh judgeflow || exit 1
X="--set world.reasoning_examples=0 --set sample_reasoning.limit=0 --set world.count=4200"
lab() { # NAME BASE
    (JUDGEFLOW_CACHE=/tmp/c_$1 RAW=/tmp/science_$1 EXTRA_SETS="$X" TIMES=7 \
        bash scripts/device_lab_self_train.sh "$limit" "1 2 3" "$2" anywhere) > "$out/$1.log" 2>&1 &
}
start=$(date +%s)
lab b6s3_any pipelines/bases/judge_lab_b6s3
lab st_any .bin/bases_st/bases/st_main
wait
echo "done after $(( $(date +%s) - start )) s"
cat "$out"/*.log
