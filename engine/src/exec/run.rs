//! Running a plan: the coordinator walks the DAG, reuses fresh entries, hands dirty nodes to
//! worker threads (or to an external executor) as their inputs become ready, within the `jobs`
//! and `gpus` limits, and writes the run's trace as nodes end.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::mpsc;
use std::time::{Instant, SystemTime};

use petgraph::graph::NodeIndex;
use serde::Serialize;

use super::unit::build;
use super::{ingredients, output_hashes};
use crate::cache::{Cache, Ingredients, Lookup, Manifest};
use crate::error::{Error, Result};
use crate::executor::{self, ExecutorSettings};
use crate::op::{BoundInput, PortKind};
use crate::plan::Plan;
use crate::progress::ProgressHub;
use crate::trace::{self, Meter, Peaks, TraceLine};

/// How a node ended in a run.
#[derive(Clone, Debug, Serialize, PartialEq)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Its entry existed.
    Fresh,
    /// It ran.
    Ran,
    /// Not started because another node failed.
    Skipped,
}

/// One node's line in a run report.
#[derive(Clone, Debug, Serialize)]
pub struct NodeReport {
    /// Display name.
    pub node: String,
    /// Outcome.
    pub outcome: Outcome,
    /// Cache key, when known.
    pub key: Option<String>,
    /// Seconds the operator ran (0 for fresh nodes).
    pub seconds: f64,
}

/// Run settings.
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// Most nodes running at once.
    pub jobs: usize,
    /// GPUs that exist; GPU nodes never together reserve more.
    pub gpus: usize,
}

enum Done {
    Ok {
        idx: NodeIndex,
        manifest: Manifest,
        ran: bool,
        gpus: Vec<usize>,
        timing: Timing,
    },
    Failed {
        idx: NodeIndex,
        key: String,
        error: Error,
        gpus: Vec<usize>,
        timing: Timing,
    },
}

/// When a node started and ended (seconds since the run started) and what it used; for the
/// trace (`crate::trace`).
#[derive(Clone, Copy, Debug, Default)]
struct Timing {
    start: f64,
    end: f64,
    cpu: Option<f64>,
    peaks: Peaks,
}

/// Stops the memory sampler however the coordinator leaves its scope (an early `?` included),
/// so that the scope's join never waits on it.
struct StopSampler<'a>(&'a Meter, std::thread::Thread);

impl Drop for StopSampler<'_> {
    fn drop(&mut self) {
        self.0.stop();
        self.1.unpark();
    }
}

/// Runs the plan: fresh nodes are reused, dirty ones run (up to `jobs` at once, GPU nodes
/// within `gpus`). Returns one report line per node, or the first node failure after letting
/// running nodes finish. Writes the run's trace (see [`run_traced`]).
pub fn run(
    plan: &Plan,
    cache: &Cache,
    opts: &RunOptions,
    hub: &ProgressHub,
) -> Result<Vec<NodeReport>> {
    run_traced(plan, cache, opts, hub).map(|(reports, _)| reports)
}

/// [`run`], also returning where it wrote the run's trace (`crate::trace`), if it could: the
/// trace is the run's log, not a result, so a cache that cannot take it (read only) does not
/// fail a run that computed nothing. A failed run's trace is written too; its path is logged
/// as a warning then.
pub fn run_traced(
    plan: &Plan,
    cache: &Cache,
    opts: &RunOptions,
    hub: &ProgressHub,
) -> Result<(Vec<NodeReport>, Option<PathBuf>)> {
    run_traced_on(plan, cache, opts, hub, &plan.executor)
}

/// [`run_traced`] with the nodes run by `executor` (`crate::executor`) instead of the
/// pipeline's own `[executor]` choice.
pub fn run_traced_on(
    plan: &Plan,
    cache: &Cache,
    opts: &RunOptions,
    hub: &ProgressHub,
    executor: &ExecutorSettings,
) -> Result<(Vec<NodeReport>, Option<PathBuf>)> {
    let _shared = cache.lock_shared()?;
    let external = executor::external(executor)?;
    let _interrupt = external
        .as_ref()
        .map(|_| executor::CatchInterrupt::install());
    cache.remove_stale_tmp();
    let clock = Instant::now();
    let run_id = trace::run_id(SystemTime::now());
    let since = |t: Instant| t.duration_since(clock).as_secs_f64();
    let jobs = opts.jobs.max(1);
    let gpu_total = opts.gpus.max(1);
    if let Some(&idx) = plan
        .order
        .iter()
        .find(|&&i| plan.graph[i].gpus as usize > gpu_total)
    {
        let node = &plan.graph[idx];
        return Err(Error::usage(
            format!(
                "node `{}` needs {} GPUs, but only {gpu_total} are available",
                node.name, node.gpus
            ),
            Some(
                "pass `--gpus N` (or set CUDA_VISIBLE_DEVICES), or lower the node's `gpus`".into(),
            ),
        ));
    }
    let mut free_gpus: Vec<usize> = (0..gpu_total).rev().collect();
    let mut hashes: HashMap<NodeIndex, BTreeMap<String, String>> = HashMap::new();
    let mut keys: HashMap<NodeIndex, String> = HashMap::new();
    let mut reports: HashMap<NodeIndex, NodeReport> = HashMap::new();
    let mut waiting: HashMap<NodeIndex, usize> = plan
        .order
        .iter()
        .map(|&i| {
            (
                i,
                plan.graph[i]
                    .inputs
                    .iter()
                    .map(|b| b.from)
                    .collect::<BTreeSet<_>>()
                    .len(),
            )
        })
        .collect();
    let position: HashMap<NodeIndex, usize> = plan
        .order
        .iter()
        .enumerate()
        .map(|(p, &i)| (i, p))
        .collect();
    let mut ready: BTreeSet<(usize, NodeIndex)> = waiting
        .iter()
        .filter(|(_, n)| **n == 0)
        .map(|(&i, _)| (position[&i], i))
        .collect();
    let mut missed: HashMap<NodeIndex, Ingredients> = HashMap::new();
    let mut running = 0usize;
    let mut failure: Option<Error> = None;
    let (tx, rx) = mpsc::channel::<Done>();
    // When each node's inputs were all ready, and its trace line once it ended.
    let mut submitted: HashMap<NodeIndex, f64> = ready.iter().map(|&(_, i)| (i, 0.0)).collect();
    let mut lines: HashMap<NodeIndex, TraceLine> = HashMap::new();
    let meter = Meter::new(plan.order.iter().any(|&i| plan.graph[i].gpus > 0));

    let outcome = std::thread::scope(|scope| -> Result<()> {
        let sampler = scope.spawn(|| meter.sample_until_stopped());
        let _stop = StopSampler(&meter, sampler.thread().clone());
        loop {
            // Launch what can be launched.
            let mut launched_any = true;
            // An interrupted driver (`executor::CatchInterrupt`) starts nothing more.
            while failure.is_none() && !executor::interrupted() && launched_any {
                launched_any = false;
                let candidates: Vec<(usize, NodeIndex)> = ready.iter().copied().collect();
                for (pos, idx) in candidates {
                    let node = &plan.graph[idx];
                    // A ready node is hashed and looked up once; a miss waiting for a free job
                    // slot or GPU keeps its ingredients instead of re-hashing external files on
                    // every pass of this loop.
                    let ingredients = match missed.remove(&idx) {
                        Some(known) => known,
                        None => {
                            let ingredients = ingredients(node, &hashes);
                            if let Lookup::Hit(m) = cache.lookup(&ingredients.key())? {
                                ready.remove(&(pos, idx));
                                let now = since(Instant::now());
                                tx.send(Done::Ok {
                                    idx,
                                    manifest: m,
                                    ran: false,
                                    gpus: Vec::new(),
                                    timing: Timing {
                                        start: now,
                                        end: now,
                                        ..Timing::default()
                                    },
                                })
                                .expect("receiver alive");
                                running += 1;
                                launched_any = true;
                                continue;
                            }
                            ingredients
                        }
                    };
                    let need = node.gpus as usize;
                    if running >= jobs || need > free_gpus.len() {
                        missed.insert(idx, ingredients);
                        continue;
                    }
                    let key = ingredients.key();
                    ready.remove(&(pos, idx));
                    let gpus: Vec<usize> = (0..need)
                        .map(|_| free_gpus.pop().expect("checked"))
                        .collect();
                    running += 1;
                    launched_any = true;
                    let inputs: BTreeMap<String, BoundInput> = node
                        .inputs
                        .iter()
                        .map(|b| {
                            let frame = matches!(b.kind, PortKind::Frame(_));
                            (
                                b.port.to_string(),
                                BoundInput {
                                    kind: b.kind,
                                    path: cache.output_path(&keys[&b.from], b.output, frame),
                                    hash: frame.then(|| hashes[&b.from][b.output].clone()),
                                    rows: None,
                                },
                            )
                        })
                        .collect();
                    let tx = tx.clone();
                    let meter = &meter;
                    let external = &external;
                    scope.spawn(move || {
                        meter.start(idx, need > 0);
                        let (start, cpu0) = (Instant::now(), trace::process_cpu_seconds());
                        let built = match &external {
                            // Another process runs the node; this thread waits on it.
                            Some(ex) => executor::run_node(
                                ex.as_ref(),
                                executor,
                                plan,
                                cache,
                                idx,
                                ingredients,
                                key.clone(),
                                inputs,
                                gpus.clone(),
                            ),
                            None => build(
                                plan,
                                cache,
                                idx,
                                ingredients,
                                key.clone(),
                                inputs,
                                gpus.clone(),
                                hub,
                            ),
                        };
                        let cpu = trace::process_cpu_seconds().zip(cpu0).map(|(b, a)| b - a);
                        let timing = Timing {
                            start: since(start),
                            end: since(Instant::now()),
                            cpu,
                            peaks: meter.finish(idx),
                        };
                        let done = match built {
                            Ok((manifest, ran)) => Done::Ok {
                                idx,
                                manifest,
                                ran,
                                gpus,
                                timing,
                            },
                            Err(error) => Done::Failed {
                                idx,
                                key,
                                error,
                                gpus,
                                timing,
                            },
                        };
                        let _ = tx.send(done);
                    });
                }
            }
            if running == 0 {
                break;
            }
            match rx.recv().expect("a sender is alive while nodes run") {
                Done::Ok {
                    idx,
                    manifest,
                    ran,
                    gpus,
                    timing,
                } => {
                    running -= 1;
                    free_gpus.extend(gpus);
                    let node = &plan.graph[idx];
                    let mut line = trace_line(plan, idx, &run_id, submitted.get(&idx), timing);
                    line.status = if ran { "ran" } else { "cached" }.into();
                    line.cache = Some(if ran { "miss" } else { "hit" }.into());
                    line.key = Some(manifest.key.clone());
                    line.rows_in = frame_rows(
                        node.inputs
                            .iter()
                            .filter(|b| matches!(b.kind, PortKind::Frame(_)))
                            .map(|b| cache.output_path(&keys[&b.from], b.output, true)),
                    );
                    line.rows_out = frame_rows(
                        node.outputs
                            .iter()
                            .filter(|p| matches!(p.kind, PortKind::Frame(_)))
                            .map(|p| cache.output_path(&manifest.key, p.name, true)),
                    );
                    if !ran {
                        // A hit measured nothing of its own.
                        line.cpu_s = None;
                        line.peak_rss_bytes = None;
                        line.peak_gpu_bytes = None;
                    }
                    lines.insert(idx, line);
                    write_trace_so_far(plan, cache, &run_id, &lines);
                    // The record only serves `plan`/`explain`; a cache that cannot take it (read
                    // only) still served a correct result.
                    if let Err(e) = cache.record_run(&plan.name, &node.name, &manifest) {
                        tracing::warn!(node = %node.name, "cannot record the run: {e}");
                    }
                    if ran {
                        tracing::info!(node = %node.name, seconds = manifest.seconds, "ran");
                    }
                    reports.insert(
                        idx,
                        NodeReport {
                            node: node.name.clone(),
                            outcome: if ran { Outcome::Ran } else { Outcome::Fresh },
                            key: Some(manifest.key.clone()),
                            seconds: if ran { manifest.seconds } else { 0.0 },
                        },
                    );
                    hashes.insert(idx, output_hashes(&manifest));
                    keys.insert(idx, manifest.key);
                    let consumers: BTreeSet<NodeIndex> = plan.graph.neighbors(idx).collect();
                    // Consumers outside a selection (`Plan::select`) have no count: they never run.
                    for c in consumers {
                        if let Some(n) = waiting.get_mut(&c) {
                            *n -= 1;
                            if *n == 0 {
                                ready.insert((position[&c], c));
                                submitted.insert(c, since(Instant::now()));
                            }
                        }
                    }
                }
                Done::Failed {
                    idx,
                    key,
                    error,
                    gpus,
                    timing,
                } => {
                    running -= 1;
                    free_gpus.extend(gpus);
                    let mut line = trace_line(plan, idx, &run_id, submitted.get(&idx), timing);
                    line.status = "failed".into();
                    line.cache = Some("miss".into());
                    line.key = Some(key);
                    lines.insert(idx, line);
                    write_trace_so_far(plan, cache, &run_id, &lines);
                    tracing::error!(node = %plan.graph[idx].name, "failed");
                    failure.get_or_insert(error);
                }
            }
        }
        Ok(())
    });

    // Every node gets a line, also when the run failed: what was skipped is part of the story.
    let trace: Vec<TraceLine> = plan
        .order
        .iter()
        .map(|i| {
            lines.remove(i).unwrap_or_else(|| {
                let mut line = trace_line(plan, *i, &run_id, None, Timing::default());
                (line.start_s, line.end_s, line.wall_s, line.queue_s) = (None, None, None, None);
                line.status = "skipped".into();
                line
            })
        })
        .collect();
    let written = trace::write(cache, &plan.name, &run_id, &trace);
    outcome?;
    if failure.is_none() && external.is_some() && executor::interrupted() {
        failure = Some(Error::usage(
            "the run was interrupted (SIGINT or SIGTERM); what finished is cached",
            None,
        ));
    }
    if let Some(e) = failure {
        match &written {
            Ok(path) => tracing::warn!("trace of the failed run: {}", path.display()),
            Err(e) => tracing::warn!("the failed run's trace was not written: {e}"),
        }
        return Err(e);
    }
    let reports = plan
        .order
        .iter()
        .map(|i| {
            reports.remove(i).unwrap_or_else(|| NodeReport {
                node: plan.graph[*i].name.clone(),
                outcome: Outcome::Skipped,
                key: None,
                seconds: 0.0,
            })
        })
        .collect();
    let written = match written {
        Ok(path) => Some(path),
        Err(e) => {
            tracing::warn!("the run's trace was not written: {e}");
            None
        }
    };
    Ok((reports, written))
}

/// Rewrites the run's trace with the nodes ended so far: rewritten as nodes end, so a run
/// killed midway (a time limit) still leaves the trace of what finished.
fn write_trace_so_far(
    plan: &Plan,
    cache: &Cache,
    run_id: &str,
    lines: &HashMap<NodeIndex, TraceLine>,
) {
    let so_far: Vec<TraceLine> = plan
        .order
        .iter()
        .filter_map(|i| lines.get(i).cloned())
        .collect();
    if let Err(e) = trace::write(cache, &plan.name, run_id, &so_far) {
        tracing::warn!("cannot update the run's trace: {e}");
    }
}

/// A trace line with the node's identity and timing; the caller fills status, cache and rows.
fn trace_line(
    plan: &Plan,
    idx: NodeIndex,
    run: &str,
    submitted: Option<&f64>,
    t: Timing,
) -> TraceLine {
    let n = &plan.graph[idx];
    TraceLine {
        run: run.to_string(),
        pipeline: plan.name.clone(),
        node: n.name.clone(),
        template: n.template.clone(),
        iteration: n.iteration,
        op: n.op.name().to_string(),
        kind: n.op.kind().map(str::to_string),
        status: String::new(),
        cache: None,
        key: None,
        gpus: n.gpus,
        submit_s: submitted.copied(),
        start_s: Some(t.start),
        end_s: Some(t.end),
        queue_s: submitted.map(|s| (t.start - s).max(0.0)),
        wall_s: Some(t.end - t.start),
        cpu_s: t.cpu,
        peak_rss_bytes: t.peaks.rss,
        peak_gpu_bytes: t.peaks.gpu,
        rows_in: None,
        rows_out: None,
    }
}

/// Total rows of the given parquet files; `None` for none (a node without frames that side).
fn frame_rows(paths: impl Iterator<Item = PathBuf>) -> Option<u64> {
    let mut total = None;
    for p in paths {
        *total.get_or_insert(0) += trace::parquet_rows(&p).unwrap_or(0);
    }
    total
}
