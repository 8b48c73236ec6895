//! Per-iteration diagnostics of self-training, the figures a researcher reads first, from
//! frames the iteration's nodes already wrote (each read against its schema):
//!
//! - `agreement`: share of the `judge` node's parsed verdicts that name the synthetic label's
//!   preferred answer (`agrees`), on pairs the judging model was not trained on;
//! - `label_precision`: share of the `vote` node's pairs whose majority label the gold answer
//!   confirms (`label_correct`, pairs without a gold answer left out);
//! - `a_share`: share of the judge's parsed verdicts that say A (0.5: no position bias);
//! - `unparseable`: share of the judge's outputs without a verdict line;
//! - `copies`: share of the judge's outputs whose reasoning (the text before the verdict line)
//!   contains answer A or answer B verbatim (case aside), among judgements where at least one
//!   answer has [`COPY_MIN_WORDS`] words or more (a one-word answer such as "red" appears in
//!   any reasoning about it);
//! - `orders_agree`: on pairs judged in both orders, how often the two orders pick the same
//!   answer (per pair: `p·q + (1 − p)·(1 − q)`, where `p` and `q` are the shares of the parsed
//!   verdicts of each order that name the preferred answer; then the mean over pairs). A judge
//!   that reads the answers is near 1; a coin is 0.5; a judge that writes the same letter
//!   whatever the answers (it does not read them) is near 0, however balanced its A-share is
//!   over many pairs;
//! - `kept_fraction`: the `filter` node's share of judgements kept (the `total` row of its
//!   `kept_stats` frame, whichever node wrote it).
//!
//! One row per sweep variant and iteration; a figure an iteration lacks is NaN (shown "—").
//! Several nodes of one op in one iteration and variant are pooled.

use judgeflow_engine::cli::ReportNode;
use miette::Result;

use crate::frames;

/// Shortest answer, in words, whose verbatim copy in the reasoning counts.
pub const COPY_MIN_WORDS: usize = 3;

/// The verdict line's prefix, as `judge` writes it (`operators/src/judge_format.rs`).
const VERDICT_PREFIX: &str = "overall judgment: answer ";

/// One iteration of one variant.
#[derive(Clone, Debug, Default)]
pub struct Row {
    /// Variant label (`""` without a sweep).
    pub variant: String,
    /// Repetition.
    pub iteration: u32,
    /// Judgements of the judge nodes.
    pub judgements: usize,
    /// See the module docs.
    pub agreement: f64,
    /// See the module docs.
    pub a_share: f64,
    /// See the module docs.
    pub unparseable: f64,
    /// See the module docs.
    pub copies: f64,
    /// Judgements where a copy could count (an answer of [`COPY_MIN_WORDS`] words or more).
    pub copy_checked: usize,
    /// See the module docs.
    pub orders_agree: f64,
    /// Pairs with a parsed verdict in both orders.
    pub both_orders: usize,
    /// See the module docs.
    pub label_precision: f64,
    /// Vote pairs whose label the gold answer could check.
    pub labelled: usize,
    /// See the module docs.
    pub kept_fraction: f64,
}

fn share(part: usize, of: usize) -> f64 {
    if of == 0 {
        f64::NAN
    } else {
        part as f64 / of as f64
    }
}

/// The reasoning of an output: everything before its last verdict line (all of it when there
/// is none), lower-cased.
fn reasoning(output: &str) -> String {
    let lower = output.to_lowercase();
    match lower.rfind(VERDICT_PREFIX) {
        Some(at) => lower[..at].to_string(),
        None => lower,
    }
}

/// Whether `reasoning` (lower-cased) contains `answer` verbatim, when the answer is long enough
/// to tell a copy from a coincidence: `None` when it is not.
fn copied(reasoning: &str, answer: &str) -> Option<bool> {
    let answer = answer
        .trim()
        .trim_end_matches(['.', '!', '?'])
        .to_lowercase();
    (answer.split_whitespace().count() >= COPY_MIN_WORDS).then(|| reasoning.contains(&answer))
}

/// `orders_agree` over `judged` and the number of pairs it covers: per pair, the shares of the
/// parsed verdicts of each order (`AB`, `BA`) that agree with the label.
fn orders_agree(judged: &[frames::Judged]) -> (f64, usize) {
    use std::collections::BTreeMap;
    // Per pair: (agreeing, parsed) for AB, then for BA.
    let mut by_pair: BTreeMap<&str, [(usize, usize); 2]> = BTreeMap::new();
    for j in judged.iter().filter(|j| j.verdict.is_some()) {
        let side = match j.order.as_str() {
            "AB" => 0,
            "BA" => 1,
            _ => continue,
        };
        let slot = &mut by_pair.entry(j.pair_id.as_str()).or_default()[side];
        slot.0 += usize::from(j.agrees);
        slot.1 += 1;
    }
    let consistency: Vec<f64> = by_pair
        .values()
        .filter(|[ab, ba]| ab.1 > 0 && ba.1 > 0)
        .map(|[ab, ba]| {
            let (p, q) = (ab.0 as f64 / ab.1 as f64, ba.0 as f64 / ba.1 as f64);
            p * q + (1.0 - p) * (1.0 - q)
        })
        .collect();
    let n = consistency.len();
    let mean = if n == 0 {
        f64::NAN
    } else {
        consistency.iter().sum::<f64>() / n as f64
    };
    (mean, n)
}

/// The diagnostics rows of every variant and iteration that has a judge, vote or filter result.
pub fn rows(nodes: &[ReportNode], variants: &[String]) -> Result<Vec<Row>> {
    let in_variant =
        |n: &ReportNode, v: &str| n.variants.is_empty() || n.variants.iter().any(|x| x == v);
    let iterations: Vec<u32> = {
        let mut its: Vec<u32> = nodes.iter().filter_map(|n| n.iteration).collect();
        its.sort_unstable();
        its.dedup();
        its
    };
    let mut out = Vec::new();
    for variant in variants {
        for &it in &iterations {
            let here: Vec<&ReportNode> = nodes
                .iter()
                .filter(|n| n.iteration == Some(it) && in_variant(n, variant))
                .collect();
            let mut row = Row {
                variant: variant.clone(),
                iteration: it,
                ..Row::default()
            };
            let (mut parsed, mut agree, mut said_a, mut unparseable, mut copies) = (0, 0, 0, 0, 0);
            let mut any = false;
            let mut all_judged = Vec::new();
            for n in here.iter().filter(|n| n.op == "judge") {
                let Some(judged) = frames::judgements(n)? else {
                    continue;
                };
                any = true;
                for j in &judged {
                    row.judgements += 1;
                    match j.verdict.as_deref() {
                        Some(v) => {
                            parsed += 1;
                            agree += usize::from(j.agrees);
                            said_a += usize::from(v == "A");
                        }
                        None => unparseable += 1,
                    }
                    let r = reasoning(&j.output);
                    let (a, b) = (copied(&r, &j.answer_a), copied(&r, &j.answer_b));
                    if a.is_some() || b.is_some() {
                        row.copy_checked += 1;
                        copies += usize::from(a == Some(true) || b == Some(true));
                    }
                }
                all_judged.extend(judged);
            }
            (row.orders_agree, row.both_orders) = orders_agree(&all_judged);
            row.agreement = share(agree, parsed);
            row.a_share = share(said_a, parsed);
            row.unparseable = share(unparseable, row.judgements);
            row.copies = share(copies, row.copy_checked);
            let mut correct = 0;
            for n in here.iter().filter(|n| n.op == "vote") {
                if let Some((c, known)) = frames::label_correct(n)? {
                    any = true;
                    correct += c;
                    row.labelled += known;
                }
            }
            row.label_precision = share(correct, row.labelled);
            let (mut kept, mut seen) = (0i64, 0i64);
            // Any node's `kept_stats` frame (only `filter` writes one); the judgements and
            // pairs above are picked by operator, as other operators write frames of those
            // schemas with another meaning.
            for n in &here {
                let stats = frames::kept(n)?.unwrap_or_default();
                if let Some(total) = stats
                    .iter()
                    .find(|r| r.source == "total" && r.kind == "total")
                {
                    any = true;
                    kept += total.kept;
                    seen += total.judgements;
                }
            }
            row.kept_fraction = share(kept as usize, seen as usize);
            if any {
                out.push(row);
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_copy_is_a_long_answer_verbatim_in_the_reasoning() {
        let r = reasoning(
            "In the image: a red circle left of a blue square. Overall Judgment: Answer A is better.",
        );
        assert!(!r.contains("judgment"));
        assert_eq!(
            copied(&r, "A red circle left of a blue square."),
            Some(true)
        );
        assert_eq!(
            copied(&r, "a green circle left of a blue square"),
            Some(false)
        );
        assert_eq!(copied(&r, "red"), None, "too short to tell");
        // The verdict line itself is not reasoning.
        assert_eq!(copied(&r, "Answer A is better"), Some(false));
    }

    fn judged(pair: &str, order: &str, verdict: Option<&str>, agrees: bool) -> frames::Judged {
        frames::Judged {
            pair_id: pair.into(),
            order: order.into(),
            kind: "k".into(),
            answer_a: String::new(),
            answer_b: String::new(),
            output: String::new(),
            verdict: verdict.map(String::from),
            agrees,
        }
    }

    #[test]
    fn a_judge_that_writes_one_letter_whatever_the_answers_never_agrees_with_itself() {
        // Always "A": it agrees with the label in exactly one of the two orders of each pair.
        let one_letter: Vec<_> = ["p", "q"]
            .iter()
            .flat_map(|p| {
                [
                    judged(p, "AB", Some("A"), true),
                    judged(p, "BA", Some("A"), false),
                ]
            })
            .collect();
        assert_eq!(orders_agree(&one_letter), (0.0, 2));
        // Reads the answers: the same (wrong, here) answer in both orders.
        let reads = [
            judged("p", "AB", Some("B"), false),
            judged("p", "BA", Some("A"), false),
        ];
        assert_eq!(orders_agree(&reads), (1.0, 1));
        // Two samples an order, half agreeing in AB and all in BA: 0.5·1 + 0.5·0.
        let mixed = [
            judged("p", "AB", Some("A"), true),
            judged("p", "AB", Some("B"), false),
            judged("p", "BA", Some("B"), true),
            judged("p", "BA", None, false),
            judged("lone", "AB", Some("A"), true),
        ];
        assert_eq!(
            orders_agree(&mixed),
            (0.5, 1),
            "unparsed and one-order pairs left out"
        );
    }
}
