//! Building `pairs` and `unpaired` frames (shared by `corrupt`, `vote` and `concat`), and the
//! answer normalisation that voting and gold checks use.

use polars::prelude::{Column, DataFrame};

use crate::frames::{binary_column, frame};

/// One synthetic preference pair.
pub(crate) struct PairRow {
    pub pair_id: String,
    pub prompt_id: String,
    pub image: Vec<u8>,
    pub question: String,
    pub chosen: String,
    pub rejected: String,
    pub task: String,
    pub kind: String,
    pub source: String,
    pub label_correct: Option<bool>,
}

/// The `pairs` frame of `rows`.
pub(crate) fn pairs_frame(rows: Vec<PairRow>) -> miette::Result<DataFrame> {
    let col = |name: &str, f: &dyn Fn(&PairRow) -> String| {
        Column::new(name.into(), rows.iter().map(f).collect::<Vec<_>>())
    };
    let images: Vec<Vec<u8>> = rows.iter().map(|r| r.image.clone()).collect();
    frame(vec![
        col("pair_id", &|r| r.pair_id.clone()),
        col("prompt_id", &|r| r.prompt_id.clone()),
        binary_column("image", &images),
        col("question", &|r| r.question.clone()),
        col("chosen", &|r| r.chosen.clone()),
        col("rejected", &|r| r.rejected.clone()),
        col("task", &|r| r.task.clone()),
        col("kind", &|r| r.kind.clone()),
        col("source", &|r| r.source.clone()),
        Column::new(
            "label_correct".into(),
            rows.iter().map(|r| r.label_correct).collect::<Vec<_>>(),
        ),
    ])
}

/// The `unpaired` frame: `(prompt_id, task, reason)` rows.
pub(crate) fn unpaired_frame(rows: Vec<(String, String, String)>) -> miette::Result<DataFrame> {
    frame(vec![
        Column::new(
            "prompt_id".into(),
            rows.iter().map(|r| r.0.clone()).collect::<Vec<_>>(),
        ),
        Column::new(
            "task".into(),
            rows.iter().map(|r| r.1.clone()).collect::<Vec<_>>(),
        ),
        Column::new(
            "reason".into(),
            rows.iter().map(|r| r.2.clone()).collect::<Vec<_>>(),
        ),
    ])
}

const NUMBER_WORDS: [&str; 13] = [
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
    "eleven", "twelve",
];

/// The canonical form of a short answer, so that "Two.", "2" and "the answer is two" vote
/// together: lowercase, an "answer is" preamble and articles dropped, number words as digits,
/// punctuation and extra spaces removed.
pub(crate) fn normalize_answer(answer: &str) -> String {
    let lower = answer.to_lowercase();
    let body = lower
        .rsplit_once("answer is")
        .map(|(_, rest)| rest)
        .unwrap_or(&lower);
    body.split(|c: char| c.is_whitespace())
        .map(|w| w.trim_matches(|c: char| !c.is_alphanumeric()))
        .filter(|w| !w.is_empty() && !matches!(*w, "a" | "an" | "the"))
        .map(|w| match NUMBER_WORDS.iter().position(|n| *n == w) {
            Some(n) => n.to_string(),
            None => w.to_string(),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::normalize_answer;

    #[test]
    fn answers_normalise_together() {
        for a in [
            "Two.",
            "2",
            "the answer is two",
            " TWO ",
            "The answer is: 2!",
        ] {
            assert_eq!(normalize_answer(a), "2", "{a}");
        }
        assert_eq!(normalize_answer("Yes."), "yes");
        assert_eq!(normalize_answer("a red circle"), "red circle");
        assert_ne!(normalize_answer("left"), normalize_answer("right"));
        assert_eq!(normalize_answer("..."), "");
    }
}
