#!/usr/bin/env bash
# On the GPU machine, in one call: `tiny`'s training step (64 x 37), which both host threads
# saturate (notes/gpu.md, session 20), with and without judgeflow's norm, attention-softmax and
# RoPE nodes, and where the host's time goes. The `speed` binary must be built with `--features judgeflow-model/pprof` (and, for
# inlined frames, release line tables: CARGO_PROFILE_RELEASE_DEBUG=line-tables-only). Variants:
#   base          burn's composites for the norms, the attention softmax and RoPE
#                 (JUDGEFLOW_NORM=burn JUDGEFLOW_SCORE_SOFTMAX=burn JUDGEFLOW_ROPE=burn):
#                 session 20's defaults; cubek's products
#   fused         the three as one node each (model/src/norms.rs, attention_softmax.rs,
#                 rope.rs): the defaults on CUDA now
#   base_cublas, fused_cublas   the same with every product through cuBLAS
#   emulated      fused, with the optimizer step as tensor operations (the optimizer kernels'
#                 reference)
# First `speed --norm-check` (the norm and softmax kernels, and burn's norm composites, on the
# device against the CPU's f32 composites: outputs and gradients). Each variant then times 30
# steps in two processes (the first of each compiles its kernels into a shared cache during
# its two untimed steps); fused_cublas and base_cublas then run STEPS (default 150) steps
# under the sampling profiler (JUDGEFLOW_PPROF: SIGPROF at 999 Hz of CPU time, every thread).
# transformers' clipped step in the same call; loss curves compared (scripts/fusion_check.py
# --losses-only, bound 1e-3): fused against emulated (the optimizer kernels), fused against
# base (the kernels' f32 arithmetic against burn's bf16 chains: informative).
# Out: $OUT/host_profile.txt (checks, step times, each profile summarised by
# scripts/profile_collapsed.py), $OUT/host_profile_raw.tar.xz (JSON, logs, collapsed stacks).
#
#   run: bash scripts/device_host_profile.sh      (binary carried as .bin/speed.xz)
set -uo pipefail
final="${OUT:-/tmp/out}"
out=/tmp/host_profile_raw
steps="${STEPS:-150}"
rm -rf "$out" && mkdir -p "$out" "$final"
bash scripts/unpack_bin.sh speed || exit 1
. scripts/cublas_path.sh
kernels=/tmp/judgeflow-kernels-host-profile
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,power.draw,temperature.gpu,memory.used --format=csv | tee "$out/gpu.txt"
args=(--preset tiny --device cuda --batches none --train-batch 64 --train-seq 37
    --kernel-cache "$kernels")
kind_env() {
    unset JUDGEFLOW_MATMUL JUDGEFLOW_MATMUL_SMALL_M JUDGEFLOW_OPTIMIZER JUDGEFLOW_NORM JUDGEFLOW_SCORE_SOFTMAX JUDGEFLOW_ROPE
    # The fused optimizer (the default; named so that the environment cannot change it).
    export JUDGEFLOW_OPTIMIZER=fused
    case "$1" in
        base) export JUDGEFLOW_NORM=burn JUDGEFLOW_SCORE_SOFTMAX=burn JUDGEFLOW_ROPE=burn ;;
        fused) ;;
        base_cublas) export JUDGEFLOW_NORM=burn JUDGEFLOW_SCORE_SOFTMAX=burn JUDGEFLOW_ROPE=burn JUDGEFLOW_MATMUL=cublas JUDGEFLOW_MATMUL_SMALL_M=cublas ;;
        fused_cublas) export JUDGEFLOW_MATMUL=cublas JUDGEFLOW_MATMUL_SMALL_M=cublas ;;
        emulated) export JUDGEFLOW_OPTIMIZER=emulated ;;
    esac
}
timeout 120 ./.bin/speed --preset tiny --device cuda --batches none --norm-check \
    --kernel-cache "$kernels" > "$out/norm_check.json" 2> "$out/norm_check.log"
echo "norm check exit: $?"
grep "check" "$out/norm_check.log"
kinds="base fused base_cublas fused_cublas emulated"
for round in 1 2; do
    for kind in $kinds; do
        [ "$kind" = emulated ] && [ "$round" = 2 ] && continue
        (kind_env "$kind"; timeout 150 ./.bin/speed "${args[@]}" --train-steps 30 \
            --write-config "$out/tiny_config.json" --out "$out/${kind}_$round.json" 2>> "$out/$kind.log")
        echo "$kind round $round exit: $?"
    done
done
for kind in fused_cublas base_cublas; do
    (kind_env "$kind"; JUDGEFLOW_PPROF="$out/profile_$kind.txt" timeout 200 ./.bin/speed "${args[@]}" \
        --train-steps "$steps" --out "$out/${kind}_profiled.json" 2>> "$out/$kind.log")
    echo "$kind profiled exit: $?"
done
timeout 150 python3 scripts/hf_mllama_timing.py --config "$out/tiny_config.json" \
    --mode train --batch 64 --seq-len 37 --steps 30 --warmup 5 --tiles 1 --clip-grad-norm 1.0 \
    > "$out/torch_clip.json" 2>> "$out/torch.log"
echo "torch clipped exit: $?"
{
    grep "check" "$out/norm_check.log"
    python3 - "$out" $kinds <<'PY'
import os, sys
sys.path.insert(0, "scripts")
from speed_table import load
d, kinds = sys.argv[1], sys.argv[2:]
torch = ((load(os.path.join(d, "torch_clip.json")) or {}).get("train") or {}).get("step_s")
t = torch * 1e3 if torch else None
print(f"transformers (clipped) step: {t:.1f} ms" if t else "transformers: no result")
names = [f"{k}_{r}" for k in kinds for r in (1, 2)] + ["fused_cublas_profiled", "base_cublas_profiled"]
for name in names:
    tr = ((load(os.path.join(d, name + ".json")) or {}).get("train")) or {}
    s = tr.get("step_ms")
    if s is None:
        if not name.startswith("emulated_2"):
            print(f"{name:22s} no result")
        continue
    ratio = f" ({s / t:.2f}x transformers' time)" if t else ""
    print(f"{name:22s} step {s:6.1f} ms{ratio}, {tr.get('steps')} steps, final loss {tr.get('final_loss'):.6f}")
PY
    echo "fused against emulated (the optimizer kernels against their tensor-operation form):"
    python3 scripts/fusion_check.py --losses-only "$out/emulated_1.json" "$out/fused_1.json"
    echo "fused against base (the norm, softmax and RoPE kernels against burn's composites):"
    python3 scripts/fusion_check.py --losses-only "$out/base_1.json" "$out/fused_1.json"
    for kind in fused_cublas base_cublas; do
        [ -f "$out/profile_$kind.txt" ] || { echo "no profile for $kind"; continue; }
        echo
        echo "##### sampling profile, $kind, $steps steps"
        python3 scripts/profile_collapsed.py "$out/profile_$kind.txt" --top 40 --frame "train::train"
    done
} > "$final/host_profile.txt" 2>&1
head -40 "$final/host_profile.txt"
tar cJf "$final/host_profile_raw.tar.xz" -C /tmp host_profile_raw
ls -la "$final"
