//! Operator source fingerprints: a change to an operator's code must be a conscious decision
//! about its cache entries.
//!
//! An operator's `version()` is part of every cache key it makes, and it is bumped by hand.
//! A behaviour change without a bump would silently serve entries computed by the old code. So
//! `operators/fingerprints.txt` (committed) lists, per registered operator, its version, the
//! file that implements it and a blake3 hash over that file plus every module of this crate it
//! reaches through `crate::…` paths (its shared kit, prompt format, frame helpers), transitively.
//! This test recomputes each hash; when one differs, the developer decides: if the operator's
//! outputs can change, bump its `version()`; either way, re-bless the table (the message says
//! how). The version in the table must match the code, so a bump also shows in review.
//!
//! Why a table, not the fingerprint in the key: a key that hashed the source would re-run
//! every node after a comment edit or a rename, which costs hours for training nodes, and
//! would differ between checkouts with different line endings. The table makes the decision
//! explicit instead. Not covered: the `model` and `world` crates and dependencies; they have
//! their own golden and parity tests.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

const TABLE: &str = "fingerprints.txt";
const BLESS: &str = "JUDGEFLOW_BLESS_FINGERPRINTS";

fn src_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// This crate's modules, by name.
fn modules() -> BTreeMap<String, String> {
    std::fs::read_dir(src_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "rs"))
        .map(|p| {
            (
                p.file_stem().unwrap().to_string_lossy().into_owned(),
                std::fs::read_to_string(&p).unwrap(),
            )
        })
        .collect()
}

/// The modules a source text names through `crate::m` or `use crate::{m, …}`.
fn uses(text: &str, modules: &BTreeMap<String, String>) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (at, _) in text.match_indices("crate::") {
        let rest = &text[at + "crate::".len()..];
        let named = if let Some(group) = rest.strip_prefix('{') {
            // The brace group, balanced.
            let mut depth = 1;
            let end = group
                .char_indices()
                .find(|&(_, c)| {
                    depth += match c {
                        '{' => 1,
                        '}' => -1,
                        _ => 0,
                    };
                    depth == 0
                })
                .map_or(group.len(), |(i, _)| i);
            &group[..end]
        } else {
            rest.split(|c: char| !(c.is_alphanumeric() || c == '_'))
                .next()
                .unwrap_or_default()
        };
        out.extend(
            named
                .split(|c: char| !(c.is_alphanumeric() || c == '_'))
                .filter(|w| modules.contains_key(*w))
                .map(str::to_string),
        );
    }
    out
}

/// The hash of `file`'s module and every module it reaches, each named in the hash.
fn fingerprint(file: &str, modules: &BTreeMap<String, String>) -> (String, Vec<String>) {
    let stem = file.trim_end_matches(".rs");
    assert!(modules.contains_key(stem), "{TABLE}: no module {file}");
    let mut reached = BTreeSet::from([stem.to_string()]);
    let mut todo = vec![stem.to_string()];
    while let Some(m) = todo.pop() {
        for u in uses(&modules[&m], modules) {
            if reached.insert(u.clone()) {
                todo.push(u);
            }
        }
    }
    let mut h = blake3::Hasher::new();
    for m in &reached {
        h.update(m.as_bytes());
        h.update(&[0]);
        h.update(modules[m].as_bytes());
        h.update(&[0]);
    }
    (
        h.finalize().to_hex()[..16].to_string(),
        reached.into_iter().collect(),
    )
}

struct Row {
    op: String,
    version: u32,
    file: String,
    hash: String,
}

fn op_id(op: &dyn judgeflow_engine::Operator) -> String {
    match op.kind() {
        Some(kind) => format!("{}/{kind}", op.name()),
        None => op.name().to_string(),
    }
}

fn read_table(text: &str) -> Vec<Row> {
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            assert_eq!(f.len(), 4, "{TABLE}: a row is `op version file hash`: {l}");
            Row {
                op: f[0].into(),
                version: f[1].parse().expect("version is a number"),
                file: f[2].into(),
                hash: f[3].into(),
            }
        })
        .collect()
}

#[test]
fn every_operator_source_matches_its_fingerprint_and_version() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(TABLE);
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    let rows = read_table(&text);
    let modules = modules();
    let registry = judgeflow_operators::registry();
    let ops: BTreeMap<String, u32> = registry
        .all()
        .map(|op| (op_id(&**op), op.version()))
        .collect();

    if std::env::var_os(BLESS).is_some() {
        let mut out = String::from(
            "# op version file hash: see tests/fingerprints.rs. Re-bless with\n\
             # JUDGEFLOW_BLESS_FINGERPRINTS=1 cargo test --workspace --test fingerprints\n",
        );
        for (op, version) in &ops {
            let file = rows
                .iter()
                .find(|r| r.op == *op)
                .map(|r| r.file.clone())
                .unwrap_or_else(|| panic!("add a row for new operator `{op}` naming its file"));
            let (hash, _) = fingerprint(&file, &modules);
            out.push_str(&format!("{op} {version} {file} {hash}\n"));
        }
        std::fs::write(&path, out).unwrap();
        return;
    }

    let mut problems = Vec::new();
    for (op, version) in &ops {
        let Some(row) = rows.iter().find(|r| r.op == *op) else {
            problems.push(format!(
                "operator `{op}` has no row: add `{op} {version} FILE.rs -` and re-bless"
            ));
            continue;
        };
        if row.version != *version {
            problems.push(format!(
                "operator `{op}` is at version {version} but the table says {}: re-bless",
                row.version
            ));
        }
        let (hash, files) = fingerprint(&row.file, &modules);
        if hash != row.hash {
            problems.push(format!(
                "the source of operator `{op}` changed ({}): if the same inputs can now give \
                 different outputs, bump its `version()` (cache entries of the old code would \
                 otherwise be served); then re-bless",
                files.join(".rs, ") + ".rs"
            ));
        }
    }
    for row in &rows {
        if !ops.contains_key(&row.op) {
            problems.push(format!(
                "the table lists `{}`, which is not registered",
                row.op
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "{TABLE} is stale:\n  - {}\nre-bless with: {BLESS}=1 cargo test --workspace --test fingerprints",
        problems.join("\n  - ")
    );
}

#[test]
fn uses_follows_paths_and_use_groups() {
    let modules: BTreeMap<String, String> = ["frames", "pairs", "model_kit"]
        .iter()
        .map(|m| (m.to_string(), String::new()))
        .collect();
    let text =
        "use crate::{frames::col, pairs::{PairRow, x}};\nlet d = crate::model_kit::device();";
    assert_eq!(
        uses(text, &modules).into_iter().collect::<Vec<_>>(),
        ["frames", "model_kit", "pairs"]
    );
    assert!(uses("use crate::other::x;", &modules).is_empty());
}

#[test]
fn a_change_in_a_reached_module_changes_the_fingerprint_and_others_do_not() {
    let mut modules: BTreeMap<String, String> = [
        ("op", "use crate::kit::run;"),
        ("kit", "use crate::frames::col;"),
        ("frames", "fn col() {}"),
        ("unrelated", "fn other() {}"),
    ]
    .iter()
    .map(|(m, t)| (m.to_string(), t.to_string()))
    .collect();
    let (before, files) = fingerprint("op.rs", &modules);
    assert_eq!(files, ["frames", "kit", "op"], "transitively reached");
    modules.insert("unrelated".into(), "fn other() { 1; }".into());
    assert_eq!(fingerprint("op.rs", &modules).0, before);
    modules.insert("frames".into(), "fn col() { 2; }".into());
    assert_ne!(fingerprint("op.rs", &modules).0, before);
}
