//! `op = "sample"`: N answers per prompt from a model. The paper samples 16 answers at T 0.6,
//! top-p 0.9, top-k 50 for closed-ended prompts (majority vote) and takes one answer for
//! open-ended prompts (to corrupt).
//!
//! Every answer draws from its own seed, derived from the node seed, the prompt id and the
//! sample index, so answers do not depend on batch size or on which other prompts are present.

use burn::prelude::Backend;
use judgeflow_engine::{NodeProgress, Operator, ParamKind, ParamSpec, Params, Port, RunContext};
use judgeflow_schemas::{PROMPTS, SAMPLES};
use polars::prelude::{Column, DataFrame, IdxCa, IdxSize, IntoColumn, NamedFrom, Series};

use crate::frames::{bins, bools, texts};
use crate::model_kit::{
    ImageCache, InferTask, Request, batch_param, device_choice, device_param, generate_all,
    gpus_for, infer, load_judge, row_seed, sampling, sampling_params,
};

/// Samples answers.
pub struct Sample;

impl Operator for Sample {
    fn name(&self) -> &'static str {
        "sample"
    }
    fn version(&self) -> u32 {
        1
    }
    fn doc(&self) -> &'static str {
        "N answers per prompt from a model (paper: 16 at T 0.6, top-p 0.9, top-k 50)"
    }
    fn params(&self) -> Vec<ParamSpec> {
        let mut p = vec![
            ParamSpec::new(
                "n",
                ParamKind::Int { min: 1, max: 1024 },
                "answers per prompt",
            )
            .default(16),
            ParamSpec::new(
                "max_tokens",
                ParamKind::Int { min: 1, max: 8192 },
                "most tokens per answer",
            )
            .default(64),
            ParamSpec::new(
                "prompts",
                ParamKind::Choice(&["all", "open", "closed"]),
                "which prompts to answer (open: captions and long answers; closed: short answers)",
            )
            .default("all"),
            ParamSpec::new(
                "limit",
                ParamKind::Int {
                    min: 0,
                    max: 100_000_000,
                },
                "answer at most this many prompts (0: all), a seeded choice",
            )
            .default(0),
            batch_param(64),
            device_param(),
        ];
        p.extend(sampling_params(0.6));
        p
    }
    fn inputs(&self, _: &Params) -> Vec<Port> {
        vec![
            Port::frame("prompts", &PROMPTS),
            Port::artifact("model", "checkpoint"),
        ]
    }
    fn outputs(&self, _: &Params) -> Vec<Port> {
        vec![Port::frame("samples", &SAMPLES)]
    }
    fn gpus(&self, params: &Params) -> u32 {
        gpus_for(params)
    }
    fn run(&self, ctx: &mut RunContext<'_>) -> miette::Result<()> {
        let prompts = ctx.input_frame("prompts")?;
        let chosen = select_prompts(
            &prompts,
            ctx.params.str("prompts"),
            ctx.params.usize("limit"),
            ctx.seed,
        )?;
        let prompts = prompts
            .take(&IdxCa::from_vec("idx".into(), chosen))
            .map_err(|e| miette::miette!("{e}"))?;
        let n = ctx.params.usize("n");
        let job = Job {
            node: ctx.node.to_string(),
            params: ctx.params.clone(),
            seed: ctx.seed,
            prompts: prompts.clone(),
            model_dir: ctx.input_dir("model")?.to_path_buf(),
            bar: ctx.progress((prompts.height() * n) as u64, "answers"),
        };
        let answers = infer(ctx.node, device_choice(ctx.params), job)?;
        // Each prompt row repeated n times, with its sample index and answer.
        let repeat: Vec<IdxSize> = (0..prompts.height())
            .flat_map(|i| std::iter::repeat_n(i as IdxSize, n))
            .collect();
        let mut out = prompts
            .take(&IdxCa::from_vec("idx".into(), repeat))
            .map_err(|e| miette::miette!("{e}"))?;
        let index: Vec<i64> = (0..prompts.height()).flat_map(|_| 0..n as i64).collect();
        out.with_column(Series::new("sample_index".into(), index).into_column())
            .map_err(|e| miette::miette!("{e}"))?;
        out.with_column(Column::new("answer".into(), answers))
            .map_err(|e| miette::miette!("{e}"))?;
        ctx.write_frame("samples", &mut out)?;
        Ok(())
    }
}

/// Row indices of the prompts to answer: the open/closed selection, then a seeded subset of
/// `limit` rows (kept in frame order).
fn select_prompts(
    prompts: &DataFrame,
    which: &str,
    limit: usize,
    seed: u64,
) -> miette::Result<Vec<IdxSize>> {
    let open = bools(prompts, "open")?;
    let ids = texts(prompts, "prompt_id")?;
    let mut rows: Vec<usize> = (0..prompts.height())
        .filter(|&i| match which {
            "open" => open[i] == Some(true),
            "closed" => open[i] == Some(false),
            _ => true,
        })
        .collect();
    if limit > 0 && rows.len() > limit {
        // Rank by a per-row hash: a stable choice that does not depend on row order.
        rows.sort_by_key(|&i| row_seed(seed, &[&ids[i], "select"]));
        rows.truncate(limit);
        rows.sort_unstable();
    }
    Ok(rows.into_iter().map(|i| i as IdxSize).collect())
}

struct Job {
    node: String,
    params: Params,
    seed: u64,
    prompts: DataFrame,
    model_dir: std::path::PathBuf,
    bar: NodeProgress,
}

impl InferTask for Job {
    type Output = Vec<String>;

    fn run<B: Backend>(self, device: B::Device) -> miette::Result<Vec<String>> {
        let judge = load_judge::<B>(&self.node, &self.model_dir, &device)?;
        let mut images = ImageCache::new(&judge.model);
        let ids = texts(&self.prompts, "prompt_id")?;
        let questions = texts(&self.prompts, "question")?;
        let pictures = bins(&self.prompts, "image")?;
        let n = self.params.usize("n");
        let mut requests = Vec::with_capacity(ids.len() * n);
        for i in 0..ids.len() {
            for k in 0..n {
                requests.push(Request {
                    image: &pictures[i],
                    question: questions[i].clone(),
                    seed: row_seed(self.seed, &[&ids[i], &k.to_string()]),
                    label: format!("prompt `{}`", ids[i]),
                });
            }
        }
        let mut done = 0;
        let replies = generate_all(
            &judge,
            &mut images,
            &requests,
            &sampling(&self.params),
            self.params.usize("max_tokens"),
            self.params.usize("batch_size"),
            &[],
            &device,
            |finished| {
                self.bar.inc((finished - done) as u64);
                done = finished;
            },
        )?;
        Ok(replies
            .into_iter()
            .map(|r| r.text.trim().to_string())
            .collect())
    }
}
