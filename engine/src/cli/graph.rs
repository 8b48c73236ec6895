//! `graph`: the plan's DAG (or the selected part) as Graphviz dot or a Mermaid flowchart.

use std::fmt::Write as _;

use super::{Ctx, GraphFormat, PipelineArgs, load};
use crate::error::Result;
use crate::plan::Plan;

/// `graph`: plans the pipeline, selects `nodes`, prints the DAG in `format`.
pub(super) fn graph(
    ctx: &Ctx<'_>,
    args: &PipelineArgs,
    nodes: &[String],
    format: GraphFormat,
    out: &mut String,
) -> Result<()> {
    let mut plan = load(&args.pipeline, ctx.registry, &args.set)?;
    plan.select(nodes)?;
    write_graph(&plan, format, out);
    Ok(())
}

fn write_graph(plan: &Plan, format: GraphFormat, out: &mut String) {
    let id = |i: petgraph::graph::NodeIndex| format!("n{}", i.index());
    match format {
        GraphFormat::Dot => {
            let _ = writeln!(
                out,
                "digraph \"{}\" {{\n  rankdir=LR;\n  node [shape=box];",
                plan.name
            );
            for &i in &plan.order {
                let n = &plan.graph[i];
                let _ = writeln!(
                    out,
                    "  {} [label=\"{}\\n{}\"];",
                    id(i),
                    n.name.replace('"', "\\\""),
                    n.op.name()
                );
            }
            for &i in &plan.order {
                for b in &plan.graph[i].inputs {
                    let _ = writeln!(out, "  {} -> {} [label=\"{}\"];", id(b.from), id(i), b.port);
                }
            }
            let _ = writeln!(out, "}}");
        }
        GraphFormat::Mermaid => {
            let _ = writeln!(out, "flowchart LR");
            for &i in &plan.order {
                let n = &plan.graph[i];
                let _ = writeln!(
                    out,
                    "  {}[\"{}<br/><i>{}</i>\"]",
                    id(i),
                    n.name.replace('"', "#quot;"),
                    n.op.name()
                );
            }
            for &i in &plan.order {
                for b in &plan.graph[i].inputs {
                    let _ = writeln!(out, "  {} -->|{}| {}", id(b.from), b.port, id(i));
                }
            }
        }
    }
}
