//! A user's own Hugging Face checkpoint, end to end with the real binary on the tiny random
//! mllama (model/tests/fixtures/mllama_tiny plus its tokenizer files): the `hf_model` source
//! feeds a model operator; a second `plan` is fresh without re-reading the weights and stays
//! fresh when the weights are only touched; a broken directory fails the source node with a
//! diagnostic naming the tensor; `judgeflow judge` judges one pair in both orders.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("model/tests/fixtures")
}

fn model_dir(into: &Path) -> PathBuf {
    let dir = into.join("Llama-tiny-Vision");
    std::fs::create_dir_all(&dir).unwrap();
    for (from, name) in [
        ("mllama_tiny", "config.json"),
        ("mllama_tiny", "model.safetensors"),
        ("mllama_tiny_files", "tokenizer.json"),
        ("mllama_tiny_files", "tokenizer_config.json"),
        ("mllama_tiny_files", "preprocessor_config.json"),
        ("mllama_tiny_files", "generation_config.json"),
    ] {
        std::fs::copy(fixtures().join(from).join(name), dir.join(name)).unwrap();
    }
    dir
}

fn judgeflow(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_judgeflow"))
        .current_dir(dir)
        .args(args)
        .env("JUDGEFLOW_MODEL_STAMPS", dir.join("stamps"))
        .env_remove("JUDGEFLOW_REHASH")
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

const PIPELINE: &str = r#"
[pipeline]
name = "byo"
seed = 3

[nodes.judge_model]
op = "source"
kind = "hf_model"
path = "Llama-tiny-Vision"

[nodes.bench]
op = "source"
kind = "scenes_bench"
count = 2

[nodes.eval]
op = "evaluate"
inputs = { bench = "bench", model = "judge_model" }
samples = 1
max_tokens = 4
limit = 2
"#;

#[test]
fn a_model_directory_feeds_model_nodes_and_is_hashed_once() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let model = model_dir(dir);
    std::fs::write(dir.join("byo.toml"), PIPELINE).unwrap();

    let run = judgeflow(dir, &["--cache", "cache", "run", "byo.toml", "--jobs", "1"]);
    assert!(run.status.success(), "{}", text(&run.stderr));
    let stamps = std::fs::read_to_string(
        std::fs::read_dir(dir.join("stamps"))
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path()
            .join("stamps.json"),
    )
    .unwrap();
    assert!(stamps.contains("model.safetensors"), "{stamps}");

    // Touching the weights changes their stamp, not their content: every node stays fresh.
    let weights = model.join("model.safetensors");
    std::fs::File::options()
        .write(true)
        .open(&weights)
        .unwrap()
        .set_modified(std::time::SystemTime::now() + std::time::Duration::from_secs(5))
        .unwrap();
    let plan = judgeflow(dir, &["--cache", "cache", "plan", "byo.toml"]);
    let listing = text(&plan.stdout);
    assert!(plan.status.success(), "{}", text(&plan.stderr));
    for node in ["judge_model", "bench", "eval"] {
        let line = listing
            .lines()
            .find(|l| l.contains(node))
            .unwrap_or_else(|| panic!("{node} missing from\n{listing}"));
        assert!(line.contains("fresh"), "{line}\n{listing}");
    }

    // An edit that keeps size, mtime and inode is invisible to the stamp: `plan` trusts it,
    // `plan --rehash` re-hashes and sees it. (Then restored, for the edit below.)
    let original = std::fs::read(&weights).unwrap();
    let stamp = std::fs::metadata(&weights).unwrap().modified().unwrap();
    let mut edited = original.clone();
    edited[original.len() - 2] ^= 1;
    std::fs::write(&weights, &edited).unwrap();
    std::fs::File::options()
        .write(true)
        .open(&weights)
        .unwrap()
        .set_modified(stamp)
        .unwrap();
    let status_of = |args: &[&str]| {
        let plan = judgeflow(dir, args);
        assert!(plan.status.success(), "{}", text(&plan.stderr));
        let listing = text(&plan.stdout);
        listing
            .lines()
            .find(|l| l.contains("judge_model"))
            .unwrap_or_else(|| panic!("judge_model missing from\n{listing}"))
            .to_string()
    };
    let trusted = status_of(&["--cache", "cache", "plan", "byo.toml"]);
    assert!(trusted.contains("fresh"), "{trusted}");
    let rehashed = status_of(&["--cache", "cache", "plan", "byo.toml", "--rehash"]);
    assert!(rehashed.contains("dirty"), "{rehashed}");
    std::fs::write(&weights, &original).unwrap();
    let _ = judgeflow(dir, &["--cache", "cache", "plan", "byo.toml", "--rehash"]);

    // Other weights (one byte changed, size kept): the source and what uses it are dirty.
    let mut bytes = std::fs::read(&weights).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&weights, bytes).unwrap();
    let plan = judgeflow(dir, &["--cache", "cache", "plan", "byo.toml"]);
    let listing = text(&plan.stdout);
    // `eval` waits for the source to re-run (then it re-runs only if the artifact changed).
    for (node, statuses) in [
        ("judge_model", &["dirty"][..]),
        ("bench", &["fresh"][..]),
        ("eval", &["dirty", "waiting"][..]),
    ] {
        let line = listing.lines().find(|l| l.contains(node)).unwrap();
        assert!(
            statuses.iter().any(|s| line.contains(s)),
            "{node} should be {statuses:?}: {line}"
        );
    }
}

#[test]
fn a_broken_directory_fails_the_source_node_naming_the_tensor() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let model = model_dir(dir);
    let config = std::fs::read_to_string(model.join("config.json")).unwrap();
    // One more text layer than the weights hold.
    std::fs::write(
        model.join("config.json"),
        config.replace("\"num_hidden_layers\": 5", "\"num_hidden_layers\": 6"),
    )
    .unwrap();
    std::fs::write(dir.join("byo.toml"), PIPELINE).unwrap();
    let run = judgeflow(dir, &["--cache", "cache", "run", "byo.toml", "--jobs", "1"]);
    let stderr = text(&run.stderr);
    assert_eq!(run.status.code(), Some(1), "{stderr}");
    for needle in [
        "node `judge_model`",
        "is not a usable checkpoint",
        "missing: language_model.model.layers.5.",
        "config.json",
    ] {
        assert!(stderr.contains(needle), "no {needle:?} in\n{stderr}");
    }
    assert!(
        !dir.join("cache/entries").exists()
            || std::fs::read_dir(dir.join("cache/entries"))
                .unwrap()
                .count()
                <= 1,
        "only the bench may be cached"
    );
}

fn picture(dir: &Path) -> PathBuf {
    let path = dir.join("pair.png");
    let img = image::RgbImage::from_fn(45, 30, |x, y| {
        image::Rgb([(x * 5) as u8, (y * 8) as u8, 90])
    });
    img.save(&path).unwrap();
    path
}

/// `judgeflow judge`'s arguments for the one pair the judge-command tests ask about, then
/// `extra`.
fn pair_args<'a>(model: &'a Path, image: &'a Path, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "judge",
        "--model",
        model.to_str().unwrap(),
        "--image",
        image.to_str().unwrap(),
        "--question",
        "which shape is red ?",
        "--answer-1",
        "the red square",
        "--answer-2",
        "the blue circle",
    ];
    args.extend(extra);
    args
}

#[test]
fn judge_command_judges_both_orders_deterministically() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let model = model_dir(dir);
    let image = picture(dir);
    let args = pair_args(
        &model,
        &image,
        &[
            "--max-tokens",
            "6",
            "--temperature",
            "0.6",
            "--seed",
            "7",
            "--json",
        ],
    );
    let first = judgeflow(dir, &args);
    assert!(first.status.success(), "{}", text(&first.stderr));
    let result: serde_json::Value = serde_json::from_slice(&first.stdout).unwrap();
    let orders = result["orders"].as_array().unwrap();
    assert_eq!(orders.len(), 2);
    assert_eq!(orders[0]["order"], "answer 1 first");
    assert_eq!(orders[1]["order"], "answer 2 first");
    for order in orders {
        assert!(!order["output"].as_str().unwrap().is_empty(), "{order}");
        // A random model rarely writes a verdict line; when it does, the answer it prefers
        // follows from the order.
        if let Some(letter) = order["verdict"].as_str() {
            assert!(letter == "A" || letter == "B");
            assert!(order["preferred_answer"].is_u64());
        }
    }
    assert_eq!(
        result["consistent"].as_bool().unwrap(),
        !result["preferred_answer"].is_null()
    );
    // Same seed, same output.
    let second = judgeflow(dir, &args);
    assert_eq!(text(&first.stdout), text(&second.stdout));

    // Plain text names both orders.
    let plain: Vec<&str> = args.iter().copied().filter(|a| *a != "--json").collect();
    let shown = judgeflow(dir, &plain);
    let out = text(&shown.stdout);
    assert!(
        out.contains("== answer 1 first ==") && out.contains("== answer 2 first =="),
        "{out}"
    );
}

#[test]
fn judge_command_continues_from_a_forced_start_in_its_order_only() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let model = model_dir(dir);
    let image = picture(dir);
    let base = pair_args(&model, &image, &["--max-tokens", "4", "--json"]);
    let run = |extra: &[&str]| {
        let args: Vec<&str> = base.iter().chain(extra).copied().collect();
        let out = judgeflow(dir, &args);
        assert!(out.status.success(), "{}", text(&out.stderr));
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
    };
    let free = run(&[]);
    let start = "the red square";
    let forced = run(&["--start-1", start]);
    let (free, forced) = (&free["orders"], &forced["orders"]);
    // The forced order's reply begins with the start and the judge goes on after it.
    let output = forced[0]["output"].as_str().unwrap();
    assert!(output.starts_with(start), "{output}");
    assert!(
        output.len() > start.len(),
        "nothing generated after the start: {output}"
    );
    assert_eq!(forced[0]["start"], start);
    assert!(forced[0]["reasoning"].as_str().unwrap().starts_with(start));
    // The other order is untouched: same seed, same prompt, no start.
    assert_eq!(forced[1], free[1]);
    assert_eq!(free[0]["start"], "");
}

#[test]
fn judge_command_refuses_a_broken_model_before_loading_it() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let model = model_dir(dir);
    let tokenizer = std::fs::read_to_string(model.join("tokenizer.json")).unwrap();
    std::fs::write(
        model.join("tokenizer.json"),
        tokenizer.replace("<|image|>", "<|img|>"),
    )
    .unwrap();
    let image = picture(dir);
    let out = judgeflow(
        dir,
        &[
            "judge",
            "--model",
            model.to_str().unwrap(),
            "--image",
            image.to_str().unwrap(),
            "--question",
            "q",
            "--answer-1",
            "a",
            "--answer-2",
            "b",
        ],
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("tokenizer.json"), "{stderr}");
    assert!(stderr.contains("<|image|>"), "{stderr}");
}

const LORA_PIPELINE: &str = r#"
[pipeline]
name = "byo_lora"
seed = 5

[nodes.judge_model]
op = "source"
kind = "hf_model"
path = "Llama-tiny-Vision"

[nodes.world]
op = "source"
kind = "scenes"
count = 2

[nodes.bench]
op = "source"
kind = "scenes_bench"
count = 2

[nodes.lora1]
op = "train"
objective = "judge"
balance_ab = false
init = "base"
inputs = { data = "world.corpus", base = "judge_model" }
adapter = "lora"
lora_rank = 2
lora_alpha = 4.0
lora_target_regex = "language_model"
steps = 2
batch_size = 2
lr = 1e-2

[nodes.lora2]
op = "train"
objective = "judge"
balance_ab = false
init = "previous"
inputs = { data = "world.corpus", previous = "lora1.model" }
adapter = "lora"
lora_rank = 2
lora_alpha = 4.0
steps = 2
batch_size = 2
lr = 1e-2

[nodes.merged]
op = "train"
objective = "judge"
balance_ab = false
init = "base"
inputs = { data = "world.corpus", base = "judge_model" }
adapter = "lora"
lora_rank = 2
lora_alpha = 4.0
steps = 2
batch_size = 2
lr = 1e-2
merge = true

[nodes.eval]
op = "evaluate"
inputs = { bench = "bench", model = "lora2.model" }
samples = 1
max_tokens = 4
limit = 2

[nodes.eval_merged]
op = "evaluate"
inputs = { bench = "bench", model = "merged.model" }
samples = 1
max_tokens = 4
limit = 2
"#;

/// Every file under `dir` named `name`.
fn find_named(dir: &Path, name: &str) -> Vec<PathBuf> {
    let mut found = vec![];
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            found.extend(find_named(&path, name));
        } else if path.file_name().is_some_and(|n| n == name) {
            found.push(path);
        }
    }
    found
}

/// LoRA inside a pipeline on a user's checkpoint: an adapter trained from the base, a second
/// iteration that continues it, a merged variant, and evaluations that load each.
#[test]
fn a_pipeline_trains_lora_adapters_on_a_model_directory_and_continues_them() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    model_dir(dir);
    std::fs::write(dir.join("byo_lora.toml"), LORA_PIPELINE).unwrap();
    let run = judgeflow(
        dir,
        &["--cache", "cache", "run", "byo_lora.toml", "--jobs", "1"],
    );
    assert!(run.status.success(), "{}", text(&run.stderr));
    assert!(
        text(&run.stdout).contains("8 nodes: 8 ran"),
        "{}",
        text(&run.stdout)
    );

    // Two adapter directories (lora1, lora2) in PEFT's format; the merged run is full weights.
    // lora1's targets are PEFT's string form, and lora2, continuing it, read them back: both
    // adapt the text decoder alone.
    let configs = find_named(&dir.join("cache"), "adapter_config.json");
    assert_eq!(configs.len(), 2, "{configs:?}");
    let mut adapters = vec![];
    for config in &configs {
        let json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(config).unwrap()).unwrap();
        assert_eq!(json["r"], 2, "{json}");
        assert_eq!(
            json["target_modules"],
            serde_json::json!(judgeflow_model::lora::LANGUAGE_MODEL_TARGETS),
            "{json}"
        );
        let weights = std::fs::read(config.with_file_name("adapter_model.safetensors")).unwrap();
        let names: Vec<String> = safetensors::SafeTensors::deserialize(&weights)
            .unwrap()
            .names()
            .into_iter()
            .map(String::from)
            .collect();
        assert!(
            !names.is_empty()
                && names
                    .iter()
                    .all(|n| n.starts_with("base_model.model.model.language_model.")
                        && n.contains(".lora_")),
            "{names:?}"
        );
        adapters.push(weights);
    }
    // The second iteration trained the first one's adapters further.
    assert_ne!(adapters[0], adapters[1]);
    let full = find_named(&dir.join("cache"), "model.safetensors");
    assert!(
        full.iter().any(|p| p
            .parent()
            .is_some_and(|d| !d.join("adapter_config.json").exists())
            && !p.starts_with(dir.join("Llama-tiny-Vision"))),
        "no merged checkpoint among {full:?}"
    );
}

/// A LoRA target expression that does not compile is the node's error, before any weight loads.
#[test]
fn a_lora_target_expression_that_does_not_compile_stops_the_node() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    model_dir(dir);
    let pipeline = LORA_PIPELINE.replace(
        "lora_target_regex = \"language_model\"",
        "lora_target_regex = \"model\\\\.(q_proj\"",
    );
    assert_ne!(pipeline, LORA_PIPELINE);
    std::fs::write(dir.join("byo_lora.toml"), pipeline).unwrap();
    let run = judgeflow(
        dir,
        &[
            "--cache",
            "cache",
            "run",
            "byo_lora.toml",
            "lora1",
            "--jobs",
            "1",
        ],
    );
    let stderr = text(&run.stderr);
    assert_eq!(run.status.code(), Some(1), "{stderr}");
    // The diagnostic's words, without its line wrapping and box drawing.
    let words: Vec<&str> = stderr.split_whitespace().filter(|w| *w != "│").collect();
    let flat = words.join(" ");
    assert!(flat.contains("node `lora1`"), "{stderr}");
    assert!(flat.contains("is not a regular expression"), "{stderr}");
    assert!(flat.contains("unclosed group"), "{stderr}");
}
