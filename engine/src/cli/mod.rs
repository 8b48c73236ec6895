//! The `judgeflow` command line, generic over the operator registry so the real binary and the
//! engine's tests (with toy operators) share it.
//!
//! [`execute`] hands each subcommand to its own function, in one file per subcommand or group:
//! `args` (the clap definitions), `process` ([`main`]: exit codes, logging, rendering errors),
//! `status` (`check`, `plan`, `explain`), `run` (`run`, `exec-node`), `graph`, `show` (`show`,
//! `export`), `compare`, `report`, `maintenance` (`gc`, `verify`), `ops`, and `table` (frames
//! and tables as text). What several subcommands share (loading a pipeline, finding a node's
//! fresh entry, reading its frame) is here.

mod args;
mod compare;
mod graph;
mod maintenance;
mod ops;
mod process;
mod report;
mod run;
mod show;
mod status;
mod table;

use std::fmt::Write as _;
use std::path::Path;

use polars::prelude::DataFrame;

pub use args::{Cli, Command, GraphFormat, PipelineArgs};
pub use compare::{CompareSection, Comparer};
pub use process::{
    exit_code, init_tracing, main, main_with_reporter, main_with_reporter_and_comparer, render,
};
pub use report::{ReportNode, Reporter, report_nodes};
pub use table::{format_frame, format_table};

use crate::cache::Cache;
use crate::config;
use crate::error::{ConfigErrors, Error, Result};
use crate::exec::{self, Status};
use crate::op::{Registry, read_parquet, read_parquet_checked};
use crate::plan::{self, Plan};

/// What every subcommand may use besides its own arguments.
struct Ctx<'a> {
    /// The cache directory (`--cache`).
    cache: &'a Path,
    /// The operators.
    registry: &'a Registry,
}

/// Reads, parses and plans a pipeline file.
pub fn load(path: &Path, registry: &Registry, overrides: &[String]) -> Result<Plan> {
    let shown = path.display().to_string();
    // Read with the limit, not after: `check /dev/zero` must not try to hold all of it.
    let limit = config::MAX_PIPELINE_BYTES as u64;
    let bytes = crate::files::read_bounded(path, limit)
        .map_err(|e| Error::io("cannot read pipeline file", path, e))?;
    let wrap = |errors| {
        Error::Config(Box::new(ConfigErrors {
            pipeline: shown.clone(),
            errors,
        }))
    };
    if bytes.len() as u64 > limit {
        return Err(wrap(vec![
            crate::error::ConfigError::new(
                "judgeflow::config::too_large",
                format!("pipeline file is larger than the limit of {limit} bytes"),
            )
            .help("pipeline files are small hand-written TOML; is this the right file?"),
        ]));
    }
    let origin = config::origin_from_bytes(&shown, bytes).map_err(|e| wrap(vec![*e]))?;
    let (decl, mut errors) = config::parse(origin);
    let Some(decl) = decl else {
        return Err(wrap(errors));
    };
    match plan::build(decl, registry, overrides) {
        Ok(plan) if errors.is_empty() => Ok(plan),
        Ok(_) => Err(wrap(errors)),
        Err(more) => {
            errors.extend(more);
            Err(wrap(errors))
        }
    }
}

/// Runs one parsed command with `reporter` for `report`, appending what it prints to `out`.
/// The error is a [`miette::Report`] because a reporter's failure is not an engine [`Error`];
/// engine errors inside it downcast to [`Error`] (see [`exit_code`]).
pub fn execute_with(
    cli: Cli,
    registry: &Registry,
    reporter: Option<Reporter>,
    out: &mut String,
) -> miette::Result<()> {
    execute_with_comparer(cli, registry, reporter, None, out)
}

/// [`execute_with`], with `compare` adding `comparer`'s sections.
pub fn execute_with_comparer(
    cli: Cli,
    registry: &Registry,
    reporter: Option<Reporter>,
    comparer: Option<Comparer>,
    out: &mut String,
) -> miette::Result<()> {
    if let (Command::Compare { args, json }, Some(comparer)) = (&cli.command, comparer) {
        let ctx = Ctx {
            cache: &cli.cache,
            registry,
        };
        return compare::compare_with_sections(&ctx, args, *json, comparer, out);
    }
    if let (Command::Report { args, out: dir }, Some(reporter)) = (&cli.command, reporter) {
        let ctx = Ctx {
            cache: &cli.cache,
            registry,
        };
        return report::report(&ctx, args, dir, reporter, out);
    }
    Ok(execute(cli, registry, out)?)
}

/// Runs one parsed command, appending what it prints to `out`. `report` needs a reporter
/// ([`execute_with`]) and is a usage error here.
pub fn execute(cli: Cli, registry: &Registry, out: &mut String) -> Result<()> {
    let ctx = Ctx {
        cache: &cli.cache,
        registry,
    };
    match &cli.command {
        Command::Report { .. } => Err(Error::usage(
            "`report` needs a reporter, which this build of judgeflow does not have",
            Some(
                "the engine only collects the nodes; the binary supplies the figures \
                 (`cli::main_with_reporter`)"
                    .into(),
            ),
        )),
        Command::Ops => {
            ops::ops(registry, out);
            Ok(())
        }
        Command::Verify => maintenance::verify(&ctx, out),
        Command::Check { args } => status::check(&ctx, args, out),
        Command::ExecNode { task } => run::exec_node(&ctx, task, out),
        Command::Run {
            args,
            nodes,
            jobs,
            gpus,
            executor,
        } => run::run(&ctx, args, nodes, *jobs, *gpus, *executor, out),
        Command::Plan { args, nodes, json } => status::plan(&ctx, args, nodes, *json, out),
        Command::Explain { args, node } => status::explain(&ctx, args, node, out),
        Command::Graph {
            args,
            nodes,
            format,
        } => graph::graph(&ctx, args, nodes, *format, out),
        Command::Show {
            args,
            node,
            port,
            rows,
        } => show::show(&ctx, args, node, port.as_deref(), *rows, out),
        Command::Export {
            args,
            target,
            to,
            format,
        } => show::export(&ctx, args, target, to, *format, out),
        Command::Compare { args, json } => compare::compare(&ctx, args, *json, out),
        Command::Gc { pipelines, dry_run } => maintenance::gc(&ctx, pipelines, *dry_run, out),
    }
}

/// Names the log of the node's last run as a process or Slurm job, when it has one.
fn log_line(cache: &Cache, plan: &Plan, node: &str, out: &mut String) {
    let log = crate::executor::log_path(cache, &plan.name, node);
    if log.is_file() {
        let _ = writeln!(out, "log of its last run as a worker: {}", log.display());
    }
}

fn fresh_key(plan: &Plan, cache: &Cache, idx: petgraph::graph::NodeIndex) -> Result<String> {
    let statuses = exec::status(plan, cache)?;
    match statuses
        .into_iter()
        .find(|(i, _)| *i == idx)
        .map(|(_, s)| s)
    {
        Some(Status::Fresh { key }) => Ok(key),
        _ => Err(Error::usage(
            format!("node `{}` has no up-to-date result", plan.graph[idx].name),
            Some(
                "run the pipeline first (`judgeflow run`), or see why with `judgeflow explain`"
                    .into(),
            ),
        )),
    }
}

/// Reads a fresh entry's frame, checked against the hash its manifest records.
fn read_frame(cache: &Cache, key: &str, port: &str, path: &Path) -> Result<DataFrame> {
    match cache
        .manifest(key)
        .and_then(|m| m.outputs.get(port).cloned())
    {
        Some(record) => read_parquet_checked(path, &record.hash),
        None => read_parquet(path),
    }
}
