#!/usr/bin/env bash
# On the GPU machine: the science grid of pipelines/self_train.toml — seeds x variants — with
# the carried CUDA build of judgeflow. Seeds run as parallel processes (the tiny judge leaves
# the H200 mostly idle; one process per seed keeps it busier), each working through the
# variants in priority order:
#   main     the method
#   control  base judge pretrained with random verdicts (pretrain.judge_verdicts = random);
#            with CONTROL_BASE=DIR (a pipeline whose base is a carried model directory, e.g.
#            judge_lab_self_train.toml) the control is that directory: --set base.path=DIR
#   control_rr  base judge pretrained with random verdicts and random claim marks
#            (pretrain.judge_verdicts = random_reasoning): a base that neither checks a claim nor
#            decides, the issue's "random-verdict bootstrap" (its reasoning explains nothing);
#            `control` keeps the marks right, so its reasoning still checks the answers
#   nofilter every parsed judgement kept (filter.keep = all)
#   oneorder one random presentation order (judge.orders = random)
#   oracle   gold decides the closed-ended pairs (vote.method = oracle)
#   anywhere hallucinated objects added first as often as last (corrupt.hallucination_place)
#   noreason no closed-ended questions asked with their reasoning in the loop (the prompt
#            world's reasoning_examples = 0, sample_reasoning.limit = 0), the same base (for
#            judge_lab_self_train.toml, which has them on; self_train.toml has them off)
#   reason   self_train.toml with them on: the pretraining corpus's and the prompt world's
#            reasoning_examples = 2, sample_reasoning.limit = 600 (a base of its own)
#   reason_judged  `reason`, and the corpus's judge-format rows judge those justified answers
#            too, restated by their final answer (world.reasoning_judged = true,
#            world.judge_reasoning = compare_final; session 24's CPU base; a base of its own)
#   reason_counts  as reason_judged, with one more judge-format row a scene over the justified
#            answers alone (world.reasoning_judge_examples = 1: otherwise ~2% of the judge rows
#            are theirs), each restated by the counts it claims, marked against the image, then
#            its final answer (world.judge_reasoning = compare_counts; session 30; own base)
#   reason_final   reason_counts with the final answer alone (compare_final; own base)
# The cache (.judgeflow, git-ignored) survives between calls while the machine stays warm, so
# a call cut short by its time limit resumes where it stopped: call again with the same seeds.
# Every seed and variant but `control` shares one pretraining (self_train.toml pins its seed),
# and concurrent processes wait on the cache's per-entry lock rather than train it twice; when
# `control` is among the variants its pretraining starts at once beside the main one.
# Each finished variant's small frames (metrics, per-item verdicts, perception, filter stats,
# judge and vote summaries; no images) go to $OUT/science_raw.tar.gz via science_collect.py,
# and each variant's `judgeflow report` over the seeds (figures with intervals, chance and the
# blind judge; ~2 MB a variant) to report_<variant>/ in it.
#
#   run: bash scripts/device_science.sh SECONDS "1 2 3" [variants...]   (binary: .bin/judgeflow.xz)
#   EXTRA_SETS="--set pretrain.patch_probe=1.0" adds overrides to every variant;
#   JUDGEFLOW_MATMUL=cublas JUDGEFLOW_MATMUL_SMALL_M=cublas: cuBLAS products (the faster step);
#   ITERATIONS (default 5; self_train.toml's `times` is 7) is how many iterations are collected;
#   PARALLEL=1 runs every variant of a seed as its own process at once (one seed's whole grid
#   in one go: the variants wait on the shared pretraining's lock, then share the GPU);
#   PIPELINE (default pipelines/self_train.toml) runs another file the same way (its `[sweep]`
#   dropped: the seeds are this script's processes); scripts/device_lab_self_train.sh uses it;
#   OWN_BASE=1 gives every seed its own base: `--set world.seed=S --set pretrain.seed=S` for
#   seed S (self_train.toml pins both to 3; needs a binary from session 28 on, which takes a
#   node's seed from `--set`), so the grid's seeds vary the pretraining too;
#   RAW (default /tmp/science_raw) names the raw folder and the archive ($OUT/$(basename RAW).tar.gz),
#   so that two grids can run side by side in one call, each with its own JUDGEFLOW_CACHE
#   (e.g. one per JUDGEFLOW_OPTIMIZER: binaries before session 26 left the switches out of the
#   cache key; since then the model nodes' keys take them, and separate caches still keep the
#   grids' traces and locks apart).
set -uo pipefail
limit="${1:-500}"
seeds="${2:-1 2 3}"
shift $(( $# < 2 ? $# : 2 ))
variants=("$@")
[ ${#variants[@]} -gt 0 ] || variants=(main control nofilter oneorder oracle)
out="${OUT:-/tmp/out}"
raw="${RAW:-/tmp/science_raw}"
mkdir -p "$raw"
bin=./.bin/judgeflow
pipeline="${PIPELINE:-pipelines/self_train.toml}"
# One pipeline file per seed: its own name (so runs and reports stay apart) and seed, no sweep.
seeded() { # SEED OUT
    sed -e "s/^name = \"\(.*\)\"/name = \"\1_s$1\"/" -e "s/^seed = 1$/seed = $1/" \
        -e '/^\[sweep\]/,$d' "$pipeline" > "$2"
}
bash scripts/unpack_bin.sh judgeflow || exit 1
# libcublas on the loader's path, for JUDGEFLOW_MATMUL*=cublas (falls back to cubek without it).
. scripts/cublas_path.sh
nvidia-smi --query-gpu=name,clocks.sm,power.draw,temperature.gpu,memory.used --format=csv,noheader | tee "$raw/gpu.txt"

sets_for() { # VARIANT [SEED]
    echo "${EXTRA_SETS:-}"
    if [ "${OWN_BASE:-0}" = 1 ] && [ -n "${2:-}" ]; then
        echo "--set world.seed=$2 --set pretrain.seed=$2"
    fi
    case "$1" in
        main) ;;
        control) if [ -n "${CONTROL_BASE:-}" ]; then
                echo "--set base.path=$(cd "$CONTROL_BASE" && pwd)"
            else
                echo "--set pretrain.judge_verdicts=random"
            fi ;;
        control_rr) echo "--set pretrain.judge_verdicts=random_reasoning" ;;
        nofilter) echo "--set filter.keep=all" ;;
        oneorder) echo "--set judge.orders=random" ;;
        oracle) echo "--set vote.method=oracle --set vote_reasoning.method=oracle" ;;
        anywhere) echo "--set corrupt.hallucination_place=anywhere" ;;
        # The prompt world is `prompts` in self_train.toml, `world` in judge_lab_self_train.toml.
        reason) echo "--set world.reasoning_examples=2 --set prompts.reasoning_examples=2 --set sample_reasoning.limit=600" ;;
        reason_judged) echo "--set world.reasoning_examples=2 --set prompts.reasoning_examples=2 --set sample_reasoning.limit=600 --set world.reasoning_judged=true --set world.judge_reasoning=compare_final" ;;
        reason_counts) echo "--set world.reasoning_examples=2 --set prompts.reasoning_examples=2 --set sample_reasoning.limit=600 --set world.reasoning_judged=true --set world.judge_reasoning=compare_counts --set world.reasoning_judge_examples=1" ;;
        reason_final) echo "--set world.reasoning_examples=2 --set prompts.reasoning_examples=2 --set sample_reasoning.limit=600 --set world.reasoning_judged=true --set world.judge_reasoning=compare_final --set world.reasoning_judge_examples=1" ;;
        noreason) if [ "${REASONING_WORLD:-prompts}" = world ]; then
                echo "--set world.reasoning_examples=0 --set sample_reasoning.limit=0"
            else
                echo "--set prompts.reasoning_examples=0 --set sample_reasoning.limit=0"
            fi ;;
    esac
}

deadline=$(( $(date +%s) + limit ))
run_one() { # SEED VARIANT: one run and its collection; exit status the run's
    local seed="$1" v="$2"
    local p="/tmp/$(basename "$raw")_s$seed.toml"
    local left=$(( deadline - $(date +%s) ))
    [ "$left" -gt 20 ] || { echo "seed $seed: no time left for $v"; return 124; }
    # shellcheck disable=SC2046
    # One kernel cache a process (parallel writers to one cache directory are not safe).
    local kernels="/tmp/kernels_$(basename "$raw")_s$seed"
    [ "${PARALLEL:-0}" = 1 ] && kernels+="_$v"
    JUDGEFLOW_KERNEL_CACHE="$kernels" RUST_LOG=info,cubecl=warn \
        timeout "$left" "$bin" run "$p" $(sets_for "$v" "$seed") \
        > "$raw/run_s${seed}_$v.txt" 2> "$raw/run_s${seed}_$v.log"
    local rc=$?
    echo "seed $seed $v: exit $rc ($(tail -2 "$raw/run_s${seed}_$v.txt" | head -1))"
    # What finished is collected even when the time ran out (the iterations done so far).
    # shellcheck disable=SC2046
    python3 scripts/science_collect.py --bin "$bin" --pipeline "$p" --label "s${seed}_$v" \
        --out "$raw" --iterations "${ITERATIONS:-5}" $(sets_for "$v" "$seed") >> "$raw/collect.log" 2>&1 \
        || echo "seed $seed $v: collect failed (see collect.log)"
    return $rc
}
run_seed() {
    local seed="$1"
    seeded "$seed" "/tmp/$(basename "$raw")_s$seed.toml"
    if [ "${PARALLEL:-0}" = 1 ]; then
        # Every variant its own process: they wait on the shared nodes' cache locks (the
        # pretraining is trained once) and then share the GPU.
        for v in "${variants[@]}"; do run_one "$seed" "$v" & done
        wait
        return
    fi
    for v in "${variants[@]}"; do
        run_one "$seed" "$v" || break
    done
}

first_seed="${seeds%% *}"
if [[ " ${variants[*]} " == *" control "* ]] && [ -z "${CONTROL_BASE:-}" ]; then
    p="/tmp/science_control_base.toml"
    seeded "$first_seed" "$p"
    # shellcheck disable=SC2046
    JUDGEFLOW_KERNEL_CACHE="/tmp/kernels_control" RUST_LOG=info,cubecl=warn \
        timeout $(( deadline - $(date +%s) )) "$bin" run "$p" pretrain $(sets_for control "$first_seed") \
        > "$raw/control_pretrain.txt" 2> "$raw/control_pretrain.log" &
fi
for s in $seeds; do
    run_seed "$s" &
done
wait
nvidia-smi --query-gpu=memory.used --format=csv,noheader >> "$raw/gpu.txt"
# The report's figures over the seeds, a variant each (#9 asks for the figures from the report):
# the pipeline with the seeds as its sweep finds the per-seed runs' results, since the cache is
# addressed by content and not by pipeline name. Not with OWN_BASE (its sets differ by seed).
if [ "${OWN_BASE:-0}" != 1 ]; then
    sweep="/tmp/$(basename "$raw")_sweep.toml"
    { sed -e '/^\[sweep\]/,$d' "$pipeline"; printf '\n[sweep]\n"pipeline.seed" = [%s]\n' "${seeds// /, }"; } > "$sweep"
    for v in "${variants[@]}"; do
        # shellcheck disable=SC2046
        "$bin" report "$sweep" $(sets_for "$v") --out "$raw/report_$v" > "$raw/report_$v.txt" 2>&1 \
            || echo "report $v failed (see report_$v.txt)"
    done
fi
# Every node's wall time, cache hit or miss, per run (the grid's timing comes from these).
cp -r "${JUDGEFLOW_CACHE:-.judgeflow}/traces" "$raw/traces" 2>/dev/null || true
tar -czf "$out/$(basename "$raw").tar.gz" -C "$(dirname "$raw")" "$(basename "$raw")"
ls -la "$out"
