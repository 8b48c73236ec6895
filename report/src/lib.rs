//! `judgeflow report`: figures and one HTML page summarising a self-training pipeline's cached
//! results, drawn from the `metrics`, `kept_stats` and `loss` frames its nodes wrote (as
//! `evaluate`, `filter` and `train` write them). Frames are picked by the schema their port
//! declares, not by operator name, so a user's own operator writing a `metrics` frame is
//! reported like `evaluate`. The per-iteration diagnostics ([`diagnostics`]) are the exception:
//! they read the judgements of `judge` nodes and the pairs of `vote` nodes by operator, because
//! other operators write frames of the same schemas with another meaning (`evaluate`'s
//! judgements of a benchmark; `corrupt`'s, `concat`'s pairs).
//!
//! The report directory holds:
//! - `accuracy_vs_iteration.png` (one per sweep variant, suffixed with the variant, when there
//!   are several): judge accuracy per benchmark dimension over the self-training iterations,
//!   `overall` bold and `macro` dashed, each point with its 95% interval as an error bar, and
//!   chance (0.5) as a dashed line. The base model's evaluation (an `evaluate` node outside any
//!   `[iterate.*]` group) is iteration 0.
//! - `final_vs_base.png` (per variant likewise): base vs last-iteration accuracy per dimension
//!   with error bars, beside them the blind judge (an `evaluate` node with `image = "blank"`,
//!   when the pipeline has one) and the text-only baselines of the final evaluation's items
//!   ("shorter answer wins", "longer answer wins"), and chance as a dashed line: a gain means
//!   something only where it clears the interval, the blind score and the baselines.
//! - `variants.png`, with two or more variants: every variant's final accuracy next to the base,
//!   with error bars and chance.
//! - `seeds.png` (`seeds_<variant>.png` per group when other settings are swept too), when the
//!   pipeline sweeps `pipeline.seed`: per dimension, every evaluation's mean accuracy over
//!   seeds with its 95% t-interval across seeds as the error bar, each seed's accuracy as a dot,
//!   blind evaluations beside the others, chance as a dashed line ([`seeds`]).
//!
//! Blind evaluations (their metrics' `image` column says `blank`) never stand for an iteration
//! in the figures: they are drawn as the blind bars only; the tables list them, marked.
//! - `perception.png` (per variant likewise), when the pipeline has a `perception` node: the
//!   base model's greedy accuracy per question form and on its descriptions' claims and
//!   objects, each with its 95% interval, beside what answering without looking scores (the
//!   form's prior), and the gate's accuracy threshold as a dashed line. The page's table says
//!   which rows pass the gate.
//! - `kept_fraction.png`: the share of judgements the filter kept per iteration: the total per
//!   variant, and without a sweep also per pair source and kind.
//! - `loss.png`: training loss per step of every `train` node.
//! - `timeline.png`, when the pipeline has a run trace (`CACHE/traces/`, written by every
//!   `judgeflow run`): the newest run's nodes on a time axis, one row each in order of start,
//!   coloured by operator, GPU nodes outlined, queue waits grey, cache hits as hollow circles.
//! - `index.html`: the figures, then (with a seed sweep) accuracy over seeds and the paired
//!   gain of the last iteration over the base ([`seeds`]), tables of accuracy per iteration and
//!   dimension (with `n` and the share of "A" verdicts, a position-bias check), per-iteration
//!   diagnostics ([`diagnostics`]), kept fractions, and each node's wall time; nodes without an
//!   up-to-date result are listed as "not run yet".
//!
//! [`compare_sections`] gives `judgeflow compare` the same seed and diagnostics tables.
//!
//! A figure without data (nothing evaluated yet, no filter) is left out rather than drawn empty.
//! When several `evaluate` nodes share a variant and an iteration (say, a second benchmark), the
//! figures follow the first in plan order; the tables show them all.

mod charts;
pub mod diagnostics;
mod frames;
mod html;
pub mod seeds;
mod stats;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use judgeflow_engine::cli::ReportNode;
use judgeflow_engine::trace::TraceLine;
use miette::{Result, miette};
use plotters::style::RGBColor;

use charts::{Bars, Line, LineAxes, PALETTE, Reference, Stroke};
use frames::{KeptStatsRow, LossPoint, MetricsRow, PerceptionRow};

/// The rows `evaluate` adds after the dimensions: pooled over items, and mean of dimensions.
const SUMMARY_ROWS: [&str; 2] = ["overall", "macro"];

/// A node that has a result, with what the report read from it.
struct Read<'a, T> {
    node: &'a ReportNode,
    /// `iteration`, with nodes outside iteration groups at 0 (the base model).
    iteration: u32,
    rows: T,
}

/// Everything the figures and tables are drawn from.
struct Data<'a> {
    pipeline: &'a str,
    nodes: &'a [ReportNode],
    /// Variant labels in plan order (`[""]` without a sweep).
    variants: Vec<String>,
    evals: Vec<Read<'a, Vec<MetricsRow>>>,
    kept: Vec<Read<'a, Vec<KeptStatsRow>>>,
    losses: Vec<Read<'a, Vec<LossPoint>>>,
    perception: Vec<Read<'a, Vec<PerceptionRow>>>,
    /// Aggregates over seeds (empty unless the pipeline sweeps `pipeline.seed`).
    seed_groups: Vec<seeds::Group>,
    /// Per-iteration diagnostics of every variant.
    diagnostics: Vec<diagnostics::Row>,
}

/// Writes the report of `pipeline` into `out_dir` (created if missing); returns the files
/// written, `index.html` last. [`write_report_with_trace`] without a trace.
pub fn write_report(pipeline: &str, nodes: &[ReportNode], out_dir: &Path) -> Result<Vec<PathBuf>> {
    write_report_with_trace(pipeline, nodes, None, out_dir)
}

/// [`write_report`], plus `timeline.png` when a run trace is given. Matches
/// `judgeflow_engine::cli::Reporter`.
pub fn write_report_with_trace(
    pipeline: &str,
    nodes: &[ReportNode],
    trace: Option<&[TraceLine]>,
    out_dir: &Path,
) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(out_dir)
        .map_err(|e| miette!("cannot create report directory {}: {e}", out_dir.display()))?;
    let data = read(pipeline, nodes)?;
    let mut figures = Vec::new();
    seed_figures(&data, out_dir, &mut figures)?;
    accuracy_figures(&data, out_dir, &mut figures)?;
    variants_figure(&data, out_dir, &mut figures)?;
    perception_figure(&data, out_dir, &mut figures)?;
    kept_figure(&data, out_dir, &mut figures)?;
    loss_figure(&data, out_dir, &mut figures)?;
    if let Some(trace) = trace.filter(|t| !t.is_empty()) {
        timeline_figure(pipeline, trace, out_dir, &mut figures)?;
    }
    let index = out_dir.join("index.html");
    write_atomically(&index, html::page(&data, &figures).as_bytes())?;
    let mut written: Vec<PathBuf> = figures.into_iter().map(|(path, _)| path).collect();
    written.push(index);
    Ok(written)
}

fn read<'a>(pipeline: &'a str, nodes: &'a [ReportNode]) -> Result<Data<'a>> {
    let mut variants: Vec<String> = Vec::new();
    for v in nodes.iter().flat_map(|n| &n.variants) {
        if !variants.contains(v) {
            variants.push(v.clone());
        }
    }
    if variants.is_empty() {
        variants.push(String::new());
    }
    let mut data = Data {
        pipeline,
        nodes,
        variants,
        evals: Vec::new(),
        kept: Vec::new(),
        losses: Vec::new(),
        perception: Vec::new(),
        seed_groups: seeds::groups(nodes)?,
        diagnostics: Vec::new(),
    };
    data.diagnostics = diagnostics::rows(nodes, &data.variants)?;
    // Each node by the frames it declares (`frames::port_of`), whatever its operator.
    for node in nodes {
        let iteration = node.iteration.unwrap_or(0);
        if let Some(rows) = frames::metrics(node)? {
            data.evals.push(Read {
                node,
                iteration,
                rows,
            });
        }
        if let Some(rows) = frames::kept(node)? {
            data.kept.push(Read {
                node,
                iteration,
                rows,
            });
        }
        if let Some(rows) = frames::perception(node)? {
            data.perception.push(Read {
                node,
                iteration,
                rows,
            });
        }
        if let Some(rows) = frames::loss(node)? {
            data.losses.push(Read {
                node,
                iteration,
                rows,
            });
        }
    }
    Ok(data)
}

impl Data<'_> {
    /// The evaluation the figures use per iteration of `variant` (first in plan order).
    fn evals_of(&self, variant: &str) -> BTreeMap<u32, &[MetricsRow]> {
        let mut by_iteration = BTreeMap::new();
        for e in self
            .evals
            .iter()
            .filter(|e| in_variant(e.node, variant) && !is_blind(&e.rows))
        {
            by_iteration.entry(e.iteration).or_insert(e.rows.as_slice());
        }
        by_iteration
    }

    /// The blind evaluation of `variant` that goes with iteration `at`: its own if it has one,
    /// else the latest before it (a pipeline that scores only the base blind), with its
    /// iteration. A pipeline that scores every iteration blind would otherwise set the final
    /// judge's bars beside an earlier judge's blind score.
    fn blind_of(&self, variant: &str, at: u32) -> Option<(u32, &[MetricsRow])> {
        self.evals
            .iter()
            .filter(|e| in_variant(e.node, variant) && is_blind(&e.rows) && e.iteration <= at)
            .max_by_key(|e| e.iteration)
            .map(|e| (e.iteration, e.rows.as_slice()))
    }

    /// Dimensions in the order the frames list them, the summary rows last.
    fn dimensions(&self) -> Vec<String> {
        let mut dims: Vec<String> = Vec::new();
        for row in self.evals.iter().flat_map(|e| &e.rows) {
            if !dims.contains(&row.dimension) && !SUMMARY_ROWS.contains(&row.dimension.as_str()) {
                dims.push(row.dimension.clone());
            }
        }
        dims.extend(SUMMARY_ROWS.iter().map(|s| s.to_string()));
        dims
    }

    /// Whether the figures need the variant in their titles and file names.
    fn swept(&self) -> bool {
        self.variants.len() > 1
    }

    /// `stem.png`, or `stem_<variant>.png` when there are several variants.
    fn file_for(&self, stem: &str, variant: &str) -> String {
        if self.swept() {
            format!("{stem}_{}.png", slug(variant))
        } else {
            format!("{stem}.png")
        }
    }

    fn titled(&self, title: &str, variant: &str) -> String {
        if self.swept() {
            format!("{title} ({variant})")
        } else {
            format!("{title} — {}", self.pipeline)
        }
    }
}

/// Whether `node` belongs to `variant`; a node listing no variants belongs to all.
fn in_variant(node: &ReportNode, variant: &str) -> bool {
    node.variants.is_empty() || node.variants.iter().any(|v| v == variant)
}

/// Whether an evaluation scored a blind judge.
fn is_blind(rows: &[MetricsRow]) -> bool {
    rows.first().is_some_and(MetricsRow::blind)
}

fn row<'r>(rows: &'r [MetricsRow], dimension: &str) -> Option<&'r MetricsRow> {
    rows.iter().find(|r| r.dimension == dimension)
}

fn accuracy(rows: &[MetricsRow], dimension: &str) -> Option<f64> {
    row(rows, dimension)
        .map(|r| r.accuracy)
        .filter(|a| a.is_finite())
}

fn interval(rows: &[MetricsRow], dimension: &str) -> Option<(f64, f64)> {
    row(rows, dimension).and_then(MetricsRow::interval)
}

/// Accuracy bars of one evaluation, with its intervals.
fn accuracy_bars(label: String, rows: &[MetricsRow], dims: &[String], color: RGBColor) -> Bars {
    Bars {
        label,
        values: dims.iter().map(|d| accuracy(rows, d)).collect(),
        color,
        intervals: dims.iter().map(|d| interval(rows, d)).collect(),
        dots: Vec::new(),
    }
}

/// The two text-only baselines of an evaluation's items, as bars without intervals (they are
/// exact on the items scored).
fn baseline_bars(rows: &[MetricsRow], dims: &[String]) -> [Bars; 2] {
    let of = |f: fn(&MetricsRow) -> f64| {
        dims.iter()
            .map(|d| row(rows, d).map(f).filter(|v| v.is_finite()))
            .collect::<Vec<Option<f64>>>()
    };
    [
        Bars {
            label: "text only: shorter answer wins".into(),
            values: of(|r| r.shorter_wins),
            color: RGBColor(188, 189, 34),
            intervals: Vec::new(),
            dots: Vec::new(),
        },
        Bars {
            label: "text only: longer answer wins".into(),
            values: of(|r| r.longer_wins),
            color: RGBColor(219, 219, 141),
            intervals: Vec::new(),
            dots: Vec::new(),
        },
    ]
}

fn chance() -> Reference {
    Reference {
        y: 0.5,
        label: "chance (0.5)".into(),
    }
}

/// A file-name-safe form of a variant label (`vote.method=oracle` → `vote.method-oracle`).
fn slug(label: &str) -> String {
    let s: String = label
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect();
    if s.is_empty() { "all".into() } else { s }
}

fn line_style(dimension: &str, i: usize) -> (charts::Stroke, RGBColor) {
    match dimension {
        "overall" => (Stroke::Bold, RGBColor(0, 0, 0)),
        "macro" => (Stroke::Dashed, RGBColor(90, 90, 90)),
        _ => (Stroke::Thin, PALETTE[i % PALETTE.len()]),
    }
}

/// `accuracy_vs_iteration*.png` and `final_vs_base*.png`, per variant.
fn accuracy_figures(data: &Data, out: &Path, figures: &mut Vec<(PathBuf, String)>) -> Result<()> {
    let dims = data.dimensions();
    for variant in &data.variants {
        let evals = data.evals_of(variant);
        if evals.is_empty() {
            continue;
        }
        let lines: Vec<Line> = dims
            .iter()
            .enumerate()
            .map(|(i, dim)| {
                let (stroke, color) = line_style(dim, i);
                Line {
                    label: dim.clone(),
                    points: evals
                        .iter()
                        .map(|(&it, rows)| (f64::from(it), accuracy(rows, dim).unwrap_or(f64::NAN)))
                        .collect(),
                    color,
                    stroke,
                    intervals: evals.values().map(|rows| interval(rows, dim)).collect(),
                }
            })
            .collect();
        let axes = LineAxes {
            title: data.titled("Judge accuracy by iteration", variant),
            x_desc: "iteration (0 = base model)".into(),
            y_desc: "accuracy".into(),
            integer_x: true,
            y_range: Some((0.0, 1.0)),
            reference: Some(chance()),
        };
        let path = out.join(data.file_for("accuracy_vs_iteration", variant));
        figures.push((charts::lines(&path, &axes, &lines)?, axes.title));

        // Base vs final needs two different iterations to compare.
        let (Some(base), Some((&last, final_rows))) = (evals.get(&0), evals.last_key_value())
        else {
            continue;
        };
        if last == 0 {
            continue;
        }
        let title = data.titled(
            &format!("Base vs final (iteration {last}) accuracy"),
            variant,
        );
        let mut series = vec![
            accuracy_bars("base (iteration 0)".into(), base, &dims, PALETTE[7]),
            accuracy_bars(
                format!("final (iteration {last})"),
                final_rows,
                &dims,
                PALETTE[0],
            ),
        ];
        if let Some((it, blind)) = data.blind_of(variant, last) {
            let whose = if it == 0 {
                "base".to_string()
            } else {
                format!("iteration {it}")
            };
            series.push(accuracy_bars(
                format!("blind {whose} (blank image)"),
                blind,
                &dims,
                PALETTE[1],
            ));
        }
        series.extend(baseline_bars(final_rows, &dims));
        let path = out.join(data.file_for("final_vs_base", variant));
        figures.push((
            charts::bars(&path, &title, "accuracy", &dims, &series, Some(&chance()))?,
            title,
        ));
    }
    Ok(())
}

/// `perception*.png`: the first `perception` node of each variant (in plan order), every row
/// with its interval beside its prior, and the gate's accuracy threshold.
fn perception_figure(data: &Data, out: &Path, figures: &mut Vec<(PathBuf, String)>) -> Result<()> {
    for variant in &data.variants {
        let Some(read) = data
            .perception
            .iter()
            .find(|p| in_variant(p.node, variant) && !p.rows.is_empty())
        else {
            continue;
        };
        let rows = &read.rows;
        let groups: Vec<String> = rows.iter().map(|r| perception_short(r, rows)).collect();
        let series = [
            Bars {
                label: "base model (greedy)".into(),
                values: rows.iter().map(|r| Some(r.accuracy)).collect(),
                color: PALETTE[0],
                intervals: rows
                    .iter()
                    .map(|r| Some((r.accuracy_lo, r.accuracy_hi)))
                    .collect(),
                dots: Vec::new(),
            },
            Bars {
                label: "without looking (prior)".into(),
                values: rows.iter().map(|r| Some(r.prior)).collect(),
                color: PALETTE[7],
                intervals: Vec::new(),
                dots: Vec::new(),
            },
        ];
        let threshold = rows[0].min_accuracy;
        let gate = Reference {
            y: threshold,
            label: format!(
                "gate: {threshold:.2}, and {:.2} above the prior",
                rows[0].min_gain
            ),
        };
        let title = data.titled("Does the base model see? (perception)", variant);
        let path = out.join(data.file_for("perception", variant));
        figures.push((
            charts::bars(&path, &title, "accuracy", &groups, &series, Some(&gate))?,
            title,
        ));
    }
    Ok(())
}

/// `color`, `spatial yes/no`, `caption claims`: a perception row's name in the page's table.
fn perception_label(r: &PerceptionRow) -> String {
    match r.form.as_str() {
        "word" | "all" => r.task.clone(),
        "yes_no" => format!("{} yes/no", r.task),
        form => format!("{} {form}", r.task),
    }
}

/// A perception row's name under its bars, short enough for ten groups side by side: the task
/// (abridged), with "y/n" only where the task has both answer forms; a description row by its
/// form alone.
fn perception_short(r: &PerceptionRow, rows: &[PerceptionRow]) -> String {
    if r.task == "caption" {
        return r.form.clone();
    }
    let task = match r.task.as_str() {
        "comparison" => "compare",
        "existence" => "exists",
        other => other,
    };
    let both_forms = rows.iter().filter(|o| o.task == r.task).count() > 1;
    if both_forms && r.form == "yes_no" {
        format!("{task} y/n")
    } else {
        task.to_string()
    }
}

/// The seeds chart's colour for the base's blind evaluation: [`PALETTE`]'s orange (every other
/// blind bar's), lightened.
const BASE_BLIND: RGBColor = RGBColor(253, 191, 134);

/// The evaluations a seeds chart draws: those outside the iterations and the base's (iteration 0),
/// and the last iteration's, each with its blind twin. Why: every iteration's bars beside their
/// blind twins made 16 bars a dimension after seven iterations, and a legend that covered them;
/// the iterations in between are in `accuracy_vs_iteration*.png` and the seeds table.
fn charted(evaluations: &[seeds::Evaluation]) -> Vec<&seeds::Evaluation> {
    let last = evaluations.iter().map(|e| e.iteration).max().unwrap_or(0);
    evaluations
        .iter()
        .filter(|e| e.iteration == 0 || e.iteration == last)
        .collect()
}

/// `seeds*.png` (one per seed group, suffixed with the group when there are several): per
/// dimension, the base's and the last iteration's evaluations ([`charted`]): mean accuracy over
/// seeds with its across-seed 95% t-interval as the error bar and each seed's accuracy as a dot;
/// blind evaluations beside the others, and chance (0.5) as a dashed line.
fn seed_figures(data: &Data, out: &Path, figures: &mut Vec<(PathBuf, String)>) -> Result<()> {
    let several = data.seed_groups.len() > 1;
    for g in &data.seed_groups {
        let mut dims: Vec<String> = Vec::new();
        for e in &g.evaluations {
            for (d, _, _) in &e.dimensions {
                if !dims.contains(d) && !SUMMARY_ROWS.contains(&d.as_str()) {
                    dims.push(d.clone());
                }
            }
        }
        dims.extend(SUMMARY_ROWS.iter().map(|s| s.to_string()));
        let series: Vec<Bars> = charted(&g.evaluations)
            .into_iter()
            .enumerate()
            .map(|(i, e)| {
                let find = |d: &String| e.dimensions.iter().find(|(x, _, _)| x == d);
                // The base's blind twin lighter than the last iteration's, so that the two
                // orange bars of a dimension tell apart without the legend.
                let color = if e.blind && e.iteration == 0 {
                    BASE_BLIND
                } else if e.blind {
                    PALETTE[1]
                } else if e.iteration == 0 {
                    PALETTE[7]
                } else {
                    PALETTE[[0, 2, 3, 4, 5, 6, 8, 9][i % 8]]
                };
                Bars {
                    label: format!(
                        "{}{} (mean of {} seeds)",
                        e.node,
                        if e.blind { ", blind" } else { "" },
                        g.seeds.len()
                    ),
                    values: dims
                        .iter()
                        .map(|d| find(d).map(|(_, a, _)| a.mean).filter(|m| m.is_finite()))
                        .collect(),
                    color,
                    intervals: dims
                        .iter()
                        .map(|d| {
                            find(d)
                                .map(|(_, a, _)| (a.lo, a.hi))
                                .filter(|(lo, hi)| lo.is_finite() && hi.is_finite())
                        })
                        .collect(),
                    dots: dims
                        .iter()
                        .map(|d| {
                            find(d).map_or_else(Vec::new, |(_, _, per)| {
                                per.iter().map(|s| s.accuracy).collect()
                            })
                        })
                        .collect(),
                }
            })
            .collect();
        if series.is_empty() {
            continue;
        }
        let title = format!(
            "Accuracy over seeds {} — {} (bars: mean, 95% t-interval; dots: seeds)",
            g.seeds
                .iter()
                .map(u64::to_string)
                .collect::<Vec<_>>()
                .join(", "),
            if g.label.is_empty() {
                data.pipeline.to_string()
            } else {
                g.label.clone()
            }
        );
        let file = if several {
            format!("seeds_{}.png", slug(&g.label))
        } else {
            "seeds.png".to_string()
        };
        let path = out.join(file);
        figures.push((
            charts::bars(&path, &title, "accuracy", &dims, &series, Some(&chance()))?,
            title,
        ));
    }
    Ok(())
}

/// `variants.png`: each variant's final accuracy beside the base, with two or more variants.
fn variants_figure(data: &Data, out: &Path, figures: &mut Vec<(PathBuf, String)>) -> Result<()> {
    if !data.swept() {
        return Ok(());
    }
    let dims = data.dimensions();
    let mut series = Vec::new();
    // The base evaluation is shared by every variant; take it from the first that has one.
    let base = data
        .variants
        .iter()
        .find_map(|v| data.evals_of(v).get(&0).copied());
    if let Some(base) = base {
        series.push(accuracy_bars("base".into(), base, &dims, PALETTE[7]));
    }
    let finals: Vec<(usize, &String, u32, &[MetricsRow])> = data
        .variants
        .iter()
        .enumerate()
        .filter_map(|(i, v)| {
            let evals = data.evals_of(v);
            let (&it, rows) = evals.last_key_value()?;
            (it > 0).then_some((i, v, it, *rows))
        })
        .collect();
    if finals.len() < 2 {
        return Ok(());
    }
    for (i, variant, it, rows) in finals {
        // Colour 7 (grey) is the base's.
        let color = PALETTE[[0, 1, 2, 3, 4, 5, 6, 8, 9][i % 9]];
        series.push(accuracy_bars(
            format!("{variant} (iteration {it})"),
            rows,
            &dims,
            color,
        ));
    }
    let title = format!("Final accuracy per variant — {}", data.pipeline);
    let path = out.join("variants.png");
    figures.push((
        charts::bars(&path, &title, "accuracy", &dims, &series, Some(&chance()))?,
        title,
    ));
    Ok(())
}

/// `kept_fraction.png`: the filter's kept share per iteration, total and (one variant) per kind.
fn kept_figure(data: &Data, out: &Path, figures: &mut Vec<(PathBuf, String)>) -> Result<()> {
    if data.kept.is_empty() {
        return Ok(());
    }
    let mut lines = Vec::new();
    for (vi, variant) in data.variants.iter().enumerate() {
        // (source, kind) → (iteration → fraction), first filter node per iteration.
        let mut curves: BTreeMap<(String, String), BTreeMap<u32, f64>> = BTreeMap::new();
        for k in data.kept.iter().filter(|k| in_variant(k.node, variant)) {
            for row in &k.rows {
                curves
                    .entry((row.source.clone(), row.kind.clone()))
                    .or_default()
                    .entry(k.iteration)
                    .or_insert(row.kept_fraction);
            }
        }
        for (ki, ((source, kind), points)) in curves.into_iter().enumerate() {
            let total = source == "total" && kind == "total";
            let points = points
                .into_iter()
                .map(|(it, f)| (f64::from(it), f))
                .collect();
            if data.swept() {
                // One colour per variant; per-kind lines would need a second cue to tell them
                // apart, so with a sweep only the totals are drawn (the table has the kinds).
                if total {
                    let color = PALETTE[vi % PALETTE.len()];
                    lines.push(Line {
                        label: format!("total ({variant})"),
                        points,
                        color,
                        stroke: Stroke::Bold,
                        intervals: Vec::new(),
                    });
                }
            } else if total {
                let color = plotters::style::RGBColor(0, 0, 0);
                lines.push(Line {
                    label: "total".into(),
                    points,
                    color,
                    stroke: Stroke::Bold,
                    intervals: Vec::new(),
                });
            } else {
                let color = PALETTE[ki % PALETTE.len()];
                lines.push(Line {
                    label: format!("{source}/{kind}"),
                    points,
                    color,
                    stroke: Stroke::Thin,
                    intervals: Vec::new(),
                });
            }
        }
    }
    let axes = LineAxes {
        title: format!("Share of judgements kept by the filter — {}", data.pipeline),
        x_desc: "iteration".into(),
        y_desc: "kept fraction".into(),
        integer_x: true,
        y_range: Some((0.0, 1.0)),
        reference: None,
    };
    let path = out.join("kept_fraction.png");
    figures.push((charts::lines(&path, &axes, &lines)?, axes.title));
    Ok(())
}

/// `loss.png`: every `train` node's loss curve.
fn loss_figure(data: &Data, out: &Path, figures: &mut Vec<(PathBuf, String)>) -> Result<()> {
    if data.losses.iter().all(|l| l.rows.is_empty()) {
        return Ok(());
    }
    let lines: Vec<Line> = data
        .losses
        .iter()
        .enumerate()
        .map(|(i, l)| Line {
            label: l.node.name.clone(),
            points: l.rows.iter().map(|p| (p.step as f64, p.loss)).collect(),
            color: PALETTE[i % PALETTE.len()],
            stroke: Stroke::Thin,
            intervals: Vec::new(),
        })
        .collect();
    let axes = LineAxes {
        title: format!("Training loss — {}", data.pipeline),
        x_desc: "step".into(),
        y_desc: "loss (response tokens)".into(),
        integer_x: true,
        y_range: None,
        reference: None,
    };
    let path = out.join("loss.png");
    figures.push((charts::lines(&path, &axes, &lines)?, axes.title));
    Ok(())
}

/// `timeline.png`: one run's nodes on a time axis (see the module docs).
fn timeline_figure(
    pipeline: &str,
    trace: &[TraceLine],
    out: &Path,
    figures: &mut Vec<(PathBuf, String)>,
) -> Result<()> {
    let mut lines: Vec<&TraceLine> = trace.iter().collect();
    // By start; nodes that never started (skipped) last, in plan order (the sort is stable).
    lines.sort_by(|a, b| {
        let key = |l: &TraceLine| l.start_s.unwrap_or(f64::INFINITY);
        key(a).total_cmp(&key(b))
    });
    let mut legend: Vec<(String, plotters::style::RGBColor)> = Vec::new();
    let mut color_of = |op: &str| {
        if let Some((_, c)) = legend.iter().find(|(o, _)| o == op) {
            return *c;
        }
        let c = PALETTE[legend.len() % PALETTE.len()];
        legend.push((op.to_string(), c));
        c
    };
    let spans: Vec<charts::Span> = lines
        .iter()
        .map(|l| {
            let start = l.start_s.unwrap_or(0.0);
            charts::Span {
                label: l.node.clone(),
                submit: l.submit_s,
                start,
                end: l.end_s.unwrap_or(start),
                color: color_of(&l.op),
                gpu: l.gpus > 0,
                cached: l.status == "cached",
                note: match l.status.as_str() {
                    "failed" => Some("FAILED".into()),
                    "skipped" => Some("skipped (a node failed)".into()),
                    _ => None,
                },
            }
        })
        .collect();
    let total = spans.iter().map(|s| s.end).fold(0.0, f64::max);
    let ran = lines.iter().filter(|l| l.status == "ran").count();
    let run = lines.first().map_or("", |l| l.run.as_str());
    let took = if total >= 10.0 {
        format!("{total:.0} s")
    } else {
        format!("{:.0} ms", total * 1000.0)
    };
    let title = format!(
        "Where the time went — {pipeline}: {ran} of {} nodes ran in {took} (run {run})",
        lines.len()
    );
    let path = out.join("timeline.png");
    figures.push((charts::timeline(&path, &title, &spans, &legend)?, title));
    Ok(())
}

/// Writes through a temporary file in the same directory and renames it into place, so a
/// reader never sees half a page.
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let tmp = path.with_file_name(format!(".tmp-{}-{name}", std::process::id()));
    std::fs::write(&tmp, bytes).map_err(|e| miette!("cannot write {}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, path)
        .map_err(|e| miette!("cannot move {} to {}: {e}", tmp.display(), path.display()))
}

/// A figure with three decimals, or a dash when unknown.
fn fixed(x: f64) -> String {
    if x.is_finite() {
        format!("{x:.3}")
    } else {
        "—".into()
    }
}

/// A difference with its sign.
fn signed(x: f64) -> String {
    if x.is_finite() {
        format!("{x:+.3}")
    } else {
        "—".into()
    }
}

fn bounded(v: String, lo: f64, hi: f64, f: fn(f64) -> String) -> String {
    if lo.is_finite() && hi.is_finite() {
        format!("{v} [{}, {}]", f(lo), f(hi))
    } else {
        v
    }
}

/// The seed tables (title, header row + rows): per group, accuracy over seeds per evaluation
/// and dimension, then the gain of the last iteration over the base.
fn seed_tables(groups: &[seeds::Group]) -> Vec<(String, Vec<Vec<String>>)> {
    let mut out = Vec::new();
    for g in groups {
        let seeds_list = g
            .seeds
            .iter()
            .map(u64::to_string)
            .collect::<Vec<_>>()
            .join(", ");
        let mut cells = vec![
            [
                "evaluation",
                "dimension",
                "mean [95% t-interval over seeds]",
                "seeds",
                "per seed: accuracy [95% Wilson] (n)",
            ]
            .map(String::from)
            .to_vec(),
        ];
        for e in &g.evaluations {
            for (d, across, per) in &e.dimensions {
                cells.push(vec![
                    format!("{}{}", e.node, if e.blind { " (blind)" } else { "" }),
                    d.clone(),
                    bounded(fixed(across.mean), across.lo, across.hi, fixed),
                    across.seeds.to_string(),
                    per.iter()
                        .map(|s| {
                            format!(
                                "seed {}: {} ({})",
                                s.seed,
                                bounded(fixed(s.accuracy), s.lo, s.hi, fixed),
                                s.n
                            )
                        })
                        .collect::<Vec<_>>()
                        .join("; "),
                ]);
            }
        }
        out.push((
            format!("accuracy over seeds {seeds_list} — {}", g.title()),
            cells,
        ));
        if let Some((base, last, gains)) = &g.gain {
            let mut cells = vec![
                [
                    "dimension",
                    "mean gain [95% t-interval over seeds]",
                    "seeds",
                    "per seed: gain [95% paired bootstrap over items] (shared items)",
                ]
                .map(String::from)
                .to_vec(),
            ];
            for gain in gains {
                cells.push(vec![
                    gain.dimension.clone(),
                    bounded(
                        signed(gain.across.mean),
                        gain.across.lo,
                        gain.across.hi,
                        signed,
                    ),
                    gain.across.seeds.to_string(),
                    gain.per_seed
                        .iter()
                        .map(|(seed, p)| {
                            format!(
                                "seed {seed}: {} ({})",
                                bounded(signed(p.difference), p.lo, p.hi, signed),
                                p.items
                            )
                        })
                        .collect::<Vec<_>>()
                        .join("; "),
                ]);
            }
            out.push((format!("gain {last} − {base} — {}", g.title()), cells));
        }
    }
    out
}

/// The per-iteration diagnostics as one table (header row + rows).
fn diagnostics_table(rows: &[diagnostics::Row], swept: bool) -> Vec<Vec<String>> {
    let mut header = Vec::new();
    if swept {
        header.push("variant".to_string());
    }
    header.extend(
        [
            "iteration",
            "judge agrees with labels",
            "vote label precision (n)",
            "A-share",
            "unparseable",
            "reasoning copies an answer (n)",
            "orders agree (pairs)",
            "kept fraction",
        ]
        .map(String::from),
    );
    let mut cells = vec![header];
    for r in rows {
        let mut row = Vec::new();
        if swept {
            row.push(r.variant.clone());
        }
        row.extend([
            r.iteration.to_string(),
            fixed(r.agreement),
            format!("{} ({})", fixed(r.label_precision), r.labelled),
            fixed(r.a_share),
            fixed(r.unparseable),
            format!("{} ({})", fixed(r.copies), r.copy_checked),
            format!("{} ({})", fixed(r.orders_agree), r.both_orders),
            fixed(r.kept_fraction),
        ]);
        cells.push(row);
    }
    cells
}

fn number_json(x: f64) -> serde_json::Value {
    if x.is_finite() {
        x.into()
    } else {
        serde_json::Value::Null
    }
}

fn across_json(a: &seeds::AcrossSeeds) -> serde_json::Value {
    serde_json::json!({
        "mean": number_json(a.mean),
        "lo": number_json(a.lo),
        "hi": number_json(a.hi),
        "seeds": a.seeds,
    })
}

fn seeds_json(groups: &[seeds::Group]) -> serde_json::Value {
    groups
        .iter()
        .map(|g| {
            serde_json::json!({
                "variant": g.label,
                "seeds": g.seeds,
                "evaluations": g.evaluations.iter().map(|e| serde_json::json!({
                    "node": e.node,
                    "iteration": e.iteration,
                    "blind": e.blind,
                    "dimensions": e.dimensions.iter().map(|(d, a, per)| serde_json::json!({
                        "dimension": d,
                        "across_seeds": across_json(a),
                        "per_seed": per.iter().map(|s| serde_json::json!({
                            "seed": s.seed,
                            "accuracy": number_json(s.accuracy),
                            "lo": number_json(s.lo),
                            "hi": number_json(s.hi),
                            "n": s.n,
                        })).collect::<Vec<_>>(),
                    })).collect::<Vec<_>>(),
                })).collect::<Vec<_>>(),
                "gain": g.gain.as_ref().map(|(base, last, gains)| serde_json::json!({
                    "base": base,
                    "last": last,
                    "dimensions": gains.iter().map(|gain| serde_json::json!({
                        "dimension": gain.dimension,
                        "across_seeds": across_json(&gain.across),
                        "per_seed": gain.per_seed.iter().map(|(seed, p)| serde_json::json!({
                            "seed": seed,
                            "difference": number_json(p.difference),
                            "lo": number_json(p.lo),
                            "hi": number_json(p.hi),
                            "items": p.items,
                        })).collect::<Vec<_>>(),
                    })).collect::<Vec<_>>(),
                })),
            })
        })
        .collect()
}

fn diagnostics_json(rows: &[diagnostics::Row]) -> serde_json::Value {
    rows.iter()
        .map(|r| {
            serde_json::json!({
                "variant": r.variant,
                "iteration": r.iteration,
                "judgements": r.judgements,
                "agreement": number_json(r.agreement),
                "label_precision": number_json(r.label_precision),
                "labelled": r.labelled,
                "a_share": number_json(r.a_share),
                "unparseable": number_json(r.unparseable),
                "copies": number_json(r.copies),
                "copy_checked": r.copy_checked,
                "orders_agree": number_json(r.orders_agree),
                "both_orders": r.both_orders,
                "kept_fraction": number_json(r.kept_fraction),
            })
        })
        .collect()
}

/// `judgeflow compare`'s sections from the self-training frames (matches
/// `judgeflow_engine::cli::Comparer`): with a seed sweep, the accuracy over seeds per variant
/// and evaluation and the paired gain of the last iteration over the base ([`seeds`]); with
/// iterations, the per-iteration diagnostics ([`diagnostics`]). Nodes without results are
/// left out.
pub fn compare_sections(
    _pipeline: &str,
    nodes: &[ReportNode],
) -> Result<Vec<judgeflow_engine::cli::CompareSection>> {
    use judgeflow_engine::cli::{CompareSection, format_table};
    let data = read("", nodes)?;
    let mut out = Vec::new();
    if !data.seed_groups.is_empty() {
        let text = seed_tables(&data.seed_groups)
            .iter()
            .map(|(title, cells)| format!("{title}\n{}", format_table(cells)))
            .collect::<Vec<_>>()
            .join("\n");
        out.push(CompareSection {
            title: "seeds".into(),
            text,
            json: seeds_json(&data.seed_groups),
        });
    }
    if !data.diagnostics.is_empty() {
        out.push(CompareSection {
            title: "per-iteration diagnostics".into(),
            text: format_table(&diagnostics_table(&data.diagnostics, data.swept())),
            json: diagnostics_json(&data.diagnostics),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn evaluation(node: &str, iteration: u32, blind: bool) -> seeds::Evaluation {
        seeds::Evaluation {
            node: node.to_string(),
            iteration,
            blind,
            dimensions: Vec::new(),
        }
    }

    #[test]
    fn the_seeds_chart_draws_the_base_and_the_last_iteration_with_their_blind_twins() {
        let mut evaluations = vec![
            evaluation("eval_base", 0, false),
            evaluation("eval_base_blind", 0, true),
        ];
        for k in 1..=7 {
            evaluations.push(evaluation(&format!("evaluate@{k}"), k, false));
            evaluations.push(evaluation(&format!("evaluate_blind@{k}"), k, true));
        }
        let nodes: Vec<&str> = charted(&evaluations)
            .iter()
            .map(|e| e.node.as_str())
            .collect();
        assert_eq!(
            nodes,
            [
                "eval_base",
                "eval_base_blind",
                "evaluate@7",
                "evaluate_blind@7"
            ]
        );
        // Evaluations outside any iteration group are all drawn.
        let flat = [evaluation("a", 0, false), evaluation("b", 0, true)];
        assert_eq!(charted(&flat).len(), 2);
    }
}
