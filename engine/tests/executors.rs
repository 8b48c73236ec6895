//! The `subprocess` and `slurm` executors with real processes: this test binary re-executes
//! itself as a `judgeflow`-like CLI over the toy operators (driver and workers alike; see
//! `toyflow_child`). The Slurm tests need the local Slurm of `scripts/slurm_local.sh`: they
//! fail when `CI=true` and it is not up, and otherwise skip with the reason printed.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use judgeflow_engine::cache::Cache;
use judgeflow_engine::exec::{self, Status};

/// Not a test of its own: when `TOYFLOW_ARGS` is set, this process acts as the CLI.
#[test]
fn toyflow_child() {
    if let Ok(args) = std::env::var("TOYFLOW_ARGS") {
        std::process::exit(common::toy_cli(&args));
    }
}

/// The worker command: this binary as the toy CLI's `exec-node` (the task comes as
/// `JUDGEFLOW_TASK`).
fn worker() -> String {
    [
        "/usr/bin/env",
        "TOYFLOW_ARGS=exec-node",
        current_exe().to_str().unwrap(),
        "--exact",
        "toyflow_child",
        "--nocapture",
        "--test-threads=1",
    ]
    .join("\u{1f}")
}

fn current_exe() -> PathBuf {
    std::env::current_exe().unwrap()
}

fn toy(args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(current_exe());
    cmd.args([
        "--exact",
        "toyflow_child",
        "--nocapture",
        "--test-threads=1",
    ])
    .env("TOYFLOW_ARGS", args.join("\u{1f}"))
    .env("JUDGEFLOW_WORKER", worker())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

fn run(args: &[&str], env: &[(&str, &str)]) -> Output {
    toy(args, env).output().unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn write_pipeline(dir: &Path, text: &str) -> PathBuf {
    let p = dir.join("p.toml");
    std::fs::write(&p, text).unwrap();
    p
}

/// Each node's status by name.
fn statuses(pipeline: &Path, cache: &Path) -> Vec<(String, &'static str)> {
    let (registry, _) = common::registry();
    let plan = judgeflow_engine::cli::load(pipeline, &registry, &[]).unwrap();
    let cache = Cache::open(cache).unwrap();
    exec::status(&plan, &cache)
        .unwrap()
        .into_iter()
        .map(|(i, s)| {
            let state = match s {
                Status::Fresh { .. } => "fresh",
                Status::Dirty { .. } => "dirty",
                Status::Waiting { .. } => "waiting",
            };
            (plan.graph[i].name.clone(), state)
        })
        .collect::<std::collections::BTreeMap<_, _>>()
        .into_iter()
        .collect()
}

/// Each node's first output file's bytes, by node name (all nodes must be fresh).
fn outputs(pipeline: &Path, cache: &Path) -> Vec<(String, Vec<u8>)> {
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
            (plan.graph[i].name.clone(), std::fs::read(path).unwrap())
        })
        .collect()
}

fn runs_logged(log: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect();
    v.sort();
    v
}

const ABORTING: &str = r#"
[pipeline]
name = "crashy"

[nodes.a]
op = "emit"
n = 20

[nodes.crash]
op = "abort"
inputs = ["a"]

[nodes.after_crash]
op = "add"
inputs = ["crash"]
delta = 1.0

[nodes.beside]
op = "add"
inputs = ["a"]
delta = 2.0
"#;

#[test]
fn a_node_that_aborts_fails_alone_and_alone_reruns() {
    let dir = tempfile::tempdir().unwrap();
    let p = write_pipeline(dir.path(), ABORTING);
    let cache = dir.path().join("cache");
    let log = dir.path().join("runs.log");
    let cache_s = cache.to_str().unwrap();
    let p_s = p.to_str().unwrap();
    let log_s = log.to_str().unwrap();
    let out = run(
        &[
            "--cache",
            cache_s,
            "run",
            p_s,
            "--executor",
            "subprocess",
            "--jobs",
            "1",
        ],
        &[("TOY_ABORT", "1"), ("TOY_LOG", log_s)],
    );
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(t.contains("node `crash` (op `abort`) failed"), "{t}");
    assert!(t.contains("killed by signal 6 (SIGABRT)"), "{t}");
    let node_log = cache.join("logs/crashy/crash.log");
    assert!(
        t.contains(&node_log.display().to_string()),
        "the failure names the node's log: {t}"
    );
    // Everything that does not depend on the crashed node completed, in workers.
    assert_eq!(
        statuses(&p, &cache),
        [
            ("a".to_string(), "fresh"),
            ("after_crash".to_string(), "waiting"),
            ("beside".to_string(), "fresh"),
            ("crash".to_string(), "dirty"),
        ]
    );
    assert_eq!(runs_logged(&log), ["a", "beside", "crash"]);
    // `explain` points at the log of the node's last run.
    let explained = run(&["--cache", cache_s, "explain", p_s, "crash"], &[]);
    assert!(
        text(&explained).contains(&format!(
            "log of its last run as a worker: {}",
            node_log.display()
        )),
        "{}",
        text(&explained)
    );

    // The next run (no crash this time) redoes the crashed node and what waited on it only.
    std::fs::remove_file(&log).unwrap();
    let out = run(
        &["--cache", cache_s, "run", p_s, "--executor", "subprocess"],
        &[("TOY_LOG", log_s)],
    );
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(runs_logged(&log), ["after_crash", "crash"]);
    assert!(
        text(&out).contains("4 nodes: 2 ran, 2 fresh"),
        "{}",
        text(&out)
    );
}

const CHAIN: &str = r#"
[pipeline]
name = "chain"

[nodes.a]
op = "emit"
n = 30
scale = 0.5

[nodes.b]
op = "add"
inputs = ["a"]
delta = 1.5

[nodes.c]
op = "clamp"
inputs = ["b"]
max = 7.0

[nodes.d]
op = "merge"
inputs = { left = "a", right = "c" }

[nodes.s]
op = "summarize"
inputs = ["d"]
"#;

#[test]
fn subprocess_workers_write_the_same_bytes_as_threads() {
    let dir = tempfile::tempdir().unwrap();
    let p = write_pipeline(dir.path(), CHAIN);
    let (threads, sub) = (dir.path().join("threads"), dir.path().join("sub"));
    for (cache, executor) in [(&threads, "threads"), (&sub, "subprocess")] {
        let out = run(
            &[
                "--cache",
                cache.to_str().unwrap(),
                "run",
                p.to_str().unwrap(),
                "--executor",
                executor,
            ],
            &[],
        );
        assert!(out.status.success(), "{executor}: {}", text(&out));
    }
    let (a, b) = (outputs(&p, &threads), outputs(&p, &sub));
    assert_eq!(a.len(), 5);
    assert_eq!(a, b);
    // Task files do not outlive a successful node.
    let left: Vec<_> = std::fs::read_dir(sub.join("tasks"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

const ON_GPUS: &str = r#"
[pipeline]
name = "gpus"

[nodes.a]
op = "emit"
n = 4

[nodes.g1]
op = "on_gpu"
inputs = ["a"]

[nodes.g2]
op = "on_gpu"
inputs = ["a"]

[nodes.g3]
op = "on_gpu"
inputs = ["a"]
"#;

/// The device each GPU node ran on, from its output (the toy writes its ordinal).
fn devices(p: &Path, cache: &Path) -> Vec<u8> {
    let mut seen: Vec<u8> = outputs(p, cache)
        .into_iter()
        .filter(|(n, _)| n.starts_with('g'))
        .map(|(_, bytes)| {
            use polars::prelude::SerReader;
            let df = polars::prelude::ParquetReader::new(std::io::Cursor::new(bytes))
                .finish()
                .unwrap();
            df.column("value").unwrap().f64().unwrap().get(0).unwrap() as u8
        })
        .collect();
    seen.sort();
    seen
}

#[test]
fn gpu_nodes_get_the_ordinals_they_reserved() {
    for executor in ["threads", "subprocess"] {
        let dir = tempfile::tempdir().unwrap();
        let p = write_pipeline(dir.path(), ON_GPUS);
        let cache = dir.path().join("cache");
        // Three GPU nodes, three (fake) GPUs, overlapping in time: each its own device.
        let out = run(
            &[
                "--cache",
                cache.to_str().unwrap(),
                "run",
                p.to_str().unwrap(),
                "--executor",
                executor,
                "--gpus",
                "3",
                "--jobs",
                "4",
            ],
            &[("TOY_SLOW_MS", "300")],
        );
        assert!(out.status.success(), "{executor}: {}", text(&out));
        assert_eq!(devices(&p, &cache), [0, 1, 2], "{executor}");
        // One GPU: they queue for device 0.
        let cache1 = dir.path().join("cache1");
        let out = run(
            &[
                "--cache",
                cache1.to_str().unwrap(),
                "run",
                p.to_str().unwrap(),
                "--executor",
                executor,
                "--gpus",
                "1",
            ],
            &[],
        );
        assert!(out.status.success(), "{executor}: {}", text(&out));
        assert_eq!(devices(&p, &cache1), [0, 0, 0], "{executor}");
    }
}

#[test]
fn a_worker_that_cannot_see_the_cache_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let task = dir.path().join("elsewhere/tasks/0123.json");
    let out = run(&["exec-node", task.to_str().unwrap()], &[]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(2), "{t}");
    assert!(t.contains("this worker cannot read its task file"), "{t}");
    assert!(t.contains("the worker must see the judgeflow cache"), "{t}");
    // A task whose cache is gone (not mounted on this worker) is refused before anything is
    // created there.
    std::fs::create_dir_all(task.parent().unwrap()).unwrap();
    let missing = dir.path().join("not-mounted");
    std::fs::write(
        &task,
        serde_json::json!({
            "format": judgeflow_engine::executor::TASK_FORMAT,
            "cache": missing,
            "pipeline": "p", "node": "n", "op": "emit", "kind": null,
            "params": {}, "seed": 0, "key": "k",
            "ingredients": {"op": "emit", "kind": null, "op_version": 1, "params": {},
                            "seed": 0, "inputs": {}, "files": {}},
            "inputs": {}, "gpus": []
        })
        .to_string(),
    )
    .unwrap();
    let out = run(&["exec-node", task.to_str().unwrap()], &[]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(2), "{t}");
    assert!(t.contains("this worker cannot see the cache"), "{t}");
    assert!(!missing.exists());
}

/// Whether the local Slurm takes jobs; `Err` says why not.
///
/// A node that is `completing` (another test's cancelled job still being cleaned up; the
/// Slurm tests run in parallel on one node) takes jobs: they queue until it is done. Any
/// other state of an answering controller is polled for up to 30 s before the answer is no,
/// since a node that slurmd has just registered passes through `unknown` and `down` before
/// `idle`.
fn slurm_up() -> Result<(), String> {
    const TAKES_JOBS: [&str; 4] = ["idle", "mixed", "alloc", "completing"];
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let out = Command::new("sinfo")
            .args(["-h", "-o", "%T"])
            .output()
            .map_err(|e| format!("no `sinfo` ({e}); run scripts/slurm_local.sh"))?;
        let states = String::from_utf8_lossy(&out.stdout).to_string();
        let takes_jobs = |s: &str| TAKES_JOBS.iter().any(|up| s.starts_with(up));
        if out.status.success() && states.lines().any(takes_jobs) {
            return Ok(());
        }
        // A controller that does not answer is not coming up by itself: no wait.
        if !out.status.success() || std::time::Instant::now() >= deadline {
            return Err(format!(
                "Slurm is not up (sinfo: {} {}); run scripts/slurm_local.sh",
                states.trim(),
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
}

/// True when the Slurm tests can run; in CI a Slurm that is not up fails the test.
fn need_slurm() -> bool {
    match slurm_up() {
        Ok(()) => true,
        Err(why) if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("CI=true but {why}")
        }
        Err(why) => {
            eprintln!("skipping: {why}");
            false
        }
    }
}

#[test]
fn slurm_jobs_write_the_same_bytes_as_threads_and_a_rerun_submits_nothing() {
    if !need_slurm() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let p = write_pipeline(dir.path(), CHAIN);
    let (threads, slurm) = (dir.path().join("threads"), dir.path().join("slurm"));
    let mut said = Vec::new();
    for (cache, executor) in [(&threads, "threads"), (&slurm, "slurm"), (&slurm, "slurm")] {
        let out = run(
            &[
                "--cache",
                cache.to_str().unwrap(),
                "run",
                p.to_str().unwrap(),
                "--executor",
                executor,
            ],
            &[("RUST_LOG", "info")],
        );
        assert!(out.status.success(), "{executor}: {}", text(&out));
        said.push(text(&out));
    }
    assert_eq!(outputs(&p, &threads), outputs(&p, &slurm));
    assert_eq!(said[1].matches("submitted").count(), 5, "{}", said[1]);
    // The second Slurm run finds every entry: no job at all.
    assert!(said[2].contains("5 nodes: 0 ran, 5 fresh"), "{}", said[2]);
    assert!(!said[2].contains("submitted"), "{}", said[2]);
}

#[test]
fn a_slurm_job_cancelled_mid_run_fails_its_node_and_reruns_next_time() {
    if !need_slurm() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let p = write_pipeline(
        dir.path(),
        r#"
[pipeline]
name = "cancelled"

[nodes.a]
op = "emit"

[nodes.long]
op = "slow"
inputs = ["a"]

[nodes.beside]
op = "add"
inputs = ["a"]
delta = 1.0
"#,
    );
    let cache = dir.path().join("cache");
    let started = dir.path().join("started");
    let log = dir.path().join("runs.log");
    let args = [
        "--cache",
        cache.to_str().unwrap(),
        "run",
        p.to_str().unwrap(),
        "--executor",
        "slurm",
    ];
    let driver = toy(
        &args,
        &[
            ("TOY_SLOW_MS", "60000"),
            ("TOY_STARTED", started.to_str().unwrap()),
            ("TOY_LOG", log.to_str().unwrap()),
        ],
    )
    .spawn()
    .unwrap();
    let t0 = Instant::now();
    while !started.exists() {
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "the job never started"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let q = Command::new("squeue")
        .args(["-h", "-n", "jf-long", "-o", "%i"])
        .output()
        .unwrap();
    let ids = String::from_utf8_lossy(&q.stdout).to_string();
    let id = ids
        .lines()
        .last()
        .expect("the job is queued")
        .trim()
        .to_string();
    assert!(Command::new("scancel").arg(&id).status().unwrap().success());
    let out = driver.wait_with_output().unwrap();
    let t = text(&out);
    assert!(
        t0.elapsed() < Duration::from_secs(50),
        "the driver waited for the sleep"
    );
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(t.contains("node `long` (op `slow`) failed"), "{t}");
    assert!(t.contains("CANCELLED"), "{t}");
    assert_eq!(
        statuses(&p, &cache),
        [
            ("a".to_string(), "fresh"),
            ("beside".to_string(), "fresh"),
            ("long".to_string(), "dirty"),
        ]
    );
    std::fs::remove_file(&log).unwrap();
    let out = run(&args, &[("TOY_LOG", log.to_str().unwrap())]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(runs_logged(&log), ["long"]);
}

#[test]
fn an_interrupted_driver_cancels_its_slurm_jobs() {
    if !need_slurm() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let p = write_pipeline(
        dir.path(),
        r#"
[pipeline]
name = "interrupted"

[nodes.a]
op = "emit"

[nodes.sleepy]
op = "slow"
inputs = ["a"]

[nodes.after]
op = "add"
inputs = ["sleepy"]
delta = 1.0
"#,
    );
    let cache = dir.path().join("cache");
    let started = dir.path().join("started");
    let driver = toy(
        &[
            "--cache",
            cache.to_str().unwrap(),
            "run",
            p.to_str().unwrap(),
            "--executor",
            "slurm",
        ],
        &[
            ("TOY_SLOW_MS", "60000"),
            ("TOY_STARTED", started.to_str().unwrap()),
        ],
    )
    .spawn()
    .unwrap();
    let t0 = Instant::now();
    while !started.exists() {
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "the job never started"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let id = String::from_utf8_lossy(
        &Command::new("squeue")
            .args(["-h", "-n", "jf-sleepy", "-o", "%i"])
            .output()
            .unwrap()
            .stdout,
    )
    .lines()
    .last()
    .expect("the job is queued")
    .trim()
    .to_string();
    // Ctrl-C on the driver (only the driver: the job is Slurm's, not its child).
    assert!(
        Command::new("kill")
            .args(["-INT", &driver.id().to_string()])
            .status()
            .unwrap()
            .success()
    );
    let out = driver.wait_with_output().unwrap();
    let t = text(&out);
    assert!(
        t0.elapsed() < Duration::from_secs(50),
        "the driver waited for the job: {t}"
    );
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(
        t.contains(&format!("interrupted: its job {id} was cancelled")),
        "{t}"
    );
    let state = String::from_utf8_lossy(
        &Command::new("scontrol")
            .args(["show", "job", "-o", &id])
            .output()
            .unwrap()
            .stdout,
    )
    .to_string();
    assert!(state.contains("JobState=CANCELLED"), "{state}");
    // Nothing after the interrupt was started.
    assert_eq!(
        statuses(&p, &cache),
        [
            ("a".to_string(), "fresh"),
            ("after".to_string(), "waiting"),
            ("sleepy".to_string(), "dirty"),
        ]
    );
}
