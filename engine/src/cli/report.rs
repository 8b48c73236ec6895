//! `report`: hands the plan's nodes, with where their fresh outputs are, and the newest run
//! trace to the binary's [`Reporter`], which writes the figures and the HTML page.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::{Ctx, PipelineArgs, load};
use crate::cache::Cache;
use crate::error::Result;
use crate::exec::{self, Status};
use crate::op::PortKind;
use crate::plan::Plan;
use crate::schema::FrameSchema;
use crate::trace::{self, TraceLine};

/// What `report` hands to the reporter for one plan node: a model-agnostic description plus
/// where its cached outputs are, so the binary can draw whatever its operators' frames mean.
#[derive(Clone, Debug, PartialEq)]
pub struct ReportNode {
    /// Unique display name (`judge@2[vote.method=oracle]`).
    pub name: String,
    /// The template (`[nodes.NAME]` table) it comes from.
    pub template: String,
    /// Repetition inside its `[iterate.*]` group; `None` outside any group.
    pub iteration: Option<u32>,
    /// Operator name.
    pub op: String,
    /// Operator kind, for families such as `source`.
    pub kind: Option<String>,
    /// Labels of the sweep variants the node belongs to (`""` when the pipeline has no sweep).
    pub variants: Vec<String>,
    /// Output port → path of its fresh cached output (parquet file for frames, directory for
    /// artifacts); empty when the node has no up-to-date result.
    pub outputs: BTreeMap<String, PathBuf>,
    /// Frame output port → the schema it declares, for every frame output (with a result or
    /// not), so that a reporter picks frames by what they are (a `metrics` frame), not by the
    /// operator that wrote them: a user's own operator writing such a frame is reported too.
    pub schemas: BTreeMap<String, &'static FrameSchema>,
    /// Seconds the operator ran when it produced the cached entry, if the manifest says.
    pub seconds: Option<f64>,
}

/// Turns a pipeline's nodes into report files under `out_dir`; returns the files it wrote.
/// Supplied by the binary, which knows what the operators' frames mean.
/// `trace` is the pipeline's newest run trace ([`crate::trace`]), when it has one.
pub type Reporter = fn(
    pipeline_name: &str,
    nodes: &[ReportNode],
    trace: Option<&[TraceLine]>,
    out_dir: &Path,
) -> miette::Result<Vec<PathBuf>>;

/// `report` with the binary's `reporter`, into `dir`.
pub(super) fn report(
    ctx: &Ctx<'_>,
    args: &PipelineArgs,
    dir: &Path,
    reporter: Reporter,
    out: &mut String,
) -> miette::Result<()> {
    let plan = load(&args.pipeline, ctx.registry, &args.set)?;
    let cache = Cache::open(ctx.cache)?;
    let nodes = report_nodes(&plan, &cache)?;
    let trace = trace::latest(&cache, &plan.name)?;
    let lines = trace.as_ref().map(|(_, lines)| lines.as_slice());
    let written = reporter(&plan.name, &nodes, lines, dir)?;
    if let Some((path, _)) = &trace {
        let _ = writeln!(out, "timeline from the trace {}", path.display());
    }
    for path in &written {
        let _ = writeln!(out, "wrote {}", path.display());
    }
    let fresh = nodes.iter().filter(|n| !n.outputs.is_empty()).count();
    let _ = writeln!(
        out,
        "report of `{}`: {fresh} of {} nodes have results",
        plan.name,
        nodes.len()
    );
    Ok(())
}

/// Describes every plan node (in plan order) for a [`Reporter`]: a node without an up-to-date
/// result is listed with no outputs rather than failing, so a report of a half-run pipeline
/// still shows what exists.
pub fn report_nodes(plan: &Plan, cache: &Cache) -> Result<Vec<ReportNode>> {
    Ok(exec::status(plan, cache)?
        .into_iter()
        .map(|(idx, status)| {
            let n = &plan.graph[idx];
            let (outputs, seconds) = match status {
                Status::Fresh { key } => (
                    n.outputs
                        .iter()
                        .filter_map(|p| exec::output_file(cache, &key, n, Some(p.name)))
                        .map(|(port, path, _)| (port, path))
                        .collect(),
                    cache.manifest(&key).map(|m| m.seconds),
                ),
                Status::Dirty { .. } | Status::Waiting { .. } => (BTreeMap::new(), None),
            };
            ReportNode {
                name: n.name.clone(),
                template: n.template.clone(),
                iteration: n.iteration,
                op: n.op.name().to_string(),
                kind: n.op.kind().map(str::to_string),
                variants: n
                    .variants
                    .iter()
                    .map(|&v| plan.variants[v].label.clone())
                    .collect(),
                outputs,
                schemas: n
                    .outputs
                    .iter()
                    .filter_map(|p| match p.kind {
                        PortKind::Frame(schema) => Some((p.name.to_string(), schema)),
                        PortKind::Artifact(_) => None,
                    })
                    .collect(),
                seconds,
            }
        })
        .collect())
}
