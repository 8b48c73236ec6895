//! `op = "evaluate"`: a judge's accuracy on a preference benchmark (the world's gold bench,
//! VL-RewardBench, Multimodal RewardBench — any `bench` frame).
//!
//! Scoring follows VL-RewardBench's official rules, made explicit by parameters: each item is
//! judged `samples` times, each time in a seeded random A/B order; the item's result is the
//! majority of its parsed verdicts; items whose verdicts tie, or that have no parsed verdict at
//! all, leave the denominator and are counted (`ties`, `unparseable`). `overall` pools all
//! items, `macro` is the mean of the dimensions' accuracies. `a_share` is the share of parsed
//! verdicts that named the answer shown first: 0.5 is unbiased.

use std::collections::BTreeMap;

use judgeflow_engine::{Operator, ParamKind, ParamSpec, Params, Port, RunContext};
use judgeflow_schemas::{BENCH, JUDGEMENTS, METRICS};
use polars::prelude::Column;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::frames::{frame, texts};
use crate::judge::{Shown, judge_items, judging_params};
use crate::judge_format::Verdict;
use crate::runtime::{gpus_for, row_seed};

/// Scores a judge on a benchmark.
pub struct Evaluate;

impl Operator for Evaluate {
    fn name(&self) -> &'static str {
        "evaluate"
    }
    fn version(&self) -> u32 {
        1
    }
    fn doc(&self) -> &'static str {
        "judge accuracy per dimension, overall and macro; k samples in random order, per-item majority, ties and unparseable counted"
    }
    fn params(&self) -> Vec<ParamSpec> {
        let mut p = vec![
            ParamSpec::new(
                "samples",
                ParamKind::Int { min: 1, max: 64 },
                "judgements per item, each in a random order (VL-RewardBench: 10 at T 0.2)",
            )
            .default(10),
            ParamSpec::new(
                "limit",
                ParamKind::Int {
                    min: 0,
                    max: 100_000_000,
                },
                "score at most this many items (0: all), a seeded subset",
            )
            .default(0),
        ];
        p.extend(judging_params(0.2));
        p
    }
    fn inputs(&self, _: &Params) -> Vec<Port> {
        vec![
            Port::frame("bench", &BENCH),
            Port::artifact("model", "checkpoint"),
        ]
    }
    fn outputs(&self, _: &Params) -> Vec<Port> {
        vec![
            Port::frame("metrics", &METRICS),
            Port::frame("judgements", &JUDGEMENTS),
        ]
    }
    fn gpus(&self, params: &Params) -> u32 {
        gpus_for(params)
    }
    fn run(&self, ctx: &mut RunContext<'_>) -> miette::Result<()> {
        let df = ctx.input_frame("bench")?;
        let ids = texts(&df, "pair_id")?;
        let a = texts(&df, "answer_a")?;
        let b = texts(&df, "answer_b")?;
        let better = texts(&df, "better")?;
        let dims = texts(&df, "dimension")?;
        let mut items: Vec<usize> = (0..df.height())
            .filter(|&i| Verdict::from_letter(&better[i]).is_some())
            .collect();
        let bad = df.height() - items.len();
        if bad > 0 {
            tracing::warn!(
                node = ctx.node,
                bad,
                "items without a valid `better` (A/B) are not scored"
            );
        }
        let limit = ctx.params.usize("limit");
        if limit > 0 && items.len() > limit {
            items.sort_by_key(|&i| row_seed(ctx.seed, &[&ids[i], "select"]));
            items.truncate(limit);
            items.sort_unstable();
        }
        let k = ctx.params.usize("samples");
        let mut shown = Vec::with_capacity(items.len() * k);
        for &i in &items {
            let truth = Verdict::from_letter(&better[i]).expect("filtered above");
            for s in 0..k {
                let mut rng =
                    ChaCha8Rng::seed_from_u64(row_seed(ctx.seed, &[&ids[i], &s.to_string()]));
                let swap = rng.random_bool(0.5);
                let (answer_a, answer_b, preferred) = if swap {
                    (b[i].clone(), a[i].clone(), truth.flip())
                } else {
                    (a[i].clone(), b[i].clone(), truth)
                };
                shown.push(Shown {
                    pair: i,
                    order: if swap { "BA" } else { "AB" },
                    answer_a,
                    answer_b,
                    preferred,
                    seed: rng.random(),
                });
            }
        }
        let (judged, mut judgements) = judge_items(ctx, &df, "dimension", &shown)?;
        let scores = score(&shown, judged.iter().map(|j| j.verdict), &dims);
        let mut metrics = metrics_frame(&scores)?;
        if let Some(overall) = scores.iter().find(|s| s.dimension == "overall") {
            tracing::info!(
                node = ctx.node,
                accuracy = overall.accuracy(),
                n = overall.n,
                "evaluated"
            );
        }
        ctx.write_frame("metrics", &mut metrics)?;
        ctx.write_frame("judgements", &mut judgements)?;
        Ok(())
    }
}

/// One row of the metrics frame.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct Score {
    pub dimension: String,
    pub correct: usize,
    pub n: usize,
    pub ties: usize,
    pub unparseable: usize,
    pub said_a: usize,
    pub parsed: usize,
    /// Set for `macro`: the mean of the dimensions' accuracies.
    pub macro_accuracy: Option<f64>,
}

impl Score {
    pub fn accuracy(&self) -> f64 {
        self.macro_accuracy.unwrap_or(if self.n == 0 {
            f64::NAN
        } else {
            self.correct as f64 / self.n as f64
        })
    }
}

/// Per-item majority over the item's parsed verdicts, then per-dimension, overall and macro
/// scores. `shown[j]` was judged `verdicts[j]`; items are grouped by `shown[j].pair`.
pub(crate) fn score(
    shown: &[Shown],
    verdicts: impl Iterator<Item = Option<Verdict>>,
    dims: &[String],
) -> Vec<Score> {
    // Per item: (right, wrong) parsed votes, in first-appearance order.
    let mut items: BTreeMap<usize, (usize, usize)> = BTreeMap::new();
    let mut per_dim: BTreeMap<&str, Score> = BTreeMap::new();
    for (s, v) in shown.iter().zip(verdicts) {
        let votes = items.entry(s.pair).or_default();
        let dim = per_dim.entry(dims[s.pair].as_str()).or_default();
        if let Some(v) = v {
            dim.parsed += 1;
            dim.said_a += usize::from(v == Verdict::A);
            if v == s.preferred {
                votes.0 += 1;
            } else {
                votes.1 += 1;
            }
        }
    }
    for (&pair, &(right, wrong)) in &items {
        let dim = per_dim.get_mut(dims[pair].as_str()).expect("entered above");
        if right + wrong == 0 {
            dim.unparseable += 1;
        } else if right == wrong {
            dim.ties += 1;
        } else {
            dim.n += 1;
            dim.correct += usize::from(right > wrong);
        }
    }
    let mut out: Vec<Score> = per_dim
        .into_iter()
        .map(|(d, s)| Score {
            dimension: d.to_string(),
            ..s
        })
        .collect();
    let mut overall = Score {
        dimension: "overall".into(),
        ..Score::default()
    };
    for s in &out {
        overall.correct += s.correct;
        overall.n += s.n;
        overall.ties += s.ties;
        overall.unparseable += s.unparseable;
        overall.said_a += s.said_a;
        overall.parsed += s.parsed;
    }
    let scored: Vec<f64> = out
        .iter()
        .map(Score::accuracy)
        .filter(|a| !a.is_nan())
        .collect();
    let macro_score = Score {
        dimension: "macro".into(),
        macro_accuracy: Some(if scored.is_empty() {
            f64::NAN
        } else {
            scored.iter().sum::<f64>() / scored.len() as f64
        }),
        ..overall.clone()
    };
    out.push(overall);
    out.push(macro_score);
    out
}

fn metrics_frame(scores: &[Score]) -> miette::Result<polars::prelude::DataFrame> {
    frame(vec![
        Column::new(
            "dimension".into(),
            scores
                .iter()
                .map(|s| s.dimension.clone())
                .collect::<Vec<_>>(),
        ),
        Column::new(
            "accuracy".into(),
            scores.iter().map(Score::accuracy).collect::<Vec<_>>(),
        ),
        Column::new(
            "correct".into(),
            scores.iter().map(|s| s.correct as i64).collect::<Vec<_>>(),
        ),
        Column::new(
            "n".into(),
            scores.iter().map(|s| s.n as i64).collect::<Vec<_>>(),
        ),
        Column::new(
            "ties".into(),
            scores.iter().map(|s| s.ties as i64).collect::<Vec<_>>(),
        ),
        Column::new(
            "unparseable".into(),
            scores
                .iter()
                .map(|s| s.unparseable as i64)
                .collect::<Vec<_>>(),
        ),
        Column::new(
            "a_share".into(),
            scores
                .iter()
                .map(|s| {
                    if s.parsed == 0 {
                        f64::NAN
                    } else {
                        s.said_a as f64 / s.parsed as f64
                    }
                })
                .collect::<Vec<_>>(),
        ),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shown(pair: usize, preferred: Verdict) -> Shown {
        Shown {
            pair,
            order: "AB",
            answer_a: String::new(),
            answer_b: String::new(),
            preferred,
            seed: 0,
        }
    }

    #[test]
    fn per_item_majority_ties_and_unparseable() {
        use Verdict::{A, B};
        let dims: Vec<String> = ["x", "x", "x", "y"].iter().map(|s| s.to_string()).collect();
        // Item 0: 2 right of 3. Item 1: 1 right, 1 wrong (tie). Item 2: nothing parsed.
        // Item 3 (dimension y): 1 wrong.
        let s = vec![
            shown(0, A),
            shown(0, A),
            shown(0, B),
            shown(1, A),
            shown(1, B),
            shown(2, A),
            shown(3, B),
        ];
        let v = vec![Some(A), Some(A), Some(A), Some(A), Some(A), None, Some(A)];
        let scores = score(&s, v.into_iter(), &dims);
        let get = |d: &str| scores.iter().find(|s| s.dimension == d).unwrap().clone();
        let x = get("x");
        assert_eq!((x.correct, x.n, x.ties, x.unparseable), (1, 1, 1, 1));
        assert_eq!(get("y").accuracy(), 0.0);
        let overall = get("overall");
        assert_eq!((overall.correct, overall.n), (1, 2));
        assert_eq!(overall.accuracy(), 0.5);
        assert_eq!(get("macro").accuracy(), 0.5);
        // Every parsed verdict said A.
        assert_eq!(overall.said_a, overall.parsed);
    }
}
