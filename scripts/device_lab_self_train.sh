#!/usr/bin/env bash
# On the GPU machine: pipelines/judge_lab_self_train.toml on the GPU from a carried base model
# directory, with the CPU lab's settings of sessions 18-19 (notes/science.md: three of an
# order's four judgements must agree, 600 open and 600 closed prompts an iteration from a world
# of 3,000 scenes, five iterations) and a 1,500-item bench (500 held-out scenes), seeds as
# parallel processes, through scripts/device_science.sh (its collection and tarball).
# Variants: main (the method), nofilter, oneorder, oracle, noreason, and control when
# CONTROL_BASE names the control's base directory (e.g. pipelines/bases/judge_lab_b6s3_random:
# the same corpus and pretraining with random verdicts).
#
#   run: bash scripts/device_lab_self_train.sh SECONDS "1 2 3" BASE_DIR [variants...]
#        (TIMES=3: three iterations instead of five; 600 reasoning prompts an iteration: a base
#        without reasoning rows runs `noreason` alone)
#        (binary: .bin/judgeflow.xz; BASE_DIR: a model directory carried with the call, e.g.
#        `judgeflow export pipelines/judge_lab.toml pretrain.model --to .bin/base ...` here)
set -uo pipefail
limit="$1" seeds="$2" base="$3"
shift 3
[ -f "$base/config.json" ] || { echo "device_lab_self_train: $base is not a model directory" >&2; exit 1; }
base="$(cd "$base" && pwd)"
gpu=""
for node in eval_base eval_base_blind sample_open sample_closed sample_reasoning judge train evaluate \
    evaluate_blind; do
    gpu+=" --set $node.device=cuda"
done
for node in eval_base eval_base_blind judge evaluate evaluate_blind sample_closed sample_reasoning; do
    gpu+=" --set $node.batch_size=512"
done
gpu+=" --set sample_open.batch_size=600"
lab="--set base.path=$base --set filter.min_agree=0.75 --set sample_open.limit=600"
lab+=" --set sample_closed.limit=600 --set sample_reasoning.limit=600 --set world.count=3000"
lab+=" --set iterate.self_train.times=${TIMES:-5}"
lab+=" --set bench.count=500"
[ $# -gt 0 ] || set -- main nofilter
REASONING_WORLD=world ITERATIONS="${TIMES:-5}" PIPELINE=pipelines/judge_lab_self_train.toml \
    EXTRA_SETS="$lab$gpu ${EXTRA_SETS:-}" exec bash scripts/device_science.sh "$limit" "$seeds" "$@"
