//! `run` (the pipeline, or the selected nodes and what they need) and `exec-node` (one node
//! from its task file, in a worker process that `--executor subprocess|slurm` started).

use std::fmt::Write as _;
use std::path::Path;

use super::{Ctx, PipelineArgs, load};
use crate::cache::Cache;
use crate::error::Result;
use crate::exec::{self, Outcome, RunOptions};
use crate::executor::ExecutorKind;
use crate::progress::ProgressHub;

/// `run`: reuses fresh nodes, runs dirty ones, prints one line per node and where the trace is.
pub(super) fn run(
    ctx: &Ctx<'_>,
    args: &PipelineArgs,
    nodes: &[String],
    jobs: Option<usize>,
    gpus: Option<usize>,
    executor: Option<ExecutorKind>,
    out: &mut String,
) -> Result<()> {
    let mut plan = load(&args.pipeline, ctx.registry, &args.set)?;
    plan.select(nodes)?;
    let cache = Cache::open(ctx.cache)?;
    let started = std::time::Instant::now();
    let opts = RunOptions {
        jobs: jobs.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())),
        gpus: gpus.unwrap_or_else(visible_gpus),
    };
    let mut on = plan.executor.clone();
    on.kind = executor.unwrap_or(on.kind);
    let (reports, trace) = exec::run_traced_on(&plan, &cache, &opts, &ProgressHub::new(true), &on)?;
    let ran = reports.iter().filter(|r| r.outcome == Outcome::Ran).count();
    for r in &reports {
        let what = match r.outcome {
            Outcome::Ran => format!("ran    {:>8.2}s", r.seconds),
            Outcome::Fresh => "fresh           ".to_string(),
            Outcome::Skipped => "skipped         ".to_string(),
        };
        let _ = writeln!(out, "{what}  {}", r.node);
    }
    let _ = writeln!(
        out,
        "{} nodes: {ran} ran, {} fresh in {:.2}s",
        reports.len(),
        reports.len() - ran,
        started.elapsed().as_secs_f64()
    );
    if let Some(trace) = trace {
        let _ = writeln!(out, "trace: {}", trace.display());
    }
    Ok(())
}

/// `exec-node`: runs the node a task file describes (in a worker process).
pub(super) fn exec_node(ctx: &Ctx<'_>, task: &Path, out: &mut String) -> Result<()> {
    let said = crate::executor::exec_node(task, ctx.registry)?;
    let _ = writeln!(out, "{said}");
    Ok(())
}

/// GPUs named in CUDA_VISIBLE_DEVICES, else 1 (GPU nodes then run one at a time).
fn visible_gpus() -> usize {
    std::env::var("CUDA_VISIBLE_DEVICES")
        .ok()
        .map(|v| v.split(',').filter(|s| !s.trim().is_empty()).count())
        .filter(|&n| n > 0)
        .unwrap_or(1)
}
