#!/usr/bin/env bash
# On the GPU machine: where the burn model's time goes, per kernel, in one run.
#   1. `tiny`: a few training steps at 64 x 37 (and a short decode), every kernel launch timed
#      by cubecl's profiler and every compilation logged;
#   2. the Llama-3.2-11B-Vision shape (random bf16 weights, one 560 px tile, batch 16): the first
#      prefill and generate call, with the same logs, up to a time limit. Whether the first call
#      is kernel compilation or slow kernels is what this answers;
#   3. the kernels both compiled, packed as $OUT/kernels.tar.xz, so that a later device run can
#      time a second process with a filled cache (scripts/device_speed.sh, KEEP_KERNELS=1).
# Raw logs go into one archive, $OUT/profile_raw.tar.gz; the per-kernel summary (top kernels by
# total time, compilations over time) is printed and saved as $OUT/profile_summary.txt.
#
#   run: bash scripts/device_profile.sh [SECONDS_FOR_11B]   (binary carried as .bin/speed.xz)
set -uo pipefail
limit="${1:-240}"
final="${OUT:-/tmp/out}"
mkdir -p "$final"
out=/tmp/profile_raw
rm -rf "$out" && mkdir -p "$out"
repo="$PWD"
bin="$repo/.bin/speed"
bash scripts/unpack_bin.sh speed || exit 1
kernels=/tmp/judgeflow-kernels
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,power.draw,memory.used --format=csv | tee "$out/gpu.txt"

# Both loggers on, into $out/NAME_profile.log and $out/NAME_compile.log.
. scripts/cubecl_logged.sh
logged() {
    local name="$1"
    shift
    cubecl_logged "$out/${name}_profile.log" "$out/${name}_compile.log" "$@"
}

logged tiny timeout 240 "$bin" --preset tiny --device cuda --batches 16 --placements device \
    --prompt-len 48 --new-tokens 8 --repeats 1 --train-batch 64 --train-seq 37 --train-steps 12 \
    --kernel-cache "$kernels" --out "$out/tiny.json" 2> "$out/tiny.log"
echo "tiny profiled exit: $?"

cp "$repo/model/tests/fixtures/llama32_11b_vision_config.json" "$out/11b_config.json"
nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -lms 200 > "$out/11b_mem.txt" &
sampler=$!
start=$(date +%s)
logged 11b timeout "$limit" "$bin" --config "$out/11b_config.json" --device cuda --tiles 1 \
    --batches 16 --placements device --prompt-len 64 --new-tokens 64 --repeats 1 \
    --train-steps 0 --kernel-cache "$kernels" --out "$out/11b.json" 2> "$out/11b.log"
echo "11b profiled exit: $? after $(( $(date +%s) - start )) s"
kill "$sampler" 2>/dev/null
echo "11b peak memory MiB: $(sort -n "$out/11b_mem.txt" | tail -1)"
cat "$out/11b.log"

# The kernels compiled here, for a later run's second process (scripts/device_speed.sh with
# KEEP_KERNELS=1 after unpacking them into /tmp/judgeflow-kernels).
tar cJf "$final/kernels.tar.xz" -C /tmp judgeflow-kernels 2>/dev/null
ls -la "$final/kernels.tar.xz"
python3 "$repo/scripts/profile_summary.py" "$out" | tee "$final/profile_summary.txt"
tar czf "$final/profile_raw.tar.gz" -C /tmp profile_raw
