//! Frames and tables as aligned text, as `show` and `compare` print them; an estimate with
//! `_lo`/`_hi` bound columns prints as one `value [lo, hi]` column.

use std::fmt::Write as _;

use polars::prelude::{DataFrame, DataType};

/// A frame as an aligned text table (all rows given; binary cells shown by size).
pub fn format_frame(df: &DataFrame) -> String {
    let shown = printed_columns(df);
    let mut cells: Vec<Vec<String>> = vec![shown.iter().map(Printed::header).collect()];
    for row in 0..df.height() {
        cells.push(
            shown
                .iter()
                .map(|p| match p {
                    Printed::Interval(v, lo, hi) => interval_cell(v, lo, hi, row, 3),
                    Printed::Plain(c) => match c.dtype() {
                        DataType::Binary => format!(
                            "<{} bytes>",
                            c.binary()
                                .ok()
                                .and_then(|b| b.get(row))
                                .map_or(0, |b| b.len())
                        ),
                        _ => {
                            let v = c.get(row).map(|v| v.to_string()).unwrap_or_default();
                            let v = v.trim_matches('"').replace('\n', "⏎");
                            if v.chars().count() > 60 {
                                format!("{}…", v.chars().take(59).collect::<String>())
                            } else {
                                v
                            }
                        }
                    },
                })
                .collect(),
        );
    }
    text_table(&cells)
}

/// How one column of a frame prints. A float column `NAME` whose frame also has float columns
/// `NAME_lo` and `NAME_hi` (an estimate and its interval, as `evaluate`'s `accuracy`) prints as
/// one column, `value [lo, hi]`, so that no estimate is read without its uncertainty; the
/// bounds are not printed on their own.
pub(super) enum Printed<'a> {
    Plain(&'a polars::prelude::Column),
    Interval(
        &'a polars::prelude::Column,
        &'a polars::prelude::Column,
        &'a polars::prelude::Column,
    ),
}

impl Printed<'_> {
    pub(super) fn header(&self) -> String {
        match self {
            Printed::Plain(c) => c.name().to_string(),
            Printed::Interval(c, ..) => format!("{} [lo, hi]", c.name()),
        }
    }
}

pub(super) fn printed_columns(df: &DataFrame) -> Vec<Printed<'_>> {
    let float = |name: &str| {
        df.column(name)
            .ok()
            .filter(|c| matches!(c.dtype(), DataType::Float64 | DataType::Float32))
    };
    let bounds = |name: &str| Some((float(&format!("{name}_lo"))?, float(&format!("{name}_hi"))?));
    df.columns()
        .iter()
        .filter_map(|c| {
            let name = c.name().as_str();
            let bound_of = ["_lo", "_hi"].iter().any(|suffix| {
                name.strip_suffix(suffix)
                    .is_some_and(|base| float(base).is_some() && bounds(base).is_some())
            });
            if bound_of {
                return None;
            }
            Some(match (float(name), bounds(name)) {
                (Some(_), Some((lo, hi))) => Printed::Interval(c, lo, hi),
                _ => Printed::Plain(c),
            })
        })
        .collect()
}

/// `value [lo, hi]` with `digits` decimals; an unknown value prints as `NaN`.
pub(super) fn interval_cell(
    v: &polars::prelude::Column,
    lo: &polars::prelude::Column,
    hi: &polars::prelude::Column,
    row: usize,
    digits: usize,
) -> String {
    let get = |c: &polars::prelude::Column| {
        c.cast(&DataType::Float64)
            .ok()
            .and_then(|c| c.f64().ok().and_then(|f| f.get(row)))
            .unwrap_or(f64::NAN)
    };
    format!(
        "{:.digits$} [{:.digits$}, {:.digits$}]",
        get(v),
        get(lo),
        get(hi)
    )
}

pub(super) fn text_table(cells: &[Vec<String>]) -> String {
    let ncol = cells.first().map_or(0, Vec::len);
    let widths: Vec<usize> = (0..ncol)
        .map(|c| {
            cells
                .iter()
                .map(|r| r[c].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut s = String::new();
    for (ri, row) in cells.iter().enumerate() {
        let line: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(v, w)| format!("{v:<w$}"))
            .collect();
        let _ = writeln!(s, "{}", line.join("  ").trim_end());
        if ri == 0 {
            let rule: Vec<String> = widths.iter().map(|w| "─".repeat(*w)).collect();
            let _ = writeln!(s, "{}", rule.join("  "));
        }
    }
    s
}

/// A table as aligned text, header ruled (for the binary's
/// [`CompareSection`](super::CompareSection)s).
pub fn format_table(cells: &[Vec<String>]) -> String {
    text_table(cells)
}

#[cfg(test)]
mod tests {
    use super::*;
    use polars::prelude::Column;

    #[test]
    fn estimates_print_with_their_interval() {
        let df = DataFrame::new_infer_height(vec![
            Column::new("dimension".into(), ["general", "macro"]),
            Column::new("accuracy".into(), [0.5f64, f64::NAN]),
            Column::new("accuracy_lo".into(), [0.25f64, f64::NAN]),
            Column::new("accuracy_hi".into(), [0.75f64, f64::NAN]),
            Column::new("n".into(), [10i64, 0]),
            // A lone bound without its estimate prints as itself.
            Column::new("other_lo".into(), [1.0f64, 2.0]),
        ])
        .unwrap();
        let text = format_frame(&df);
        let mut lines = text.lines();
        let header = lines.next().unwrap();
        assert!(header.contains("accuracy [lo, hi]"), "{text}");
        assert!(
            !header.contains("accuracy_lo") && header.contains("other_lo"),
            "{text}"
        );
        assert!(text.contains("0.500 [0.250, 0.750]"), "{text}");
        assert!(text.contains("NaN [NaN, NaN]"), "{text}");
    }
}
