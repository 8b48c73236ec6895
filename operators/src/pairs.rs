//! Building `pairs` and `unpaired` frames (shared by `corrupt`, `vote` and `concat`), and the
//! answer normalisation that voting and gold checks use.

use judgeflow_schemas::FrameRow;
pub(crate) use judgeflow_schemas::{PairRow, UnpairedRow};
use miette::IntoDiagnostic;
use polars::prelude::DataFrame;

/// The `pairs` frame of `rows`.
pub(crate) fn pairs_frame(rows: Vec<PairRow>) -> miette::Result<DataFrame> {
    PairRow::into_frame(rows).into_diagnostic()
}

/// The `unpaired` frame of `rows`.
pub(crate) fn unpaired_frame(rows: Vec<UnpairedRow>) -> miette::Result<DataFrame> {
    UnpairedRow::into_frame(rows).into_diagnostic()
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
