#!/usr/bin/env bash
# On the GPU machine: pretrain the `tiny` judge on the world with the carried burn binary, then
# time the same configuration in PyTorch (transformers' MllamaForConditionalGeneration, random
# init, bf16) at the batch and padded length the burn run trained on. Results go to $OUT.
#
#   run: bash scripts/device_model_bench.sh STEPS BATCH   (binary carried in .bin/)
set -uo pipefail
steps="${1:-300}"
scenes="${3:-4000}"
batch="${2:-64}"
out="${OUT:-/tmp/out}"
mkdir -p "$out/tiny"
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,power.draw,temperature.gpu --format=csv | tee "$out/gpu.txt"
# cubecl reads cubecl.toml from the working directory: log every kernel compilation and
# autotune decision, so a slow first step can be attributed.
repo="$PWD"
mkdir -p "$out/work"
cat > "$out/work/cubecl.toml" <<TOML
[autotune]
level = "${AUTOTUNE_LEVEL:-balanced}"
logger = { level = "minimal", file = "$out/autotune.log" }

[compilation]
logger = { level = "basic", file = "$out/compile.log" }
TOML
cd "$out/work"
timeout "${BURN_TIMEOUT:-420}" "$repo/.bin/world_pretrain" --preset tiny --device cuda --scenes "$scenes" --eval-scenes 200 \
    --steps "$steps" --batch "$batch" --out "$out/tiny" 2>&1 | tee "$out/burn.log"
echo "burn exit: ${PIPESTATUS[0]}"
cd "$repo"
for f in compile autotune; do [ -f "$out/$f.log" ] && echo "$f.log: $(wc -l < "$out/$f.log") lines"; done
seq=$(python3 -c "import json;d=json.load(open('$out/tiny/summary.json'))['train'];print(int(round(d['tokens_padded']/(d['steps']*$batch))))" 2>/dev/null || echo 48)
echo "padded length for the PyTorch run: $seq"
[ -n "${SKIP_TORCH:-}" ] && exit 0
timeout 150 python3 scripts/hf_mllama_timing.py --config "$out/tiny/config.json" --batch "$batch" \
    --seq-len "$seq" --steps 30 --warmup 5 --gen-batch 64 --prompt-len 48 --new-tokens 32 \
    2>&1 | tee "$out/torch.json"
