//! What the file sources share: path resolution, the bad-row ledger and its `on_error` policy,
//! the diagnostics they fail with, and JSON field accessors that say what is wrong with a row.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use judgeflow_engine::files::{MAX_EXTERNAL_BYTES, read_regular};
use judgeflow_engine::{choice_enum, operator_params};
use miette::Diagnostic;
use polars::prelude::{DataFrame, PolarsResult, df};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde_json::{Map, Value as Json};

/// How many bad rows a diagnostic or warning names; the count always covers all of them.
const SHOWN: usize = 8;

/// Why a file source failed.
#[derive(Debug, thiserror::Error, Diagnostic)]
pub(crate) enum SourceError {
    /// The file (or the directory it should be in) cannot be read.
    #[error("cannot read `{}`", path.display())]
    #[diagnostic(
        code(judgeflow::source::open),
        help("relative paths are resolved against the directory judgeflow runs in")
    )]
    Open {
        /// The path as resolved.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },

    /// The file as a whole is not what this source reads (not rows that can be skipped).
    #[error("`{}` is not a {expected}: {detail}", path.display())]
    #[diagnostic(code(judgeflow::source::layout))]
    Layout {
        /// The file.
        path: PathBuf,
        /// What it should have been.
        expected: &'static str,
        /// What is wrong.
        detail: String,
        /// What to do about it.
        #[help]
        help: String,
    },

    /// Rows that cannot be used, with `on_error = "fail"`.
    #[error("`{}`: {count} of {total} rows are bad:\n{listing}", path.display())]
    #[diagnostic(
        code(judgeflow::source::bad_rows),
        help(
            "fix these rows, or set `on_error = \"skip\"` on the node to drop them with a warning"
        )
    )]
    BadRows {
        /// The file.
        path: PathBuf,
        /// How many rows are bad.
        count: usize,
        /// Rows in the file.
        total: usize,
        /// The first few, one per line: where, which id, why.
        listing: String,
    },

    /// Nothing usable is left.
    #[error("`{}` yields no usable rows ({bad} bad of {total})", path.display())]
    #[diagnostic(
        code(judgeflow::source::empty),
        help("an empty benchmark or prompt set is never what a pipeline wants; check `path`")
    )]
    Empty {
        /// The file.
        path: PathBuf,
        /// Rows dropped as bad.
        bad: usize,
        /// Rows in the file.
        total: usize,
    },
}

choice_enum! {
    /// The `on_error` policy for bad rows.
    pub enum OnError {
        Fail = "fail",
        Skip = "skip",
    }
}

operator_params! {
    /// The parameters every file source has after its `kind` and `path` (whose docs are its
    /// own), before its own.
    pub struct FileParams {
        /// directory relative image paths start from; "" = the directory of `path`
        image_root: String = "",
        /// bad rows (missing field, bad image, bad JSON): fail the node, or drop them with a
        /// warning
        on_error: OnError = OnError::Fail,
    }
}

/// The input file and the directory images are looked up in.
pub(crate) struct Files {
    pub(crate) path: PathBuf,
    pub(crate) image_root: PathBuf,
}

impl Files {
    /// The source's `path` parameter, with its `image_root`.
    pub(crate) fn new(path: &str, params: &FileParams) -> Self {
        let path = PathBuf::from(path);
        let image_root = match params.image_root.as_str() {
            "" => match path.parent() {
                Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
                _ => PathBuf::from("."),
            },
            root => PathBuf::from(root),
        };
        Files { path, image_root }
    }

    /// An image path from a row: absolute as is, relative under `image_root`.
    pub(crate) fn image_path(&self, relative: &str) -> PathBuf {
        let p = Path::new(relative);
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.image_root.join(p)
        }
    }

    /// The data file's bytes: a regular file within the engine's external-file limit, read
    /// with that limit (`path = "/dev/zero"` is refused, not read until memory runs out).
    pub(crate) fn read(&self) -> Result<Vec<u8>, SourceError> {
        read_regular(&self.path, MAX_EXTERNAL_BYTES).map_err(|source| SourceError::Open {
            path: self.path.clone(),
            source,
        })
    }

    pub(crate) fn layout(
        &self,
        expected: &'static str,
        detail: impl Into<String>,
        help: impl Into<String>,
    ) -> SourceError {
        SourceError::Layout {
            path: self.path.clone(),
            expected,
            detail: detail.into(),
            help: help.into(),
        }
    }
}

/// Where a row is in its file, for people: JSONL by line, JSON arrays and parquet by row.
#[derive(Clone, Copy, Debug)]
pub(crate) enum At {
    Line(usize),
    Row(usize),
}

impl At {
    fn position(self) -> usize {
        match self {
            At::Line(n) | At::Row(n) => n,
        }
    }
}

impl std::fmt::Display for At {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            At::Line(n) => write!(f, "line {n}"),
            At::Row(n) => write!(f, "row {n}"),
        }
    }
}

struct BadRow {
    at: At,
    id: Option<String>,
    reason: String,
}

/// Every bad row of one file, reported together once the file has been read.
pub(crate) struct BadRows {
    rows: Vec<BadRow>,
}

impl BadRows {
    pub(crate) fn new() -> Self {
        BadRows { rows: Vec::new() }
    }

    pub(crate) fn push(&mut self, at: At, id: Option<&str>, reason: impl Into<String>) {
        self.rows.push(BadRow {
            at,
            id: id.map(str::to_string),
            reason: reason.into(),
        });
    }

    fn listing(&self) -> String {
        let mut lines: Vec<String> = self
            .rows
            .iter()
            .take(SHOWN)
            .map(|r| match &r.id {
                Some(id) => format!("  {} (id `{id}`): {}", r.at, r.reason),
                None => format!("  {}: {}", r.at, r.reason),
            })
            .collect();
        if self.rows.len() > SHOWN {
            lines.push(format!("  … and {} more", self.rows.len() - SHOWN));
        }
        lines.join("\n")
    }

    /// Applies the policy: with `Fail` any bad row fails the node; with `Skip` they were already
    /// left out and are logged. Either way a file with no good row left is an error.
    pub(crate) fn settle(
        mut self,
        files: &Files,
        node: &str,
        policy: OnError,
        good: usize,
    ) -> Result<(), SourceError> {
        // Rows fail at different stages (JSON, fields, images); report them in file order.
        self.rows.sort_by_key(|r| r.at.position());
        let total = good + self.rows.len();
        if !self.rows.is_empty() {
            if policy == OnError::Fail {
                return Err(SourceError::BadRows {
                    path: files.path.clone(),
                    count: self.rows.len(),
                    total,
                    listing: self.listing(),
                });
            }
            tracing::warn!(
                node,
                file = %files.path.display(),
                "skipped {} of {total} rows:\n{}",
                self.rows.len(),
                self.listing()
            );
        }
        if good == 0 {
            return Err(SourceError::Empty {
                path: files.path.clone(),
                bad: self.rows.len(),
                total,
            });
        }
        Ok(())
    }
}

/// Unique pair ids: a repeated id (VL-RewardBench reuses some question ids for different
/// response pairs) gets `#2`, `#3`, … in file order, so joins on `pair_id` stay one-to-one.
struct UniqueIds(HashMap<String, usize>);

impl UniqueIds {
    fn make(&mut self, id: &str) -> String {
        let n = self.0.entry(id.to_string()).or_insert(0);
        *n += 1;
        if *n == 1 {
            id.to_string()
        } else {
            format!("{id}#{n}")
        }
    }
}

/// `better` labels for `n` pairs in random order with exactly ⌈n/2⌉ `A`s, so a judge that
/// always answers one position scores 50% (to within one pair) rather than 50% ± noise.
pub(crate) fn balanced_labels(n: usize, seed: u64) -> Vec<bool> {
    let mut a_better: Vec<bool> = (0..n).map(|i| i < n.div_ceil(2)).collect();
    a_better.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
    a_better
}

/// One parsed JSON object and accessors that explain what is missing or mistyped.
pub(crate) struct Fields<'a>(pub(crate) &'a Map<String, Json>);

impl<'a> Fields<'a> {
    fn get(&self, key: &str) -> Option<&'a Json> {
        self.0.get(key).filter(|v| !v.is_null())
    }

    /// A required string.
    pub(crate) fn string(&self, key: &str) -> Result<&'a str, String> {
        match self.get(key) {
            Some(Json::String(s)) => Ok(s),
            Some(other) => Err(format!("`{key}` is {}, not a string", json_type(other))),
            None => Err(format!("`{key}` is missing")),
        }
    }

    /// An optional string; numbers and booleans are taken as written (`"answer": 3`).
    pub(crate) fn opt_text(&self, key: &str) -> Result<Option<String>, String> {
        match self.get(key) {
            None => Ok(None),
            Some(Json::String(s)) => Ok(Some(s.clone())),
            Some(v @ (Json::Number(_) | Json::Bool(_))) => Ok(Some(v.to_string())),
            Some(other) => Err(format!("`{key}` is {}, not a string", json_type(other))),
        }
    }

    /// An id: a string, or an integer written as one.
    pub(crate) fn id(&self, key: &str) -> Result<String, String> {
        match self.get(key) {
            Some(Json::String(s)) if !s.trim().is_empty() => Ok(s.clone()),
            Some(Json::String(_)) => Err(format!("`{key}` is empty")),
            Some(Json::Number(n)) if n.is_i64() || n.is_u64() => Ok(n.to_string()),
            Some(other) => Err(format!(
                "`{key}` is {}, not a string or integer",
                json_type(other)
            )),
            None => Err(format!("`{key}` is missing")),
        }
    }

    /// An optional boolean.
    pub(crate) fn opt_bool(&self, key: &str) -> Result<Option<bool>, String> {
        match self.get(key) {
            None => Ok(None),
            Some(Json::Bool(b)) => Ok(Some(*b)),
            Some(other) => Err(format!("`{key}` is {}, not a boolean", json_type(other))),
        }
    }

    /// A required array.
    pub(crate) fn array(&self, key: &str) -> Result<&'a [Json], String> {
        match self.get(key) {
            Some(Json::Array(items)) => Ok(items),
            Some(other) => Err(format!("`{key}` is {}, not an array", json_type(other))),
            None => Err(format!("`{key}` is missing")),
        }
    }

    /// The first of `keys` present and non-null, with the key it was found under.
    pub(crate) fn first_of(&self, keys: &[&'static str]) -> Option<&'static str> {
        keys.iter().copied().find(|k| self.get(k).is_some())
    }
}

/// "an object", "a number", ... for messages.
pub(crate) fn json_type(v: &Json) -> &'static str {
    match v {
        Json::Null => "null",
        Json::Bool(_) => "a boolean",
        Json::Number(_) => "a number",
        Json::String(_) => "a string",
        Json::Array(_) => "an array",
        Json::Object(_) => "an object",
    }
}

/// One line of a JSONL file: its 1-based line number and its object, or why it is not one.
pub(crate) type JsonlRow = (usize, Result<Map<String, Json>, String>);

/// Splits JSONL bytes into (1-based line number, parsed object or why not); blank lines are
/// not rows. Lines are parsed one by one so that one bad line costs one row, not the file.
pub(crate) fn jsonl_rows(bytes: &[u8]) -> Vec<JsonlRow> {
    bytes
        .split(|b| *b == b'\n')
        .enumerate()
        .filter_map(|(i, line)| {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if line.iter().all(u8::is_ascii_whitespace) {
                return None;
            }
            let parsed = match serde_json::from_slice::<Json>(line) {
                Ok(Json::Object(map)) => Ok(map),
                Ok(other) => Err(format!(
                    "the line is {}, not a JSON object",
                    json_type(&other)
                )),
                Err(e) => {
                    // serde's message ends "at line 1 column N": the line is ours, the column is
                    // worth keeping.
                    let message = e.to_string();
                    let message = message
                        .rsplit_once(" at line ")
                        .map_or(message.as_str(), |(m, _)| m);
                    Err(format!("bad JSON at column {}: {message}", e.column()))
                }
            };
            Some((i + 1, parsed))
        })
        .collect()
}

/// The id of a row that is otherwise bad, if it has a readable one, for the report.
pub(crate) fn loose_id(map: &Map<String, Json>, keys: &[&str]) -> Option<String> {
    keys.iter().find_map(|k| match map.get(*k) {
        Some(Json::String(s)) => Some(s.clone()),
        Some(Json::Number(n)) => Some(n.to_string()),
        _ => None,
    })
}

/// The BENCH frame of a benchmark source, built pair by pair.
pub(crate) struct BenchFrame {
    ids: UniqueIds,
    pair_id: Vec<String>,
    image: Vec<Vec<u8>>,
    question: Vec<String>,
    answer_a: Vec<String>,
    answer_b: Vec<String>,
    better: Vec<&'static str>,
    dimension: Vec<String>,
    subset: Vec<String>,
}

impl BenchFrame {
    pub(crate) fn new() -> Self {
        BenchFrame {
            ids: UniqueIds(HashMap::new()),
            pair_id: Vec::new(),
            image: Vec::new(),
            question: Vec::new(),
            answer_a: Vec::new(),
            answer_b: Vec::new(),
            better: Vec::new(),
            dimension: Vec::new(),
            subset: Vec::new(),
        }
    }

    /// Adds a pair, putting the chosen answer at A when `a_better`, else at B.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn push(
        &mut self,
        id: &str,
        image: Vec<u8>,
        question: String,
        [chosen, rejected]: [String; 2],
        a_better: bool,
        dimension: &str,
        subset: &str,
    ) {
        let (a, b) = if a_better {
            (chosen, rejected)
        } else {
            (rejected, chosen)
        };
        self.pair_id.push(self.ids.make(id));
        self.image.push(image);
        self.question.push(question);
        self.answer_a.push(a);
        self.answer_b.push(b);
        self.better.push(if a_better { "A" } else { "B" });
        self.dimension.push(dimension.to_string());
        self.subset.push(subset.to_string());
    }

    /// The frame: BENCH's columns plus `subset`, with `source` = `label` throughout.
    pub(crate) fn finish(self, label: &str) -> PolarsResult<DataFrame> {
        let n = self.pair_id.len();
        df!(
            "pair_id" => self.pair_id,
            "image" => self.image,
            "question" => self.question,
            "answer_a" => self.answer_a,
            "answer_b" => self.answer_b,
            "better" => self.better,
            "dimension" => self.dimension,
            "source" => vec![label; n],
            "subset" => self.subset,
        )
    }
}

/// What a file source reads from outside the cache, for its cache key: the data file and every
/// image file its rows name (JSON lines or a JSON array; the image-path fields of all three
/// formats). A parquet file carries its images inside, so it is listed alone. Rows that do not
/// parse are skipped here; the run reports them.
pub(crate) fn referenced_files(files: &Files) -> Vec<PathBuf> {
    let mut out = vec![files.path.clone()];
    // The same bounded read as the run's: what the run refuses, the key needs only as the data
    // file's marker.
    let Ok(bytes) = read_regular(&files.path, MAX_EXTERNAL_BYTES) else {
        return out;
    };
    // Bytes, not text: one line that is not UTF-8 is one bad row at run time, so it must cost
    // this listing that line only, not every image of the file.
    let rows: Vec<serde_json::Value> = match serde_json::from_slice::<serde_json::Value>(&bytes) {
        Ok(serde_json::Value::Array(rows)) => rows,
        _ => jsonl_rows(&bytes)
            .into_iter()
            .filter_map(|(_, row)| row.ok().map(serde_json::Value::Object))
            .collect(),
    };
    for row in &rows {
        for field in ["image", "image_path", "Image"] {
            if let Some(p) = row.get(field).and_then(|v| v.as_str()) {
                out.push(files.image_path(p));
            }
        }
    }
    out.sort();
    out.dedup();
    out
}
