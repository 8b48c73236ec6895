//! `op = "filter"`: keeps the judgements whose verdict agrees with the synthetic preference and
//! turns them into SFT examples (judge prompt → reasoning + verdict).
//!
//! With `both_orders = true` (the paper's rule) a pair's agreeing judgements are kept only if
//! the judge agreed in every order it was shown (at least one sampled judgement per order),
//! which removes verdicts that merely follow position.
//! `keep = "all"` is the no-filter ablation: every parsed judgement is kept, agreeing or not.
//! `min_agree` raises the bar from "at least one sample agreed" to a share of the samples, and
//! `per_order` keeps at most that many of a pair's kept judgements per order (a seeded choice),
//! as Self-Taught Evaluator's rejection sampling keeps one: without it a pair the judge found
//! easy contributes up to `samples` near-identical examples per order.
//! `faithful = true` keeps only judgements whose reasoning restates each answer with claims that
//! answer makes ([`restates_answers`]): a verdict can agree with the label while the reasoning
//! restates an answer as the image (off by default: alone it cost accuracy in session 27's CPU
//! lab; with `min_agree = 0.25` it lifted a base that favours "A", session 28, and on the GPU
//! doubled `self_train.toml`'s gain, which ships the two since session 29).
//! Unparseable outputs are never kept. `stats` reports pairs, judgements and the kept
//! fraction per source and kind, plus a `total` row.

use std::collections::BTreeMap;

use judgeflow_engine::{Port, RunContext, TypedOperator, choice_enum, operator_params};
use judgeflow_schemas::{FrameRow, JUDGEMENTS, KEPT_STATS, KeptStatsRow, SFT, SftRow};
use miette::IntoDiagnostic;

use crate::frames::{bins, bools, strs, texts};
use crate::judge_format::{Verdict, judge_prompt, judge_response, reasoning_of, restates_answers};
use crate::model_kit::row_seed;

choice_enum! {
    /// Which judgements are candidates.
    pub enum Keep {
        Agree = "agree",
        All = "all",
    }
}

operator_params! {
    /// The filter's parameters.
    pub struct FilterParams {
        /// `all` keeps every parsed judgement (the no-filter ablation)
        keep: Keep = Keep::Agree,
        /// agree: require agreement in every order the pair was shown
        both_orders: bool = true,
        /// agree: the share of a pair's sampled judgements in an order that must agree for
        /// that order to pass (at least one always must)
        min_agree: f64 [0.0..=1.0] = 0.0,
        /// keep at most this many judgements per pair and order, a seeded choice (1:
        /// Self-Taught Evaluator's rejection sampling; 0: all)
        per_order: usize [0..=1024] = 1,
        /// keep only judgements that restate each answer with claims it makes (every claim
        /// before a (true)/(false) mark found in its answer)
        faithful: bool = false,
    }
}

/// Rejection sampling of judgements.
pub struct Filter;

impl TypedOperator for Filter {
    type Params = FilterParams;
    fn name(&self) -> &'static str {
        "filter"
    }
    fn version(&self) -> u32 {
        // 2: `per_order` (1 by default: version 1 kept every agreeing sample) and `min_agree`.
        2
    }
    fn doc(&self) -> &'static str {
        "keep judgements that agree with the synthetic preference (in both orders) as judge SFT data"
    }
    fn inputs(&self, _: &FilterParams) -> Vec<Port> {
        vec![Port::frame("judgements", &JUDGEMENTS)]
    }
    fn outputs(&self, _: &FilterParams) -> Vec<Port> {
        vec![Port::frame("kept", &SFT), Port::frame("stats", &KEPT_STATS)]
    }
    fn run(&self, p: &FilterParams, ctx: &mut RunContext<'_>) -> miette::Result<()> {
        let df = ctx.input_frame("judgements")?;
        let pair_ids = texts(&df, "pair_id")?;
        let orders = texts(&df, "order")?;
        let agrees = bools(&df, "agrees")?;
        let verdicts = strs(&df, "verdict")?;
        let kinds = texts(&df, "kind")?;
        let sources = texts(&df, "source")?;

        let a = texts(&df, "answer_a")?;
        let b = texts(&df, "answer_b")?;
        let outputs = texts(&df, "output")?;
        let verdict = |i: usize| verdicts[i].as_deref().and_then(Verdict::from_letter);
        let rows: Vec<Judged<'_>> = (0..df.height())
            .map(|i| Judged {
                pair: pair_ids[i].as_str(),
                order: orders[i].as_str(),
                parsed: verdict(i).is_some(),
                agrees: agrees[i] == Some(true),
                faithful: !p.faithful
                    || restates_answers(reasoning_of(&outputs[i]), &a[i], &b[i]) == Some(true),
            })
            .collect();
        let rule = KeepRule {
            keep_all: p.keep == Keep::All,
            both_orders: p.both_orders,
            min_agree: p.min_agree,
            per_order: p.per_order,
        };
        let kept = select_kept(&rows, &rule, ctx.seed);

        let images = bins(&df, "image")?;
        let questions = texts(&df, "question")?;
        let examples = kept
            .iter()
            .map(|&i| SftRow {
                example_id: format!("{}-{}-{i}", pair_ids[i], orders[i]),
                image: images[i].clone(),
                prompt: judge_prompt(&questions[i], &a[i], &b[i]),
                response: judge_response(
                    reasoning_of(&outputs[i]),
                    verdict(i).expect("kept verdicts parse"),
                ),
            })
            .collect();
        let mut sft = SftRow::into_frame(examples).into_diagnostic()?;

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
        let rows = counts
            .iter()
            .map(|(&(source, kind), c)| KeptStatsRow {
                source: source.to_string(),
                kind: kind.to_string(),
                pairs: c.pairs.len() as i64,
                judgements: c.judgements as i64,
                kept: c.kept as i64,
                kept_fraction: if c.judgements == 0 {
                    f64::NAN
                } else {
                    c.kept as f64 / c.judgements as f64
                },
            })
            .collect();
        let mut stats = KeptStatsRow::into_frame(rows).into_diagnostic()?;
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

/// What [`select_kept`] needs of one judgement.
#[derive(Clone, Copy, Debug)]
struct Judged<'a> {
    pair: &'a str,
    order: &'a str,
    parsed: bool,
    agrees: bool,
    /// restates its answers faithfully, or the filter does not ask
    faithful: bool,
}

/// The filter's parameters.
#[derive(Clone, Debug)]
struct KeepRule {
    keep_all: bool,
    both_orders: bool,
    min_agree: f64,
    per_order: usize,
}

/// Indices (ascending) of the judgements to keep.
///
/// An order of a pair *passes* when at least one of its sampled judgements agrees and the share
/// that agrees is at least `min_agree`; with `both_orders` every order the pair was shown in
/// must pass. `keep_all` keeps every parsed judgement instead. A judgement that is not
/// `faithful` is never a candidate (whether an order passes is still decided by agreement
/// alone: the verdicts are what the label checks). Then at most `per_order` of the
/// candidates of each (pair, order) are kept, ranked by a hash of the seed and the row's
/// position within its (pair, order), so the choice does not depend on other pairs.
fn select_kept(rows: &[Judged<'_>], rule: &KeepRule, seed: u64) -> Vec<usize> {
    let mut per_order: BTreeMap<(&str, &str), (usize, usize)> = BTreeMap::new();
    for r in rows {
        let e = per_order.entry((r.pair, r.order)).or_default();
        e.0 += usize::from(r.agrees);
        e.1 += 1;
    }
    let passes = |agreeing: usize, total: usize| {
        agreeing > 0 && agreeing as f64 >= rule.min_agree * total as f64 - 1e-9
    };
    let mut pair_ok: BTreeMap<&str, bool> = BTreeMap::new();
    for (&(pair, _), &(agreeing, total)) in &per_order {
        *pair_ok.entry(pair).or_insert(true) &= passes(agreeing, total);
    }
    let candidate = |r: &Judged<'_>| {
        if !r.faithful {
            return false;
        }
        if rule.keep_all {
            return r.parsed;
        }
        let (agreeing, total) = per_order[&(r.pair, r.order)];
        r.agrees
            && if rule.both_orders {
                pair_ok[r.pair]
            } else {
                passes(agreeing, total)
            }
    };
    let mut groups: BTreeMap<(&str, &str), Vec<usize>> = BTreeMap::new();
    for (i, r) in rows.iter().enumerate() {
        if candidate(r) {
            groups.entry((r.pair, r.order)).or_default().push(i);
        }
    }
    let mut kept = Vec::new();
    for ((pair, order), mut idx) in groups {
        if rule.per_order > 0 && idx.len() > rule.per_order {
            let mut rank: Vec<(u64, usize)> = idx
                .iter()
                .enumerate()
                .map(|(k, &i)| (row_seed(seed, &[pair, order, &k.to_string()]), i))
                .collect();
            rank.sort_unstable();
            idx = rank
                .into_iter()
                .take(rule.per_order)
                .map(|(_, i)| i)
                .collect();
        }
        kept.extend(idx);
    }
    kept.sort_unstable();
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    fn j<'a>(pair: &'a str, order: &'a str, agrees: bool) -> Judged<'a> {
        Judged {
            pair,
            order,
            parsed: true,
            agrees,
            faithful: true,
        }
    }

    fn rule(both_orders: bool, min_agree: f64, per_order: usize) -> KeepRule {
        KeepRule {
            keep_all: false,
            both_orders,
            min_agree,
            per_order,
        }
    }

    #[test]
    fn both_orders_requires_an_agreeing_sample_in_each_order() {
        let rows = [
            j("p", "AB", true),
            j("p", "AB", false),
            j("p", "BA", false),
            j("q", "AB", true),
            j("q", "BA", true),
        ];
        assert_eq!(select_kept(&rows, &rule(true, 0.0, 0), 1), vec![3, 4]);
        assert_eq!(select_kept(&rows, &rule(false, 0.0, 0), 1), vec![0, 3, 4]);
    }

    #[test]
    fn min_agree_and_per_order_bound_what_is_kept() {
        // Pair p: 3 of 4 agree in AB, 1 of 4 in BA.
        let mut rows = Vec::new();
        for a in [true, true, true, false] {
            rows.push(j("p", "AB", a));
        }
        for a in [true, false, false, false] {
            rows.push(j("p", "BA", a));
        }
        assert_eq!(select_kept(&rows, &rule(true, 0.0, 0), 1).len(), 4);
        assert!(
            select_kept(&rows, &rule(true, 0.5, 0), 1).is_empty(),
            "BA has 1/4 < 0.5"
        );
        assert_eq!(select_kept(&rows, &rule(false, 0.5, 0), 1), vec![0, 1, 2]);
        let one = select_kept(&rows, &rule(true, 0.0, 1), 1);
        assert_eq!(one.len(), 2, "one per order: {one:?}");
        assert!(one.iter().any(|&i| i < 4) && one.iter().any(|&i| i >= 4));
        // The choice among the three agreeing AB samples depends on the seed, and is always one
        // of them.
        let picks: std::collections::BTreeSet<usize> = (0..40)
            .map(|s| select_kept(&rows, &rule(false, 0.0, 1), s)[0])
            .collect();
        assert!(picks.len() > 1 && picks.iter().all(|&i| i < 3), "{picks:?}");
    }

    #[test]
    fn unfaithful_judgements_are_never_kept_and_do_not_decide_an_order() {
        // p: two agreeing samples per order, one of them unfaithful in AB.
        let mut rows = vec![
            j("p", "AB", true),
            j("p", "AB", true),
            j("p", "BA", true),
            j("p", "BA", false),
        ];
        rows[0].faithful = false;
        assert_eq!(select_kept(&rows, &rule(true, 0.5, 0), 1), vec![1, 2]);
        // per_order picks among the faithful ones only.
        for s in 0..20 {
            assert_eq!(select_kept(&rows, &rule(true, 0.0, 1), s), vec![1, 2]);
        }
        // An order whose only agreeing sample is unfaithful still passes, and keeps nothing.
        rows[1].faithful = false;
        assert_eq!(select_kept(&rows, &rule(true, 0.0, 0), 1), vec![2]);
        let all = KeepRule {
            keep_all: true,
            ..rule(true, 0.0, 0)
        };
        assert_eq!(select_kept(&rows, &all, 1), vec![2, 3]);
    }

    #[test]
    fn keep_all_keeps_parsed_judgements_only() {
        let mut rows = vec![j("p", "AB", false), j("p", "BA", false)];
        rows[1].parsed = false;
        let r = KeepRule {
            keep_all: true,
            ..rule(true, 0.0, 0)
        };
        assert_eq!(select_kept(&rows, &r, 1), vec![0]);
    }
}
