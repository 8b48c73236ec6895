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
use judgeflow_schemas::{FrameRow, JudgementRow};
use miette::IntoDiagnostic;
use polars::prelude::DataFrame;

use crate::frames::{bins, texts};
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
                start: "",
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

/// The judged pairs' columns, which every judgement row of a pair repeats.
struct PairColumns<'a> {
    pair_ids: &'a [String],
    images: &'a [Vec<u8>],
    questions: &'a [String],
    kinds: &'a [String],
    sources: &'a [String],
}

impl PairColumns<'_> {
    fn frame(&self, shown: &[Shown], judged: &[Judgement]) -> miette::Result<DataFrame> {
        let rows = shown
            .iter()
            .zip(judged)
            .map(|(s, j)| JudgementRow {
                pair_id: self.pair_ids[s.pair].clone(),
                image: self.images[s.pair].clone(),
                question: self.questions[s.pair].clone(),
                order: s.order.to_string(),
                answer_a: s.answer_a.clone(),
                answer_b: s.answer_b.clone(),
                preferred: s.preferred.letter().to_string(),
                kind: self.kinds[s.pair].clone(),
                source: self.sources[s.pair].clone(),
                output: j.output.clone(),
                verdict: j.verdict.map(|v| v.letter().to_string()),
                verdict_prob: j.verdict_prob,
                agrees: j.verdict == Some(s.preferred),
            })
            .collect();
        JudgementRow::into_frame(rows).into_diagnostic()
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
    let rows = PairColumns {
        pair_ids: &texts(df, "pair_id")?,
        images: &images,
        questions: &questions,
        kinds: &texts(df, kind_column)?,
        sources: &texts(df, "source")?,
    };
    let frame = rows.frame(shown, &judged)?;
    Ok((judged, frame))
}
