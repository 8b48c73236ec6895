#!/usr/bin/env bash
# On the GPU machine, in one run: which cubek matmul strategy the 11B shape should use, now
# that every linear layer is one 2-D product over flattened rows (session 7). For each pair
# "LARGE:SMALL" (JUDGEFLOW_MATMUL for products over 32 rows, JUDGEFLOW_MATMUL_SMALL_M for the
# rest; vendor/burn-cubecl/VENDORED.md), the carried `speed` example first checks its products
# against the CPU's f32 (`--matmul-check`), then times the issue's generate shape: batch 16,
# one 560 px tile, 64-token prompt, 64 new tokens, T 0.6, top-k 50, top-p 0.9, device
# sampling. An optional third field picks the vision encoder's attention kernel
# ("LARGE:SMALL:ATTENTION", JUDGEFLOW_ATTENTION: materialized (default), softmax_rows, flash_tiles,
# fallback, flash_unit, flash_accelerated, flash_accelerated_2/_8; model/src/layers.rs), checked against the
# CPU and timed beside the materialised one before the generate timings (`attention_check`).
# An optional fourth field names another carried build of the example (".bin/NAME.xz", default
# `speed`), so that two builds are timed in one device run ("LARGE:SMALL:ATTENTION:NAME"); a
# fifth picks the reduction routine (JUDGEFLOW_REDUCE: unit (default), plane, cube, auto;
# vendor/burn-cubecl/VENDORED.md), "LARGE:SMALL:ATTENTION:NAME:REDUCE".
# transformers' `generate` on the same config.json runs in the same device run, as
# the reference. Raw outputs: $OUT/matmul_raw.tar.gz; a table on stdout and in
# $OUT/matmul_table.txt. The `cublas` strategy (either field) loads libcublas from the image's
# Python packages (scripts/cublas_path.sh). MATMUL_BENCH=1 adds `--matmul-bench` (the 11B
# run's largest products timed, in each configuration's process, before the generate call).
#
#   run: bash scripts/device_matmul.sh SECONDS_PER_RUN "auto:auto cyclic_mma:cyclic_mma_rows:flash_accelerated:speed_gqa ..."
#        (binary carried as .bin/speed.xz; WHAT=tiny times the tiny preset instead, with a
#        training step, against transformers at the same shapes; BATCHES=16,64 times the 11B
#        generate call at each batch, transformers' too (TORCH_BATCHES, if only some), default 16)
set -uo pipefail
limit="${1:-100}"
pairs="${2:-auto:auto}"
what="${WHAT:-11b}"
batches="${BATCHES:-16}"
torch_batches="${TORCH_BATCHES:-$batches}"
final="${OUT:-/tmp/out}"
out=/tmp/matmul_raw
rm -rf "$out" && mkdir -p "$out" "$final"
kernels=/tmp/judgeflow-kernels
. scripts/cublas_path.sh
. scripts/tiny_reference.sh
bench=()
[ "${MATMUL_BENCH:-0}" = 1 ] && bench=(--matmul-bench)
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,power.draw,memory.used --format=csv | tee "$out/gpu.txt"

if [ "$what" = tiny ]; then
    shape=(--preset tiny --batches 16,64 --prompt-len 48 --new-tokens 32 --train-batch 64
        --train-seq 37 --train-steps 30 --write-config "$out/tiny_config.json")
else
    cp model/tests/fixtures/llama32_11b_vision_config.json "$out/11b_config.json"
    shape=(--config "$out/11b_config.json" --tiles 1 --batches "$batches" --prompt-len 64
        --new-tokens 64 --train-steps 0)
fi

# transformers' side. For the 11B shape first (a call cut short by its time limit still has
# it); for `tiny` after the burn runs, which write the config.json it reads.
reference() {
    if [ "$what" = tiny ]; then
        tiny_reference "$out"
    else
        for b in ${torch_batches//,/ }; do
            timeout "${TORCH_LIMIT:-200}" python3 scripts/hf_mllama_timing.py --config "$out/11b_config.json" \
                --mode generate --tiles 1 --gen-batch "$b" --prompt-len 64 --new-tokens 64 --gen-repeats 1 \
                > "$out/11b_torch_$b.json" 2>> "$out/torch.log"
            echo "torch 11b b$b exit: $?"
        done
    fi
}
[ "$what" = tiny ] || reference

for pair in $pairs; do
    IFS=: read -r large small attention build reduce <<< "$pair"
    attention="${attention:-materialized}"
    build="${build:-speed}"
    reduce="${reduce:-unit}"
    tag="${what}_${large}_${small}_${attention}"
    [ "$build" = speed ] || tag="${tag}_$build"
    [ "$reduce" = unit ] || tag="${tag}_reduce_$reduce"
    bash scripts/unpack_bin.sh "$build" || continue
    bin="$PWD/.bin/$build"
    start=$(date +%s)
    JUDGEFLOW_MATMUL="$large" JUDGEFLOW_MATMUL_SMALL_M="$small" JUDGEFLOW_ATTENTION="$attention" \
        JUDGEFLOW_REDUCE="$reduce" RUST_BACKTRACE=1 timeout "$limit" \
        "$bin" "${shape[@]}" --device cuda --placements device --repeats 1 --matmul-check "${bench[@]}" \
        --kernel-cache "$kernels" --out "$out/$tag.json" > "$out/$tag.stdout" 2> "$out/$tag.log"
    echo "$tag exit $? in $(( $(date +%s) - start )) s"
    # The table so far, in case the device call ends before the loop does.
    python3 scripts/matmul_table.py "$out" > "$final/matmul_table.txt" 2>&1
done

[ "$what" = tiny ] && reference
python3 scripts/matmul_table.py "$out" | tee "$final/matmul_table.txt"
tar czf "$final/matmul_raw.tar.gz" -C /tmp matmul_raw
