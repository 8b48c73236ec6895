//! One error type for the engine ([`Error`]) plus the pipeline-file diagnostics
//! ([`ConfigError`], collected into [`ConfigErrors`] so `check` reports every problem at once).
//!
//! Every diagnostic has a stable code (`judgeflow::area::what`) that tests snapshot and users can
//! search for, and, where we can tell, a `help` line saying what to do about it.

use std::fmt;
use std::ops::Range;
use std::path::PathBuf;
use std::sync::Arc;

use miette::{Diagnostic, LabeledSpan, NamedSource, SourceCode};

/// Result alias used across the engine.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The text a diagnostic points into: a pipeline file or the command line (`--set`).
#[derive(Clone, Debug)]
pub struct Origin(pub Arc<NamedSource<String>>);

impl Origin {
    /// A named piece of text (a file's contents under its path, or a `--set` argument).
    pub fn new(name: impl AsRef<str>, text: impl Into<String>) -> Self {
        Origin(Arc::new(NamedSource::new(name, text.into())))
    }

    /// The text this origin names.
    pub fn text(&self) -> &str {
        self.0.inner()
    }
}

/// One problem in a pipeline (its file, its overrides, or its meaning against the registry).
#[derive(Debug, Clone)]
pub struct ConfigError {
    /// Stable diagnostic code, e.g. `judgeflow::config::unknown_op`.
    pub code: &'static str,
    /// One-line statement of the problem.
    pub message: String,
    /// Where it is and what the label under it says.
    pub at: Option<(Origin, Range<usize>, String)>,
    /// Further places worth showing (e.g. the other end of a cycle).
    pub also: Vec<(Range<usize>, String)>,
    /// What to do about it.
    pub help: Option<String>,
}

impl ConfigError {
    /// A problem with a stable code and message; add a place with [`ConfigError::at`].
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        ConfigError {
            code,
            message: message.into(),
            at: None,
            also: Vec::new(),
            help: None,
        }
    }

    /// Point at `span` in `origin` with `label` under it.
    pub fn at(mut self, origin: &Origin, span: Range<usize>, label: impl Into<String>) -> Self {
        self.at = Some((origin.clone(), span, label.into()));
        self
    }

    /// Another labelled place in the same origin.
    pub fn also(mut self, span: Range<usize>, label: impl Into<String>) -> Self {
        self.also.push((span, label.into()));
        self
    }

    /// A line saying what to do.
    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    /// Adds "did you mean `x`?" when one of `candidates` is close to `wrong`.
    pub fn suggest<'a>(self, wrong: &str, candidates: impl IntoIterator<Item = &'a str>) -> Self {
        match closest(wrong, candidates) {
            Some(best) => self.help(format!("did you mean `{best}`?")),
            None => self,
        }
    }
}

/// The candidate most similar to `wrong`, if any is similar enough to be a likely typo.
pub fn closest<'a>(wrong: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (strsim::jaro_winkler(wrong, c), c))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ConfigError {}

impl Diagnostic for ConfigError {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        Some(Box::new(self.code))
    }

    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.help
            .as_ref()
            .map(|h| Box::new(h) as Box<dyn fmt::Display>)
    }

    fn source_code(&self) -> Option<&dyn SourceCode> {
        self.at.as_ref().map(|(o, _, _)| &*o.0 as &dyn SourceCode)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        let (_, span, label) = self.at.as_ref()?;
        let primary = LabeledSpan::new_primary_with_span(Some(label.clone()), span.clone());
        let others = self
            .also
            .iter()
            .map(|(s, l)| LabeledSpan::new_with_span(Some(l.clone()), s.clone()));
        Some(Box::new(std::iter::once(primary).chain(others)))
    }
}

/// All problems found while checking one pipeline; rendered as one report with each problem as
/// a related diagnostic.
#[derive(Debug)]
pub struct ConfigErrors {
    /// The pipeline file's path as the user gave it.
    pub pipeline: String,
    /// Every problem, in file order where there is one.
    pub errors: Vec<ConfigError>,
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.errors.len();
        write!(
            f,
            "pipeline `{}` is invalid: {n} error{}",
            self.pipeline,
            if n == 1 { "" } else { "s" }
        )
    }
}

impl std::error::Error for ConfigErrors {}

impl Diagnostic for ConfigErrors {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        Some(Box::new("judgeflow::check"))
    }

    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        Some(Box::new(
            "nothing was run; fix the errors above and `judgeflow check` again",
        ))
    }

    fn related<'a>(&'a self) -> Option<Box<dyn Iterator<Item = &'a dyn Diagnostic> + 'a>> {
        Some(Box::new(self.errors.iter().map(|e| e as &dyn Diagnostic)))
    }
}

/// Everything else the engine can fail with, outside of pipeline validation.
#[derive(Debug, thiserror::Error, Diagnostic)]
pub enum Error {
    /// The pipeline (or an override) is invalid; nothing ran.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Config(#[from] Box<ConfigErrors>),

    /// A file or directory the engine needs could not be read or written.
    #[error("{what} `{}`", path.display())]
    #[diagnostic(code(judgeflow::io))]
    Io {
        /// What was being done, e.g. "cannot write cache entry".
        what: String,
        /// The path involved.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },

    /// A cache entry's bytes no longer match the hash recorded when it was written.
    #[error("cache entry {key} is corrupt: {detail}")]
    #[diagnostic(
        code(judgeflow::cache::corrupt),
        help(
            "run again: the next run finds the entry corrupt, discards it and recomputes it; \
             `judgeflow verify` checks every entry. If this repeats, check the disk"
        )
    )]
    CorruptEntry {
        /// Key of the entry.
        key: String,
        /// Which file and how it differs.
        detail: String,
    },

    /// A frame written or read by a node does not have the columns its port declares.
    #[error("node `{node}` port `{port}`: frame does not match schema `{schema}`: {detail}")]
    #[diagnostic(
        code(judgeflow::schema::mismatch),
        help(
            "the operator's output must carry every column of its declared schema with the declared type"
        )
    )]
    SchemaMismatch {
        /// Node name.
        node: String,
        /// Port name.
        port: String,
        /// Schema name.
        schema: String,
        /// Missing columns / wrong types.
        detail: String,
    },

    /// An operator failed while running a node.
    #[error("node `{node}` (op `{op}`) failed")]
    #[diagnostic(code(judgeflow::node::failed))]
    NodeFailed {
        /// Node name.
        node: String,
        /// Operator name.
        op: String,
        /// What the operator reported.
        #[diagnostic_source]
        cause: miette::Report,
    },

    /// Parquet reading or writing failed.
    #[error("parquet I/O on `{}` failed: {message}", path.display())]
    #[diagnostic(code(judgeflow::parquet))]
    Parquet {
        /// File involved.
        path: PathBuf,
        /// Polars' message.
        message: String,
    },

    /// A node selection (`run PIPELINE NODE ...`) names nothing the pipeline has (boxed: it
    /// carries the command line, and every `Result` of the engine would otherwise grow).
    #[error(transparent)]
    #[diagnostic(transparent)]
    UnknownNode(Box<UnknownNode>),

    /// A command-line request names something the pipeline does not have.
    #[error("{message}")]
    #[diagnostic(code(judgeflow::cli::usage))]
    Usage {
        /// What is wrong.
        message: String,
        /// What to do instead.
        #[help]
        help: Option<String>,
    },
}

/// See [`Error::UnknownNode`].
#[derive(Debug, thiserror::Error, Diagnostic)]
#[error("no node, repetition or iteration group `{name}` in pipeline `{pipeline}`")]
#[diagnostic(code(judgeflow::select::unknown_node))]
pub struct UnknownNode {
    /// The argument as given.
    pub name: String,
    /// The pipeline's name.
    pub pipeline: String,
    /// The selection arguments, joined by spaces, so the label can point at the bad one.
    #[source_code]
    pub args: NamedSource<String>,
    /// Where the bad argument is in `args`.
    #[label("not in this pipeline")]
    pub span: miette::SourceSpan,
    /// The closest name, or what exists.
    #[help]
    pub help: Option<String>,
}

impl Error {
    /// An I/O error with what was being done and on which path.
    pub fn io(what: impl Into<String>, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            what: what.into(),
            path: path.into(),
            source,
        }
    }

    /// A command-line usage error with an optional help line.
    pub fn usage(message: impl Into<String>, help: Option<String>) -> Self {
        Error::Usage {
            message: message.into(),
            help,
        }
    }
}
