//! judgeflow's pipeline engine: TOML pipeline files become a DAG of operator runs whose outputs
//! are cached by content, so a changed parameter re-runs only what it invalidates.
//!
//! The engine knows nothing of models or data: operators are registered by the crate that links
//! the engine (`judgeflow-operators` for the real binary, toy operators in the engine's tests).
//!
//! One run, traced through the modules:
//! 1. [`config`] parses the pipeline file into declarations that keep their source spans.
//! 2. [`plan`] validates them against the [`op::Registry`], applies `--set` overrides, expands
//!    sweeps and unrolls iterations into a petgraph DAG of [`plan::PlanNode`]s.
//! 3. [`exec`] walks the DAG: for each node whose inputs are ready it computes the cache key
//!    ([`cache`]), reuses the entry if one exists, or runs the operator and stores its outputs.
//! 4. [`cli`] is the `judgeflow` command line on top of those three.

pub mod cache;
pub mod cli;
pub mod config;
pub mod dirty;
pub mod error;
pub mod exec;
pub mod executor;
pub mod export;
pub mod fault;
pub mod files;
pub mod op;
pub mod params;
pub mod plan;
pub mod progress;
pub mod schema;
pub mod select;
pub mod shard;
pub mod trace;
pub mod typed_op;
pub mod value;

pub use error::{ConfigError, ConfigErrors, Error, Result};
pub use op::{Operator, ParamKind, ParamSpec, Port, PortKind, Registry, RunContext};
pub use params::OperatorParams;
pub use progress::NodeProgress;
pub use schema::{ColumnType, FrameSchema};
pub use typed_op::TypedOperator;
pub use value::{Params, Value};
