//! What the end-to-end tests of whole pipelines share: the built `judgeflow` binary run from the
//! repository root (where the shipped pipelines' relative paths hold), and the frames its `show`
//! points to.

use std::path::{Path, PathBuf};
use std::process::Command;

use polars::prelude::*;

/// `judgeflow --cache CACHE ARGS...`, which must succeed; its standard output.
pub fn judgeflow(cache: &Path, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_judgeflow"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .arg("--cache")
        .arg(cache)
        .args(args)
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        out.status.success(),
        "judgeflow {args:?} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// A node's output frame, read from the path `judgeflow show` prints first; `sets` are the
/// `--set` arguments the pipeline ran with (they are part of the node's key).
pub fn shown_frame(
    cache: &Path,
    pipeline: &str,
    node: &str,
    port: &str,
    sets: &[&str],
) -> DataFrame {
    let show = [pipeline, node, "--port", port, "--rows", "1"];
    let out = judgeflow(cache, &[&["show"][..], &show, sets].concat());
    let first = out.lines().next().unwrap();
    let path = PathBuf::from(first.split_once(": ").unwrap().1.trim());
    ParquetReader::new(std::fs::File::open(path).unwrap())
        .finish()
        .unwrap()
}
