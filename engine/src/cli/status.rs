//! `check` (is the pipeline valid?), `plan` (is each node fresh, dirty or waiting, and why?)
//! and `explain` (every ingredient of one node that changed since its last run).

use std::fmt::Write as _;

use super::{Ctx, PipelineArgs, load, log_line};
use crate::cache::Cache;
use crate::error::Result;
use crate::exec::{self, Status};

/// `check`: plans the pipeline and says how many nodes and variants it has.
pub(super) fn check(ctx: &Ctx<'_>, args: &PipelineArgs, out: &mut String) -> Result<()> {
    let plan = load(&args.pipeline, ctx.registry, &args.set)?;
    let _ = writeln!(
        out,
        "pipeline `{}` is valid: {} nodes, {} variant(s)",
        plan.name,
        plan.order.len(),
        plan.variants.len()
    );
    Ok(())
}

/// `plan`: each (selected) node's status, as text or JSON.
pub(super) fn plan(
    ctx: &Ctx<'_>,
    args: &PipelineArgs,
    nodes: &[String],
    json: bool,
    out: &mut String,
) -> Result<()> {
    let mut plan = load(&args.pipeline, ctx.registry, &args.set)?;
    plan.select(nodes)?;
    let cache = Cache::open(ctx.cache)?;
    let statuses = exec::status(&plan, &cache)?;
    if json {
        let rows: Vec<serde_json::Value> = statuses
            .iter()
            .map(|(i, s)| {
                let n = &plan.graph[*i];
                serde_json::json!({
                    "node": n.name,
                    "op": n.op.name(),
                    "status": s,
                    "variants": n.variants.iter().map(|&v| plan.variants[v].label.clone()).collect::<Vec<_>>(),
                })
            })
            .collect();
        let _ = writeln!(
            out,
            "{}",
            serde_json::to_string_pretty(&rows).expect("json")
        );
    } else {
        let width = statuses
            .iter()
            .map(|(i, _)| plan.graph[*i].name.len())
            .max()
            .unwrap_or(0);
        for (i, s) in &statuses {
            let name = &plan.graph[*i].name;
            let (state, why) = match s {
                Status::Fresh { .. } => ("fresh  ", String::new()),
                Status::Dirty { why, .. } => ("dirty  ", joined(why)),
                Status::Waiting { upstream, why } => {
                    let mut all = vec![format!("after {}", upstream.join(", "))];
                    all.extend(why.iter().map(ToString::to_string));
                    ("waiting", all.join("; "))
                }
            };
            let _ = writeln!(
                out,
                "{}",
                format!("{state}  {name:<width$}  {why}").trim_end()
            );
        }
    }
    Ok(())
}

/// `explain`: why one node is, or is not, dirty.
pub(super) fn explain(
    ctx: &Ctx<'_>,
    args: &PipelineArgs,
    node: &str,
    out: &mut String,
) -> Result<()> {
    let plan = load(&args.pipeline, ctx.registry, &args.set)?;
    let idx = plan.find(node)?;
    let cache = Cache::open(ctx.cache)?;
    let statuses = exec::status(&plan, &cache)?;
    let (_, status) = statuses
        .iter()
        .find(|(i, _)| *i == idx)
        .expect("every node has a status");
    let n = &plan.graph[idx];
    match status {
        Status::Fresh { key } => {
            let _ = writeln!(
                out,
                "`{}` is fresh: its entry {} matches every ingredient",
                n.name,
                &key[..16]
            );
        }
        Status::Dirty { key, why } => {
            let _ = writeln!(out, "`{}` is dirty (new key {}):", n.name, &key[..16]);
            for w in why {
                let _ = writeln!(out, "  - {w}");
            }
        }
        Status::Waiting { upstream, why } => {
            let _ = writeln!(
                out,
                "`{}` waits for dirty upstream node(s) {}; it re-runs unless they reproduce identical outputs",
                n.name,
                upstream.join(", ")
            );
            for w in why {
                let _ = writeln!(out, "  - {w}");
            }
        }
    }
    log_line(&cache, &plan, &n.name, out);
    Ok(())
}

/// Reasons on one line, as `plan` prints them.
fn joined(why: &[crate::dirty::DirtyReason]) -> String {
    why.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}
