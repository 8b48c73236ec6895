#!/usr/bin/env bash
# On the GPU machine: where the 11B-shaped burn model stops (session 5: the first generate call
# at batch 16 ran ~2 minutes of kernels, then nothing for 4 minutes, memory flat). Runs the
# speed example once with the device placement and once with the host one, each up to a limit,
# and while each runs records every 15 s the process's threads (`top -H`) and, where gdb is
# installed, every thread's stack. Output: $OUT/hang_raw.tar.gz.
#
#   run: bash scripts/device_11b_hang.sh [SECONDS] [PLACEMENTS]   (binary carried as .bin/speed.xz;
#        PLACEMENTS defaults to "device host"; NEW_TOKENS=64 for the generate shape)
set -uo pipefail
limit="${1:-150}"
final="${OUT:-/tmp/out}"
out=/tmp/hang_raw
rm -rf "$out" && mkdir -p "$out"
bin="$PWD/.bin/speed"
bash scripts/unpack_bin.sh speed || exit 1
cp model/tests/fixtures/llama32_11b_vision_config.json "$out/11b_config.json"
which gdb eu-stack perf py-spy > "$out/tools.txt" 2>&1
placements="${2:-device host}"
for placement in $placements; do
    RUST_BACKTRACE=1 timeout "$limit" "$bin" --config "$out/11b_config.json" --device cuda --tiles 1 \
        --batches 16 --placements "$placement" --prompt-len 64 --new-tokens "${NEW_TOKENS:-8}" --repeats 1 \
        --train-steps 0 --kernel-cache /tmp/judgeflow-kernels --out "$out/11b_$placement.json" \
        2> "$out/11b_$placement.log" &
    pid=$!
    for i in $(seq 1 $((limit / 15))); do
        sleep 15
        kill -0 "$pid" 2>/dev/null || break
        child=$(pgrep -P "$pid" speed || echo "$pid")
        { echo "== t=$((i * 15)) s"; top -H -b -n 1 -p "$child" | head -25;
          nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader; } >> "$out/threads_$placement.txt"
        if command -v gdb > /dev/null && [ $((i % 4)) = 2 ]; then
            timeout 60 gdb -batch -p "$child" -ex "thread apply all bt 25" > "$out/stacks_${placement}_$i.txt" 2>&1
        fi
    done
    wait "$pid"
    echo "11b $placement exit: $?" | tee -a "$out/summary.txt"
    tail -5 "$out/11b_$placement.log"
done
tar czf "$final/hang_raw.tar.gz" -C /tmp hang_raw
