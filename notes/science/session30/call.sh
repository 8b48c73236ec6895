#!/usr/bin/env bash
# Session 30's device calls for #9 (one script, called again on the warm machine: every part
# resumes from its cache). Parts, named in $2 (default "rj ref"):
#   rj   two arms, each on a base of its own pretrained beside the other, one cache; both
#        self_train.toml with questions asked with their reasoning in the pretraining corpus (2
#        a scene) and its judge-format rows judging those justified answers too, one more row
#        a scene over them alone (otherwise ~2% of the judge rows are theirs), and 600
#        reasoning prompts an iteration in the loop; 6,000 steps of pretraining each (~440 s on
#        an H100, two at once); seeds 1-3, seven iterations. The bench's reasoning third is what
#        stops the shipped file at +0.133 (session 29). They differ in how a judge row restates
#        a justified answer:
#        reason_counts: by the counts it claims, each marked against the image, then its final
#        answer ("1 green shape (false), the answer is 1 (false)."; compare_counts, session 30);
#        reason_final: by its final answer alone ("the answer is 1 (false)."; compare_final,
#        session 24's CPU base, whose reasoning verdicts did not use the image).
#   ref  the shipped file on its carried base (st_main), seeds 1-3, seven iterations: the
#        same-call reference for rj (the same bench items).
#   b456 the shipped file and its random-verdict control (st_control) on seeds 4-6.
# The carried bases are copied to /tmp/bases_keep, so that a later call may carry others.
# The two bases, once trained, are exported to $OUT/bases.tar.
#   run: bash notes/science/session30/call.sh SECONDS "rj ref"   (carry: .bin/judgeflow.xz,
#        .bin/bases_st/bases/st_main; for b456 .bin/bases_st/bases/st_control)
set -uo pipefail
limit=${1:-560}
parts=" ${2:-rj ref} "
out="${OUT:-/tmp/out}"; mkdir -p "$out"
start=$(date +%s)
bash scripts/unpack_bin.sh judgeflow || exit 1
mkdir -p /tmp/bases_keep
for b in .bin/bases_st/bases/*; do [ -d "$b" ] && cp -r --update=none "$b" /tmp/bases_keep/; done
ls /tmp/bases_keep
export JUDGEFLOW_MATMUL=cublas JUDGEFLOW_MATMUL_SMALL_M=cublas
python3 notes/science/session29/carried_base.py /tmp/bases_keep/st_main /tmp/self_train_carried.toml || exit 1
deadline=$(( start + limit - 70 ))
left() { echo $(( deadline - $(date +%s) )); }
if [[ $parts == *" rj "* ]]; then
    (JUDGEFLOW_CACHE=/tmp/c_rj RAW=/tmp/science_rj PARALLEL=1 ITERATIONS=7 \
        bash scripts/device_science.sh "$(left)" "1 2 3" reason_counts reason_final) > "$out/rj.log" 2>&1 &
fi
if [[ $parts == *" ref "* ]]; then
    (JUDGEFLOW_CACHE=/tmp/c_ref PIPELINE=/tmp/self_train_carried.toml RAW=/tmp/science_ref \
        PARALLEL=1 ITERATIONS=7 bash scripts/device_science.sh "$(left)" "1 2 3" main) > "$out/ref.log" 2>&1 &
fi
if [[ $parts == *" b456 "* ]] && [ -d /tmp/bases_keep/st_control ]; then
    (JUDGEFLOW_CACHE=/tmp/c_ref PIPELINE=/tmp/self_train_carried.toml RAW=/tmp/science_b456 \
        CONTROL_BASE=/tmp/bases_keep/st_control PARALLEL=1 ITERATIONS=7 \
        bash scripts/device_science.sh "$(left)" "4 5 6" main control) > "$out/b456.log" 2>&1 &
fi
wait
if [[ $parts == *" rj "* ]]; then
    r="--set world.reasoning_examples=2 --set prompts.reasoning_examples=2 --set sample_reasoning.limit=600"
    r+=" --set world.reasoning_judged=true --set world.reasoning_judge_examples=1"
    for j in compare_final compare_counts; do
        [ -d /tmp/bases/st_$j ] && continue
        # shellcheck disable=SC2086
        JUDGEFLOW_CACHE=/tmp/c_rj timeout 40 ./.bin/judgeflow export /tmp/science_rj_s1.toml pretrain.model \
            $r --set world.judge_reasoning=$j --to /tmp/bases/st_$j >> /tmp/export_rj.log 2>&1 \
            && echo "exported the $j base"
    done
    [ -d /tmp/bases ] && tar -cf "$out/bases.tar" -C /tmp bases
fi
echo "call done after $(( $(date +%s) - start )) s"
tail -n 12 "$out"/*.log
