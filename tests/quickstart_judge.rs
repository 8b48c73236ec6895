//! The README's effect pipeline, `pipelines/quickstart_judge.toml`, at a small size on a fresh
//! cache: the shipped base judge (`pipelines/bases/judge_lab_b6s3`) loads and judges better than
//! chance with the image, two iterations run with the strict filter, and `compare` reports the
//! last iteration's gain paired over the same items. At this size the gain itself is noise; the
//! README's command runs the full size.

use std::path::Path;
use std::process::Command;

use judgeflow_schemas::{FrameRow, KeptStatsRow, MetricsRow};
use polars::prelude::*;

const PIPELINE: &str = "pipelines/quickstart_judge.toml";

/// Small enough for a debug build: 20 held-out scenes (60 bench items), 30 open and 10 closed
/// prompts an iteration.
const SMALL: [&str; 8] = [
    "--set",
    "bench.count=20",
    "--set",
    "world.count=200",
    "--set",
    "sample_open.limit=30",
    "--set",
    "sample_closed.limit=10",
];

fn judgeflow(cache: &Path, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_judgeflow"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .arg("--cache")
        .arg(cache)
        .args(args)
        .args(SMALL)
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

/// A node's output frame, found through `judgeflow show`'s first line.
fn frame(cache: &Path, node: &str, port: &str) -> DataFrame {
    let out = judgeflow(
        cache,
        &["show", PIPELINE, node, "--port", port, "--rows", "1"],
    );
    let first = out.lines().next().unwrap();
    let path = first.split_once(": ").unwrap().1.trim();
    ParquetReader::new(std::fs::File::open(path).unwrap())
        .finish()
        .unwrap()
}

#[test]
fn the_shipped_base_judges_and_two_strict_iterations_report_a_paired_gain() {
    let cache = tempfile::tempdir().unwrap();
    let run = judgeflow(cache.path(), &["run", PIPELINE, "--jobs", "2"]);
    assert!(run.contains("evaluate@2"), "{run}");

    // The shipped base sees: with the image it beats chance, blind it does not get far from it.
    let overall = |node: &str| -> MetricsRow {
        MetricsRow::from_frame(&frame(cache.path(), node, "metrics"))
            .unwrap()
            .into_iter()
            .find(|r| r.dimension == "overall")
            .unwrap()
    };
    let sighted = overall("eval_base");
    let blind = overall("eval_base_blind");
    assert!(sighted.n >= 50, "{sighted:?}");
    assert!(
        sighted.accuracy > 0.55,
        "the shipped base judges: {sighted:?}"
    );
    assert!(
        sighted.accuracy > blind.accuracy,
        "the image helps: {sighted:?} against {blind:?}"
    );

    // The strict filter: an order passes only where three of its four samples agree, so the
    // kept judgements are at most two a pair and fewer than the agreeing ones.
    let stats = KeptStatsRow::from_frame(&frame(cache.path(), "filter@1", "stats")).unwrap();
    let total = stats.iter().find(|r| r.kind == "total").unwrap();
    assert!(total.kept <= 2 * total.pairs, "{total:?}");
    assert!(total.kept_fraction < 0.5, "{total:?}");

    let compare = judgeflow(cache.path(), &["compare", PIPELINE]);
    assert!(
        compare.contains("gain evaluate@2 − eval_base"),
        "compare names the gain: {compare}"
    );
    assert!(compare.contains("paired bootstrap"), "{compare}");
    assert!(
        compare
            .lines()
            .any(|l| l.starts_with("overall") && l.contains("seed 1: ")),
        "the overall gain has its seed line: {compare}"
    );
}
