#!/usr/bin/env bash
# On the GPU machine: which pretraining lever moves the base model's perception? Runs
# pipelines/self_train.toml up to its `perception` node (world, bench, pretrain, probe) once per
# lever, levers as parallel processes (seed 1, so the bench and its probe questions are those of
# the science grid's seed 1), and saves each perception frame.
# Every set below was measured on self_train.toml as it was up to session 21 (`tiny`, 96 px,
# four objects, 2,500 scenes, 1,500 steps: `git show bc777d6:pipelines/self_train.toml`); since
# session 22 that file is the CPU lab's recipe (`micro`, 64 px, one object), so the same sets now
# move a different base.
#
# Lever sets: `r3` (session 4: gate init, learning rate, two objects) and `r5` (objects three
# 8-px patches wide: 128-px images, 1,800 scenes, the grid's 1,500 steps; and longer
# pretraining: 2,200 steps on the grid's 2,500 scenes of 96 px). Session 5 measured these with
# a binary from before `train` synced its uploads, which kept a set's images under 4 GiB.
# `r6` (session 6): more scenes, 12,000 and 20,000 instead of 2,500, at the grid's 1,500 steps
# and 96 px, so each image is seen about 8 and 5 times instead of 38; and one object per scene,
# where a shape question needs no binding ("What shape is the blue object?" has one answer).
# `r7`: the patch probe (a per-patch shape classifier on the vision tower, `train`'s
# `patch_probe`), at the grid's 2,500 scenes and at 12,000; and 12,000 scenes without it (r6's
# run of it overflowed cubecl's upload counter, fixed since).
# `r8` (session 7): the probe with the relational forms in view: four cross-attention layers of
# eight instead of two (`cross_attention_every = 2`), longer pretraining (2,400 steps), and both.
#
# `r9` (session 8): does a `tiny` model that sees also judge? On the CPU, `micro` with one
# object per scene described its scenes 94-99% truly and still wrote a verdict that ignores the
# answers (notes/science.md, session 8); `micro` has two self-attention layers, `tiny` six. One
# object with the probe and four judge rows per scene (half with one corrupted claim), the same
# at 2,400 steps, and the four-object world with the same corpus. These also run `eval_base`
# and `eval_base_blind` (the judge with and without the image), not only `perception`.
#
# `r10` (session 9): on the CPU, neither depth (`micro` at 6 text layers) nor judge reasoning
# that restates each answer claim by claim (`world.judge_reasoning=compare`), nor reading rows
# (`world.quote_examples`) made `micro` read the answers: asked to repeat answer A or B word for
# word, it writes whichever answer is true of the image (notes/science.md, session 9). The same
# corpus at `tiny`: one object (2,000 and 2,400 steps) and four objects, with longer judge
# outputs (the claim-by-claim reasoning of four objects is longer than 128 tokens).
#
# `r11` (session 10): on the CPU, `micro` with session 9's C7 corpus (claim-by-claim reasoning,
# 16 reading rows a scene, every example weighing the same) restates both answers word for word
# at 6,000 steps but marks them true or false by position, and eight one-word-apart existence
# pairs a scene (`world.binding_examples`) lifted existence from its prior (0.515) to 0.847
# (notes/science.md, session 10). Both at `tiny`: one object at 1,500 and 3,000 steps, the
# 3,000-step run without the pairs as the control, and four objects. Each one-object model
# also answers the judge probe (`scripts/judge_lab_probe.sh`, on the device's CPU) and the
# reading probe (`notes/science/session9/quote.toml`).
#
# `r12` (session 11): on the CPU, `micro` at 6,000 steps with C7's corpus and the binding pairs
# still marks the first answer `(true)` and the second `(false)` whatever they say, and often
# restates the image instead of the answers (notes/science.md, session 11). Two levers aimed at
# the marks, at `tiny`, one object, 3,000 steps (r11's `obj1_c7_steps3000` is the control):
# the marks' words weighed 8 times (`pretrain.mark_weight`), the binding pairs asked as claims
# to mark (`world.binding_format=claim`), and both.
#
#   run: bash scripts/device_levers.sh SECONDS [r3|r5|r6|r7|r8|r9|r10|r11|r12]    (binary: .bin/judgeflow.xz)
set -uo pipefail
limit="${1:-480}"
out="${OUT:-/tmp/out}"
raw=/tmp/levers_raw
mkdir -p "$raw"
bin=./.bin/judgeflow
bash scripts/unpack_bin.sh judgeflow || exit 1
set_name="${2:-r3}"
declare -A levers
if [ "$set_name" = r3 ]; then
    levers=(
        [gate1]="--set pretrain.gate_init=1.0"
        [lr3e3]="--set pretrain.lr=3e-3"
        [objects2]="--set world.max_objects=2 --set bench.max_objects=2"
    )
elif [ "$set_name" = r9 ]; then
    levers=(
        [obj1_judge4]="--set world.max_objects=1 --set bench.max_objects=1 --set pretrain.patch_probe=1.0 --set world.judge_examples=4 --set world.judge_hard_share=0.5"
        [obj1_judge4_steps2400]="--set world.max_objects=1 --set bench.max_objects=1 --set pretrain.patch_probe=1.0 --set world.judge_examples=4 --set world.judge_hard_share=0.5 --set pretrain.steps=2400"
        [obj4_judge4]="--set pretrain.patch_probe=1.0 --set world.judge_examples=4 --set world.judge_hard_share=0.5"
    )
elif [ "$set_name" = r10 ]; then
    levers=(
        [obj1_compare_quote8]="--set world.max_objects=1 --set bench.max_objects=1 --set pretrain.patch_probe=1.0 --set world.judge_examples=4 --set world.judge_hard_share=0.5 --set world.judge_reasoning=compare --set world.quote_examples=8"
        [obj1_compare_quote8_steps2400]="--set world.max_objects=1 --set bench.max_objects=1 --set pretrain.patch_probe=1.0 --set world.judge_examples=4 --set world.judge_hard_share=0.5 --set world.judge_reasoning=compare --set world.quote_examples=8 --set pretrain.steps=2400"
        [obj4_compare_quote8]="--set pretrain.patch_probe=1.0 --set world.judge_examples=4 --set world.judge_hard_share=0.5 --set world.judge_reasoning=compare --set world.quote_examples=8 --set eval_base.max_tokens=256 --set eval_base_blind.max_tokens=256"
    )
elif [ "$set_name" = r11 ]; then
    levers=(
        [obj1_c7_bind8]="--set world.max_objects=1 --set bench.max_objects=1 --set pretrain.patch_probe=1.0 --set world.judge_examples=4 --set world.judge_hard_share=0.5 --set world.judge_reasoning=compare --set world.quote_examples=16 --set pretrain.loss_per=example --set world.binding_examples=8"
        [obj1_c7_bind8_steps3000]="--set world.max_objects=1 --set bench.max_objects=1 --set pretrain.patch_probe=1.0 --set world.judge_examples=4 --set world.judge_hard_share=0.5 --set world.judge_reasoning=compare --set world.quote_examples=16 --set pretrain.loss_per=example --set world.binding_examples=8 --set pretrain.steps=3000"
        [obj1_c7_steps3000]="--set world.max_objects=1 --set bench.max_objects=1 --set pretrain.patch_probe=1.0 --set world.judge_examples=4 --set world.judge_hard_share=0.5 --set world.judge_reasoning=compare --set world.quote_examples=16 --set pretrain.loss_per=example --set pretrain.steps=3000"
        [obj4_c7_bind8]="--set pretrain.patch_probe=1.0 --set world.judge_examples=4 --set world.judge_hard_share=0.5 --set world.judge_reasoning=compare --set world.quote_examples=16 --set pretrain.loss_per=example --set world.binding_examples=8 --set eval_base.max_tokens=256 --set eval_base_blind.max_tokens=256"
    )
elif [ "$set_name" = r12 ]; then
    c7="--set world.max_objects=1 --set bench.max_objects=1 --set pretrain.patch_probe=1.0 --set world.judge_examples=4 --set world.judge_hard_share=0.5 --set world.judge_reasoning=compare --set world.quote_examples=16 --set pretrain.loss_per=example --set pretrain.steps=3000"
    levers=(
        [obj1_c7_mark8_steps3000]="$c7 --set pretrain.mark_weight=8"
        [obj1_c7_bindclaim8_steps3000]="$c7 --set world.binding_examples=8 --set world.binding_format=claim"
        [obj1_c7_bindclaim8_mark8_steps3000]="$c7 --set world.binding_examples=8 --set world.binding_format=claim --set pretrain.mark_weight=8"
    )
elif [ "$set_name" = r8 ]; then
    levers=(
        [probe1_xattn2]="--set pretrain.patch_probe=1.0 --set pretrain.cross_attention_every=2"
        [probe1_steps2400]="--set pretrain.patch_probe=1.0 --set pretrain.steps=2400"
        [probe1_xattn2_steps2400]="--set pretrain.patch_probe=1.0 --set pretrain.cross_attention_every=2 --set pretrain.steps=2400"
    )
elif [ "$set_name" = r7 ]; then
    levers=(
        [probe1]="--set pretrain.patch_probe=1.0"
        [probe1_scenes12k]="--set pretrain.patch_probe=1.0 --set world.count=12000"
        [scenes12k]="--set world.count=12000"
    )
elif [ "$set_name" = r6 ]; then
    levers=(
        [scenes12k]="--set world.count=12000"
        [scenes20k]="--set world.count=20000"
        [objects1]="--set world.max_objects=1 --set bench.max_objects=1"
    )
else
    levers=(
        [px128]="--set world.count=1800 --set world.image_size=128 --set bench.image_size=128 --set pretrain.image_size=128"
        [steps2200]="--set pretrain.steps=2200"
    )
fi
# What each lever runs up to, and shows: the judge too from r9 on.
targets=(perception)
case "$set_name" in r9 | r10 | r11 | r12) targets=(perception eval_base eval_base_blind) ;; esac
for name in "${!levers[@]}"; do
    (
        # shellcheck disable=SC2086
        JUDGEFLOW_KERNEL_CACHE="/tmp/kernels_$name" RUST_LOG=info,cubecl=warn \
            timeout "$limit" "$bin" run pipelines/self_train.toml "${targets[@]}" ${levers[$name]} \
            > "$raw/run_$name.txt" 2> "$raw/run_$name.log"
        echo "$name: exit $? $(tail -2 "$raw/run_$name.txt" | head -1)"
        for node in "${targets[@]}"; do
            # shellcheck disable=SC2086
            "$bin" show pipelines/self_train.toml "$node" ${levers[$name]} --rows 20 > "$raw/${node}_$name.txt" 2>&1
            cat "$raw/${node}_$name.txt"
        done
        if { [ "$set_name" = r11 ] || [ "$set_name" = r12 ]; } && [[ "$name" == obj1_* ]]; then
            # shellcheck disable=SC2086
            model=$("$bin" show pipelines/self_train.toml pretrain --port model ${levers[$name]} |
                head -1 | sed 's/^[^:]*: //')
            model=$(realpath "$model")
            bash scripts/judge_lab_probe.sh "$model" "$bin" > "$raw/judge_probe_$name.txt" 2>&1
            mkdir -p "/tmp/quote_$name"
            sed "s|MODEL_DIR|$model|; s|quote.jsonl|$PWD/notes/science/session9/quote.jsonl|" \
                notes/science/session9/quote.toml > "/tmp/quote_$name/quote.toml"
            (cd "/tmp/quote_$name" && "$OLDPWD/$bin" run quote.toml > run.txt 2>&1 &&
                "$OLDPWD/$bin" show quote.toml say --rows 12) > "$raw/quote_$name.txt" 2>&1
        fi
    ) &
done
wait
tar -czf "$out/levers_raw.tar.gz" -C /tmp levers_raw
