//! Reading the cached frames a report draws from, checked against their schemas so that a wrong
//! or stale file becomes a diagnostic naming the node and the file, not a panic or a blank chart.

use std::path::Path;

use judgeflow_engine::FrameSchema;
use judgeflow_engine::cli::ReportNode;
use judgeflow_engine::op::read_parquet;
use judgeflow_schemas::FrameRow;
use judgeflow_schemas::columns::bools;
use miette::{Result, miette};
use polars::prelude::DataFrame;

pub use judgeflow_schemas::{KeptStatsRow, MetricsRow, PerceptionRow};

judgeflow_schemas::frame_row! {
    /// One optimizer step of a `loss` frame, as far as the report needs it (a narrower view of
    /// `LossRow`: reading it reads these columns only).
    pub struct LossPoint as "loss" {
        /// Step number.
        pub step: i64,
        /// Mean response-token loss.
        pub loss: f64,
    }
    doc: "the report's view of a `loss` frame";
}

judgeflow_schemas::frame_row! {
    /// One judgement of a `judgements` frame, as far as the report needs it (a narrower view of
    /// `JudgementRow`: reading it leaves the images and prompts on disk).
    pub struct Judged as "judgements" {
        /// The pair (for `evaluate`: the bench item).
        pub pair_id: String,
        /// `AB`: shown in the pair's order; `BA`: swapped.
        pub order: String,
        /// The pair's kind (for `evaluate`: the bench dimension).
        pub kind: String,
        /// The answers as shown.
        pub answer_a: String,
        /// The second answer as shown.
        pub answer_b: String,
        /// The judge's whole output.
        pub output: String,
        /// `A`, `B`, or `None` when the output had no verdict line.
        pub verdict: Option<String>,
        /// Whether the verdict named the preferred answer (false when unparseable).
        pub agrees: bool,
    }
    doc: "the report's view of a `judgements` frame";
}

/// The output port of `node` that declares `schema` (the first by port name), if any. Frames
/// are picked by what they are, not by the operator that wrote them or the port's name, so a
/// user's own operator that writes, say, a `metrics` frame is reported like `evaluate`. Two
/// schemas are the same when their names and columns are.
pub fn port_of<'n>(node: &'n ReportNode, schema: &FrameSchema) -> Option<&'n str> {
    node.schemas
        .iter()
        .find(|(_, declared)| declared.name == schema.name && declared.columns == schema.columns)
        .map(|(port, _)| port.as_str())
}

/// Reads `node`'s frame of `schema` (from the port [`port_of`] picks) when the node has a
/// result; `Ok(None)` when it has none yet or declares no such frame. Returns the port too.
fn frame<'n>(node: &'n ReportNode, schema: &FrameSchema) -> Result<Option<(&'n str, DataFrame)>> {
    let Some(port) = port_of(node, schema) else {
        return Ok(None);
    };
    let Some(path) = node.outputs.get(port) else {
        return Ok(None);
    };
    let df = read_parquet(path).map_err(|e| {
        miette::Report::new(e).wrap_err(format!(
            "node `{}`: cannot read its `{port}` frame {}",
            node.name,
            path.display()
        ))
    })?;
    schema.check(&df).map_err(|detail| {
        bad_frame(
            node,
            port,
            path,
            &format!("not a `{}` frame: {detail}", schema.name),
        )
    })?;
    Ok(Some((port, df)))
}

fn bad_frame(node: &ReportNode, port: &str, path: &Path, detail: &str) -> miette::Report {
    miette!(
        code = "judgeflow::report::frame",
        help = "re-run the node (`judgeflow run`), or check that the pipeline's node uses the operator the report expects",
        "node `{}` port `{port}` ({}): {detail}",
        node.name,
        path.display()
    )
}

/// Runs `f` and names the node and file if polars refuses (a column of the wrong type slipped
/// past the schema check, or nulls where values are required).
fn columns<T>(
    node: &ReportNode,
    port: &str,
    f: impl FnOnce() -> polars::prelude::PolarsResult<T>,
) -> Result<T> {
    f().map_err(|e| {
        let path = node
            .outputs
            .get(port)
            .map(|p| p.as_path())
            .unwrap_or(Path::new("?"));
        bad_frame(node, port, path, &e.to_string())
    })
}

/// The rows of a node's `metrics` frame (an `evaluate` node's, or any operator's that writes
/// one), in frame order.
pub fn metrics(node: &ReportNode) -> Result<Option<Vec<MetricsRow>>> {
    let Some((port, df)) = frame(node, &judgeflow_schemas::METRICS)? else {
        return Ok(None);
    };
    columns(node, port, || Ok(Some(MetricsRow::from_frame(&df)?)))
}

/// The rows of a node's `kept_stats` frame (a `filter` node's), in frame order.
pub fn kept(node: &ReportNode) -> Result<Option<Vec<KeptStatsRow>>> {
    let Some((port, df)) = frame(node, &judgeflow_schemas::KEPT_STATS)? else {
        return Ok(None);
    };
    columns(node, port, || Ok(Some(KeptStatsRow::from_frame(&df)?)))
}

/// The rows of a node's `perception` frame (a `perception` node's), in frame order.
pub fn perception(node: &ReportNode) -> Result<Option<Vec<PerceptionRow>>> {
    let Some((port, df)) = frame(node, &judgeflow_schemas::PERCEPTION)? else {
        return Ok(None);
    };
    columns(node, port, || Ok(Some(PerceptionRow::from_frame(&df)?)))
}

/// The curve of a node's `loss` frame (a `train` node's).
pub fn loss(node: &ReportNode) -> Result<Option<Vec<LossPoint>>> {
    let Some((port, df)) = frame(node, &judgeflow_schemas::LOSS)? else {
        return Ok(None);
    };
    columns(node, port, || Ok(Some(LossPoint::from_frame(&df)?)))
}

/// The rows of a node's `judgements` frame (a `judge` or `evaluate` node's).
pub fn judgements(node: &ReportNode) -> Result<Option<Vec<Judged>>> {
    let Some((port, df)) = frame(node, &judgeflow_schemas::JUDGEMENTS)? else {
        return Ok(None);
    };
    columns(node, port, || Ok(Some(Judged::from_frame(&df)?)))
}

/// `label_correct` of a node's `pairs` frame: `(correct, known)`, pairs whose label the gold answer
/// could check (null where no gold answer is known).
pub fn label_correct(node: &ReportNode) -> Result<Option<(usize, usize)>> {
    let Some((port, df)) = frame(node, &judgeflow_schemas::PAIRS)? else {
        return Ok(None);
    };
    columns(node, port, || {
        let known: Vec<bool> = bools(&df, "label_correct")?.into_iter().flatten().collect();
        Ok(Some((known.iter().filter(|&&c| c).count(), known.len())))
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use judgeflow_engine::FrameSchema;
    use judgeflow_engine::cli::ReportNode;
    use judgeflow_schemas::{JUDGEMENTS, LOSS, METRICS};

    use super::port_of;

    fn declaring(ports: &[(&str, &'static FrameSchema)]) -> ReportNode {
        ReportNode {
            name: "mine".into(),
            template: "mine".into(),
            iteration: None,
            op: "my_scorer".into(),
            kind: None,
            variants: Vec::new(),
            outputs: BTreeMap::new(),
            schemas: ports.iter().map(|&(p, s)| (p.to_string(), s)).collect(),
            seconds: None,
        }
    }

    #[test]
    fn a_port_is_picked_by_its_schema_not_its_name_or_operator() {
        let node = declaring(&[("judged", &JUDGEMENTS), ("scores", &METRICS)]);
        assert_eq!(port_of(&node, &METRICS), Some("scores"));
        assert_eq!(port_of(&node, &JUDGEMENTS), Some("judged"));
        assert_eq!(port_of(&node, &LOSS), None);
        // A copy of the schema (same name and columns, another doc) is the same schema.
        let copy: &'static FrameSchema = Box::leak(Box::new(FrameSchema {
            name: METRICS.name,
            columns: METRICS.columns,
            doc: "my own metrics",
        }));
        assert_eq!(port_of(&declaring(&[("m", copy)]), &METRICS), Some("m"));
        // A port named `metrics` of another schema is not a metrics frame.
        assert_eq!(port_of(&declaring(&[("metrics", &LOSS)]), &METRICS), None);
    }
}
