#!/usr/bin/env bash
# On the GPU machine: where one decode step of the Llama-3.2-11B-Vision shape goes, per kernel.
# Two runs of the carried `speed` (random bf16 weights, batch $BATCH, one 560 px tile, 64-token
# prompt, sampling T 0.6 / top-k 50 / top-p 0.9) with cubecl's profiling logger on, one with
# $SHORT new tokens and one with $LONG; scripts/profile_decode.py takes the launches per step
# from the difference and the times from the longer run's last steps. The matmul strategies,
# vision attention and reduction routine are those device_speed.sh uses.
# Prints the table and saves it as $OUT/decode_profile.txt; the raw logs as
# $OUT/decode_profile_raw.tar.gz.
#
#   run: bash scripts/device_decode_profile.sh [SECONDS_PER_RUN]   (binary carried as .bin/speed.xz)
set -uo pipefail
limit="${1:-150}"
batch="${BATCH:-16}"; short="${SHORT:-8}"; long="${LONG:-24}"
final="${OUT:-/tmp/out}"
mkdir -p "$final"
out=/tmp/decode_profile_raw
rm -rf "$out" && mkdir -p "$out"
repo="$PWD"
bash scripts/unpack_bin.sh speed || exit 1
# libcublas on the loader's path, for JUDGEFLOW_MATMUL*=cublas (its products do not appear in
# cubecl's profile: they are not cubecl launches).
. scripts/cublas_path.sh
. scripts/cubecl_logged.sh
export JUDGEFLOW_MATMUL="${JUDGEFLOW_MATMUL-cublas}"
export JUDGEFLOW_MATMUL_SMALL_M="${JUDGEFLOW_MATMUL_SMALL_M-cublas}"
export JUDGEFLOW_ATTENTION="${JUDGEFLOW_ATTENTION-flash_triton}"
export JUDGEFLOW_REDUCE="${JUDGEFLOW_REDUCE-auto}"
cp "$repo/model/tests/fixtures/llama32_11b_vision_config.json" "$out/11b_config.json"
for n in "$short" "$long"; do
    start=$(date +%s)
    # One call only (--repeats 1 still makes a first, untimed call): both runs make the same
    # number of calls, so the difference is (long - short) steps per call.
    cubecl_logged "$out/n${n}_profile.log" - timeout "$limit" "$repo/.bin/speed" \
        --config "$out/11b_config.json" --device cuda \
        --tiles 1 --batches "$batch" --placements device --prompt-len 64 --new-tokens "$n" \
        --repeats 1 --train-steps 0 --kernel-cache /tmp/judgeflow-kernels \
        --out "$out/n${n}.json" 2> "$out/n${n}.log"
    echo "new tokens $n: exit $? after $(( $(date +%s) - start )) s"
done
calls=2
python3 "$repo/scripts/profile_decode.py" "$out/n${short}_profile.log" "$out/n${long}_profile.log" \
    "$(( (long - short) * calls ))" | tee "$final/decode_profile.txt"
tar czf "$final/decode_profile_raw.tar.gz" -C /tmp decode_profile_raw
