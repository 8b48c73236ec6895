#!/usr/bin/env bash
# On the GPU machine (torch + transformers there, no network): random mllama checkpoints unlike
# model/tests/fixtures/mllama_tiny and their transformers outputs, for the CPU parity tests in
# model/tests/hf_device_fixtures.rs. Writes $OUT/mllama_device/ (three checkpoints, ~15 MB: drop
# it into model/tests/fixtures/ and commit) and archives it with the log as one tar,
# $OUT/mllama_device_raw.tar.gz.
#
#   run from the repository root: bash scripts/device_mllama_fixtures.sh   (nothing to carry)
set -uo pipefail
final="${OUT:-/tmp/out}"
mkdir -p "$final"
work=/tmp/mllama_device_raw
rm -rf "$work" && mkdir -p "$work"
python3 -c "import torch, transformers; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), 'transformers', transformers.__version__)" \
    | tee "$work/versions.txt"
device=cpu
python3 -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" && device=cuda
# The logits are compared at 1e-4 in f32: TF32 matmuls would round inputs to 10 bits.
export NVIDIA_TF32_OVERRIDE=0
timeout 900 python3 scripts/device_mllama_fixtures.py --out "$work/mllama_device" --device "$device" \
    2>&1 | tee "$work/fixtures.log"
rc=${PIPESTATUS[0]}
echo "fixtures exit: $rc" | tee -a "$work/fixtures.log"
du -sh "$work/mllama_device"/* 2>/dev/null | tee -a "$work/fixtures.log"
cp -r "$work/mllama_device" "$final/" 2>/dev/null
tar czf "$final/mllama_device_raw.tar.gz" -C /tmp mllama_device_raw
exit $rc
