//! The README's effect pipeline, `pipelines/quickstart_judge.toml`, at a small size on a fresh
//! cache: the shipped base judge (`pipelines/bases/judge_lab_b6s3`) loads and judges better than
//! chance with the image, two iterations run with the strict filter, and `compare` reports the
//! last iteration's gain paired over the same items. At this size the gain itself is noise; the
//! README's command runs the full size.

mod common;

use std::path::Path;

use common::{judgeflow, shown_frame};

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

/// `judgeflow ARGS...` at the small size.
fn small(cache: &Path, args: &[&str]) -> String {
    judgeflow(cache, &[args, &SMALL[..]].concat())
}

/// A node's output frame at the small size.
fn frame(cache: &Path, node: &str, port: &str) -> DataFrame {
    shown_frame(cache, PIPELINE, node, port, &SMALL)
}

#[test]
fn the_shipped_base_judges_and_two_strict_iterations_report_a_paired_gain() {
    let cache = tempfile::tempdir().unwrap();
    let run = small(cache.path(), &["run", PIPELINE, "--jobs", "2"]);
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

    let compare = small(cache.path(), &["compare", PIPELINE]);
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
