#!/usr/bin/env bash
# Session 23, CPU lab: self-training with closed-ended questions asked with their reasoning.
#   bash notes/science/session23/lab.sh continued # session 22's base + 600 steps with reasoning rows
#                                                 # (the base of the runs below: /tmp/lab23/base_cont)
#   bash notes/science/session23/lab.sh judged    # the same, 1,000 steps, the rows judged too
#                                                 # (BASE=/tmp/lab23/base_judged for the runs below)
#   bash notes/science/session23/lab.sh base      # judge_lab.toml's B6s3 recipe + reasoning rows,
#                                                 # pretrained here (2 rayon threads), exported
#   bash notes/science/session23/lab.sh run K     # seeds 1-3, main and noreason, K iterations
#   bash notes/science/session23/lab.sh oracle K  # the same with gold votes (vote and vote_reasoning)
# The base: notes/science/session13/B6s3.sets.txt with `--set world.reasoning_examples=2`.
# Self-training: session 19's settings (min_agree 0.75, 600 open + 600 closed prompts, prompt
# world of 3,000 scenes) plus 600 reasoning prompts an iteration; `noreason` is the same base
# without them (`world.reasoning_examples=0`, `sample_reasoning.limit=0`).
set -uo pipefail
cd /work/main
L=${L:-/tmp/lab23}; BIN=${BIN:-$L/judgeflow}; BASE=${BASE:-$L/base_cont}
base_sets=($(cat notes/science/session13/B6s3.sets.txt) --set world.reasoning_examples=2)
case "$1" in
base)
    RAYON_NUM_THREADS=2 $BIN run pipelines/judge_lab.toml pretrain probe describe perception \
        eval_base eval_base_blind "${base_sets[@]}" --cache $L/cache_base
    rm -rf $L/base
    $BIN export pipelines/judge_lab.toml pretrain.model "${base_sets[@]}" --cache $L/cache_base \
        --to $L/base ;;
judged)
    # Session 22's base continued for 1,000 steps with the reasoning rows judged too
    # (`reasoning_judged`: judge-format and reading rows over justified answers).
    $BIN run notes/science/session23/continue.toml --set base.path=$PWD/notes/science/session22/base \
        --set world.reasoning_judged=true --set pretrain.steps=1000 --cache $L/cache_cont
    rm -rf $L/base_judged
    $BIN export notes/science/session23/continue.toml pretrain.model \
        --set base.path=$PWD/notes/science/session22/base --set world.reasoning_judged=true \
        --set pretrain.steps=1000 --cache $L/cache_cont --to $L/base_judged ;;
continued)
    # Session 22's base continued for 600 steps with the reasoning rows (not judged).
    $BIN run notes/science/session23/continue.toml --set base.path=$PWD/notes/science/session22/base \
        --cache $L/cache_cont
    rm -rf $L/base_cont
    $BIN export notes/science/session23/continue.toml pretrain.model \
        --set base.path=$PWD/notes/science/session22/base --cache $L/cache_cont --to $L/base_cont ;;
run)
    K="$2"
    F=$L/lab_self_train.toml
    # The seeds are the sweep; the filter is on (its ablation ran in sessions 16-22).
    sed -e '/^"filter.keep"/d' pipelines/judge_lab_self_train.toml > $F
    sets=(--set base.path=$BASE --set filter.min_agree=0.75 --set sample_open.limit=600
        --set sample_closed.limit=600 --set sample_reasoning.limit=600 --set world.count=3000
        --set iterate.self_train.times=$K)
    tag=$(basename $BASE)
    RAYON_NUM_THREADS=1 $BIN run $F "${sets[@]}" --jobs 2 --cache $L/cache_st > $L/main_${K}_$tag.run.txt 2>&1
    [ -n "${MAIN_ONLY:-}" ] && exit 0
    RAYON_NUM_THREADS=1 $BIN run $F "${sets[@]}" --set world.reasoning_examples=0 \
        --set sample_reasoning.limit=0 --jobs 2 --cache $L/cache_st > $L/noreason_${K}_$tag.run.txt 2>&1 ;;
oracle)
    # Gold decides every closed-ended pair, the reasoning ones too: what the reasoning pairs give
    # when their labels are right (the majority's are right 0.60 of the time at iteration 1).
    K="$2"
    F=$L/lab_self_train.toml
    sets=(--set base.path=$BASE --set filter.min_agree=0.75 --set sample_open.limit=600
        --set sample_closed.limit=600 --set sample_reasoning.limit=600 --set world.count=3000
        --set iterate.self_train.times=$K)
    RAYON_NUM_THREADS=1 $BIN run $F "${sets[@]}" --set vote.method=oracle \
        --set vote_reasoning.method=oracle --jobs 2 --cache $L/cache_st > $L/oracle_$K.run.txt 2>&1 ;;
esac
