//! `judgeflow judge`: one image, one question, two answers and a model directory → the judge's
//! reasoning and verdict in both orders, with the verdict's probability. The first thing to try
//! on a new checkpoint, without writing a pipeline.
//!
//! The contract: the model directory is checked as the `hf_model` source checks it (every
//! problem a diagnostic naming the file and tensor) before any weight is read; the answers are
//! judged in the order given (answer 1 as A) and swapped (answer 2 as A), with the same prompt,
//! chat template, sampling and image preprocessing as the pipeline's `judge` operator; the
//! result is deterministic for a given `--seed`. With `--json` the result is one JSON object on
//! stdout.

use std::path::{Path, PathBuf};

use burn::prelude::Backend;
use judgeflow_model::checkpoint::EXTERNAL_WEIGHTS_FILE;
use judgeflow_model::generate::SamplingConfig;
use judgeflow_model::hf_dir;
use miette::{IntoDiagnostic, WrapErr, miette};
use serde::Serialize;

use crate::judge_format::{LetterTokens, Verdict, judge_prompt, parse_verdict, reasoning_of};
use crate::model_kit::{
    DeviceChoice, ImageCache, InferTask, OnDevice, Request, generate_all, infer, load_judge,
    row_seed,
};

/// What `judgeflow judge` was asked.
#[derive(Debug, Clone)]
pub struct JudgeRequest {
    pub model: PathBuf,
    pub image: PathBuf,
    pub question: String,
    pub answer_1: String,
    pub answer_2: String,
    /// `cpu` or `cuda`.
    pub device: String,
    pub temperature: f32,
    pub top_k: usize,
    pub top_p: f32,
    pub max_tokens: usize,
    pub seed: u64,
    /// The reasoning's forced opening in each order (answer 1 first, answer 2 first); empty for
    /// none. The judge continues from it: what does it conclude from a given restatement?
    pub start: [String; 2],
}

/// The judge's answer in one order.
#[derive(Debug, Clone, Serialize)]
pub struct OrderResult {
    /// `answer 1 first` or `answer 2 first`.
    pub order: &'static str,
    /// The whole reply: the forced start, if any, then what the judge generated.
    pub output: String,
    /// The forced start of the reply (empty when none was given).
    pub start: String,
    /// The text before the verdict line.
    pub reasoning: String,
    /// `A`, `B`, or `None` when the output has no verdict line.
    pub verdict: Option<&'static str>,
    /// Which answer the verdict prefers (1 or 2).
    pub preferred_answer: Option<u8>,
    /// Probability of the verdict letter against the other letter, where it was one token.
    pub verdict_prob: Option<f64>,
}

/// Both orders, and whether they agree on an answer.
#[derive(Debug, Clone, Serialize)]
pub struct JudgeResult {
    pub model: String,
    pub orders: [OrderResult; 2],
    /// Both orders prefer the same answer.
    pub consistent: bool,
    /// The answer both orders prefer, when they agree.
    pub preferred_answer: Option<u8>,
}

struct OneShot {
    request: JudgeRequest,
    image: Vec<u8>,
}

impl InferTask for OneShot {
    type Output = JudgeResult;

    fn run<B: Backend>(self, device: B::Device) -> miette::Result<JudgeResult> {
        let r = &self.request;
        let judge = load_judge::<B>("judge", &r.model, &device)?;
        let letters = LetterTokens::new(&judge.tokenizer);
        let mut cache = ImageCache::new(&judge.model);
        let orders = [
            ("answer 1 first", &r.answer_1, &r.answer_2, &r.start[0]),
            ("answer 2 first", &r.answer_2, &r.answer_1, &r.start[1]),
        ];
        let requests: Vec<Request<'_>> = orders
            .iter()
            .map(|(label, a, b, start)| Request {
                image: &self.image,
                question: judge_prompt(&r.question, a, b),
                seed: row_seed(r.seed, &[label]),
                label: format!("{} ({label})", r.image.display()),
                start,
            })
            .collect();
        let sampling = SamplingConfig {
            temperature: r.temperature,
            top_k: r.top_k,
            top_p: r.top_p,
        };
        let replies = generate_all(
            &judge,
            &mut cache,
            &requests,
            &sampling,
            r.max_tokens,
            2,
            &letters.watch(),
            &device,
            |_| {},
        )?;
        let result = |i: usize| {
            let reply = &replies[i];
            let text = format!("{}{}", orders[i].3, reply.text);
            let verdict = parse_verdict(&text).map(|v| v.0);
            // In the swapped order, A is answer 2.
            let preferred_answer = verdict.map(|v| match (v, i) {
                (Verdict::A, 0) | (Verdict::B, 1) => 1,
                _ => 2,
            });
            OrderResult {
                order: orders[i].0,
                reasoning: reasoning_of(&text).to_string(),
                output: text,
                start: orders[i].3.clone(),
                verdict: verdict.map(Verdict::letter),
                preferred_answer,
                verdict_prob: letters.verdict_prob(&judge.tokenizer, reply),
            }
        };
        let orders = [result(0), result(1)];
        let agreed = orders[0]
            .preferred_answer
            .filter(|p| Some(*p) == orders[1].preferred_answer);
        Ok(JudgeResult {
            model: r.model.display().to_string(),
            consistent: agreed.is_some(),
            preferred_answer: agreed,
            orders,
        })
    }
}

/// Checks the model directory (unless it is an `hf_model` artifact, already checked when it was
/// made) and the image, then judges both orders.
pub fn judge_pair(request: JudgeRequest) -> miette::Result<JudgeResult> {
    let dir: &Path = &request.model;
    if !dir.join(EXTERNAL_WEIGHTS_FILE).is_file() {
        hf_dir::inspect(dir).map_err(miette::Report::new)?;
    }
    let image = std::fs::read(&request.image)
        .into_diagnostic()
        .wrap_err_with(|| format!("cannot read the image {}", request.image.display()))?;
    let choice = match request.device.as_str() {
        "cpu" => DeviceChoice::Cpu,
        "cuda" => DeviceChoice::Cuda,
        other => {
            return Err(miette!(
                code = "judgeflow::judge::device",
                help = "`--device cpu` or `--device cuda`",
                "unknown device `{other}`"
            ));
        }
    };
    infer(
        "judge",
        OnDevice::new(choice, &[]),
        OneShot { request, image },
    )
}

/// The human-readable report of a result.
pub fn render_text(result: &JudgeResult) -> String {
    let mut out = format!("model: {}\n", result.model);
    for order in &result.orders {
        out.push_str(&format!("\n== {} ==\n", order.order));
        if !order.start.is_empty() {
            out.push_str(&format!("forced start: {}\n", order.start.trim()));
        }
        out.push_str(&format!("reasoning: {}\n", order.reasoning.trim()));
        match (order.verdict, order.preferred_answer) {
            (Some(letter), Some(answer)) => {
                out.push_str(&format!("verdict: Answer {letter} (answer {answer})"));
                match order.verdict_prob {
                    Some(p) => out.push_str(&format!(", probability {p:.3}\n")),
                    None => out.push_str(", probability unknown (letter not one token)\n"),
                }
            }
            _ => out.push_str("verdict: none (no \"Overall Judgment: Answer X\" line)\n"),
        }
    }
    out.push_str(&match result.preferred_answer {
        Some(answer) => format!("\nboth orders prefer answer {answer}\n"),
        None => "\nthe orders do not agree on an answer\n".to_string(),
    });
    out
}
