//! `judgeflow run PIPELINE NODE ...`: exactly the selected nodes' upstream cone runs, counted
//! with the toy operators' run log, on a cold and on a warm cache; unknown names are
//! diagnostics.

mod common;

use std::path::{Path, PathBuf};

use clap::Parser;
use judgeflow_engine::cli::{self, Cli};

/// The quickstart's shape with toy operators: `judge` reads the previous repetition's model, so
/// `judge@1`'s cone is `data`, `pretrain` (its `train@prev`) and `sample@1`, and nothing of
/// `bench`, `eval_base`, `train@1`, `evaluate@1` or repetition 2.
const SELF_TRAIN: &str = r#"
[pipeline]
name = "toy_self_train"

[nodes.data]
op = "emit"
n = 4

[nodes.bench]
op = "emit"
n = 2
scale = 2.0

[nodes.pretrain]
op = "fit"
steps = 1
inputs = ["data"]

[nodes.eval_base]
op = "score"
inputs = { weights = "pretrain.weights", numbers = "bench" }

[iterate.self_train]
times = 2
nodes = ["sample", "judge", "train", "evaluate"]
initial = { train = "pretrain.weights" }

[nodes.sample]
op = "add"
delta = 1.0
inputs = ["data"]

[nodes.judge]
op = "score"
inputs = { weights = "train@prev.weights", numbers = "sample" }

[nodes.train]
op = "fit"
inputs = { numbers = "sample", init = "train@prev.weights" }

[nodes.evaluate]
op = "score"
inputs = { weights = "train.weights", numbers = "bench" }
"#;

const JUDGE_1_CONE: [&str; 4] = ["data", "judge@1", "pretrain", "sample@1"];

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

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.dir.path().join(name);
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

    /// `run PIPELINE NODES...`; returns the sorted names of nodes whose operator ran and the
    /// names the run reported (ran or fresh), in report order.
    fn run(&self, pipeline: &Path, nodes: &[&str]) -> (Vec<String>, Vec<String>) {
        let mut args = vec!["run", pipeline.to_str().unwrap(), "--jobs", "2"];
        args.extend_from_slice(nodes);
        let out = self.cli(&args).unwrap();
        let reported = out
            .lines()
            .filter(|l| l.starts_with("ran") || l.starts_with("fresh"))
            .map(|l| l.split_whitespace().last().unwrap().to_string())
            .collect();
        (self.log.take(), reported)
    }
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

#[test]
fn selecting_judge_1_runs_exactly_its_upstream_cone_cold_and_warm() {
    let b = Bench::new();
    let p = b.write("self_train.toml", SELF_TRAIN);

    // Cold cache: the cone runs, nothing else.
    let (ran, reported) = b.run(&p, &["judge@1"]);
    assert_eq!(ran, JUDGE_1_CONE);
    assert_eq!(sorted(reported), JUDGE_1_CONE);

    // Warm: the same selection runs nothing and reports the cone as fresh.
    let (ran, reported) = b.run(&p, &["judge@1"]);
    assert!(ran.is_empty(), "warm selection ran {ran:?}");
    assert_eq!(sorted(reported), JUDGE_1_CONE);

    // A full run afterwards reuses the cone's entries: selection does not change keys.
    let (ran, _) = b.run(&p, &[]);
    assert_eq!(
        ran,
        [
            "bench",
            "eval_base",
            "evaluate@1",
            "evaluate@2",
            "judge@2",
            "sample@2",
            "train@1",
            "train@2"
        ]
    );

    // Warm after a change outside the cone (downstream of it): still nothing to run.
    let out = b
        .cli(&[
            "run",
            p.to_str().unwrap(),
            "judge@1",
            "--set",
            "train.steps=5",
        ])
        .unwrap();
    assert!(b.log.take().is_empty(), "{out}");
    // A change inside the cone re-runs exactly the part of the cone it reaches.
    let out = b
        .cli(&[
            "run",
            p.to_str().unwrap(),
            "judge@1",
            "--set",
            "sample.delta=2",
        ])
        .unwrap();
    assert_eq!(b.log.take(), ["judge@1", "sample@1"], "{out}");
}

#[test]
fn a_template_a_last_repetition_and_a_group_select_their_repetitions() {
    let b = Bench::new();
    let p = b.write("self_train.toml", SELF_TRAIN);
    let p = p.to_str().unwrap();
    let planned = |sel: &[&str]| -> Vec<String> {
        let mut args = vec!["plan", p];
        args.extend_from_slice(sel);
        let out = b.cli(&args).unwrap();
        sorted(
            out.lines()
                .map(|l| l.split_whitespace().nth(1).unwrap().to_string())
                .collect(),
        )
    };
    assert_eq!(
        planned(&["judge@last"]),
        [
            "data", "judge@2", "pretrain", "sample@1", "sample@2", "train@1"
        ]
    );
    assert_eq!(planned(&["judge"]), planned(&["judge@1", "judge@2"]));
    assert_eq!(
        planned(&["self_train"]),
        [
            "bench",
            "data",
            "evaluate@1",
            "evaluate@2",
            "judge@1",
            "judge@2",
            "pretrain",
            "sample@1",
            "sample@2",
            "train@1",
            "train@2"
        ]
    );
    // Several arguments: the union of their cones.
    assert_eq!(
        planned(&["eval_base", "sample@1"]),
        ["bench", "data", "eval_base", "pretrain", "sample@1"]
    );
    // `graph` draws the same cone.
    let graph = b.cli(&["graph", p, "judge@1"]).unwrap();
    for name in JUDGE_1_CONE {
        assert!(graph.contains(&format!("label=\"{name}\\n")), "{graph}");
    }
    assert!(!graph.contains("bench"), "{graph}");
}

#[test]
fn a_sweep_node_is_selected_in_every_variant_unless_one_is_named() {
    let b = Bench::new();
    let text = format!("{SELF_TRAIN}\n[sweep]\n\"sample.delta\" = [1.0, 3.0]\n");
    let p = b.write("sweep.toml", &text);
    let (ran, _) = b.run(&p, &["judge@1"]);
    assert_eq!(
        ran,
        [
            "data",
            "judge@1[sample.delta=1.0]",
            "judge@1[sample.delta=3.0]",
            "pretrain",
            "sample@1[sample.delta=1.0]",
            "sample@1[sample.delta=3.0]"
        ]
    );
    let b = Bench::new();
    let p = b.write("sweep.toml", &text);
    let (ran, _) = b.run(&p, &["judge@1[sample.delta=3.0]"]);
    assert_eq!(
        ran,
        [
            "data",
            "judge@1[sample.delta=3.0]",
            "pretrain",
            "sample@1[sample.delta=3.0]"
        ]
    );
    // A node the variants share is that variant's node too.
    let (ran, reported) = b.run(&p, &["pretrain[sample.delta=1.0]"]);
    assert!(ran.is_empty());
    assert_eq!(sorted(reported), ["data", "pretrain"]);
}

#[test]
fn an_unknown_node_is_a_diagnostic_with_the_closest_name_and_nothing_runs() {
    let b = Bench::new();
    let p = b.write("self_train.toml", SELF_TRAIN);
    let p = p.to_str().unwrap();
    let err = b.cli(&["run", p, "sample@1", "juge@1"]).unwrap_err();
    assert_eq!(cli::exit_code(&err), 2);
    assert!(b.log.take().is_empty(), "nothing runs");
    insta::assert_snapshot!("select_unknown_node", cli::render(&err, 100, false));

    let err = b.cli(&["plan", p, "self_trian"]).unwrap_err();
    insta::assert_snapshot!("select_unknown_group", cli::render(&err, 100, false));

    let text = format!("{SELF_TRAIN}\n[sweep]\n\"sample.delta\" = [1.0, 3.0]\n");
    let p = b.write("sweep.toml", &text);
    let err = b
        .cli(&["graph", p.to_str().unwrap(), "judge@1[sample.delta=3]"])
        .unwrap_err();
    insta::assert_snapshot!("select_unknown_variant", cli::render(&err, 100, false));
}
