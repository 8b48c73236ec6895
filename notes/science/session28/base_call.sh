#!/usr/bin/env bash
# Session 28's device call: pipelines/self_train.toml with its base's seed unpinned for base
# seeds 1 and 2 (`world.seed` and `pretrain.seed` = the self-training seed; session 27 ran base
# seed 3, whose base picks "A" on general pairs), two grids at once on one cache, seven
# iterations. VARIANTS (default main) names the variants; `control` pretrains its own
# random-verdict base at the same seed. The bases are exported to $OUT/bases.tar once trained.
# Re-running on the still-warm machine resumes from the cache (what is done is fresh).
#   run: bash notes/science/session28/base_call.sh SECONDS     (carry: .bin/judgeflow.xz)
set -uo pipefail
limit=${1:-560}
out="${OUT:-/tmp/out}"; mkdir -p "$out"
start=$(date +%s)
bash scripts/unpack_bin.sh judgeflow || exit 1
. scripts/cublas_path.sh
export JUDGEFLOW_MATMUL=cublas JUDGEFLOW_MATMUL_SMALL_M=cublas JUDGEFLOW_CACHE=/tmp/c_st28
read -r -a variants <<< "${VARIANTS:-main}"
# Two bases pretrain in parallel in ~440 s on an H100 (session 27), one alone in ~335 s (session
# 23): with less time than that, base seed 1 only.
bases=${BASES:-$([ "$limit" -ge 520 ] && echo "1 2" || echo "1")}
for b in $bases; do
    # A node's `seed` is not a parameter `--set` reaches: the base's seed lines are edited.
    sed -e "s/^seed = 3$/seed = $b/" pipelines/self_train.toml > /tmp/self_train_b$b.toml
    (RAW=/tmp/science_b$b PARALLEL=1 ITERATIONS=7 PIPELINE=/tmp/self_train_b$b.toml \
        bash scripts/device_science.sh $(( limit - 50 )) "$b" "${variants[@]}") > "$out/b$b.log" 2>&1 &
done
wait
mkdir -p /tmp/bases
for b in $bases; do
    p=/tmp/science_b${b}_s$b.toml
    ./.bin/judgeflow export "$p" pretrain.model \
        --to /tmp/bases/st_b$b > /dev/null 2>&1 && echo "exported base $b"
    for v in "${variants[@]}"; do
        [ "$v" = control ] && ./.bin/judgeflow export "$p" pretrain.model \
            --set pretrain.judge_verdicts=random \
            --to /tmp/bases/st_b${b}_control > /dev/null 2>&1 && echo "exported control base $b"
    done
done
tar -cf "$out/bases.tar" -C /tmp bases
echo "call done after $(( $(date +%s) - start )) s"
cat "$out"/b*.log
for b in $bases; do grep -h "step 6000\|loss" /tmp/science_b$b/run_s${b}_main.log 2>/dev/null | tail -2; done
