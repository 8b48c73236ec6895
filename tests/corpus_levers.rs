//! The scenes source's corpus levers, through the binary: `binding_examples` adds exactly its
//! pairs of one-word-apart existence rows after the other rows, and leaves the rest of the
//! corpus as it was.

use std::path::Path;
use std::process::Command;

use judgeflow_schemas::{FrameRow, SftRow};
use polars::prelude::*;

fn pipeline(binding: f64, format: &str) -> String {
    format!(
        r#"
[pipeline]
name = "corpus-levers"
seed = 5

[nodes.world]
op = "source"
kind = "scenes"
count = 6
image_size = 32
max_objects = 1
binding_examples = {binding:?}
binding_format = "{format}"
"#
    )
}

/// `(example_id, prompt, response)` of the world's corpus.
fn corpus(dir: &Path, binding: f64, format: &str) -> Vec<(String, String, String)> {
    let file = dir.join(format!("binding_{binding}_{format}.toml"));
    std::fs::write(&file, pipeline(binding, format)).unwrap();
    let cache = dir.join("cache");
    let run = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_judgeflow"))
            .arg("--cache")
            .arg(&cache)
            .args(args)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(
            out.status.success(),
            "{args:?}: {text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        text
    };
    run(&["run", file.to_str().unwrap()]);
    let shown = run(&[
        "show",
        file.to_str().unwrap(),
        "world",
        "--port",
        "corpus",
        "--rows",
        "0",
    ]);
    let path = shown.lines().next().unwrap().split(": ").nth(1).unwrap();
    let df = ParquetReader::new(std::fs::File::open(path).unwrap())
        .finish()
        .unwrap();
    SftRow::from_frame(&df)
        .unwrap()
        .into_iter()
        .map(|r| (r.example_id, r.prompt, r.response))
        .collect()
}

#[test]
fn binding_examples_add_their_pairs_and_keep_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let without = corpus(dir.path(), 0.0, "question");
    let with = corpus(dir.path(), 2.0, "question");
    let (binding, rest): (Vec<_>, Vec<_>) = with.iter().partition(|(id, _, _)| id.contains("-b"));
    assert_eq!(rest.into_iter().cloned().collect::<Vec<_>>(), without);
    // One object a scene always leaves a colour or a shape to change: 2 pairs × 6 scenes.
    assert_eq!(binding.len(), 24, "{binding:#?}");
    for pair in binding.chunks(2) {
        let answers: Vec<&str> = pair.iter().map(|(_, _, r)| r.as_str()).collect();
        assert!(
            answers == ["yes", "no"] || answers == ["no", "yes"],
            "{pair:?}"
        );
        assert!(pair.iter().all(|(_, p, _)| p.ends_with('?')), "{pair:?}");
    }
}

#[test]
fn binding_claims_mark_one_claim_a_row_from_the_same_pairs() {
    let dir = tempfile::tempdir().unwrap();
    let questions = corpus(dir.path(), 2.0, "question");
    let claims = corpus(dir.path(), 2.0, "claim");
    let binding = |rows: &[(String, String, String)]| {
        rows.iter()
            .filter(|(id, _, _)| id.contains("-b"))
            .cloned()
            .collect::<Vec<_>>()
    };
    let (q, c) = (binding(&questions), binding(&claims));
    assert_eq!(c.len(), q.len());
    // Everything else is as before.
    let rest = |rows: &[(String, String, String)]| {
        rows.iter()
            .filter(|(id, _, _)| !id.contains("-b"))
            .cloned()
            .collect::<Vec<_>>()
    };
    assert_eq!(rest(&claims), rest(&questions));
    for ((_, prompt, response), (_, _, answer)) in c.iter().zip(&q) {
        let (claim, mark) = response.trim_end_matches('.').rsplit_once(' ').unwrap();
        assert!(prompt.ends_with(claim), "{prompt} / {response}");
        let expected = if answer == "yes" { "(true)" } else { "(false)" };
        assert_eq!(mark, expected, "{prompt} / {response} / {answer}");
    }
}
