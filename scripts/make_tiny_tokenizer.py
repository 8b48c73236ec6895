"""A word-level tokenizer for the tiny random checkpoint model/tests/fixtures/mllama_tiny
(vocab_size 96, image_token_index 96), so that the checkpoint plus these files form a complete
Hugging Face model directory: tokenizer.json (88 words, the 7 Llama 3.2 special tokens judgeflow
needs, one spare word, <|image|> as id 96), tokenizer_config.json with the fixture chat
template, preprocessor_config.json (28-px tiles, at most 4) and generation_config.json.

Run from the repository root:  python3 scripts/make_tiny_tokenizer.py
"""

import json
import pathlib

from tokenizers import Tokenizer, models, pre_tokenizers, decoders

OUT = pathlib.Path("model/tests/fixtures/mllama_tiny_files")
HERE = pathlib.Path(__file__).resolve().parent

WORDS = (
    "[UNK] a an the is are of in on to and or which answer better image picture shows "
    "red green blue yellow square circle triangle star one two three four left right above "
    "below next A B Verdict : . , ? ! user assistant system question reasoning because "
    "first second third both neither correct wrong more less color shape count describe what "
    "how many there it this that with without big small cat dog chair window sky tree "
    "sun car house person table cup judge good bad"
).split()


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    words = WORDS[:88]
    assert len(words) == 88, len(words)
    vocab = {w: i for i, w in enumerate(words)}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Whitespace()])
    tok.decoder = decoders.WordPiece(prefix="##")
    specials = ["<|begin_of_text|>", "<|end_of_text|>", "<|finetune_right_pad_id|>",
                "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>", "<|python_tag|>",
                "<|reserved_special_token_0|>", "<|image|>"]
    spec = json.loads(tok.to_str())
    spec["added_tokens"] = [
        {"id": 88 + k, "content": c, "single_word": False, "lstrip": False, "rstrip": False,
         "normalized": False, "special": True}
        for k, c in enumerate(specials)
    ]
    assert spec["added_tokens"][-1]["id"] == 96
    (OUT / "tokenizer.json").write_text(json.dumps(spec, indent=1))
    (OUT / "tokenizer_config.json").write_text(json.dumps({
        "bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>",
        "pad_token": "<|finetune_right_pad_id|>",
        "chat_template": (HERE / "fixtures" / "llama32_vision_chat_template.jinja").read_text(),
    }, indent=1))
    (OUT / "preprocessor_config.json").write_text(json.dumps({
        "image_processor_type": "MllamaImageProcessor", "do_resize": True, "do_rescale": True,
        "do_normalize": True, "do_pad": True, "do_convert_rgb": True, "max_image_tiles": 4,
        "size": {"height": 28, "width": 28}, "resample": 2, "rescale_factor": 1 / 255,
        "image_mean": [0.48145466, 0.4578275, 0.40821073],
        "image_std": [0.26862954, 0.26130258, 0.27577711],
    }, indent=1))
    (OUT / "generation_config.json").write_text(json.dumps({
        "bos_token_id": 88, "eos_token_id": [89, 93], "pad_token_id": 90,
        "do_sample": True, "temperature": 0.6, "top_p": 0.9,
    }, indent=1))
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
