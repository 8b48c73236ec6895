//! The `report` subcommand's engine half: what it hands a reporter, and its refusal without one.

mod common;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use clap::Parser;
use judgeflow_engine::cache::Cache;
use judgeflow_engine::cli::{self, Cli, ReportNode};
use judgeflow_engine::exec::{self, RunOptions};
use judgeflow_engine::progress::ProgressHub;
use judgeflow_engine::trace::TraceLine;

const LOOP_SWEEP: &str = r#"
[pipeline]
name = "loop"

[nodes.data]
op = "emit"
n = 2

[nodes.start]
op = "fit"
steps = 1
inputs = ["data"]

[nodes.fit]
op = "fit"
inputs = { numbers = "data", init = "fit@prev" }

[nodes.check]
op = "score"
inputs = { weights = "fit", numbers = "data" }

[iterate.loop]
times = 2
nodes = ["fit", "check"]
initial = { fit = "start.weights" }

[sweep]
"fit.steps" = [1, 2]
"#;

/// Writes one line per node (fn pointers capture nothing, so the test reads the file back).
fn listing_reporter(
    pipeline: &str,
    nodes: &[ReportNode],
    trace: Option<&[TraceLine]>,
    out_dir: &Path,
) -> miette::Result<Vec<PathBuf>> {
    let mut text = format!("pipeline {pipeline}\n");
    if let Some(lines) = trace {
        let ran = lines.iter().filter(|l| l.status == "ran").count();
        let _ = writeln!(text, "trace of {} nodes, {ran} ran", lines.len());
    }
    for n in nodes {
        let outputs: Vec<String> = n
            .outputs
            .iter()
            .map(|(port, path)| format!("{port}:{}", path.exists()))
            .collect();
        let _ = writeln!(
            text,
            "{} template={} iteration={:?} op={} variants={:?} outputs={} seconds={}",
            n.name,
            n.template,
            n.iteration,
            n.op,
            n.variants,
            outputs.join(","),
            n.seconds.is_some()
        );
    }
    std::fs::create_dir_all(out_dir).map_err(|e| miette::miette!("{e}"))?;
    let path = out_dir.join("nodes.txt");
    std::fs::write(&path, text).map_err(|e| miette::miette!("{e}"))?;
    Ok(vec![path])
}

fn failing_reporter(
    _: &str,
    _: &[ReportNode],
    _: Option<&[TraceLine]>,
    _: &Path,
) -> miette::Result<Vec<PathBuf>> {
    Err(miette::miette!("the reporter could not read something"))
}

fn argv<'a>(cache: &'a Path, args: &[&'a str]) -> Vec<&'a str> {
    let mut argv = vec!["judgeflow", "--cache", cache.to_str().unwrap()];
    argv.extend_from_slice(args);
    argv
}

#[test]
fn report_without_a_reporter_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("loop.toml");
    std::fs::write(&p, LOOP_SWEEP).unwrap();
    let (registry, _) = common::registry();
    let cache = dir.path().join("cache");
    let out = dir.path().join("report");
    let cli = Cli::parse_from(argv(
        &cache,
        &[
            "report",
            p.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ],
    ));
    let err = cli::execute(cli, &registry, &mut String::new()).unwrap_err();
    assert_eq!(cli::exit_code(&err), 2);
    let text = cli::render(&err, 100, false);
    assert!(text.contains("needs a reporter"), "{text}");
    assert!(text.contains("main_with_reporter"), "help is shown: {text}");
    assert!(!out.exists(), "nothing is written");
}

#[test]
fn the_reporter_gets_every_node_with_fresh_outputs_only() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("loop.toml");
    std::fs::write(&p, LOOP_SWEEP).unwrap();
    let (registry, _) = common::registry();
    let cache_dir = dir.path().join("cache");
    let out = dir.path().join("report");
    let plan = cli::load(&p, &registry, &[]).unwrap();
    let cache = Cache::open(&cache_dir).unwrap();
    exec::run(
        &plan,
        &cache,
        &RunOptions { jobs: 2, gpus: 1 },
        &ProgressHub::hidden(),
    )
    .unwrap();

    // Changing `start` leaves `data` fresh and everything after it without a result.
    let args = [
        "report",
        p.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--set",
        "start.steps=5",
    ];
    let mut printed = String::new();
    cli::execute_with(
        Cli::parse_from(argv(&cache_dir, &args)),
        &registry,
        Some(listing_reporter),
        &mut printed,
    )
    .unwrap();
    assert!(printed.contains("nodes.txt"), "{printed}");
    assert!(printed.contains("1 of 10 nodes have results"), "{printed}");
    let listing = std::fs::read_to_string(out.join("nodes.txt")).unwrap();
    assert!(
        listing.starts_with("pipeline loop\ntrace of 10 nodes, 10 ran\n"),
        "the newest run's trace comes along: {listing}"
    );
    assert!(
        listing.contains(
            "data template=data iteration=None op=emit variants=[\"fit.steps=1\", \"fit.steps=2\"] outputs=numbers:true seconds=true"
        ),
        "{listing}"
    );
    assert!(
        listing.contains("check@2[fit.steps=2] template=check iteration=Some(2) op=score variants=[\"fit.steps=2\"] outputs= seconds=false"),
        "{listing}"
    );

    // Without the override everything is fresh, artifacts included.
    let args = [
        "report",
        p.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ];
    cli::execute_with(
        Cli::parse_from(argv(&cache_dir, &args)),
        &registry,
        Some(listing_reporter),
        &mut String::new(),
    )
    .unwrap();
    let listing = std::fs::read_to_string(out.join("nodes.txt")).unwrap();
    assert!(
        listing.contains("fit@1[fit.steps=1] template=fit iteration=Some(1) op=fit variants=[\"fit.steps=1\"] outputs=curve:true,weights:true seconds=true"),
        "{listing}"
    );
    assert_eq!(listing.matches("seconds=true").count(), 10, "{listing}");
}

#[test]
fn a_failing_reporter_exits_1_and_an_invalid_pipeline_2() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("loop.toml");
    std::fs::write(&p, LOOP_SWEEP).unwrap();
    let (registry, _) = common::registry();
    let cache = dir.path().join("cache");
    let args = ["report", p.to_str().unwrap(), "--out", "unused"];
    let err = cli::execute_with(
        Cli::parse_from(argv(&cache, &args)),
        &registry,
        Some(failing_reporter),
        &mut String::new(),
    )
    .unwrap_err();
    assert!(err.downcast_ref::<judgeflow_engine::Error>().is_none());
    assert!(err.to_string().contains("could not read something"));

    let args = [
        "report",
        p.to_str().unwrap(),
        "--out",
        "unused",
        "--set",
        "nope.x=1",
    ];
    let err = cli::execute_with(
        Cli::parse_from(argv(&cache, &args)),
        &registry,
        Some(failing_reporter),
        &mut String::new(),
    )
    .unwrap_err();
    let engine = err
        .downcast_ref::<judgeflow_engine::Error>()
        .expect("an engine error");
    assert_eq!(cli::exit_code(engine), 2);
}
