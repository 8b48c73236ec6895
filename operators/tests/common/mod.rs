//! Fixtures shared by the file-source tests: a tempdir that writes image and data files and
//! runs one-node pipelines through the real engine, image bytes, and column readers.
// Each test file uses part of this module.
#![allow(dead_code)]

use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use image::{ImageFormat, Rgb, RgbImage};
use judgeflow_engine::cache::Cache;
use judgeflow_engine::exec::{self, RunOptions};
use judgeflow_engine::op::read_parquet;
use judgeflow_engine::progress::ProgressHub;
use judgeflow_engine::{Error, cli};
use judgeflow_schemas::columns;
use polars::prelude::*;

pub struct Fixture {
    dir: tempfile::TempDir,
    runs: AtomicUsize,
}

impl Fixture {
    pub fn new() -> Self {
        Fixture {
            dir: tempfile::tempdir().unwrap(),
            runs: AtomicUsize::new(0),
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn write(&self, name: &str, bytes: impl AsRef<[u8]>) -> PathBuf {
        let p = self.path(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, bytes).unwrap();
        p
    }

    pub fn jsonl(&self, name: &str, lines: &[String]) -> PathBuf {
        self.write(name, lines.join("\n") + "\n")
    }

    /// Runs a one-node pipeline `[nodes.src]` with `body` as its table and returns its frame.
    /// Each run gets a fresh cache: a source's key covers its parameters, not the file's bytes,
    /// and fixtures change between runs.
    pub fn run(&self, body: &str) -> Result<DataFrame, Error> {
        let n = self.runs.fetch_add(1, Ordering::SeqCst);
        let pipeline = self.write(
            &format!("pipeline{n}.toml"),
            format!("[pipeline]\nname = \"sources\"\nseed = 11\n\n[nodes.src]\nop = \"source\"\n{body}\n"),
        );
        let plan = cli::load(&pipeline, &judgeflow_operators::registry(), &[])?;
        let cache = Cache::open(self.path(&format!("cache{n}")))?;
        let reports = exec::run(
            &plan,
            &cache,
            &RunOptions { jobs: 1, gpus: 1 },
            &ProgressHub::hidden(),
        )?;
        let node = &plan.graph[plan.order[0]];
        let key = reports[0].key.clone().expect("a node that ran has a key");
        let (_, file, _) =
            exec::output_file(&cache, &key, node, None).expect("the node has a frame output");
        read_parquet(&file)
    }
}

pub fn image_bytes(seed: u8, format: ImageFormat) -> Vec<u8> {
    let img = RgbImage::from_fn(16, 12, |x, y| Rgb([seed, (x * 13) as u8, (y * 17) as u8]));
    let mut out = Cursor::new(Vec::new());
    img.write_to(&mut out, format).unwrap();
    out.into_inner()
}

pub fn png(seed: u8) -> Vec<u8> {
    image_bytes(seed, ImageFormat::Png)
}

pub fn jpeg(seed: u8) -> Vec<u8> {
    image_bytes(seed, ImageFormat::Jpeg)
}

/// A PNG cut off halfway: its signature and header are intact, so only decoding finds it.
pub fn truncated_png() -> Vec<u8> {
    let mut bytes = png(99);
    bytes.truncate(bytes.len() / 2);
    bytes
}

pub fn strs(df: &DataFrame, col: &str) -> Vec<Option<String>> {
    columns::optional_strings(df, col).unwrap()
}

pub fn strings(df: &DataFrame, col: &str) -> Vec<String> {
    strs(df, col)
        .into_iter()
        .map(|s| s.expect("no nulls"))
        .collect()
}

pub fn count(values: &[String], want: &str) -> usize {
    values.iter().filter(|v| *v == want).count()
}

/// The operator's diagnostic inside the engine's `NodeFailed`: its code and its message.
pub fn node_failure(err: Error) -> (String, String) {
    match err {
        Error::NodeFailed { cause, .. } => (
            cause.code().map(|c| c.to_string()).unwrap_or_default(),
            cause.to_string(),
        ),
        other => panic!("expected a node failure, got {other:?}"),
    }
}

pub fn lit(p: &Path) -> String {
    format!("'{}'", p.display())
}
