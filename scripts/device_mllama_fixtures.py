#!/usr/bin/env python3
"""Parity fixtures for judgeflow's mllama on random checkpoints unlike mllama_tiny, made with
torch + transformers (run by scripts/device_mllama_fixtures.sh on the GPU machine; CPU works too).

Three random `MllamaForConditionalGeneration` checkpoints, each in OUT/<name>/:
  multi_tile   6 tiles of 32 px, wide and tall pictures in one batch, 3 cross-attention layers,
               grouped-query attention 6:2, llama3 RoPE
  real_vocab   Llama 3.2's real vocabulary (128256 + <|image|> = 128257 ids, the 256 special
               tokens in their places) and a chat template; prompts made by transformers'
               apply_chat_template; multi-query attention (4:1); weights rounded to bf16 and
               stored as BF16 (the model still computes in f32), which keeps the file small and
               exercises bf16 loading
  deep_cross   9 tiles of 16 px (3x3 grids), 4 cross-attention layers two of them adjacent,
               head_dim 16, default RoPE, 3 pictures (one 1-tile, one 3x3, one 1x2)

Files per checkpoint: config.json, model.safetensors, images/*.png, preprocessor_config.json,
(real_vocab: tokenizer.json, tokenizer_config.json, chat.json), reference.safetensors, meta.json.
reference.safetensors holds the processor's outputs (pixel_values, aspect_ratio_ids,
aspect_ratio_mask), input_ids, cross_attention_mask, logits in float32 (real_vocab: the logits of
1024 fixed columns at every position, `logits_columns`, and the whole last row, `logits_last`, to
stay small), and greedy_ids of N new tokens.

    python3 scripts/device_mllama_fixtures.py --out OUT [--device cuda]
"""

import argparse
import inspect
import json
import os
import pathlib
import sys

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "fixtures"))

NEW_TOKENS = 8
CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073]
CLIP_STD = [0.26862954, 0.26130258, 0.27577711]


def ratios(max_tiles):
    return [[a, b] for a in range(1, max_tiles + 1) for b in range(1, max_tiles + 1) if a * b <= max_tiles]


CONFIGS = {
    "multi_tile": dict(
        vocab=128,
        text=dict(hidden_size=48, num_hidden_layers=6, num_attention_heads=6, num_key_value_heads=2,
                  intermediate_size=96, cross_attention_layers=[1, 3, 5]),
        rope=dict(rope_type="llama3", rope_theta=500000.0, factor=8.0, low_freq_factor=1.0,
                  high_freq_factor=4.0, original_max_position_embeddings=8192),
        vision=dict(hidden_size=24, num_hidden_layers=5, num_global_layers=2, num_attention_heads=3,
                    intermediate_size=48, image_size=32, patch_size=8, max_num_tiles=6,
                    intermediate_layers_indices=[1, 2, 4]),
        pictures=[(50, 130), (130, 50)],
        bf16=False,
    ),
    "real_vocab": dict(
        vocab=128256,
        text=dict(hidden_size=16, num_hidden_layers=4, num_attention_heads=4, num_key_value_heads=1,
                  intermediate_size=32, cross_attention_layers=[0, 3]),
        rope=dict(rope_type="llama3", rope_theta=500000.0, factor=32.0, low_freq_factor=1.0,
                  high_freq_factor=4.0, original_max_position_embeddings=8192),
        vision=dict(hidden_size=16, num_hidden_layers=3, num_global_layers=1, num_attention_heads=2,
                    intermediate_size=32, image_size=28, patch_size=14, max_num_tiles=4,
                    intermediate_layers_indices=[0, 2]),
        pictures=[(60, 20), (33, 90)],
        bf16=True,
    ),
    "deep_cross": dict(
        vocab=200,
        text=dict(hidden_size=64, num_hidden_layers=8, num_attention_heads=4, num_key_value_heads=2,
                  intermediate_size=80, cross_attention_layers=[2, 4, 6, 7], rms_norm_eps=1e-6),
        rope=dict(rope_type="default", rope_theta=10000.0),
        vision=dict(hidden_size=32, num_hidden_layers=3, num_global_layers=1, num_attention_heads=4,
                    intermediate_size=64, image_size=16, patch_size=4, max_num_tiles=9,
                    intermediate_layers_indices=[0, 2]),
        pictures=[(10, 10), (40, 45), (16, 30)],
        bf16=False,
    ),
}

QUESTIONS = [
    "Which answer is better?\nAnswer A: two red squares.\nAnswer B: one blue circle.",
    "Describe the picture, then say Overall Judgment: Answer A is better.",
    "How many shapes are there?",
]


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True)
    p.add_argument("--device", default="cpu")
    p.add_argument("--seed", type=int, default=11)
    p.add_argument("--only", nargs="*", default=None)
    return p.parse_args()


def hub_name(name):
    for prefix, hub in (
        ("model.language_model.", "language_model.model."),
        ("model.vision_model.", "vision_model."),
        ("model.multi_modal_projector.", "multi_modal_projector."),
        ("lm_head.", "language_model.lm_head."),
    ):
        if name.startswith(prefix):
            return hub + name[len(prefix):]
    return name


def picture(seed, height, width):
    import numpy as np
    from PIL import Image

    rng = np.random.RandomState(seed)
    y, x = np.mgrid[0:height, 0:width]
    base = np.stack([(x * 29 + y * 7) % 256, (y * 13) % 256, (x * y) % 256], -1)
    return Image.fromarray(np.clip(base * 0.8 + rng.randint(0, 50, (height, width, 3)), 0, 255).astype(np.uint8))


def greedy_without_cache(model, inputs, new_tokens):
    """Greedy decoding by full forward passes, as `generate(do_sample=False)` defines it: each new
    token is the argmax of the last position; the new position attends to the pictures the last
    prompt token attended to (its cross-attention mask row is repeated, as generate does).
    No KV cache: transformers 5.17's generate broke on a cross-attention layer at index 0 (the
    self-attention mask came out 21 wide against 40 keys; notes/gpu_fixtures/r4_fixtures.log),
    and the reference must not depend on a cache implementation."""
    import torch

    ids = inputs["input_ids"]
    cross = inputs["cross_attention_mask"]
    for _ in range(new_tokens):
        step = dict(inputs, input_ids=ids, attention_mask=torch.ones_like(ids), cross_attention_mask=cross)
        logits = model(**step, use_cache=False).logits
        nxt = logits[:, -1, :].argmax(-1, keepdim=True)
        ids = torch.cat([ids, nxt], dim=1)
        cross = torch.cat([cross, cross[:, -1:]], dim=1)
    return ids


def build(name, spec, args, out_root):
    import numpy as np
    import torch
    from PIL import Image
    from safetensors.torch import save_file
    from transformers import MllamaConfig, MllamaForConditionalGeneration
    from transformers.models.mllama.configuration_mllama import MllamaTextConfig, MllamaVisionConfig
    from transformers.models.mllama.image_processing_pil_mllama import MllamaImageProcessorPil
    from transformers.models.mllama.processing_mllama import (
        convert_sparse_cross_attention_mask_to_dense,
        get_cross_attention_token_mask,
    )

    out = out_root / name
    (out / "images").mkdir(parents=True, exist_ok=True)
    torch.manual_seed(args.seed)
    vocab = spec["vocab"]
    image_token = vocab
    text = dict(spec["text"], vocab_size=vocab, hidden_act="silu", max_position_embeddings=16384,
                initializer_range=0.1, tie_word_embeddings=False, dropout=0.0, bos_token_id=0,
                eos_token_id=1, pad_token_id=2)
    text.setdefault("rms_norm_eps", 1e-5)
    if "rope_parameters" in inspect.signature(MllamaTextConfig.__init__).parameters:
        text["rope_parameters"] = dict(spec["rope"])
    else:
        text["rope_theta"] = spec["rope"]["rope_theta"]
        if spec["rope"]["rope_type"] != "default":
            text["rope_scaling"] = {k: v for k, v in spec["rope"].items() if k != "rope_theta"}
    v = spec["vision"]
    vision = dict(v, hidden_act="gelu", num_channels=3, norm_eps=1e-5, initializer_range=0.1,
                  vision_output_dim=v["hidden_size"] * (1 + len(v["intermediate_layers_indices"])),
                  supported_aspect_ratios=ratios(v["max_num_tiles"]))
    config = MllamaConfig(vision_config=MllamaVisionConfig(**vision).to_dict(),
                          text_config=MllamaTextConfig(**text).to_dict(), image_token_index=image_token)
    try:
        model = MllamaForConditionalGeneration._from_config(config, attn_implementation="eager")
    except (TypeError, ValueError):
        model = MllamaForConditionalGeneration(config)
    model = model.float().eval()
    gen = torch.Generator().manual_seed(args.seed + 1)
    with torch.no_grad():
        for pname, param in model.named_parameters():
            leaf = pname.rsplit(".", 1)[-1]
            # mllama inits gates at 0 and norms at 1, which would hide bugs: draw them too.
            if "gate" in leaf:
                param.copy_(torch.rand(param.shape, generator=gen) * 2 - 1)
            elif "norm" in pname and leaf == "weight" and param.dim() == 1:
                param.copy_(1 + 0.2 * torch.randn(param.shape, generator=gen))
            elif leaf == "bias":
                param.copy_(0.05 * torch.randn(param.shape, generator=gen))
            if spec["bf16"]:
                param.copy_(param.to(torch.bfloat16).float())

    tile, max_tiles = v["image_size"], v["max_num_tiles"]
    processor = MllamaImageProcessorPil(size={"height": tile, "width": tile}, max_image_tiles=max_tiles,
                                        image_mean=CLIP_MEAN, image_std=CLIP_STD)
    images = []
    for i, (h, w) in enumerate(spec["pictures"]):
        path = out / "images" / f"image{i}.png"
        picture(100 * args.seed + i, h, w).save(path)
        images.append([Image.open(path).convert("RGB")])
    processed = processor(images, return_tensors="np")
    json.dump({"image_processor_type": "MllamaImageProcessor", "do_resize": True, "do_rescale": True,
               "do_normalize": True, "do_pad": True, "do_convert_rgb": True, "max_image_tiles": max_tiles,
               "size": {"height": tile, "width": tile}, "resample": 2, "rescale_factor": 1 / 255,
               "image_mean": CLIP_MEAN, "image_std": CLIP_STD},
              open(out / "preprocessor_config.json", "w"), indent=1)

    batch = len(images)
    chat = None
    if name == "real_vocab":
        import llama32_tokenizer
        from transformers import PreTrainedTokenizerFast

        llama32_tokenizer.build(out, base_vocab=128000)
        tokenizer = PreTrainedTokenizerFast.from_pretrained(str(out))
        assert len(tokenizer) == 128257 and tokenizer.convert_tokens_to_ids("<|image|>") == image_token
        chat = []
        rows = []
        for i in range(batch):
            messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": QUESTIONS[i]}]}]
            ids = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True)
            if hasattr(ids, "keys"):
                ids = ids["input_ids"]
            ids = [int(t) for t in ids]
            chat.append({"question": QUESTIONS[i], "ids": ids})
            rows.append(ids)
        for messages, generation in llama32_tokenizer.CONVERSATIONS:
            text_ = tokenizer.apply_chat_template(messages, add_generation_prompt=generation, tokenize=False)
            ids = tokenizer.apply_chat_template(messages, add_generation_prompt=generation, tokenize=True)
            if hasattr(ids, "keys"):
                ids = ids["input_ids"]
            chat.append({"messages": messages, "add_generation_prompt": generation, "text": text_,
                         "ids": [int(t) for t in ids]})
        json.dump(chat, open(out / "chat.json", "w"), indent=1, ensure_ascii=False)
        # Equal lengths keep the batch unpadded: left-truncate nothing, pad nothing; the questions
        # are chosen so the rows differ in length, so cut each to the shortest (prefixes of a
        # prompt are prompts too; the image token stays at position 5).
        length = min(len(r) for r in rows)
        input_ids = torch.tensor([r[:length] for r in rows])
    else:
        length = 14
        input_ids = torch.randint(5, vocab, (batch, length), generator=gen)
        input_ids[:, 0] = 0
        for b in range(batch):
            input_ids[b, 1 + b] = image_token
    num_tiles = [list(map(int, n)) for n in processed["num_tiles"]]
    token_masks = [get_cross_attention_token_mask(ids.tolist(), image_token) for ids in input_ids]
    cross = torch.from_numpy(
        convert_sparse_cross_attention_mask_to_dense(token_masks, num_tiles, max_tiles, length)).long()
    inputs = dict(
        input_ids=input_ids,
        attention_mask=torch.ones_like(input_ids),
        pixel_values=torch.from_numpy(np.asarray(processed["pixel_values"])).float(),
        aspect_ratio_ids=torch.from_numpy(np.asarray(processed["aspect_ratio_ids"])).long(),
        aspect_ratio_mask=torch.from_numpy(np.asarray(processed["aspect_ratio_mask"])).long(),
        cross_attention_mask=cross,
    )
    device = torch.device(args.device)
    model = model.to(device)
    on = {k: t.to(device) for k, t in inputs.items()}
    with torch.no_grad():
        logits = model(**on, use_cache=False).logits.float().cpu()
        greedy = greedy_without_cache(model, on, NEW_TOKENS).cpu()
    tensors = {k: t.contiguous() for k, t in inputs.items()}
    tensors["greedy_ids"] = greedy.contiguous()
    if vocab > 4096:
        columns = torch.randperm(vocab, generator=gen)[:1024].sort().values
        tensors["logits_columns_index"] = columns.long()
        tensors["logits_columns"] = logits[:, :, columns].contiguous()
        tensors["logits_last"] = logits[:, -1, :].contiguous()
    else:
        tensors["logits"] = logits.contiguous()
    save_file(tensors, str(out / "reference.safetensors"))
    config.to_json_file(str(out / "config.json"))
    model = model.cpu()
    weights = {}
    for k, t in model.state_dict().items():
        t = t.detach().contiguous()
        weights[hub_name(k)] = t.to(torch.bfloat16) if spec["bf16"] else t
    save_file(weights, str(out / "model.safetensors"), metadata={"format": "pt"})
    return {"num_tiles": num_tiles, "length": length, "batch": batch, "new_tokens": NEW_TOKENS,
            "bf16_weights": spec["bf16"], "logits_abs_mean": logits.abs().mean().item(),
            "greedy_distinct": int(greedy[:, length:].unique().numel()), "chat": chat is not None}


def main():
    args = parse_args()
    import torch
    import transformers

    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    meta = {"torch": torch.__version__, "transformers": transformers.__version__,
            "python": sys.version.split()[0], "device": args.device, "seed": args.seed, "checkpoints": {}}
    for name, spec in CONFIGS.items():
        if args.only and name not in args.only:
            continue
        meta["checkpoints"][name] = build(name, spec, args, out)
        print(json.dumps({name: meta["checkpoints"][name]}), flush=True)
    json.dump(meta, open(out / "meta.json", "w"), indent=1)


if __name__ == "__main__":
    main()
