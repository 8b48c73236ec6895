#!/usr/bin/env bash
# On the GPU machine: the science grid of pipelines/self_train.toml — seeds x variants — with
# the carried CUDA build of judgeflow. Seeds run as parallel processes (the tiny judge leaves
# the H200 mostly idle; one process per seed keeps it busier), each working through the
# variants in priority order:
#   main     the method
#   control  base judge pretrained with random verdicts (pretrain.judge_verdicts = random)
#   nofilter every parsed judgement kept (filter.keep = all)
#   oneorder one random presentation order (judge.orders = random)
#   oracle   gold decides the closed-ended pairs (vote.method = oracle)
# The cache (.judgeflow, git-ignored) survives between calls while the machine stays warm, so
# a call cut short by its time limit resumes where it stopped: call again with the same seeds.
# Each finished variant's small frames (metrics, per-item verdicts, perception, filter stats,
# judge and vote summaries; no images) go to $OUT/science_raw.tar.gz via science_collect.py.
#
#   run: bash scripts/device_science.sh SECONDS "1 2 3" [variants...]   (binary: .bin/judgeflow.xz)
#   EXTRA_SETS="--set pretrain.patch_probe=1.0" adds overrides to every variant.
set -uo pipefail
limit="${1:-500}"
seeds="${2:-1 2 3}"
shift $(( $# < 2 ? $# : 2 ))
variants=("$@")
[ ${#variants[@]} -gt 0 ] || variants=(main control nofilter oneorder oracle)
out="${OUT:-/tmp/out}"
raw=/tmp/science_raw
mkdir -p "$raw"
bin=./.bin/judgeflow
bash scripts/unpack_bin.sh judgeflow || exit 1
nvidia-smi --query-gpu=name,clocks.sm,power.draw,temperature.gpu,memory.used --format=csv,noheader | tee "$raw/gpu.txt"

sets_for() {
    echo "${EXTRA_SETS:-}"
    case "$1" in
        main) ;;
        control) echo "--set pretrain.judge_verdicts=random" ;;
        nofilter) echo "--set filter.keep=all" ;;
        oneorder) echo "--set judge.orders=random" ;;
        oracle) echo "--set vote.method=oracle" ;;
    esac
}

deadline=$(( $(date +%s) + limit ))
run_seed() {
    local seed="$1"
    # One pipeline file per seed (its own name, so runs and reports stay apart).
    local p="/tmp/self_train_s$seed.toml"
    sed -e "s/^name = \"self_train\"/name = \"self_train_s$seed\"/" -e "s/^seed = 1$/seed = $seed/" \
        pipelines/self_train.toml > "$p"
    for v in "${variants[@]}"; do
        local left=$(( deadline - $(date +%s) ))
        [ "$left" -gt 20 ] || { echo "seed $seed: no time left for $v"; break; }
        # shellcheck disable=SC2046
        JUDGEFLOW_KERNEL_CACHE="/tmp/kernels_s$seed" RUST_LOG=info,cubecl=warn \
            timeout "$left" "$bin" run "$p" $(sets_for "$v") \
            > "$raw/run_s${seed}_$v.txt" 2> "$raw/run_s${seed}_$v.log"
        local rc=$?
        echo "seed $seed $v: exit $rc ($(tail -2 "$raw/run_s${seed}_$v.txt" | head -1))"
        [ $rc -eq 0 ] || break
        # shellcheck disable=SC2046
        python3 scripts/science_collect.py --bin "$bin" --pipeline "$p" --label "s${seed}_$v" \
            --out "$raw" $(sets_for "$v") >> "$raw/collect.log" 2>&1 \
            || echo "seed $seed $v: collect failed (see collect.log)"
    done
}

for s in $seeds; do
    run_seed "$s" &
done
wait
nvidia-smi --query-gpu=memory.used --format=csv,noheader >> "$raw/gpu.txt"
tar -czf "$out/science_raw.tar.gz" -C /tmp science_raw
ls -la "$out"
