//! The run trace: one line per node with where its time went, written into the cache by every
//! run (also a failed one) and found again by `report`.

mod common;

use std::path::PathBuf;

use clap::Parser;
use judgeflow_engine::cache::Cache;
use judgeflow_engine::cli::{self, Cli};
use judgeflow_engine::trace::{self, TraceLine};

const PIPELINE: &str = r#"
[pipeline]
name = "traced"

[nodes.a]
op = "emit"
n = 5

[nodes.b]
op = "add"
delta = 1.0
inputs = ["a"]

[nodes.c]
op = "emit"
n = 3

[nodes.m]
op = "merge"
inputs = { left = "b", right = "c" }

[nodes.w]
op = "fit"
inputs = ["m"]

[nodes.s]
op = "score"
inputs = { weights = "w", numbers = "c" }
"#;

struct Bench {
    dir: tempfile::TempDir,
    registry: judgeflow_engine::Registry,
}

impl Bench {
    fn new() -> Self {
        let (registry, _) = common::registry();
        Bench {
            dir: tempfile::tempdir().unwrap(),
            registry,
        }
    }

    fn write(&self, text: &str) -> PathBuf {
        let p = self.dir.path().join("p.toml");
        std::fs::write(&p, text).unwrap();
        p
    }

    fn cli(&self, args: &[&str]) -> Result<String, judgeflow_engine::Error> {
        let cache = self.dir.path().join("cache");
        let mut argv = vec!["judgeflow", "--cache", cache.to_str().unwrap()];
        argv.extend_from_slice(args);
        let mut out = String::new();
        cli::execute(Cli::parse_from(argv), &self.registry, &mut out).map(|()| out)
    }

    /// Runs and reads back the trace the run printed.
    fn run(&self, p: &std::path::Path) -> (PathBuf, Vec<TraceLine>) {
        let out = self.cli(&["run", p.to_str().unwrap()]).unwrap();
        let path = PathBuf::from(
            out.lines()
                .find_map(|l| l.strip_prefix("trace: "))
                .unwrap_or_else(|| panic!("the run names its trace: {out}")),
        );
        let lines = trace::read(&path).unwrap();
        (path, lines)
    }
}

fn line<'a>(lines: &'a [TraceLine], node: &str) -> &'a TraceLine {
    lines.iter().find(|l| l.node == node).unwrap()
}

#[test]
fn every_node_gets_a_line_with_times_rows_and_cache_use() {
    let b = Bench::new();
    let p = b.write(PIPELINE);
    let (path, lines) = b.run(&p);
    let cache = b.dir.path().join("cache");
    assert_eq!(path.parent().unwrap(), cache.join("traces/traced"));
    assert!(path.extension().unwrap() == "jsonl");

    let names: Vec<&str> = lines.iter().map(|l| l.node.as_str()).collect();
    let plan = b.cli(&["plan", p.to_str().unwrap()]).unwrap();
    let planned: Vec<&str> = plan
        .lines()
        .map(|l| l.split_whitespace().nth(1).unwrap())
        .collect();
    assert_eq!(names, planned, "one line per node, in plan order");
    assert_eq!(names.len(), 6);
    let run = &lines[0].run;
    assert_eq!(path.file_stem().unwrap().to_str().unwrap(), run);
    for l in &lines {
        assert_eq!(&l.run, run);
        assert_eq!(l.pipeline, "traced");
        assert_eq!(
            (l.status.as_str(), l.cache.as_deref()),
            ("ran", Some("miss"))
        );
        let (submit, start, end) = (l.submit_s.unwrap(), l.start_s.unwrap(), l.end_s.unwrap());
        assert!(0.0 <= submit && submit <= start && start <= end, "{l:?}");
        assert!((l.queue_s.unwrap() - (start - submit)).abs() < 1e-9);
        assert!((l.wall_s.unwrap() - (end - start)).abs() < 1e-9);
        assert_eq!(
            l.key.as_deref(),
            Cache::open(&cache)
                .unwrap()
                .last_run("traced", &l.node)
                .as_deref()
        );
        if cfg!(unix) {
            assert!(l.cpu_s.is_some_and(|c| c >= 0.0), "{l:?}");
        }
        if cfg!(target_os = "linux") {
            assert!(l.peak_rss_bytes.is_some_and(|r| r > 0), "{l:?}");
        }
        if l.gpus == 0 {
            assert_eq!(l.peak_gpu_bytes, None, "{l:?}");
        }
    }
    // A node starts after what it reads ended.
    assert!(line(&lines, "m").start_s >= line(&lines, "b").end_s);
    assert!(line(&lines, "s").submit_s >= line(&lines, "w").end_s);
    // Rows: frames in and out; artifacts count none; sources read nothing.
    let rows = |n: &str| (line(&lines, n).rows_in, line(&lines, n).rows_out);
    assert_eq!(rows("a"), (None, Some(5)));
    assert_eq!(rows("b"), (Some(5), Some(5)));
    assert_eq!(
        rows("m"),
        (Some(8), Some(3)),
        "merge keeps the shorter length"
    );
    assert_eq!(
        rows("w"),
        (Some(3), Some(1)),
        "weights are no frame; the curve has 1 row"
    );
    assert_eq!(rows("s"), (Some(3), Some(1)));
    assert_eq!(
        (line(&lines, "w").gpus, line(&lines, "w").op.as_str()),
        (1, "fit")
    );

    // A warm run: a new trace of cache hits, which measured nothing of their own.
    let (again, lines) = b.run(&p);
    assert_ne!(again, path);
    assert!(again > path, "trace names sort by run");
    for l in &lines {
        assert_eq!(
            (l.status.as_str(), l.cache.as_deref()),
            ("cached", Some("hit"))
        );
        assert_eq!((l.cpu_s, l.peak_rss_bytes), (None, None));
    }
    assert_eq!(line(&lines, "m").rows_out, Some(3));
    let (latest, _) = trace::latest(&Cache::open(&cache).unwrap(), "traced")
        .unwrap()
        .unwrap();
    assert_eq!(latest, again);
}

#[test]
fn a_failed_run_leaves_a_trace_with_the_failure_and_what_was_skipped() {
    let b = Bench::new();
    let text = PIPELINE.replace("op = \"merge\"", "op = \"fail\"\n#");
    let text = text.replace(
        "inputs = { left = \"b\", right = \"c\" }",
        "inputs = [\"b\"]",
    );
    let p = b.write(&text);
    let err = b.cli(&["run", p.to_str().unwrap()]).unwrap_err();
    assert_eq!(cli::exit_code(&err), 1);
    let cache = Cache::open(b.dir.path().join("cache")).unwrap();
    let (_, lines) = trace::latest(&cache, "traced").unwrap().unwrap();
    let status = |n: &str| line(&lines, n).status.as_str();
    assert_eq!(status("a"), "ran");
    assert_eq!(status("m"), "failed");
    assert_eq!(line(&lines, "m").cache.as_deref(), Some("miss"));
    assert!(line(&lines, "m").wall_s.is_some());
    for n in ["w", "s"] {
        assert_eq!(status(n), "skipped");
        let l = line(&lines, n);
        assert_eq!(
            (l.cache.as_deref(), l.start_s, l.wall_s),
            (None, None, None)
        );
    }
    let leftovers: Vec<_> = std::fs::read_dir(b.dir.path().join("cache/tmp"))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("trace-"))
        .collect();
    assert!(leftovers.is_empty(), "the trace was moved into place");
}
