//! Row shards (`shards = N`): the same entry whatever the count, the count out of the key, and
//! a run killed between shards resuming from the shards it finished. Kills happen in a child
//! process (this binary re-executed as the toy CLI) at a fault-injection point.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use judgeflow_engine::cache::Cache;
use judgeflow_engine::exec::{self, Status};

/// Not a test of its own: when `TOYFLOW_ARGS` is set, this process acts as the CLI.
#[test]
fn toyflow_child() {
    if let Ok(args) = std::env::var("TOYFLOW_ARGS") {
        std::process::exit(common::toy_cli(&args));
    }
}

fn run(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args([
        "--exact",
        "toyflow_child",
        "--nocapture",
        "--test-threads=1",
    ])
    .env("TOYFLOW_ARGS", args.join("\u{1f}"))
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A pipeline whose `b` (a row map) runs in `shards` shards (no `shards` key for `None`).
fn pipeline(dir: &Path, shards: Option<u32>) -> PathBuf {
    let shards = shards.map(|n| format!("shards = {n}")).unwrap_or_default();
    let text = format!(
        r#"
[pipeline]
name = "sharded"

[nodes.a]
op = "emit"
n = 37
scale = 0.25

[nodes.b]
op = "add"
inputs = ["a"]
delta = 3.0
{shards}

[nodes.s]
op = "summarize"
inputs = ["b"]
"#
    );
    let p = dir.join(format!("p{}.toml", text.len()));
    std::fs::write(&p, text).unwrap();
    p
}

/// `(key, bytes of the first output)` of every node, by name; all must be fresh.
fn entries(pipeline: &Path, cache: &Path) -> Vec<(String, String, Vec<u8>)> {
    let (registry, _) = common::registry();
    let plan = judgeflow_engine::cli::load(pipeline, &registry, &[]).unwrap();
    let cache = Cache::open(cache).unwrap();
    exec::status(&plan, &cache)
        .unwrap()
        .into_iter()
        .map(|(i, s)| {
            let Status::Fresh { key } = s else {
                panic!("{} is not fresh", plan.graph[i].name)
            };
            let (_, path, _) = exec::output_file(&cache, &key, &plan.graph[i], None).unwrap();
            (
                plan.graph[i].name.clone(),
                key,
                std::fs::read(path).unwrap(),
            )
        })
        .collect()
}

fn run_ok(p: &Path, cache: &Path, env: &[(&str, &str)]) -> String {
    let out = run(
        &[
            "--cache",
            cache.to_str().unwrap(),
            "run",
            p.to_str().unwrap(),
            "--jobs",
            "1",
        ],
        env,
    );
    assert!(out.status.success(), "{}", text(&out));
    text(&out)
}

#[test]
fn one_three_and_eight_shards_give_the_same_entries_as_none() {
    let dir = tempfile::tempdir().unwrap();
    let whole = pipeline(dir.path(), None);
    let reference_cache = dir.path().join("whole");
    run_ok(&whole, &reference_cache, &[]);
    let reference = entries(&whole, &reference_cache);
    for n in [1, 3, 8, 50] {
        let p = pipeline(dir.path(), Some(n));
        let cache = dir.path().join(format!("c{n}"));
        let log = dir.path().join(format!("log{n}"));
        run_ok(&p, &cache, &[("TOY_LOG", log.to_str().unwrap())]);
        // Same keys, same bytes: the shard count is not part of what the node computes.
        assert_eq!(entries(&p, &cache), reference, "{n} shards");
        // `b` ran once per (non-empty) shard; 50 shards of 37 rows are 37 shards of one row.
        let b_runs = std::fs::read_to_string(&log)
            .unwrap()
            .lines()
            .filter(|l| *l == "b")
            .count();
        assert_eq!(b_runs, n.min(37) as usize, "{n} shards");
    }
    // A cache filled without shards is fresh for a sharded pipeline, and the other way round.
    let p = pipeline(dir.path(), Some(4));
    let said = run_ok(&p, &reference_cache, &[]);
    assert!(said.contains("3 nodes: 0 ran, 3 fresh"), "{said}");
}

#[test]
fn a_run_killed_after_two_of_four_shards_resumes_from_them() {
    let dir = tempfile::tempdir().unwrap();
    let p = pipeline(dir.path(), Some(4));
    // Count the fault points of an uninterrupted run to find the end of the second shard.
    let counting = dir.path().join("counting");
    let points = dir.path().join("points");
    run_ok(
        &p,
        &counting,
        &[("JUDGEFLOW_FAULT_TRACE", points.to_str().unwrap())],
    );
    let reference = entries(&p, &counting);
    let lines: Vec<String> = std::fs::read_to_string(&points)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    // `a`'s entry, then `b`'s shards, each published ("publish:renamed") in turn.
    let renamed: Vec<u64> = lines
        .iter()
        .filter(|l| l.ends_with(" publish:renamed"))
        .map(|l| l.split(' ').next().unwrap().parse().unwrap())
        .collect();
    assert!(renamed.len() >= 7, "a, 4 shards, b, s: {lines:?}");
    let kill_at = renamed[2] + 1;

    let cache = dir.path().join("cache");
    let out = run(
        &[
            "--cache",
            cache.to_str().unwrap(),
            "run",
            p.to_str().unwrap(),
            "--jobs",
            "1",
        ],
        &[("JUDGEFLOW_FAULT_KILL_AT", &kill_at.to_string())],
    );
    assert!(
        !out.status.success(),
        "the run was to be killed: {}",
        text(&out)
    );
    let log = dir.path().join("log");
    run_ok(&p, &cache, &[("TOY_LOG", log.to_str().unwrap())]);
    let ran: Vec<String> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    // Two shards of `b` were left to do, then `s`.
    assert_eq!(ran, ["b", "b", "s"]);
    assert_eq!(entries(&p, &cache), reference);
}

#[test]
fn a_node_that_reserved_two_gpus_runs_its_shards_on_both() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("gpus.toml");
    std::fs::write(
        &p,
        r#"
[pipeline]
name = "sharded_gpus"

[nodes.a]
op = "emit"
n = 8
scale = 1.0

[nodes.g]
op = "on_gpu"
inputs = ["a"]
gpus = 2
shards = 4
"#,
    )
    .unwrap();
    let cache = dir.path().join("cache");
    let out = run(
        &[
            "--cache",
            cache.to_str().unwrap(),
            "run",
            p.to_str().unwrap(),
            "--gpus",
            "2",
        ],
        &[],
    );
    assert!(out.status.success(), "{}", text(&out));
    let (registry, _) = common::registry();
    let plan = judgeflow_engine::cli::load(&p, &registry, &[]).unwrap();
    let opened = Cache::open(&cache).unwrap();
    let g = plan
        .graph
        .node_indices()
        .find(|&i| plan.graph[i].name == "g")
        .unwrap();
    let key = exec::status(&plan, &opened)
        .unwrap()
        .into_iter()
        .find_map(|(i, s)| match s {
            Status::Fresh { key } if i == g => Some(key),
            _ => None,
        })
        .expect("g is fresh");
    let (_, path, _) = exec::output_file(&opened, &key, &plan.graph[g], None).unwrap();
    let df = judgeflow_engine::op::read_parquet(&path).unwrap();
    let devices: Vec<f64> = df
        .column("value")
        .unwrap()
        .f64()
        .unwrap()
        .into_no_null_iter()
        .collect();
    // 8 rows in 4 shards of 2, in two waves of two: shards 0 and 2 on the first GPU, 1 and 3 on
    // the second, each shard's rows on one GPU.
    assert_eq!(devices, [0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 1.0, 1.0]);
}
