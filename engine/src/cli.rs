//! The `judgeflow` command line, generic over the operator registry so the real binary and the
//! engine's tests (with toy operators) share it.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use miette::{Diagnostic, GraphicalReportHandler, GraphicalTheme};
use polars::prelude::{DataFrame, DataType};

use crate::cache::Cache;
use crate::config;
use crate::error::{ConfigErrors, Error, Result};
use crate::exec::{self, Outcome, RunOptions, Status};
use crate::export::{self, ExportFormat};
use crate::op::{Registry, read_parquet, read_parquet_checked};
use crate::plan::{self, Plan};
use crate::progress::ProgressHub;
use crate::trace::{self, TraceLine};

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
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Pipeline file plus `--set` overrides, shared by most subcommands.
#[derive(clap::Args, Debug, Clone)]
pub struct PipelineArgs {
    /// The pipeline TOML file.
    pub pipeline: PathBuf,
    /// Override a parameter: `--set node.param=value` (repeatable).
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

/// What `report` hands to the reporter for one plan node: a model-agnostic description plus
/// where its cached outputs are, so the binary can draw whatever its operators' frames mean.
#[derive(Clone, Debug, PartialEq)]
pub struct ReportNode {
    /// Unique display name (`judge@2[vote.method=oracle]`).
    pub name: String,
    /// The template (`[nodes.NAME]` table) it comes from.
    pub template: String,
    /// Repetition inside its `[iterate.*]` group; `None` outside any group.
    pub iteration: Option<u32>,
    /// Operator name.
    pub op: String,
    /// Operator kind, for families such as `source`.
    pub kind: Option<String>,
    /// Labels of the sweep variants the node belongs to (`""` when the pipeline has no sweep).
    pub variants: Vec<String>,
    /// Output port → path of its fresh cached output (parquet file for frames, directory for
    /// artifacts); empty when the node has no up-to-date result.
    pub outputs: BTreeMap<String, PathBuf>,
    /// Seconds the operator ran when it produced the cached entry, if the manifest says.
    pub seconds: Option<f64>,
}

/// Turns a pipeline's nodes into report files under `out_dir`; returns the files it wrote.
/// Supplied by the binary, which knows what the operators' frames mean.
/// `trace` is the pipeline's newest run trace ([`crate::trace`]), when it has one.
pub type Reporter = fn(
    pipeline_name: &str,
    nodes: &[ReportNode],
    trace: Option<&[TraceLine]>,
    out_dir: &Path,
) -> miette::Result<Vec<PathBuf>>;

/// One section the binary adds to `compare` after the variants' frames: what it knows its
/// operators' frames mean (aggregates over seeds, diagnostics). `text` is printed under
/// `title`; `--json` puts `json` under `sections` with its title.
#[derive(Clone, Debug)]
pub struct CompareSection {
    /// Heading.
    pub title: String,
    /// The section as text (tables), ending with a newline.
    pub text: String,
    /// The same as JSON.
    pub json: serde_json::Value,
}

/// Supplied by the binary: the extra `compare` sections of a pipeline, from the same nodes a
/// [`Reporter`] gets.
pub type Comparer =
    fn(pipeline_name: &str, nodes: &[ReportNode]) -> miette::Result<Vec<CompareSection>>;

/// Parses the process arguments, runs the command, renders errors; exit code 2 for invalid
/// pipelines and usage, 1 for failures while running. `report` is refused (no reporter).
pub fn main(registry: Registry) -> ExitCode {
    run_main(registry, None, None)
}

/// [`main`], with `report` handing its nodes to `reporter`.
pub fn main_with_reporter(registry: Registry, reporter: Reporter) -> ExitCode {
    run_main(registry, Some(reporter), None)
}

/// [`main_with_reporter`], with `compare` adding `comparer`'s sections.
pub fn main_with_reporter_and_comparer(
    registry: Registry,
    reporter: Reporter,
    comparer: Comparer,
) -> ExitCode {
    run_main(registry, Some(reporter), Some(comparer))
}

fn run_main(
    registry: Registry,
    reporter: Option<Reporter>,
    comparer: Option<Comparer>,
) -> ExitCode {
    let cli = Cli::parse();
    init_tracing();
    let mut out = String::new();
    let result = execute_with_comparer(cli, &registry, reporter, comparer, &mut out);
    print!("{out}");
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!(
                "{}",
                render(
                    &*e,
                    terminal_width(),
                    std::io::IsTerminal::is_terminal(&std::io::stderr())
                )
            );
            // A reporter's own failure is not an engine error; it failed while running.
            ExitCode::from(e.downcast_ref::<Error>().map_or(1, exit_code))
        }
    }
}

/// 2 for invalid pipelines and command-line mistakes (nothing ran), 1 for failures in a run.
pub fn exit_code(e: &Error) -> u8 {
    match e {
        Error::Config(_) | Error::Usage { .. } | Error::UnknownNode(_) => 2,
        _ => 1,
    }
}

/// Logs to stderr, filtered by `RUST_LOG` (default: warnings, which include "waiting for the
/// cache").
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("RUST_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}

fn terminal_width() -> usize {
    std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(100)
}

/// Renders a diagnostic as miette's graphical report (colour only when asked).
pub fn render(diag: &dyn Diagnostic, width: usize, color: bool) -> String {
    let theme = if color {
        GraphicalTheme::unicode()
    } else {
        GraphicalTheme::unicode_nocolor()
    };
    let mut s = String::new();
    GraphicalReportHandler::new_themed(theme)
        .with_width(width)
        .render_report(&mut s, diag)
        .expect("rendering to a String cannot fail");
    s
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
        let plan = load(&args.pipeline, registry, &args.set)?;
        let cache = Cache::open(&cli.cache)?;
        let tables = compare_tables(&plan, &cache)?;
        let nodes = report_nodes(&plan, &cache)?;
        let sections = comparer(&plan.name, &nodes)?;
        print_compare(&tables, &sections, *json, out);
        return Ok(());
    }
    let (Command::Report { args, out: dir }, Some(reporter)) = (&cli.command, reporter) else {
        return Ok(execute(cli, registry, out)?);
    };
    let plan = load(&args.pipeline, registry, &args.set)?;
    let cache = Cache::open(&cli.cache)?;
    let nodes = report_nodes(&plan, &cache)?;
    let trace = trace::latest(&cache, &plan.name)?;
    let lines = trace.as_ref().map(|(_, lines)| lines.as_slice());
    let written = reporter(&plan.name, &nodes, lines, dir)?;
    if let Some((path, _)) = &trace {
        let _ = writeln!(out, "timeline from the trace {}", path.display());
    }
    for path in &written {
        let _ = writeln!(out, "wrote {}", path.display());
    }
    let fresh = nodes.iter().filter(|n| !n.outputs.is_empty()).count();
    let _ = writeln!(
        out,
        "report of `{}`: {fresh} of {} nodes have results",
        plan.name,
        nodes.len()
    );
    Ok(())
}

/// Describes every plan node (in plan order) for a [`Reporter`]: a node without an up-to-date
/// result is listed with no outputs rather than failing, so a report of a half-run pipeline
/// still shows what exists.
pub fn report_nodes(plan: &Plan, cache: &Cache) -> Result<Vec<ReportNode>> {
    Ok(exec::status(plan, cache)?
        .into_iter()
        .map(|(idx, status)| {
            let n = &plan.graph[idx];
            let (outputs, seconds) = match status {
                Status::Fresh { key } => (
                    n.outputs
                        .iter()
                        .filter_map(|p| exec::output_file(cache, &key, n, Some(p.name)))
                        .map(|(port, path, _)| (port, path))
                        .collect(),
                    cache.manifest(&key).map(|m| m.seconds),
                ),
                Status::Dirty { .. } | Status::Waiting { .. } => (BTreeMap::new(), None),
            };
            ReportNode {
                name: n.name.clone(),
                template: n.template.clone(),
                iteration: n.iteration,
                op: n.op.name().to_string(),
                kind: n.op.kind().map(str::to_string),
                variants: n
                    .variants
                    .iter()
                    .map(|&v| plan.variants[v].label.clone())
                    .collect(),
                outputs,
                seconds,
            }
        })
        .collect())
}

/// Reasons on one line, as `plan` prints them.
fn joined(why: &[crate::dirty::DirtyReason]) -> String {
    why.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// Runs one parsed command, appending what it prints to `out`. `report` needs a reporter
/// ([`execute_with`]) and is a usage error here.
pub fn execute(cli: Cli, registry: &Registry, out: &mut String) -> Result<()> {
    match cli.command {
        Command::Report { .. } => Err(Error::usage(
            "`report` needs a reporter, which this build of judgeflow does not have",
            Some(
                "the engine only collects the nodes; the binary supplies the figures \
                 (`cli::main_with_reporter`)"
                    .into(),
            ),
        )),
        Command::Ops => {
            ops(registry, out);
            Ok(())
        }
        Command::Verify => {
            let cache = Cache::open(&cli.cache)?;
            let _shared = cache.lock_shared()?;
            let (checked, corrupt) = cache.verify_all()?;
            for (key, detail) in &corrupt {
                let _ = writeln!(out, "corrupt  {key}: {detail}; removed");
            }
            let _ = writeln!(out, "verified {checked} entries: {} corrupt", corrupt.len());
            match corrupt.len() {
                0 => Ok(()),
                n => Err(Error::CorruptEntry {
                    key: corrupt[0].0.clone(),
                    detail: format!(
                        "{} ({n} of {checked} entries were corrupt and are removed; the next \
                         run recomputes them)",
                        corrupt[0].1
                    ),
                }),
            }
        }
        Command::Check { args } => {
            let plan = load(&args.pipeline, registry, &args.set)?;
            let _ = writeln!(
                out,
                "pipeline `{}` is valid: {} nodes, {} variant(s)",
                plan.name,
                plan.order.len(),
                plan.variants.len()
            );
            Ok(())
        }
        Command::ExecNode { task } => {
            let said = crate::executor::exec_node(&task, registry)?;
            let _ = writeln!(out, "{said}");
            Ok(())
        }
        Command::Run {
            args,
            nodes,
            jobs,
            gpus,
            executor,
        } => {
            let mut plan = load(&args.pipeline, registry, &args.set)?;
            plan.select(&nodes)?;
            let cache = Cache::open(&cli.cache)?;
            let started = std::time::Instant::now();
            let opts = RunOptions {
                jobs: jobs
                    .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())),
                gpus: gpus.unwrap_or_else(visible_gpus),
            };
            let mut on = plan.executor.clone();
            on.kind = executor.unwrap_or(on.kind);
            let (reports, trace) =
                exec::run_traced_on(&plan, &cache, &opts, &ProgressHub::new(true), &on)?;
            let ran = reports.iter().filter(|r| r.outcome == Outcome::Ran).count();
            for r in &reports {
                let what = match r.outcome {
                    Outcome::Ran => format!("ran    {:>8.2}s", r.seconds),
                    Outcome::Fresh => "fresh           ".to_string(),
                    Outcome::Skipped => "skipped         ".to_string(),
                };
                let _ = writeln!(out, "{what}  {}", r.node);
            }
            let _ = writeln!(
                out,
                "{} nodes: {ran} ran, {} fresh in {:.2}s",
                reports.len(),
                reports.len() - ran,
                started.elapsed().as_secs_f64()
            );
            if let Some(trace) = trace {
                let _ = writeln!(out, "trace: {}", trace.display());
            }
            Ok(())
        }
        Command::Plan { args, nodes, json } => {
            let mut plan = load(&args.pipeline, registry, &args.set)?;
            plan.select(&nodes)?;
            let cache = Cache::open(&cli.cache)?;
            let statuses = exec::status(&plan, &cache)?;
            if json {
                let rows: Vec<serde_json::Value> = statuses
                    .iter()
                    .map(|(i, s)| {
                        let n = &plan.graph[*i];
                        serde_json::json!({
                            "node": n.name,
                            "op": n.op.name(),
                            "status": s,
                            "variants": n.variants.iter().map(|&v| plan.variants[v].label.clone()).collect::<Vec<_>>(),
                        })
                    })
                    .collect();
                let _ = writeln!(
                    out,
                    "{}",
                    serde_json::to_string_pretty(&rows).expect("json")
                );
            } else {
                let width = statuses
                    .iter()
                    .map(|(i, _)| plan.graph[*i].name.len())
                    .max()
                    .unwrap_or(0);
                for (i, s) in &statuses {
                    let name = &plan.graph[*i].name;
                    let (state, why) = match s {
                        Status::Fresh { .. } => ("fresh  ", String::new()),
                        Status::Dirty { why, .. } => ("dirty  ", joined(why)),
                        Status::Waiting { upstream, why } => {
                            let mut all = vec![format!("after {}", upstream.join(", "))];
                            all.extend(why.iter().map(ToString::to_string));
                            ("waiting", all.join("; "))
                        }
                    };
                    let _ = writeln!(
                        out,
                        "{}",
                        format!("{state}  {name:<width$}  {why}").trim_end()
                    );
                }
            }
            Ok(())
        }
        Command::Explain { args, node } => {
            let plan = load(&args.pipeline, registry, &args.set)?;
            let idx = plan.find(&node)?;
            let cache = Cache::open(&cli.cache)?;
            let statuses = exec::status(&plan, &cache)?;
            let (_, status) = statuses
                .iter()
                .find(|(i, _)| *i == idx)
                .expect("every node has a status");
            let n = &plan.graph[idx];
            match status {
                Status::Fresh { key } => {
                    let _ = writeln!(
                        out,
                        "`{}` is fresh: its entry {} matches every ingredient",
                        n.name,
                        &key[..16]
                    );
                }
                Status::Dirty { key, why } => {
                    let _ = writeln!(out, "`{}` is dirty (new key {}):", n.name, &key[..16]);
                    for w in why {
                        let _ = writeln!(out, "  - {w}");
                    }
                }
                Status::Waiting { upstream, why } => {
                    let _ = writeln!(
                        out,
                        "`{}` waits for dirty upstream node(s) {}; it re-runs unless they reproduce identical outputs",
                        n.name,
                        upstream.join(", ")
                    );
                    for w in why {
                        let _ = writeln!(out, "  - {w}");
                    }
                }
            }
            log_line(&cache, &plan, &n.name, out);
            Ok(())
        }
        Command::Graph {
            args,
            nodes,
            format,
        } => {
            let mut plan = load(&args.pipeline, registry, &args.set)?;
            plan.select(&nodes)?;
            graph(&plan, format, out);
            Ok(())
        }
        Command::Show {
            args,
            node,
            port,
            rows,
        } => {
            let plan = load(&args.pipeline, registry, &args.set)?;
            let idx = plan.find(&node)?;
            let cache = Cache::open(&cli.cache)?;
            let key = fresh_key(&plan, &cache, idx)?;
            let n = &plan.graph[idx];
            let Some((port, path, frame)) = exec::output_file(&cache, &key, n, port.as_deref())
            else {
                return Err(export::no_such_output(
                    n,
                    format!("node `{}` has no such output", n.name),
                ));
            };
            let _ = writeln!(out, "{} {port}: {}", n.name, path.display());
            log_line(&cache, &plan, &n.name, out);
            if frame {
                let df = read_frame(&cache, &key, &port, &path)?;
                let _ = writeln!(out, "{} rows × {} columns", df.height(), df.width());
                let _ = write!(out, "{}", format_frame(&df.head(Some(rows))));
            } else {
                for entry in walk(&path) {
                    let _ = writeln!(out, "  {}", entry.display());
                }
            }
            Ok(())
        }
        Command::Export {
            args,
            target,
            to,
            format,
        } => {
            let plan = load(&args.pipeline, registry, &args.set)?;
            let (idx, port) = export::resolve(&plan, &target)?;
            let cache = Cache::open(&cli.cache)?;
            let key = fresh_key(&plan, &cache, idx)?;
            let n = &plan.graph[idx];
            let (port, path, _) = exec::output_file(&cache, &key, n, port)
                .ok_or_else(|| Error::usage(format!("node `{}` has no outputs", n.name), None))?;
            let manifest = cache.manifest(&key).ok_or_else(|| {
                Error::usage(
                    format!("the cache entry of `{}` has no readable manifest", n.name),
                    Some("run the pipeline again to rebuild it".into()),
                )
            })?;
            let src = export::Source {
                plan: &plan,
                pipeline_file: &args.pipeline,
                node: n,
                port: &port,
                manifest: &manifest,
                path: &path,
            };
            let files = export::export(&src, format, &to)?;
            let _ = writeln!(
                out,
                "exported {}.{port} ({} file(s)) to {}",
                n.name,
                files.len(),
                to.display()
            );
            for f in files.iter().take(12) {
                let _ = writeln!(out, "  {}", f.display());
            }
            if files.len() > 12 {
                let _ = writeln!(out, "  … and {} more", files.len() - 12);
            }
            Ok(())
        }
        Command::Compare { args, json } => {
            let plan = load(&args.pipeline, registry, &args.set)?;
            let cache = Cache::open(&cli.cache)?;
            let tables = compare_tables(&plan, &cache)?;
            print_compare(&tables, &[], json, out);
            Ok(())
        }
        Command::Gc { pipelines, dry_run } => {
            if pipelines.is_empty() {
                return Err(Error::usage(
                    "`gc` needs the pipelines whose entries to keep",
                    Some("judgeflow gc pipelines/*.toml".into()),
                ));
            }
            let cache = Cache::open(&cli.cache)?;
            let _lock = cache.lock_exclusive()?;
            let mut keep = BTreeSet::new();
            for p in &pipelines {
                let plan = load(p, registry, &[])?;
                for (_, s) in exec::status(&plan, &cache)? {
                    if let Status::Fresh { key } = s {
                        keep.insert(key);
                    }
                }
            }
            let (removed, bytes) = cache.gc(&keep, dry_run)?;
            let verb = if dry_run { "would remove" } else { "removed" };
            let _ = writeln!(
                out,
                "{verb} {} entries ({:.1} MiB); kept {}",
                removed.len(),
                bytes as f64 / 1048576.0,
                keep.len()
            );
            Ok(())
        }
    }
}

/// Names the log of the node's last run as a process or Slurm job, when it has one.
fn log_line(cache: &Cache, plan: &Plan, node: &str, out: &mut String) {
    let log = crate::executor::log_path(cache, &plan.name, node);
    if log.is_file() {
        let _ = writeln!(out, "log of its last run as a worker: {}", log.display());
    }
}

/// GPUs named in CUDA_VISIBLE_DEVICES, else 1 (GPU nodes then run one at a time).
fn visible_gpus() -> usize {
    std::env::var("CUDA_VISIBLE_DEVICES")
        .ok()
        .map(|v| v.split(',').filter(|s| !s.trim().is_empty()).count())
        .filter(|&n| n > 0)
        .unwrap_or(1)
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

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(list) = std::fs::read_dir(dir) {
        for e in list.flatten() {
            if e.path().is_dir() {
                out.extend(walk(&e.path()));
            } else {
                out.push(e.path());
            }
        }
    }
    out.sort();
    out
}

fn ops(registry: &Registry, out: &mut String) {
    for op in registry.all() {
        let title = match op.kind() {
            Some(k) => format!("{} (kind = \"{k}\")", op.name()),
            None => op.name().to_string(),
        };
        let _ = writeln!(out, "{title}  v{}\n  {}", op.version(), op.doc());
        // With its default parameters: whether `shards = N` may split it (`crate::shard`).
        let defaults = crate::value::Params(
            op.params()
                .into_iter()
                .filter_map(|p| Some((p.name.to_string(), p.default?)))
                .collect(),
        );
        if let Some(port) = op.row_shards(&defaults) {
            let _ = writeln!(
                out,
                "  row shards: `shards = N` splits the rows of `{port}`"
            );
        }
        for p in op.params() {
            let default = p
                .default
                .map(|d| format!(" = {d}"))
                .unwrap_or_else(|| " (required)".into());
            let _ = writeln!(
                out,
                "    {}{default}: {} — {}",
                p.name,
                p.kind.describe(),
                p.doc
            );
        }
    }
}

fn graph(plan: &Plan, format: GraphFormat, out: &mut String) {
    let id = |i: petgraph::graph::NodeIndex| format!("n{}", i.index());
    match format {
        GraphFormat::Dot => {
            let _ = writeln!(
                out,
                "digraph \"{}\" {{\n  rankdir=LR;\n  node [shape=box];",
                plan.name
            );
            for &i in &plan.order {
                let n = &plan.graph[i];
                let _ = writeln!(
                    out,
                    "  {} [label=\"{}\\n{}\"];",
                    id(i),
                    n.name.replace('"', "\\\""),
                    n.op.name()
                );
            }
            for &i in &plan.order {
                for b in &plan.graph[i].inputs {
                    let _ = writeln!(out, "  {} -> {} [label=\"{}\"];", id(b.from), id(i), b.port);
                }
            }
            let _ = writeln!(out, "}}");
        }
        GraphFormat::Mermaid => {
            let _ = writeln!(out, "flowchart LR");
            for &i in &plan.order {
                let n = &plan.graph[i];
                let _ = writeln!(
                    out,
                    "  {}[\"{}<br/><i>{}</i>\"]",
                    id(i),
                    n.name.replace('"', "#quot;"),
                    n.op.name()
                );
            }
            for &i in &plan.order {
                for b in &plan.graph[i].inputs {
                    let _ = writeln!(out, "  {} -->|{}| {}", id(b.from), b.port, id(i));
                }
            }
        }
    }
}

/// A frame as an aligned text table (all rows given; binary cells shown by size).
pub fn format_frame(df: &DataFrame) -> String {
    let shown = printed_columns(df);
    let mut cells: Vec<Vec<String>> = vec![shown.iter().map(Printed::header).collect()];
    for row in 0..df.height() {
        cells.push(
            shown
                .iter()
                .map(|p| match p {
                    Printed::Interval(v, lo, hi) => interval_cell(v, lo, hi, row, 3),
                    Printed::Plain(c) => match c.dtype() {
                        DataType::Binary => format!(
                            "<{} bytes>",
                            c.binary()
                                .ok()
                                .and_then(|b| b.get(row))
                                .map_or(0, |b| b.len())
                        ),
                        _ => {
                            let v = c.get(row).map(|v| v.to_string()).unwrap_or_default();
                            let v = v.trim_matches('"').replace('\n', "⏎");
                            if v.chars().count() > 60 {
                                format!("{}…", v.chars().take(59).collect::<String>())
                            } else {
                                v
                            }
                        }
                    },
                })
                .collect(),
        );
    }
    text_table(&cells)
}

/// How one column of a frame prints. A float column `NAME` whose frame also has float columns
/// `NAME_lo` and `NAME_hi` (an estimate and its interval, as `evaluate`'s `accuracy`) prints as
/// one column, `value [lo, hi]`, so that no estimate is read without its uncertainty; the
/// bounds are not printed on their own.
enum Printed<'a> {
    Plain(&'a polars::prelude::Column),
    Interval(
        &'a polars::prelude::Column,
        &'a polars::prelude::Column,
        &'a polars::prelude::Column,
    ),
}

impl Printed<'_> {
    fn header(&self) -> String {
        match self {
            Printed::Plain(c) => c.name().to_string(),
            Printed::Interval(c, ..) => format!("{} [lo, hi]", c.name()),
        }
    }
}

fn printed_columns(df: &DataFrame) -> Vec<Printed<'_>> {
    let float = |name: &str| {
        df.column(name)
            .ok()
            .filter(|c| matches!(c.dtype(), DataType::Float64 | DataType::Float32))
    };
    let bounds = |name: &str| Some((float(&format!("{name}_lo"))?, float(&format!("{name}_hi"))?));
    df.columns()
        .iter()
        .filter_map(|c| {
            let name = c.name().as_str();
            let bound_of = ["_lo", "_hi"].iter().any(|suffix| {
                name.strip_suffix(suffix)
                    .is_some_and(|base| float(base).is_some() && bounds(base).is_some())
            });
            if bound_of {
                return None;
            }
            Some(match (float(name), bounds(name)) {
                (Some(_), Some((lo, hi))) => Printed::Interval(c, lo, hi),
                _ => Printed::Plain(c),
            })
        })
        .collect()
}

/// `value [lo, hi]` with `digits` decimals; an unknown value prints as `NaN`.
fn interval_cell(
    v: &polars::prelude::Column,
    lo: &polars::prelude::Column,
    hi: &polars::prelude::Column,
    row: usize,
    digits: usize,
) -> String {
    let get = |c: &polars::prelude::Column| {
        c.cast(&DataType::Float64)
            .ok()
            .and_then(|c| c.f64().ok().and_then(|f| f.get(row)))
            .unwrap_or(f64::NAN)
    };
    format!(
        "{:.digits$} [{:.digits$}, {:.digits$}]",
        get(v),
        get(lo),
        get(hi)
    )
}

fn text_table(cells: &[Vec<String>]) -> String {
    let ncol = cells.first().map_or(0, Vec::len);
    let widths: Vec<usize> = (0..ncol)
        .map(|c| {
            cells
                .iter()
                .map(|r| r[c].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut s = String::new();
    for (ri, row) in cells.iter().enumerate() {
        let line: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(v, w)| format!("{v:<w$}"))
            .collect();
        let _ = writeln!(s, "{}", line.join("  ").trim_end());
        if ri == 0 {
            let rule: Vec<String> = widths.iter().map(|w| "─".repeat(*w)).collect();
            let _ = writeln!(s, "{}", rule.join("  "));
        }
    }
    s
}

/// `compare`'s output: each compared node's table (a header row, then rows), then the
/// binary's sections; as text, or as one JSON object `{"tables": [{"node", "columns", "rows"}],
/// "sections": [{"title", "data"}]}`.
fn print_compare(
    tables: &[(String, Vec<Vec<String>>)],
    sections: &[CompareSection],
    json: bool,
    out: &mut String,
) {
    if json {
        let tables: Vec<serde_json::Value> = tables
            .iter()
            .map(|(node, cells)| {
                serde_json::json!({
                    "node": node,
                    "columns": cells.first().cloned().unwrap_or_default(),
                    "rows": cells.iter().skip(1).collect::<Vec<_>>(),
                })
            })
            .collect();
        let sections: Vec<serde_json::Value> = sections
            .iter()
            .map(|s| serde_json::json!({ "title": s.title, "data": s.json }))
            .collect();
        let doc = serde_json::json!({ "tables": tables, "sections": sections });
        let _ = writeln!(out, "{}", serde_json::to_string_pretty(&doc).expect("json"));
        return;
    }
    for (node, cells) in tables {
        let _ = writeln!(out, "{node}:");
        let _ = writeln!(out, "{}", text_table(cells));
    }
    for s in sections {
        let _ = writeln!(out, "{}:", s.title);
        let _ = writeln!(out, "{}", s.text);
    }
}

/// For each compared node, one table: its string columns identify rows, each variant
/// contributes its numeric columns.
fn compare_tables(plan: &Plan, cache: &Cache) -> Result<Vec<(String, Vec<Vec<String>>)>> {
    let statuses: BTreeMap<_, _> = exec::status(plan, cache)?.into_iter().collect();
    let mut tables = Vec::new();
    for template in &plan.compare {
        let mut rows: BTreeMap<Vec<String>, BTreeMap<String, String>> = BTreeMap::new();
        let mut key_names: Vec<String> = Vec::new();
        let mut value_columns: Vec<String> = Vec::new();
        for variant in &plan.variants {
            let Some((_, &idx)) = variant
                .nodes
                .iter()
                .filter(|&(_, &i)| plan.graph[i].template == *template)
                .max_by_key(|&(_, &i)| plan.graph[i].iteration)
            else {
                continue;
            };
            let label = if variant.label.is_empty() {
                "value".to_string()
            } else {
                variant.label.clone()
            };
            let Some(Status::Fresh { key }) = statuses.get(&idx) else {
                return Err(Error::usage(
                    format!(
                        "`{}` of variant `{label}` has no up-to-date result",
                        plan.graph[idx].name
                    ),
                    Some("run the pipeline first".into()),
                ));
            };
            let Some((port, path, true)) = exec::output_file(cache, key, &plan.graph[idx], None)
            else {
                continue;
            };
            let df = read_frame(cache, key, &port, &path)?;
            let (keys, values): (Vec<_>, Vec<_>) = printed_columns(&df)
                .into_iter()
                .partition(|p| matches!(p, Printed::Plain(c) if !c.dtype().is_primitive_numeric()));
            let keys: Vec<&polars::prelude::Column> = keys
                .into_iter()
                .filter_map(|p| match p {
                    Printed::Plain(c) => Some(c),
                    Printed::Interval(..) => None,
                })
                .collect();
            key_names = keys.iter().map(|c| c.name().to_string()).collect();
            for row in 0..df.height() {
                let k: Vec<String> = keys
                    .iter()
                    .map(|c| {
                        c.get(row)
                            .map(|v| v.to_string().trim_matches('"').to_string())
                            .unwrap_or_default()
                    })
                    .collect();
                for p in &values {
                    let col = if values.len() == 1 {
                        label.clone()
                    } else {
                        format!("{label} {}", p.header())
                    };
                    if !value_columns.contains(&col) {
                        value_columns.push(col.clone());
                    }
                    let cell = match p {
                        Printed::Interval(v, lo, hi) => interval_cell(v, lo, hi, row, 4),
                        Printed::Plain(v) => match v.get(row) {
                            Ok(polars::prelude::AnyValue::Float64(x)) => format!("{x:.4}"),
                            Ok(polars::prelude::AnyValue::Float32(x)) => format!("{x:.4}"),
                            Ok(other) => other.to_string(),
                            Err(_) => String::new(),
                        },
                    };
                    rows.entry(k.clone()).or_default().insert(col, cell);
                }
            }
        }
        let mut cells = vec![
            key_names
                .iter()
                .cloned()
                .chain(value_columns.iter().cloned())
                .collect::<Vec<_>>(),
        ];
        for (k, vals) in rows {
            cells.push(
                k.into_iter()
                    .chain(
                        value_columns
                            .iter()
                            .map(|c| vals.get(c).cloned().unwrap_or_default()),
                    )
                    .collect(),
            );
        }
        tables.push((template.clone(), cells));
    }
    Ok(tables)
}

/// A table as aligned text, header ruled (for the binary's [`CompareSection`]s).
pub fn format_table(cells: &[Vec<String>]) -> String {
    text_table(cells)
}

#[cfg(test)]
mod tests {
    use super::*;
    use polars::prelude::Column;

    #[test]
    fn estimates_print_with_their_interval() {
        let df = DataFrame::new_infer_height(vec![
            Column::new("dimension".into(), ["general", "macro"]),
            Column::new("accuracy".into(), [0.5f64, f64::NAN]),
            Column::new("accuracy_lo".into(), [0.25f64, f64::NAN]),
            Column::new("accuracy_hi".into(), [0.75f64, f64::NAN]),
            Column::new("n".into(), [10i64, 0]),
            // A lone bound without its estimate prints as itself.
            Column::new("other_lo".into(), [1.0f64, 2.0]),
        ])
        .unwrap();
        let text = format_frame(&df);
        let mut lines = text.lines();
        let header = lines.next().unwrap();
        assert!(header.contains("accuracy [lo, hi]"), "{text}");
        assert!(
            !header.contains("accuracy_lo") && header.contains("other_lo"),
            "{text}"
        );
        assert!(text.contains("0.500 [0.250, 0.750]"), "{text}");
        assert!(text.contains("NaN [NaN, NaN]"), "{text}");
    }
}
