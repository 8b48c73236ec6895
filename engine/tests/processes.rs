//! Crash safety and concurrency, with real processes: this test binary re-executes itself as
//! a `judgeflow`-like CLI over the toy operators (see `toyflow_child`).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use judgeflow_engine::cache::Cache;

/// Not a test of its own: when `TOYFLOW_ARGS` is set, this process acts as the CLI.
#[test]
fn toyflow_child() {
    if let Ok(args) = std::env::var("TOYFLOW_ARGS") {
        std::process::exit(common::toy_cli(&args));
    }
}

fn child(args: &[&str], env: &[(&str, &str)]) -> Command {
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
    cmd
}

fn finish(c: Child) -> String {
    let out = c.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "child failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

const PIPELINE: &str = r#"
[pipeline]
name = "crash"

[nodes.a]
op = "emit"
n = 50

[nodes.b]
op = "slow"
inputs = ["a"]

[nodes.c]
op = "summarize"
inputs = ["b"]

[nodes.d]
op = "add"
delta = 2.0
inputs = ["b"]
"#;

fn setup(dir: &Path, text: &str) -> (PathBuf, PathBuf) {
    let p = dir.join("p.toml");
    std::fs::write(&p, text).unwrap();
    (p, dir.join("cache"))
}

/// Every entry's key and output hashes, as a comparable set.
fn entry_hashes(cache_dir: &Path) -> Vec<(String, Vec<String>)> {
    let cache = Cache::open(cache_dir).unwrap();
    let mut out: Vec<_> = std::fs::read_dir(cache_dir.join("entries"))
        .unwrap()
        .map(|e| {
            let key = e.unwrap().file_name().to_string_lossy().to_string();
            let m = cache
                .manifest(&key)
                .expect("every published entry has a manifest");
            (key, m.outputs.values().map(|o| o.hash.clone()).collect())
        })
        .collect();
    out.sort();
    out
}

#[test]
fn a_process_killed_mid_node_leaves_nothing_a_later_run_reads_as_valid() {
    let dir = tempfile::tempdir().unwrap();
    let (p, cache) = setup(dir.path(), PIPELINE);
    let flag = dir.path().join("started");
    let args = [
        "--cache",
        cache.to_str().unwrap(),
        "run",
        p.to_str().unwrap(),
        "--jobs",
        "1",
    ];
    let mut c = child(
        &args,
        &[
            ("TOY_SLOW_MS", "60000"),
            ("TOY_STARTED", flag.to_str().unwrap()),
        ],
    )
    .spawn()
    .unwrap();
    let started = Instant::now();
    while !flag.exists() {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "child never reached the slow node"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // The slow node has written its output file into its build directory and is sleeping.
    c.kill().unwrap();
    c.wait().unwrap();
    assert_eq!(
        entry_hashes(&cache).len(),
        1,
        "only `a` was published before the kill"
    );
    assert!(
        std::fs::read_dir(cache.join("tmp")).unwrap().count() >= 1,
        "the half-built entry is an orphan in tmp/"
    );

    let rerun = finish(child(&args, &[]).spawn().unwrap());
    assert!(
        rerun.contains("fresh") && rerun.contains("a") && rerun.contains("ran"),
        "{rerun}"
    );

    let clean = tempfile::tempdir().unwrap();
    let (p2, cache2) = setup(clean.path(), PIPELINE);
    finish(
        child(
            &[
                "--cache",
                cache2.to_str().unwrap(),
                "run",
                p2.to_str().unwrap(),
            ],
            &[],
        )
        .spawn()
        .unwrap(),
    );
    assert_eq!(
        entry_hashes(&cache),
        entry_hashes(&cache2),
        "same keys and hashes as an uninterrupted run"
    );
}

#[test]
fn two_concurrent_runs_on_one_cache_end_consistent() {
    let dir = tempfile::tempdir().unwrap();
    let (p, cache) = setup(dir.path(), PIPELINE);
    let log = dir.path().join("runs.log");
    let args = [
        "--cache",
        cache.to_str().unwrap(),
        "run",
        p.to_str().unwrap(),
    ];
    let env = [("TOY_SLOW_MS", "300"), ("TOY_LOG", log.to_str().unwrap())];
    let first = child(&args, &env).spawn().unwrap();
    let second = child(&args, &env).spawn().unwrap();
    let (o1, o2) = (finish(first), finish(second));
    let mut ran: Vec<String> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    ran.sort();
    assert_eq!(
        ran,
        ["a", "b", "c", "d"],
        "each node ran exactly once across both processes\n{o1}\n{o2}"
    );
    assert_eq!(entry_hashes(&cache).len(), 4);
    let third = finish(child(&args, &env).spawn().unwrap());
    assert!(third.contains("4 nodes: 0 ran, 4 fresh"), "{third}");
}

#[test]
fn bumping_an_op_version_reruns_its_cone_only() {
    let dir = tempfile::tempdir().unwrap();
    let (p, cache) = setup(dir.path(), PIPELINE);
    let log = dir.path().join("runs.log");
    let args = [
        "--cache",
        cache.to_str().unwrap(),
        "run",
        p.to_str().unwrap(),
    ];
    finish(child(&args, &[]).spawn().unwrap());
    let explain = finish(
        child(
            &[
                "--cache",
                cache.to_str().unwrap(),
                "explain",
                p.to_str().unwrap(),
                "b",
            ],
            &[("TOY_VERSION_slow", "2")],
        )
        .spawn()
        .unwrap(),
    );
    assert!(explain.contains("op version 1 → 2"), "{explain}");
    finish(
        child(
            &args,
            &[
                ("TOY_VERSION_slow", "2"),
                ("TOY_LOG", log.to_str().unwrap()),
            ],
        )
        .spawn()
        .unwrap(),
    );
    let ran = std::fs::read_to_string(&log).unwrap();
    assert_eq!(
        ran.lines().collect::<Vec<_>>(),
        ["b"],
        "`c` and `d` see identical bytes from `b` and stay fresh"
    );
}

#[test]
fn a_declared_environment_switch_is_its_own_entry_and_unset_keeps_the_old_key() {
    let dir = tempfile::tempdir().unwrap();
    let (p, cache) = setup(dir.path(), PIPELINE);
    let log = dir.path().join("runs.log");
    let run = [
        "--cache",
        cache.to_str().unwrap(),
        "run",
        p.to_str().unwrap(),
    ];
    let explain = [
        "--cache",
        cache.to_str().unwrap(),
        "explain",
        p.to_str().unwrap(),
        "b",
    ];
    // `None`: the variable is not in the child's environment at all.
    let logged = |switch: Option<&str>| {
        std::fs::remove_file(&log).ok();
        let mut cmd = child(&run, &[("TOY_LOG", log.to_str().unwrap())]);
        cmd.env_remove("TOY_SWITCH");
        if let Some(value) = switch {
            cmd.env("TOY_SWITCH", value);
        }
        let out = finish(cmd.spawn().unwrap());
        let ran = std::fs::read_to_string(&log).unwrap_or_default();
        (out, ran.lines().map(str::to_string).collect::<Vec<_>>())
    };
    let (_, ran) = logged(None);
    assert_eq!(ran.len(), 4, "first run: {ran:?}");
    let before = entry_hashes(&cache).len();

    let why = finish(child(&explain, &[("TOY_SWITCH", "x")]).spawn().unwrap());
    assert!(why.contains("env TOY_SWITCH: unset → x"), "{why}");
    let (_, ran) = logged(Some("x"));
    assert_eq!(
        ran,
        ["b"],
        "only the node that declares the switch re-runs; `c` and `d` see identical bytes"
    );
    assert_eq!(
        entry_hashes(&cache).len(),
        before + 1,
        "a second entry for `b`"
    );
    let why = finish(child(&explain, &[("TOY_SWITCH", "y")]).spawn().unwrap());
    assert!(why.contains("env TOY_SWITCH: x → y"), "{why}");

    // Unset (or empty) is the key of a run that never had the switch: the first entry serves.
    for unset in [None, Some("")] {
        let (out, ran) = logged(unset);
        assert!(
            ran.is_empty(),
            "nothing re-runs with the switch unset: {ran:?}"
        );
        assert!(out.contains("4 nodes: 0 ran, 4 fresh"), "{out}");
    }
    let (out, ran) = logged(Some("x"));
    assert!(
        ran.is_empty() && out.contains("4 nodes: 0 ran, 4 fresh"),
        "x's entry serves x: {out}"
    );
}
