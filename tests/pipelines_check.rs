//! Every pipeline users copy from `pipelines/` plans cleanly: operators, parameters, ports,
//! references and schemas all check, GPU pipelines included (planning needs no GPU).

use std::process::Command;

#[test]
fn every_shipped_pipeline_passes_check() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("pipelines");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    let names: Vec<String> = files
        .iter()
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    for expected in [
        "quickstart",
        "self_train",
        "oracle_vs_majority",
        "ablations",
    ] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} missing: {names:?}"
        );
    }
    for file in &files {
        let out = Command::new(env!("CARGO_BIN_EXE_judgeflow"))
            .arg("check")
            .arg(file)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stdout.contains("is valid"),
            "{}: {stdout}\n{}",
            file.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
