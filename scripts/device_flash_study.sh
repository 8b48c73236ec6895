#!/usr/bin/env bash
# On the GPU machine: where the time of `JUDGEFLOW_ATTENTION=flash_tiles` (vendor/burn-cubecl/
# src/kernel/attention/flash_tiles.rs) goes, and what the CUDA compiler made of it.
#
# For each study case the carried `speed` example runs its products and attention checks at the
# 11B vision encoder's shape (2 images of 4 tiles, 16 heads of 80) with the kernel whole, or with
# parts of it left out through JUDGEFLOW_FLASH_TILES_SKIP (the result is then wrong; only the
# time says something), and is stopped after them (STUDY_LIMIT seconds, default 40). Then
# scripts/kernel_ptx.py reads the whole kernel's PTX from cubecl's cache and writes ptxas's
# register and spill figures and the SASS (Triton's ptxas and cuobjdump), beside `softmax_rows`'s
# kernel for comparison. A table on stdout; raw outputs in $OUT/flash_study.tar.gz.
#
#   run: bash scripts/device_flash_study.sh ["full:" "no_softmax:softmax" ...]
set -uo pipefail
final="${OUT:-/tmp/out}"
out=/tmp/flash_study
rm -rf "$out" && mkdir -p "$out" "$final"
bash scripts/unpack_bin.sh speed || exit 1
. scripts/cublas_path.sh
cp model/tests/fixtures/llama32_11b_vision_config.json "$out/11b_config.json"
cases=("$@")
[ ${#cases[@]} -gt 0 ] || cases=("full:" "no_softmax:softmax" "no_pv:pv" "no_scores:scores"
    "no_staging:staging" "staging_only:scores,softmax,pv")
for case in "${cases[@]}"; do
    IFS=: read -r tag skip <<< "$case"
    start=$(date +%s)
    JUDGEFLOW_MATMUL=cublas JUDGEFLOW_MATMUL_SMALL_M=cublas JUDGEFLOW_ATTENTION=flash_tiles \
        JUDGEFLOW_REDUCE=auto JUDGEFLOW_FLASH_TILES_SKIP="$skip" timeout "${STUDY_LIMIT:-40}" \
        ./.bin/speed --config "$out/11b_config.json" --tiles 1 --batches 16 --prompt-len 64 \
        --new-tokens 8 --train-steps 0 --device cuda --placements device --repeats 1 \
        --matmul-check --kernel-cache "$out/kernels_$tag" > "$out/$tag.stdout" 2> "$out/$tag.log"
    echo "$tag (skip: ${skip:-none}) exit $? in $(( $(date +%s) - start )) s"
done
python3 - "$out" "${cases[@]}" <<'EOF' | tee "$final/flash_study_table.txt"
import json, sys
out, cases = sys.argv[1], sys.argv[2:]
print("case | skipped | vision attention, 2 images x 4 tiles | max rel err vs CPU f32")
for case in cases:
    tag, skip = case.split(":", 1)
    check = None
    try:
        for line in open(f"{out}/{tag}.stdout"):
            if line.startswith('{"attention_check"'):
                check = json.loads(line)["attention_check"]
    except OSError:
        pass
    if not check:
        print(f"{tag} | {skip or '-'} | no result | -")
        continue
    ms = check.get("kernel_s", float("nan")) * 1e3
    print(f"{tag} | {skip or '-'} | {ms:.2f} ms | {check.get('max_rel_err')}")
EOF
python3 scripts/kernel_ptx.py "$out/kernels_full" flash_tiles "$out/ptx" | tee -a "$final/flash_study_table.txt"
python3 scripts/kernel_ptx.py "$out/kernels_full" softmax_rows "$out/ptx" | tee -a "$final/flash_study_table.txt"
tar czf "$final/flash_study.tar.gz" -C /tmp flash_study
