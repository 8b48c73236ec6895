//! `judgeflow export`: a node's cached output leaves the cache in each format, read back here —
//! in particular the `hf` layout the `datasets` library loads (`scripts/check_hf_export.py`
//! loads a real one with `datasets` itself).

mod common;

use std::path::{Path, PathBuf};

use clap::Parser;
use judgeflow_engine::cache::Cache;
use judgeflow_engine::cli::{self, Cli};
use polars::prelude::*;

const PIPELINE: &str = r#"
[pipeline]
name = "gallery"
seed = 5

[nodes.pics]
op = "pictures"
n = 4

[nodes.data]
op = "emit"
n = 3

[nodes.fit]
op = "fit"
steps = 3
inputs = ["data"]
"#;

struct Bench {
    dir: tempfile::TempDir,
    registry: judgeflow_engine::Registry,
}

impl Bench {
    fn new() -> (Self, PathBuf) {
        let (registry, _) = common::registry();
        let b = Bench {
            dir: tempfile::tempdir().unwrap(),
            registry,
        };
        let p = b.dir.path().join("gallery.toml");
        std::fs::write(&p, PIPELINE).unwrap();
        b.cli(&["run", p.to_str().unwrap()]).unwrap();
        (b, p)
    }

    fn cli(&self, args: &[&str]) -> Result<String, judgeflow_engine::Error> {
        let cache = self.dir.path().join("cache");
        let mut argv = vec!["judgeflow", "--cache", cache.to_str().unwrap()];
        argv.extend_from_slice(args);
        let mut out = String::new();
        cli::execute(Cli::parse_from(argv), &self.registry, &mut out).map(|()| out)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn key(&self, node: &str) -> String {
        Cache::open(self.path("cache"))
            .unwrap()
            .last_run("gallery", node)
            .unwrap()
    }

    fn export(&self, p: &Path, target: &str, format: &str, to: &str) -> PathBuf {
        let to = self.path(to);
        let out = self
            .cli(&[
                "export",
                p.to_str().unwrap(),
                target,
                "--format",
                format,
                "--to",
                to.to_str().unwrap(),
            ])
            .unwrap();
        assert!(out.starts_with("exported "), "{out}");
        to
    }
}

fn base64_decode(text: &str) -> Vec<u8> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => panic!("not base64: {c}"),
    };
    let mut out = Vec::new();
    for chunk in text.as_bytes().chunks(4) {
        let digits: Vec<u8> = chunk
            .iter()
            .filter(|&&c| c != b'=')
            .map(|&c| value(c))
            .collect();
        let n = digits
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &d)| n | u32::from(d) << (18 - 6 * i));
        out.extend((0..digits.len() - 1).map(|i| (n >> (16 - 8 * i)) as u8));
    }
    out
}

fn read(path: &Path) -> DataFrame {
    ParquetReader::new(std::fs::File::open(path).unwrap())
        .finish()
        .unwrap()
}

fn binaries(c: &Column) -> Vec<Vec<u8>> {
    c.binary()
        .unwrap()
        .iter()
        .map(|b| b.unwrap().to_vec())
        .collect()
}

#[test]
fn hf_export_has_image_structs_with_the_frames_bytes_and_a_card() {
    let (b, p) = Bench::new();
    let dir = b.export(&p, "pics.pictures", "hf", "hf");
    let shard = dir.join("data/train-00000-of-00001.parquet");
    let df = read(&shard);
    let cached = read(&Cache::open(b.path("cache")).unwrap().output_path(
        &b.key("pics"),
        "pictures",
        true,
    ));

    // Same columns in the same order; `image` is the `datasets` Image struct {bytes, path}.
    assert_eq!(df.get_column_names(), cached.get_column_names());
    assert_eq!(
        df.column("image").unwrap().dtype(),
        &DataType::Struct(vec![
            Field::new("bytes".into(), DataType::Binary),
            Field::new("path".into(), DataType::String),
        ])
    );
    let image = df.column("image").unwrap().struct_().unwrap().clone();
    let bytes = binaries(&image.field_by_name("bytes").unwrap().into_column());
    assert_eq!(bytes, (0..4).map(common::picture_bytes).collect::<Vec<_>>());
    assert_eq!(bytes, binaries(cached.column("image").unwrap()));
    assert_eq!(
        image.field_by_name("path").unwrap().null_count(),
        4,
        "path is null: the bytes are the image"
    );
    for col in ["id", "caption", "tags", "score"] {
        assert!(
            df.column(col)
                .unwrap()
                .equals_missing(cached.column(col).unwrap()),
            "{col} unchanged"
        );
    }

    // `datasets` reads the features from the schema metadata.
    let mut reader = ParquetReader::new(std::fs::File::open(&shard).unwrap());
    let meta = reader.get_metadata().unwrap().clone();
    let kv = meta.key_value_metadata.clone().unwrap();
    let hf = kv.iter().find(|k| k.key == "huggingface").unwrap();
    let features: serde_json::Value = serde_json::from_str(hf.value.as_ref().unwrap()).unwrap();
    let features = &features["info"]["features"];
    assert_eq!(features["image"]["_type"], "Image");
    assert_eq!(features["caption"]["dtype"], "string");
    assert_eq!(features["id"]["dtype"], "int64");
    assert_eq!(features["tags"]["_type"], "Sequence");
    assert_eq!(features["score"]["dtype"], "float64");
    // pyarrow reads the types the stored arrow schema names, and `datasets` uses the features
    // only where they map to exactly those types: `string`, `binary`, `list`, not polars' own
    // view types. The schema carries the features too (pyarrow reads metadata from it).
    let stored = kv.iter().find(|k| k.key == "ARROW:schema").unwrap();
    let framed = base64_decode(stored.value.as_ref().unwrap());
    assert_eq!(framed[..4], [255, 255, 255, 255]);
    let (arrow, _, metadata) =
        polars_arrow::io::ipc::read::deserialize_schema(&framed[8..]).unwrap();
    assert_eq!(
        metadata.unwrap().get("huggingface").map(|v| v.as_str()),
        hf.value.as_deref()
    );
    let dtype = |c: &str| arrow.get(c).unwrap().dtype.clone();
    use polars::prelude::ArrowDataType as A;
    assert_eq!(dtype("caption"), A::Utf8);
    assert!(matches!(dtype("tags"), A::List(_)), "{:?}", dtype("tags"));
    match dtype("image") {
        A::Struct(fields) => assert_eq!(
            fields.iter().map(|f| f.dtype.clone()).collect::<Vec<_>>(),
            [A::Binary, A::Utf8]
        ),
        other => panic!("image is {other:?}"),
    }

    // The card names where the frame came from.
    let card = std::fs::read_to_string(dir.join("README.md")).unwrap();
    assert!(card.starts_with("---\n"), "YAML header first");
    for needle in [
        "pretty_name: \"gallery — pics.pictures\"",
        "path: data/train-*.parquet",
        "  - name: \"image\"\n    dtype: image",
        "  - name: \"tags\"\n    sequence: string",
        "| pipeline | `gallery`",
        "| node | `pics`",
        "| operator | `pictures`",
        "\"n\": 4",
    ] {
        assert!(card.contains(needle), "card lacks {needle:?}:\n{card}");
    }
    assert!(card.contains(&format!("| cache key | `{}` |", b.key("pics"))));
    let listed: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    let mut listed = listed;
    listed.sort();
    assert_eq!(listed, ["README.md", "data"], "no temporary leftovers");
}

#[test]
fn parquet_jsonl_and_csv_exports_carry_every_row() {
    let (b, p) = Bench::new();
    let cached =
        Cache::open(b.path("cache"))
            .unwrap()
            .output_path(&b.key("pics"), "pictures", true);

    let dir = b.export(&p, "pics", "parquet", "pq");
    assert_eq!(
        std::fs::read(dir.join("pictures.parquet")).unwrap(),
        std::fs::read(&cached).unwrap(),
        "parquet is the cached file byte for byte"
    );

    let dir = b.export(&p, "pics", "jsonl", "jsonl");
    let text = std::fs::read_to_string(dir.join("pictures.jsonl")).unwrap();
    let rows: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 4);
    for (i, row) in rows.iter().enumerate() {
        let image = row["image"].as_str().unwrap();
        assert_eq!(image, format!("pictures/image/{i:06}.png"));
        assert_eq!(
            std::fs::read(dir.join(image)).unwrap(),
            common::picture_bytes(i as i64)
        );
        assert_eq!(row["tags"], serde_json::json!([format!("t{i}"), "shared"]));
        assert_eq!(
            row["caption"],
            format!("a \"shape\", number {i}\nsecond line")
        );
    }
    assert!(rows[1]["score"].is_null(), "a missing value stays missing");

    let dir = b.export(&p, "pics", "csv", "csv");
    let text = std::fs::read_to_string(dir.join("pictures.csv")).unwrap();
    assert!(text.starts_with("id,image,caption,tags,score\n"), "{text}");
    assert!(
        text.contains("0,pictures/image/000000.png,\"a \"\"shape\"\", number 0\nsecond line\",\"[\"\"t0\"\",\"\"shared\"\"]\",0.0\n"),
        "{text}"
    );
}

#[test]
fn a_checkpoint_exports_as_its_directory_with_a_card_and_nothing_is_overwritten() {
    let (b, p) = Bench::new();
    let dir = b.export(&p, "fit.weights", "hf", "model");
    let cached = Cache::open(b.path("cache"))
        .unwrap()
        .output_path(&b.key("fit"), "weights", false);
    assert_eq!(
        std::fs::read(dir.join("w.txt")).unwrap(),
        std::fs::read(cached.join("w.txt")).unwrap()
    );
    let card = std::fs::read_to_string(dir.join("README.md")).unwrap();
    assert!(card.contains("\"steps\": 3"), "{card}");

    // A non-empty target is refused and left as it was.
    let err = b
        .cli(&[
            "export",
            p.to_str().unwrap(),
            "pics",
            "--to",
            dir.to_str().unwrap(),
        ])
        .unwrap_err();
    assert!(
        cli::render(&err, 100, false).contains("exists and is not an empty directory"),
        "{}",
        cli::render(&err, 100, false)
    );
    assert!(!dir.join("pictures.parquet").exists());

    // An unknown port names the ones there are.
    let err = b
        .cli(&[
            "export",
            p.to_str().unwrap(),
            "fit.weight",
            "--to",
            b.path("x").to_str().unwrap(),
        ])
        .unwrap_err();
    let text = cli::render(&err, 100, false);
    assert!(text.contains("outputs: weights, curve"), "{text}");
    assert!(!b.path("x").exists());
}
