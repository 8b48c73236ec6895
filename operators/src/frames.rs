//! Column access for operators: owned vectors out of a frame (`judgeflow_schemas::columns`,
//! with a diagnostic naming the column when it is missing or mistyped), and the binary column
//! that replaces a frame's images. Frames are written from typed rows (`judgeflow_schemas`'
//! `frame_row!` structs), not column by column.

use judgeflow_schemas::columns;
use miette::{IntoDiagnostic, miette};
use polars::prelude::{Column, DataFrame, PolarsError, PolarsResult};

/// The scene graphs of a `scenes` frame, in frame order, each with the hash of its image
/// bytes: the key by which rows that copy a scene's PNG (corpus, prompts, samples) find their
/// scene. An unreadable graph is a diagnostic with the caller's `code`, naming the node and the
/// scene's row.
pub(crate) fn scenes_by_image(
    node: &str,
    scenes: &DataFrame,
    code: &'static str,
) -> miette::Result<Vec<(blake3::Hash, judgeflow_world::Scene)>> {
    let graphs = texts(scenes, "scene_graph")?;
    bins(scenes, "image")?
        .iter()
        .zip(&graphs)
        .enumerate()
        .map(|(i, (image, graph))| {
            let scene = judgeflow_world::Scene::from_json(graph).map_err(|e| {
                miette!(
                    code = code,
                    "node `{node}`: scene {i} of the `scenes` input has no readable scene graph: {e}"
                )
            })?;
            Ok((blake3::hash(image), scene))
        })
        .collect()
}

/// Runs a shared column reader, naming the column when the frame lacks it.
fn read<T>(
    df: &DataFrame,
    name: &str,
    reader: fn(&DataFrame, &str) -> PolarsResult<T>,
) -> miette::Result<T> {
    match reader(df, name) {
        Err(PolarsError::ColumnNotFound(_)) => Err(miette!(
            code = "judgeflow::frame::column",
            "the frame has no column `{name}`"
        )),
        read => read.into_diagnostic(),
    }
}

/// A string column; nulls stay `None`.
pub(crate) fn strs(df: &DataFrame, name: &str) -> miette::Result<Vec<Option<String>>> {
    read(df, name, columns::optional_strings)
}

/// A string column; nulls become empty strings (for columns a schema requires).
pub(crate) fn texts(df: &DataFrame, name: &str) -> miette::Result<Vec<String>> {
    read(df, name, columns::strings)
}

/// A binary column (encoded images); nulls become empty.
pub(crate) fn bins(df: &DataFrame, name: &str) -> miette::Result<Vec<Vec<u8>>> {
    read(df, name, columns::binaries)
}

/// A boolean column; nulls stay `None`.
pub(crate) fn bools(df: &DataFrame, name: &str) -> miette::Result<Vec<Option<bool>>> {
    read(df, name, columns::bools)
}

/// An i64 column; nulls become 0.
pub(crate) fn ints(df: &DataFrame, name: &str) -> miette::Result<Vec<i64>> {
    read(df, name, columns::ints)
}

/// A binary column from owned byte vectors.
pub(crate) fn binary_column(name: &str, values: &[Vec<u8>]) -> Column {
    let slices: Vec<&[u8]> = values.iter().map(Vec::as_slice).collect();
    Column::new(name.into(), slices)
}

/// The diagnostic for a failed frame operation of node `node` while `doing` something: polars'
/// own message, under the node's name (a bare `miette!("{e}")` left the reader guessing which
/// node failed).
pub(crate) fn frame_error<'a>(
    node: &'a str,
    doing: &'static str,
) -> impl Fn(polars::prelude::PolarsError) -> miette::Report + 'a {
    move |e| {
        miette!(
            code = "judgeflow::frame::operation",
            "node `{node}`: {doing}: {e}"
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_frame_operation_names_its_node_and_what_it_was_doing() {
        let a = DataFrame::new_infer_height(vec![Column::new("x".into(), [1i64, 2])]).unwrap();
        let b = DataFrame::new_infer_height(vec![Column::new("y".into(), ["q"])]).unwrap();
        let err = a
            .vstack(&b)
            .map_err(frame_error("pairs", "stacking the two inputs"))
            .unwrap_err();
        let text = format!("{err}");
        assert!(
            text.starts_with("node `pairs`: stacking the two inputs: "),
            "{text}"
        );
        assert_eq!(
            err.code().map(|c| c.to_string()).as_deref(),
            Some("judgeflow::frame::operation")
        );
    }
}
