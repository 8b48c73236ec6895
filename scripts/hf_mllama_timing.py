#!/usr/bin/env python3
"""Throughput of Hugging Face's MllamaForConditionalGeneration, the baseline for the burn judge.

Builds a randomly initialised model from an mllama config.json in bf16 on one GPU and times
  * training steps (forward + backward + optimizer step) on a fixed batch, and
  * generation (prefill + N new tokens with the KV cache),
then prints one JSON line with tokens/s, step times and peak memory.

Inputs follow the judge's shape: one image per sequence whose `<|image|>` token sits right after
BOS, so every later text position cross-attends to all tiles of the image.

    python3 scripts/hf_mllama_timing.py --config path/to/config.json \
        --batch 8 --seq-len 512 --tiles 1 --gen-batch 32 --prompt-len 128 --new-tokens 128

Only torch and transformers are needed (no network).
"""

import argparse
import json
import time


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", required=True, help="mllama config.json (a model directory's config)")
    p.add_argument("--mode", choices=["train", "generate", "both"], default="both")
    p.add_argument("--device", default="cuda")
    p.add_argument("--dtype", choices=["bf16", "fp32"], default="bf16")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--tiles", type=int, default=None, help="tiles per image (default: the config's max)")
    # Training.
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--seq-len", type=int, default=512)
    p.add_argument("--steps", type=int, default=10, help="timed training steps")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps first (allocator, kernels)")
    p.add_argument("--optimizer", choices=["adamw", "sgd"], default="adamw")
    p.add_argument("--lr", type=float, default=1e-5)
    p.add_argument("--grad-checkpointing", action="store_true")
    p.add_argument("--clip-grad-norm", type=float, default=None,
                   help="clip the global gradient norm to this before each optimizer step "
                   "(judgeflow's training step does, at 1.0)")
    p.add_argument("--freeze-vision", action="store_true", help="train only the language model side")
    # Generation.
    p.add_argument("--gen-batch", type=int, default=32)
    p.add_argument("--prompt-len", type=int, default=128)
    p.add_argument("--new-tokens", type=int, default=128)
    p.add_argument("--gen-repeats", type=int, default=3, help="timed generate() calls (after 1 warm-up)")
    p.add_argument("--greedy", action="store_true", help="greedy instead of T=0.6, top-k 50, top-p 0.9")
    return p.parse_args()


def fit_special_ids(config, vocab_size):
    """Moves pad/bos/eos ids that lie past `vocab_size` to the last id."""
    for name in ("pad_token_id", "bos_token_id", "eos_token_id"):
        ids = getattr(config, name, None)
        if isinstance(ids, list):
            fixed = [i if i < vocab_size else vocab_size - 1 for i in ids]
        elif ids is not None and ids >= vocab_size:
            fixed = vocab_size - 1
        else:
            continue
        setattr(config, name, fixed)


def load_model(args, torch):
    from transformers import MllamaConfig, MllamaForConditionalGeneration

    config = MllamaConfig.from_json_file(args.config)
    # Configs written by judgeflow for small vocabularies have no pad id; HF's default (Llama's
    # 128004) would not fit their embedding table.
    # Likewise bos/eos: Llama's ids (128000, 128001, ...) index past a small vocabulary, and
    # generation's logits processors index the scores with the eos ids (a device-side assert).
    # transformers 5 validates these fields as ints, so they move to the last id instead.
    text = config.text_config
    fit_special_ids(text, text.vocab_size)
    dtype = torch.bfloat16 if args.dtype == "bf16" else torch.float32
    torch.manual_seed(args.seed)
    with torch.device(args.device):
        try:
            model = MllamaForConditionalGeneration._from_config(config, dtype=dtype)
        except TypeError:  # transformers < 4.56 only knows `torch_dtype`
            model = MllamaForConditionalGeneration._from_config(config, torch_dtype=dtype)
    fit_special_ids(model.generation_config, text.vocab_size)
    return config, model.to(device=args.device, dtype=dtype), dtype


def make_inputs(config, batch, length, tiles, dtype, device, torch):
    """Random tokens with `<|image|>` after BOS, random pixels, the matching masks."""
    vision = config.vision_config
    text = config.text_config
    image_id = config.image_token_index
    # Sample below the LM head's vocabulary; ids past it (like <|image|>) are never text.
    input_ids = torch.randint(0, text.vocab_size, (batch, length), device=device)
    input_ids[input_ids == image_id] = 0
    input_ids[:, 0] = text.bos_token_id if text.bos_token_id is not None else 0
    input_ids[:, 1] = image_id
    size = vision.image_size
    max_tiles = vision.max_num_tiles
    pixel_values = torch.zeros(batch, 1, max_tiles, 3, size, size, device=device, dtype=dtype)
    pixel_values[:, :, :tiles] = torch.randn(batch, 1, tiles, 3, size, size, device=device, dtype=dtype)
    ratios = [tuple(r) for r in vision.supported_aspect_ratios]
    grid = next(r for r in ratios if r[0] * r[1] == tiles)
    aspect_ratio_ids = torch.full((batch, 1), ratios.index(grid) + 1, device=device, dtype=torch.long)
    aspect_ratio_mask = torch.zeros(batch, 1, max_tiles, device=device, dtype=torch.long)
    aspect_ratio_mask[:, :, :tiles] = 1
    cross_attention_mask = torch.zeros(batch, length, 1, max_tiles, device=device, dtype=torch.long)
    cross_attention_mask[:, 1:, :, :tiles] = 1
    return dict(
        input_ids=input_ids,
        attention_mask=torch.ones(batch, length, device=device, dtype=torch.long),
        pixel_values=pixel_values,
        aspect_ratio_ids=aspect_ratio_ids,
        aspect_ratio_mask=aspect_ratio_mask,
        cross_attention_mask=cross_attention_mask,
    )


def time_training(args, config, model, dtype, tiles, torch):
    model.train()
    if args.grad_checkpointing:
        model.gradient_checkpointing_enable()
    if args.freeze_vision:
        for name, param in model.named_parameters():
            if "vision_model" in name or "multi_modal_projector" in name:
                param.requires_grad_(False)
    params = [p for p in model.parameters() if p.requires_grad]
    if args.optimizer == "adamw":
        opt = torch.optim.AdamW(params, lr=args.lr, fused=args.device.startswith("cuda"))
    else:
        opt = torch.optim.SGD(params, lr=args.lr)
    inputs = make_inputs(config, args.batch, args.seq_len, tiles, dtype, args.device, torch)
    labels = inputs["input_ids"].clone()
    labels[:, :2] = -100  # BOS and <|image|> are never targets

    def step():
        loss = model(**inputs, labels=labels, use_cache=False).loss
        loss.backward()
        if args.clip_grad_norm is not None:
            torch.nn.utils.clip_grad_norm_(params, args.clip_grad_norm, foreach=True)
        opt.step()
        opt.zero_grad(set_to_none=True)
        return loss

    for _ in range(args.warmup):
        step()
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    for _ in range(args.steps):
        loss = step()
    torch.cuda.synchronize()
    elapsed = time.perf_counter() - start
    return {
        "batch": args.batch,
        "seq_len": args.seq_len,
        "steps": args.steps,
        "step_s": elapsed / args.steps,
        "tokens_per_s": args.batch * args.seq_len * args.steps / elapsed,
        "final_loss": loss.item(),
        "peak_mem_gib": torch.cuda.max_memory_allocated() / 2**30,
        "optimizer": args.optimizer,
        "grad_checkpointing": args.grad_checkpointing,
        "clip_grad_norm": args.clip_grad_norm,
        "trainable_params": sum(p.numel() for p in params),
    }


def time_generation(args, config, model, dtype, tiles, torch):
    model.eval()
    inputs = make_inputs(config, args.gen_batch, args.prompt_len, tiles, dtype, args.device, torch)
    sampling = (
        dict(do_sample=False)
        if args.greedy
        else dict(do_sample=True, temperature=0.6, top_k=50, top_p=0.9)
    )
    kwargs = dict(
        max_new_tokens=args.new_tokens,
        # Random weights emit EOS at random; forcing the length keeps the token count exact.
        min_new_tokens=args.new_tokens,
        use_cache=True,
        pad_token_id=config.text_config.pad_token_id,
        **sampling,
    )
    with torch.no_grad():
        model.generate(**inputs, **kwargs)
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        start = time.perf_counter()
        for _ in range(args.gen_repeats):
            out = model.generate(**inputs, **kwargs)
        torch.cuda.synchronize()
    elapsed = (time.perf_counter() - start) / args.gen_repeats
    new_tokens = (out.shape[1] - args.prompt_len) * args.gen_batch
    peak = torch.cuda.max_memory_allocated() / 2**30
    # The same call with one new token: the prefill (vision encoder, prompt) and one sampled
    # token, so that the call splits into prefill and decoding as burn's figures do.
    with torch.no_grad():
        one = dict(kwargs, max_new_tokens=1, min_new_tokens=1)
        torch.cuda.synchronize()
        start = time.perf_counter()
        model.generate(**inputs, **one)
        torch.cuda.synchronize()
    one_token_s = time.perf_counter() - start
    return {
        "batch": args.gen_batch,
        "prompt_len": args.prompt_len,
        "new_tokens": args.new_tokens,
        "call_s": elapsed,
        "new_tokens_per_s": new_tokens / elapsed,
        "peak_mem_gib": peak,
        "one_new_token_call_s": one_token_s,
        "decode_ms_per_step": (elapsed - one_token_s) / max(args.new_tokens - 1, 1) * 1e3,
        "sampling": "greedy" if args.greedy else "T=0.6,top_k=50,top_p=0.9",
    }


def main():
    args = parse_args()
    import torch
    import transformers

    config, model, dtype = load_model(args, torch)
    tiles = args.tiles if args.tiles is not None else config.vision_config.max_num_tiles
    result = {
        "script": "hf_mllama_timing",
        "config": args.config,
        "device": torch.cuda.get_device_name() if args.device.startswith("cuda") else args.device,
        "dtype": args.dtype,
        "tiles": tiles,
        "params": sum(p.numel() for p in model.parameters()),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
    }
    # Generation first: training changes the weights and leaves optimizer state in memory.
    if args.mode in ("generate", "both"):
        result["generate"] = time_generation(args, config, model, dtype, tiles, torch)
    if args.mode in ("train", "both"):
        result["train"] = time_training(args, config, model, dtype, tiles, torch)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
