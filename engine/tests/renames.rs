//! Cache identity under renames, and `plan`'s reasons as data.
//!
//! A node's name reaches its cache key only through its seed, and only for operators that draw
//! random numbers (`Operator::uses_seed`; among the toys, `clamp` is the deterministic one). So
//! a renamed `clamp` node stays fresh, while a renamed `emit` node re-runs and `plan` says why.
//! `plan --json` carries each reason as a tagged value; its snapshot pins the format.

mod common;

use std::path::{Path, PathBuf};

use clap::Parser;
use judgeflow_engine::cache::Cache;
use judgeflow_engine::cli::{self, Cli};
use judgeflow_engine::dirty::DirtyReason;
use judgeflow_engine::exec::{self, RunOptions, Status};
use judgeflow_engine::progress::ProgressHub;

struct Bench {
    dir: tempfile::TempDir,
    registry: judgeflow_engine::Registry,
    log: std::sync::Arc<common::RunLog>,
}

impl Bench {
    fn new() -> Self {
        let (registry, log) = common::registry();
        Bench {
            dir: tempfile::tempdir().unwrap(),
            registry,
            log,
        }
    }

    fn cache_dir(&self) -> PathBuf {
        self.dir.path().join("cache")
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    /// Runs; returns the sorted names of the nodes whose operator ran.
    fn run(&self, pipeline: &Path) -> Vec<String> {
        let plan = cli::load(pipeline, &self.registry, &[]).unwrap();
        let cache = Cache::open(self.cache_dir()).unwrap();
        exec::run(
            &plan,
            &cache,
            &RunOptions { jobs: 2, gpus: 1 },
            &ProgressHub::hidden(),
        )
        .unwrap();
        self.log.take()
    }

    fn status(&self, pipeline: &Path, node: &str) -> Status {
        let plan = cli::load(pipeline, &self.registry, &[]).unwrap();
        let cache = Cache::open(self.cache_dir()).unwrap();
        exec::status(&plan, &cache)
            .unwrap()
            .into_iter()
            .find(|(i, _)| plan.graph[*i].name == node)
            .map(|(_, s)| s)
            .unwrap_or_else(|| panic!("no node {node}"))
    }

    fn cli(&self, args: &[&str]) -> String {
        let cache = self.cache_dir();
        let mut argv = vec!["judgeflow", "--cache", cache.to_str().unwrap()];
        argv.extend_from_slice(args);
        let mut out = String::new();
        cli::execute(Cli::parse_from(argv), &self.registry, &mut out).unwrap();
        out
    }
}

/// `src` (random: `emit`) → `step` (deterministic: `clamp`) → `tail` (`summarize`).
fn chain(src: &str, step: &str) -> String {
    format!(
        r#"
[pipeline]
name = "chain"
seed = 11

[nodes.{src}]
op = "emit"
n = 4

[nodes.{step}]
op = "clamp"
max = 2.0
inputs = ["{src}"]

[nodes.tail]
op = "summarize"
inputs = ["{step}"]
"#
    )
}

#[test]
fn renaming_a_deterministic_node_keeps_its_entry() {
    let b = Bench::new();
    let before = b.write("chain.toml", &chain("src", "step"));
    assert_eq!(b.run(&before), ["src", "step", "tail"]);
    let after = b.write("chain.toml", &chain("src", "renamed_step"));
    assert!(
        matches!(b.status(&after, "renamed_step"), Status::Fresh { .. }),
        "{:?}",
        b.status(&after, "renamed_step")
    );
    assert!(matches!(b.status(&after, "tail"), Status::Fresh { .. }));
    let text = b.cli(&["plan", after.to_str().unwrap()]);
    assert!(
        text.lines().all(|l| l.starts_with("fresh")),
        "a renamed deterministic node is fresh:\n{text}"
    );
    assert!(b.run(&after).is_empty(), "nothing re-runs");
}

#[test]
fn renaming_a_random_node_reruns_it_and_plan_says_that_the_name_seeds_it() {
    let b = Bench::new();
    let before = b.write("chain.toml", &chain("src", "step"));
    b.run(&before);
    let after = b.write("chain.toml", &chain("renamed_src", "step"));
    match b.status(&after, "renamed_src") {
        Status::Dirty { why, .. } => {
            assert!(
                matches!(why.as_slice(), [DirtyReason::RenamedSeeded { old, new }] if old != new),
                "{why:?}"
            );
        }
        other => panic!("a renamed random node is a new draw: {other:?}"),
    }
    let text = b.cli(&["plan", after.to_str().unwrap()]);
    assert!(
        text.contains("dirty    renamed_src")
            && text.contains("the same settings ran under another name")
            && text.contains("seed derives from the node's name"),
        "{text}"
    );
    // The toy `emit` ignores its seed, so the new draw reproduces the old bytes: only the
    // renamed node runs, and early cutoff keeps everything downstream.
    assert_eq!(b.run(&after), ["renamed_src"]);
    // A random node whose seed is pinned (`seed = N`) can be renamed without re-running.
    let pinned = chain("pinned_src", "step").replace("n = 4", "n = 5\nseed = 42");
    let pinned = b.write("pinned.toml", &pinned);
    b.run(&pinned);
    let moved = b.write(
        "pinned.toml",
        &std::fs::read_to_string(&pinned)
            .unwrap()
            .replace("pinned_src", "moved_src"),
    );
    assert!(matches!(
        b.status(&moved, "moved_src"),
        Status::Fresh { .. }
    ));
    assert!(b.run(&moved).is_empty());
}

#[test]
fn plan_json_reasons_are_typed() {
    let b = Bench::new();
    let first = r#"
[pipeline]
name = "reasons"
seed = 5

[nodes.a]
op = "emit"
n = 3

[nodes.b]
op = "add"
delta = 1.0
inputs = ["a"]

[nodes.c]
op = "summarize"
inputs = ["b"]

[nodes.d]
op = "emit"
n = 2
"#;
    let p = b.write("reasons.toml", first);
    b.run(&p);
    // One of each: a parameter changed (and its dependent waits), a random node renamed, a new node.
    let second = first
        .replace("delta = 1.0", "delta = 1.5")
        .replace("[nodes.d]", "[nodes.d2]")
        + "\n[nodes.e]\nop = \"emit\"\nn = 7\n";
    let p = b.write("reasons.toml", &second);
    let json = b.cli(&["plan", p.to_str().unwrap(), "--json"]);
    insta::assert_snapshot!("plan_json_reasons", redact_keys(&json));
    let text = b.cli(&["plan", p.to_str().unwrap()]);
    insta::assert_snapshot!("plan_text_reasons", text);
}

/// Cache keys depend on the parquet bytes the toys write; the reasons are what is pinned here.
fn redact_keys(json: &str) -> String {
    let mut v: serde_json::Value = serde_json::from_str(json).unwrap();
    for row in v.as_array_mut().unwrap() {
        if let Some(key) = row["status"].get_mut("key") {
            *key = "KEY".into();
        }
    }
    serde_json::to_string_pretty(&v).unwrap()
}
