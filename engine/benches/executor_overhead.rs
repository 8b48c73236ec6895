//! Benchmark: what running each node in its own process (`--executor subprocess`) or as a
//! Slurm job (`--executor slurm`) costs next to threads, on the 18-node pipeline of trivial
//! operators of `noop_rerun` (6 shared nodes + 3 iterations × 4), every node computed (a fresh
//! cache per run), one node at a time (`--jobs 1`) so that the difference divided by 18 is the
//! overhead per node.
//!
//! `cargo bench -p judgeflow-engine --bench executor_overhead` prints medians and the per-node
//! overhead of each executor against threads measured in the same run. The Slurm figure needs
//! the local Slurm of `scripts/slurm_local.sh` (it is left out, saying why, when Slurm is not
//! up). The same binary doubles as the CLI over the toy operators, drivers and workers alike.

#[path = "../tests/common/mod.rs"]
mod common;

use std::process::Command;
use std::time::Instant;

const PIPELINE: &str = r#"
[pipeline]
name = "method-shape"
seed = 1

# 6 shared nodes: world, corpus, base model, bench, prompts, eval of the base
[nodes.scenes]
op = "emit"
n = 200

[nodes.corpus]
op = "add"
delta = 1.0
inputs = ["scenes"]

[nodes.base]
op = "fit"
inputs = ["corpus"]
gpus = 0  # the toy `fit` claims a GPU; the local Slurm has none to give

[nodes.bench]
op = "emit"
n = 100
scale = 2.0

[nodes.prompts]
op = "clamp"
max = 50.0
inputs = ["scenes"]

[nodes.base_eval]
op = "score"
inputs = { weights = "base.weights", numbers = "bench" }

# 3 iterations x 4: pairs, judgements, judge, eval
[nodes.pairs]
op = "add"
delta = 0.5
inputs = ["prompts"]

[nodes.judged]
op = "merge"
inputs = { left = "pairs", right = "prompts" }

[nodes.judge]
op = "fit"
inputs = { numbers = "judged", init = "judge@prev" }
gpus = 0

[nodes.eval]
op = "score"
inputs = { weights = "judge.weights", numbers = "bench" }

[iterate.selftrain]
times = 3
nodes = ["pairs", "judged", "judge", "eval"]
initial = { judge = "base.weights" }
"#;

fn slurm_up() -> Result<(), String> {
    let out = Command::new("sinfo")
        .args(["-h", "-o", "%T"])
        .output()
        .map_err(|e| format!("no sinfo: {e}"))?;
    let states = String::from_utf8_lossy(&out.stdout).to_string();
    if states
        .lines()
        .any(|s| s.starts_with("idle") || s.starts_with("mixed"))
    {
        Ok(())
    } else {
        Err(format!("Slurm is not up (sinfo: `{}`)", states.trim()))
    }
}

fn main() {
    if let Ok(args) = std::env::var("TOYFLOW_BENCH_CHILD") {
        std::process::exit(common::toy_cli(&args));
    }
    // `cargo bench` passes `--bench`; anything else (e.g. `cargo test --benches`) just checks
    // that the benchmark runs once.
    let iterations = if std::env::args().any(|a| a == "--bench") {
        7
    } else {
        1
    };
    let dir = tempfile::tempdir().unwrap();
    let pipeline = dir.path().join("method.toml");
    std::fs::write(&pipeline, PIPELINE).unwrap();
    let exe = std::env::current_exe().unwrap();
    let worker = [
        "/usr/bin/env",
        "TOYFLOW_BENCH_CHILD=exec-node",
        exe.to_str().unwrap(),
    ]
    .join("\u{1f}");
    let mut executors = vec!["threads", "subprocess"];
    match slurm_up() {
        Ok(()) => executors.push("slurm"),
        Err(why) => println!("slurm: not measured: {why}; run scripts/slurm_local.sh"),
    }
    let mut n = 0;
    let mut median = |executor: &str| {
        let mut times: Vec<f64> = (0..iterations)
            .map(|_| {
                n += 1;
                let cache = dir.path().join(format!("cache{n}"));
                let args = [
                    "--cache",
                    cache.to_str().unwrap(),
                    "run",
                    pipeline.to_str().unwrap(),
                    "--jobs",
                    "1",
                    "--executor",
                    executor,
                ]
                .join("\u{1f}");
                let t = Instant::now();
                let out = Command::new(&exe)
                    .env("TOYFLOW_BENCH_CHILD", &args)
                    .env("JUDGEFLOW_WORKER", &worker)
                    .output()
                    .unwrap();
                let dt = t.elapsed().as_secs_f64() * 1000.0;
                let stdout = String::from_utf8_lossy(&out.stdout);
                assert!(
                    out.status.success() && stdout.contains("18 nodes: 18 ran"),
                    "{executor}: {stdout}{}",
                    String::from_utf8_lossy(&out.stderr)
                );
                dt
            })
            .collect();
        times.sort_by(f64::total_cmp);
        (times[times.len() / 2], times[0], times[times.len() - 1])
    };
    let results: Vec<(&str, (f64, f64, f64))> = executors.iter().map(|e| (*e, median(e))).collect();
    let threads = results[0].1.0;
    println!(
        "18-node pipeline of trivial operators, every node run, --jobs 1, whole driver process \
         (n = {iterations} per executor):"
    );
    for (executor, (med, min, max)) in &results {
        println!(
            "  {executor:<10} median {med:>8.1} ms (min {min:.1}, max {max:.1}); \
             {:>6.2}x threads; overhead per node vs threads {:>7.1} ms",
            med / threads,
            (med - threads) / 18.0
        );
    }
}
