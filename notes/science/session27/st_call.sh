#!/usr/bin/env bash
# Session 27's device call for pipelines/self_train.toml as shipped (seven iterations): its own
# pretraining on the GPU (the method's base and the random-verdict control's, in parallel, each
# exported to $OUT/bases.tar as soon as it is trained, so that a later call can carry them), then
# one seed's whole grid (main, control, nofilter, oneorder, oracle: PARALLEL=1, every variant its
# own process) beside seeds 2-3 of the method, on one cache. Re-running the same command on the
# still-warm machine resumes from that cache (what is done is fresh).
#   run: bash notes/science/session27/st_call.sh SECONDS      (carry: .bin/judgeflow.xz)
set -uo pipefail
limit=${1:-560}
out="${OUT:-/tmp/out}"; mkdir -p "$out"
start=$(date +%s)
bash scripts/unpack_bin.sh judgeflow || exit 1
. scripts/cublas_path.sh
export JUDGEFLOW_MATMUL=cublas JUDGEFLOW_MATMUL_SMALL_M=cublas JUDGEFLOW_CACHE=/tmp/c_st
P=pipelines/self_train.toml
mkdir -p /tmp/bases
pre() { # NAME [SETS]: pretraining alone, timed, then exported
    local name="$1"; shift
    local t0; t0=$(date +%s)
    RUST_LOG=info,cubecl=warn timeout $(( limit - 60 )) ./.bin/judgeflow run "$P" pretrain "$@" \
        > "/tmp/pre_$name.txt" 2> "/tmp/pre_$name.log"
    echo "pretrain $name: exit $? after $(( $(date +%s) - t0 )) s ($(tail -2 "/tmp/pre_$name.txt" | head -1))"
    ./.bin/judgeflow export "$P" pretrain.model "$@" --to "/tmp/bases/st_$name" > /dev/null \
        && tar -cf "$out/bases.tar" -C /tmp bases
}
pre main &
pre control --set pretrain.judge_verdicts=random &
wait
grep -h "loss" /tmp/pre_main.log | tail -3
left=$(( limit - ($(date +%s) - start) ))
(RAW=/tmp/science_st1 PARALLEL=1 ITERATIONS=7 bash scripts/device_science.sh "$left" "1" \
    main control nofilter oneorder oracle) > "$out/st1.log" 2>&1 &
(RAW=/tmp/science_st23 ITERATIONS=7 bash scripts/device_science.sh "$left" "2 3" main) \
    > "$out/st23.log" 2>&1 &
wait
cat /tmp/pre_*.txt > "$out/pretrain.txt"; tail -c 20000 /tmp/pre_main.log > "$out/pretrain_main.log"
echo "call done after $(( $(date +%s) - start )) s"
cat "$out"/st*.log
