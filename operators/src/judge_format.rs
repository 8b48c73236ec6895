//! The judge's prompt and verdict format, shared by `judge`, `evaluate`, `filter`, `train` and
//! the base model's format examples.
//!
//! The prompt follows VL-RewardBench's judge prompt in spirit (show the question and two
//! answers, ask for reasoning, then a verdict on a fixed last line), shortened so that a small
//! model trained from scratch can read it. The verdict line is "Overall Judgment: Answer X is
//! better"; parsing takes the last such line, so reasoning that quotes the format does not
//! confuse it.

use judgeflow_model::tokenizer::JudgeTokenizer;
use std::ops::Range;

use crate::model_kit::Reply;

/// Which answer a verdict prefers, as shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    A,
    B,
}

impl Verdict {
    /// `"A"` or `"B"`.
    pub fn letter(self) -> &'static str {
        match self {
            Verdict::A => "A",
            Verdict::B => "B",
        }
    }

    /// The other answer.
    pub fn flip(self) -> Verdict {
        match self {
            Verdict::A => Verdict::B,
            Verdict::B => Verdict::A,
        }
    }

    /// Parses `"A"` / `"B"`.
    pub fn from_letter(s: &str) -> Option<Verdict> {
        match s.trim() {
            "A" | "a" => Some(Verdict::A),
            "B" | "b" => Some(Verdict::B),
            _ => None,
        }
    }
}

/// The prefix of the verdict line.
pub(crate) const VERDICT_PREFIX: &str = "Overall Judgment: Answer ";

/// The user turn asking the judge to compare `answer_a` and `answer_b`.
pub(crate) fn judge_prompt(question: &str, answer_a: &str, answer_b: &str) -> String {
    format!(
        "You are a judge of answers about the image.\nQuestion: {question}\nAnswer A: {answer_a}\n\
         Answer B: {answer_b}\nSay what the image shows, then end with \
         \"Overall Judgment: Answer A is better\" or \"Overall Judgment: Answer B is better\"."
    )
}

/// A judge response: reasoning, then the verdict line.
pub(crate) fn judge_response(reasoning: &str, verdict: Verdict) -> String {
    format!(
        "{} {VERDICT_PREFIX}{} is better.",
        reasoning.trim_end(),
        verdict.letter()
    )
}

/// The verdict of a judge output and the byte offset of its letter; `None` when the output
/// has no verdict line (unparseable).
pub(crate) fn parse_verdict(output: &str) -> Option<(Verdict, usize)> {
    let lower = output.to_ascii_lowercase();
    let prefix = VERDICT_PREFIX.to_ascii_lowercase();
    let mut found = None;
    let mut from = 0;
    while let Some(at) = lower[from..].find(&prefix) {
        let letter_at = from + at + prefix.len();
        if let Some(v) = output
            .get(letter_at..letter_at + 1)
            .and_then(Verdict::from_letter)
        {
            // "Answer A" must end there: "Answer Also ..." is not a verdict.
            let next = output[letter_at + 1..].chars().next();
            if next.is_none_or(|c| !c.is_alphanumeric()) {
                found = Some((v, letter_at));
            }
        }
        from = letter_at;
    }
    found
}

/// The reasoning part of an output: everything before the last verdict line.
pub(crate) fn reasoning_of(output: &str) -> &str {
    match parse_verdict(output) {
        Some((_, letter_at)) => output[..letter_at - VERDICT_PREFIX.len()].trim_end(),
        None => output.trim_end(),
    }
}

/// Whether the reasoning restates each answer with claims that answer makes: the text after
/// "Answer A: " (up to "Answer B: ") and after "Answer B: " is a list of claims, each ending in
/// "(true)" or "(false)", and every claim is found in its answer (case and spacing aside).
/// "leaves out N objects" (a description that misses objects) and "the answer is X" (a
/// justified answer restated by its final answer, X found in the answer) are claims about the
/// answer, not quotes, and pass. `None` when the reasoning does not restate both answers (no
/// "Answer A: ... Answer B: ..." with a marked claim in each).
///
/// Why: the filter keeps a judgement for its verdict; its restatement can still be copied from
/// the image description instead of the answer ("Answer A: a large green diamond (true)" for an
/// answer about a blue circle). Most of the judge's errors on the one-object bench look like
/// that, and most kept judgements restate an answer unfaithfully (notes/science.md, session
/// 27). Keeping only faithful ones did not help there on its own (it keeps the easy pairs);
/// with a permissive `min_agree` it removes the verdicts that were right by luck (session 28).
pub(crate) fn restates_answers(reasoning: &str, answer_a: &str, answer_b: &str) -> Option<bool> {
    let a_at = reasoning.find("Answer A: ")?;
    let b_at = a_at + reasoning[a_at..].find("Answer B: ")?;
    let a_part = &reasoning[a_at + "Answer A: ".len()..b_at];
    let b_part = &reasoning[b_at + "Answer B: ".len()..];
    let a = claims_found(a_part, answer_a)?;
    let b = claims_found(b_part, answer_b)?;
    Some(a && b)
}

/// Every marked claim of `part` found in `answer`; `None` when `part` has no marked claim.
fn claims_found(part: &str, answer: &str) -> Option<bool> {
    let squash = |t: &str| {
        t.split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .to_lowercase()
    };
    let answer = squash(answer);
    let mut rest = part;
    let mut any = false;
    loop {
        let t = rest.find("(true)").map(|i| (i, "(true)"));
        let f = rest.find("(false)").map(|i| (i, "(false)"));
        let Some((at, mark)) = [t, f].into_iter().flatten().min() else {
            break;
        };
        let claim = squash(rest[..at].trim_start_matches([',', '.', ' ']).trim());
        any = true;
        let about = claim.starts_with("leaves out ");
        let quoted = match claim.strip_prefix("the answer is ") {
            Some(last) => answer.contains(last),
            None => !claim.is_empty() && answer.contains(&claim),
        };
        if !(about || quoted) {
            return Some(false);
        }
        rest = &rest[at + mark.len()..];
    }
    any.then_some(true)
}

/// Token ids whose text is a verdict letter (with or without a leading space, as byte-level
/// BPE spells it), paired with the same token for the other letter: generation watches their
/// logits so that a verdict's probability can be read off without another forward pass.
pub(crate) struct LetterTokens {
    /// `(A-token, B-token)` pairs.
    pub pairs: Vec<(u32, u32)>,
}

impl LetterTokens {
    /// The pairs present in `tokenizer`'s vocabulary.
    pub fn new(tokenizer: &JudgeTokenizer) -> Self {
        let pairs = [("A", "B"), ("ĠA", "ĠB")]
            .iter()
            .filter_map(|(a, b)| Some((tokenizer.token_to_id(a)?, tokenizer.token_to_id(b)?)))
            .collect();
        Self { pairs }
    }

    /// The ids to watch during generation: `[a0, b0, a1, b1, ...]`.
    pub fn watch(&self) -> Vec<u32> {
        self.pairs.iter().flat_map(|&(a, b)| [a, b]).collect()
    }

    /// The probability the judge gave its verdict letter, against the other letter, at the
    /// step that produced it; `None` when the verdict letter was not a single watched token
    /// (e.g. merged with neighbouring text).
    pub fn verdict_prob(&self, tokenizer: &JudgeTokenizer, reply: &Reply) -> Option<f64> {
        let step = verdict_token(tokenizer, &reply.tokens, &reply.text)?;
        let token = reply.tokens[step];
        let slot = self.pairs.iter().enumerate().find_map(|(i, &(a, b))| {
            if token == a {
                Some((2 * i, 2 * i + 1))
            } else if token == b {
                Some((2 * i + 1, 2 * i))
            } else {
                None
            }
        })?;
        let logits = reply.watched.get(step)?;
        let (own, other) = (f64::from(logits[slot.0]), f64::from(logits[slot.1]));
        let m = own.max(other);
        let (e_own, e_other) = ((own - m).exp(), (other - m).exp());
        Some(e_own / (e_own + e_other))
    }
}

/// Each token's byte span in the text that `tokens` decode to, found by decoding growing
/// prefixes (byte-level pieces need their neighbours to decode); stops before the first prefix
/// that does not decode.
pub(crate) fn token_spans(tokenizer: &JudgeTokenizer, tokens: &[u32]) -> Vec<Range<usize>> {
    let mut spans = Vec::with_capacity(tokens.len());
    let mut end = 0;
    for step in 0..tokens.len() {
        let Ok(text) = tokenizer.decode(&tokens[..=step], true) else {
            break;
        };
        spans.push(end..text.len());
        end = text.len();
    }
    spans
}

/// The index, in `tokens` (which decode to `text`), of the token whose text starts the verdict
/// letter of `text`'s verdict line; `None` without a verdict line, or when the letter begins
/// inside a token that started before it.
pub(crate) fn verdict_token(
    tokenizer: &JudgeTokenizer,
    tokens: &[u32],
    text: &str,
) -> Option<usize> {
    verdict_token_in(&token_spans(tokenizer, tokens), text)
}

/// [`verdict_token`] over spans from [`token_spans`].
pub(crate) fn verdict_token_in(spans: &[Range<usize>], text: &str) -> Option<usize> {
    let (_, letter_at) = parse_verdict(text)?;
    let step = spans.iter().position(|s| s.end > letter_at)?;
    (spans[step].start <= letter_at).then_some(step)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_last_verdict_line() {
        let out = "It says \"Overall Judgment: Answer A is better\" but no. Overall Judgment: Answer B is better.";
        assert_eq!(parse_verdict(out).map(|v| v.0), Some(Verdict::B));
        assert_eq!(
            parse_verdict("overall judgment: answer a is better").map(|v| v.0),
            Some(Verdict::A)
        );
        assert_eq!(parse_verdict("Overall Judgment: Answer Also good"), None);
        assert_eq!(parse_verdict("Answer A is better"), None);
        assert_eq!(parse_verdict(""), None);
    }

    #[test]
    fn response_round_trips() {
        let r = judge_response("two red circles. ", Verdict::B);
        assert_eq!(r, "two red circles. Overall Judgment: Answer B is better.");
        assert_eq!(parse_verdict(&r).map(|v| v.0), Some(Verdict::B));
        assert_eq!(reasoning_of(&r), "two red circles.");
        assert_eq!(reasoning_of("no verdict here "), "no verdict here");
    }

    /// The judge's own outputs from the CPU lab (session 27's kept judgements): a faithful
    /// restatement, one copied from the image description, and the forms that are not quotes.
    #[test]
    fn restatements_are_checked_claim_by_claim_against_their_answers() {
        let a = "In the image there is a large green diamond.";
        let b = "In the image there is a large green diamond. There is also a small blue circle.";
        let faithful = "In the image: This picture contains a large green diamond. Answer A: a large \
                        green diamond (true). Answer B: a large green diamond (true), a small blue \
                        circle (false).";
        assert_eq!(restates_answers(faithful, a, b), Some(true));
        // B restated as something it does not say.
        let copied = "In the image: This picture contains a large green diamond. Answer A: a large \
                      green diamond (true). Answer B: a small green diamond (true), a large green \
                      diamond (false).";
        assert_eq!(restates_answers(copied, a, b), Some(false));
        // A's claim replaced by the image's object: the error behind "Answer A ... (true)".
        let swapped = "In the image: a small orange diamond. Answer A: a small orange diamond (true). \
                       Answer B: a small orange diamond (true).";
        assert_eq!(
            restates_answers(
                swapped,
                "We can see a small blue diamond.",
                "We can see a small orange diamond."
            ),
            Some(false)
        );
        // Case and spacing do not matter; a closed answer and a final answer are claims too.
        assert_eq!(
            restates_answers(
                "Answer A:  Two  (false). Answer B: yes (true).",
                "two",
                "Yes."
            ),
            Some(true)
        );
        assert_eq!(
            restates_answers(
                "Answer A: the answer is 1 (true). Answer B: the answer is 2 (false).",
                "There is 1 circle, so the answer is 1.",
                "There are 2 circles, so the answer is 2."
            ),
            Some(true)
        );
        // Nothing to check: no restatement, or an answer restated without a mark.
        assert_eq!(restates_answers("In the image: a red circle.", a, b), None);
        assert_eq!(
            restates_answers("Answer A: a large green diamond. Answer B: (true)", a, b),
            None
        );
    }
}
