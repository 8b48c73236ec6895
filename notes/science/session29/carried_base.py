#!/usr/bin/env python3
"""pipelines/self_train.toml with its base read from a model directory instead of pretrained.

Session 29: the device machine came rarely, and self_train.toml's pretraining (6,000 steps,
~440 s on an H100 beside the control's) would have taken a third of the session's device time to
re-make a base session 27 had already exported (`.bin/bases_st/bases/st_main`: this file's own
GPU pretraining at base seed 3; `st_control` its random-verdict control). This writes a
pipeline whose `base` node is that directory (`op = "source"`, `kind = "hf_model"`, as in
judge_lab_self_train.toml), everything else self_train.toml's: the prompt world, the
1,500-item bench, the loop, the same `pretrain.model` references renamed `base.model`. The
pretraining corpus (`world`) and the perception probe go (they only describe the base).

    carried_base.py BASE_DIR OUT.toml
"""
import re
import sys

base, out = sys.argv[1], sys.argv[2]
text = open("pipelines/self_train.toml").read()
blocks = re.split(r"(?m)^(?=\[)", text)
keep = []
for b in blocks:
    head = b.split("\n", 1)[0].strip()
    if head in ("[nodes.world]", "[nodes.probe]", "[nodes.describe]", "[nodes.perception]"):
        continue
    if head == "[nodes.pretrain]":
        b = f'[nodes.base]\nop = "source"\nkind = "hf_model"\npath = "{base}"\n\n'
    keep.append(b)
text = "".join(keep).replace("pretrain.model", "base.model")
text = text.replace('initial = { train = "pretrain" }', 'initial = { train = "base" }')
text = re.sub(r'(?m)^name = "self_train"$', 'name = "self_train_carried"', text)
open(out, "w").write(text)
