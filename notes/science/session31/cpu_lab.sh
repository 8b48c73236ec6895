#!/usr/bin/env bash
# Session 31, CPU (no device machine was lent): `pipelines/self_train.toml` itself, every model
# node on the CPU backend (f32), with its judge-format corpus's hard negatives at HS (default 0),
# a 900-item bench (300 held-out scenes), K iterations (default 3), seed S, one cache per HS.
# The base is pretrained on this machine (6,000 steps, ~40 minutes on one core).
#   bash notes/science/session31/cpu_lab.sh S [K] [extra --set ...]   (CMD=plan: what would run)
#   (HS=0.25 for another share; BIN for another binary; C for the cache)
set -uo pipefail
S="$1"; K="${2:-3}"; shift $(( $# < 2 ? $# : 2 ))
. "$(dirname "$0")/lab_sets.sh"
lab_sets "$S" "$K"
jobs=(); [ "${CMD:-run}" = run ] && jobs=(--jobs 1)
RAYON_NUM_THREADS=1 $BIN --cache "$C" "${CMD:-run}" /work/main/pipelines/self_train.toml "${sets[@]}" "$@" "${jobs[@]}"
