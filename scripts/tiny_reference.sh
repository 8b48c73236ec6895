#!/usr/bin/env bash
# transformers' side of the `tiny` timings, sourced by device_speed.sh and device_matmul.sh so
# that both time the same shapes: generate at batch 16 and 64 (32 new tokens after 48), and at
# 64 also a training step of 64 x 37, on the config.json the burn run wrote.
#   . scripts/tiny_reference.sh; tiny_reference DIR   (reads DIR/tiny_config.json, writes
#   DIR/tiny_torch_{16,64}.json, appends to DIR/torch.log)
tiny_reference() {
    local dir="$1" b
    for b in 16 64; do
        timeout 150 python3 scripts/hf_mllama_timing.py --config "$dir/tiny_config.json" \
            --mode "$([ $b = 64 ] && echo both || echo generate)" --batch 64 --seq-len 37 \
            --steps 30 --warmup 5 --gen-batch $b --prompt-len 48 --new-tokens 32 --tiles 1 \
            > "$dir/tiny_torch_$b.json" 2>> "$dir/torch.log"
        echo "torch tiny batch $b exit: $?"
    done
}
