#!/usr/bin/env bash
# On the GPU machine, in one run: compile judgeflow's Triton flash attention
# (scripts/flash_triton.py: tunes a few block shapes at the 11B vision encoder's shape, checks
# each against an f32 reference and prints them beside PyTorch's scaled_dot_product_attention),
# then time the 11B generate call with it and without it at batches 16 and 64 (BATCHES;
# scripts/device_matmul.sh, transformers in the same run), the carried `speed` build loading the
# fresh PTX through
# JUDGEFLOW_FLASH_TRITON_DIR instead of the PTX embedded at build time.
#
#   run: bash scripts/device_flash_triton.sh [SECONDS_PER_RUN] ["LARGE:SMALL:ATTENTION:BUILD:REDUCE ..."]
#   out: $OUT/flash/ (PTX, manifest, the script's output), $OUT/matmul/ (table, raw outputs)
set -uo pipefail
limit="${1:-240}"
pairs="${2:-cublas:cublas:flash_triton:speed:auto cublas:cublas:softmax_rows:speed:auto}"
final="${OUT:-/tmp/out}"
mkdir -p "$final/flash" "$final/matmul"
python3 scripts/flash_triton.py "$final/flash" > "$final/flash/triton_stdout.txt" 2>&1
echo "flash_triton.py exit $?"
head -30 "$final/flash/triton_stdout.txt"
if [ ! -f "$final/flash/flash_triton_d80.ptx" ]; then
    echo "no PTX: the generate timings would not use it"
    exit 1
fi
export JUDGEFLOW_FLASH_TRITON_DIR="$final/flash"
# transformers' generate at batch 64 needs ~76 GB (the issue's H200 figure) and ran out of memory
# on an H100 of 80 GB (session 19): there its reference is batch 16 alone.
mem=$(nvidia-smi --query-gpu=memory.total --format=csv,noheader,nounits | head -1)
if [ "${mem:-0}" -lt 100000 ] && [ -z "${TORCH_BATCHES:-}" ]; then
    export TORCH_BATCHES=16
    echo "GPU memory ${mem} MiB: transformers at batch 16 only"
fi
BATCHES="${BATCHES:-16,64}" OUT="$final/matmul" bash scripts/device_matmul.sh "$limit" "$pairs"
