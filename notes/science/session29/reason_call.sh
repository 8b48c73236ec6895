#!/usr/bin/env bash
# For the next device call (not run in session 29): do the bench's reasoning pairs move when the
# base and the loop have questions asked with their reasoning? Session 29 found self_train.toml's
# gain from its own base capped near +0.15 by the reasoning third of the bench (chance before
# and after; the judge cannot mark a count or a comparison, notes/science.md). Two bases of their
# own, pretrained in parallel (~440 s on an H100), each then through self_train.toml's loop as
# shipped (session 29's filter) with 600 reasoning prompts an iteration, seeds 1-3, seven
# iterations, one cache (a second call on the warm machine resumes):
#   reason         the corpus has two questions a scene asked with their reasoning
#   reason_judged  and its judge-format rows judge those answers too, by their final answer
#                  (session 24's CPU base: reasoning 0.571, but not shown to use the image)
# The shipped file's own arm is session 29's (`gpu_raw.tar.xz`, the lever's `main`: the same
# bench items, seeds 1-3; compare with versus.py). The bases go to $OUT/bases.tar once trained.
#   check here first: judgeflow check pipelines/self_train.toml $(sets of scripts/device_science.sh's reason_judged)
#   run: bash notes/science/session29/reason_call.sh SECONDS     (carry: .bin/judgeflow.xz)
set -uo pipefail
limit=${1:-560}
out="${OUT:-/tmp/out}"; mkdir -p "$out"
start=$(date +%s)
bash scripts/unpack_bin.sh judgeflow || exit 1
export JUDGEFLOW_MATMUL=cublas JUDGEFLOW_MATMUL_SMALL_M=cublas JUDGEFLOW_CACHE=/tmp/c_reason
(RAW=/tmp/science_reason PARALLEL=1 ITERATIONS=7 \
    bash scripts/device_science.sh $(( limit - 60 )) "1 2 3" reason_judged reason) > "$out/reason.log" 2>&1
mkdir -p /tmp/bases
r="--set world.reasoning_examples=2 --set prompts.reasoning_examples=2 --set sample_reasoning.limit=600"
# shellcheck disable=SC2086
./.bin/judgeflow export /tmp/science_reason_s1.toml pretrain.model $r \
    --to /tmp/bases/st_reason > /dev/null 2>&1 && echo "exported the reason base"
# shellcheck disable=SC2086
./.bin/judgeflow export /tmp/science_reason_s1.toml pretrain.model $r \
    --set world.reasoning_judged=true --set world.judge_reasoning=compare_final \
    --to /tmp/bases/st_reason_judged > /dev/null 2>&1 && echo "exported the reason_judged base"
tar -cf "$out/bases.tar" -C /tmp bases
echo "call done after $(( $(date +%s) - start )) s"
cat "$out/reason.log"
