//! Pipeline files: TOML parsed into declarations that keep the byte span of every key and value,
//! so that later stages can point diagnostics at the exact place in the file.
//!
//! ```toml
//! [pipeline]
//! name = "demo"           # required; names cache pointers and reports
//! seed = 42               # every node's seed is derived from it and the node's name
//!
//! [nodes.scenes]
//! op = "source"
//! kind = "scenes"         # operator families pick their member with `kind`
//! count = 100             # everything else is an operator parameter
//!
//! [nodes.answers]
//! op = "sample"
//! inputs = ["base", "scenes"]   # or { model = "base", prompts = "scenes" }
//!
//! [iterate.selftrain]     # nodes written once, repeated `times` times: `judge@1`, `judge@2`, ..
//! times = 3               # `--set iterate.selftrain.times=N` repeats it N times instead
//! nodes = ["answers", "judge"]
//! initial = { judge = "base" }  # what `judge@prev` means in the first repetition
//!
//! [sweep]                 # every combination becomes a variant; unaffected nodes are shared
//! "answers.temperature" = [0.6, 1.0]
//! "pipeline.seed" = [1, 2, 3]   # one variant per pipeline seed (`seed=N` in labels)
//! ```
//!
//! Sweep keys may be quoted (`"answers.temperature"`) or dotted (`answers.temperature`): both
//! name the same setting, and naming one twice is an error.
//!
//! Input references: `NODE`, `NODE.PORT`, and inside an iteration group `NODE@prev`; outside a
//! group `NODE@3` or `NODE@last` picks one repetition.

mod parser;

use std::ops::Range;

use crate::error::{ConfigError, Origin};
use crate::value::Value;

/// Largest pipeline file accepted; pipelines are hand-written and small, so anything bigger is
/// almost certainly the wrong file (and would make diagnostics unreadable).
pub const MAX_PIPELINE_BYTES: usize = 1 << 20;

/// Most repetitions of one `[iterate.*]` group.
pub const MAX_TIMES: u32 = 1000;

/// Node keys the engine itself interprets; all other keys are operator parameters.
pub const RESERVED_NODE_KEYS: &[&str] = &["op", "inputs", "seed", "gpus", "shards"];

/// A value with the byte range it came from.
#[derive(Clone, Debug, PartialEq)]
pub struct Sp<T> {
    /// The value.
    pub value: T,
    /// Its byte range in the origin.
    pub span: Range<usize>,
}

impl<T> Sp<T> {
    fn new(value: T, span: Range<usize>) -> Self {
        Sp { value, span }
    }
}

/// A whole pipeline file.
#[derive(Debug)]
pub struct PipelineDecl {
    /// The file's text, for diagnostics.
    pub origin: Origin,
    /// `[pipeline] name`.
    pub name: Sp<String>,
    /// `[pipeline] seed` (0 when absent).
    pub seed: u64,
    /// `[pipeline] compare`: nodes whose frames `judgeflow compare` puts side by side.
    pub compare: Vec<Sp<String>>,
    /// `[nodes.*]` in file order.
    pub nodes: Vec<NodeDecl>,
    /// `[iterate.*]`.
    pub groups: Vec<GroupDecl>,
    /// `[sweep]` entries.
    pub sweeps: Vec<SweepDecl>,
    /// `[executor]`: where nodes run (`crate::executor::settings`).
    pub executor: crate::executor::ExecutorSettings,
}

/// One `[nodes.NAME]` table.
#[derive(Debug, Clone)]
pub struct NodeDecl {
    /// The table's name.
    pub name: Sp<String>,
    /// `op = "..."` (None when missing: reported at plan time with the node's span).
    pub op: Option<Sp<String>>,
    /// `inputs = ...`.
    pub inputs: InputsDecl,
    /// Operator parameters in file order.
    pub params: Vec<(Sp<String>, Sp<Value>)>,
    /// `seed = N` overrides the derived seed.
    pub seed: Option<Sp<u64>>,
    /// `gpus = N` overrides what the operator declares.
    pub gpus: Option<Sp<u32>>,
    /// `shards = N`: run in N row shards (`crate::shard`), for operators that allow it.
    pub shards: Option<Sp<u32>>,
}

/// How a node names its inputs.
#[derive(Debug, Clone, Default)]
pub enum InputsDecl {
    /// No `inputs` key.
    #[default]
    None,
    /// `inputs = ["a", "b"]`: filled into the operator's ports in order.
    Positional(Vec<Sp<String>>),
    /// `inputs = { port = "ref" }`.
    Named(Vec<(Sp<String>, Sp<String>)>),
}

/// One `[iterate.NAME]` group.
#[derive(Debug, Clone)]
pub struct GroupDecl {
    /// The group's name.
    pub name: Sp<String>,
    /// How many repetitions: 1 to [`MAX_TIMES`], from the file or
    /// `--set iterate.NAME.times=N`.
    pub times: Sp<u32>,
    /// Member nodes.
    pub nodes: Vec<Sp<String>>,
    /// `member = "outside node"`: what `member@prev` means in repetition 1.
    pub initial: Vec<(Sp<String>, Sp<String>)>,
}

/// One `"node.param" = [alternatives]` sweep entry.
#[derive(Debug, Clone)]
pub struct SweepDecl {
    /// The `node.param` key.
    pub target: Sp<String>,
    /// The alternatives.
    pub values: Vec<Sp<Value>>,
}

/// Parses pipeline text. Returns the declarations (absent only when the text is not TOML at all)
/// and every problem found, so planning can still report its own problems alongside.
pub fn parse(origin: Origin) -> (Option<PipelineDecl>, Vec<ConfigError>) {
    match parser::parse_inner(origin) {
        Ok((decl, errors)) => (Some(decl), errors),
        Err(errors) => (None, errors),
    }
}

/// Reads a pipeline file's bytes into an [`Origin`], rejecting binary data with a diagnostic.
pub fn origin_from_bytes(name: &str, bytes: Vec<u8>) -> Result<Origin, Box<ConfigError>> {
    match String::from_utf8(bytes) {
        Ok(text) => Ok(Origin::new(name, text)),
        Err(e) => {
            let at = e.utf8_error().valid_up_to();
            Err(Box::new(
                ConfigError::new(
                    "judgeflow::config::not_utf8",
                    format!(
                        "pipeline file `{name}` is not UTF-8 text (invalid byte at offset {at})"
                    ),
                )
                .help("pipeline files are TOML text; is this the right file?"),
            ))
        }
    }
}

/// Longest node or pipeline name.
pub const MAX_NAME_CHARS: usize = 64;

/// Node, group and pipeline names: letters, digits, `_`, `-`.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}
