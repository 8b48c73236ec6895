"""Fixtures for judgeflow's chat template and image processor, made with transformers without
torch (tokenizers, Jinja chat templates and the PIL/numpy MllamaImageProcessorPil need none).

Writes model/tests/fixtures/hf_processor/:
  tokenizer.json, tokenizer_config.json   a small Llama-3.2-layout tokenizer with a chat template
  chat.json                               conversations, rendered text and apply_chat_template ids
  images/*.png, processor.json            pictures of many sizes and aspect ratios, the settings
  processor.safetensors                   MllamaImageProcessorPil outputs per case

Run from the repository root:  python3 scripts/make_processor_fixtures.py
(pip install transformers==5.* pillow jinja2 safetensors numpy)
"""

import json
import pathlib
import sys

import numpy as np
import PIL
import transformers
from PIL import Image
from safetensors.numpy import save_file
from transformers import PreTrainedTokenizerFast
from transformers.models.mllama.image_processing_pil_mllama import MllamaImageProcessorPil

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent / "fixtures"))
import llama32_tokenizer  # noqa: E402

OUT = pathlib.Path("model/tests/fixtures/hf_processor")
CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073]
CLIP_STD = [0.26862954, 0.26130258, 0.27577711]

# (tile size, max tiles, picture (height, width), mode): grids of 1..8 tiles, tall, wide, tiny,
# exact multiples, upscaling and downscaling, transparency.
CASES = [
    (32, 4, (50, 130), "RGB"),
    (32, 4, (130, 50), "RGB"),
    (32, 6, (50, 130), "RGB"),
    (32, 6, (64, 96), "RGB"),
    (28, 4, (1, 1), "RGB"),
    (28, 4, (3, 200), "RGB"),
    (28, 8, (300, 40), "RGB"),
    (24, 9, (72, 72), "RGB"),
    (24, 9, (100, 61), "RGBA"),
    (40, 2, (41, 39), "RGB"),
    (40, 1, (90, 17), "L"),
    (16, 16, (20, 333), "RGB"),
]


def picture(index, height, width, mode):
    rng = np.random.RandomState(1000 + index)
    y, x = np.mgrid[0:height, 0:width]
    base = np.stack([(x * 7 + y * 3) % 256, (y * 5) % 256, (x * 11) % 256], -1).astype(np.float64)
    noise = rng.randint(0, 64, size=(height, width, 3))
    rgb = np.clip(base * 0.75 + noise, 0, 255).astype(np.uint8)
    if mode == "RGBA":
        alpha = ((x + y) * 255 // max(1, height + width - 2)).astype(np.uint8)
        return Image.fromarray(np.dstack([rgb, alpha]), "RGBA")
    image = Image.fromarray(rgb, "RGB")
    return image.convert("L") if mode == "L" else image


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "images").mkdir(exist_ok=True)
    vocab = llama32_tokenizer.build(OUT, base_vocab=1000)
    tokenizer = PreTrainedTokenizerFast.from_pretrained(str(OUT))
    assert len(tokenizer) == vocab, (len(tokenizer), vocab)
    chats = []
    for messages, generation in llama32_tokenizer.CONVERSATIONS:
        text = tokenizer.apply_chat_template(messages, add_generation_prompt=generation, tokenize=False)
        ids = tokenizer.apply_chat_template(messages, add_generation_prompt=generation, tokenize=True)
        if isinstance(ids, dict) or hasattr(ids, "keys"):
            ids = ids["input_ids"]
        chats.append({"messages": messages, "add_generation_prompt": generation, "text": text,
                      "ids": [int(i) for i in ids]})
    (OUT / "chat.json").write_text(json.dumps(chats, indent=1, ensure_ascii=False))

    tensors, cases = {}, []
    for i, (tile, max_tiles, (h, w), mode) in enumerate(CASES):
        name = f"case{i:02}"
        image = picture(i, h, w, mode)
        image.save(OUT / "images" / f"{name}.png")
        # The CLIP mean/std of Meta's preprocessor_config.json: the class defaults to 0.5/0.5.
        processor = MllamaImageProcessorPil(size={"height": tile, "width": tile}, max_image_tiles=max_tiles,
                                            image_mean=CLIP_MEAN, image_std=CLIP_STD)
        out = processor([[Image.open(OUT / "images" / f"{name}.png")]], return_tensors="np")
        tensors[f"{name}.pixel_values"] = np.ascontiguousarray(out["pixel_values"][0, 0], dtype=np.float32)
        tensors[f"{name}.aspect_ratio_ids"] = np.asarray(out["aspect_ratio_ids"][0], dtype=np.int64)
        tensors[f"{name}.aspect_ratio_mask"] = np.asarray(out["aspect_ratio_mask"][0, 0], dtype=np.int64)
        cases.append({"name": name, "tile_size": tile, "max_image_tiles": max_tiles, "height": h,
                      "width": w, "mode": mode, "num_tiles": int(out["num_tiles"][0][0])})
    save_file(tensors, str(OUT / "processor.safetensors"))
    (OUT / "processor.json").write_text(json.dumps({
        "transformers": transformers.__version__, "pillow": PIL.__version__,
        "processor": "MllamaImageProcessorPil",
        "cases": cases}, indent=1))
    print(f"wrote {len(chats)} chats and {len(cases)} processor cases to {OUT}")


if __name__ == "__main__":
    main()
