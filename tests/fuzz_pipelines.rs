//! A mutation fuzzer over the shipped pipelines: each case takes one of `pipelines/*.toml`,
//! applies a few random edits (lines deleted, duplicated, swapped or cut; values replaced with
//! hostile ones; sections inserted; bytes flipped) and sends the result through `check` and
//! `plan` (against an empty cache) with the real operators. Every outcome is fine except a
//! panic: a bad file must become a diagnostic.
//!
//! CI runs `DEFAULT_CASES` cases from a fixed seed; `JUDGEFLOW_FUZZ_CASES=N` runs more and
//! `JUDGEFLOW_FUZZ_SEED=S` explores elsewhere. The figures (cases, crashes, slowest case) are
//! printed (`cargo test --test fuzz_pipelines -- --nocapture` shows them).

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use judgeflow_engine::cache::Cache;
use judgeflow_engine::{cli, exec};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestRng, TestRunner};

const DEFAULT_CASES: u32 = 1000;

/// Values that have broken parsers and planners elsewhere.
const HOSTILE: &[&str] = &[
    "0",
    "-1",
    "9223372036854775807",
    "-9223372036854775808",
    "1e308",
    "-0.0",
    "nan",
    "inf",
    "\"\"",
    "\"x\"",
    "\"cuda\"",
    "\"world\"",
    "\"world.scenes\"",
    "\"train@prev\"",
    "\"train@0\"",
    "\"train@last\"",
    "\"a/b\"",
    "\"../../etc/passwd\"",
    "\"/dev/zero\"",
    "[]",
    "[1, 1]",
    "[\"majority\", \"majority\"]",
    "{}",
    "{ data = \"world\" }",
    "true",
    "1000",
    "4096",
    "1979-05-27T07:32:00Z",
];

/// Lines inserted whole.
const SECTIONS: &[&str] = &[
    "[sweep]\n\"world.count\" = [1, 2, 3]",
    "[sweep]\n\"world.count\" = [1, 1]",
    "[iterate.again]\ntimes = 1000\nnodes = [\"world\"]",
    "[nodes.extra]\nop = \"concat\"\ninputs = [\"extra\", \"extra\"]",
    "[nodes.extra]\nop = \"source\"\nkind = \"jsonl\"\npath = \"/dev/zero\"",
    "[pipeline]\nname = \"again\"",
    "inputs = [\"nowhere.port\"]",
    "gpus = 8",
    "seed = 18446744073709551615",
    "[nodes.\"x@1\"]",
    "[[nodes.world]]",
];

#[derive(Clone, Debug)]
enum Edit {
    Delete(prop::sample::Index),
    Duplicate(prop::sample::Index),
    Swap(prop::sample::Index, prop::sample::Index),
    Value(prop::sample::Index, prop::sample::Index),
    Insert(prop::sample::Index, prop::sample::Index),
    Cut(prop::sample::Index),
    Flip(prop::sample::Index, u8),
}

fn edit() -> impl Strategy<Value = Edit> {
    let i = any::<prop::sample::Index>;
    prop_oneof![
        i().prop_map(Edit::Delete),
        i().prop_map(Edit::Duplicate),
        (i(), i()).prop_map(|(a, b)| Edit::Swap(a, b)),
        (i(), i()).prop_map(|(a, b)| Edit::Value(a, b)),
        (i(), i()).prop_map(|(a, b)| Edit::Insert(a, b)),
        i().prop_map(Edit::Cut),
        (i(), any::<u8>()).prop_map(|(a, b)| Edit::Flip(a, b)),
    ]
}

fn apply(text: &str, edits: &[Edit]) -> Vec<u8> {
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    let mut bytes: Option<Vec<u8>> = None;
    for e in edits {
        if lines.is_empty() {
            lines.push(String::new());
        }
        let n = lines.len();
        match e {
            Edit::Delete(i) => {
                lines.remove(i.index(n));
            }
            Edit::Duplicate(i) => {
                let l = lines[i.index(n)].clone();
                lines.insert(i.index(n), l);
            }
            Edit::Swap(a, b) => lines.swap(a.index(n), b.index(n)),
            Edit::Value(i, v) => {
                let line = &mut lines[i.index(n)];
                if let Some((key, _)) = line.split_once('=') {
                    *line = format!("{key}= {}", HOSTILE[v.index(HOSTILE.len())]);
                }
            }
            Edit::Insert(i, s) => {
                lines.insert(i.index(n + 1), SECTIONS[s.index(SECTIONS.len())].into())
            }
            Edit::Cut(i) => lines.truncate(i.index(n) + 1),
            Edit::Flip(i, b) => {
                let mut all = lines.join("\n").into_bytes();
                if !all.is_empty() {
                    let at = i.index(all.len());
                    all[at] ^= b | 1;
                }
                bytes = Some(all);
                break;
            }
        }
    }
    bytes.unwrap_or_else(|| lines.join("\n").into_bytes())
}

#[derive(Default)]
struct Figures {
    cases: u32,
    crashes: Vec<String>,
    valid: u32,
    slowest: (Duration, String),
}

#[test]
fn mutated_shipped_pipelines_never_crash_check_or_plan() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("pipelines");
    let mut shipped: Vec<(String, String)> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read_to_string(&p).unwrap(),
            )
        })
        .collect();
    shipped.sort();
    assert!(shipped.len() >= 4);
    let cases = std::env::var("JUDGEFLOW_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_CASES);
    let seed: u64 = std::env::var("JUDGEFLOW_FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(14);
    let mut seed_bytes = [0u8; 32];
    seed_bytes[..8].copy_from_slice(&seed.to_le_bytes());
    let config = Config {
        cases,
        failure_persistence: None,
        max_shrink_iters: 200,
        ..Config::default()
    };
    let mut runner = TestRunner::new_with_rng(
        config,
        TestRng::from_seed(RngAlgorithm::ChaCha, &seed_bytes),
    );
    let registry = judgeflow_operators::registry();
    let dir = tempfile::tempdir().unwrap();
    let figures = Mutex::new(Figures::default());
    // A panic inside is caught below and counted; keep the default hook from printing each.
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let strategy = (0..shipped.len(), prop::collection::vec(edit(), 1..5));
    let result = runner.run(&strategy, |(which, edits)| {
        let (name, text) = &shipped[which];
        let mutated = apply(text, &edits);
        let path = dir.path().join(name);
        std::fs::write(&path, &mutated).unwrap();
        let started = Instant::now();
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            match cli::load(&path, &registry, &[]) {
                Ok(plan) => {
                    let cache = Cache::open(dir.path().join("cache")).unwrap();
                    exec::status(&plan, &cache).map(|_| true)
                }
                Err(_) => Ok(false),
            }
        }));
        let took = started.elapsed();
        let mut f = figures.lock().unwrap();
        f.cases += 1;
        let label = format!("{name} {edits:?}");
        if took > f.slowest.0 {
            f.slowest = (took, label.clone());
        }
        match outcome {
            Ok(Ok(valid)) => {
                f.valid += u32::from(valid);
                Ok(())
            }
            Ok(Err(e)) => {
                // `plan` against an empty cache fails only on I/O; that is a finding too.
                f.crashes.push(format!("{label}: plan failed: {e}"));
                Err(TestCaseError::fail(format!("plan failed: {e}")))
            }
            Err(_) => {
                f.crashes.push(label.clone());
                Err(TestCaseError::fail(format!(
                    "panic on:\n{}",
                    String::from_utf8_lossy(&mutated)
                )))
            }
        }
    });
    std::panic::set_hook(hook);
    let f = figures.into_inner().unwrap();
    println!(
        "fuzz: {} cases (seed {seed}), {} still valid, {} crashes; slowest {:.1} ms: {}",
        f.cases,
        f.valid,
        f.crashes.len(),
        f.slowest.0.as_secs_f64() * 1e3,
        f.slowest.1
    );
    if let Err(e) = result {
        panic!("{e}\ncrashes: {:#?}", f.crashes);
    }
}
