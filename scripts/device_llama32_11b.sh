#!/usr/bin/env bash
# On the GPU machine: issue 11's full-size wiring runs, on an 11B-shaped checkpoint made here.
#   1. `device_llama32_11b.py checkpoint --chain` (random bf16 weights of the real config, saved
#      by transformers in 5 GB shards, Llama 3.2's vocabulary and chat template; the output
#      projections zeroed and the LM head set so that the model writes a verdict line, A or B
#      at the sampler's choice: see that script) and `data` (pictures of several sizes, prompts,
#      VL-RewardBench parquet and Multimodal RewardBench JSON in their releases' schemas);
#   2. `judgeflow check` then `judgeflow judge --device cuda` on one pair, timed;
#   3. `pipelines/llama32_vision.toml`, one iteration (`eval_vl@1 eval_mm@1` and the base
#      evaluations) at the pipeline's own settings, with `judge.samples=4` so that a judge
#      choosing A or B at random keeps some pairs in both orders; then its trace (time per node).
# Everything lands in $RAW (default /tmp/llama11b_raw), copied to $OUT as llama11b_raw.tar.gz
# and llama11b_summary.txt; a run started with setsid by one device call can be collected by
# the next with `bash scripts/device_llama32_11b.sh collect`.
#
#   run: bash scripts/device_llama32_11b.sh [SECONDS | collect]   (binary: .bin/judgeflow.xz)
#   env: EXTRA_SETS (more --set overrides), JUDGE=0 (skip step 2's judge)
set -uo pipefail
raw="${RAW:-/tmp/llama11b_raw}"
final="${OUT:-/tmp/out}"
collect() {
    mkdir -p "$final"
    cp "$raw/summary.txt" "$final/llama11b_summary.txt" 2>/dev/null
    tar czf "$final/llama11b_raw.tar.gz" -C "$(dirname "$raw")" "$(basename "$raw")"
}
if [ "${1:-}" = collect ]; then collect; exit 0; fi
limit="${1:-900}"
rm -rf "$raw" && mkdir -p "$raw"
bash scripts/unpack_bin.sh judgeflow || exit 1
# A copy outside the repository: a later device call that carries `.bin` replaces the folder,
# and a run left going in the background (session 14) lost its binary before its `show`s.
cp .bin/judgeflow /tmp/judgeflow_11b || exit 1
bin=/tmp/judgeflow_11b
ck=/tmp/llama11b data=/tmp/llama11b_data
log() { echo "$(date +%T) $*" | tee -a "$raw/summary.txt"; }

log "making the checkpoint"
python3 scripts/device_llama32_11b.py checkpoint "$ck" --chain > "$raw/checkpoint.json" 2> "$raw/checkpoint.log"
log "checkpoint exit $?: $(cat "$raw/checkpoint.json")"
ls -la "$ck" > "$raw/checkpoint_files.txt"
python3 scripts/device_llama32_11b.py data "$data" > "$raw/data.json" 2> "$raw/data.log"
log "data exit $?: $(cat "$raw/data.json")"

sets=(--set "base.path=$ck" --set "prompts.path=$data/prompts.jsonl"
    --set "vlrewardbench.path=$data/vl_rewardbench/test-00000-of-00001.parquet"
    --set "mmrewardbench.path=$data/all_data.json" --set judge.samples=4)
# More overrides from the caller, e.g. EXTRA_SETS="--set eval_vl.samples=1" to fit a device call.
# shellcheck disable=SC2206
sets+=(${EXTRA_SETS:-})
targets=(eval_base_vl eval_base_mm eval_vl@1 eval_mm@1)
"$bin" check pipelines/llama32_vision.toml "${sets[@]}" > "$raw/check.txt" 2>&1
log "check exit $?: $(tail -1 "$raw/check.txt")"

start=$(date +%s)
# JUDGE=0 skips the one-pair judge (run already; it costs a minute of loading).
[ "${JUDGE:-1}" = 0 ] || timeout 300 "$bin" judge --model "$ck" --image "$data/images/p1.png" --device cuda \
    --question "What is in this picture?" --answer-1 "Three circles." --answer-2 "A dog." \
    --temperature 0.6 --json > "$raw/judge.json" 2> "$raw/judge.log"
log "judge exit $? in $(( $(date +%s) - start )) s: $(head -c 1500 "$raw/judge.json")"

start=$(date +%s)
RUST_LOG=info,cubecl=warn timeout "$limit" "$bin" run pipelines/llama32_vision.toml \
    "${targets[@]}" "${sets[@]}" > "$raw/run.txt" 2> "$raw/run.log"
log "pipeline exit $? in $(( $(date +%s) - start )) s"
tail -25 "$raw/run.txt" >> "$raw/summary.txt"
cp .judgeflow/traces/llama32_vision/*.jsonl "$raw/" 2>/dev/null
for node in filter@1 eval_base_vl eval_vl@1 eval_mm@1; do
    port=metrics; [ "$node" = filter@1 ] && port=stats
    "$bin" show pipelines/llama32_vision.toml "$node" --port "$port" "${sets[@]}" --rows 12 \
        >> "$raw/tables.txt" 2>&1
done
"$bin" show pipelines/llama32_vision.toml train@1 --port model "${sets[@]}" >> "$raw/tables.txt" 2>&1
"$bin" show pipelines/llama32_vision.toml judge@1 "${sets[@]}" --rows 4 >> "$raw/tables.txt" 2>&1
log "done"
collect
