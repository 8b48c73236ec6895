#!/usr/bin/env python3
"""What issue 11's full-size runs need, made on the GPU machine (no weights can be downloaded):

  checkpoint OUT [--chain]   an HF directory of the Llama-3.2-11B-Vision shape
      (model/tests/fixtures/llama32_11b_vision_config.json): random bf16 weights from
      transformers' own init, saved by save_pretrained in 5 GB shards with its index;
      tokenizer.json / tokenizer_config.json (Llama 3.2's 128,256 + <|image|> ids, special
      tokens and chat template: the `real_vocab` parity fixture's); a 560-px
      preprocessor_config.json and a generation_config.json with Llama 3.2's values.
      With --chain the random model is made to write one reply, so that every node of the
      method has something to parse (random weights write no verdict line, and the pipeline
      would stop at `train` with nothing kept): every layer's output projections (attention,
      cross-attention, MLP down) are zeroed, so the residual stream is the current token's
      embedding and the next token depends on the current token alone, and the LM head maps
      the generation prompt's last token through a chain of distinct tokens that spells
      "Overall Judgment: Answer" (up to case) then " A" or " B" at equal logits (the choice
      is the sampler's), then <|eot_id|>. Everything else (attention, vision tower, projector) keeps
      its random weights and its full cost. meta.json records which.
  data OUT   a few pictures of several sizes and aspect ratios, prompts.jsonl (open and closed
      prompts), VL-RewardBench rows in the Hugging Face release's parquet schema (id, query,
      response[2], human_ranking[2], query_source, image {bytes, path}) and Multimodal
      RewardBench rows in its all_data.json schema (ID, Text, Image, Output1, Output2, Better,
      Category), with images under OUT.

    python3 scripts/device_llama32_11b.py checkpoint /tmp/llama11b --chain
    python3 scripts/device_llama32_11b.py data /tmp/llama11b_data
"""

import argparse
import io
import json
import pathlib
import shutil
import time

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent
CONFIG = ROOT / "model/tests/fixtures/llama32_11b_vision_config.json"
TOKENIZER = ROOT / "model/tests/fixtures/mllama_device/real_vocab"
PREFIX = "Overall Judgment: Answer"


def vocab_pieces(tokenizer):
    """Each ordinary token's text, lower-cased, to its (id, text)s (the verdict parser ignores
    case)."""
    pieces = {}
    for token, i in tokenizer.get_vocab().items():
        s = tokenizer.convert_tokens_to_string([token])
        if i < tokenizer.vocab_size and s and "\ufffd" not in s:
            pieces.setdefault(s.lower(), []).append((i, s))
    return pieces


def chain_tokens(pieces, text, banned):
    """Distinct token ids, none in `banned`, whose concatenation spells `text` up to case: any
    spelling `pieces` (from `vocab_pieces`) allows, longest pieces first and the exact case
    before others (so " A" is " A", which generation watches for the verdict's probability),
    backtracking when a piece is used up. The tokenizer's BPE was learnt on a small corpus
    (scripts/fixtures/llama32_tokenizer.py), so most words are several pieces and single letters
    recur: case variants are what leave enough distinct pieces."""
    by_len = sorted({len(s) for s in pieces}, reverse=True)
    lower = text.lower()

    def search(at, used):
        if at == len(lower):
            return []
        for n in by_len:
            exact = text[at:at + n]
            for i, _ in sorted(pieces.get(lower[at:at + n], []), key=lambda p: p[1] != exact):
                if i not in used:
                    tail = search(at + n, used | {i})
                    if tail is not None:
                        return [i] + tail
        return None

    ids = search(0, frozenset(banned))
    if ids is None:
        raise RuntimeError(f"no spelling of {text!r} in distinct tokens")
    return ids


def make_chain(model, tokenizer):
    import torch

    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Q"}]}]
    prompt = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True)
    if not isinstance(prompt, list):  # a BatchEncoding in newer transformers
        prompt = prompt["input_ids"]
    start = prompt[-1]
    eot = tokenizer.convert_tokens_to_ids("<|eot_id|>")
    # The reply: the verdict line's prefix, then " A" or " B" at equal logits, then <|eot_id|>
    # (the parser needs nothing after the letter but a non-alphanumeric character or the end).
    pieces = vocab_pieces(tokenizer)
    a_id, b_id = (chain_tokens(pieces, f" {x}", {start, eot}) for x in "AB")
    if len(a_id) != 1 or len(b_id) != 1:
        raise RuntimeError(f"' A' / ' B' are not single tokens: {a_id} {b_id}")
    a_id, b_id = a_id[0], b_id[0]
    first = chain_tokens(pieces, PREFIX, {start, eot, a_id, b_id})
    assert tokenizer.decode(first).lower() == PREFIX.lower(), tokenizer.decode(first)
    lm = model.model.language_model
    with torch.no_grad():
        for layer in lm.layers:
            for name in ("self_attn", "cross_attn"):
                attn = getattr(layer, name, None)
                if attn is not None:
                    attn.o_proj.weight.zero_()
            layer.mlp.down_proj.weight.zero_()
        embed = lm.embed_tokens.weight
        head_w = model.lm_head.weight

        def unit(i):
            e = embed[i].float()
            return e / e.norm()

        # next token <- current token; rows of the LM head point at the current token's
        # embedding (RMS-normed embeddings have norm ~64, so each logit is ~64 against ~7 for
        # the largest random one).
        links = [(start, first[0])] + list(zip(first, first[1:]))
        links += [(first[-1], a_id), (first[-1], b_id), (a_id, eot), (b_id, eot)]
        targets = {}
        for cur, nxt in links:
            targets.setdefault(nxt, []).append(cur)
        for nxt, curs in targets.items():
            head_w[nxt] = sum(unit(c) for c in curs).to(head_w.dtype)
    return {"start": start, "prefix": first, "letters": [a_id, b_id], "eot": eot,
            "reply": tokenizer.decode(first + [a_id])}


def checkpoint(args):
    import torch
    from transformers import MllamaConfig, MllamaForConditionalGeneration, PreTrainedTokenizerFast

    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    config = MllamaConfig.from_json_file(str(CONFIG))
    torch.manual_seed(0)
    with torch.device("cuda"):
        try:
            model = MllamaForConditionalGeneration._from_config(config, dtype=torch.bfloat16)
        except TypeError:  # transformers < 4.56 only knows `torch_dtype`
            model = MllamaForConditionalGeneration._from_config(config, torch_dtype=torch.bfloat16)
    model = model.to(torch.bfloat16)
    for f in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(TOKENIZER / f, out / f)
    tokenizer = PreTrainedTokenizerFast.from_pretrained(str(out))
    meta = {"config": str(CONFIG.relative_to(ROOT)), "params": sum(p.numel() for p in model.parameters()),
            "init_s": time.time() - t0}
    if args.chain:
        try:
            meta["chain"] = make_chain(model, tokenizer)
        except Exception as e:  # keep the random checkpoint: everything up to `filter` still runs
            meta["chain_error"] = repr(e)
    t1 = time.time()
    model.save_pretrained(str(out), max_shard_size="5GB")
    meta["save_s"] = time.time() - t1
    pre = json.loads((TOKENIZER / "preprocessor_config.json").read_text())
    pre["size"] = {"height": 560, "width": 560}
    (out / "preprocessor_config.json").write_text(json.dumps(pre, indent=1))
    (out / "generation_config.json").write_text(json.dumps({
        "bos_token_id": 128000, "eos_token_id": [128001, 128008, 128009], "pad_token_id": 128004,
        "do_sample": True, "temperature": 0.6, "top_p": 0.9}, indent=1))
    (out / "meta.json").write_text(json.dumps(meta, indent=1))
    print(json.dumps(meta))


def picture(seed, width, height):
    import numpy as np
    from PIL import Image, ImageDraw

    rng = np.random.default_rng(seed)
    img = Image.new("RGB", (width, height), tuple(int(c) for c in rng.integers(0, 255, 3)))
    draw = ImageDraw.Draw(img)
    for _ in range(3):
        x, y = int(rng.integers(0, width - 40)), int(rng.integers(0, height - 40))
        draw.ellipse([x, y, x + 40, y + 40], fill=tuple(int(c) for c in rng.integers(0, 255, 3)))
    return img


def data(args):
    import pyarrow as pa
    import pyarrow.parquet as pq

    out = pathlib.Path(args.out)
    (out / "images").mkdir(parents=True, exist_ok=True)
    sizes = [(640, 480), (300, 800), (1200, 400), (560, 560), (200, 150), (900, 1300)]
    names = []
    for i, (w, h) in enumerate(sizes):
        name = f"images/p{i}.png"
        picture(i, w, h).save(out / name)
        names.append(name)
    prompts = [
        {"id": "o1", "image": names[0], "prompt": "Describe the image.", "open": True},
        {"id": "o2", "image": names[1], "prompt": "What is in this picture?", "open": True},
        {"id": "c1", "image": names[2], "prompt": "How many circles are there?", "answer": "3"},
        {"id": "c2", "image": names[3], "prompt": "Is there a circle?", "answer": "yes"},
    ]
    (out / "prompts.jsonl").write_text("".join(json.dumps(p) + "\n" for p in prompts))
    rows = []
    for i, (rid, source) in enumerate([("RLAIF-V-0", "RLAIF-V"), ("wildvision-1", "WildVision"),
                                       ("mathverse-2", "MathVerse"), ("hallucination_pair-3", "POVID")]):
        buf = io.BytesIO()
        picture(10 + i, *sizes[i]).save(buf, format="PNG")
        rows.append({"id": rid, "query": "Describe the image.",
                     "response": ["Three circles on a plain background.", "A dog on a beach."],
                     "human_ranking": [0, 1], "query_source": source,
                     "image": {"bytes": buf.getvalue(), "path": f"{rid}.png"}})
    (out / "vl_rewardbench").mkdir(exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows), out / "vl_rewardbench/test-00000-of-00001.parquet")
    mm = [{"ID": f"mm-{i}", "Text": "What does the picture show?", "Image": names[i],
           "Output1": "Circles.", "Output2": "A city at night.", "Better": "Output1",
           "Category": cat} for i, cat in enumerate(["vqa", "reasoning", "safety", "knowledge"])]
    (out / "all_data.json").write_text(json.dumps(mm, indent=1))
    print(json.dumps({"prompts": len(prompts), "vlrewardbench": len(rows), "mmrewardbench": len(mm)}))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("what", choices=["checkpoint", "data"])
    p.add_argument("out")
    p.add_argument("--chain", action="store_true")
    args = p.parse_args()
    {"checkpoint": checkpoint, "data": data}[args.what](args)


if __name__ == "__main__":
    main()
