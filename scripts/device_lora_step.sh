#!/usr/bin/env bash
# On the GPU machine, in one run: a LoRA training step on the Llama-3.2-11B-Vision shape (random
# bf16 weights), judgeflow's (the carried `speed` example, `--lora-rank`) and then PEFT +
# transformers' (`device_lora_reference.py step`) on the same config.json, batch, length, rank,
# alpha, dropout (0.05) and targets (the text decoder's attention and MLP projections), one 560-px tile. Peak
# memory: nvidia-smi's memory.used of the GPU and of the process, sampled every 200 ms while each
# side runs (what the process holds, its allocator's pool included), beside PyTorch's own
# max_memory_allocated. The process's own figure stays right when other work shares the GPU.
#
#   run: bash scripts/device_lora_step.sh [BATCH SEQ RANK ALPHA STEPS]   (binary: .bin/speed.xz)
# $OUT gets lora_step.txt (both JSON lines and a two-row table) and lora_step_raw.tar.gz.
set -uo pipefail
batch="${1:-4}" seq="${2:-512}" rank="${3:-16}" alpha="${4:-32}" steps="${5:-6}"
final="${OUT:-/tmp/out}"
raw=/tmp/lora_step_raw
rm -rf "$raw" && mkdir -p "$raw" "$final"
bin="$PWD/.bin/speed"
bash scripts/unpack_bin.sh speed || exit 1
config=model/tests/fixtures/llama32_11b_vision_config.json

# Polls the GPU's used memory into $1 until killed, and each process's into $1.apps (pid,
# process name, MiB), so that a run beside other GPU work still has its own peak.
poll() {
    nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -lms 200 > "$1" &
    nvidia-smi --query-compute-apps=pid,process_name,used_memory --format=csv,noheader,nounits \
        -lms 200 > "$1.apps" 2>/dev/null &
    wait
}
peak() { sort -n "$1" | tail -1; }
# The largest memory any process whose name contains $2 held, from $1.apps.
app_peak() { awk -F', ' -v name="$2" 'index($2, name) && $3 + 0 > max { max = $3 + 0 } END { print max + 0 }' "$1.apps" 2>/dev/null; }

poll "$raw/burn_mem.txt" & p=$!
start=$(date +%s)
RUST_BACKTRACE=1 timeout "${BURN_LIMIT:-200}" "$bin" --config "$config" --device cuda --tiles 1 \
    --batches none --train-batch "$batch" --train-seq "$seq" --train-steps "$steps" \
    --lora-rank "$rank" --lora-alpha "$alpha" --kernel-cache /tmp/judgeflow-kernels \
    --out "$raw/burn.json" > "$raw/burn.stdout" 2> "$raw/burn.log"
echo "burn lora step exit $? in $(( $(date +%s) - start )) s" | tee "$raw/summary.txt"
pkill -P $p; kill $p
poll "$raw/peft_mem.txt" & p=$!
start=$(date +%s)
timeout "${PEFT_LIMIT:-200}" python3 scripts/device_lora_reference.py step --config "$config" \
    --batch "$batch" --seq "$seq" --rank "$rank" --alpha "$alpha" --dropout 0.05 --steps "$steps" \
    > "$raw/peft.json" 2> "$raw/peft.log"
echo "peft lora step exit $? in $(( $(date +%s) - start )) s" | tee -a "$raw/summary.txt"
pkill -P $p; kill $p
tail -n 3 "$raw/burn.log" "$raw/peft.log" | tee -a "$raw/summary.txt"
python3 - "$raw" "$(peak "$raw/burn_mem.txt")" "$(peak "$raw/peft_mem.txt")" \
    "$(app_peak "$raw/burn_mem.txt" speed)" "$(app_peak "$raw/peft_mem.txt" python)" <<'EOF' | tee -a "$raw/summary.txt"
import json, sys
raw, burn_mib, peft_mib, burn_own, peft_own = sys.argv[1:6]
def load(path):
    try:
        lines = [l for l in open(path) if l.strip().startswith("{")]
        return json.loads(lines[-1]) if lines else {}
    except (OSError, ValueError):
        return {}
burn, peft = load(f"{raw}/burn.json").get("train") or {}, load(f"{raw}/peft.json")
print(json.dumps({"burn": burn, "peft": peft}))
b_ms = burn.get("step_ms")
p_ms = (peft.get("step_seconds_median") or 0) * 1e3 or None
fmt = lambda x, d=1: "-" if x is None else f"{x:,.{d}f}"
count = lambda x: "-" if x is None else f"{x:,}"
gib = lambda mib: fmt(float(mib or 0) / 1024, 1) if float(mib or 0) > 0 else "-"
print("| | step (ms) | first steps | trainable params | peak GPU used (GiB) | peak of the process (GiB) | peak allocated (GiB) |")
print("| --- | --- | --- | --- | --- | --- | --- |")
print(f"| judgeflow (burn 0.21 CUDA) | {fmt(b_ms)} | {fmt(burn.get('warm_up_two_steps_s'))} s (two) | "
      f"{count(burn.get('trainable_params'))} | {gib(burn_mib)} | {gib(burn_own)} | - |")
print(f"| PEFT + transformers | {fmt(p_ms)} | {fmt(peft.get('step_seconds_first'))} s (one) | "
      f"{count(peft.get('trainable_params'))} | {gib(peft_mib)} | {gib(peft_own)} | "
      f"{fmt(peft.get('peak_mem_gib'))} |")
if b_ms and p_ms:
    print(f"judgeflow step time / PEFT's: {b_ms / p_ms:.2f}")
EOF
cp "$raw/summary.txt" "$final/lora_step.txt"
tar czf "$final/lora_step_raw.tar.gz" -C /tmp lora_step_raw
