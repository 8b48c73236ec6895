//! `judgeflow export`: one node's cached output, out of the cache, in a form other tools read.
//!
//! # What is written
//! Into `--to DIR`, which must not exist or be empty:
//! - `parquet`: `PORT.parquet`, the cached file byte for byte.
//! - `jsonl` / `csv`: `PORT.jsonl` / `PORT.csv`, one row per line. Binary cells (encoded images)
//!   are written as files `PORT/COLUMN/ROW.png` (`.jpg`, else `.bin`) and the cell holds that
//!   relative path; list cells are JSON arrays (in CSV, as JSON text).
//! - `hf`: what the Hugging Face `datasets` library loads as it is (`load_dataset(DIR)`, or
//!   `load_dataset("parquet", data_dir=DIR + "/data")`): parquet shards
//!   `data/train-NNNNN-of-NNNNN.parquet` of at most [`SHARD_ROWS`] rows, where every binary
//!   column holding PNG or JPEG bytes becomes the `datasets` `Image` struct `{bytes, path}`
//!   (`path` null: the bytes are the image), the features declared both in each shard's
//!   `huggingface` schema metadata and in the card's YAML header; plus `README.md`, a dataset
//!   card naming the pipeline, node, port, operator, parameters, seed, inputs and cache key that
//!   produced the frame.
//!
//! An artifact port (a checkpoint) is copied as its directory, whatever the format: checkpoints
//! already are Hugging Face-style model directories (`config.json`, `model.safetensors`,
//! `tokenizer.json`); with `hf` a model card `README.md` is added when it has none.
//!
//! # Atomicity
//! Everything is written into a temporary sibling of `DIR` and renamed into place at the end, so
//! a failed export leaves nothing behind and a reader never sees half of one.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

use clap::ValueEnum;
use polars::prelude::*;

use crate::cache::Manifest;
use crate::error::{Error, Result};
use crate::op::{PortKind, read_parquet};
use crate::plan::{Plan, PlanNode};

/// Rows per `hf` parquet shard.
pub const SHARD_ROWS: usize = 5000;

/// Output formats of `export`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ExportFormat {
    /// The cached parquet file.
    Parquet,
    /// JSON lines (binary cells as files).
    Jsonl,
    /// CSV (binary cells as files).
    Csv,
    /// A Hugging Face `datasets` directory: parquet shards with `Image` columns and a card.
    Hf,
}

/// What is exported: a fresh node's output port.
pub struct Source<'a> {
    /// The plan the node is in.
    pub plan: &'a Plan,
    /// The pipeline file as given on the command line (for the card).
    pub pipeline_file: &'a Path,
    /// The node.
    pub node: &'a PlanNode,
    /// The port.
    pub port: &'a str,
    /// The entry's manifest (key, ingredients, content hashes).
    pub manifest: &'a Manifest,
    /// The port's cached file (frames) or directory (artifacts).
    pub path: &'a Path,
}

/// Exports `src` into `to` in `format`; returns the files written, relative to `to`, sorted.
pub fn export(src: &Source<'_>, format: ExportFormat, to: &Path) -> Result<Vec<PathBuf>> {
    if to.exists() {
        let empty = fs::read_dir(to).is_ok_and(|mut d| d.next().is_none());
        if !empty {
            return Err(Error::usage(
                format!("`{}` exists and is not an empty directory", to.display()),
                Some("export into a new or empty directory; nothing was written".into()),
            ));
        }
    }
    let name = to
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_else(|| "export".into());
    let tmp = to.with_file_name(format!(".{name}.tmp-{}", std::process::id()));
    let _ = fs::remove_dir_all(&tmp);
    fs::create_dir_all(&tmp).map_err(|e| Error::io("cannot create", &tmp, e))?;
    let written = write_all(src, format, &tmp).and_then(|()| {
        if to.exists() {
            fs::remove_dir(to).map_err(|e| Error::io("cannot replace empty directory", to, e))?;
        }
        fs::rename(&tmp, to).map_err(|e| Error::io("cannot move export into place", to, e))
    });
    if let Err(e) = written {
        let _ = fs::remove_dir_all(&tmp);
        return Err(e);
    }
    let mut files = Vec::new();
    list(to, to, &mut files);
    files.sort();
    Ok(files)
}

fn write_all(src: &Source<'_>, format: ExportFormat, dir: &Path) -> Result<()> {
    let frame = matches!(port_kind(src), Some(PortKind::Frame(_)));
    if !frame {
        copy_dir(src.path, dir)?;
        if format == ExportFormat::Hf && !dir.join("README.md").exists() {
            write_file(&dir.join("README.md"), model_card(src).as_bytes())?;
        }
        return Ok(());
    }
    match format {
        ExportFormat::Parquet => {
            let to = dir.join(format!("{}.parquet", src.port));
            fs::copy(src.path, &to).map_err(|e| Error::io("cannot copy", &to, e))?;
            Ok(())
        }
        ExportFormat::Jsonl | ExportFormat::Csv => {
            let df = read_parquet(src.path)?;
            let csv = format == ExportFormat::Csv;
            let text = rows_text(&df, dir, src.port, csv)?;
            let ext = if csv { "csv" } else { "jsonl" };
            write_file(&dir.join(format!("{}.{ext}", src.port)), text.as_bytes())
        }
        ExportFormat::Hf => write_hf(src, dir),
    }
}

fn port_kind(src: &Source<'_>) -> Option<PortKind> {
    src.node
        .outputs
        .iter()
        .find(|p| p.name == src.port)
        .map(|p| p.kind)
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<()> {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).map_err(|e| Error::io("cannot create", parent, e))?;
    }
    fs::write(path, bytes).map_err(|e| Error::io("cannot write", path, e))
}

fn copy_dir(from: &Path, to: &Path) -> Result<()> {
    fs::create_dir_all(to).map_err(|e| Error::io("cannot create", to, e))?;
    for item in fs::read_dir(from).map_err(|e| Error::io("cannot list", from, e))? {
        let item = item.map_err(|e| Error::io("cannot list", from, e))?;
        let target = to.join(item.file_name());
        if item.path().is_dir() {
            copy_dir(&item.path(), &target)?;
        } else {
            fs::copy(item.path(), &target).map_err(|e| Error::io("cannot copy", &target, e))?;
        }
    }
    Ok(())
}

fn list(root: &Path, dir: &Path, out: &mut Vec<PathBuf>) {
    if let Ok(items) = fs::read_dir(dir) {
        for item in items.flatten() {
            let path = item.path();
            if path.is_dir() {
                list(root, &path, out);
            } else if let Ok(rel) = path.strip_prefix(root) {
                out.push(rel.to_path_buf());
            }
        }
    }
}

/// The extension an encoded image's bytes call for, if they are an image.
fn image_ext(bytes: &[u8]) -> Option<&'static str> {
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some("png")
    } else if bytes.starts_with(&[0xff, 0xd8, 0xff]) {
        Some("jpg")
    } else {
        None
    }
}

/// Whether a column holds encoded images: binary, and its first non-null cell is a PNG or JPEG.
fn is_image_column(c: &Column) -> bool {
    c.dtype() == &DataType::Binary
        && c.binary()
            .ok()
            .and_then(|b| b.iter().flatten().next().map(|v| image_ext(v).is_some()))
            .unwrap_or(false)
}

/// JSON lines or CSV of `df`, binary cells written as files under `dir/PORT/COLUMN/`.
fn rows_text(df: &DataFrame, dir: &Path, port: &str, csv: bool) -> Result<String> {
    let cols = df.columns();
    let mut text = String::new();
    if csv {
        let header: Vec<String> = cols.iter().map(|c| csv_cell(c.name())).collect();
        let _ = writeln!(text, "{}", header.join(","));
    }
    for row in 0..df.height() {
        let mut cells = Vec::with_capacity(cols.len());
        for c in cols {
            let v = c.get(row).map_err(|e| Error::Parquet {
                path: dir.to_path_buf(),
                message: e.to_string(),
            })?;
            let json = match v {
                AnyValue::Binary(b) => binary_file(dir, port, c.name(), row, b)?,
                AnyValue::BinaryOwned(b) => binary_file(dir, port, c.name(), row, &b)?,
                other => json_value(&other),
            };
            cells.push(json);
        }
        if csv {
            let line: Vec<String> = cells
                .iter()
                .map(|v| match v {
                    serde_json::Value::Null => String::new(),
                    serde_json::Value::String(s) => csv_cell(s),
                    other => csv_cell(&other.to_string()),
                })
                .collect();
            let _ = writeln!(text, "{}", line.join(","));
        } else {
            let object: serde_json::Map<String, serde_json::Value> = cols
                .iter()
                .map(|c| c.name().to_string())
                .zip(cells)
                .collect();
            let _ = writeln!(text, "{}", serde_json::Value::Object(object));
        }
    }
    Ok(text)
}

/// Writes one binary cell as a file; the cell becomes its path relative to the export.
fn binary_file(
    dir: &Path,
    port: &str,
    column: &str,
    row: usize,
    bytes: &[u8],
) -> Result<serde_json::Value> {
    let ext = image_ext(bytes).unwrap_or("bin");
    let rel = format!("{port}/{column}/{row:06}.{ext}");
    write_file(&dir.join(&rel), bytes)?;
    Ok(serde_json::Value::String(rel))
}

fn json_value(v: &AnyValue<'_>) -> serde_json::Value {
    use serde_json::Value as J;
    let float = |x: f64| serde_json::Number::from_f64(x).map_or(J::Null, J::Number);
    match v {
        AnyValue::Null => J::Null,
        AnyValue::Boolean(b) => J::Bool(*b),
        AnyValue::Int8(x) => J::from(*x),
        AnyValue::Int16(x) => J::from(*x),
        AnyValue::Int32(x) => J::from(*x),
        AnyValue::Int64(x) => J::from(*x),
        AnyValue::UInt8(x) => J::from(*x),
        AnyValue::UInt16(x) => J::from(*x),
        AnyValue::UInt32(x) => J::from(*x),
        AnyValue::UInt64(x) => J::from(*x),
        AnyValue::Float32(x) => float(f64::from(*x)),
        AnyValue::Float64(x) => float(*x),
        AnyValue::String(s) => J::String(s.to_string()),
        AnyValue::StringOwned(s) => J::String(s.to_string()),
        AnyValue::List(s) => J::Array(
            (0..s.len())
                .map(|i| s.get(i).map_or(J::Null, |v| json_value(&v)))
                .collect(),
        ),
        other => J::String(other.to_string()),
    }
}

fn csv_cell(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// The `datasets` feature of a column: (features JSON for the schema metadata, YAML lines).
fn feature(c: &Column, image: bool) -> Result<(serde_json::Value, String)> {
    if image {
        return Ok((
            serde_json::json!({"_type": "Image"}),
            "    dtype: image".into(),
        ));
    }
    let value = |dtype: &str| {
        (
            serde_json::json!({"dtype": dtype, "_type": "Value"}),
            format!("    dtype: {dtype}"),
        )
    };
    Ok(match c.dtype() {
        DataType::String => value("string"),
        DataType::Boolean => value("bool"),
        DataType::Int8 => value("int8"),
        DataType::Int16 => value("int16"),
        DataType::Int32 => value("int32"),
        DataType::Int64 => value("int64"),
        DataType::UInt8 => value("uint8"),
        DataType::UInt16 => value("uint16"),
        DataType::UInt32 => value("uint32"),
        DataType::UInt64 => value("uint64"),
        DataType::Float32 => value("float32"),
        DataType::Float64 => value("float64"),
        DataType::Binary => value("binary"),
        DataType::List(inner) if **inner == DataType::String => (
            serde_json::json!({
                "feature": {"dtype": "string", "_type": "Value"},
                "_type": "Sequence"
            }),
            "    sequence: string".into(),
        ),
        other => {
            return Err(Error::usage(
                format!(
                    "column `{}` has type {other}, which the `hf` export cannot describe",
                    c.name()
                ),
                Some("export it as `parquet` instead".into()),
            ));
        }
    })
}

/// Parquet shards with `Image` structs and the card.
fn write_hf(src: &Source<'_>, dir: &Path) -> Result<()> {
    let df = read_parquet(src.path)?;
    // In column order (a JSON map would sort them): `datasets` lists features in this order.
    let mut features: Vec<String> = Vec::new();
    let mut yaml = String::new();
    let mut columns = Vec::new();
    for c in df.columns() {
        let image = is_image_column(c);
        let (json, lines) = feature(c, image)?;
        features.push(format!("{}:{json}", yaml_string(c.name())));
        let _ = writeln!(yaml, "  - name: {}\n{lines}", yaml_string(c.name()));
        let shown = if image {
            "image (PNG bytes)".to_string()
        } else {
            c.dtype().to_string()
        };
        columns.push((c.name().to_string(), shown));
    }
    let mut out = df.clone();
    for c in df.columns() {
        if is_image_column(c) {
            let bytes = c.as_materialized_series().clone().with_name("bytes".into());
            let path = Series::full_null("path".into(), df.height(), &DataType::String);
            let image =
                StructChunked::from_series(c.name().clone(), df.height(), [bytes, path].iter())
                    .map_err(|e| Error::Parquet {
                        path: src.path.to_path_buf(),
                        message: e.to_string(),
                    })?;
            out.with_column(image.into_series().into_column())
                .map_err(|e| Error::Parquet {
                    path: src.path.to_path_buf(),
                    message: e.to_string(),
                })?;
        }
    }
    let hf_meta = format!("{{\"info\":{{\"features\":{{{}}}}}}}", features.join(","));
    // `datasets` takes the features from the `huggingface` metadata only where their arrow type
    // equals the column's as pyarrow reads it, which follows the stored arrow schema: so it
    // must say `string` / `binary` / `list` (what `Value("string")`, `Image` and sequences are),
    // not polars' view or 64-bit-offset types.
    let mut arrow: ArrowSchema = out
        .schema()
        .to_arrow(CompatLevel::oldest())
        .iter_values()
        .cloned()
        .map(classic_field)
        .map(|f| (f.name.clone(), f))
        .collect();
    // pyarrow takes a schema's metadata from the stored arrow schema, not from the footer.
    arrow
        .metadata_mut()
        .insert("huggingface".into(), hf_meta.as_str().into());
    let meta = KeyValueMetadata::from_static(vec![
        ("ARROW:schema".to_string(), stored_arrow_schema(&arrow)),
        ("huggingface".to_string(), hf_meta),
    ]);
    let shards = df.height().div_ceil(SHARD_ROWS).max(1);
    let data = dir.join("data");
    fs::create_dir_all(&data).map_err(|e| Error::io("cannot create", &data, e))?;
    for i in 0..shards {
        let mut part = out.slice((i * SHARD_ROWS) as i64, SHARD_ROWS);
        let path = data.join(format!("train-{i:05}-of-{shards:05}.parquet"));
        let file = fs::File::create(&path).map_err(|e| Error::io("cannot create", &path, e))?;
        ParquetWriter::new(file)
            .with_key_value_metadata(Some(meta.clone()))
            .finish(&mut part)
            .map_err(|e| Error::Parquet {
                path: path.clone(),
                message: e.to_string(),
            })?;
    }
    let card = dataset_card(src, &yaml, &columns, df.height());
    write_file(&dir.join("README.md"), card.as_bytes())
}

/// The `ARROW:schema` footer value for `schema`, as arrow writes it: the IPC schema message
/// after the legacy 0xFFFFFFFF + length prefix, in base64. (polars' own writer drops the schema's
/// metadata when a column is nested, as an image struct is.)
fn stored_arrow_schema(schema: &ArrowSchema) -> String {
    use polars_arrow::io::ipc::write::{default_ipc_fields, schema_to_bytes};
    let message = schema_to_bytes(schema, &default_ipc_fields(schema.iter_values()), None);
    let mut framed = vec![255u8, 255, 255, 255];
    framed.extend_from_slice(&(message.len() as u32).to_le_bytes());
    framed.extend_from_slice(&message);
    base64(&framed)
}

/// Standard base64 with padding (RFC 4648), for the one value above.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// `field` with the arrow types pyarrow and `datasets` use by default: 32-bit offsets.
fn classic_field(field: ArrowField) -> ArrowField {
    use ArrowDataType as D;
    let dtype = match field.dtype {
        D::LargeUtf8 | D::Utf8View => D::Utf8,
        D::LargeBinary | D::BinaryView => D::Binary,
        D::LargeList(item) => D::List(Box::new(classic_field(*item))),
        D::Struct(fields) => D::Struct(fields.into_iter().map(classic_field).collect()),
        other => other,
    };
    ArrowField { dtype, ..field }
}

/// A string as a YAML (and JSON) double-quoted scalar.
fn yaml_string(s: &str) -> String {
    serde_json::Value::String(s.to_string()).to_string()
}

/// Parameters as the user wrote them: floats are tagged in keys (`{"f64": "0.6"}`); untag them.
fn untagged(v: &serde_json::Value) -> serde_json::Value {
    use serde_json::Value as J;
    match v {
        J::Object(m) if m.len() == 1 && m.contains_key("f64") => {
            let text = m["f64"].as_str().unwrap_or_default();
            text.parse::<f64>()
                .ok()
                .and_then(serde_json::Number::from_f64)
                .map_or_else(|| J::String(text.to_string()), J::Number)
        }
        J::Object(m) => J::Object(m.iter().map(|(k, v)| (k.clone(), untagged(v))).collect()),
        J::Array(items) => J::Array(items.iter().map(untagged).collect()),
        other => other.clone(),
    }
}

/// The provenance table both cards share.
fn provenance(src: &Source<'_>) -> String {
    let n = src.node;
    let ing = &src.manifest.ingredients;
    let mut s = String::new();
    let _ = writeln!(s, "| | |\n| --- | --- |");
    let _ = writeln!(
        s,
        "| pipeline | `{}` (file `{}`) |",
        src.plan.name,
        src.pipeline_file.display()
    );
    let repetition = n
        .iteration
        .map(|i| format!(", repetition {i}"))
        .unwrap_or_default();
    let _ = writeln!(
        s,
        "| node | `{}` (template `{}`{repetition}) |",
        n.name, n.template
    );
    let kind =
        n.op.kind()
            .map(|k| format!(", kind `{k}`"))
            .unwrap_or_default();
    let _ = writeln!(
        s,
        "| operator | `{}`{kind}, version {} |",
        n.op.name(),
        n.op.version()
    );
    let what = match port_kind(src) {
        Some(k) => k.describe(),
        None => "?".into(),
    };
    let _ = writeln!(s, "| output | `{}` ({what}) |", src.port);
    let variants: Vec<&str> = n
        .variants
        .iter()
        .map(|&v| src.plan.variants[v].label.as_str())
        .filter(|l| !l.is_empty())
        .collect();
    if !variants.is_empty() {
        let _ = writeln!(s, "| sweep variants | {} |", variants.join("; "));
    }
    match ing.seed {
        Some(seed) => {
            let _ = writeln!(s, "| seed | {seed} |");
        }
        None => {
            let _ = writeln!(s, "| seed | none (the operator draws no random numbers) |");
        }
    }
    let _ = writeln!(s, "| cache key | `{}` |", src.manifest.key);
    if let Some(out) = src.manifest.outputs.get(src.port) {
        let _ = writeln!(s, "| content hash (blake3) | `{}` |", out.hash);
    }
    let _ = writeln!(
        s,
        "\n## Parameters\n\n```json\n{}\n```",
        serde_json::to_string_pretty(&untagged(&ing.params)).expect("json")
    );
    if !n.inputs.is_empty() {
        let _ = writeln!(
            s,
            "\n## Inputs\n\n| port | from | content hash |\n| --- | --- | --- |"
        );
        for b in &n.inputs {
            let _ = writeln!(
                s,
                "| `{}` | `{}.{}` | `{}` |",
                b.port,
                src.plan.graph[b.from].name,
                b.output,
                ing.inputs.get(b.port).map_or("?", String::as_str)
            );
        }
    }
    if !ing.files.is_empty() {
        let _ = writeln!(
            s,
            "\n## Files read\n\n| file | content hash |\n| --- | --- |"
        );
        for (f, h) in &ing.files {
            let _ = writeln!(s, "| `{f}` | `{h}` |");
        }
    }
    s
}

fn dataset_card(
    src: &Source<'_>,
    features: &str,
    columns: &[(String, String)],
    rows: usize,
) -> String {
    let title = format!("{} — {}.{}", src.plan.name, src.node.name, src.port);
    let mut s = String::new();
    let _ = write!(
        s,
        "---\npretty_name: {}\ntags:\n- judgeflow\nconfigs:\n- config_name: default\n  \
         data_files:\n  - split: train\n    path: data/train-*.parquet\ndataset_info:\n  \
         features:\n{features}---\n\n",
        yaml_string(&title)
    );
    let _ = writeln!(
        s,
        "# {title}\n\nExported by `judgeflow export` from judgeflow's content-addressed cache: \
         {rows} rows, one `train` split. The cache key below names every ingredient of this \
         frame (operator, version, parameters, seed, the content of its inputs), so the same key \
         means the same bytes.\n"
    );
    s.push_str(&provenance(src));
    let _ = writeln!(s, "\n## Columns\n\n| column | type |\n| --- | --- |");
    for (name, dtype) in columns {
        let _ = writeln!(s, "| `{name}` | {dtype} |");
    }
    let _ = writeln!(
        s,
        "\n## Loading\n\n```python\nfrom datasets import load_dataset\n\
         ds = load_dataset(\"path/to/this/directory\", split=\"train\")\n```"
    );
    s
}

fn model_card(src: &Source<'_>) -> String {
    let title = format!("{} — {}.{}", src.plan.name, src.node.name, src.port);
    let mut s = format!(
        "---\ntags:\n- judgeflow\n- mllama\n---\n\n# {title}\n\nA checkpoint exported by \
         `judgeflow export` from judgeflow's content-addressed cache: `config.json`, \
         `model.safetensors` (Hugging Face tensor names) and `tokenizer.json`, as the node \
         wrote them.\n\n"
    );
    s.push_str(&provenance(src));
    s
}

/// Where `NODE[.PORT]` points in `plan`: the node, and the port when one was named. A node name
/// is tried whole first, since display names of sweep variants contain dots
/// (`judge@1[vote.method=oracle]`).
pub fn resolve<'p>(
    plan: &'p Plan,
    target: &str,
) -> Result<(petgraph::graph::NodeIndex, Option<&'p str>)> {
    match plan.find(target) {
        Ok(idx) => Ok((idx, None)),
        Err(whole) => {
            let Some((node, port)) = target.rsplit_once('.') else {
                return Err(whole);
            };
            let Ok(idx) = plan.find(node) else {
                return Err(whole);
            };
            let n = &plan.graph[idx];
            match n.outputs.iter().find(|o| o.name == port) {
                Some(o) => Ok((idx, Some(o.name))),
                None => Err(no_such_output(
                    n,
                    format!("node `{}` has no output `{port}`", n.name),
                )),
            }
        }
    }
}

/// A usage error about an output `n` lacks, listing the outputs it has.
pub(crate) fn no_such_output(n: &PlanNode, message: String) -> Error {
    let names: Vec<&str> = n.outputs.iter().map(|o| o.name).collect();
    Error::usage(message, Some(format!("outputs: {}", names.join(", "))))
}

#[cfg(test)]
mod tests {
    #[test]
    fn base64_matches_rfc_4648() {
        for (plain, encoded) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(super::base64(plain.as_bytes()), encoded);
        }
    }
}
