//! Two chart shapes drawn with plotters into PNGs: lines over a numeric x axis and grouped bars,
//! both with optional 95% error bars and a dashed reference line (chance, for accuracies).
//! The font is embedded so that charts render the same on machines without system fonts.

use std::path::{Path, PathBuf};
use std::sync::Once;

use miette::{Result, miette};
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use plotters::style::FontStyle;
use plotters::style::text_anchor::{HPos, Pos, VPos};

/// Size of every figure, in pixels.
pub const SIZE: (u32, u32) = (900, 560);

/// DejaVu Sans, shipped with the synthetic world (its licence is next to it).
static FONT: &[u8] = include_bytes!("../../world/assets/DejaVuSans.ttf");

/// Distinguishable colours (Tableau 10), picked in order.
pub const PALETTE: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

fn register_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // Only fails on bytes that are not a font; these are checked by every chart test.
        let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, FONT);
    });
}

/// How a line is drawn.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Stroke {
    /// Thin and solid, with dots at the points.
    Thin,
    /// Thick and solid.
    Bold,
    /// Thick and dashed.
    Dashed,
}

/// One line of a line chart; points with a NaN y are skipped.
pub struct Line {
    /// Legend entry.
    pub label: String,
    /// (x, y) points, in x order.
    pub points: Vec<(f64, f64)>,
    /// Colour.
    pub color: RGBColor,
    /// Stroke.
    pub stroke: Stroke,
    /// 95% interval per point (same order as `points`), drawn as error bars; empty: none.
    pub intervals: Vec<Option<(f64, f64)>>,
}

/// A horizontal reference line (chance accuracy), dashed, with its legend entry.
pub struct Reference {
    /// Where it is drawn.
    pub y: f64,
    /// Legend entry.
    pub label: String,
}

/// Axis titles and ranges of a line chart.
pub struct LineAxes {
    /// Chart title.
    pub title: String,
    /// X axis description.
    pub x_desc: String,
    /// Y axis description.
    pub y_desc: String,
    /// Label the x axis at whole numbers only (iterations, steps).
    pub integer_x: bool,
    /// Y range; `None` fits the data.
    pub y_range: Option<(f64, f64)>,
    /// A dashed reference line across the plot.
    pub reference: Option<Reference>,
}

/// Draws `reference` across `x0..x1` with its legend entry.
fn reference_line(
    chart: &mut ChartContext<'_, BitMapBackend<'_>, Cartesian2d<RangedCoordf64, RangedCoordf64>>,
    reference: &Reference,
    (x0, x1): (f64, f64),
    path: &Path,
) -> Result<()> {
    let style = BLACK.mix(0.55).stroke_width(2);
    chart
        .draw_series(DashedLineSeries::new(
            [(x0, reference.y), (x1, reference.y)],
            6,
            6,
            style,
        ))
        .map_err(|e| drawing(path, e))?
        .label(&reference.label)
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 22, y)], style));
    Ok(())
}

/// A caption's font size: 24 where the title fits an image `width` pixels wide, smaller (not
/// under 12) where it would not. Why: plotters centres a caption and cuts off what is wider
/// than the image at both ends, and the seeds chart's title ran to ~1,000 pixels at 24.
fn caption_size(title: &str, width: u32) -> u32 {
    // DejaVu Sans averages about half its size in width a character.
    let chars = title.chars().count().max(1) as f64;
    ((f64::from(width) - 28.0) / (0.5 * chars))
        .floor()
        .clamp(12.0, 24.0) as u32
}

/// A vertical error bar from `lo` to `hi` at `x`, with caps `cap` wide on each side.
fn whisker(
    x: f64,
    (lo, hi): (f64, f64),
    cap: f64,
    color: RGBColor,
) -> Vec<PathElement<(f64, f64)>> {
    let style = color.stroke_width(2);
    vec![
        PathElement::new(vec![(x, lo), (x, hi)], style),
        PathElement::new(vec![(x - cap, lo), (x + cap, lo)], style),
        PathElement::new(vec![(x - cap, hi), (x + cap, hi)], style),
    ]
}

/// Writes `path` atomically: draws into a temporary file in the same directory (its name keeps
/// the `.png` extension, which picks the encoder) and renames it into place.
fn atomically(
    path: &Path,
    draw: impl FnOnce(&DrawingArea<BitMapBackend, plotters::coord::Shift>) -> Result<()>,
) -> Result<PathBuf> {
    atomically_sized(path, SIZE, draw)
}

/// [`atomically`] at a size other than [`SIZE`].
fn atomically_sized(
    path: &Path,
    size: (u32, u32),
    draw: impl FnOnce(&DrawingArea<BitMapBackend, plotters::coord::Shift>) -> Result<()>,
) -> Result<PathBuf> {
    register_font();
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("chart.png");
    let tmp = path.with_file_name(format!(".tmp-{}-{name}", std::process::id()));
    {
        let root = BitMapBackend::new(&tmp, size).into_drawing_area();
        draw(&root)?;
        root.present().map_err(|e| drawing(path, e))?;
    }
    std::fs::rename(&tmp, path)
        .map_err(|e| miette!("cannot move {} to {}: {e}", tmp.display(), path.display()))?;
    Ok(path.to_path_buf())
}

fn drawing(path: &Path, e: impl std::fmt::Display) -> miette::Report {
    miette!("cannot draw {}: {e}", path.display())
}

/// A line chart. Lines of a single point are visible through their dots.
pub fn lines(path: &Path, axes: &LineAxes, lines: &[Line]) -> Result<PathBuf> {
    let finite = || {
        lines
            .iter()
            .flat_map(|l| l.points.iter())
            .filter(|(_, y)| y.is_finite())
    };
    let (x0, x1) = finite().fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &(x, _)| {
        (lo.min(x), hi.max(x))
    });
    let (x0, x1) = if x0 > x1 { (0.0, 1.0) } else { (x0, x1) };
    // Pad so that end points and a single x value are not drawn on the frame.
    let pad = ((x1 - x0) * 0.04).max(0.25);
    let (y0, y1) = axes.y_range.unwrap_or_else(|| {
        let (lo, hi) = finite().fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &(_, y)| {
            (lo.min(y), hi.max(y))
        });
        if lo > hi {
            (0.0, 1.0)
        } else {
            let margin = ((hi - lo) * 0.08).max(1e-3);
            (lo - margin, hi + margin)
        }
    });
    atomically(path, |root| {
        let err = |e| drawing(path, e);
        root.fill(&WHITE).map_err(err)?;
        let mut chart = ChartBuilder::on(root)
            .caption(
                &axes.title,
                ("sans-serif", caption_size(&axes.title, SIZE.0)),
            )
            .margin(14)
            .x_label_area_size(48)
            .y_label_area_size(64)
            .build_cartesian_2d(x0 - pad..x1 + pad, y0..y1)
            .map_err(err)?;
        let whole = |x: &f64| {
            if (x - x.round()).abs() < 1e-9 {
                format!("{}", x.round() as i64)
            } else {
                String::new()
            }
        };
        let plain = |x: &f64| format!("{x}");
        let x_format: &dyn Fn(&f64) -> String = if axes.integer_x { &whole } else { &plain };
        chart
            .configure_mesh()
            .x_desc(&axes.x_desc)
            .y_desc(&axes.y_desc)
            .x_label_formatter(x_format)
            .y_label_formatter(&|y| format!("{y:.2}"))
            .label_style(("sans-serif", 15))
            .axis_desc_style(("sans-serif", 17))
            .light_line_style(WHITE.mix(0.0))
            .draw()
            .map_err(err)?;
        if let Some(reference) = &axes.reference {
            reference_line(&mut chart, reference, (x0 - pad, x1 + pad), path)?;
        }
        // Lines with error bars are shifted apart a little along x, so that their bars do not
        // hide each other at the same iteration.
        let with_bars = lines.iter().filter(|l| !l.intervals.is_empty()).count();
        let dodge = (x1 - x0).max(1.0) * 0.012;
        let mut barred = 0usize;
        for line in lines {
            let shift = if line.intervals.is_empty() {
                0.0
            } else {
                barred += 1;
                (barred as f64 - (with_bars as f64 + 1.0) / 2.0) * dodge
            };
            let points: Vec<(f64, f64)> = line
                .points
                .iter()
                .copied()
                .filter(|(_, y)| y.is_finite())
                .map(|(x, y)| (x + shift, y))
                .collect();
            let bars: Vec<PathElement<(f64, f64)>> = line
                .points
                .iter()
                .zip(&line.intervals)
                .filter_map(|(&(x, _), iv)| {
                    Some(whisker(x + shift, (*iv)?, dodge * 0.5, line.color))
                })
                .flatten()
                .collect();
            chart.draw_series(bars).map_err(err)?;
            if points.is_empty() {
                continue;
            }
            let color = line.color;
            let width = if line.stroke == Stroke::Thin { 2 } else { 4 };
            let style = color.stroke_width(width);
            let anno = match line.stroke {
                Stroke::Dashed => chart
                    .draw_series(DashedLineSeries::new(points.clone(), 12, 6, style))
                    .map_err(err)?,
                Stroke::Thin | Stroke::Bold => chart
                    .draw_series(LineSeries::new(points.clone(), style))
                    .map_err(err)?,
            };
            anno.label(&line.label).legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 22, y)], color.stroke_width(width))
            });
            chart
                .draw_series(
                    points
                        .iter()
                        .map(|&p| Circle::new(p, width + 2, color.filled())),
                )
                .map_err(err)?;
        }
        chart
            .configure_series_labels()
            .position(emptiest_corner(lines, (x0 - pad, x1 + pad), (y0, y1)))
            .label_font(("sans-serif", 14))
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK.mix(0.4))
            .draw()
            .map_err(err)?;
        Ok(())
    })
}

/// The corner of the plot where the lines pass least, for the legend: sampled along each line,
/// counted in the 40% × 40% box of each corner.
fn emptiest_corner(
    lines: &[Line],
    (x0, x1): (f64, f64),
    (y0, y1): (f64, f64),
) -> SeriesLabelPosition {
    let mut counts = [0usize; 4]; // upper left, upper right, lower left, lower right
    for line in lines {
        let points: Vec<(f64, f64)> = line
            .points
            .iter()
            .copied()
            .filter(|(_, y)| y.is_finite())
            .collect();
        let samples = points.windows(2).flat_map(|w| {
            (0..=20).map(move |k| {
                let t = f64::from(k) / 20.0;
                (
                    w[0].0 + t * (w[1].0 - w[0].0),
                    w[0].1 + t * (w[1].1 - w[0].1),
                )
            })
        });
        for (x, y) in samples.chain(points.iter().copied()) {
            let (fx, fy) = ((x - x0) / (x1 - x0), (y - y0) / (y1 - y0));
            let upper = fy > 0.6;
            let lower = fy < 0.4;
            if fx < 0.4 && upper {
                counts[0] += 1;
            } else if fx > 0.6 && upper {
                counts[1] += 1;
            } else if fx < 0.4 && lower {
                counts[2] += 1;
            } else if fx > 0.6 && lower {
                counts[3] += 1;
            }
        }
    }
    // Ties go to the lower right, where accuracy curves (which rise) usually leave room.
    let corners = [
        (counts[3], SeriesLabelPosition::LowerRight),
        (counts[1], SeriesLabelPosition::UpperRight),
        (counts[2], SeriesLabelPosition::LowerLeft),
        (counts[0], SeriesLabelPosition::UpperLeft),
    ];
    corners
        .into_iter()
        .min_by_key(|(n, _)| *n)
        .map(|(_, p)| p)
        .unwrap_or(SeriesLabelPosition::LowerRight)
}

/// One bar per group; `None` (or NaN) leaves a gap marked "n/a".
pub struct Bars {
    /// Legend entry.
    pub label: String,
    /// Value per group.
    pub values: Vec<Option<f64>>,
    /// Colour.
    pub color: RGBColor,
    /// 95% interval per group, drawn as error bars; empty: none.
    pub intervals: Vec<Option<(f64, f64)>>,
    /// Individual values per group (one per seed), drawn as dots over the bar; empty: none.
    pub dots: Vec<Vec<f64>>,
}

/// Grouped bars on a 0..1 axis (accuracies, fractions), each labelled with its value (above its
/// error bar, when it has one), and an optional dashed reference line. The axis runs on,
/// unlabelled, past 1 to leave the legend room above the bars.
pub fn bars(
    path: &Path,
    title: &str,
    y_desc: &str,
    groups: &[String],
    series: &[Bars],
    reference: Option<&Reference>,
) -> Result<PathBuf> {
    let n = groups.len().max(1) as f64;
    atomically(path, |root| {
        let err = |e| drawing(path, e);
        root.fill(&WHITE).map_err(err)?;
        let mut chart = ChartBuilder::on(root)
            .caption(title, ("sans-serif", caption_size(title, SIZE.0)))
            .margin(14)
            .x_label_area_size(48)
            .y_label_area_size(64)
            .build_cartesian_2d(0.0..n, 0.0..1.32)
            .map_err(err)?;
        // Group names go under the group centres, which plotters' own x labels (placed at
        // "nice" numbers) cannot do.
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(0)
            .y_desc(y_desc)
            .y_label_formatter(&|y| {
                if *y <= 1.0 + 1e-9 {
                    format!("{y:.1}")
                } else {
                    String::new()
                }
            })
            .label_style(("sans-serif", 15))
            .axis_desc_style(("sans-serif", 17))
            .light_line_style(WHITE.mix(0.0))
            .draw()
            .map_err(err)?;
        let k = series.len().max(1) as f64;
        let width = 0.8 / k;
        for (j, s) in series.iter().enumerate() {
            let color = s.color;
            let left = |i: usize| i as f64 + 0.1 + j as f64 * width;
            let values: Vec<(usize, Option<f64>)> = s
                .values
                .iter()
                .map(|v| v.filter(|v| v.is_finite()))
                .enumerate()
                .collect();
            chart
                .draw_series(values.iter().filter_map(|&(i, v)| {
                    let v = v?;
                    Some(Rectangle::new(
                        [(left(i), 0.0), (left(i) + width * 0.92, v)],
                        color.filled(),
                    ))
                }))
                .map_err(err)?
                .label(&s.label)
                .legend(move |(x, y)| {
                    Rectangle::new([(x, y - 6), (x + 14, y + 6)], color.filled())
                });
            let interval = |i: usize| s.intervals.get(i).copied().flatten();
            let whiskers: Vec<PathElement<(f64, f64)>> = values
                .iter()
                .filter_map(|&(i, v)| {
                    v?;
                    let centre = left(i) + width * 0.46;
                    Some(whisker(centre, interval(i)?, width * 0.18, BLACK))
                })
                .flatten()
                .collect();
            chart.draw_series(whiskers).map_err(err)?;
            let dots: Vec<Circle<(f64, f64), i32>> = s
                .dots
                .iter()
                .enumerate()
                .flat_map(|(i, values)| {
                    let centre = left(i) + width * 0.46;
                    values
                        .iter()
                        .filter(|v| v.is_finite())
                        .map(move |&v| Circle::new((centre, v), 4, BLACK.filled()))
                })
                .collect();
            chart.draw_series(dots).map_err(err)?;
            let text = ("sans-serif", 13)
                .into_font()
                .color(&BLACK)
                .pos(Pos::new(HPos::Center, VPos::Bottom));
            chart
                .draw_series(values.iter().map(|&(i, v)| {
                    let shown = v.map_or("n/a".to_string(), |v| format!("{v:.2}"));
                    let top = interval(i).map_or(v.unwrap_or(0.0), |(_, hi)| hi);
                    Text::new(shown, (left(i) + width * 0.46, top + 0.015), text.clone())
                }))
                .map_err(err)?;
        }
        if let Some(reference) = reference {
            reference_line(&mut chart, reference, (0.0, n), path)?;
        }
        let name_style = ("sans-serif", 15)
            .into_font()
            .color(&BLACK)
            .pos(Pos::new(HPos::Center, VPos::Top));
        for (i, group) in groups.iter().enumerate() {
            let (x, y) = chart.backend_coord(&(i as f64 + 0.5, 0.0));
            root.draw(&Text::new(group.as_str(), (x, y + 8), name_style.clone()))
                .map_err(err)?;
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .label_font(("sans-serif", 14))
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK.mix(0.4))
            .draw()
            .map_err(err)?;
        Ok(())
    })
}

/// An axis label in seconds, with as many decimals as a run of `t_max` seconds needs (a warm
/// run of cache hits lasts milliseconds).
fn seconds(x: f64, t_max: f64) -> String {
    if t_max < 0.1 {
        format!("{:.1} ms", x * 1000.0)
    } else if t_max < 10.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.0}")
    }
}

/// One node on a timeline.
pub struct Span {
    /// Row label (the node's name).
    pub label: String,
    /// When its inputs were ready (queue wait is drawn from here to `start`).
    pub submit: Option<f64>,
    /// When it started.
    pub start: f64,
    /// When it ended.
    pub end: f64,
    /// Fill colour (its operator's).
    pub color: RGBColor,
    /// Held a GPU: drawn with a black outline and marked "GPU".
    pub gpu: bool,
    /// Taken from the cache: drawn as a hollow marker, not a bar.
    pub cached: bool,
    /// Did not finish (failed or skipped): drawn hatched grey / not at all, and marked.
    pub note: Option<String>,
}

/// A Gantt chart: one row per span, top to bottom, on a time axis in seconds; `legend` maps
/// colours to operator names. The height grows with the number of rows so names stay legible.
pub fn timeline(
    path: &Path,
    title: &str,
    spans: &[Span],
    legend: &[(String, RGBColor)],
) -> Result<PathBuf> {
    let n = spans.len().max(1);
    let row_px = 24u32;
    let height = (150 + row_px * n as u32).max(360);
    let longest = spans
        .iter()
        .map(|s| s.label.chars().count())
        .max()
        .unwrap_or(4);
    let label_px = (longest as u32 * 8 + 16).clamp(80, 360);
    let t_max = spans.iter().map(|s| s.end).fold(0.0f64, f64::max).max(1e-3);
    // Room on the right for the duration labels of bars that end near the run's end.
    let x_max = t_max * 1.16;
    atomically_sized(path, (1200, height), |root| {
        let err = |e| drawing(path, e);
        root.fill(&WHITE).map_err(err)?;
        let mut chart = ChartBuilder::on(root)
            .caption(title, ("sans-serif", 22))
            .margin(14)
            .x_label_area_size(44)
            .y_label_area_size(label_px)
            .build_cartesian_2d(0.0..x_max, 0.0..n as f64)
            .map_err(err)?;
        chart
            .configure_mesh()
            .disable_y_mesh()
            .y_labels(0)
            .x_desc("time since the run started (s unless marked)")
            .x_label_formatter(&|x| seconds(*x, t_max))
            .label_style(("sans-serif", 14))
            .axis_desc_style(("sans-serif", 16))
            .light_line_style(WHITE.mix(0.0))
            .bold_line_style(BLACK.mix(0.08))
            .draw()
            .map_err(err)?;
        // Row i (top = 0) spans y in [n - i - 1, n - i].
        let top = |i: usize| (n - i) as f64;
        let bottom = |i: usize| (n - i - 1) as f64;
        let mid = |i: usize| (n - i) as f64 - 0.5;
        for (i, s) in spans.iter().enumerate() {
            if i % 2 == 1 {
                chart
                    .draw_series(std::iter::once(Rectangle::new(
                        [(0.0, bottom(i)), (x_max, top(i))],
                        RGBColor(246, 246, 246).filled(),
                    )))
                    .map_err(err)?;
            }
            // A cache hit's "wait" is its lookup, not a queue: not drawn.
            let waited = s
                .submit
                .filter(|&q| !s.cached && s.start - q > t_max * 0.002);
            if let Some(submit) = waited {
                let mut wait = Rectangle::new(
                    [(submit, bottom(i)), (s.start, top(i))],
                    RGBColor(200, 200, 200).filled(),
                );
                wait.set_margin(9, 9, 0, 0);
                chart.draw_series(std::iter::once(wait)).map_err(err)?;
            }
            if s.note.is_some() && s.end <= s.start {
                continue;
            }
            if s.cached {
                chart
                    .draw_series(std::iter::once(Circle::new(
                        (s.start, mid(i)),
                        5,
                        s.color.stroke_width(2),
                    )))
                    .map_err(err)?;
                continue;
            }
            // A bar at least 2 px wide, so that sub-second nodes are visible.
            let min_width = x_max / 1000.0;
            let end = s.end.max(s.start + min_width);
            let mut bar = Rectangle::new([(s.start, bottom(i)), (end, top(i))], s.color.filled());
            bar.set_margin(3, 3, 0, 0);
            chart.draw_series(std::iter::once(bar)).map_err(err)?;
            if s.gpu {
                let mut outline =
                    Rectangle::new([(s.start, bottom(i)), (end, top(i))], BLACK.stroke_width(2));
                outline.set_margin(3, 3, 0, 0);
                chart.draw_series(std::iter::once(outline)).map_err(err)?;
            }
        }
        let style = ("sans-serif", 13).into_font().color(&BLACK);
        let right = style.clone().pos(Pos::new(HPos::Left, VPos::Center));
        for (i, s) in spans.iter().enumerate() {
            let wall = s.end - s.start;
            let mut text = if s.cached {
                "cached".to_string()
            } else if wall >= 10.0 {
                format!("{wall:.0} s")
            } else if wall >= 1.0 {
                format!("{wall:.1} s")
            } else {
                // Sub-second nodes (filters, concatenations) would all read "0.0 s".
                format!("{:.0} ms", wall * 1000.0)
            };
            if s.gpu {
                text.push_str("  GPU");
            }
            if let Some(note) = &s.note {
                text = note.clone();
            }
            let (x, y) = chart.backend_coord(&(s.end.max(s.start), mid(i)));
            root.draw(&Text::new(text, (x + 10, y), right.clone()))
                .map_err(err)?;
            let (x, y) = chart.backend_coord(&(0.0, mid(i)));
            let name = ("sans-serif", 14)
                .into_font()
                .color(&BLACK)
                .pos(Pos::new(HPos::Right, VPos::Center));
            root.draw(&Text::new(s.label.as_str(), (x - 8, y), name))
                .map_err(err)?;
        }
        for (op, color) in legend {
            let color = *color;
            chart
                .draw_series(std::iter::empty::<Rectangle<(f64, f64)>>())
                .map_err(err)?
                .label(op)
                .legend(move |(x, y)| {
                    Rectangle::new([(x, y - 6), (x + 14, y + 6)], color.filled())
                });
        }
        chart
            .draw_series(std::iter::empty::<Rectangle<(f64, f64)>>())
            .map_err(err)?
            .label("queue wait")
            .legend(|(x, y)| {
                Rectangle::new(
                    [(x, y - 2), (x + 14, y + 2)],
                    RGBColor(200, 200, 200).filled(),
                )
            });
        chart
            .draw_series(std::iter::empty::<Circle<(f64, f64), i32>>())
            .map_err(err)?
            .label("cache hit")
            .legend(|(x, y)| Circle::new((x + 7, y), 5, BLACK.stroke_width(2)));
        chart
            .draw_series(std::iter::empty::<Rectangle<(f64, f64)>>())
            .map_err(err)?
            .label("GPU node (outlined)")
            .legend(|(x, y)| Rectangle::new([(x, y - 6), (x + 14, y + 6)], BLACK.stroke_width(2)));
        chart
            .configure_series_labels()
            // Early nodes sit top left and late ones bottom right: the upper right is free.
            .position(SeriesLabelPosition::UpperRight)
            .label_font(("sans-serif", 13))
            .background_style(WHITE.mix(0.9))
            .border_style(BLACK.mix(0.4))
            .draw()
            .map_err(err)?;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_caption_shrinks_only_when_it_would_not_fit() {
        assert_eq!(caption_size("Loss per step", SIZE.0), 24);
        let long = "Accuracy over seeds 1, 2, 3 — judge_lab_self_train (bars: mean, 95% t-interval; \
                    dots: seeds)";
        let size = caption_size(long, SIZE.0);
        assert!((12..24).contains(&size), "{size}");
        // Half the size a character: the title then fits the image, margins kept.
        assert!(f64::from(size) * 0.5 * long.chars().count() as f64 <= f64::from(SIZE.0) - 28.0);
        assert_eq!(caption_size(&"x".repeat(1000), SIZE.0), 12);
    }
}
