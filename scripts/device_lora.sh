#!/usr/bin/env bash
# On the GPU machine: the PEFT + transformers side of issue 11's LoRA checks, in one run.
#   1. a LoRA step on the Llama-3.2-11B-Vision shape (random bf16 weights), rank 16, alpha 32,
#      all text-decoder projections, batch 4 x 512 tokens, one tile: time and peak memory;
#   2. if $JUDGEFLOW_ADAPTER (a judgeflow-trained adapter in PEFT format), $JUDGEFLOW_BASE (its
#      HF base directory) and $JUDGEFLOW_INPUTS (inputs safetensors) are set: PEFT's logits for
#      them, written next to the log for comparison with judgeflow's (1e-3). judgeflow has no
#      LoRA training yet, so without them this step says so and is skipped.
# Raw output goes into one archive, $OUT/lora_raw.tar.gz.
#
#   run from the repository root: bash scripts/device_lora.sh   (nothing to carry; ~5 min)
set -uo pipefail
final="${OUT:-/tmp/out}"
mkdir -p "$final"
work=/tmp/lora_raw
rm -rf "$work" && mkdir -p "$work"
python3 -c "import torch, transformers; print('torch', torch.__version__, 'transformers', transformers.__version__)" | tee "$work/versions.txt"
python3 -c "import peft; print('peft', peft.__version__)" 2>&1 | tee -a "$work/versions.txt"
nvidia-smi --query-gpu=name,memory.total --format=csv | tee "$work/gpu.txt"
timeout 420 python3 scripts/device_lora_reference.py step --batch 4 --seq 512 --steps 6 \
    > "$work/peft_step_11b.json" 2> "$work/peft_step_11b.log"
echo "peft 11b step exit: $?" | tee -a "$work/summary.txt"
cat "$work/peft_step_11b.json" | tee -a "$work/summary.txt"
if [ -n "${JUDGEFLOW_ADAPTER:-}" ] && [ -n "${JUDGEFLOW_BASE:-}" ] && [ -n "${JUDGEFLOW_INPUTS:-}" ]; then
    timeout 120 python3 scripts/device_lora_reference.py peft_logits --adapter "$JUDGEFLOW_ADAPTER" \
        --base "$JUDGEFLOW_BASE" --inputs "$JUDGEFLOW_INPUTS" --out "$work/peft_logits.safetensors" \
        2>&1 | tee -a "$work/summary.txt"
else
    echo "no judgeflow adapter given (judgeflow has no LoRA training yet): PEFT round-trip skipped" \
        | tee -a "$work/summary.txt"
fi
tar czf "$final/lora_raw.tar.gz" -C /tmp lora_raw
