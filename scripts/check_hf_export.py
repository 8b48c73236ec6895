#!/usr/bin/env python3
"""Loads a `judgeflow export --format hf` directory as a user of it would, and checks it.

    python3 scripts/check_hf_export.py DIR [--rows N] [--image-column image]

With the Hugging Face `datasets` library installed it loads DIR with `load_dataset(DIR)` (the
card's YAML header names the shards) and with the `parquet` builder on the shards alone (the
features then come from the shards' `huggingface` schema metadata), and decodes the first image
of every `Image` column. Without `datasets` it reads the shards with pyarrow and checks the same
things by hand: the features metadata, the `{bytes, path}` image structs, PNG/JPEG bytes.
Either way it checks the dataset card. Prints what it loaded; exits non-zero on the first
problem.
"""

import argparse
import glob
import json
import os
import sys

PNG = b"\x89PNG\r\n\x1a\n"
JPEG = b"\xff\xd8\xff"


def fail(message):
    print(f"FAIL: {message}", file=sys.stderr)
    sys.exit(1)


def check_card(root):
    path = os.path.join(root, "README.md")
    if not os.path.exists(path):
        fail("no dataset card README.md")
    card = open(path, encoding="utf-8").read()
    if not card.startswith("---\n"):
        fail("the card has no YAML header")
    for needle in ("dataset_info:", "| pipeline |", "| node |", "| cache key |", "## Parameters"):
        if needle not in card:
            fail(f"the card lacks {needle!r}")
    print(f"card: {len(card)} characters, names pipeline, node, parameters and cache key")


def with_datasets(datasets, root, shards, rows, image_column):
    ds = datasets.load_dataset(root, split="train")
    print(ds)
    print(ds.features)
    by_parquet = datasets.load_dataset("parquet", data_files=shards, split="train")
    if by_parquet.features != ds.features:
        fail(f"the shards' own metadata gives other features: {by_parquet.features}")
    images = [k for k, f in ds.features.items() if isinstance(f, datasets.Image)]
    if image_column and image_column not in images:
        fail(f"`{image_column}` is not an Image feature (Image columns: {images})")
    if rows is not None and len(ds) != rows:
        fail(f"{len(ds)} rows, expected {rows}")
    for col in images:
        img = ds[0][col]
        img.load()
        print(f"{col}[0]: {img.format} {img.size} {img.mode}")
    print(f"datasets {datasets.__version__}: loaded {len(ds)} rows, Image columns {images}")


def with_pyarrow(shards, rows, image_column):
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        fail("neither `datasets` nor `pyarrow` is installed (pip install datasets)")

    table = pa.concat_tables([pq.read_table(s) for s in shards])
    print(table.schema)
    meta = table.schema.metadata or {}
    if b"huggingface" not in meta:
        fail("no `huggingface` schema metadata")
    features = json.loads(meta[b"huggingface"])["info"]["features"]
    if list(features) != table.column_names:
        fail(f"features {list(features)} do not match columns {table.column_names}")
    images = [k for k, f in features.items() if f.get("_type") == "Image"]
    if image_column and image_column not in images:
        fail(f"`{image_column}` is not an Image feature (Image columns: {images})")
    if rows is not None and table.num_rows != rows:
        fail(f"{table.num_rows} rows, expected {rows}")
    for col in images:
        t = table.schema.field(col).type
        if not pa.types.is_struct(t) or [t.field(i).name for i in range(t.num_fields)] != ["bytes", "path"]:
            fail(f"`{col}` is {t}, not the Image struct {{bytes, path}}")
        first = table.column(col)[0].as_py()["bytes"]
        if not (first.startswith(PNG) or first.startswith(JPEG)):
            fail(f"`{col}`[0] holds no PNG or JPEG bytes")
        try:
            import io

            from PIL import Image

            img = Image.open(io.BytesIO(first))
            img.load()
            print(f"{col}[0]: {img.format} {img.size} {img.mode}")
        except ImportError:
            print(f"{col}[0]: {len(first)} bytes of {'PNG' if first.startswith(PNG) else 'JPEG'}")
    print(f"pyarrow {pa.__version__}: read {table.num_rows} rows, Image columns {images}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dir")
    parser.add_argument("--rows", type=int, help="expected number of rows")
    parser.add_argument("--image-column", help="a column that must load as an Image")
    args = parser.parse_args()
    root = os.path.abspath(args.dir)
    check_card(root)
    shards = sorted(glob.glob(os.path.join(root, "data", "train-*.parquet")))
    if not shards:
        fail("no shards data/train-*.parquet")
    print(f"{len(shards)} shard(s)")
    try:
        import datasets
    except ImportError:
        datasets = None
    if datasets is not None:
        with_datasets(datasets, root, shards, args.rows, args.image_column)
    else:
        print("(`datasets` is not installed: checking with pyarrow)")
        with_pyarrow(shards, args.rows, args.image_column)
    print("OK")


if __name__ == "__main__":
    main()
