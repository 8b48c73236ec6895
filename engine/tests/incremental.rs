//! Incremental re-runs, counted: what runs after a change must be exactly what the change
//! invalidates.

mod common;

use std::path::{Path, PathBuf};

use clap::Parser;
use judgeflow_engine::cache::Cache;
use judgeflow_engine::cli::{self, Cli};
use judgeflow_engine::exec::{self, NodeReport, RunOptions, Status};
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

    /// Runs and returns the sorted names of nodes whose operator ran.
    fn run(&self, pipeline: &Path, set: &[&str]) -> Vec<String> {
        self.run_reports(pipeline, set);
        self.log.take()
    }

    fn run_reports(&self, pipeline: &Path, set: &[&str]) -> Vec<NodeReport> {
        let set: Vec<String> = set.iter().map(|s| s.to_string()).collect();
        let plan = cli::load(pipeline, &self.registry, &set).unwrap();
        let cache = Cache::open(self.cache_dir()).unwrap();
        exec::run(
            &plan,
            &cache,
            &RunOptions { jobs: 3, gpus: 1 },
            &ProgressHub::hidden(),
        )
        .unwrap()
    }

    /// Runs a pipeline that must fail; returns the error and its rendered diagnostic.
    fn run_failing(&self, pipeline: &Path, opts: RunOptions) -> (judgeflow_engine::Error, String) {
        let plan = cli::load(pipeline, &self.registry, &[]).unwrap();
        let cache = Cache::open(self.cache_dir()).unwrap();
        let err = exec::run(&plan, &cache, &opts, &ProgressHub::hidden()).unwrap_err();
        let text = cli::render(&err, 100, false);
        (err, text)
    }

    fn statuses(&self, pipeline: &Path, set: &[&str]) -> Vec<(String, Status)> {
        let set: Vec<String> = set.iter().map(|s| s.to_string()).collect();
        let plan = cli::load(pipeline, &self.registry, &set).unwrap();
        let cache = Cache::open(self.cache_dir()).unwrap();
        exec::status(&plan, &cache)
            .unwrap()
            .into_iter()
            .map(|(i, s)| (plan.graph[i].name.clone(), s))
            .collect()
    }

    fn cli(&self, args: &[&str]) -> Result<String, judgeflow_engine::Error> {
        let cache = self.cache_dir();
        let mut argv = vec!["judgeflow", "--cache", cache.to_str().unwrap()];
        argv.extend_from_slice(args);
        let mut out = String::new();
        cli::execute(Cli::parse_from(argv), &self.registry, &mut out).map(|()| out)
    }
}

const DIAMOND: &str = r#"
[pipeline]
name = "diamond"
seed = 3

[nodes.a]
op = "emit"
n = 5

[nodes.b]
op = "add"
delta = 1.0
inputs = ["a"]

[nodes.c]
op = "add"
delta = 10.0
inputs = ["b"]

[nodes.d]
op = "emit"
n = 5
scale = 3.0

[nodes.e]
op = "merge"
inputs = { left = "c", right = "d" }

[nodes.f]
op = "summarize"
inputs = ["e"]

[nodes.g]
op = "summarize"
inputs = ["d"]
"#;

#[test]
fn first_run_runs_everything_and_a_rerun_nothing() {
    let b = Bench::new();
    let p = b.write("diamond.toml", DIAMOND);
    assert_eq!(b.run(&p, &[]), ["a", "b", "c", "d", "e", "f", "g"]);
    assert!(b.run(&p, &[]).is_empty());
    assert!(
        b.statuses(&p, &[])
            .iter()
            .all(|(_, s)| matches!(s, Status::Fresh { .. }))
    );
}

#[test]
fn changing_one_parameter_reruns_exactly_its_downstream_cone() {
    let b = Bench::new();
    let p = b.write("diamond.toml", DIAMOND);
    b.run(&p, &[]);
    let statuses = b.statuses(&p, &["b.delta=2"]);
    let state = |n: &str| {
        statuses
            .iter()
            .find(|(x, _)| x == n)
            .map(|(_, s)| s.clone())
            .unwrap()
    };
    match state("b") {
        Status::Dirty { why, .. } => assert_eq!(why, ["param delta: 1.0 → 2.0"]),
        other => panic!("b should be dirty, is {other:?}"),
    }
    assert!(matches!(state("c"), Status::Waiting { .. }));
    assert!(matches!(state("d"), Status::Fresh { .. }));
    assert_eq!(b.run(&p, &["b.delta=2"]), ["b", "c", "e", "f"]);
    // Going back re-uses the entries of the first run: nothing runs.
    assert!(b.run(&p, &[]).is_empty());
}

#[test]
fn early_cutoff_keeps_dependents_fresh_when_output_bytes_repeat() {
    let b = Bench::new();
    let p = b.write(
        "cutoff.toml",
        r#"
[pipeline]
name = "cutoff"

[nodes.a]
op = "emit"
n = 3

[nodes.b]
op = "clamp"
max = 0.5
inputs = ["a"]

[nodes.c]
op = "summarize"
inputs = ["b"]
"#,
    );
    b.run(&p, &[]);
    // Values 0,1,2 → 0,2,4: clamped to 0,0.5,0.5 either way, so `b` re-runs and reproduces
    // its bytes, and `c` must stay fresh.
    let reports = b.run_reports(&p, &["a.scale=2"]);
    assert_eq!(b.log.take(), ["a", "b"]);
    let c = reports.iter().find(|r| r.node == "c").unwrap();
    assert_eq!(c.outcome, exec::Outcome::Fresh);
}

#[test]
fn a_sweep_runs_shared_nodes_once() {
    let b = Bench::new();
    let p = b.write(
        "sweep.toml",
        r#"
[pipeline]
name = "sweep"

[nodes.a]
op = "emit"

[nodes.b]
op = "add"
delta = 0.0
inputs = ["a"]

[nodes.c]
op = "summarize"
inputs = ["b"]

[sweep]
"b.delta" = [1.0, 2.0, 3.0]
"#,
    );
    let mut ran = b.run(&p, &[]);
    ran.dedup_by(|x, y| x.split('[').next() == y.split('[').next());
    assert_eq!(b.statuses(&p, &[]).len(), 7, "a once, b and c per variant");
    assert_eq!(ran, ["a", "b[b.delta=1.0]", "c[b.delta=1.0]"]);
    let out = b.cli(&["compare", p.to_str().unwrap()]).unwrap();
    insta::assert_snapshot!("compare_sweep", out);
    let plan = b.cli(&["plan", p.to_str().unwrap()]).unwrap();
    insta::assert_snapshot!("plan_sweep_fresh", plan);
}

const LOOP: &str = r#"
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

[nodes.final]
op = "score"
inputs = { weights = "fit@last", numbers = "data" }

[iterate.loop]
times = 3
nodes = ["fit", "check"]
initial = { fit = "start.weights" }
"#;

#[test]
fn iterations_unroll_into_named_nodes_that_chain() {
    let b = Bench::new();
    let p = b.write("loop.toml", LOOP);
    let ran = b.run(&p, &[]);
    assert_eq!(
        ran,
        [
            "check@1", "check@2", "check@3", "data", "final", "fit@1", "fit@2", "fit@3", "start"
        ]
    );
    let graph = b
        .cli(&["graph", p.to_str().unwrap(), "--format", "mermaid"])
        .unwrap();
    insta::assert_snapshot!("graph_loop_mermaid", graph);
    // data = [0, 1]: start w = 1; each fit adds 2 * 1; final scores w + 2 rows.
    let shown = b.cli(&["show", p.to_str().unwrap(), "final"]).unwrap();
    assert!(shown.contains("score   9.0"), "{shown}");
    // Changing the loop body's parameter re-runs every repetition but not `start`.
    assert_eq!(
        b.run(&p, &["fit.steps=3"]),
        [
            "check@1", "check@2", "check@3", "final", "fit@1", "fit@2", "fit@3"
        ]
    );
}

#[test]
fn more_repetitions_from_the_command_line_run_only_the_new_ones() {
    let b = Bench::new();
    let p = b.write("loop.toml", LOOP);
    b.run(&p, &[]);
    // Repetitions 1-3 are the file's: cached; 4 and 5 and what reads the last one run.
    assert_eq!(
        b.run(&p, &["iterate.loop.times=5"]),
        ["check@4", "check@5", "final", "fit@4", "fit@5"]
    );
    // start w = 1, five fits add 2 each, final scores w + 2.
    let shown = b
        .cli(&[
            "show",
            p.to_str().unwrap(),
            "final",
            "--set",
            "iterate.loop.times=5",
        ])
        .unwrap();
    assert!(shown.contains("score   13.0"), "{shown}");
    // Fewer repetitions than the file: a prefix, all cached except what reads the last one.
    assert_eq!(b.run(&p, &["iterate.loop.times=2"]), ["final"]);
    // The file's own count again: nothing to do.
    assert!(b.run(&p, &[]).is_empty());
}

#[test]
fn a_corrupt_entry_is_reported_and_recomputed() {
    let b = Bench::new();
    let p = b.write("diamond.toml", DIAMOND);
    b.run(&p, &[]);
    let cache = Cache::open(b.cache_dir()).unwrap();
    let key = cache.last_run("diamond", "b").unwrap();
    let file = cache.output_path(&key, "numbers", true);
    let mut bytes = std::fs::read(&file).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&file, &bytes).unwrap();
    let statuses = b.statuses(&p, &[]);
    let (_, s) = statuses.iter().find(|(n, _)| n == "b").unwrap();
    match s {
        Status::Dirty { why, .. } => assert!(
            matches!(&why[0], judgeflow_engine::dirty::DirtyReason::EntryCorrupt { detail } if detail.contains("numbers.parquet")),
            "{why:?}"
        ),
        other => panic!("b should be dirty after corruption: {other:?}"),
    }
    // `b` reproduces identical bytes, so its dependents stay fresh.
    assert_eq!(b.run(&p, &[]), ["b"]);
    assert!(b.run(&p, &[]).is_empty());
}

#[test]
fn explain_names_each_changed_ingredient() {
    let b = Bench::new();
    let p = b.write("diamond.toml", DIAMOND);
    b.run(&p, &[]);
    let path = p.to_str().unwrap();
    let fresh = b.cli(&["explain", path, "b"]).unwrap();
    assert!(fresh.contains("`b` is fresh"), "{fresh}");
    let out = b
        .cli(&["explain", path, "b", "--set", "b.delta=4"])
        .unwrap();
    assert!(out.contains("param delta: 1.0 → 4.0"), "{out}");
    // After another run, going back to the first settings finds everything still cached...
    b.run(&p, &["a.n=6"]);
    assert!(
        b.cli(&["explain", path, "b"])
            .unwrap()
            .contains("`b` is fresh")
    );
    // ...while a never-run upstream value makes `b` wait on `a`.
    let out = b.cli(&["explain", path, "b", "--set", "a.n=7"]).unwrap();
    assert!(
        out.contains("`b` waits for dirty upstream node(s) a"),
        "{out}"
    );
    let out = b.cli(&["explain", path, "e", "--set", "a.n=7"]).unwrap();
    assert!(out.contains("waits for dirty upstream node(s) c"), "{out}");
    let err = b.cli(&["explain", path, "bb"]).unwrap_err();
    assert!(cli::render(&err, 100, false).contains("did you mean `b`?"));
}

#[test]
fn plan_json_is_machine_readable() {
    let b = Bench::new();
    let p = b.write("diamond.toml", DIAMOND);
    let out = b.cli(&["plan", p.to_str().unwrap(), "--json"]).unwrap();
    let rows: serde_json::Value = serde_json::from_str(&out).unwrap();
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 7);
    assert_eq!(rows[0]["status"]["state"], "dirty");
    assert_eq!(rows[0]["status"]["why"][0]["reason"], "never_run");
    assert_eq!(rows[0]["status"]["why"][0]["text"], "never run");
    assert_eq!(
        rows.iter()
            .filter(|r| r["status"]["state"] == "dirty")
            .count(),
        2,
        "the two sources"
    );
    assert_eq!(
        rows.iter()
            .filter(|r| r["status"]["state"] == "waiting")
            .count(),
        5
    );
}

#[test]
fn a_failing_node_publishes_nothing_and_is_named() {
    let b = Bench::new();
    let p = b.write(
        "fail.toml",
        r#"
[pipeline]
name = "fail"

[nodes.a]
op = "emit"

[nodes.boom]
op = "fail"
inputs = ["a"]

[nodes.after]
op = "summarize"
inputs = ["boom"]
"#,
    );
    let (err, text) = b.run_failing(&p, RunOptions { jobs: 2, gpus: 1 });
    assert!(
        text.contains("node `boom` (op `fail`) failed") && text.contains("always fails"),
        "{text}"
    );
    assert_eq!(cli::exit_code(&err), 1);
    assert_eq!(
        std::fs::read_dir(b.cache_dir().join("entries"))
            .unwrap()
            .count(),
        1,
        "only `a` was published"
    );
    assert_eq!(b.log.take(), ["a", "boom"]);
}

#[test]
fn gpu_nodes_never_overlap_beyond_the_gpus_that_exist() {
    let b = Bench::new();
    let mut text = String::from("[pipeline]\nname = \"gpus\"\n\n[nodes.a]\nop = \"emit\"\n");
    for i in 0..6 {
        text.push_str(&format!(
            "\n[nodes.g{i}]\nop = \"gpu_probe\"\ninputs = [\"a\"]\nseed = {i}\n"
        ));
    }
    let p = b.write("gpus.toml", &text);
    let plan = cli::load(&p, &b.registry, &[]).unwrap();
    let cache = Cache::open(b.cache_dir()).unwrap();
    exec::run(
        &plan,
        &cache,
        &RunOptions { jobs: 6, gpus: 2 },
        &ProgressHub::hidden(),
    )
    .unwrap();
    let peak = common::GPU_PEAK.load(std::sync::atomic::Ordering::SeqCst);
    assert!(
        (1..=2).contains(&peak),
        "peak {peak} GPU nodes at once with 2 GPUs"
    );
}

#[test]
fn gc_removes_entries_no_given_pipeline_references() {
    let b = Bench::new();
    let p = b.write("diamond.toml", DIAMOND);
    b.run(&p, &[]);
    b.run(&p, &["a.n=7"]);
    let entries = || {
        std::fs::read_dir(b.cache_dir().join("entries"))
            .unwrap()
            .count()
    };
    // a, b, c and e got new keys; e reproduced its bytes (merge truncates to 5 rows), so f
    // stayed fresh; d and g were untouched.
    assert_eq!(entries(), 7 + 4);
    let out = b.cli(&["gc", p.to_str().unwrap(), "--dry-run"]).unwrap();
    assert!(out.starts_with("would remove 4 entries"), "{out}");
    assert_eq!(entries(), 11);
    b.cli(&["gc", p.to_str().unwrap()]).unwrap();
    assert_eq!(entries(), 7);
    assert!(b.run(&p, &[]).is_empty());
}

#[test]
fn show_refuses_nodes_without_a_result() {
    let b = Bench::new();
    let p = b.write("diamond.toml", DIAMOND);
    let err = b.cli(&["show", p.to_str().unwrap(), "f"]).unwrap_err();
    assert!(cli::render(&err, 100, false).contains("has no up-to-date result"));
    b.run(&p, &[]);
    let out = b
        .cli(&["show", p.to_str().unwrap(), "f", "--rows", "1"])
        .unwrap();
    assert!(
        out.contains("f.parquet") || out.contains("metrics.parquet"),
        "{out}"
    );
    assert!(
        out.contains("2 rows × 2 columns") && out.contains("mean") && !out.contains("max "),
        "{out}"
    );
}

#[test]
fn a_panicking_operator_fails_its_node_instead_of_hanging_the_run() {
    let b = Bench::new();
    let p = b.write(
        "panic.toml",
        "[pipeline]\nname = \"panic\"\n\n[nodes.a]\nop = \"emit\"\n\n[nodes.p]\nop = \"panic\"\ninputs = [\"a\"]\n",
    );
    let (_, text) = b.run_failing(&p, RunOptions { jobs: 2, gpus: 1 });
    assert!(
        text.contains("node `p` (op `panic`) failed") && text.contains("panicked on purpose"),
        "{text}"
    );
}

#[test]
fn a_node_needing_more_gpus_than_exist_is_refused_before_running() {
    let b = Bench::new();
    let p = b.write(
        "gpu.toml",
        "[pipeline]\nname = \"gpu\"\n\n[nodes.a]\nop = \"emit\"\ngpus = 4\n",
    );
    let (err, text) = b.run_failing(&p, RunOptions { jobs: 2, gpus: 2 });
    assert_eq!(cli::exit_code(&err), 2);
    assert!(text.contains("needs 4 GPUs, but only 2 are available"));
    assert!(b.log.take().is_empty());
}

#[test]
fn editing_an_external_file_reruns_its_reader_but_touching_it_does_not() {
    let b = Bench::new();
    let data = b.dir.path().join("data.txt");
    std::fs::write(&data, "1\n2\n").unwrap();
    let text = format!(
        "[pipeline]\nname = \"files\"\n\n[nodes.read]\nop = \"read_file\"\npath = {:?}\n\n[nodes.sum]\nop = \"summarize\"\ninputs = [\"read\"]\n",
        data.to_str().unwrap()
    );
    let p = b.write("files.toml", &text);
    assert_eq!(b.run(&p, &[]), ["read", "sum"]);
    std::fs::write(&data, "1\n2\n").unwrap();
    assert!(
        b.run(&p, &[]).is_empty(),
        "same bytes, new mtime: nothing runs"
    );
    std::fs::write(&data, "1\n5\n").unwrap();
    let out = b.cli(&["explain", p.to_str().unwrap(), "read"]).unwrap();
    assert!(out.contains("content changed"), "{out}");
    assert_eq!(b.run(&p, &[]), ["read", "sum"]);
}
