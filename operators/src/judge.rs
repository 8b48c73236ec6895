//! `op = "judge"`: the judge writes reasoning and a verdict for every synthetic pair, in both
//! presentation orders (or one), `samples` times per order at `temperature`, and each verdict
//! is compared with the synthetic preference.
//!
//! Outputs are parsed with [`parse_verdict`]; unparseable outputs are kept (verdict null,
//! `agrees` false) so that the filter and the report can count them. The verdict's
//! probability is read from the logits at the step that wrote the verdict letter (A against
//! B), without another forward pass.

use burn::prelude::Backend;
use judgeflow_engine::{NodeProgress, Operator, ParamKind, ParamSpec, Params, Port, RunContext};
use judgeflow_schemas::{JUDGEMENTS, PAIRS};
use polars::prelude::{Column, DataFrame};
use rand::Rng;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::frames::{binary_column, bins, frame, texts};
use crate::judge_format::{LetterTokens, Verdict, judge_prompt, parse_verdict};
use crate::model_kit::{
    ImageCache, InferTask, Request, batch_param, device_for, device_param, generate_all, gpus_for,
    infer, load_judge, row_seed, sampling, sampling_params,
};

/// One pair shown to the judge in one order.
pub(crate) struct Shown {
    pub pair: usize,
    pub order: &'static str,
    pub answer_a: String,
    pub answer_b: String,
    /// Where the answer that should win sits in this order.
    pub preferred: Verdict,
    pub seed: u64,
}

/// The judge's answer on one [`Shown`] item.
pub(crate) struct Judgement {
    pub output: String,
    pub verdict: Option<Verdict>,
    pub verdict_prob: Option<f64>,
}

/// Runs a judge checkpoint over shown items (the core of `judge` and `evaluate`).
struct JudgeRun<'a> {
    node: String,
    params: Params,
    model_dir: std::path::PathBuf,
    images: &'a [Vec<u8>],
    questions: &'a [String],
    shown: &'a [Shown],
    bar: NodeProgress,
}

impl InferTask for JudgeRun<'_> {
    type Output = Vec<Judgement>;

    fn run<B: Backend>(self, device: B::Device) -> miette::Result<Vec<Judgement>> {
        let judge = load_judge::<B>(&self.node, &self.model_dir, &device)?;
        let letters = LetterTokens::new(&judge.tokenizer);
        let mut cache = ImageCache::new(&judge.model);
        let requests: Vec<Request<'_>> = self
            .shown
            .iter()
            .map(|s| Request {
                image: &self.images[s.pair],
                question: judge_prompt(&self.questions[s.pair], &s.answer_a, &s.answer_b),
                seed: s.seed,
                label: format!("pair row {}", s.pair),
            })
            .collect();
        let mut done = 0;
        let replies = generate_all(
            &judge,
            &mut cache,
            &requests,
            &sampling(&self.params),
            self.params.usize("max_tokens"),
            self.params.usize("batch_size"),
            &letters.watch(),
            &device,
            |finished| {
                self.bar.inc((finished - done) as u64);
                done = finished;
            },
        )?;
        Ok(replies
            .iter()
            .map(|reply| Judgement {
                output: reply.text.clone(),
                verdict: parse_verdict(&reply.text).map(|v| v.0),
                verdict_prob: letters.verdict_prob(&judge.tokenizer, reply),
            })
            .collect())
    }
}

/// Parameters of generating judgements (shared with `evaluate`), sampling at `temperature`.
pub(crate) fn judging_params(temperature: f64) -> Vec<ParamSpec> {
    let mut p = vec![
        ParamSpec::new(
            "max_tokens",
            ParamKind::Int { min: 1, max: 8192 },
            "most tokens of reasoning + verdict",
        )
        .default(128),
        batch_param(32),
        device_param(),
    ];
    p.extend(sampling_params(temperature));
    p
}

/// The judgements frame.
struct JudgementRows<'a> {
    pair_ids: &'a [String],
    images: &'a [Vec<u8>],
    questions: &'a [String],
    kinds: &'a [String],
    sources: &'a [String],
}

impl JudgementRows<'_> {
    fn frame(&self, shown: &[Shown], judged: &[Judgement]) -> miette::Result<DataFrame> {
        let pick = |v: &[String]| {
            Column::new(
                "x".into(),
                shown.iter().map(|s| v[s.pair].clone()).collect::<Vec<_>>(),
            )
        };
        let named = |c: Column, name: &str| c.with_name(name.into());
        let images: Vec<Vec<u8>> = shown.iter().map(|s| self.images[s.pair].clone()).collect();
        frame(vec![
            named(pick(self.pair_ids), "pair_id"),
            binary_column("image", &images),
            named(pick(self.questions), "question"),
            Column::new(
                "order".into(),
                shown.iter().map(|s| s.order).collect::<Vec<_>>(),
            ),
            Column::new(
                "answer_a".into(),
                shown.iter().map(|s| s.answer_a.clone()).collect::<Vec<_>>(),
            ),
            Column::new(
                "answer_b".into(),
                shown.iter().map(|s| s.answer_b.clone()).collect::<Vec<_>>(),
            ),
            Column::new(
                "preferred".into(),
                shown
                    .iter()
                    .map(|s| s.preferred.letter())
                    .collect::<Vec<_>>(),
            ),
            named(pick(self.kinds), "kind"),
            named(pick(self.sources), "source"),
            Column::new(
                "output".into(),
                judged.iter().map(|j| j.output.clone()).collect::<Vec<_>>(),
            ),
            Column::new(
                "verdict".into(),
                judged
                    .iter()
                    .map(|j| j.verdict.map(Verdict::letter))
                    .collect::<Vec<_>>(),
            ),
            Column::new(
                "verdict_prob".into(),
                judged.iter().map(|j| j.verdict_prob).collect::<Vec<_>>(),
            ),
            Column::new(
                "agrees".into(),
                shown
                    .iter()
                    .zip(judged)
                    .map(|(s, j)| j.verdict == Some(s.preferred))
                    .collect::<Vec<_>>(),
            ),
        ])
    }
}

/// Runs the node's `model` over `shown` items of `df` (a pairs or bench frame: `pair_id`,
/// `image`, `question`, `source`, and `kind_column` naming each item's kind) and returns the
/// judgements with their frame.
pub(crate) fn judge_items(
    ctx: &RunContext<'_>,
    df: &DataFrame,
    kind_column: &str,
    shown: &[Shown],
) -> miette::Result<(Vec<Judgement>, DataFrame)> {
    let images = bins(df, "image")?;
    let questions = texts(df, "question")?;
    let run = JudgeRun {
        node: ctx.node.to_string(),
        params: ctx.params.clone(),
        model_dir: ctx.input_dir("model")?.to_path_buf(),
        images: &images,
        questions: &questions,
        shown,
        bar: ctx.progress(shown.len() as u64, "judgements"),
    };
    let judged = infer(ctx.node, device_for(ctx), run)?;
    let rows = JudgementRows {
        pair_ids: &texts(df, "pair_id")?,
        images: &images,
        questions: &questions,
        kinds: &texts(df, kind_column)?,
        sources: &texts(df, "source")?,
    };
    let frame = rows.frame(shown, &judged)?;
    Ok((judged, frame))
}

/// The judge over synthetic pairs.
pub struct Judge;

impl Operator for Judge {
    fn name(&self) -> &'static str {
        "judge"
    }
    fn version(&self) -> u32 {
        1
    }
    fn doc(&self) -> &'static str {
        "the judge's reasoning + verdict on every pair, in both A/B orders; agreement with the synthetic preference"
    }
    fn params(&self) -> Vec<ParamSpec> {
        let mut p = vec![
            ParamSpec::new(
                "orders",
                ParamKind::Choice(&["both", "ab", "random"]),
                "both orders, the pair's order (chosen = A), or one random order per pair",
            )
            .default("both"),
            ParamSpec::new(
                "samples",
                ParamKind::Int { min: 1, max: 64 },
                "judgements sampled per pair and order",
            )
            .default(1),
            ParamSpec::new(
                "max_pairs",
                ParamKind::Int {
                    min: 0,
                    max: 100_000_000,
                },
                "judge at most this many pairs (0: all), a seeded subset",
            )
            .default(0),
        ];
        // Sampled, not greedy: a greedy judge with a slight position preference gives the same
        // letter in both orders and never agrees twice, so the filter would keep nothing.
        p.extend(judging_params(0.8));
        p
    }
    fn inputs(&self, _: &Params) -> Vec<Port> {
        vec![
            Port::frame("pairs", &PAIRS),
            Port::artifact("model", "checkpoint"),
        ]
    }
    fn outputs(&self, _: &Params) -> Vec<Port> {
        vec![Port::frame("judgements", &JUDGEMENTS)]
    }
    fn gpus(&self, params: &Params) -> u32 {
        gpus_for(params)
    }
    fn row_shards(&self, params: &Params) -> Option<&'static str> {
        // Rows are answered from their own seeds; only `max_pairs` chooses among them.
        (params.int("max_pairs") == 0).then_some("pairs")
    }
    fn run(&self, ctx: &mut RunContext<'_>) -> miette::Result<()> {
        let df = ctx.input_frame("pairs")?;
        let pair_ids = texts(&df, "pair_id")?;
        let chosen = texts(&df, "chosen")?;
        let rejected = texts(&df, "rejected")?;
        let mut pairs: Vec<usize> = (0..df.height()).collect();
        let cap = ctx.params.usize("max_pairs");
        if cap > 0 && pairs.len() > cap {
            pairs.sort_by_key(|&i| row_seed(ctx.seed, &[&pair_ids[i], "select"]));
            pairs.truncate(cap);
            pairs.sort_unstable();
        }
        let samples = ctx.params.usize("samples");
        let mut shown = Vec::new();
        for &i in &pairs {
            let orders: &[&'static str] = match ctx.params.str("orders") {
                "ab" => &["AB"],
                "random" => {
                    let mut rng =
                        ChaCha8Rng::seed_from_u64(row_seed(ctx.seed, &[&pair_ids[i], "order"]));
                    if rng.random_bool(0.5) {
                        &["AB"]
                    } else {
                        &["BA"]
                    }
                }
                _ => &["AB", "BA"],
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
        let (judged, mut frame) = judge_items(ctx, &df, "kind", &shown)?;
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
