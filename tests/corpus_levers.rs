//! The scenes source's corpus levers, through the binary: `binding_examples` adds exactly its
//! pairs of one-word-apart existence rows after the other rows, and leaves the rest of the
//! corpus as it was; so does `reasoning_judge_examples` with its judge-format rows over the
//! justified answers.

use std::path::Path;
use std::process::Command;

use judgeflow_schemas::{FrameRow, SftRow};
use polars::prelude::*;

fn pipeline(binding: f64, format: &str) -> String {
    pipeline_with(6, binding, format, "")
}

fn pipeline_with(count: usize, binding: f64, format: &str, extra: &str) -> String {
    format!(
        r#"
[pipeline]
name = "corpus-levers"
seed = 5

[nodes.world]
op = "source"
kind = "scenes"
count = {count}
image_size = 32
max_objects = 1
binding_examples = {binding:?}
binding_format = "{format}"
{extra}
"#
    )
}

/// `(example_id, prompt, response)` of the world's corpus.
fn corpus(dir: &Path, binding: f64, format: &str) -> Vec<(String, String, String)> {
    corpus_of(
        dir,
        &format!("binding_{binding}_{format}"),
        &pipeline(binding, format),
    )
}

/// [`corpus`] of the pipeline `text`, written to `dir/NAME.toml`.
fn corpus_of(dir: &Path, name: &str, text: &str) -> Vec<(String, String, String)> {
    let file = dir.join(format!("{name}.toml"));
    std::fs::write(&file, text).unwrap();
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

#[test]
fn reasoning_judge_examples_judge_justified_answers_and_keep_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let base = "judge_examples = 2.0\njudge_reasoning = \"compare_counts\"\nreasoning_examples = 2.0\nreasoning_judged = true";
    let without = corpus_of(
        dir.path(),
        "without",
        &pipeline_with(60, 0.0, "question", base),
    );
    let with = corpus_of(
        dir.path(),
        "with",
        &pipeline_with(
            60,
            0.0,
            "question",
            &format!("{base}\nreasoning_judge_examples = 3.0"),
        ),
    );
    let (judged, rest): (Vec<_>, Vec<_>) = with.iter().partition(|(id, _, _)| id.contains("-jr"));
    assert_eq!(rest.into_iter().cloned().collect::<Vec<_>>(), without);
    // Up to three a scene, each a justified answer against another scene's answer to the same
    // question where one exists (in 60 scenes few do: 29 rows; in 2,000, 92% of them).
    assert!((20..=180).contains(&judged.len()), "{}", judged.len());
    for (_, prompt, response) in judged {
        assert_eq!(prompt.matches("so the answer ").count(), 2, "{prompt}");
        assert!(response.contains("Overall Judgment: Answer "), "{response}");
        assert!(response.contains("the answer is "), "{response}");
    }
}
