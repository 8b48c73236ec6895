//! The command line's shape: [`Cli`] and its subcommands, as clap parses them.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

use crate::export::ExportFormat;

/// judgeflow: declarative pipelines for self-training vision-language judges.
#[derive(Parser, Debug)]
#[command(name = "judgeflow", version, about, propagate_version = true)]
pub struct Cli {
    /// Cache directory (default: $JUDGEFLOW_CACHE, else ./.judgeflow).
    #[arg(
        long,
        global = true,
        env = "JUDGEFLOW_CACHE",
        default_value = ".judgeflow"
    )]
    pub cache: PathBuf,
    /// Re-hash inputs identified by their file stamps (a model directory's weights) whatever
    /// their size, mtime and inode say; the same as JUDGEFLOW_REHASH=1.
    #[arg(long, global = true)]
    pub rehash: bool,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Pipeline file plus `--set` overrides, shared by most subcommands.
#[derive(clap::Args, Debug, Clone)]
pub struct PipelineArgs {
    /// The pipeline TOML file.
    pub pipeline: PathBuf,
    /// Override a parameter: `--set node.param=value` (repeatable); also `pipeline.seed=N`,
    /// `node.seed=N` (that node's own seed) and `iterate.GROUP.times=N`.
    #[arg(long = "set", value_name = "NODE.PARAM=VALUE")]
    pub set: Vec<String>,
}

/// Output formats of `graph`.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum GraphFormat {
    /// Graphviz.
    Dot,
    /// Mermaid flowchart.
    Mermaid,
}

/// Subcommands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run a pipeline (or the selected nodes and what they need): reuse fresh nodes, run dirty
    /// ones.
    ///
    /// Each run writes a trace, one JSON line per node (wall time, queue wait, CPU time, peak
    /// host and GPU memory, rows in and out, cache hit or miss), to
    /// CACHE/traces/PIPELINE/<UTC start>-<pid>-<n>.jsonl; `report` draws the newest as a timeline.
    Run {
        #[command(flatten)]
        args: PipelineArgs,
        /// Only these nodes and what they need: a node (`judge`: every repetition), a
        /// repetition (`judge@2`, `judge@last`), an `[iterate.*]` group, or `NODE[VARIANT]` for
        /// one sweep variant (default: every variant).
        #[arg(value_name = "NODE")]
        nodes: Vec<String>,
        /// Most nodes running at once (default: number of cores).
        #[arg(long)]
        jobs: Option<usize>,
        /// GPUs available to GPU nodes (default: count in CUDA_VISIBLE_DEVICES, else 1).
        #[arg(long)]
        gpus: Option<usize>,
        /// Where nodes run (default: the pipeline's `[executor] kind`, else threads):
        /// `subprocess` runs each node as its own `judgeflow exec-node` process, `slurm` as a
        /// Slurm job (the cache must then be on a filesystem every Slurm node shares).
        #[arg(long, value_enum)]
        executor: Option<crate::executor::ExecutorKind>,
    },
    /// Run one node from its task file (what `--executor subprocess|slurm` start; not for
    /// people).
    #[command(hide = true)]
    ExecNode {
        /// The task file the driver wrote into the cache.
        #[arg(env = "JUDGEFLOW_TASK")]
        task: PathBuf,
    },
    /// Validate a pipeline without running anything.
    Check {
        #[command(flatten)]
        args: PipelineArgs,
    },
    /// Show each node as fresh or dirty, and why.
    Plan {
        #[command(flatten)]
        args: PipelineArgs,
        /// Only these nodes and what they need: a node (`judge`: every repetition), a
        /// repetition (`judge@2`, `judge@last`), an `[iterate.*]` group, or `NODE[VARIANT]` for
        /// one sweep variant (default: every variant).
        #[arg(value_name = "NODE")]
        nodes: Vec<String>,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Explain why one node is (or is not) dirty: each ingredient that changed since its last run.
    Explain {
        #[command(flatten)]
        args: PipelineArgs,
        /// Node name (e.g. `judge@2`).
        node: String,
    },
    /// Print the DAG.
    Graph {
        #[command(flatten)]
        args: PipelineArgs,
        /// Only these nodes and what they need: a node (`judge`: every repetition), a
        /// repetition (`judge@2`, `judge@last`), an `[iterate.*]` group, or `NODE[VARIANT]` for
        /// one sweep variant (default: every variant).
        #[arg(value_name = "NODE")]
        nodes: Vec<String>,
        /// Output format.
        #[arg(long, value_enum, default_value = "dot")]
        format: GraphFormat,
    },
    /// Print the head of a computed node's frame and its parquet path.
    Show {
        #[command(flatten)]
        args: PipelineArgs,
        /// Node name.
        node: String,
        /// Output port (default: the first frame output).
        #[arg(long)]
        port: Option<String>,
        /// Rows to print.
        #[arg(long, default_value_t = 10)]
        rows: usize,
    },
    /// Copy a node's cached output out of the cache: a frame as parquet, JSON lines, CSV or a
    /// Hugging Face `datasets` directory (`hf`: parquet shards with `Image` columns and a dataset
    /// card naming pipeline, node, parameters and cache key); a checkpoint as its model
    /// directory.
    Export {
        #[command(flatten)]
        args: PipelineArgs,
        /// `NODE` or `NODE.PORT` (default port: the first frame output).
        target: String,
        /// Directory to create (it must not exist, or be empty).
        #[arg(long)]
        to: PathBuf,
        /// Output format of frames (checkpoints are always copied as directories).
        #[arg(long, value_enum, default_value = "parquet")]
        format: ExportFormat,
    },
    /// Put the sweep variants' result frames side by side (and, from the binary, the
    /// aggregates over seeds and the per-iteration diagnostics).
    Compare {
        #[command(flatten)]
        args: PipelineArgs,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Write figures and an HTML page of the cached results (nodes not run yet are listed).
    Report {
        #[command(flatten)]
        args: PipelineArgs,
        /// Directory to write the report into (created if missing).
        #[arg(long)]
        out: PathBuf,
    },
    /// Remove cache entries that none of the given pipelines references.
    Gc {
        /// Pipelines whose current entries are kept.
        pipelines: Vec<PathBuf>,
        /// Only list what would be removed.
        #[arg(long)]
        dry_run: bool,
    },
    /// Re-hash every cache entry, checkpoints included (like `git fsck`); corrupt entries are
    /// removed so that the next run recomputes them. Exit code 1 when any was corrupt.
    Verify,
    /// List the registered operators with their parameters and ports.
    Ops,
}
