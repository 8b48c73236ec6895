//! The operator contract: what an operator declares (parameters, ports, version, GPUs) so that a
//! pipeline can be validated before anything runs, and the context it runs in.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use polars::prelude::{DataFrame, ParquetReader, ParquetWriter, SerReader};

use crate::error::{Error, Result};
use crate::progress::{NodeProgress, ProgressHub};
use crate::schema::FrameSchema;
use crate::value::{Params, Value};

/// A unit of work in a pipeline. Operators are stateless: everything a run depends on must come
/// from its parameters, seed and inputs, because that is all the cache key sees.
pub trait Operator: Send + Sync {
    /// The `op = "..."` name.
    fn name(&self) -> &'static str;
    /// For operator families (`op = "source"` with `kind = "scenes"`): the kind this operator
    /// implements. The `kind` parameter then selects it and is part of its parameters.
    fn kind(&self) -> Option<&'static str> {
        None
    }
    /// Bump whenever the operator's output for the same inputs changes: it is part of every
    /// cache key, so bumping it invalidates exactly this operator's entries and their dependents.
    /// (The operators crate checks its sources against a committed fingerprint table, so an
    /// edit without a decision about this number fails a test.)
    fn version(&self) -> u32;
    /// One line for `judgeflow ops` and diagnostics.
    fn doc(&self) -> &'static str;
    /// The parameters it reads, with types, ranges and defaults.
    fn params(&self) -> Vec<ParamSpec>;
    /// Its input ports, in the order positional `inputs = [..]` fill them.
    fn inputs(&self, params: &Params) -> Vec<Port>;
    /// Its output ports; the first is what a bare node reference means.
    fn outputs(&self, params: &Params) -> Vec<Port>;
    /// Files or directories outside the cache that a run reads (a source's data file, its image
    /// directory). Their *contents* are hashed into the cache key, so editing a file re-runs
    /// the node while moving or touching it does not.
    fn external_inputs(&self, _params: &Params) -> Vec<std::path::PathBuf> {
        Vec::new()
    }
    /// Environment variables that change what a run computes (on CUDA, the model's kernel and
    /// optimizer switches): the value of each one set to something non-empty joins the cache
    /// key (see `crate::cache`), so a run under another switch is another entry, and `plan`
    /// names the variable that moved. Variables that only change speed or logging stay out.
    /// The subprocess and Slurm executors' workers inherit the environment (Slurm's default
    /// `--export=ALL`), so a worker computes with the switch its key names.
    fn environment(&self, _params: &Params) -> Vec<&'static str> {
        Vec::new()
    }
    /// Whether its outputs depend on the seed it receives. The seed derives from the node's
    /// name (see [`crate::plan::derive_seed`]), so for an operator that draws random numbers a
    /// renamed node is a different draw and re-runs; one that returns `false` keeps the seed out
    /// of its cache key, so renaming its node keeps its entries. Saying `false` while reading
    /// `RunContext::seed` would serve one node's draw to another: only deterministic
    /// operators may.
    fn uses_seed(&self) -> bool {
        true
    }
    /// GPUs one run needs; the scheduler never runs more at once than exist.
    fn gpus(&self, _params: &Params) -> u32 {
        0
    }
    /// The input frame port whose rows are independent work items, if the operator may be run
    /// in row shards (`shards = N` on a node; see `crate::shard`): run on any contiguous slice
    /// of that port's rows (all other inputs whole), every output is a frame holding exactly
    /// the rows the whole run outputs for that slice, in order — except outputs that
    /// aggregate over rows, which [`Operator::finish_shards`] recomputes from the joined
    /// per-row outputs. `None` (the default) for operators that choose among rows, and for
    /// parameters that make them do so.
    fn row_shards(&self, _params: &Params) -> Option<&'static str> {
        None
    }
    /// After row shards: `outputs` holds every output port's shard frames joined in row order;
    /// an operator with an output that aggregates over rows (a score over all items, say)
    /// replaces it here, computed from the joined per-row outputs exactly as its whole run
    /// computes it, so the node's entry is the same whatever the shard count. The default
    /// changes nothing: right when every output is per row.
    fn finish_shards(
        &self,
        _params: &Params,
        _outputs: &mut BTreeMap<&'static str, DataFrame>,
    ) -> miette::Result<()> {
        Ok(())
    }
    /// Reads inputs from `ctx`, writes every output port.
    fn run(&self, ctx: &mut RunContext<'_>) -> miette::Result<()>;
}

/// What a port carries.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum PortKind {
    /// A Polars frame, stored as parquet, with at least this schema's columns.
    Frame(&'static FrameSchema),
    /// A directory of files of a named kind (`checkpoint`, `tokenizer`, ...).
    Artifact(&'static str),
}

impl PortKind {
    /// `frame<prompts>` / `artifact<checkpoint>`.
    pub fn describe(&self) -> String {
        match self {
            PortKind::Frame(s) => format!("frame<{}>", s.name),
            PortKind::Artifact(k) => format!("artifact<{k}>"),
        }
    }
}

/// A named input or output of an operator.
#[derive(Clone, Debug)]
pub struct Port {
    /// Port name.
    pub name: &'static str,
    /// What flows through it.
    pub kind: PortKind,
    /// Whether an input may be left unconnected.
    pub optional: bool,
}

impl Port {
    /// A required frame port.
    pub fn frame(name: &'static str, schema: &'static FrameSchema) -> Self {
        Port {
            name,
            kind: PortKind::Frame(schema),
            optional: false,
        }
    }

    /// A required artifact port.
    pub fn artifact(name: &'static str, kind: &'static str) -> Self {
        Port {
            name,
            kind: PortKind::Artifact(kind),
            optional: false,
        }
    }

    /// Marks an input port as optional.
    pub fn optional(mut self) -> Self {
        self.optional = true;
        self
    }
}

/// The type and range of one parameter.
#[derive(Clone, Debug, PartialEq)]
pub enum ParamKind {
    /// `true` / `false`.
    Bool,
    /// Integer in `min..=max`.
    Int {
        /// Smallest allowed.
        min: i64,
        /// Largest allowed.
        max: i64,
    },
    /// Float in `min..=max` (integers accepted and widened).
    Float {
        /// Smallest allowed.
        min: f64,
        /// Largest allowed.
        max: f64,
    },
    /// Any string.
    Str,
    /// One of a fixed set of strings.
    Choice(&'static [&'static str]),
    /// An array of strings.
    StrList,
}

impl ParamKind {
    /// "an integer in 1..=64" and the like, for diagnostics and `judgeflow ops`.
    pub fn describe(&self) -> String {
        match self {
            ParamKind::Bool => "a boolean".into(),
            ParamKind::Int { min, max } => format!("an integer in {min}..={max}"),
            ParamKind::Float { min, max } => format!("a float in {min:?}..={max:?}"),
            ParamKind::Str => "a string".into(),
            ParamKind::Choice(c) => format!("one of {}", quote_list(c)),
            ParamKind::StrList => "an array of strings".into(),
        }
    }

    /// Checks (and for floats, widens) a value; `Err` is the label for the diagnostic.
    pub fn accept(&self, value: Value) -> std::result::Result<Value, String> {
        let expected = || format!("expected {}, found {}", self.describe(), value.type_name());
        match (self, &value) {
            (ParamKind::Bool, Value::Bool(_)) => Ok(value),
            (ParamKind::Int { min, max }, Value::Int(i)) => {
                if (min..=max).contains(&i) {
                    Ok(value)
                } else {
                    Err(format!("{i} is out of range {min}..={max}"))
                }
            }
            (ParamKind::Float { min, max }, Value::Int(_) | Value::Float(_)) => {
                let x = match value {
                    Value::Int(i) => i as f64,
                    Value::Float(f) => f,
                    _ => unreachable!("matched above"),
                };
                if x >= *min && x <= *max {
                    Ok(Value::Float(x))
                } else {
                    Err(format!("{x:?} is out of range {min:?}..={max:?}"))
                }
            }
            (ParamKind::Str, Value::Str(_)) => Ok(value),
            (ParamKind::Choice(choices), Value::Str(s)) => {
                if choices.contains(&s.as_str()) {
                    Ok(value)
                } else {
                    Err(format!("`{s}` is not {}", self.describe()))
                }
            }
            (ParamKind::StrList, Value::List(items)) => {
                if items.iter().all(|v| matches!(v, Value::Str(_))) {
                    Ok(value)
                } else {
                    Err("expected an array of strings".into())
                }
            }
            _ => Err(expected()),
        }
    }
}

/// `a`, `b`, `c`: each item in backticks, comma-separated.
pub(crate) fn quote_list(items: &[&str]) -> String {
    items
        .iter()
        .map(|c| format!("`{c}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// One declared parameter.
#[derive(Clone, Debug)]
pub struct ParamSpec {
    /// Key in the node's table.
    pub name: &'static str,
    /// Type and range.
    pub kind: ParamKind,
    /// Used when the pipeline leaves it out; `None` makes the parameter required.
    pub default: Option<Value>,
    /// One line for `judgeflow ops`.
    pub doc: &'static str,
}

impl ParamSpec {
    /// A required parameter.
    pub fn new(name: &'static str, kind: ParamKind, doc: &'static str) -> Self {
        ParamSpec {
            name,
            kind,
            default: None,
            doc,
        }
    }

    /// Gives the parameter a default, making it optional.
    pub fn default(mut self, value: impl Into<Value>) -> Self {
        self.default = Some(value.into());
        self
    }
}

impl From<i64> for Value {
    fn from(v: i64) -> Self {
        Value::Int(v)
    }
}
impl From<f64> for Value {
    fn from(v: f64) -> Self {
        Value::Float(v)
    }
}
impl From<bool> for Value {
    fn from(v: bool) -> Self {
        Value::Bool(v)
    }
}
impl From<&str> for Value {
    fn from(v: &str) -> Self {
        Value::Str(v.to_string())
    }
}
impl From<Vec<&str>> for Value {
    fn from(v: Vec<&str>) -> Self {
        Value::List(v.into_iter().map(Value::from).collect())
    }
}

/// All operators a binary knows, by name (and kind for families).
#[derive(Default, Clone)]
pub struct Registry {
    ops: BTreeMap<(String, Option<String>), Arc<dyn Operator>>,
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an operator; a later one with the same name and kind replaces the earlier.
    pub fn register(&mut self, op: impl Operator + 'static) -> &mut Self {
        let key = (op.name().to_string(), op.kind().map(str::to_string));
        self.ops.insert(key, Arc::new(op));
        self
    }

    /// Operator names, each once.
    pub fn names(&self) -> Vec<&str> {
        let set: BTreeSet<&str> = self.ops.keys().map(|(n, _)| n.as_str()).collect();
        set.into_iter().collect()
    }

    /// The kinds of a family, empty for a plain operator.
    pub fn kinds(&self, name: &str) -> Vec<&str> {
        self.ops
            .keys()
            .filter(|(n, k)| n == name && k.is_some())
            .filter_map(|(_, k)| k.as_deref())
            .collect()
    }

    /// Looks an operator up by name and, for families, kind.
    pub fn get(&self, name: &str, kind: Option<&str>) -> Option<Arc<dyn Operator>> {
        self.ops
            .get(&(name.to_string(), kind.map(str::to_string)))
            .cloned()
    }

    /// Every registered operator.
    pub fn all(&self) -> impl Iterator<Item = &Arc<dyn Operator>> {
        self.ops.values()
    }
}

/// Where one input of a running node comes from.
#[derive(Clone, Debug)]
pub(crate) struct BoundInput {
    pub kind: PortKind,
    pub path: PathBuf,
    /// For a frame, the content hash its entry's manifest records: checked as it is read.
    pub hash: Option<String>,
    /// For the row-sharded port of a shard: the rows `start..end` the operator sees.
    pub rows: Option<(usize, usize)>,
}

/// Everything a running operator may touch. Outputs go to a private temporary directory that
/// the engine renames into the cache only after `run` returned `Ok` and every port was written.
pub struct RunContext<'a> {
    /// Display name of the node (`judge@2`).
    pub node: &'a str,
    /// Validated parameters.
    pub params: &'a Params,
    /// The seed this node receives (derived from the pipeline seed and the node's name).
    pub seed: u64,
    /// GPU ordinals reserved for this run (as many as the node declared).
    pub gpus: Vec<usize>,
    /// The repetition this node is inside an `[iterate]` group (1-based), `None` outside one.
    /// It is part of the node's identity already (it names the node and enters its seed), so
    /// an operator may use it, e.g. to take a different slice of its input each iteration.
    pub iteration: Option<u32>,
    pub(crate) inputs: BTreeMap<String, BoundInput>,
    pub(crate) outputs: Vec<Port>,
    pub(crate) out_dir: PathBuf,
    pub(crate) written: BTreeSet<String>,
    pub(crate) progress: &'a ProgressHub,
}

impl RunContext<'_> {
    /// Whether an (optional) input port is connected.
    pub fn has_input(&self, port: &str) -> bool {
        self.inputs.contains_key(port)
    }

    fn input(&self, port: &str) -> Result<&BoundInput> {
        self.inputs.get(port).ok_or_else(|| {
            Error::usage(
                format!("node `{}` has no input `{port}` connected", self.node),
                None,
            )
        })
    }

    /// Reads an input frame, checking it against the port's schema.
    pub fn input_frame(&self, port: &str) -> Result<DataFrame> {
        let bound = self.input(port)?;
        let mut df = match &bound.hash {
            Some(hash) => read_parquet_checked(&bound.path, hash)?,
            None => read_parquet(&bound.path)?,
        };
        if let Some((start, end)) = bound.rows {
            df = df.slice(start as i64, end.saturating_sub(start));
        }
        if let PortKind::Frame(schema) = bound.kind {
            schema.check(&df).map_err(|detail| Error::SchemaMismatch {
                node: self.node.to_string(),
                port: port.to_string(),
                schema: schema.name.to_string(),
                detail,
            })?;
        }
        Ok(df)
    }

    /// The directory of an input artifact.
    pub fn input_dir(&self, port: &str) -> Result<&Path> {
        Ok(&self.input(port)?.path)
    }

    fn output_port(&self, port: &str) -> Result<&Port> {
        self.outputs.iter().find(|p| p.name == port).ok_or_else(|| {
            Error::usage(
                format!("node `{}` has no output port `{port}`", self.node),
                None,
            )
        })
    }

    /// Writes a frame output after checking it against the port's schema.
    pub fn write_frame(&mut self, port: &str, frame: &mut DataFrame) -> Result<()> {
        let declared = self.output_port(port)?.kind;
        let PortKind::Frame(schema) = declared else {
            return Err(Error::usage(
                format!("output `{port}` of `{}` is not a frame", self.node),
                None,
            ));
        };
        schema
            .check(frame)
            .map_err(|detail| Error::SchemaMismatch {
                node: self.node.to_string(),
                port: port.to_string(),
                schema: schema.name.to_string(),
                detail,
            })?;
        let path = self.out_dir.join(format!("{port}.parquet"));
        write_parquet(&path, frame)?;
        crate::fault::point("output:frame");
        self.written.insert(port.to_string());
        Ok(())
    }

    /// The (empty, created) directory an artifact output is written into.
    pub fn output_dir(&mut self, port: &str) -> Result<PathBuf> {
        if !matches!(self.output_port(port)?.kind, PortKind::Artifact(_)) {
            return Err(Error::usage(
                format!("output `{port}` of `{}` is not an artifact", self.node),
                None,
            ));
        }
        let dir = self.out_dir.join(port);
        std::fs::create_dir_all(&dir).map_err(|e| Error::io("cannot create", &dir, e))?;
        crate::fault::point("output:dir");
        self.written.insert(port.to_string());
        Ok(dir)
    }

    /// A progress bar for this node (rows, rate and ETA); hidden when stderr is no terminal.
    pub fn progress(&self, total: u64, unit: &'static str) -> NodeProgress {
        self.progress.bar(self.node, total, unit)
    }
}

/// Writes a frame as parquet. Output is byte-stable for equal frames (no timestamps), which is
/// what lets early cutoff compare content hashes.
pub fn write_parquet(path: &Path, frame: &mut DataFrame) -> Result<()> {
    let file = File::create(path).map_err(|e| Error::io("cannot create", path, e))?;
    ParquetWriter::new(file)
        .finish(frame)
        .map_err(|e| Error::Parquet {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
    Ok(())
}

/// Reads a cached frame, checking that its bytes still hash to `expected` (the hash its
/// entry's manifest records): the bytes hashed are the bytes parsed, so a frame changed on disk
/// at any time before this read — whatever its mtime says — is an error, never a result.
pub fn read_parquet_checked(path: &Path, expected: &str) -> Result<DataFrame> {
    let bytes = std::fs::read(path).map_err(|e| Error::io("cannot open", path, e))?;
    let actual = blake3::hash(&bytes).to_hex();
    if actual.as_str() != expected {
        let key = path
            .parent()
            .and_then(Path::file_name)
            .map_or_else(String::new, |k| k.to_string_lossy().into_owned());
        return Err(Error::CorruptEntry {
            key,
            detail: format!(
                "`{}` no longer matches its hash (read {}…, recorded {}…)",
                path.display(),
                &actual.as_str()[..12],
                &expected[..12.min(expected.len())]
            ),
        });
    }
    ParquetReader::new(std::io::Cursor::new(bytes))
        .finish()
        .map_err(|e| Error::Parquet {
            path: path.to_path_buf(),
            message: e.to_string(),
        })
}

/// Reads a whole parquet file into a frame.
pub fn read_parquet(path: &Path) -> Result<DataFrame> {
    let file = File::open(path).map_err(|e| Error::io("cannot open", path, e))?;
    ParquetReader::new(file)
        .finish()
        .map_err(|e| Error::Parquet {
            path: path.to_path_buf(),
            message: e.to_string(),
        })
}
