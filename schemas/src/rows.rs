//! Typed rows: each frame kind is declared once, as a struct whose fields are its columns.
//!
//! Contract:
//! - [`frame_row!`] declares a row struct and implements [`FrameRow`] for it: `SCHEMA` (the
//!   [`FrameSchema`] that ports and `judgeflow check` use; the crate's `pub static` schemas are
//!   these constants), [`FrameRow::into_frame`] and [`FrameRow::from_frame`]. Column names are
//!   the field names, in field order; a column's type follows from its field's Rust type
//!   ([`ColumnValue`]). A misspelled column is a compile error in the code that builds or reads
//!   rows, not a run-time lookup failure.
//! - `into_frame` writes exactly the schema's columns, in order, with the dtypes
//!   [`judgeflow_engine::ColumnType::dtype`] names, so a frame written from rows is the frame
//!   the schema check expects (and, for the same values, the same bytes as a frame written
//!   column by column).
//! - `from_frame` reads the row's columns and ignores any others (a consumer's row may be a
//!   narrower view of a wider frame, as schema checks allow). A missing or mistyped column is
//!   polars' error, for the caller to name its node or file. Nulls follow
//!   [`crate::columns`]: `Option` fields keep them; other fields take a neutral value.

use judgeflow_engine::{ColumnType, FrameSchema};
use polars::prelude::{Column, DataFrame, PolarsResult};

use crate::columns;

/// A Rust type that is one frame column's value.
pub trait ColumnValue: Sized {
    /// The column's type in a schema.
    const TYPE: ColumnType;
    /// A column named `name` holding `values`.
    fn column(name: &str, values: Vec<Self>) -> Column;
    /// Column `name` of `df`, one value per row.
    fn read(df: &DataFrame, name: &str) -> PolarsResult<Vec<Self>>;
}

/// `ColumnValue` for a type whose column is built by `Column::new` and read by one of
/// [`crate::columns`]' readers.
macro_rules! column_value {
    ($($ty:ty => $column_type:ident, $reader:path;)*) => {$(
        impl ColumnValue for $ty {
            const TYPE: ColumnType = ColumnType::$column_type;
            fn column(name: &str, values: Vec<Self>) -> Column {
                Column::new(name.into(), values)
            }
            fn read(df: &DataFrame, name: &str) -> PolarsResult<Vec<Self>> {
                $reader(df, name)
            }
        }
    )*};
}

column_value! {
    String => Str, columns::strings;
    Option<String> => Str, columns::optional_strings;
    Option<bool> => Bool, columns::bools;
    i64 => I64, columns::ints;
    f64 => F64, columns::floats;
}

impl ColumnValue for Vec<u8> {
    const TYPE: ColumnType = ColumnType::Binary;
    fn column(name: &str, values: Vec<Self>) -> Column {
        let slices: Vec<&[u8]> = values.iter().map(Vec::as_slice).collect();
        Column::new(name.into(), slices)
    }
    fn read(df: &DataFrame, name: &str) -> PolarsResult<Vec<Self>> {
        columns::binaries(df, name)
    }
}

impl ColumnValue for bool {
    const TYPE: ColumnType = ColumnType::Bool;
    fn column(name: &str, values: Vec<Self>) -> Column {
        Column::new(name.into(), values)
    }
    fn read(df: &DataFrame, name: &str) -> PolarsResult<Vec<Self>> {
        Ok(columns::bools(df, name)?
            .into_iter()
            .map(Option::unwrap_or_default)
            .collect())
    }
}

impl ColumnValue for u64 {
    const TYPE: ColumnType = ColumnType::U64;
    fn column(name: &str, values: Vec<Self>) -> Column {
        Column::new(name.into(), values)
    }
    fn read(df: &DataFrame, name: &str) -> PolarsResult<Vec<Self>> {
        Ok(df
            .column(name)?
            .u64()?
            .iter()
            .map(Option::unwrap_or_default)
            .collect())
    }
}

impl ColumnValue for Option<f64> {
    const TYPE: ColumnType = ColumnType::F64;
    fn column(name: &str, values: Vec<Self>) -> Column {
        Column::new(name.into(), values)
    }
    fn read(df: &DataFrame, name: &str) -> PolarsResult<Vec<Self>> {
        Ok(df.column(name)?.f64()?.iter().collect())
    }
}

/// A row of one frame kind (declare with [`frame_row!`]).
pub trait FrameRow: Sized {
    /// The frame's schema: its name, its columns in order, what a row is.
    const SCHEMA: FrameSchema;
    /// The frame of `rows`: the schema's columns, in order.
    fn into_frame(rows: Vec<Self>) -> PolarsResult<DataFrame>;
    /// The rows of `df`, read from the schema's columns (others are ignored).
    fn from_frame(df: &DataFrame) -> PolarsResult<Vec<Self>>;
}

/// Declares a row struct and its [`FrameRow`] implementation:
///
/// ```
/// judgeflow_schemas::frame_row! {
///     /// One greeting.
///     pub struct GreetingRow as "greetings" {
///         /// who
///         pub name: String,
///         /// how often
///         pub times: i64,
///     }
///     doc: "one greeting: a name and a count";
/// }
/// use judgeflow_schemas::rows::FrameRow;
/// let rows = vec![GreetingRow { name: "ada".into(), times: 2 }];
/// let df = GreetingRow::into_frame(rows.clone()).unwrap();
/// assert_eq!(GreetingRow::SCHEMA.columns.len(), 2);
/// assert_eq!(GreetingRow::from_frame(&df).unwrap(), rows);
/// ```
#[macro_export]
macro_rules! frame_row {
    (
        $(#[$meta:meta])*
        pub struct $name:ident as $schema:literal {
            $( $(#[doc = $fdoc:literal])* pub $field:ident : $ty:ty ),* $(,)?
        }
        doc: $doc:expr;
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq)]
        pub struct $name {
            $( $(#[doc = $fdoc])* pub $field: $ty, )*
        }

        impl $crate::rows::FrameRow for $name {
            const SCHEMA: $crate::__engine::FrameSchema = $crate::__engine::FrameSchema {
                name: $schema,
                columns: &[
                    $( (stringify!($field), <$ty as $crate::rows::ColumnValue>::TYPE), )*
                ],
                doc: $doc,
            };

            fn into_frame(
                rows: Vec<Self>,
            ) -> $crate::__polars::prelude::PolarsResult<$crate::__polars::prelude::DataFrame> {
                $( let mut $field: Vec<$ty> = Vec::with_capacity(rows.len()); )*
                for row in rows {
                    $( $field.push(row.$field); )*
                }
                $crate::__polars::prelude::DataFrame::new_infer_height(vec![
                    $( <$ty as $crate::rows::ColumnValue>::column(stringify!($field), $field), )*
                ])
            }

            fn from_frame(
                df: &$crate::__polars::prelude::DataFrame,
            ) -> $crate::__polars::prelude::PolarsResult<Vec<Self>> {
                $(
                    let mut $field =
                        <$ty as $crate::rows::ColumnValue>::read(df, stringify!($field))?
                            .into_iter();
                )*
                Ok((0..df.height())
                    .map(|_| Self {
                        $( $field: $field.next().expect("a column is as long as its frame"), )*
                    })
                    .collect())
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    crate::frame_row! {
        /// Every column type a row can hold.
        pub struct AllTypes as "all_types" {
            pub s: String,
            pub os: Option<String>,
            pub b: Vec<u8>,
            pub flag: bool,
            pub maybe: Option<bool>,
            pub i: i64,
            pub u: u64,
            pub f: f64,
            pub of: Option<f64>,
        }
        doc: "test rows";
    }

    fn rows() -> Vec<AllTypes> {
        vec![
            AllTypes {
                s: "a".into(),
                os: None,
                b: vec![1, 2],
                flag: true,
                maybe: None,
                i: -3,
                u: 7,
                f: 0.5,
                of: None,
            },
            AllTypes {
                s: String::new(),
                os: Some("x".into()),
                b: vec![],
                flag: false,
                maybe: Some(false),
                i: 0,
                u: u64::MAX,
                f: -1.0,
                of: Some(2.0),
            },
        ]
    }

    #[test]
    fn rows_round_trip_through_a_frame_that_matches_the_schema() {
        let df = AllTypes::into_frame(rows()).unwrap();
        let names: Vec<&str> = df.get_column_names().iter().map(|n| n.as_str()).collect();
        let declared: Vec<&str> = AllTypes::SCHEMA.columns.iter().map(|c| c.0).collect();
        assert_eq!(names, declared);
        for (column, (_, ty)) in df.columns().iter().zip(AllTypes::SCHEMA.columns) {
            assert_eq!(column.dtype(), &ty.dtype(), "{}", column.name());
        }
        assert_eq!(AllTypes::from_frame(&df).unwrap(), rows());
    }

    #[test]
    fn reading_ignores_extra_columns_and_names_a_missing_one() {
        let mut df = AllTypes::into_frame(rows()).unwrap();
        df.with_column(Column::new("extra".into(), [1i64, 2]))
            .unwrap();
        assert_eq!(AllTypes::from_frame(&df).unwrap(), rows());
        let narrow = df.drop("u").unwrap();
        let err = AllTypes::from_frame(&narrow).unwrap_err().to_string();
        assert!(err.contains("u"), "{err}");
    }

    #[test]
    fn an_empty_frame_keeps_the_schema_types() {
        let df = AllTypes::into_frame(vec![]).unwrap();
        assert_eq!(df.height(), 0);
        for (column, (_, ty)) in df.columns().iter().zip(AllTypes::SCHEMA.columns) {
            assert_eq!(column.dtype(), &ty.dtype(), "{}", column.name());
        }
    }
}
