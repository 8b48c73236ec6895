#!/usr/bin/env bash
# For the next device call (not run in session 29): does the bench's reasoning third move when
# the loop has reasoning pairs? Session 29 found self_train.toml's gain from its own base capped
# near +0.15 by the reasoning pairs (chance before and after: the judge says "A" on 0.61-0.74 of
# them after seven iterations). `reason` (scripts/device_science.sh) pretrains a base whose
# corpus has two closed questions a scene asked with their reasoning, and asks 600 of them in
# the loop (sample_reasoning); `main` beside it is self_train.toml as shipped (session 29's
# filter), seeds 1-3 each, seven iterations, one cache; the two pretrainings run in parallel
# (~440 s on an H100), so this needs a second call on the warm machine (it resumes). The reason
# base is exported to $OUT/bases.tar once trained.
#   check here first: judgeflow check pipelines/self_train.toml --set world.reasoning_examples=2 --set prompts.reasoning_examples=2 --set sample_reasoning.limit=600
#   run: bash notes/science/session29/reason_call.sh SECONDS     (carry: .bin/judgeflow.xz)
set -uo pipefail
limit=${1:-560}
out="${OUT:-/tmp/out}"; mkdir -p "$out"
start=$(date +%s)
bash scripts/unpack_bin.sh judgeflow || exit 1
export JUDGEFLOW_MATMUL=cublas JUDGEFLOW_MATMUL_SMALL_M=cublas JUDGEFLOW_CACHE=/tmp/c_reason
(RAW=/tmp/science_reason PARALLEL=1 ITERATIONS=7 \
    bash scripts/device_science.sh $(( limit - 60 )) "1 2 3" reason main) > "$out/reason.log" 2>&1
mkdir -p /tmp/bases
./.bin/judgeflow export /tmp/science_reason_s1.toml pretrain.model \
    --set world.reasoning_examples=2 --set prompts.reasoning_examples=2 --set sample_reasoning.limit=600 \
    --to /tmp/bases/st_reason > /dev/null 2>&1 && echo "exported the reason base"
tar -cf "$out/bases.tar" -C /tmp bases
echo "call done after $(( $(date +%s) - start )) s"
cat "$out/reason.log"
