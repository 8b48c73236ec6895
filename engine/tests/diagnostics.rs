//! Every bad pipeline under `tests/bad/` must fail `check` with a diagnostic pointing into the
//! file (snapshotted), exit code 2, and never a panic. Huge inputs and bad `--set` overrides are
//! generated here.

mod common;

use std::path::Path;

use judgeflow_engine::Error;
use judgeflow_engine::cli::{exit_code, load, render};

fn check(path: &Path, overrides: &[String]) -> Error {
    let (registry, log) = common::registry();
    let err = match load(path, &registry, overrides) {
        Ok(_) => panic!("{} should be rejected", path.display()),
        Err(e) => e,
    };
    assert!(log.take().is_empty(), "checking must not run anything");
    err
}

fn rendered(err: &Error) -> String {
    render(err, 100, false)
}

#[test]
fn bad_pipelines_are_rejected_with_snapshotted_diagnostics() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/bad");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(files.len() >= 20, "at least 20 bad pipeline files");
    let _cwd = CwdGuard::enter(&dir);
    for path in files {
        let name = path.file_name().unwrap().to_str().unwrap().to_string();
        let err = check(Path::new(&name), &[]);
        assert_eq!(exit_code(&err), 2, "{name} must exit with 2");
        insta::assert_snapshot!(name.trim_end_matches(".toml"), rendered(&err));
    }
}

/// Each `(snapshot, file under tests/good, --set)` is rejected with exit code 2 and the
/// snapshotted diagnostic.
fn assert_rejected_overrides(cases: &[(&str, &str, &str)]) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/good");
    let _cwd = CwdGuard::enter(&dir);
    for &(name, file, set) in cases {
        let err = check(Path::new(file), &[set.to_string()]);
        assert_eq!(exit_code(&err), 2);
        insta::assert_snapshot!(name, rendered(&err));
    }
}

#[test]
fn set_overrides_are_validated_against_the_command_line() {
    assert_rejected_overrides(&[
        ("set_unknown_node", "chain.toml", "ad.delta=2"),
        ("set_unknown_param", "chain.toml", "add.delt=2"),
        ("set_bad_value", "chain.toml", "add.delta=fast"),
        ("set_no_equals", "chain.toml", "add.delta"),
        ("set_structural", "chain.toml", "add.inputs=x"),
        ("set_shards", "chain.toml", "add.shards=2"),
    ]);
}

#[test]
fn seed_overrides_are_validated_against_the_command_line() {
    assert_rejected_overrides(&[
        ("set_seed_negative", "chain.toml", "pipeline.seed=-1"),
        ("set_seed_float", "chain.toml", "pipeline.seed=1.5"),
        ("set_seed_text", "chain.toml", "pipeline.seed=lucky"),
        (
            "set_seed_too_large",
            "chain.toml",
            "pipeline.seed=99999999999999999999",
        ),
        ("set_pipeline_name", "chain.toml", "pipeline.name=other"),
        ("set_node_seed_negative", "chain.toml", "data.seed=-1"),
        ("set_node_seed_text", "chain.toml", "data.seed=lucky"),
        // The file sweeps the seed: one `--set` value would silently lose to the sweep.
        ("set_seed_swept", "seeds.toml", "pipeline.seed=4"),
    ]);
}

#[test]
fn iteration_overrides_are_validated_against_the_command_line() {
    assert_rejected_overrides(&[
        (
            "set_iterate_unknown_group",
            "loop.toml",
            "iterate.lop.times=5",
        ),
        ("set_iterate_key", "loop.toml", "iterate.loop.nodes=fit"),
        ("set_iterate_no_key", "loop.toml", "iterate.loop=5"),
        ("set_iterate_zero", "loop.toml", "iterate.loop.times=0"),
        (
            "set_iterate_too_many",
            "loop.toml",
            "iterate.loop.times=1001",
        ),
        ("set_iterate_text", "loop.toml", "iterate.loop.times=many"),
    ]);
}

#[test]
fn huge_file_gets_a_diagnostic_not_a_hang() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("huge.toml");
    let mut text = String::from("[pipeline]\nname = \"huge\"\n");
    while text.len() < 10 << 20 {
        text.push_str("# padding padding padding padding padding padding padding padding\n");
    }
    std::fs::write(&path, text).unwrap();
    let err = check(&path, &[]);
    assert!(rendered(&err).contains("judgeflow::config::too_large"));
}

#[test]
fn missing_file_is_an_io_diagnostic() {
    let (registry, _) = common::registry();
    let err = load(Path::new("/nonexistent/pipeline.toml"), &registry, &[])
        .err()
        .unwrap();
    assert_eq!(exit_code(&err), 1);
    assert!(rendered(&err).contains("cannot read pipeline file"));
}

/// Diagnostics show paths as given; tests run from the fixture directory so snapshots hold no
/// machine-specific paths. Tests in this binary that change directory hold this lock.
struct CwdGuard(
    #[allow(dead_code)] std::sync::MutexGuard<'static, ()>,
    std::path::PathBuf,
);

static CWD: std::sync::Mutex<()> = std::sync::Mutex::new(());

impl CwdGuard {
    fn enter(dir: &Path) -> Self {
        let guard = CWD.lock().unwrap_or_else(|e| e.into_inner());
        let old = std::env::current_dir().unwrap();
        std::env::set_current_dir(dir).unwrap();
        CwdGuard(guard, old)
    }
}

impl Drop for CwdGuard {
    fn drop(&mut self) {
        std::env::set_current_dir(&self.1).unwrap();
    }
}
