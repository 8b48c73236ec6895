//! `op = "filter"`: keeps the judgements whose verdict agrees with the synthetic preference and
//! turns them into SFT examples (judge prompt → reasoning + verdict).
//!
//! With `both_orders = true` (the paper's rule) a pair's agreeing judgements are kept only if
//! the judge agreed in every order it was shown (at least one sampled judgement per order),
//! which removes verdicts that merely follow position.
//! `keep = "all"` is the no-filter ablation: every parsed judgement is kept, agreeing or not.
//! Unparseable outputs are never kept. `stats` reports pairs, judgements and the kept
//! fraction per source and kind, plus a `total` row.

use std::collections::BTreeMap;

use judgeflow_engine::{Operator, ParamKind, ParamSpec, Params, Port, RunContext};
use judgeflow_schemas::{JUDGEMENTS, KEPT_STATS, SFT};
use polars::prelude::Column;

use crate::frames::{binary_column, bins, bools, frame, strs, texts};
use crate::judge_format::{Verdict, judge_prompt, judge_response, reasoning_of};

/// Rejection sampling of judgements.
pub struct Filter;

impl Operator for Filter {
    fn name(&self) -> &'static str {
        "filter"
    }
    fn version(&self) -> u32 {
        1
    }
    fn doc(&self) -> &'static str {
        "keep judgements that agree with the synthetic preference (in both orders) as judge SFT data"
    }
    fn params(&self) -> Vec<ParamSpec> {
        vec![
            ParamSpec::new(
                "keep",
                ParamKind::Choice(&["agree", "all"]),
                "`all` keeps every parsed judgement (the no-filter ablation)",
            )
            .default("agree"),
            ParamSpec::new(
                "both_orders",
                ParamKind::Bool,
                "agree: require agreement in every order the pair was shown",
            )
            .default(true),
        ]
    }
    fn inputs(&self, _: &Params) -> Vec<Port> {
        vec![Port::frame("judgements", &JUDGEMENTS)]
    }
    fn outputs(&self, _: &Params) -> Vec<Port> {
        vec![Port::frame("kept", &SFT), Port::frame("stats", &KEPT_STATS)]
    }
    fn run(&self, ctx: &mut RunContext<'_>) -> miette::Result<()> {
        let df = ctx.input_frame("judgements")?;
        let pair_ids = texts(&df, "pair_id")?;
        let orders = texts(&df, "order")?;
        let agrees = bools(&df, "agrees")?;
        let verdicts = strs(&df, "verdict")?;
        let kinds = texts(&df, "kind")?;
        let sources = texts(&df, "source")?;
        let keep_all = ctx.params.str("keep") == "all";
        let both = ctx.params.bool("both_orders");

        // A pair passes `both_orders` when, in every order it was shown, at least one sampled
        // judgement agreed (with one sample per order: agreed in both).
        let agreed = |i: usize| agrees[i] == Some(true);
        let mut per_order: BTreeMap<(&str, &str), bool> = BTreeMap::new();
        for i in 0..df.height() {
            *per_order
                .entry((pair_ids[i].as_str(), orders[i].as_str()))
                .or_insert(false) |= agreed(i);
        }
        let mut pair_ok: BTreeMap<&str, bool> = BTreeMap::new();
        for ((pair, _), ok) in per_order {
            *pair_ok.entry(pair).or_insert(true) &= ok;
        }
        let verdict = |i: usize| verdicts[i].as_deref().and_then(Verdict::from_letter);
        let kept: Vec<usize> = (0..df.height())
            .filter(|&i| match (keep_all, both) {
                (true, _) => verdict(i).is_some(),
                (false, true) => agreed(i) && pair_ok[pair_ids[i].as_str()],
                (false, false) => agreed(i),
            })
            .collect();

        let images = bins(&df, "image")?;
        let questions = texts(&df, "question")?;
        let a = texts(&df, "answer_a")?;
        let b = texts(&df, "answer_b")?;
        let outputs = texts(&df, "output")?;
        let mut sft = frame(vec![
            Column::new(
                "example_id".into(),
                kept.iter()
                    .map(|&i| format!("{}-{}-{i}", pair_ids[i], orders[i]))
                    .collect::<Vec<_>>(),
            ),
            binary_column(
                "image",
                &kept.iter().map(|&i| images[i].clone()).collect::<Vec<_>>(),
            ),
            Column::new(
                "prompt".into(),
                kept.iter()
                    .map(|&i| judge_prompt(&questions[i], &a[i], &b[i]))
                    .collect::<Vec<_>>(),
            ),
            Column::new(
                "response".into(),
                kept.iter()
                    .map(|&i| {
                        judge_response(
                            reasoning_of(&outputs[i]),
                            verdict(i).expect("kept verdicts parse"),
                        )
                    })
                    .collect::<Vec<_>>(),
            ),
        ])?;

        // Stats per (source, kind) and in total.
        #[derive(Default)]
        struct Count<'a> {
            pairs: std::collections::BTreeSet<&'a str>,
            judgements: usize,
            kept: usize,
        }
        let mut counts: BTreeMap<(&str, &str), Count<'_>> = BTreeMap::new();
        let kept_set: std::collections::BTreeSet<usize> = kept.iter().copied().collect();
        for i in 0..df.height() {
            for key in [(sources[i].as_str(), kinds[i].as_str()), ("total", "total")] {
                let c = counts.entry(key).or_default();
                c.pairs.insert(pair_ids[i].as_str());
                c.judgements += 1;
                c.kept += usize::from(kept_set.contains(&i));
            }
        }
        if counts.is_empty() {
            counts.insert(("total", "total"), Count::default());
        }
        let rows: Vec<(&(&str, &str), &Count<'_>)> = counts.iter().collect();
        let mut stats = frame(vec![
            Column::new(
                "source".into(),
                rows.iter().map(|(k, _)| k.0).collect::<Vec<_>>(),
            ),
            Column::new(
                "kind".into(),
                rows.iter().map(|(k, _)| k.1).collect::<Vec<_>>(),
            ),
            Column::new(
                "pairs".into(),
                rows.iter()
                    .map(|(_, c)| c.pairs.len() as i64)
                    .collect::<Vec<_>>(),
            ),
            Column::new(
                "judgements".into(),
                rows.iter()
                    .map(|(_, c)| c.judgements as i64)
                    .collect::<Vec<_>>(),
            ),
            Column::new(
                "kept".into(),
                rows.iter().map(|(_, c)| c.kept as i64).collect::<Vec<_>>(),
            ),
            Column::new(
                "kept_fraction".into(),
                rows.iter()
                    .map(|(_, c)| {
                        if c.judgements == 0 {
                            f64::NAN
                        } else {
                            c.kept as f64 / c.judgements as f64
                        }
                    })
                    .collect::<Vec<_>>(),
            ),
        ])?;
        tracing::info!(
            node = ctx.node,
            judgements = df.height(),
            kept = kept.len(),
            "filtered"
        );
        ctx.write_frame("kept", &mut sft)?;
        ctx.write_frame("stats", &mut stats)?;
        Ok(())
    }
}
