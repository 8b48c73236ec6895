//! `op = "sample"`: N answers per prompt from a model. The paper samples 16 answers at T 0.6,
//! top-p 0.9, top-k 50 for closed-ended prompts (majority vote) and takes one answer for
//! open-ended prompts (to corrupt).
//!
//! Every answer draws from its own seed, derived from the node seed, the prompt id and the
//! sample index, so answers do not depend on batch size or on which other prompts are present.

use burn::prelude::Backend;
use judgeflow_engine::{
    NodeProgress, Port, RunContext, TypedOperator, choice_enum, operator_params,
};
use judgeflow_schemas::{PROMPTS, SAMPLES};
use judgeflow_world::TaskType;
use polars::prelude::{Column, DataFrame, IdxCa, IdxSize, IntoColumn, NamedFrom, Series};

use crate::frames::{bins, bools, frame_error, texts};
use crate::model_kit::{
    GenerateParams, ImageCache, InferTask, Request, generate_all, infer, load_judge, row_seed,
};

choice_enum! {
    /// Which prompts are answered.
    pub enum Which {
        All = "all",
        Open = "open",
        Closed = "closed",
        Reasoning = "reasoning",
    }
}

choice_enum! {
    /// How `limit` chooses (see [`Subset`]).
    pub enum SubsetChoice {
        Seeded = "seeded",
        Disjoint = "disjoint",
    }
}

operator_params! {
    /// The sampler's parameters.
    pub struct SampleParams {
        /// answers per prompt
        n: usize [1..=1024] = 16,
        /// most tokens per answer
        max_tokens: usize [1..=8192] = 64,
        /// which prompts to answer (open: captions and long answers; closed: short answers;
        /// reasoning: closed-ended questions asked with their reasoning, task `reasoning`,
        /// whose final answer a vote compares; `all`: every prompt)
        prompts: Which = Which::All,
        /// answer at most this many prompts (0: all), a seeded choice
        limit: usize [0..=100_000_000] = 0,
        /// with `limit`: `seeded` draws a fresh subset per node seed (subsets of
        /// iterations may overlap); `disjoint` gives iteration k the k-th block of
        /// `limit` prompts of one fixed order, so no prompt is used twice
        subset: SubsetChoice = SubsetChoice::Seeded,
        ..generate: GenerateParams { batch_size = 64, sampling.temperature = 0.6 },
    }
}

/// Samples answers.
pub struct Sample;

impl TypedOperator for Sample {
    type Params = SampleParams;
    fn name(&self) -> &'static str {
        "sample"
    }
    fn version(&self) -> u32 {
        // 2: `prompts = "closed"` leaves out prompts of task `reasoning` (`"reasoning"` picks them).
        2
    }
    fn doc(&self) -> &'static str {
        "N answers per prompt from a model (paper: 16 at T 0.6, top-p 0.9, top-k 50)"
    }
    fn inputs(&self, _: &SampleParams) -> Vec<Port> {
        vec![
            Port::frame("prompts", &PROMPTS),
            Port::artifact("model", "checkpoint"),
        ]
    }
    fn outputs(&self, _: &SampleParams) -> Vec<Port> {
        vec![Port::frame("samples", &SAMPLES)]
    }
    fn gpus(&self, p: &SampleParams) -> u32 {
        p.generate.device.gpus()
    }
    fn environment(&self, p: &SampleParams) -> Vec<&'static str> {
        p.generate.device.environment(&[])
    }
    fn row_shards(&self, p: &SampleParams) -> Option<&'static str> {
        // Rows are answered from their own seeds; only `limit` chooses among them.
        (p.limit == 0).then_some("prompts")
    }
    fn run(&self, p: &SampleParams, ctx: &mut RunContext<'_>) -> miette::Result<()> {
        let prompts = ctx.input_frame("prompts")?;
        let subset = match p.subset {
            SubsetChoice::Disjoint => Subset::Block(ctx.iteration.unwrap_or(1).max(1) as usize - 1),
            SubsetChoice::Seeded => Subset::Seeded(ctx.seed),
        };
        let chosen = select_prompts(ctx.node, &prompts, p.prompts, p.limit, subset)?;
        let prompts = prompts
            .take(&IdxCa::from_vec("idx".into(), chosen))
            .map_err(frame_error(ctx.node, "picking the prompts"))?;
        let n = p.n;
        let job = Job {
            node: ctx.node.to_string(),
            params: p.clone(),
            seed: ctx.seed,
            prompts: prompts.clone(),
            model_dir: ctx.input_dir("model")?.to_path_buf(),
            bar: ctx.progress((prompts.height() * n) as u64, "answers"),
        };
        let answers = infer(ctx.node, p.generate.device.on(ctx), job)?;
        // Each prompt row repeated n times, with its sample index and answer.
        let repeat: Vec<IdxSize> = (0..prompts.height())
            .flat_map(|i| std::iter::repeat_n(i as IdxSize, n))
            .collect();
        let mut out = prompts
            .take(&IdxCa::from_vec("idx".into(), repeat))
            .map_err(frame_error(ctx.node, "repeating each prompt row n times"))?;
        let index: Vec<i64> = (0..prompts.height()).flat_map(|_| 0..n as i64).collect();
        out.with_column(Series::new("sample_index".into(), index).into_column())
            .map_err(frame_error(ctx.node, "adding the sample index"))?;
        out.with_column(Column::new("answer".into(), answers))
            .map_err(frame_error(ctx.node, "adding the answers"))?;
        ctx.write_frame("samples", &mut out)?;
        Ok(())
    }
}

/// How `limit` picks its prompts.
#[derive(Clone, Copy, Debug)]
enum Subset {
    /// A subset ranked by a hash of the node seed and the prompt id: each iteration (whose
    /// seed differs) draws afresh, so subsets may overlap.
    Seeded(u64),
    /// Block `k` (0-based: iteration k + 1) of one fixed order of the prompts (ranked by a hash
    /// of the prompt id alone, so every iteration sees the same order): disjoint blocks.
    Block(usize),
}

/// Row indices of the prompts to answer: the open/closed selection, then `limit` rows of it
/// chosen as `subset` says (kept in frame order).
fn select_prompts(
    node: &str,
    prompts: &DataFrame,
    which: Which,
    limit: usize,
    subset: Subset,
) -> miette::Result<Vec<IdxSize>> {
    let open = bools(prompts, "open")?;
    let ids = texts(prompts, "prompt_id")?;
    let tasks = texts(prompts, "task")?;
    let reasoning = |i: usize| tasks[i] == TaskType::Reasoning.name();
    let mut rows: Vec<usize> = (0..prompts.height())
        .filter(|&i| match which {
            Which::Open => open[i] == Some(true),
            Which::Closed => open[i] == Some(false) && !reasoning(i),
            Which::Reasoning => open[i] == Some(false) && reasoning(i),
            Which::All => true,
        })
        .collect();
    match subset {
        Subset::Seeded(seed) if limit > 0 && rows.len() > limit => {
            // Rank by a per-row hash: a stable choice that does not depend on row order.
            rows.sort_by_key(|&i| row_seed(seed, &[&ids[i], "select"]));
            rows.truncate(limit);
        }
        Subset::Block(k) if limit > 0 => {
            let (start, end) = (k * limit, (k + 1) * limit);
            if end > rows.len() {
                return Err(miette::miette!(
                    code = "judgeflow::sample::subset",
                    help = "draw more scenes (the world's `count`), lower `limit`, or use `subset = \"seeded\"`",
                    "node `{node}`: iteration {} needs {which} prompts {start}..{end} for disjoint \
                     subsets, but the input has {}",
                    k + 1,
                    rows.len()
                ));
            }
            rows.sort_by_key(|&i| row_seed(0, &[&ids[i], "disjoint"]));
            rows = rows[start..end].to_vec();
        }
        _ => {}
    }
    rows.sort_unstable();
    Ok(rows.into_iter().map(|i| i as IdxSize).collect())
}

struct Job {
    node: String,
    params: SampleParams,
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
        let n = self.params.n;
        let mut requests = Vec::with_capacity(ids.len() * n);
        for i in 0..ids.len() {
            for k in 0..n {
                requests.push(Request {
                    image: &pictures[i],
                    question: questions[i].clone(),
                    seed: row_seed(self.seed, &[&ids[i], &k.to_string()]),
                    label: format!("prompt `{}`", ids[i]),
                    start: "",
                });
            }
        }
        let mut done = 0;
        let replies = generate_all(
            &judge,
            &mut images,
            &requests,
            &self.params.generate.sampling.config(),
            self.params.max_tokens,
            self.params.generate.batch_size,
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

#[cfg(test)]
mod tests {
    use super::*;

    /// `n` prompts, open and closed by turns (task `caption` and `count`).
    fn prompts(n: usize) -> DataFrame {
        prompts_of(
            &(0..n)
                .map(|i| if i % 2 == 0 { "caption" } else { "count" })
                .collect::<Vec<_>>(),
        )
    }

    /// One prompt per task name, open exactly when the task is `caption`.
    fn prompts_of(tasks: &[&str]) -> DataFrame {
        DataFrame::new_infer_height(vec![
            Column::new(
                "prompt_id".into(),
                (0..tasks.len())
                    .map(|i| format!("p{i}"))
                    .collect::<Vec<_>>(),
            ),
            Column::new(
                "open".into(),
                tasks.iter().map(|t| *t == "caption").collect::<Vec<_>>(),
            ),
            Column::new("task".into(), tasks.to_vec()),
        ])
        .expect("frame")
    }

    #[test]
    fn reasoning_prompts_are_chosen_apart_from_short_closed_ones() {
        let tasks = [
            "caption",
            "count",
            "reasoning",
            "color",
            "reasoning",
            "caption",
        ];
        let df = prompts_of(&tasks);
        let pick = |which| {
            select_prompts("s", &df, which, 0, Subset::Seeded(1))
                .expect("ok")
                .into_iter()
                .map(|i| tasks[i as usize])
                .collect::<Vec<_>>()
        };
        assert_eq!(pick(Which::Closed), ["count", "color"]);
        assert_eq!(pick(Which::Reasoning), ["reasoning", "reasoning"]);
        assert_eq!(pick(Which::Open), ["caption", "caption"]);
        assert_eq!(pick(Which::All).len(), tasks.len());
    }

    #[test]
    fn disjoint_blocks_never_repeat_a_prompt_and_cover_the_input() {
        let df = prompts(40);
        let blocks: Vec<Vec<IdxSize>> = (0..4)
            .map(|k| select_prompts("s", &df, Which::Closed, 5, Subset::Block(k)).expect("fits"))
            .collect();
        let mut all: Vec<IdxSize> = blocks.concat();
        assert!(blocks.iter().all(|b| b.len() == 5));
        assert!(all.iter().all(|&i| i % 2 == 1), "closed rows only");
        all.sort_unstable();
        all.dedup();
        assert_eq!(
            all.len(),
            20,
            "4 blocks of 5 cover the 20 closed prompts once each"
        );
        // The fifth block would need prompts 20..25 of 20: a diagnostic, not a wrap-around.
        let err =
            select_prompts("s", &df, Which::Closed, 5, Subset::Block(4)).expect_err("too few");
        assert!(err.to_string().contains("iteration 5"), "{err}");
    }

    #[test]
    fn seeded_subsets_differ_between_seeds() {
        let df = prompts(200);
        let a = select_prompts("s", &df, Which::All, 50, Subset::Seeded(1)).expect("ok");
        let b = select_prompts("s", &df, Which::All, 50, Subset::Seeded(2)).expect("ok");
        assert_eq!(a.len(), 50);
        assert_ne!(a, b);
    }
}
