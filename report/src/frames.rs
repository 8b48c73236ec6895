//! Reading the cached frames a report draws from, checked against their schemas so that a wrong
//! or stale file becomes a diagnostic naming the node and the file, not a panic or a blank chart.

use std::path::Path;

use judgeflow_engine::FrameSchema;
use judgeflow_engine::cli::ReportNode;
use judgeflow_engine::op::read_parquet;
use judgeflow_schemas::columns::{bools, floats, ints, optional_strings, strings};
use miette::{Result, miette};
use polars::prelude::DataFrame;

/// One row of a `metrics` frame (an `evaluate` node's scores).
#[derive(Clone, Debug)]
pub struct MetricRow {
    /// Benchmark dimension, or `overall` / `macro`.
    pub dimension: String,
    /// Share correct among parsed, non-tied items; NaN when `n` is 0.
    pub accuracy: f64,
    /// Items judged correctly.
    pub correct: i64,
    /// Items scored.
    pub n: i64,
    /// Items judged a tie.
    pub ties: i64,
    /// Items whose verdict could not be parsed.
    pub unparseable: i64,
    /// Share of parsed verdicts that said A (position bias); NaN when none parsed.
    pub a_share: f64,
    /// 95% interval of `accuracy` (NaN when unknown).
    pub accuracy_lo: f64,
    /// Upper end of the interval.
    pub accuracy_hi: f64,
    /// Items the text baselines were computed on (every evaluated item).
    pub items: i64,
    /// Share of items where the better answer is the shorter one, by characters (ties 1/2).
    pub shorter_wins: f64,
    /// Share of items where the better answer is the longer one, by characters (ties 1/2).
    pub longer_wins: f64,
    /// `shorter_wins` by words.
    pub shorter_wins_words: f64,
    /// `longer_wins` by words.
    pub longer_wins_words: f64,
    /// `scene`, or `blank` when the judge saw a blank image (a blind judge).
    pub image: String,
}

impl MetricRow {
    /// Whether the judge was scored blind (every image replaced by a blank one).
    pub fn blind(&self) -> bool {
        self.image == "blank"
    }

    /// The accuracy's interval, when both ends are known.
    pub fn interval(&self) -> Option<(f64, f64)> {
        (self.accuracy_lo.is_finite() && self.accuracy_hi.is_finite())
            .then_some((self.accuracy_lo, self.accuracy_hi))
    }
}

/// One row of a `kept_stats` frame (a `filter` node's statistics).
#[derive(Clone, Debug)]
pub struct KeptRow {
    /// Where the pairs came from, or `total`.
    pub source: String,
    /// Kind of pair, or `total`.
    pub kind: String,
    /// Pairs seen.
    pub pairs: i64,
    /// Judgements seen.
    pub judgements: i64,
    /// Judgements kept.
    pub kept: i64,
    /// `kept / judgements`.
    pub kept_fraction: f64,
}

/// One optimizer step of a `loss` frame.
#[derive(Clone, Copy, Debug)]
pub struct LossPoint {
    /// Step number.
    pub step: i64,
    /// Mean response-token loss.
    pub loss: f64,
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
pub fn metrics(node: &ReportNode) -> Result<Option<Vec<MetricRow>>> {
    let Some((port, df)) = frame(node, &judgeflow_schemas::METRICS)? else {
        return Ok(None);
    };
    columns(node, port, || {
        let dimension = strings(&df, "dimension")?;
        let accuracy = floats(&df, "accuracy")?;
        let correct = ints(&df, "correct")?;
        let n = ints(&df, "n")?;
        let ties = ints(&df, "ties")?;
        let unparseable = ints(&df, "unparseable")?;
        let a_share = floats(&df, "a_share")?;
        let accuracy_lo = floats(&df, "accuracy_lo")?;
        let accuracy_hi = floats(&df, "accuracy_hi")?;
        let items = ints(&df, "items")?;
        let shorter_wins = floats(&df, "shorter_wins")?;
        let longer_wins = floats(&df, "longer_wins")?;
        let shorter_wins_words = floats(&df, "shorter_wins_words")?;
        let longer_wins_words = floats(&df, "longer_wins_words")?;
        let image = strings(&df, "image")?;
        Ok(Some(
            (0..df.height())
                .map(|i| MetricRow {
                    dimension: dimension[i].clone(),
                    accuracy: accuracy[i],
                    correct: correct[i],
                    n: n[i],
                    ties: ties[i],
                    unparseable: unparseable[i],
                    a_share: a_share[i],
                    accuracy_lo: accuracy_lo[i],
                    accuracy_hi: accuracy_hi[i],
                    items: items[i],
                    shorter_wins: shorter_wins[i],
                    longer_wins: longer_wins[i],
                    shorter_wins_words: shorter_wins_words[i],
                    longer_wins_words: longer_wins_words[i],
                    image: image[i].clone(),
                })
                .collect(),
        ))
    })
}

/// The rows of a node's `kept_stats` frame (a `filter` node's), in frame order.
pub fn kept(node: &ReportNode) -> Result<Option<Vec<KeptRow>>> {
    let Some((port, df)) = frame(node, &judgeflow_schemas::KEPT_STATS)? else {
        return Ok(None);
    };
    columns(node, port, || {
        let source = strings(&df, "source")?;
        let kind = strings(&df, "kind")?;
        let pairs = ints(&df, "pairs")?;
        let judgements = ints(&df, "judgements")?;
        let kept = ints(&df, "kept")?;
        let kept_fraction = floats(&df, "kept_fraction")?;
        Ok(Some(
            (0..df.height())
                .map(|i| KeptRow {
                    source: source[i].clone(),
                    kind: kind[i].clone(),
                    pairs: pairs[i],
                    judgements: judgements[i],
                    kept: kept[i],
                    kept_fraction: kept_fraction[i],
                })
                .collect(),
        ))
    })
}

/// The curve of a node's `loss` frame (a `train` node's).
pub fn loss(node: &ReportNode) -> Result<Option<Vec<LossPoint>>> {
    let Some((port, df)) = frame(node, &judgeflow_schemas::LOSS)? else {
        return Ok(None);
    };
    columns(node, port, || {
        let step = ints(&df, "step")?;
        let loss = floats(&df, "loss")?;
        Ok(Some(
            step.into_iter()
                .zip(loss)
                .map(|(step, loss)| LossPoint { step, loss })
                .collect(),
        ))
    })
}

/// One judgement of a `judgements` frame, as far as the report needs it.
#[derive(Clone, Debug)]
pub struct Judged {
    /// The pair (for `evaluate`: the bench item).
    pub pair_id: String,
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

/// The rows of a node's `judgements` frame (a `judge` or `evaluate` node's).
pub fn judgements(node: &ReportNode) -> Result<Option<Vec<Judged>>> {
    let Some((port, df)) = frame(node, &judgeflow_schemas::JUDGEMENTS)? else {
        return Ok(None);
    };
    columns(node, port, || {
        let pair_id = strings(&df, "pair_id")?;
        let kind = strings(&df, "kind")?;
        let answer_a = strings(&df, "answer_a")?;
        let answer_b = strings(&df, "answer_b")?;
        let output = strings(&df, "output")?;
        let verdict = optional_strings(&df, "verdict")?;
        let agrees = bools(&df, "agrees")?;
        Ok(Some(
            (0..df.height())
                .map(|i| Judged {
                    pair_id: pair_id[i].clone(),
                    kind: kind[i].clone(),
                    answer_a: answer_a[i].clone(),
                    answer_b: answer_b[i].clone(),
                    output: output[i].clone(),
                    verdict: verdict[i].clone(),
                    agrees: agrees[i].unwrap_or(false),
                })
                .collect(),
        ))
    })
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
