//! Regressions for results served wrong or resources used without bound (issue 14), in one
//! process over the toy operators. The crash and concurrency cases, which need real processes,
//! are in `faults.rs`.

mod common;

use clap::Parser;
use judgeflow_engine::cache::Cache;
use judgeflow_engine::cli::{self, Cli};
use judgeflow_engine::exec::{self, RunOptions, Status};
use judgeflow_engine::progress::ProgressHub;
use std::path::{Path, PathBuf};

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
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, text).unwrap();
        p
    }

    /// Runs and returns the sorted names of nodes whose operator ran.
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

    fn status_of(&self, pipeline: &Path, node: &str) -> Status {
        let plan = cli::load(pipeline, &self.registry, &[]).unwrap();
        let cache = Cache::open(self.cache_dir()).unwrap();
        exec::status(&plan, &cache)
            .unwrap()
            .into_iter()
            .find(|(i, _)| plan.graph[*i].name == node)
            .map(|(_, s)| s)
            .unwrap_or_else(|| panic!("no node `{node}`"))
    }

    fn cli(&self, args: &[&str]) -> Result<String, judgeflow_engine::Error> {
        let cache = self.cache_dir();
        let mut argv = vec!["judgeflow", "--cache", cache.to_str().unwrap()];
        argv.extend_from_slice(args);
        let mut out = String::new();
        cli::execute(Cli::parse_from(argv), &self.registry, &mut out).map(|()| out)
    }

    fn key_of(&self, pipeline: &str, node: &str) -> String {
        Cache::open(self.cache_dir())
            .unwrap()
            .last_run(pipeline, node)
            .unwrap()
    }
}

const CHAIN: &str = r#"
[pipeline]
name = "chain"

[nodes.a]
op = "emit"
n = 40
scale = 0.5

[nodes.b]
op = "add"
delta = 1.0
inputs = ["a"]

[nodes.s]
op = "summarize"
inputs = ["b"]

[nodes.w]
op = "fit"
inputs = { numbers = "b" }
"#;

/// Flips one byte at `offset` of `file` and puts its mtime back, as bit rot (or a careful
/// hand) would: size and mtime, the cheap check, both still match.
fn flip_keeping_mtime(file: &Path, offset: usize) {
    let mtime = std::fs::metadata(file).unwrap().modified().unwrap();
    let mut bytes = std::fs::read(file).unwrap();
    bytes[offset] ^= 0x5a;
    std::fs::write(file, &bytes).unwrap();
    let f = std::fs::File::options().write(true).open(file).unwrap();
    f.set_times(std::fs::FileTimes::new().set_modified(mtime))
        .unwrap();
    assert_eq!(std::fs::metadata(file).unwrap().modified().unwrap(), mtime);
}

fn frame_bytes(b: &Bench, key: &str, port: &str) -> Vec<u8> {
    let cache = Cache::open(b.cache_dir()).unwrap();
    std::fs::read(cache.output_path(key, port, true)).unwrap()
}

#[test]
fn a_frame_byte_flipped_with_its_mtime_restored_is_never_served() {
    let b = Bench::new();
    let p = b.write("chain.toml", CHAIN);
    b.run(&p);
    let key = b.key_of("chain", "b");
    let clean = frame_bytes(&b, &key, "numbers");
    let shown_clean = b.cli(&["show", p.to_str().unwrap(), "s"]).unwrap();
    // Every offset class: header, data pages, footer.
    for offset in [8, clean.len() / 3, clean.len() / 2, clean.len() - 12] {
        let file = Cache::open(b.cache_dir())
            .unwrap()
            .output_path(&key, "numbers", true);
        flip_keeping_mtime(&file, offset);
        match b.status_of(&p, "b") {
            Status::Dirty { why, .. } => assert!(
                matches!(&why[0], judgeflow_engine::dirty::DirtyReason::EntryCorrupt { detail } if detail.contains("numbers.parquet")),
                "offset {offset}: {why:?}"
            ),
            other => panic!("offset {offset}: a flipped frame must not be fresh: {other:?}"),
        }
        let err = b.cli(&["show", p.to_str().unwrap(), "b"]).unwrap_err();
        assert!(
            cli::render(&err, 100, false).contains("has no up-to-date result"),
            "offset {offset}"
        );
        // The run recomputes `b` (identical bytes), so its dependents stay fresh.
        assert_eq!(b.run(&p), ["b"], "offset {offset}");
        assert_eq!(frame_bytes(&b, &key, "numbers"), clean);
        assert_eq!(
            b.cli(&["show", p.to_str().unwrap(), "s"]).unwrap(),
            shown_clean
        );
    }
}

#[test]
fn a_frame_read_by_show_is_checked_against_its_hash() {
    // Flipped after `plan` looked (between lookup and read): `read_parquet_checked` is what
    // stands between the bytes and the table shown.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f.parquet");
    let mut df = polars::df!("id" => [1i64, 2, 3], "value" => [0.5f64, 1.5, 2.5]).unwrap();
    judgeflow_engine::op::write_parquet(&path, &mut df).unwrap();
    let hash = judgeflow_engine::cache::hash_file(&path).unwrap();
    assert_eq!(
        judgeflow_engine::op::read_parquet_checked(&path, &hash).unwrap(),
        df
    );
    let len = std::fs::metadata(&path).unwrap().len() as usize;
    flip_keeping_mtime(&path, len / 2);
    let err = judgeflow_engine::op::read_parquet_checked(&path, &hash).unwrap_err();
    let text = cli::render(&err, 100, false);
    assert!(
        text.contains("judgeflow::cache::corrupt") && text.contains("no longer matches"),
        "{text}"
    );
}

#[test]
fn verify_rehashes_checkpoints_that_kept_size_and_mtime() {
    let b = Bench::new();
    let p = b.write("chain.toml", CHAIN);
    b.run(&p);
    let key = b.key_of("chain", "w");
    let weights = Cache::open(b.cache_dir())
        .unwrap()
        .output_path(&key, "weights", false)
        .join("w.txt");
    let clean = std::fs::read(&weights).unwrap();
    flip_keeping_mtime(&weights, 0);
    // Artifacts are trusted on size and mtime between verifies, as the cache contract says.
    assert!(matches!(b.status_of(&p, "w"), Status::Fresh { .. }));
    let err = b.cli(&["verify"]).unwrap_err();
    assert_eq!(cli::exit_code(&err), 1);
    let text = cli::render(&err, 400, false);
    assert!(
        text.contains("`weights/w.txt` no longer matches its hash (1 of 4 entries were corrupt"),
        "{text}"
    );
    match b.status_of(&p, "w") {
        Status::Dirty { why, .. } => assert_eq!(
            why,
            ["its cache entry was removed (gc or by hand)"],
            "{why:?}"
        ),
        other => panic!("verify removed the entry: {other:?}"),
    }
    assert_eq!(b.run(&p), ["w"]);
    assert_eq!(std::fs::read(&weights).unwrap(), clean);
    assert_eq!(
        b.cli(&["verify"]).unwrap().trim(),
        "verified 4 entries: 0 corrupt"
    );
}

#[test]
fn a_removed_entry_is_reported_as_removed_not_as_never_run() {
    let b = Bench::new();
    let p = b.write("chain.toml", CHAIN);
    b.run(&p);
    let cache = Cache::open(b.cache_dir()).unwrap();
    std::fs::remove_dir_all(cache.entry_dir(&b.key_of("chain", "b"))).unwrap();
    match b.status_of(&p, "b") {
        Status::Dirty { why, .. } => {
            assert_eq!(why, ["its cache entry was removed (gc or by hand)"])
        }
        other => panic!("{other:?}"),
    }
    // Dependents wait on `b` and remember their own past too.
    match b.status_of(&p, "s") {
        Status::Waiting { why, .. } => assert!(why.is_empty(), "{why:?}"),
        other => panic!("{other:?}"),
    }
    let out = b
        .cli(&["explain", p.to_str().unwrap(), "b", "--set", "b.delta=2"])
        .unwrap();
    assert!(
        out.contains("param delta: 1.0 → 2.0") && !out.contains("never run"),
        "{out}"
    );
}

#[test]
fn sweep_labels_that_used_to_share_a_record_file_keep_their_own_history() {
    let b = Bench::new();
    b.write("d/a/b", "1\n2\n");
    b.write("d/a%b", "3\n4\n");
    let text = "[pipeline]\nname = \"labels\"\n\n[nodes.r]\nop = \"read_file\"\npath = \"d/a/b\"\n\n[sweep]\n\"r.path\" = [\"d/a/b\", \"d/a%b\"]\n";
    let p = b.write("labels.toml", text);
    let _cwd = common_cwd(b.dir.path());
    assert_eq!(b.run(&p).len(), 2);
    // Each variant must compare itself with its own last run, not with the other's (whichever
    // of the two wrote a shared record last, the other would report a change of `path`).
    std::fs::write(b.dir.path().join("d/a/b"), "1\n5\n").unwrap();
    std::fs::write(b.dir.path().join("d/a%b"), "3\n5\n").unwrap();
    for file in ["d/a/b", "d/a%b"] {
        match b.status_of(&p, &format!("r[r.path={file}]")) {
            Status::Dirty { why, .. } => {
                assert_eq!(why, [format!("file {file}: content changed")])
            }
            other => panic!("{other:?}"),
        }
    }
}

/// Runs the rest of a test in `dir` (relative paths in pipelines resolve against it).
fn common_cwd(dir: &Path) -> CwdGuard {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let old = std::env::current_dir().unwrap();
    std::env::set_current_dir(dir).unwrap();
    CwdGuard { old, _lock: guard }
}

struct CwdGuard {
    old: PathBuf,
    _lock: std::sync::MutexGuard<'static, ()>,
}

impl Drop for CwdGuard {
    fn drop(&mut self) {
        std::env::set_current_dir(&self.old).unwrap();
    }
}

#[test]
fn a_failing_node_leaves_no_build_directory() {
    let b = Bench::new();
    let p = b.write(
        "fail.toml",
        "[pipeline]\nname = \"fail\"\n\n[nodes.a]\nop = \"emit\"\n\n[nodes.f]\nop = \"fail\"\ninputs = [\"a\"]\n\n[nodes.p]\nop = \"panic\"\ninputs = [\"a\"]\n",
    );
    let plan = cli::load(&p, &b.registry, &[]).unwrap();
    let cache = Cache::open(b.cache_dir()).unwrap();
    exec::run(
        &plan,
        &cache,
        &RunOptions { jobs: 1, gpus: 1 },
        &ProgressHub::hidden(),
    )
    .unwrap_err();
    let left: Vec<String> = std::fs::read_dir(b.cache_dir().join("tmp"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .filter(|n| !n.starts_with("owner-"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn a_pipeline_file_that_is_a_device_or_fifo_is_refused_without_reading_it() {
    let (registry, _) = common::registry();
    let err = cli::load(Path::new("/dev/zero"), &registry, &[])
        .err()
        .unwrap();
    let text = cli::render(&err, 100, false);
    assert!(text.contains("not a regular file"), "{text}");
    assert_eq!(cli::exit_code(&err), 1);
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("p.toml");
    assert!(
        std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    let text = cli::render(&cli::load(&fifo, &registry, &[]).err().unwrap(), 100, false);
    assert!(text.contains("a FIFO, not a regular file"), "{text}");
}

#[test]
fn sweeps_are_counted_before_they_are_expanded() {
    let (registry, log) = common::registry();
    let dir = tempfile::tempdir().unwrap();
    // 10^7 variants: the limit must trip before any is built (this took 15 GB and minutes).
    let mut text = String::from("[pipeline]\nname = \"big\"\n\n");
    let mut sweep = String::from("[sweep]\n");
    for i in 0..7 {
        text.push_str(&format!("[nodes.e{i}]\nop = \"emit\"\n\n"));
        let values: Vec<String> = (1..=10).map(|v| v.to_string()).collect();
        sweep.push_str(&format!("\"e{i}.n\" = [{}]\n", values.join(", ")));
    }
    let p = dir.path().join("big.toml");
    std::fs::write(&p, text + &sweep).unwrap();
    let err = cli::load(&p, &registry, &[]).err().unwrap();
    let rendered = cli::render(&err, 100, false);
    assert!(
        rendered.contains("judgeflow::plan::too_many_variants")
            && rendered.contains("10000000 variants; the limit is 1000"),
        "{rendered}"
    );
    assert_eq!(cli::exit_code(&err), 2);
    assert!(log.take().is_empty());
}

#[test]
fn stale_temporary_files_of_dead_owners_are_removed_at_the_next_run() {
    let b = Bench::new();
    let p = b.write("chain.toml", CHAIN);
    let tmp = b.cache_dir().join("tmp");
    Cache::open(b.cache_dir()).unwrap();
    // What a process killed mid-node leaves: its owner lock file, which nobody holds any more,
    // and a half-built entry carrying its token.
    std::fs::write(tmp.join("owner-4242.17.0.lock"), b"").unwrap();
    std::fs::create_dir(tmp.join("build-4242.17.0-3")).unwrap();
    std::fs::write(tmp.join("build-4242.17.0-3/numbers.parquet"), b"half").unwrap();
    let live = Cache::open(b.cache_dir()).unwrap();
    let held = live.begin("1111").unwrap();
    std::fs::write(held.dir.join("x"), b"in progress").unwrap();
    assert_eq!(
        std::fs::read_dir(&tmp).unwrap().count(),
        4,
        "two owners, each a lock and a build directory"
    );
    b.run(&p);
    let left: Vec<String> = std::fs::read_dir(&tmp)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .filter(|n| !n.starts_with("owner-"))
        .collect();
    assert_eq!(
        left.len(),
        1,
        "only the live owner's directory stays: {left:?}"
    );
    assert!(held.dir.exists());
    drop(held);
    assert!(!std::fs::read_dir(&tmp).unwrap().any(|e| {
        e.unwrap()
            .file_name()
            .to_string_lossy()
            .starts_with("build-")
    }));
}

#[test]
fn external_paths_that_are_not_regular_files_hash_without_being_opened() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("fifo");
    assert!(
        std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    let looped = dir.path().join("loop");
    std::fs::create_dir(&looped).unwrap();
    std::os::unix::fs::symlink(&looped, looped.join("again")).unwrap();
    std::os::unix::fs::symlink(dir.path().join("y"), dir.path().join("x")).unwrap();
    std::os::unix::fs::symlink(dir.path().join("x"), dir.path().join("y")).unwrap();
    use judgeflow_engine::cache::hash_path;
    assert_eq!(hash_path(&fifo), "not a regular file (a FIFO)");
    assert_eq!(
        hash_path(Path::new("/dev/zero")),
        "not a regular file (a character device)"
    );
    assert_eq!(hash_path(&dir.path().join("x")), "missing");
    // A directory with a link to itself is hashed once, by the link's target.
    let h = hash_path(&looped);
    assert_eq!(h.len(), 64, "{h}");
    assert_eq!(hash_path(&looped), h);
    // A tree larger than the bound is measured, not read.
    let big = dir.path().join("big");
    std::fs::create_dir(&big).unwrap();
    for i in 0..=judgeflow_engine::files::MAX_DIR_FILES {
        std::fs::write(big.join(i.to_string()), b"").unwrap();
    }
    assert_eq!(hash_path(&big), "too large (directory)");
}
