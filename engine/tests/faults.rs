//! The fault-injection suite, with real processes (this test binary re-executes itself as a
//! `judgeflow`-like CLI over the toy operators, as `processes.rs` does): `kill -9` at seeded
//! random steps of a small pipeline, bytes flipped with their mtimes restored, runs and `gc`
//! at once, two processes meeting one corrupt entry, and paths that name FIFOs, devices,
//! looping directories. Each case asserts the same results as an uninterrupted run, no wrong
//! result served, no temporary files left, and a clear error where there must be one.
//!
//! Kills are placed by step, not by time (`judgeflow_engine::fault`): an uninterrupted run
//! counts its steps, a fixed seed picks among them, and the child kills itself with SIGKILL
//! on reaching the chosen one — deterministic, and still a real `kill -9` (no destructor, no
//! unwinding). Every wait on a child is bounded (`deadline`), so a hang fails the test instead
//! of stalling CI.

mod common;

use std::io::{BufRead, BufReader};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
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
    .env("RUST_LOG", "warn")
    .env_remove("JUDGEFLOW_FAULT_KILL_AT")
    .env_remove("JUDGEFLOW_FAULT_TRACE")
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

/// Generous bound on one child: a toy run takes well under a second; only a hang reaches it.
const DEADLINE: Duration = Duration::from_secs(120);

/// Waits for `c`, killing it and failing the test if it outlives [`DEADLINE`].
fn deadline(mut c: Child, what: &str) -> Output {
    let started = Instant::now();
    loop {
        if c.try_wait().unwrap().is_some() {
            return c.wait_with_output().unwrap();
        }
        if started.elapsed() > DEADLINE {
            c.kill().unwrap();
            let out = c.wait_with_output().unwrap();
            panic!(
                "{what} hung (killed after {DEADLINE:?}):\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

struct Run {
    code: Option<i32>,
    signal: Option<i32>,
    stdout: String,
    stderr: String,
}

fn exec(args: &[&str], env: &[(&str, &str)]) -> Run {
    let out = deadline(child(args, env).spawn().unwrap(), &args.join(" "));
    Run {
        code: out.status.code(),
        signal: out.status.signal(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn ok(args: &[&str], env: &[(&str, &str)]) -> String {
    let r = exec(args, env);
    assert_eq!(
        r.code,
        Some(0),
        "{args:?} failed:\n{}\n{}",
        r.stdout,
        r.stderr
    );
    r.stdout
}

/// Five nodes, frames and an artifact (`fit`'s weights stand in for a checkpoint), a fan-out
/// and a join.
const PIPELINE: &str = r#"
[pipeline]
name = "faults"

[nodes.a]
op = "emit"
n = 60
scale = 0.25

[nodes.b]
op = "add"
delta = 2.0
inputs = ["a"]

[nodes.s]
op = "summarize"
inputs = ["b"]

[nodes.w]
op = "fit"
inputs = { numbers = "b" }

[nodes.e]
op = "score"
inputs = { weights = "w", numbers = "a" }
"#;

struct Case {
    _dir: tempfile::TempDir,
    pipeline: PathBuf,
    cache: PathBuf,
}

impl Case {
    fn new() -> Case {
        let dir = tempfile::tempdir().unwrap();
        let pipeline = dir.path().join("p.toml");
        std::fs::write(&pipeline, PIPELINE).unwrap();
        let cache = dir.path().join("cache");
        Case {
            _dir: dir,
            pipeline,
            cache,
        }
    }

    fn args<'a>(&'a self, cmd: &'a str) -> Vec<&'a str> {
        vec![
            "--cache",
            self.cache.to_str().unwrap(),
            cmd,
            self.pipeline.to_str().unwrap(),
        ]
    }

    fn run(&self, env: &[(&str, &str)]) -> Run {
        let mut args = self.args("run");
        args.extend(["--jobs", "1"]);
        exec(&args, env)
    }

    /// Every entry's key and output hashes.
    fn entries(&self) -> Vec<(String, Vec<String>)> {
        entry_hashes(&self.cache)
    }

    /// Temporary files that are not an owner's lock: what a finished run must not leave.
    fn leftovers(&self) -> Vec<String> {
        std::fs::read_dir(self.cache.join("tmp"))
            .map(|l| {
                l.map(|e| e.unwrap().file_name().to_string_lossy().to_string())
                    .filter(|n| !n.starts_with("owner-"))
                    .collect()
            })
            .unwrap_or_default()
    }

    fn output(&self, node: &str, port: &str, frame: bool) -> PathBuf {
        let cache = Cache::open(&self.cache).unwrap();
        let key = cache.last_run("faults", node).unwrap();
        cache.output_path(&key, port, frame)
    }
}

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

/// The results an uninterrupted run produces, and how many fault steps it passes.
fn reference() -> (Vec<(String, Vec<String>)>, usize) {
    let case = Case::new();
    let trace = case.cache.with_extension("trace");
    let r = case.run(&[("JUDGEFLOW_FAULT_TRACE", trace.to_str().unwrap())]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    let steps = std::fs::read_to_string(&trace).unwrap().lines().count();
    assert!(case.leftovers().is_empty(), "{:?}", case.leftovers());
    (case.entries(), steps)
}

/// xorshift64*, for picking kill points from a fixed seed without a dependency.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n as u64) as usize
    }
}

fn flip_keeping_mtime(file: &Path, offset: usize) {
    let mtime = std::fs::metadata(file).unwrap().modified().unwrap();
    let mut bytes = std::fs::read(file).unwrap();
    let offset = offset.min(bytes.len() - 1);
    bytes[offset] ^= 0x5a;
    std::fs::write(file, &bytes).unwrap();
    std::fs::File::options()
        .write(true)
        .open(file)
        .unwrap()
        .set_times(std::fs::FileTimes::new().set_modified(mtime))
        .unwrap();
}

#[test]
fn kill_minus_nine_at_seeded_random_steps_then_rerun_gives_the_uninterrupted_result() {
    let (want, steps) = reference();
    assert!(steps >= 20, "the pipeline passes {steps} fault steps");
    // Twelve distinct steps (fixed seed), plus the first and the last.
    let mut rng = Rng(0x1e55_0014);
    let mut points = vec![1, steps];
    while points.len() < 14 {
        let p = 1 + rng.below(steps);
        if !points.contains(&p) {
            points.push(p);
        }
    }
    points.sort();
    for &point in &points {
        let case = Case::new();
        let at = point.to_string();
        let killed = case.run(&[("JUDGEFLOW_FAULT_KILL_AT", &at)]);
        assert_eq!(
            killed.signal,
            Some(9),
            "step {point} of {steps}: the child must die by SIGKILL\n{}",
            killed.stderr
        );
        // Whatever the kill left, `plan` reads it without failing and serves nothing wrong:
        // every entry it calls fresh is one of the uninterrupted run's.
        ok(&case.args("plan"), &[]);
        for entry in case.entries() {
            assert!(
                want.contains(&entry),
                "step {point}: unexpected entry {entry:?}"
            );
        }
        // A second kill, during the recovery, at its second step.
        let again = case.run(&[("JUDGEFLOW_FAULT_KILL_AT", "2")]);
        assert!(
            again.signal == Some(9) || again.code == Some(0),
            "{}",
            again.stderr
        );
        let rerun = case.run(&[]);
        assert_eq!(rerun.code, Some(0), "step {point}: {}", rerun.stderr);
        assert_eq!(case.entries(), want, "step {point}: results differ");
        assert!(
            case.leftovers().is_empty(),
            "step {point}: temporary files left: {:?}",
            case.leftovers()
        );
        let plan = ok(&case.args("plan"), &[]);
        assert!(
            plan.matches("fresh ").count() == 5
                && !plan.contains("dirty")
                && !plan.contains("waiting"),
            "step {point}:\n{plan}"
        );
    }
    println!(
        "kill -9 at {} of {steps} steps: {points:?}; each re-run matched",
        points.len()
    );
}

#[test]
fn flipped_bytes_with_restored_mtimes_are_recomputed_never_served() {
    let (want, _) = reference();
    let case = Case::new();
    assert_eq!(case.run(&[]).code, Some(0));
    // A frame: found by the next `plan`/`run` whatever the mtime says.
    let frame = case.output("b", "numbers", true);
    let len = std::fs::metadata(&frame).unwrap().len() as usize;
    for offset in [4, len / 2, len - 9] {
        flip_keeping_mtime(&frame, offset);
        let plan = ok(&case.args("plan"), &[]);
        assert!(
            plan.lines()
                .any(|l| l.starts_with("dirty") && l.contains("corrupt")),
            "offset {offset}:\n{plan}"
        );
        let mut show = case.args("show");
        show.push("b");
        let shown = exec(&show, &[]);
        assert_eq!(shown.code, Some(2), "offset {offset}: {}", shown.stdout);
        assert!(
            shown.stderr.contains("has no up-to-date result"),
            "{}",
            shown.stderr
        );
        assert_eq!(case.run(&[]).code, Some(0));
        assert_eq!(case.entries(), want, "offset {offset}");
    }
    // A checkpoint: trusted on size and mtime by `plan`, re-hashed by `verify`.
    let weights = case.output("w", "weights", false).join("w.txt");
    flip_keeping_mtime(&weights, 0);
    let verify = exec(&["--cache", case.cache.to_str().unwrap(), "verify"], &[]);
    assert_eq!(verify.code, Some(1), "{}", verify.stdout);
    assert!(
        verify.stdout.contains("corrupt ") && verify.stdout.contains("w.txt"),
        "{}",
        verify.stdout
    );
    assert!(
        verify.stderr.contains("judgeflow::cache::corrupt"),
        "{}",
        verify.stderr
    );
    let rerun = case.run(&[]);
    assert!(
        rerun.stdout.contains("ran") && rerun.stdout.contains(" w"),
        "{}",
        rerun.stdout
    );
    assert_eq!(case.entries(), want);
    assert!(case.leftovers().is_empty(), "{:?}", case.leftovers());
}

#[test]
fn runs_and_gc_at_once_end_with_the_uninterrupted_result() {
    let (want, _) = reference();
    let case = Case::new();
    let gc = [
        "--cache",
        case.cache.to_str().unwrap(),
        "gc",
        case.pipeline.to_str().unwrap(),
    ];
    for round in 0..3 {
        let mut run_args = case.args("run");
        run_args.extend(["--jobs", "2"]);
        let children: Vec<(String, Child)> = vec![
            (
                "run".into(),
                child(&run_args, &[("TOY_SLOW_MS", "50")]).spawn().unwrap(),
            ),
            ("gc".into(), child(&gc, &[]).spawn().unwrap()),
            ("run".into(), child(&run_args, &[]).spawn().unwrap()),
            ("gc".into(), child(&gc, &[]).spawn().unwrap()),
        ];
        for (what, c) in children {
            let out = deadline(c, &what);
            assert!(
                out.status.success(),
                "round {round}: {what} failed:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let last = ok(&run_args, &[]);
        assert_eq!(case.entries(), want, "round {round}:\n{last}");
        assert!(case.leftovers().is_empty(), "{:?}", case.leftovers());
    }
}

#[test]
fn two_processes_meeting_one_corrupt_entry_both_carry_on() {
    let (want, _) = reference();
    let case = Case::new();
    assert_eq!(case.run(&[]).code, Some(0));
    let key = Cache::open(&case.cache)
        .unwrap()
        .last_run("faults", "b")
        .unwrap();
    let entry = Cache::open(&case.cache).unwrap().entry_dir(&key);
    // `plan` only reads: it reports the corrupt entry and leaves it to a run, which removes it
    // under the entry's lock.
    std::fs::write(case.output("b", "numbers", true), b"garbage").unwrap();
    let plan = ok(&case.args("plan"), &[]);
    assert!(plan.contains("corrupt"), "{plan}");
    assert!(entry.exists(), "plan must not delete without the lock");
    for round in 0..8 {
        std::fs::write(case.output("b", "numbers", true), b"garbage").unwrap();
        let mut run_args = case.args("run");
        run_args.extend(["--jobs", "2"]);
        let plan_args = case.args("plan");
        let children = vec![
            child(&plan_args, &[]).spawn().unwrap(),
            child(&run_args, &[]).spawn().unwrap(),
            child(&plan_args, &[]).spawn().unwrap(),
            child(&run_args, &[]).spawn().unwrap(),
        ];
        for c in children {
            let out = deadline(c, "plan/run");
            assert!(
                out.status.success(),
                "round {round}:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        assert_eq!(case.entries(), want, "round {round}");
    }
    assert!(case.leftovers().is_empty(), "{:?}", case.leftovers());
}

#[test]
fn hazardous_paths_end_with_a_clear_error_not_a_hang() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("fifo");
    assert!(
        Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    let looped = dir.path().join("loop");
    std::fs::create_dir(&looped).unwrap();
    std::os::unix::fs::symlink(&looped, looped.join("again")).unwrap();
    std::os::unix::fs::symlink(dir.path(), looped.join("up")).unwrap();
    let big = dir.path().join("big");
    std::fs::create_dir(&big).unwrap();
    for i in 0..=judgeflow_engine::files::MAX_DIR_FILES {
        std::fs::write(big.join(i.to_string()), b"1\n").unwrap();
    }
    let cases = [
        (fifo.clone(), "a FIFO, not a regular file"),
        (
            PathBuf::from("/dev/zero"),
            "a character device, not a regular file",
        ),
        (looped.clone(), "a directory, not a regular file"),
        (big.clone(), "a directory, not a regular file"),
    ];
    for (path, why) in cases {
        let text = format!(
            "[pipeline]\nname = \"hazard\"\n\n[nodes.r]\nop = \"read_file\"\npath = {:?}\n\n[nodes.s]\nop = \"summarize\"\ninputs = [\"r\"]\n",
            path.to_str().unwrap()
        );
        let p = dir.path().join("hazard.toml");
        std::fs::write(&p, text).unwrap();
        let cache = dir.path().join(format!(
            "cache-{}",
            path.file_name().unwrap().to_string_lossy()
        ));
        let args = |cmd| vec!["--cache", cache.to_str().unwrap(), cmd, p.to_str().unwrap()];
        let plan = ok(&args("plan"), &[]);
        assert!(
            plan.contains("dirty") && plan.contains("never run"),
            "{plan}"
        );
        let run = exec(&args("run"), &[]);
        assert_eq!(run.code, Some(1), "{}: {}", path.display(), run.stdout);
        assert!(
            run.stderr.contains("node `r` (op `read_file`) failed") && run.stderr.contains(why),
            "{}: {}",
            path.display(),
            run.stderr
        );
        assert!(entry_hashes(&cache).is_empty(), "nothing cached");
        let tmp: Vec<_> = std::fs::read_dir(cache.join("tmp"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
            .filter(|n| !n.starts_with("owner-"))
            .collect();
        assert!(tmp.is_empty(), "{tmp:?}");
    }
}

#[test]
fn a_run_waiting_for_gc_says_so_then_runs() {
    let case = Case::new();
    let cache = Cache::open(&case.cache).unwrap();
    let held = cache.lock_exclusive().unwrap();
    let mut run = child(&case.args("run"), &[]).spawn().unwrap();
    let stderr = run.stderr.take().unwrap();
    // Read what the run says until it says it is waiting: it cannot finish while the lock is
    // held, so there is no race, only an order.
    let mut lines = BufReader::new(stderr).lines();
    let mut seen = String::new();
    loop {
        let line = lines
            .next()
            .expect("the run ended without saying it waits")
            .unwrap();
        seen.push_str(&line);
        seen.push('\n');
        if line.contains("waiting for the cache") {
            break;
        }
    }
    assert!(seen.contains("exclusively"), "{seen}");
    assert!(
        run.try_wait().unwrap().is_none(),
        "the run must wait, not fail"
    );
    drop(held);
    let out = deadline(run, "run after gc");
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("5 nodes: 5 ran"));
}

/// Every path under `dir` with its size and mtime, for "nothing was written".
fn snapshot(dir: &Path) -> Vec<(PathBuf, u64, std::time::SystemTime)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let m = std::fs::symlink_metadata(e.path()).unwrap();
            if m.is_dir() {
                stack.push(e.path());
            }
            out.push((e.path(), m.len(), m.modified().unwrap()));
        }
    }
    out.sort();
    out
}

fn set_read_only(dir: &Path, read_only: bool) {
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
            }
            let mut perm = std::fs::metadata(e.path()).unwrap().permissions();
            perm.set_readonly(read_only);
            std::fs::set_permissions(e.path(), perm).unwrap();
        }
    }
    let mut perm = std::fs::metadata(dir).unwrap().permissions();
    perm.set_readonly(read_only);
    std::fs::set_permissions(dir, perm).unwrap();
}

#[test]
fn a_read_only_cache_runs_a_fully_fresh_pipeline_without_writing() {
    let case = Case::new();
    assert_eq!(case.run(&[]).code, Some(0));
    set_read_only(&case.cache, true);
    // The run's trace is its log, written where the cache allows it (`exec::run_traced`); it
    // is left out of what must stay untouched, with the temporary directory it passes through.
    let state = |cache: &std::path::Path| {
        let mut files = snapshot(cache);
        files.retain(|(path, ..)| {
            let path = path.strip_prefix(cache).unwrap_or(path);
            !(path.starts_with("traces") || path == std::path::Path::new("tmp"))
        });
        files
    };
    let before = state(&case.cache);
    let run = case.run(&[]);
    let after = state(&case.cache);
    set_read_only(&case.cache, false);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(
        run.stdout.contains("5 nodes: 0 ran, 5 fresh"),
        "{}",
        run.stdout
    );
    // Checked whether or not permissions bind this process (they do not bind root): a fresh
    // run writes nothing, so a read-only cache cannot fail it.
    assert_eq!(before, after, "a fully fresh run wrote to the cache");
}
