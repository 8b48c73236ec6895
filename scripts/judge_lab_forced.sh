#!/usr/bin/env bash
# Does the judge fail at copying the answers or at checking them? `judgeflow judge --start-1/-2`
# on the drawn red circle (scripts/judge_lab_probe.sh's scene) with the description pairs, the
# reasoning forced to a correct restatement up to one step, in both orders:
#   claim A: the description and answer A's claim restated  -> the model writes A's mark
#   claim B: ... A's correct mark and answer B's claim     -> the model writes B's mark
#   marks:   ... both claims with their correct marks      -> the model writes the verdict
# A judge that checks claims marks them by their truth in both orders at every stage; one that
# marks by position writes the same mark whichever claim it is given. The restatements follow
# the `compare` reasoning of pipelines/judge_lab.toml ("Answer A: a large red circle (true).").
#
#   bash scripts/judge_lab_forced.sh MODEL_DIR [JUDGEFLOW_BINARY]  > forced.txt
set -euo pipefail
model="$1"
bin="${2:-judgeflow}"
image="$(dirname "$0")/../notes/science/session8/red_circle.png"
seen="In the image: We can see a large red circle."
mark() { [ "$1" = "a large red circle" ] && echo true || echo false; }
forced() {
    local one="$1" two="$2" stage="$3" s1 s2
    case "$stage" in
        claimA) s1="$seen Answer A: $one"; s2="$seen Answer A: $two" ;;
        claimB) s1="$seen Answer A: $one ($(mark "$one")). Answer B: $two"
                s2="$seen Answer A: $two ($(mark "$two")). Answer B: $one" ;;
        marks)  s1="$seen Answer A: $one ($(mark "$one")). Answer B: $two ($(mark "$two"))."
                s2="$seen Answer A: $two ($(mark "$two")). Answer B: $one ($(mark "$one"))." ;;
    esac
    echo "\$ judgeflow judge ... --answer-1 'The image shows $one.' --answer-2 'The image shows $two.'  [stage $stage]"
    "$bin" judge --model "$model" --image "$image" --question "Describe the image." \
        --answer-1 "The image shows $one." --answer-2 "The image shows $two." \
        --start-1 "$s1" --start-2 "$s2" --max-tokens 48
    echo
}
for pair in "a large blue square" "a large red square" "a small red circle" "a small green star"; do
    for stage in claimA claimB marks; do
        forced "a large red circle" "$pair" "$stage"
    done
done
