//! The pipeline seed as a first-class setting: `--set pipeline.seed=N` on every command that
//! takes `--set`, and `[sweep] "pipeline.seed" = [..]` making one variant per seed that shares
//! only the nodes that set their own seed.

mod common;

use std::path::PathBuf;

use clap::Parser;
use judgeflow_engine::cli::{self, Cli};
use judgeflow_engine::plan::{Plan, derive_seed, split_seed};

fn good(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/good")
        .join(name)
}

fn load(name: &str, set: &[&str]) -> Plan {
    let (registry, _) = common::registry();
    let set: Vec<String> = set.iter().map(|s| s.to_string()).collect();
    cli::load(&good(name), &registry, &set).unwrap()
}

fn node<'p>(plan: &'p Plan, name: &str) -> &'p judgeflow_engine::plan::PlanNode {
    &plan.graph[plan.find(name).unwrap()]
}

#[test]
fn a_seed_sweep_makes_one_variant_per_seed_and_shares_only_pinned_nodes() {
    let plan = load("seeds.toml", &[]);
    let labels: Vec<&str> = plan.variants.iter().map(|v| v.label.as_str()).collect();
    assert_eq!(
        labels,
        [
            "add.delta=1.0,seed=1",
            "add.delta=1.0,seed=2",
            "add.delta=1.0,seed=3",
            "add.delta=2.0,seed=1",
            "add.delta=2.0,seed=2",
            "add.delta=2.0,seed=3",
        ],
        "the seed varies innermost and ends every label"
    );
    // `data` sets its own seed: one node for all six variants. `add` and `sum` derive theirs
    // from the pipeline seed: one per variant.
    let names: Vec<&str> = plan
        .order
        .iter()
        .map(|&i| plan.graph[i].name.as_str())
        .collect();
    assert_eq!(names.iter().filter(|n| n.starts_with("data")).count(), 1);
    assert_eq!(names.iter().filter(|n| n.starts_with("add")).count(), 6);
    assert_eq!(names.iter().filter(|n| n.starts_with("sum")).count(), 6);
    assert_eq!(node(&plan, "data").variants.len(), 6);
    assert_eq!(node(&plan, "data").seed, 11);
    for seed in [1u64, 2, 3] {
        let add = node(&plan, &format!("add[add.delta=2.0,seed={seed}]"));
        assert_eq!(add.seed, derive_seed(seed, "add", None));
    }
    // Selections name seed variants by label.
    let mut one = load("seeds.toml", &[]);
    one.select(&["sum[add.delta=1.0,seed=2]".to_string()])
        .unwrap();
    let picked: Vec<&str> = one
        .order
        .iter()
        .map(|&i| one.graph[i].name.as_str())
        .collect();
    assert_eq!(
        picked,
        [
            "data",
            "add[add.delta=1.0,seed=2]",
            "sum[add.delta=1.0,seed=2]"
        ]
    );
}

#[test]
fn seed_labels_split_back_into_variant_and_seed() {
    assert_eq!(split_seed("seed=3"), ("", Some(3)));
    assert_eq!(
        split_seed("vote.method=oracle,seed=12"),
        ("vote.method=oracle", Some(12))
    );
    assert_eq!(
        split_seed("vote.method=oracle"),
        ("vote.method=oracle", None)
    );
    assert_eq!(split_seed(""), ("", None));
    assert_eq!(split_seed("seed=x"), ("seed=x", None));
    assert_eq!(split_seed("a.b=1,seed=+4"), ("a.b=1,seed=+4", None));
}

#[test]
fn set_pipeline_seed_changes_every_derived_seed_and_no_pinned_one() {
    let file = load("chain.toml", &[]);
    let set = load("chain.toml", &["pipeline.seed=5"]);
    for name in ["data", "add", "sum"] {
        assert_eq!(node(&file, name).seed, derive_seed(7, name, None));
        assert_eq!(node(&set, name).seed, derive_seed(5, name, None));
    }
    // The last `--set` wins, as for parameters.
    let twice = load("chain.toml", &["pipeline.seed=5", "pipeline.seed=6"]);
    assert_eq!(node(&twice, "add").seed, derive_seed(6, "add", None));
    let pinned = load("seeds.toml", &["add.delta=3.0"]);
    assert_eq!(node(&pinned, "data").seed, 11);
}

/// `--set NODE.seed=N` pins one node (as `seed = N` in its table would): the pipeline seed no
/// longer reaches it, the other nodes keep theirs, and a node the file pins takes the new seed.
#[test]
fn set_node_seed_pins_that_node_only() {
    let set = load("chain.toml", &["data.seed=9"]);
    assert_eq!(node(&set, "data").seed, 9);
    for name in ["add", "sum"] {
        assert_eq!(node(&set, name).seed, derive_seed(7, name, None));
    }
    let both = load("chain.toml", &["data.seed=9", "pipeline.seed=5"]);
    assert_eq!(
        node(&both, "data").seed,
        9,
        "a pinned node ignores the pipeline seed"
    );
    assert_eq!(node(&both, "add").seed, derive_seed(5, "add", None));
    let repinned = load("seeds.toml", &["data.seed=12"]);
    assert_eq!(node(&repinned, "data").seed, 12);
    assert_eq!(
        node(&load("seeds.toml", &[]), "data").seed,
        11,
        "the file's own pin without the `--set`"
    );
}

/// Every subcommand that takes `--set` accepts `--set pipeline.seed=N`, and it reaches the
/// plan: after a run with one seed, the same seed is fresh and another is dirty.
#[test]
fn every_command_with_set_takes_the_pipeline_seed() {
    let (registry, _) = common::registry();
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let chain = good("chain.toml");
    let chain = chain.to_str().unwrap();
    let cli = |args: &[&str]| -> String {
        let mut argv = vec!["judgeflow", "--cache", cache.to_str().unwrap()];
        argv.extend_from_slice(args);
        let mut out = String::new();
        cli::execute(Cli::parse_from(argv), &registry, &mut out)
            .unwrap_or_else(|e| panic!("{args:?}: {}", cli::render(&e, 100, false)));
        out
    };
    let seed5 = ["--set", "pipeline.seed=5"];
    let with = |cmd: &[&str]| -> Vec<String> {
        cmd.iter()
            .chain(seed5.iter())
            .map(|s| s.to_string())
            .collect()
    };
    let run = |cmd: &[&str]| cli(&with(cmd).iter().map(String::as_str).collect::<Vec<_>>());
    assert!(run(&["check", chain]).contains("is valid"));
    assert!(run(&["run", chain]).contains("3 ran"));
    let plan = run(&["plan", chain]);
    assert_eq!(plan.matches("fresh").count(), 3, "{plan}");
    let other = cli(&["plan", chain, "--set", "pipeline.seed=6"]);
    assert!(
        other.contains("seed "),
        "another seed is dirty, and says why: {other}"
    );
    assert!(run(&["explain", chain, "add"]).contains("is fresh"));
    assert!(run(&["show", chain, "sum"]).contains("2 rows"));
    assert!(run(&["graph", chain]).contains("digraph"));
    assert!(run(&["compare", chain]).contains("sum:"));
    let to = dir.path().join("export");
    let out = run(&["export", chain, "sum", "--to", to.to_str().unwrap()]);
    assert!(out.contains("exported sum.metrics"), "{out}");
    // Without the override the file's seed (7) applies: nothing ran with it, and every node
    // says that its seed changed.
    let file = cli(&["plan", chain]);
    assert!(!file.contains("fresh"), "{file}");
    assert_eq!(
        file.matches("; seed ").count() + file.matches("  seed ").count(),
        3,
        "{file}"
    );
}

#[test]
fn plan_lists_the_seed_variants() {
    let (registry, _) = common::registry();
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let seeds = good("seeds.toml");
    let argv = |args: &[&str]| {
        let mut v = vec!["judgeflow", "--cache", cache.to_str().unwrap()];
        v.extend_from_slice(args);
        Cli::parse_from(v)
    };
    let mut text = String::new();
    cli::execute(
        argv(&["plan", seeds.to_str().unwrap()]),
        &registry,
        &mut text,
    )
    .unwrap();
    insta::assert_snapshot!("plan_seed_sweep", text);
    let mut json = String::new();
    cli::execute(
        argv(&["plan", seeds.to_str().unwrap(), "--json"]),
        &registry,
        &mut json,
    )
    .unwrap();
    let rows: Vec<serde_json::Value> = serde_json::from_str(&json).unwrap();
    let data = rows.iter().find(|r| r["node"] == "data").unwrap();
    assert_eq!(data["variants"].as_array().unwrap().len(), 6);
    let sum = rows
        .iter()
        .find(|r| r["node"] == "sum[add.delta=2.0,seed=3]")
        .unwrap();
    assert_eq!(sum["variants"], serde_json::json!(["add.delta=2.0,seed=3"]));
}
