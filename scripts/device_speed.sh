#!/usr/bin/env bash
# On the GPU machine, in one run: the burn model's speed (the carried `speed` example, built with
# --features cuda) next to transformers + torch with the same config.json, batch and lengths,
#   1. `tiny`: decode at batch 16 and 64 with both placements, a training step at 64 x 37;
#   2. `tiny` again in a fresh process with the kernel cache the first one filled (warm-up);
#   3. the Llama-3.2-11B-Vision shape (random bf16 weights): generate at batch 16 and 64, one
#      560 px tile, 64-token prompt, 64 new tokens, T 0.6, top-k 50, top-p 0.9;
#   4. (`fusion`, with .bin/speed_fusion.xz carried: the same example built with --features
#      judgeflow/fusion) `tiny` again with fusion, on the same seeds and batches as 1, and
#      scripts/fusion_check.py's comparison of the two (losses, greedy tokens).
# transformers' training step is timed twice: as configured, and with the global gradient norm
# clipped to 1.0 before AdamW, as judgeflow's step does.
# The 11B runs use the matmul strategies, the vision encoder's attention kernel and the reduction routine that the
# sessions' measurements chose (notes/gpu.md): JUDGEFLOW_MATMUL, JUDGEFLOW_MATMUL_SMALL_M and
# JUDGEFLOW_ATTENTION, JUDGEFLOW_REDUCE, overridable from the environment. BURN_11B_LIMIT (s) bounds that run;
# BATCHES_11B (default "16 64") picks its batch sizes, for both sides.
# Raw outputs (JSON lines, logs) go to one archive, $OUT/speed_raw.tar.gz; the table is printed
# last and saved as $OUT/speed_table.txt.
#
#   run: bash scripts/device_speed.sh [tiny|fusion|11b|11b_burn|11b_torch|all] ...
#        (binary carried as .bin/speed.xz; several modes in one call run in the order
#        tiny, fusion, 11b, whatever order they are given in)
set -uo pipefail
modes="${*:-all}"
has() { case " $modes " in *" $1 "*|*" all "*) return 0;; *) return 1;; esac; }
final="${OUT:-/tmp/out}"
out=/tmp/speed_raw
# KEEP_RAW=1: add to the raw outputs of an earlier call on the same machine (e.g. `11b_burn`,
# then `11b_torch` in a second call, so that neither passes the 10-minute limit of one call).
[ "${KEEP_RAW:-0}" = 1 ] || rm -rf "$out"
mkdir -p "$out" "$final"
repo="$PWD"
bin=./.bin/speed
bash scripts/unpack_bin.sh speed || exit 1
kernels=/tmp/judgeflow-kernels
# libcublas on the loader's path, for JUDGEFLOW_MATMUL*=cublas.
. scripts/cublas_path.sh
# The training step with the fused optimizer (the default again since session 25, named so that
# an environment that sets another does not change what is timed); JUDGEFLOW_OPTIMIZER=burn
# times burn's AdamW.
export JUDGEFLOW_OPTIMIZER="${JUDGEFLOW_OPTIMIZER:-fused}"
. scripts/tiny_reference.sh
# KEEP_KERNELS=1: start from the cache already there (e.g. unpacked from an earlier run).
[ "${KEEP_KERNELS:-0}" = 1 ] || rm -rf "$kernels"
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,power.draw,temperature.gpu,memory.used --format=csv | tee "$out/gpu.txt"

# Peak GPU memory of a command, sampled every 100 ms.
peak() {
    local log="$1"; shift
    nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -lms 100 > "$log.mem" &
    local sampler=$!
    "$@"
    local rc=$?
    kill "$sampler" 2>/dev/null; wait "$sampler" 2>/dev/null
    echo "peak_mem_mib $(sort -n "$log.mem" | tail -1)" | tee -a "$log"
    return $rc
}

tiny_args=(--preset tiny --device cuda --batches 16,64 --prompt-len 48 --new-tokens 32
    --train-batch 64 --train-seq 37 --train-steps 30)
if has tiny; then
    peak "$out/tiny_burn.log" timeout 240 "$bin" "${tiny_args[@]}" \
        --write-config "$out/tiny_config.json" --kernel-cache "$kernels" --out "$out/tiny_burn.json" \
        2>> "$out/tiny_burn.log"
    echo "burn tiny exit: $?"
    # The same process again: every kernel is in the cache now.
    timeout 120 "$bin" --preset tiny --device cuda --batches 16,64 --placements device \
        --prompt-len 48 --new-tokens 32 --train-steps 0 --repeats 1 --kernel-cache "$kernels" \
        --out "$out/tiny_burn_second.json" 2>> "$out/tiny_burn_second.log"
    echo "burn tiny second process exit: $?"
    tiny_reference "$out"
    timeout 150 python3 scripts/hf_mllama_timing.py --config "$out/tiny_config.json" \
        --mode train --batch 64 --seq-len 37 --steps 30 --warmup 5 --tiles 1 --clip-grad-norm 1.0 \
        > "$out/tiny_torch_clip.json" 2>> "$out/torch.log"
    echo "torch tiny training with clipping exit: $?"
fi

if has fusion && { [ -f .bin/speed_fusion.xz ] || [ "$modes" != all ]; }; then
    bash scripts/unpack_bin.sh speed_fusion || exit 1
    # Its own kernel cache: fused kernels are other kernels.
    peak "$out/tiny_fusion.log" timeout 300 ./.bin/speed_fusion "${tiny_args[@]}" \
        --kernel-cache /tmp/judgeflow-kernels-fusion --out "$out/tiny_fusion.json" \
        2>> "$out/tiny_fusion.log"
    echo "burn tiny fused exit: $?"
    python3 scripts/fusion_check.py "$out/tiny_burn.json" "$out/tiny_fusion.json" \
        | tee "$out/fusion_check.txt"
fi

if has 11b || has 11b_burn || has 11b_torch; then
    batches_11b="${BATCHES_11B:-16 64}"
    export JUDGEFLOW_MATMUL="${JUDGEFLOW_MATMUL-cublas}"
    export JUDGEFLOW_MATMUL_SMALL_M="${JUDGEFLOW_MATMUL_SMALL_M-cublas}"
    export JUDGEFLOW_ATTENTION="${JUDGEFLOW_ATTENTION-flash_triton}"
    export JUDGEFLOW_REDUCE="${JUDGEFLOW_REDUCE-auto}"
    echo "11b: JUDGEFLOW_MATMUL=$JUDGEFLOW_MATMUL JUDGEFLOW_MATMUL_SMALL_M=$JUDGEFLOW_MATMUL_SMALL_M JUDGEFLOW_ATTENTION=$JUDGEFLOW_ATTENTION JUDGEFLOW_REDUCE=$JUDGEFLOW_REDUCE" | tee "$out/11b_env.txt"
    # The published config (the one behind the issue's reference figures), for both sides.
    cp model/tests/fixtures/llama32_11b_vision_config.json "$out/11b_config.json"
    if has 11b || has 11b_burn; then
        peak "$out/11b_burn.log" timeout "${BURN_11B_LIMIT:-420}" "$bin" --config "$out/11b_config.json" \
            --device cuda --tiles 1 --batches "$(echo $batches_11b | tr ' ' ',')" --placements device \
            --prompt-len 64 --new-tokens 64 --repeats 1 --train-steps 0 --kernel-cache "$kernels" \
            --out "$out/11b_burn.json" 2>> "$out/11b_burn.log"
        echo "burn 11b exit: $?"
    fi
    if has 11b || has 11b_torch; then
        # On an 80 GB card transformers' batch 64 runs out of memory with PyTorch's default
        # allocator (session 15: a 5.86 GiB allocation at 77.4 GiB) and fits with expandable
        # segments (76.3 GiB).
        export PYTORCH_CUDA_ALLOC_CONF="${PYTORCH_CUDA_ALLOC_CONF-expandable_segments:True}"
        for b in $batches_11b; do
            peak "$out/11b_torch_$b.log" timeout 200 python3 scripts/hf_mllama_timing.py \
                --config "$out/11b_config.json" --mode generate --tiles 1 --gen-batch $b \
                --prompt-len 64 --new-tokens 64 --gen-repeats 1 \
                > "$out/11b_torch_$b.json" 2>> "$out/11b_torch_$b.log"
            echo "torch 11b batch $b exit: $?"
        done
    fi
fi

cd "$repo"
python3 scripts/speed_table.py "$out" | tee "$final/speed_table.txt"
tar czf "$final/speed_raw.tar.gz" -C /tmp speed_raw
