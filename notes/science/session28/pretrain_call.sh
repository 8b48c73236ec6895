#!/usr/bin/env bash
# Session 28's last device call: only the pretraining of pipelines/self_train.toml's base at
# base seed B (default 1; the file pins 3), exported to $OUT/bases.tar for the CPU lab.
#   run: B=1 bash notes/science/session28/pretrain_call.sh SECONDS     (carry: .bin/judgeflow.xz)
set -uo pipefail
limit=${1:-330}; b=${B:-1}
out="${OUT:-/tmp/out}"; mkdir -p "$out"
start=$(date +%s)
bash scripts/unpack_bin.sh judgeflow || exit 1
. scripts/cublas_path.sh
export JUDGEFLOW_MATMUL=cublas JUDGEFLOW_MATMUL_SMALL_M=cublas JUDGEFLOW_CACHE=/tmp/c_pre
sed -e "s/^seed = 3$/seed = $b/" pipelines/self_train.toml > /tmp/self_train_b$b.toml
RUST_LOG=info,cubecl=warn JUDGEFLOW_KERNEL_CACHE=/tmp/kernels_pre \
    timeout $(( limit - 15 - ($(date +%s) - start) )) ./.bin/judgeflow run /tmp/self_train_b$b.toml pretrain \
    > "$out/pretrain_b$b.txt" 2> /tmp/pretrain.log
echo "pretrain: exit $? after $(( $(date +%s) - start )) s"
grep -h "steps" /tmp/pretrain.log | tail -12 > "$out/pretrain_b${b}_loss.txt"
mkdir -p /tmp/bases
./.bin/judgeflow export /tmp/self_train_b$b.toml pretrain.model --to /tmp/bases/st_b$b > /dev/null \
    && tar -cf "$out/bases.tar" -C /tmp bases && echo "exported"
cat "$out/pretrain_b${b}_loss.txt"
