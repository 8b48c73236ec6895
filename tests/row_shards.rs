//! Row shards of the model operators, with the real binary on a tiny CPU pipeline: `sample`,
//! `judge` and `evaluate` in 1, 3 or 8 shards write the same entries, byte for byte and under
//! the same keys, as a whole run (every row draws from its own seed, whatever shard or batch it
//! is in; `evaluate`'s metrics are recomputed from the joined judgements).

use std::path::Path;
use std::process::Command;

fn pipeline(shards: Option<u32>) -> String {
    let shards = shards.map(|n| format!("shards = {n}")).unwrap_or_default();
    format!(
        r#"
[pipeline]
name = "tiny-shards"
seed = 11

[nodes.world]
op = "source"
kind = "scenes"
count = 6
image_size = 32
max_objects = 2

[nodes.pretrain]
op = "train"
objective = "pretrain"
init = "scratch"
preset = "micro"
inputs = {{ data = "world.corpus" }}
steps = 2
batch_size = 4
warmup_steps = 0

[nodes.sample]
op = "sample"
inputs = {{ prompts = "world.prompts", model = "pretrain.model" }}
n = 2
max_tokens = 4
batch_size = 3
{shards}

[nodes.corrupt]
op = "corrupt"
inputs = {{ samples = "sample" }}
method = "rules"

[nodes.judge]
op = "judge"
inputs = {{ pairs = "corrupt.pairs", model = "pretrain.model" }}
samples = 1
max_tokens = 4
{shards}

[nodes.bench]
op = "source"
kind = "scenes_bench"
count = 3
image_size = 32
max_objects = 2

[nodes.evaluate]
op = "evaluate"
inputs = {{ bench = "bench", model = "pretrain.model" }}
samples = 2
max_tokens = 4
{shards}
"#
    )
}

fn judgeflow(cache: &Path, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_judgeflow"))
        .arg("--cache")
        .arg(cache)
        .args(args)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{args:?}: {text}");
    text
}

/// `(node.port, key, parquet bytes)` of `sample`, `judge` and both outputs of `evaluate`.
fn generated(cache: &Path, pipeline: &Path) -> Vec<(String, String, Vec<u8>)> {
    [
        ("sample", "samples"),
        ("judge", "judgements"),
        ("evaluate", "metrics"),
        ("evaluate", "judgements"),
    ]
    .iter()
    .map(|(node, port)| {
        let shown = judgeflow(
            cache,
            &[
                "show",
                pipeline.to_str().unwrap(),
                node,
                "--port",
                port,
                "--rows",
                "0",
            ],
        );
        let path = shown
            .lines()
            .next()
            .and_then(|l| l.split(": ").nth(1))
            .unwrap_or_else(|| panic!("{shown}"))
            .to_string();
        let key = Path::new(&path)
            .parent()
            .unwrap()
            .file_name()
            .unwrap()
            .to_string_lossy()
            .to_string();
        (format!("{node}.{port}"), key, std::fs::read(&path).unwrap())
    })
    .collect()
}

#[test]
fn sample_judge_and_evaluate_in_1_3_and_8_shards_match_a_whole_run() {
    let dir = tempfile::tempdir().unwrap();
    let whole = dir.path().join("whole.toml");
    std::fs::write(&whole, pipeline(None)).unwrap();
    let base = dir.path().join("base");
    // The model once; each shard count then starts from a copy of that cache.
    judgeflow(&base, &["run", whole.to_str().unwrap(), "pretrain"]);
    let reference_cache = dir.path().join("reference");
    copy(&base, &reference_cache);
    judgeflow(&reference_cache, &["run", whole.to_str().unwrap()]);
    let reference = generated(&reference_cache, &whole);
    let rows = |node: &str, port: &str| -> usize {
        let shown = judgeflow(
            &reference_cache,
            &[
                "show",
                whole.to_str().unwrap(),
                node,
                "--port",
                port,
                "--rows",
                "0",
            ],
        );
        shown
            .lines()
            .find_map(|l| l.split(" rows × ").next()?.trim().parse().ok())
            .unwrap_or_else(|| panic!("{shown}"))
    };
    let (prompts, pairs, items) = (
        rows("world", "prompts"),
        rows("corrupt", "pairs"),
        rows("bench", "bench"),
    );
    assert!(
        prompts >= 8 && pairs >= 2 && items == 9,
        "{prompts} prompts, {pairs} pairs, {items} bench items"
    );
    for n in [1, 3, 8] {
        let p = dir.path().join(format!("shards{n}.toml"));
        std::fs::write(&p, pipeline(Some(n))).unwrap();
        let cache = dir.path().join(format!("c{n}"));
        copy(&base, &cache);
        let said = judgeflow(&cache, &["run", p.to_str().unwrap()]);
        assert!(said.contains("ran"), "{said}");
        assert_eq!(generated(&cache, &p), reference, "{n} shards");
        // Each shard of `sample` and `judge` left its own entry (one shard is the whole run).
        // A shard has at least one row: fewer rows than shards make fewer shards.
        let extra = entries(&cache) - entries(&reference_cache);
        let expected = if n == 1 {
            0
        } else {
            prompts.min(n as usize) + pairs.min(n as usize) + items.min(n as usize)
        };
        assert_eq!(extra, expected, "{n} shards");
    }
}

fn entries(cache: &Path) -> usize {
    std::fs::read_dir(cache.join("entries")).unwrap().count()
}

fn copy(from: &Path, to: &Path) {
    let ok = Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .status()
        .unwrap()
        .success();
    assert!(ok);
}
