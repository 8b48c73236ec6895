//! Column access for operators: owned vectors out of a frame (with a diagnostic naming the
//! column when it is missing or mistyped), and columns back in.

use miette::{IntoDiagnostic, miette};
use polars::prelude::{Column, DataFrame};

fn column<'a>(df: &'a DataFrame, name: &str) -> miette::Result<&'a Column> {
    df.column(name).map_err(|_| {
        miette!(
            code = "judgeflow::frame::column",
            "the frame has no column `{name}`"
        )
    })
}

/// A string column; nulls stay `None`.
pub(crate) fn strs(df: &DataFrame, name: &str) -> miette::Result<Vec<Option<String>>> {
    Ok(column(df, name)?
        .str()
        .into_diagnostic()?
        .iter()
        .map(|v| v.map(str::to_string))
        .collect())
}

/// A string column; nulls become empty strings (for columns a schema requires).
pub(crate) fn texts(df: &DataFrame, name: &str) -> miette::Result<Vec<String>> {
    Ok(strs(df, name)?
        .into_iter()
        .map(Option::unwrap_or_default)
        .collect())
}

/// A binary column (encoded images); nulls become empty.
pub(crate) fn bins(df: &DataFrame, name: &str) -> miette::Result<Vec<Vec<u8>>> {
    Ok(column(df, name)?
        .binary()
        .into_diagnostic()?
        .iter()
        .map(|v| v.map(<[u8]>::to_vec).unwrap_or_default())
        .collect())
}

/// A boolean column; nulls stay `None`.
pub(crate) fn bools(df: &DataFrame, name: &str) -> miette::Result<Vec<Option<bool>>> {
    Ok(column(df, name)?.bool().into_diagnostic()?.iter().collect())
}

/// An i64 column; nulls become 0.
pub(crate) fn ints(df: &DataFrame, name: &str) -> miette::Result<Vec<i64>> {
    Ok(column(df, name)?
        .i64()
        .into_diagnostic()?
        .iter()
        .map(Option::unwrap_or_default)
        .collect())
}

/// A binary column from owned byte vectors.
pub(crate) fn binary_column(name: &str, values: &[Vec<u8>]) -> Column {
    let slices: Vec<&[u8]> = values.iter().map(Vec::as_slice).collect();
    Column::new(name.into(), slices)
}

/// A frame from columns of equal length.
pub(crate) fn frame(columns: Vec<Column>) -> miette::Result<DataFrame> {
    DataFrame::new_infer_height(columns).into_diagnostic()
}
