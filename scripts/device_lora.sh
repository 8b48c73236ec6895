#!/usr/bin/env bash
# On the GPU machine: the PEFT + transformers side of issue 11's LoRA checks, in one run.
#   1. PEFT round trip: a judgeflow-trained adapter in PEFT format ($JUDGEFLOW_ADAPTER), its HF
#      base directory ($JUDGEFLOW_BASE) and inputs with judgeflow's f32 logits
#      ($JUDGEFLOW_INPUTS). By default the committed fixture: the adapter judgeflow trained on
#      model/tests/fixtures/mllama_tiny (model/tests/fixtures/lora_tiny, made by
#      `JUDGEFLOW_BLESS_LORA_FIXTURE=1 cargo test --workspace --test lora`). transformers loads
#      the base with from_pretrained (f32, eager attention), PEFT the adapter with
#      PeftModel.from_pretrained; prints the max abs difference of PEFT's logits vs judgeflow's,
#      PASS/FAIL at 1e-3, and whether every adapter tensor loaded under its name.
#   2. a LoRA step on the Llama-3.2-11B-Vision shape (random bf16 weights), rank 16, alpha 32,
#      all text-decoder projections, batch 4 x 512 tokens, one tile: time and peak memory
#      (skipped with JUDGEFLOW_LORA_SKIP_STEP=1).
# $OUT gets summary.txt, peft_check.json, peft_logits.safetensors and everything in one archive,
# lora_raw.tar.gz.
#
#   run from the repository root: bash scripts/device_lora.sh   (nothing to carry; ~5 min)
set -uo pipefail
final="${OUT:-/tmp/out}"
mkdir -p "$final"
work=/tmp/lora_raw
rm -rf "$work" && mkdir -p "$work"
adapter="${JUDGEFLOW_ADAPTER:-model/tests/fixtures/lora_tiny/adapter}"
base="${JUDGEFLOW_BASE:-model/tests/fixtures/mllama_tiny}"
inputs="${JUDGEFLOW_INPUTS:-model/tests/fixtures/lora_tiny/inputs.safetensors}"
python3 -c "import torch, transformers; print('torch', torch.__version__, 'transformers', transformers.__version__)" | tee "$work/versions.txt"
python3 -c "import peft; print('peft', peft.__version__)" 2>&1 | tee -a "$work/versions.txt"
nvidia-smi --query-gpu=name,memory.total --format=csv | tee "$work/gpu.txt"
echo "PEFT round trip: adapter $adapter, base $base, inputs $inputs" | tee -a "$work/summary.txt"
timeout 300 python3 scripts/device_lora_reference.py peft_logits --adapter "$adapter" \
    --base "$base" --inputs "$inputs" --out "$work/peft_logits.safetensors" \
    > "$work/peft_check.json" 2> "$work/peft_check.log"
echo "peft round trip exit: $?" | tee -a "$work/summary.txt"
cat "$work/peft_check.json" | tee -a "$work/summary.txt"
tail -5 "$work/peft_check.log" | tee -a "$work/summary.txt"
if [ -z "${JUDGEFLOW_LORA_SKIP_STEP:-}" ]; then
    timeout 420 python3 scripts/device_lora_reference.py step --batch 4 --seq 512 --steps 6 \
        > "$work/peft_step_11b.json" 2> "$work/peft_step_11b.log"
    echo "peft 11b step exit: $?" | tee -a "$work/summary.txt"
    cat "$work/peft_step_11b.json" | tee -a "$work/summary.txt"
fi
for f in summary.txt peft_check.json peft_logits.safetensors; do
    [ -f "$work/$f" ] && cp "$work/$f" "$final/"
done
tar czf "$final/lora_raw.tar.gz" -C /tmp lora_raw
