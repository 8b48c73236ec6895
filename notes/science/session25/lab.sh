#!/usr/bin/env bash
# Session 25, CPU lab: session 19's recipe on bench 6. The base is the shipped B6s3
# (pipelines/bases/judge_lab_b6s3: session 13's judge_lab.toml B6 model at pretraining seed 3,
# the base of sessions 13-19 and of quickstart_judge.toml), a weaker judge than sessions 22-24's
# bases (0.63-0.67 against 0.78-0.80), whose five iterations gained +0.131 on bench 5.
#   bash notes/science/session25/lab.sh run K [agree|all]   # seeds 1-3, K iterations, the
#                                                           # filter (default) or no filter
# Settings: session 19's (min_agree 0.75, 600 open + 600 closed prompts an iteration, a prompt
# world of 3,000 scenes (session 26: WORLD=4200 for seven iterations, L for another folder,
# BASE for another base; session 27: EXTRA="--set ..." for more), both orders); no reasoning prompts (the base has no reasoning rows:
# world.reasoning_examples = 0, sample_reasoning.limit = 0); bench 6, 300 held-out scenes
# (900 items a seed).
set -uo pipefail
cd /work/main
L=${L:-/tmp/lab25}; mkdir -p $L
BIN=${BIN:-$L/judgeflow}; BASE=${BASE:-$PWD/pipelines/bases/judge_lab_b6s3}
F=$L/lab_self_train.toml
# The seeds are the sweep; the filter arm is picked on the command line.
sed -e '/^"filter.keep"/d' pipelines/judge_lab_self_train.toml > $F
sets=(--set base.path=$BASE --set filter.min_agree=0.75 --set sample_open.limit=600
    --set sample_closed.limit=600 --set world.count=${WORLD:-3000} --set world.reasoning_examples=0
    --set sample_reasoning.limit=0 ${EXTRA:-})
case "$1" in
run)
    K="$2"; keep="${3:-agree}"
    RAYON_NUM_THREADS=1 $BIN run $F "${sets[@]}" --set iterate.self_train.times=$K \
        --set filter.keep=$keep --jobs 2 --cache $L/cache_st > $L/${keep}_$K.run.txt 2>&1 ;;
esac
