#!/usr/bin/env bash
# Session 24, CPU lab: a judge that restates a justified answer by its final answer alone.
#   bash notes/science/session24/lab.sh final     # session 22's base + 1,000 steps with the
#                                                 # reasoning rows judged, `compare_final`
#                                                 # (the base of the runs below: $L/base_final)
#   bash notes/science/session24/lab.sh run K     # seeds 1-3, main and noreason, K iterations
#                                                 # (notes/science/session23/lab.sh's settings)
# Session 23's `judged` base (`compare`: a justified answer restated whole) broke its format on
# 158 of 300 bench reasoning pairs: the model copies a whole justified answer badly.
set -uo pipefail
cd /work/main
L=/tmp/lab24; mkdir -p $L
BIN=${BIN:-$L/judgeflow}; BASE=${BASE:-$L/base_final}
final_sets=(--set base.path=$PWD/notes/science/session22/base --set world.reasoning_judged=true
    --set world.judge_reasoning=compare_final --set pretrain.steps=1000)
case "$1" in
final)
    $BIN run notes/science/session23/continue.toml "${final_sets[@]}" --cache $L/cache_cont \
        > $L/base_final.run.txt 2>&1
    rm -rf $L/base_final
    $BIN export notes/science/session23/continue.toml pretrain.model "${final_sets[@]}" \
        --cache $L/cache_cont --to $L/base_final
    for n in eval_base eval_base_blind; do
        $BIN show notes/science/session23/continue.toml $n "${final_sets[@]}" \
            --cache $L/cache_cont
    done > $L/base_final.eval.txt 2>&1 ;;
run)
    BIN=$BIN BASE=$BASE L=$L bash notes/science/session23/lab.sh run "$2" ;;
esac
