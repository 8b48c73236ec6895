//! Model nodes under failure, with the real binary on a tiny CPU pipeline (a few seconds): a
//! backend failure (injected where a GPU's out-of-memory surfaces, the device sync) fails its
//! node with the device diagnostic, caches nothing of it, and the next run redoes that node
//! only; and a re-run of `train` writes byte-identical outputs, loss curve included.

use std::path::Path;
use std::process::{Command, Output};

use judgeflow_engine::cache::Cache;

const TINY: &str = r#"
[pipeline]
name = "tiny"
seed = 5

[nodes.world]
op = "source"
kind = "scenes"
count = 8
image_size = 32
max_objects = 2

[nodes.bench]
op = "source"
kind = "scenes_bench"
count = 2

[nodes.pretrain]
op = "train"
objective = "pretrain"
init = "scratch"
preset = "micro"
inputs = { data = "world.corpus" }
steps = 2
batch_size = 4
warmup_steps = 0

[nodes.eval]
op = "evaluate"
inputs = { bench = "bench", model = "pretrain.model" }
samples = 1
max_tokens = 4
limit = 2
"#;

fn judgeflow(cache: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_judgeflow"));
    cmd.arg("--cache").arg(cache).args(args);
    cmd.env_remove("JUDGEFLOW_INJECT_DEVICE_FAILURE");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn a_backend_failure_fails_its_node_caches_nothing_and_only_it_reruns() {
    let dir = tempfile::tempdir().unwrap();
    let pipeline = dir.path().join("tiny.toml");
    std::fs::write(&pipeline, TINY).unwrap();
    let cache = dir.path().join("cache");
    let p = pipeline.to_str().unwrap();

    let failed = judgeflow(
        &cache,
        &["run", p, "--jobs", "1"],
        &[("JUDGEFLOW_INJECT_DEVICE_FAILURE", "eval")],
    );
    let stderr = text(&failed.stderr);
    assert_eq!(failed.status.code(), Some(1), "{stderr}");
    for needle in [
        "node `eval` (op `evaluate`) failed",
        "judgeflow::model::device",
        "backend failed",
        "lower the node's `batch_size`",
    ] {
        assert!(stderr.contains(needle), "missing {needle:?}:\n{stderr}");
    }
    let c = Cache::open(&cache).unwrap();
    let nodes: Vec<String> = std::fs::read_dir(cache.join("entries"))
        .unwrap()
        .map(|e| {
            let key = e.unwrap().file_name().to_string_lossy().to_string();
            c.manifest(&key).unwrap().node
        })
        .collect();
    assert_eq!(nodes.len(), 3, "{nodes:?}");
    assert!(!nodes.contains(&"eval".to_string()), "{nodes:?}");
    let left: Vec<String> = std::fs::read_dir(cache.join("tmp"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .filter(|n| !n.starts_with("owner-"))
        .collect();
    assert!(left.is_empty(), "half-built outputs left: {left:?}");

    let rerun = judgeflow(&cache, &["run", p, "--jobs", "1"], &[]);
    let stdout = text(&rerun.stdout);
    assert!(rerun.status.success(), "{stdout}\n{}", text(&rerun.stderr));
    assert!(stdout.contains("4 nodes: 1 ran, 3 fresh"), "{stdout}");
    let ran: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("ran"))
        .map(|l| l.split_whitespace().last().unwrap())
        .collect();
    assert_eq!(ran, ["eval"], "{stdout}");
}

#[test]
fn retraining_writes_byte_identical_outputs_loss_curve_included() {
    let dir = tempfile::tempdir().unwrap();
    let pipeline = dir.path().join("tiny.toml");
    std::fs::write(&pipeline, TINY).unwrap();
    let mut outputs = Vec::new();
    for run in ["first", "second"] {
        let cache = dir.path().join(run);
        let out = judgeflow(
            &cache,
            &["run", pipeline.to_str().unwrap(), "--jobs", "1"],
            &[],
        );
        assert!(out.status.success(), "{}", text(&out.stderr));
        let c = Cache::open(&cache).unwrap();
        let key = c.last_run("tiny", "pretrain").unwrap();
        let m = c.manifest(&key).unwrap();
        outputs.push((
            m.outputs["loss"].hash.clone(),
            m.outputs["model"].hash.clone(),
            key,
        ));
    }
    assert_eq!(
        outputs[0].0, outputs[1].0,
        "the loss frame differs between identical trainings"
    );
    assert_eq!(outputs[0], outputs[1]);
}

/// Runs `pretrain` of the pipeline at `pipeline` with `sets` and returns its model's
/// `text_config`.
fn pretrained_text_config(cache: &Path, pipeline: &str, sets: &[&str]) -> serde_json::Value {
    let mut args = vec!["run", pipeline, "pretrain"];
    for s in sets {
        args.extend(["--set", s]);
    }
    let out = judgeflow(cache, &args, &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let c = Cache::open(cache).unwrap();
    let key = c.last_run("tiny", "pretrain").unwrap();
    let config =
        std::fs::read_to_string(c.output_path(&key, "model", false).join("config.json")).unwrap();
    let config: serde_json::Value = serde_json::from_str(&config).unwrap();
    config["text_config"].clone()
}

#[test]
fn cross_attention_every_places_the_layers_and_rejects_a_model_that_could_not_see() {
    let dir = tempfile::tempdir().unwrap();
    let pipeline = dir.path().join("tiny.toml");
    std::fs::write(&pipeline, TINY).unwrap();
    let p = pipeline.to_str().unwrap();
    let cache = dir.path().join("cache");

    // micro has 3 text layers, one cross-attention layer at 1: every layer is one now.
    let t = pretrained_text_config(&cache, p, &["pretrain.cross_attention_every=1"]);
    assert_eq!(
        t["cross_attention_layers"],
        serde_json::json!([0, 1, 2]),
        "{t}"
    );

    let out = judgeflow(
        &cache,
        &[
            "run",
            p,
            "pretrain",
            "--set",
            "pretrain.cross_attention_every=4",
        ],
        &[],
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    for needle in [
        "judgeflow::train::cross_attention_every",
        "cross_attention_every = 4 leaves no cross-attention layer",
        "could not see the image",
        "use at most the model's 3 text layers",
    ] {
        assert!(stderr.contains(needle), "missing {needle:?}:\n{stderr}");
    }
}

#[test]
fn text_layers_deepens_a_scratch_model_and_rejects_one_that_drops_its_cross_attention() {
    let dir = tempfile::tempdir().unwrap();
    let pipeline = dir.path().join("tiny.toml");
    std::fs::write(&pipeline, TINY).unwrap();
    let p = pipeline.to_str().unwrap();
    let cache = dir.path().join("cache");
    let config_of = |sets: &[&str]| pretrained_text_config(&cache, p, sets);

    // micro's cross-attention layer (1) is kept; the layers after it are self-attention.
    let t = config_of(&["pretrain.text_layers=5"]);
    assert_eq!(t["num_hidden_layers"], 5, "{t}");
    assert_eq!(t["cross_attention_layers"], serde_json::json!([1]), "{t}");
    // With cross_attention_every, they are placed over the new depth.
    let t = config_of(&["pretrain.text_layers=6", "pretrain.cross_attention_every=3"]);
    assert_eq!(t["num_hidden_layers"], 6, "{t}");
    assert_eq!(
        t["cross_attention_layers"],
        serde_json::json!([2, 5]),
        "{t}"
    );

    let out = judgeflow(
        &cache,
        &["run", p, "pretrain", "--set", "pretrain.text_layers=1"],
        &[],
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    for needle in [
        "judgeflow::train::text_layers",
        "text_layers = 1 drops the preset's cross-attention layer 1",
        "use at least 2 text layers",
    ] {
        assert!(stderr.contains(needle), "missing {needle:?}:\n{stderr}");
    }
}
