#!/usr/bin/env bash
# On the GPU machine: run (or resume) a pipeline with the carried CUDA build of judgeflow, then
# write its report (with the run's timeline), its run trace and every evaluation's and filter's
# tables to $OUT.
#
#   run: bash scripts/device_pipeline.sh pipelines/self_train.toml [SECONDS [--set node.param=v ...]]
# The cache (.judgeflow, git-ignored) survives between calls while the machine stays warm, so a
# run cut short by the time limit resumes where it stopped.
# BIN_NAME=judgeflow_fusion runs .bin/judgeflow_fusion.xz instead (the build with burn's fusion).
set -uo pipefail
pipeline="$1"
limit="${2:-540}"
shift $(( $# < 2 ? $# : 2 ))
sets=("$@")
out="${OUT:-/tmp/out}"
bin_name="${BIN_NAME:-judgeflow}"
bin="./.bin/$bin_name"
bash scripts/unpack_bin.sh "$bin_name" || exit 1
nvidia-smi --query-gpu=name,clocks.sm,power.draw,temperature.gpu --format=csv,noheader | tee "$out/gpu.txt"
RUST_LOG=info,cubecl=warn timeout "$limit" "$bin" run "$pipeline" "${sets[@]}" > "$out/run.txt" 2> "$out/run.log"
echo "run exit: $?"
cat "$out/run.txt"
# The run's trace (one JSON line per node); a run stopped by the time limit prints no path but
# leaves the trace of the nodes it finished: take the pipeline's newest.
name=$(sed -n 's/^name = "\(.*\)"/\1/p' "$pipeline" | head -1)
trace=$(sed -n 's/^trace: //p' "$out/run.txt")
[ -n "$trace" ] || trace=$(ls -1 ".judgeflow/traces/$name/"*.jsonl 2>/dev/null | sort | tail -1)
[ -n "$trace" ] && cp "$trace" "$out/trace.jsonl" && echo "trace: $trace -> $out/trace.jsonl"
# Every trace of the pipeline: a run resumed over several calls has one per call (the later
# ones list the earlier calls' nodes as cache hits).
mkdir -p "$out/traces" && cp ".judgeflow/traces/$name/"*.jsonl "$out/traces/" 2>/dev/null
"$bin" report "$pipeline" "${sets[@]}" --out "$out/report" | tail -3
"$bin" compare "$pipeline" "${sets[@]}" > "$out/compare.txt" 2>&1 && cat "$out/compare.txt"
# Every fresh evaluate/filter node's table, as text.
"$bin" plan "$pipeline" "${sets[@]}" --json | python3 -c "
import json, sys
for n in json.load(sys.stdin):
    if n['op'] in ('evaluate', 'filter') and n['status']['state'] == 'fresh':
        print(n['node'], 'stats' if n['op'] == 'filter' else 'metrics')
" | while read -r node port; do
    "$bin" show "$pipeline" "${sets[@]}" "$node" --port "$port" --rows 12 >> "$out/tables.txt" 2>&1
done
grep -E "evaluated|filtered|voted|corrupted|judged|trained|ERROR|failed" "$out/run.log" | grep -v "Task failed" | sed 's/\x1b\[[0-9;]*m//g' | cut -c28- | tail -40
tail -c 300000 "$out/run.log" > "$out/run.tail.log"
# Progress lines of long nodes (rate and ETA), for the record.
grep -E "/s, eta" "$out/run.log" | sed 's/\x1b\[[0-9;]*m//g' | tail -20 > "$out/progress.txt"
