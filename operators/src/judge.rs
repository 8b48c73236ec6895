//! `op = "judge"`: the judge writes reasoning and a verdict for every synthetic pair, in both
//! presentation orders (or one), `samples` times per order at `temperature`, and each verdict
//! is compared with the synthetic preference.
//!
//! The judging itself (shared with `evaluate`) is in [`crate::judging`]: outputs are parsed
//! with [`crate::judge_format::parse_verdict`]; unparseable outputs are kept (verdict null,
//! `agrees` false) so that the filter and the report can count them. The verdict's
//! probability is read from the logits at the step that wrote the verdict letter (A against
//! B), without another forward pass.

use judgeflow_engine::{Port, RunContext, TypedOperator, choice_enum, operator_params};
use judgeflow_schemas::{JUDGEMENTS, PAIRS};
use rand::Rng;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::frames::texts;
use crate::judge_format::Verdict;
use crate::judging::{JudgingParams, Shown, judge_items};
use crate::model_kit::row_seed;

choice_enum! {
    /// Which orders a pair is shown in.
    pub enum Orders {
        Both = "both",
        Ab = "ab",
        Random = "random",
    }
}

operator_params! {
    /// The judge's parameters.
    pub struct JudgeParams {
        /// both orders, the pair's order (chosen = A), or one random order per pair
        orders: Orders = Orders::Both,
        /// judgements sampled per pair and order
        samples: usize [1..=64] = 1,
        /// judge at most this many pairs (0: all), a seeded subset
        max_pairs: usize [0..=100_000_000] = 0,
        // Sampled, not greedy: a greedy judge with a slight position preference gives the same
        // letter in both orders and never agrees twice, so the filter would keep nothing.
        ..judging: JudgingParams { generate.sampling.temperature = 0.8 },
    }
}

/// The judge over synthetic pairs.
pub struct Judge;

impl TypedOperator for Judge {
    type Params = JudgeParams;
    fn name(&self) -> &'static str {
        "judge"
    }
    fn version(&self) -> u32 {
        1
    }
    fn doc(&self) -> &'static str {
        "the judge's reasoning + verdict on every pair, in both A/B orders; agreement with the synthetic preference"
    }
    fn inputs(&self, _: &JudgeParams) -> Vec<Port> {
        vec![
            Port::frame("pairs", &PAIRS),
            Port::artifact("model", "checkpoint"),
        ]
    }
    fn outputs(&self, _: &JudgeParams) -> Vec<Port> {
        vec![Port::frame("judgements", &JUDGEMENTS)]
    }
    fn gpus(&self, p: &JudgeParams) -> u32 {
        p.judging.generate.device.gpus()
    }
    fn environment(&self, p: &JudgeParams) -> Vec<&'static str> {
        p.judging.generate.device.environment(&[])
    }
    fn row_shards(&self, p: &JudgeParams) -> Option<&'static str> {
        // Rows are answered from their own seeds; only `max_pairs` chooses among them.
        (p.max_pairs == 0).then_some("pairs")
    }
    fn run(&self, p: &JudgeParams, ctx: &mut RunContext<'_>) -> miette::Result<()> {
        let df = ctx.input_frame("pairs")?;
        let pair_ids = texts(&df, "pair_id")?;
        let chosen = texts(&df, "chosen")?;
        let rejected = texts(&df, "rejected")?;
        let mut pairs: Vec<usize> = (0..df.height()).collect();
        let cap = p.max_pairs;
        if cap > 0 && pairs.len() > cap {
            pairs.sort_by_key(|&i| row_seed(ctx.seed, &[&pair_ids[i], "select"]));
            pairs.truncate(cap);
            pairs.sort_unstable();
        }
        let samples = p.samples;
        let mut shown = Vec::new();
        for &i in &pairs {
            let orders: &[&'static str] = match p.orders {
                Orders::Ab => &["AB"],
                Orders::Random => {
                    let mut rng =
                        ChaCha8Rng::seed_from_u64(row_seed(ctx.seed, &[&pair_ids[i], "order"]));
                    if rng.random_bool(0.5) {
                        &["AB"]
                    } else {
                        &["BA"]
                    }
                }
                Orders::Both => &["AB", "BA"],
            };
            for &order in orders {
                for k in 0..samples {
                    let (answer_a, answer_b, preferred) = if order == "AB" {
                        (chosen[i].clone(), rejected[i].clone(), Verdict::A)
                    } else {
                        (rejected[i].clone(), chosen[i].clone(), Verdict::B)
                    };
                    shown.push(Shown {
                        pair: i,
                        order,
                        answer_a,
                        answer_b,
                        preferred,
                        seed: row_seed(ctx.seed, &[&pair_ids[i], order, &k.to_string()]),
                    });
                }
            }
        }
        let (judged, mut frame) = judge_items(ctx, &p.judging, &df, "kind", &shown)?;
        let agree = shown
            .iter()
            .zip(&judged)
            .filter(|(s, j)| j.verdict == Some(s.preferred))
            .count();
        let parsed = judged.iter().filter(|j| j.verdict.is_some()).count();
        tracing::info!(
            node = ctx.node,
            judgements = judged.len(),
            parsed,
            agree,
            "judged"
        );
        ctx.write_frame("judgements", &mut frame)?;
        Ok(())
    }
}
