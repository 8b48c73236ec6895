//! `compare`: the sweep variants' result frames side by side, one table per compared node, then
//! the sections the binary's [`Comparer`] adds (aggregates over seeds, diagnostics).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::report::report_nodes;
use super::table::{Printed, interval_cell, printed_columns, text_table};
use super::{Ctx, PipelineArgs, ReportNode, load, read_frame};
use crate::cache::Cache;
use crate::error::{Error, Result};
use crate::exec::{self, Status};
use crate::plan::Plan;

/// One section the binary adds to `compare` after the variants' frames: what it knows its
/// operators' frames mean (aggregates over seeds, diagnostics). `text` is printed under
/// `title`; `--json` puts `json` under `sections` with its title.
#[derive(Clone, Debug)]
pub struct CompareSection {
    /// Heading.
    pub title: String,
    /// The section as text (tables), ending with a newline.
    pub text: String,
    /// The same as JSON.
    pub json: serde_json::Value,
}

/// Supplied by the binary: the extra `compare` sections of a pipeline, from the same nodes a
/// [`Reporter`](super::Reporter) gets.
pub type Comparer =
    fn(pipeline_name: &str, nodes: &[ReportNode]) -> miette::Result<Vec<CompareSection>>;

/// `compare` without the binary's sections.
pub(super) fn compare(
    ctx: &Ctx<'_>,
    args: &PipelineArgs,
    json: bool,
    out: &mut String,
) -> Result<()> {
    let plan = load(&args.pipeline, ctx.registry, &args.set)?;
    let cache = Cache::open(ctx.cache)?;
    let tables = compare_tables(&plan, &cache)?;
    print_compare(&tables, &[], json, out);
    Ok(())
}

/// `compare` with `comparer`'s sections after the tables.
pub(super) fn compare_with_sections(
    ctx: &Ctx<'_>,
    args: &PipelineArgs,
    json: bool,
    comparer: Comparer,
    out: &mut String,
) -> miette::Result<()> {
    let plan = load(&args.pipeline, ctx.registry, &args.set)?;
    let cache = Cache::open(ctx.cache)?;
    let tables = compare_tables(&plan, &cache)?;
    let nodes = report_nodes(&plan, &cache)?;
    let sections = comparer(&plan.name, &nodes)?;
    print_compare(&tables, &sections, json, out);
    Ok(())
}

/// `compare`'s output: each compared node's table (a header row, then rows), then the
/// binary's sections; as text, or as one JSON object `{"tables": [{"node", "columns", "rows"}],
/// "sections": [{"title", "data"}]}`.
fn print_compare(
    tables: &[(String, Vec<Vec<String>>)],
    sections: &[CompareSection],
    json: bool,
    out: &mut String,
) {
    if json {
        let tables: Vec<serde_json::Value> = tables
            .iter()
            .map(|(node, cells)| {
                serde_json::json!({
                    "node": node,
                    "columns": cells.first().cloned().unwrap_or_default(),
                    "rows": cells.iter().skip(1).collect::<Vec<_>>(),
                })
            })
            .collect();
        let sections: Vec<serde_json::Value> = sections
            .iter()
            .map(|s| serde_json::json!({ "title": s.title, "data": s.json }))
            .collect();
        let doc = serde_json::json!({ "tables": tables, "sections": sections });
        let _ = writeln!(out, "{}", serde_json::to_string_pretty(&doc).expect("json"));
        return;
    }
    for (node, cells) in tables {
        let _ = writeln!(out, "{node}:");
        let _ = writeln!(out, "{}", text_table(cells));
    }
    for s in sections {
        let _ = writeln!(out, "{}:", s.title);
        let _ = writeln!(out, "{}", s.text);
    }
}

/// For each compared node, one table: its string columns identify rows, each variant
/// contributes its numeric columns.
fn compare_tables(plan: &Plan, cache: &Cache) -> Result<Vec<(String, Vec<Vec<String>>)>> {
    let statuses: BTreeMap<_, _> = exec::status(plan, cache)?.into_iter().collect();
    let mut tables = Vec::new();
    for template in &plan.compare {
        let mut rows: BTreeMap<Vec<String>, BTreeMap<String, String>> = BTreeMap::new();
        let mut key_names: Vec<String> = Vec::new();
        let mut value_columns: Vec<String> = Vec::new();
        for variant in &plan.variants {
            let Some((_, &idx)) = variant
                .nodes
                .iter()
                .filter(|&(_, &i)| plan.graph[i].template == *template)
                .max_by_key(|&(_, &i)| plan.graph[i].iteration)
            else {
                continue;
            };
            let label = if variant.label.is_empty() {
                "value".to_string()
            } else {
                variant.label.clone()
            };
            let Some(Status::Fresh { key }) = statuses.get(&idx) else {
                return Err(Error::usage(
                    format!(
                        "`{}` of variant `{label}` has no up-to-date result",
                        plan.graph[idx].name
                    ),
                    Some("run the pipeline first".into()),
                ));
            };
            let Some((port, path, true)) = exec::output_file(cache, key, &plan.graph[idx], None)
            else {
                continue;
            };
            let df = read_frame(cache, key, &port, &path)?;
            let (keys, values): (Vec<_>, Vec<_>) = printed_columns(&df)
                .into_iter()
                .partition(|p| matches!(p, Printed::Plain(c) if !c.dtype().is_primitive_numeric()));
            let keys: Vec<&polars::prelude::Column> = keys
                .into_iter()
                .filter_map(|p| match p {
                    Printed::Plain(c) => Some(c),
                    Printed::Interval(..) => None,
                })
                .collect();
            key_names = keys.iter().map(|c| c.name().to_string()).collect();
            for row in 0..df.height() {
                let k: Vec<String> = keys
                    .iter()
                    .map(|c| {
                        c.get(row)
                            .map(|v| v.to_string().trim_matches('"').to_string())
                            .unwrap_or_default()
                    })
                    .collect();
                for p in &values {
                    let col = if values.len() == 1 {
                        label.clone()
                    } else {
                        format!("{label} {}", p.header())
                    };
                    if !value_columns.contains(&col) {
                        value_columns.push(col.clone());
                    }
                    let cell = match p {
                        Printed::Interval(v, lo, hi) => interval_cell(v, lo, hi, row, 4),
                        Printed::Plain(v) => match v.get(row) {
                            Ok(polars::prelude::AnyValue::Float64(x)) => format!("{x:.4}"),
                            Ok(polars::prelude::AnyValue::Float32(x)) => format!("{x:.4}"),
                            Ok(other) => other.to_string(),
                            Err(_) => String::new(),
                        },
                    };
                    rows.entry(k.clone()).or_default().insert(col, cell);
                }
            }
        }
        let mut cells = vec![
            key_names
                .iter()
                .cloned()
                .chain(value_columns.iter().cloned())
                .collect::<Vec<_>>(),
        ];
        for (k, vals) in rows {
            cells.push(
                k.into_iter()
                    .chain(
                        value_columns
                            .iter()
                            .map(|c| vals.get(c).cloned().unwrap_or_default()),
                    )
                    .collect(),
            );
        }
        tables.push((template.clone(), cells));
    }
    Ok(tables)
}
