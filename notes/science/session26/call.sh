#!/usr/bin/env bash
# Session 26's device call, prepared and not run (no machine started): grids side by side, each
# with its own cache and raw folder (scripts/device_science.sh's RAW and JUDGEFLOW_CACHE), with
# master weights (the binary's default since session 25). The lab is judge_lab_self_train.toml
# from the shipped base B6s3 with session 19's settings (min_agree 0.75, 600 open + 600 closed
# prompts an iteration, both orders, no reasoning prompts), bench 6 with 1,500 items, seeds 1-3:
#   main7    the method for seven iterations (a prompt world of 4,200 scenes: seven disjoint
#            blocks of 600); iterations 1-5 repeat session 25's grid          (MAIN7=0: left out)
#   control  the same from B6s3's random-verdict twin (pipelines/bases/judge_lab_b6s3_random),
#            five iterations                                                  (CONTROL=0: left out)
#   ARMS     ablations (default "oneorder oracle"; ARMS="" none), ARM_TIMES (default 5) iterations
#   ST=1     also pipelines/self_train.toml as shipped: its own pretraining on the GPU (the
#            method's base and the random-verdict control's, in parallel), then seeds 1-3 of the
#            method for what time is left; both bases are exported to $OUT/bases/ so that a later
#            call can run the grid from them (a cache does not fit in a call's carry)
# The method and the control come first (`nice` on the ablations).
#   run: bash notes/science/session26/call.sh SECONDS      (carry: .bin/judgeflow.xz)
set -uo pipefail
limit=${1:-540}
out="${OUT:-/tmp/out}"; mkdir -p "$out"
bash scripts/unpack_bin.sh judgeflow || exit 1
B=pipelines/bases/judge_lab_b6s3
C=pipelines/bases/judge_lab_b6s3_random
X="--set world.reasoning_examples=0 --set sample_reasoning.limit=0"
lab() { # NAME VARIANT ITERATIONS NICE [EXTRA SETS]
    (JUDGEFLOW_CACHE=/tmp/c_$1 RAW=/tmp/science_$1 EXTRA_SETS="$X ${5:-}" TIMES=$3 CONTROL_BASE=$C \
        nice -n "$4" bash scripts/device_lab_self_train.sh "$limit" "1 2 3" $B "$2") > "$out/$1.log" 2>&1 &
}
start=$(date +%s)
if [ "${ST:-0}" = 1 ]; then
    (JUDGEFLOW_CACHE=/tmp/c_st RAW=/tmp/science_st bash scripts/device_science.sh "$limit" "1 2 3" main control) \
        > "$out/st.log" 2>&1 &
fi
[ "${MAIN7:-1}" = 1 ] && lab main7 main 7 0 "--set world.count=4200"
[ "${CONTROL:-1}" = 1 ] && lab control control 5 0
for v in ${ARMS-oneorder oracle}; do lab "$v" "$v" "${ARM_TIMES:-5}" 10; done
wait
echo "all grids done after $(( $(date +%s) - start )) s"
if [ "${ST:-0}" = 1 ]; then
    mkdir -p "$out/bases"
    JUDGEFLOW_CACHE=/tmp/c_st ./.bin/judgeflow export /tmp/science_st_s1.toml pretrain.model --to "$out/bases/st_main" \
        || echo "export of the method's base failed"
    JUDGEFLOW_CACHE=/tmp/c_st ./.bin/judgeflow export /tmp/science_control_base.toml pretrain.model \
        --set pretrain.judge_verdicts=random --to "$out/bases/st_control" || echo "export of the control's base failed"
fi
for f in "$out"/*.log; do echo "== $f"; tail -8 "$f"; done
ls -la "$out"
