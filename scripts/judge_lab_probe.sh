#!/usr/bin/env bash
# Does a judge's verdict read the answers? `judgeflow judge` on one drawn scene (a large red
# circle, the one-object world of pipelines/judge_lab.toml) with answer pairs that differ in one
# claim or in all, each pair in both orders. A judge that reads the answers picks the true
# answer in both orders; one that does not writes the same letter whatever the answers are.
#
#   bash scripts/judge_lab_probe.sh MODEL_DIR [JUDGEFLOW_BINARY]  > probe.txt
set -euo pipefail
model="$1"
bin="${2:-judgeflow}"
image="$(dirname "$0")/../notes/science/session8/red_circle.png"
probe() {
    local question="$1" one="$2" two="$3"
    echo "\$ judgeflow judge --image red_circle.png --question '$question' --answer-1 '$one' --answer-2 '$two'"
    "$bin" judge --model "$model" --image "$image" --question "$question" \
        --answer-1 "$one" --answer-2 "$two"
    echo
}
d="Describe the image."
probe "$d" "The image shows a large red circle." "The image shows a large blue square."
probe "$d" "The image shows a large red circle." "The image shows a large red square."
probe "$d" "The image shows a large red circle." "The image shows a small red circle."
probe "$d" "The image shows a large blue square." "The image shows a large red circle."
probe "$d" "The image shows a small green star." "The image shows a large red circle."
probe "What colour is the circle?" "red" "blue"
probe "What colour is the circle?" "green" "red"
probe "Is there a square in the image?" "yes" "no"
probe "Is there a circle in the image?" "yes" "no"
