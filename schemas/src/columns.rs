//! Reading a frame's columns into owned vectors: the one set of readers that operators, the
//! report and the tests share (each had its own copy before).
//!
//! Contract: a missing column or one of another type is polars' error, for the caller to turn
//! into a diagnostic naming its node, port or file. Nulls are mapped as each reader says:
//! the `optional_*` readers and [`bools`] keep them, the others give a neutral value (empty
//! string, empty bytes, 0, NaN), because the schemas these columns come from require values
//! and a null there is a producer's bug the schema check already reports.

use polars::prelude::{DataFrame, PolarsResult};

/// A string column; nulls stay `None`.
pub fn optional_strings(df: &DataFrame, name: &str) -> PolarsResult<Vec<Option<String>>> {
    Ok(df
        .column(name)?
        .str()?
        .iter()
        .map(|s| s.map(str::to_string))
        .collect())
}

/// A string column; nulls become empty strings.
pub fn strings(df: &DataFrame, name: &str) -> PolarsResult<Vec<String>> {
    Ok(df
        .column(name)?
        .str()?
        .iter()
        .map(|s| s.unwrap_or_default().to_string())
        .collect())
}

/// A binary column (encoded images); nulls become empty.
pub fn binaries(df: &DataFrame, name: &str) -> PolarsResult<Vec<Vec<u8>>> {
    Ok(df
        .column(name)?
        .binary()?
        .iter()
        .map(|v| v.map(<[u8]>::to_vec).unwrap_or_default())
        .collect())
}

/// A boolean column; nulls stay `None`.
pub fn bools(df: &DataFrame, name: &str) -> PolarsResult<Vec<Option<bool>>> {
    Ok(df.column(name)?.bool()?.iter().collect())
}

/// An i64 column; nulls become 0.
pub fn ints(df: &DataFrame, name: &str) -> PolarsResult<Vec<i64>> {
    Ok(df
        .column(name)?
        .i64()?
        .iter()
        .map(Option::unwrap_or_default)
        .collect())
}

/// An f64 column; nulls become NaN (as unknown as a NaN; charts skip both).
pub fn floats(df: &DataFrame, name: &str) -> PolarsResult<Vec<f64>> {
    Ok(df
        .column(name)?
        .f64()?
        .iter()
        .map(|x| x.unwrap_or(f64::NAN))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use polars::prelude::Column;

    #[test]
    fn readers_map_nulls_as_documented_and_refuse_wrong_types() {
        let df = DataFrame::new_infer_height(vec![
            Column::new("s".into(), [Some("a"), None]),
            Column::new("i".into(), [Some(3i64), None]),
            Column::new("f".into(), [Some(0.5f64), None]),
            Column::new("b".into(), [Some(true), None]),
        ])
        .unwrap();
        assert_eq!(strings(&df, "s").unwrap(), ["a", ""]);
        assert_eq!(
            optional_strings(&df, "s").unwrap(),
            [Some("a".to_string()), None]
        );
        assert_eq!(ints(&df, "i").unwrap(), [3, 0]);
        let f = floats(&df, "f").unwrap();
        assert!(f[0] == 0.5 && f[1].is_nan());
        assert_eq!(bools(&df, "b").unwrap(), [Some(true), None]);
        assert!(
            ints(&df, "s").is_err(),
            "a string column is not an i64 column"
        );
        assert!(strings(&df, "missing").is_err());
    }
}
