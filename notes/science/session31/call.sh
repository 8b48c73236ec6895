#!/usr/bin/env bash
# Session 31's device calls for #9 (one script, called again on the warm machine: every part
# resumes from its cache). `self_train.toml` with its judge-format corpus's hard negatives off
# (`world.judge_hard_share = $HS`, default 0: every worse answer another scene's, the issue's
# item 3 "cross-scene negatives"), so that the base judge starts inside the 0.50-0.65
# (the shipped base, hard share 0.5, starts at 0.684 and the bench leaves it +0.148 to +0.158
# without its reasoning third, session 29). Parts, named in $2 (default "w1"):
#   w1  main and the control whose base neither checks nor decides (control_rr:
#       pretrain.judge_verdicts = random_reasoning), seeds 1-3, seven iterations, each variant
#       its own process; the two pretrainings run at once (~450 s on an H100).
#   w2  the ablations on the same base and cache: nofilter, oneorder, oracle.
# Once pretrained, both bases are exported to $OUT/bases.tar (carry them next time).
#   run: bash notes/science/session31/call.sh SECONDS "w1 w2"   (carry: .bin/judgeflow.xz)
set -uo pipefail
limit=${1:-560}
parts=" ${2:-w1} "
hs=${HS:-0}
out="${OUT:-/tmp/out}"; mkdir -p "$out"
start=$(date +%s)
bash scripts/unpack_bin.sh judgeflow || exit 1
export JUDGEFLOW_MATMUL=cublas JUDGEFLOW_MATMUL_SMALL_M=cublas
deadline=$(( start + limit - 75 ))
left() { echo $(( deadline - $(date +%s) )); }
common=(JUDGEFLOW_CACHE=/tmp/c_hs EXTRA_SETS="--set world.judge_hard_share=$hs" PARALLEL=1 ITERATIONS=7)
if [[ $parts == *" w1 "* ]]; then
    (env "${common[@]}" RAW=/tmp/science_w1 bash scripts/device_science.sh "$(left)" "1 2 3" main control_rr) > "$out/w1.log" 2>&1 &
fi
if [[ $parts == *" w2 "* ]]; then
    (env "${common[@]}" RAW=/tmp/science_w2 bash scripts/device_science.sh "$(left)" "1 2 3" nofilter oneorder oracle) > "$out/w2.log" 2>&1 &
fi
wait
mkdir -p /tmp/bases
for v in main control_rr; do
    [ -d /tmp/bases/st_hs${hs}_$v ] && continue
    sets="--set world.judge_hard_share=$hs"
    [ $v = control_rr ] && sets+=" --set pretrain.judge_verdicts=random_reasoning"
    # shellcheck disable=SC2086
    JUDGEFLOW_CACHE=/tmp/c_hs timeout 40 ./.bin/judgeflow export /tmp/science_w1_s1.toml pretrain.model \
        $sets --to /tmp/bases/st_hs${hs}_$v >> "$out/export.log" 2>&1 && echo "exported the $v base"
done
ls /tmp/bases | grep -q . && tar -cf "$out/bases.tar" -C /tmp bases
echo "call done after $(( $(date +%s) - start )) s"
tail -n 12 "$out"/*.log
