#!/usr/bin/env bash
# On the GPU machine, in one call: `tiny`'s training step (64 x 37, 30 timed steps after two),
# same seeds and batches, with
#   burn          burn's AdamW after judgeflow's clipping (JUDGEFLOW_OPTIMIZER=burn),
#   fused         the fused optimizer step (model/src/fused_adamw.rs: two kernels a parameter),
#   emulated      the fused step's arithmetic as burn tensor operations (the kernels' reference),
#   fused_cublas  fused, with every product through cuBLAS (JUDGEFLOW_MATMUL{,_SMALL_M}=cublas),
# each twice (two samples of the step time) and each followed by its forward and forward+backward
# passes timed alone (--train-phases), so that the step splits into forward, backward and the
# optimizer; transformers' step with the gradient norm clipped to 1.0 in the same call; the loss
# curves compared (scripts/fusion_check.py --losses-only, tolerance 1e-3 relative): fused against
# emulated (the kernels), fused against burn (f32 moments against bf16). Then the launches of one
# training step by kernel, for fused and fused_cublas (cubecl's profiling logger over runs of 4 and
# 12 steps, scripts/profile_decode.py: counts exact, times inflated by the logger's wait after
# each kernel), and, where Nsight Systems is installed, its kernel summary of 12 steps of each.
# SCAN_BATCHES="128 256" (optional) adds, last, fused_cublas's step and transformers' clipped step
# at those batch sizes (x 37), each pair in turn: where a host-bound step meets one that grows
# with the batch.
# Raw JSON and logs packed as $OUT/optimizer_raw.tar.xz; the table printed and saved as
# $OUT/optimizer_table.txt, the loss comparisons as $OUT/optimizer_losses.txt, the profiles as
# $OUT/optimizer_profile.txt.
#
# PROFILE=0 leaves the profiles (cubecl's logger, Nsight Systems) out: the table and the loss
# comparisons alone, in about half the time.
# PRESET=micro runs the same at `micro` (default `tiny`): where session 23 saw the fused kernels
# diverge (NaN within 30 steps of pretraining) and their tensor form train; the loss comparison
# shows the first step where the two part.
#
#   run: bash scripts/device_optimizer.sh      (binary carried as .bin/speed.xz)
set -uo pipefail
repo="$PWD"
final="${OUT:-/tmp/out}"
out=/tmp/optimizer_raw
rm -rf "$out" && mkdir -p "$out" "$final"
bash scripts/unpack_bin.sh speed || exit 1
. scripts/cublas_path.sh
. scripts/cubecl_logged.sh
kernels=/tmp/judgeflow-kernels-optimizer
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,power.draw,temperature.gpu,memory.used --format=csv | tee "$out/gpu.txt"
args=(--preset "${PRESET:-tiny}" --device cuda --batches none --train-batch 64 --train-seq 37
    --kernel-cache "$kernels")
# `kind_env NAME` sets the environment of a kind.
kind_env() {
    unset JUDGEFLOW_MATMUL JUDGEFLOW_MATMUL_SMALL_M
    case "$1" in
        burn) export JUDGEFLOW_OPTIMIZER=burn ;;
        fused) export JUDGEFLOW_OPTIMIZER=fused ;;
        emulated) export JUDGEFLOW_OPTIMIZER=emulated ;;
        fused_cublas) export JUDGEFLOW_OPTIMIZER=fused JUDGEFLOW_MATMUL=cublas JUDGEFLOW_MATMUL_SMALL_M=cublas ;;
    esac
}
kinds="burn fused emulated fused_cublas"
# Kernels compiled by the first processes are in the cache for the timed ones.
for kind in $kinds; do
    (kind_env "$kind"; timeout 200 ./.bin/speed "${args[@]}" --train-steps 2 --train-phases 1 \
        --out "$out/warm_$kind.json" 2>> "$out/warm.log")
    echo "warm-up $kind exit: $?"
done
for round in 1 2; do
    for kind in $kinds; do
        (kind_env "$kind"; timeout 200 ./.bin/speed "${args[@]}" --train-steps 30 --train-phases 10 \
            --write-config "$out/tiny_config.json" --out "$out/${kind}_$round.json" 2>> "$out/$kind.log")
        echo "$kind round $round exit: $?"
    done
done
timeout 150 python3 scripts/hf_mllama_timing.py --config "$out/tiny_config.json" \
    --mode train --batch 64 --seq-len 37 --steps 30 --warmup 5 --tiles 1 --clip-grad-norm 1.0 \
    > "$out/torch_clip.json" 2>> "$out/torch.log"
echo "torch clipped exit: $?"
{
    echo "fused against emulated (the kernels against their arithmetic as tensor operations):"
    python3 scripts/fusion_check.py --losses-only "$out/emulated_1.json" "$out/fused_1.json"
    echo "fused against burn (f32 moments and one rounding, against burn's bf16 chain):"
    python3 scripts/fusion_check.py --losses-only "$out/burn_1.json" "$out/fused_1.json"
    echo "fused_cublas against fused (cuBLAS's sums against cubek's):"
    python3 scripts/fusion_check.py --losses-only "$out/fused_1.json" "$out/fused_cublas_1.json"
} | tee "$out/losses.txt"
python3 - "$out" $kinds <<'PY' | tee "$out/table.txt"
import os, sys
sys.path.insert(0, "scripts")
from speed_table import load
d, kinds = sys.argv[1], sys.argv[2:]
torch = load(os.path.join(d, "torch_clip.json")) or {}
s = (torch.get("train") or {}).get("step_s")
t = s * 1e3 if s else None
print(f"transformers (clipped, fused AdamW) step: {t:.1f} ms" if t else "transformers: no result")
for kind in kinds:
    for r in (1, 2):
        tr = (load(os.path.join(d, f"{kind}_{r}.json")) or {}).get("train") or {}
        ph = tr.get("phases") or {}
        step = tr.get("step_ms")
        if step is None:
            print(f"{kind} {r}: no result")
            continue
        ratio = f"{step / t:.2f}x transformers' time" if t else "-"
        f, fb = ph.get("forward_ms"), ph.get("forward_backward_ms")
        print(f"{kind:13s} {r}: step {step:6.1f} ms ({ratio}); forward {f:5.1f} ms, forward+backward "
              f"{fb:5.1f} ms, the rest (optimizer, reads) {step - fb:5.1f} ms; final loss {tr.get('final_loss'):.6f}")
PY
for kind in fused fused_cublas; do
    [ "${PROFILE:-1}" = 1 ] || break
    for n in 4 12; do
        (kind_env "$kind"; cubecl_logged "$out/profile_${kind}_$n.log" - timeout 150 \
            "$repo/.bin/speed" "${args[@]}" --train-steps "$n" \
            --out "$out/profile_${kind}_$n.json" 2>> "$out/profile.log")
        echo "profile $kind $n steps exit: $?"
    done
    python3 scripts/profile_decode.py "$out/profile_${kind}_4.log" "$out/profile_${kind}_12.log" 8 8 \
        | sed "s/one decode step/one training step, $kind/" | tee -a "$out/profile.txt"
done
nsys_bin="$(command -v nsys || ls /usr/local/cuda*/bin/nsys /opt/nvidia/nsight-systems*/bin/nsys 2>/dev/null | head -1)"
if [ "${PROFILE:-1}" != 1 ]; then
    echo "profiles left out (PROFILE=0)" | tee -a "$out/profile.txt"
elif [ -n "$nsys_bin" ]; then
    for kind in fused fused_cublas; do
        (kind_env "$kind"; timeout 150 "$nsys_bin" profile -o "$out/nsys_$kind" --force-overwrite true \
            ./.bin/speed "${args[@]}" --train-steps 12 --out "$out/nsys_$kind.json" >> "$out/nsys.log" 2>&1)
        "$nsys_bin" stats --report cuda_gpu_kern_sum,cuda_api_sum --format csv \
            "$out/nsys_$kind.nsys-rep" > "$out/nsys_${kind}_stats.csv" 2>> "$out/nsys.log"
        echo "nsys $kind exit: $?"
        rm -f "$out/nsys_$kind.nsys-rep" "$out/nsys_$kind.sqlite"
    done
else
    echo "no nsys on this machine" | tee -a "$out/profile.txt"
fi
for b in ${SCAN_BATCHES:-}; do
    (kind_env fused_cublas; timeout 120 ./.bin/speed --preset tiny --device cuda --batches none \
        --train-batch "$b" --train-seq 37 --train-steps 20 --kernel-cache "$kernels" \
        --out "$out/scan_burn_$b.json" 2>> "$out/scan.log")
    timeout 120 python3 scripts/hf_mllama_timing.py --config "$out/tiny_config.json" \
        --mode train --batch "$b" --seq-len 37 --steps 20 --warmup 5 --tiles 1 --clip-grad-norm 1.0 \
        > "$out/scan_torch_$b.json" 2>> "$out/scan.log"
    python3 - "$out" "$b" <<'PY' | tee -a "$out/table.txt"
import os, sys
sys.path.insert(0, "scripts")
from speed_table import load
d, b = sys.argv[1], sys.argv[2]
burn = ((load(os.path.join(d, f"scan_burn_{b}.json")) or {}).get("train") or {}).get("step_ms")
torch = ((load(os.path.join(d, f"scan_torch_{b}.json")) or {}).get("train") or {}).get("step_s")
if burn and torch:
    print(f"batch {b} x 37: fused_cublas {burn:.1f} ms, transformers (clipped) {torch * 1e3:.1f} ms: "
          f"{burn / (torch * 1e3):.2f}x its time")
else:
    print(f"batch {b} x 37: no result (burn {burn}, transformers {torch})")
PY
done
tar cJf "$final/optimizer_raw.tar.xz" -C /tmp optimizer_raw
cp "$out/table.txt" "$final/optimizer_table.txt"
cp "$out/losses.txt" "$final/optimizer_losses.txt"
cp "$out/profile.txt" "$final/optimizer_profile.txt"
