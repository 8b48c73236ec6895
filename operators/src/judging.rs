//! Judging shared by `judge` and `evaluate`: items shown to the judge in one order ([`Shown`]),
//! a judge checkpoint run over them ([`judge_items`]), which returns the judgements and their
//! frame, and the parameters of generating judgements ([`JudgingParams`]).
//!
//! Outputs are parsed with [`parse_verdict`]; unparseable outputs are kept (verdict null,
//! `agrees` false) so that the filter and the report can count them. The verdict's
//! probability is read from the logits at the step that wrote the verdict letter (A against
//! B), without another forward pass.

use burn::prelude::Backend;
use judgeflow_engine::{NodeProgress, RunContext, operator_params};
use polars::prelude::{Column, DataFrame};

use crate::frames::{binary_column, bins, frame, texts};
use crate::judge_format::{LetterTokens, Verdict, judge_prompt, parse_verdict};
use crate::model_kit::{
    GenerateParams, ImageCache, InferTask, Request, generate_all, infer, load_judge,
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
    params: JudgingParams,
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
            &self.params.generate.sampling.config(),
            self.params.max_tokens,
            self.params.generate.batch_size,
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

operator_params! {
    /// Parameters of generating judgements (shared with `evaluate`, which sets the default
    /// `generate.sampling.temperature`).
    pub struct JudgingParams {
        /// most tokens of reasoning + verdict
        max_tokens: usize [1..=8192] = 128,
        ..generate: GenerateParams,
    }
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
    params: &JudgingParams,
    df: &DataFrame,
    kind_column: &str,
    shown: &[Shown],
) -> miette::Result<(Vec<Judgement>, DataFrame)> {
    let images = bins(df, "image")?;
    let questions = texts(df, "question")?;
    let run = JudgeRun {
        node: ctx.node.to_string(),
        params: params.clone(),
        model_dir: ctx.input_dir("model")?.to_path_buf(),
        images: &images,
        questions: &questions,
        shown,
        bar: ctx.progress(shown.len() as u64, "judgements"),
    };
    let judged = infer(ctx.node, params.generate.device.on(ctx), run)?;
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
