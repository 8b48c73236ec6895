//! Executors: where a dirty node's operator runs once the driver (`crate::exec`) has decided it
//! must run.
//!
//! The driver keeps the DAG, the cache lookups and early cutoff; an executor only runs nodes
//! whose inputs are done and whose key is known, so a cache hit never submits anything.
//! `threads` (the default) runs the operator on a thread of the driver. The other executors
//! implement [`Executor`] (submit, poll, cancel) and run each node as `judgeflow exec-node`:
//!
//! - The driver writes a **task file** to `CACHE/tasks/KEY.json` ([`Task`]: operator, kind,
//!   parameters, seed, ingredients, where each input entry lives, GPU ordinals). A worker needs
//!   nothing else; it builds the entry under the entry's lock exactly as a thread would
//!   (`exec::build_unit`), writes `CACHE/tasks/KEY.status.json`, and exits.
//! - Everything the worker prints goes to the node's **log**, `CACHE/logs/PIPELINE/NODE.log`
//!   (rewritten by each run of the node); `explain` and `show` name it, and a failure quotes
//!   its last lines.
//! - The driver polls until the job ends, then trusts only the cache: the node succeeded iff
//!   its entry exists. A worker killed by a signal (abort, the OOM killer, `scancel`) writes no
//!   status and publishes nothing; the node fails with how the process ended, the rest of the
//!   run goes on, and the next run redoes that node only.
//! - An interrupted driver (SIGINT, SIGTERM) cancels the jobs it is waiting on.
//!
//! With `slurm` the cache must be on a filesystem that every Slurm node mounts at the same
//! path as the driver: the task file, the inputs, the log and the published entry all live
//! there. A worker that cannot see it fails with a diagnostic saying so.

pub mod settings;
mod slurm;
mod subprocess;

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use petgraph::graph::NodeIndex;
use serde::{Deserialize, Serialize};

pub use settings::{ExecutorKind, ExecutorSettings, GpuFlag, SlurmOptions};

use crate::cache::{Cache, Ingredients, Lookup, Manifest, file_safe};
use crate::error::{Error, Result};
use crate::op::{BoundInput, PortKind, Registry};
use crate::plan::Plan;
use crate::progress::ProgressHub;
use crate::value::{Params, Value};

/// Environment variable naming the worker command (words separated by U+001F, program first)
/// instead of `<this executable> exec-node TASK`; the task file is then only given as
/// `JUDGEFLOW_TASK`. For test binaries that act as judgeflow, and wrappers (`srun`, a
/// container runtime).
pub const WORKER_ENV: &str = "JUDGEFLOW_WORKER";

/// Environment variable through which every worker also receives its task file.
pub const TASK_ENV: &str = "JUDGEFLOW_TASK";

/// A node's job as submitted to an executor.
pub struct JobSpec<'a> {
    /// Display name of the node.
    pub node: &'a str,
    /// The task file.
    pub task: &'a Path,
    /// Where the worker's output goes.
    pub log: &'a Path,
    /// GPUs it reserved.
    pub gpus: usize,
    /// Its sbatch options (merged with its node's overrides).
    pub slurm: SlurmOptions,
}

/// A submitted job.
pub struct Job {
    /// The executor's id for it (a process id, a Slurm job id).
    pub id: String,
    /// The local process, for `subprocess`.
    child: Option<std::sync::Mutex<std::process::Child>>,
    /// The worker's status file, whose appearance means it is done.
    status: Option<PathBuf>,
}

/// How a job stands.
#[derive(Debug, Clone, PartialEq)]
pub enum JobState {
    /// Queued or running.
    Running,
    /// Ended; `detail` says how ("exited with status 0", "killed by signal 6 (SIGABRT)",
    /// "Slurm state CANCELLED").
    Ended {
        /// How it ended.
        detail: String,
    },
}

/// Runs nodes somewhere else than the driver's threads.
pub trait Executor: Send + Sync {
    /// Starts the job; it runs [`worker_command`] with the task file.
    fn submit(&self, job: &JobSpec<'_>) -> Result<Job>;
    /// Where the job stands now; cheap enough to call a few times a second.
    fn poll(&self, job: &Job) -> Result<JobState>;
    /// Stops the job (best effort; the driver then polls until it ended).
    fn cancel(&self, job: &Job);
}

/// The executor for `settings`, or `None` for threads. Fails when the executor cannot work
/// here (no `sbatch`).
pub fn external(settings: &ExecutorSettings) -> Result<Option<Box<dyn Executor>>> {
    Ok(match settings.kind {
        ExecutorKind::Threads => None,
        ExecutorKind::Subprocess => Some(Box::new(subprocess::Subprocess)),
        ExecutorKind::Slurm => Some(Box::new(slurm::Slurm::new()?)),
    })
}

/// What a worker is given: everything a node's build needs, with paths into the cache.
#[derive(Serialize, Deserialize, Debug)]
pub struct Task {
    /// [`TASK_FORMAT`].
    pub format: u32,
    /// The cache's root, absolute (it must be the same path on the worker).
    pub cache: PathBuf,
    /// Pipeline name (for the log's place).
    pub pipeline: String,
    /// Node display name.
    pub node: String,
    /// Operator name and kind.
    pub op: String,
    /// Operator kind, for families.
    pub kind: Option<String>,
    /// Parameters in their canonical JSON (as in the cache key).
    pub params: serde_json::Value,
    /// Seed.
    pub seed: u64,
    /// The entry to build.
    pub key: String,
    /// Its ingredients (the manifest records them).
    pub ingredients: Ingredients,
    /// Input port → where its producer's output is, and the hash of a frame.
    pub inputs: BTreeMap<String, TaskInput>,
    /// GPU ordinals the driver reserved.
    pub gpus: Vec<usize>,
    /// Row shards to run in (`crate::shard`).
    #[serde(default = "one")]
    pub shards: u32,
    /// The repetition inside an `[iterate]` group, if any (operators may read it).
    #[serde(default)]
    pub iteration: Option<u32>,
}

fn one() -> u32 {
    1
}

/// One input of a [`Task`].
#[derive(Serialize, Deserialize, Debug)]
pub struct TaskInput {
    /// The parquet file or artifact directory.
    pub path: PathBuf,
    /// A frame's content hash, checked as it is read.
    pub hash: Option<String>,
}

/// Version of the task file layout.
pub const TASK_FORMAT: u32 = 1;

/// What a worker writes when it is done (not when it is killed).
#[derive(Serialize, Deserialize, Debug)]
struct TaskStatus {
    ok: bool,
    message: String,
}

/// Where the task file of `key` lives.
pub fn task_path(cache: &Cache, key: &str) -> PathBuf {
    cache.root().join("tasks").join(format!("{key}.json"))
}

fn status_path(task: &Path) -> PathBuf {
    task.with_extension("status.json")
}

/// The log of `node` of `pipeline` (written only by the subprocess and Slurm executors).
pub fn log_path(cache: &Cache, pipeline: &str, node: &str) -> PathBuf {
    cache
        .root()
        .join("logs")
        .join(file_safe(pipeline))
        .join(format!("{}.log", file_safe(node)))
}

/// The worker's program and arguments, and whether the task path goes last.
pub(crate) fn worker_command(task: &Path) -> Result<(PathBuf, Vec<String>)> {
    if let Ok(words) = std::env::var(WORKER_ENV) {
        let mut words = words.split('\u{1f}').map(str::to_string);
        let program = words.next().filter(|p| !p.is_empty()).ok_or_else(|| {
            Error::usage(format!("`{WORKER_ENV}` is set but names no program"), None)
        })?;
        return Ok((program.into(), words.collect()));
    }
    let exe = std::env::current_exe()
        .map_err(|e| Error::io("cannot find this executable", Path::new("."), e))?;
    Ok((exe, vec!["exec-node".into(), task.display().to_string()]))
}

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// Whether the driver was asked to stop (SIGINT or SIGTERM) while external jobs ran.
pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// While alive, SIGINT and SIGTERM only set a flag, so that the driver cancels its jobs (a
/// Slurm job outlives the process that submitted it), starts no more, and fails the run with
/// the cancelled nodes named, its trace written.
pub struct CatchInterrupt(());

#[cfg(unix)]
extern "C" fn on_signal(_: libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

impl CatchInterrupt {
    /// Installs the handlers.
    pub fn install() -> Self {
        INTERRUPTED.store(false, Ordering::SeqCst);
        #[cfg(unix)]
        // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
        unsafe {
            let handler = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
            libc::signal(libc::SIGINT, handler);
            libc::signal(libc::SIGTERM, handler);
        }
        CatchInterrupt(())
    }
}

impl Drop for CatchInterrupt {
    fn drop(&mut self) {
        #[cfg(unix)]
        // SAFETY: restores the default dispositions.
        unsafe {
            libc::signal(libc::SIGINT, libc::SIG_DFL);
            libc::signal(libc::SIGTERM, libc::SIG_DFL);
        }
    }
}

/// Runs node `idx` through `executor` and waits for it: writes its task file, submits, polls,
/// and reads the result back from the cache. `ran` is true when the entry now exists.
#[allow(clippy::too_many_arguments)]
pub(crate) fn run_node(
    executor: &dyn Executor,
    settings: &ExecutorSettings,
    plan: &Plan,
    cache: &Cache,
    idx: NodeIndex,
    ingredients: Ingredients,
    key: String,
    inputs: BTreeMap<String, BoundInput>,
    gpus: Vec<usize>,
) -> Result<(Manifest, bool)> {
    let node = &plan.graph[idx];
    let failed = |cause: miette::Report| Error::NodeFailed {
        node: node.name.clone(),
        op: node.op.name().to_string(),
        cause,
    };
    let root = std::path::absolute(cache.root())
        .map_err(|e| Error::io("cannot resolve the cache path", cache.root(), e))?;
    let task = Task {
        format: TASK_FORMAT,
        cache: root.clone(),
        pipeline: plan.name.clone(),
        node: node.name.clone(),
        op: node.op.name().to_string(),
        kind: node.op.kind().map(str::to_string),
        params: node.params.to_json(),
        seed: node.seed,
        key: key.clone(),
        ingredients,
        inputs: inputs
            .into_iter()
            .map(|(port, b)| {
                let path = std::path::absolute(&b.path).unwrap_or(b.path);
                (port, TaskInput { path, hash: b.hash })
            })
            .collect(),
        gpus: gpus.clone(),
        shards: node.shards,
        iteration: node.iteration,
    };
    let task_file = task_path(cache, &key);
    write_atomically(&task_file, &serde_json::to_vec_pretty(&task).expect("task"))?;
    let status_file = status_path(&task_file);
    let _ = std::fs::remove_file(&status_file);
    let log = log_path(cache, &plan.name, &node.name);
    if let Some(dir) = log.parent() {
        std::fs::create_dir_all(dir).map_err(|e| Error::io("cannot create", dir, e))?;
    }
    std::fs::write(&log, b"").map_err(|e| Error::io("cannot write", &log, e))?;
    let spec = JobSpec {
        node: &node.name,
        task: &task_file,
        log: &log,
        gpus: gpus.len(),
        slurm: settings.slurm_for(&node.template),
    };
    let job = executor.submit(&spec)?;
    tracing::info!(node = %node.name, job = %job.id, "submitted");
    let mut wait = Duration::from_millis(5);
    let mut cancelled = false;
    let detail = loop {
        if interrupted() && !cancelled {
            executor.cancel(&job);
            cancelled = true;
        }
        match executor.poll(&job)? {
            JobState::Running => {}
            JobState::Ended { detail } => break detail,
        }
        std::thread::sleep(wait);
        wait = (wait * 2).min(Duration::from_millis(250));
    };
    if let Lookup::Hit(m) = cache.lookup(&key)? {
        let _ = std::fs::remove_file(&task_file);
        let _ = std::fs::remove_file(&status_file);
        return Ok((m, true));
    }
    let said = std::fs::read(&status_file)
        .ok()
        .and_then(|b| serde_json::from_slice::<TaskStatus>(&b).ok());
    let mut message = match said {
        Some(s) if !s.ok || !s.message.is_empty() => s.message,
        Some(_) => format!("the worker {detail}, yet no cache entry appeared"),
        None if cancelled => format!("interrupted: its job {} was cancelled", job.id),
        None => {
            format!("the worker {detail} before it finished (killed, crashed or out of memory?)")
        }
    };
    if std::fs::metadata(&log).map_or(true, |m| m.len() == 0) {
        // Not one line from the worker: it never started, or could not open its log.
        message.push_str(&format!(
            "\nits log is empty: did the worker start? A Slurm worker must see the cache at \
             `{}` (a filesystem every node mounts at the same path)",
            root.display()
        ));
    }
    message.push_str(&format!("\nits log: {}", log.display()));
    let tail = log_tail(&log, 15);
    if !tail.is_empty() {
        message.push_str(&format!("\nlast lines of the log:\n{tail}"));
    }
    Err(failed(miette::miette!("{message}")))
}

/// The last `n` lines of a log file.
fn log_tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().expect("inside the cache");
    std::fs::create_dir_all(dir).map_err(|e| Error::io("cannot create", dir, e))?;
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let mut f = std::fs::File::create(&tmp).map_err(|e| Error::io("cannot write", &tmp, e))?;
    f.write_all(bytes)
        .map_err(|e| Error::io("cannot write", &tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| Error::io("cannot write", path, e))
}

/// `judgeflow exec-node TASK`: builds the entry a task file describes, in this process, and
/// records how it went next to the task. Returns what to print.
pub fn exec_node(task_file: &Path, registry: &Registry) -> Result<String> {
    let bytes = std::fs::read(task_file).map_err(|e| {
        Error::usage(
            format!(
                "this worker cannot read its task file `{}`: {e}",
                task_file.display()
            ),
            Some(
                "the worker must see the judgeflow cache at the same path as the driver: with \
                 `--executor slurm`, put the cache (`--cache` or JUDGEFLOW_CACHE) on a \
                 filesystem that every Slurm node mounts at that path"
                    .into(),
            ),
        )
    })?;
    let task: Task = serde_json::from_slice(&bytes).map_err(|e| {
        Error::usage(
            format!(
                "`{}` is not a judgeflow task file: {e}",
                task_file.display()
            ),
            None,
        )
    })?;
    if task.format != TASK_FORMAT {
        return Err(Error::usage(
            format!(
                "task file `{}` has format {}, this judgeflow reads {TASK_FORMAT}",
                task_file.display(),
                task.format
            ),
            Some("the driver and the workers must run the same judgeflow".into()),
        ));
    }
    if !task.cache.join("entries").is_dir() {
        return Err(Error::usage(
            format!(
                "this worker cannot see the cache `{}`",
                task.cache.display()
            ),
            Some(
                "the cache must be on a filesystem that the driver and every worker mount at \
                 the same path"
                    .into(),
            ),
        ));
    }
    let cache = Cache::open(&task.cache)?;
    let result = build_task(&task, &cache, registry);
    let status = match &result {
        Ok(_) => TaskStatus {
            ok: true,
            message: String::new(),
        },
        Err(e) => TaskStatus {
            ok: false,
            message: crate::cli::render(e, 100, false),
        },
    };
    write_atomically(
        &status_path(task_file),
        &serde_json::to_vec(&status).expect("status"),
    )?;
    result.map(|ran| {
        format!(
            "{} {} ({})",
            if ran { "built" } else { "found" },
            task.node,
            &task.key[..16.min(task.key.len())]
        )
    })
}

fn build_task(task: &Task, cache: &Cache, registry: &Registry) -> Result<bool> {
    let op = registry
        .get(&task.op, task.kind.as_deref())
        .ok_or_else(|| {
            Error::usage(
                format!(
                    "this judgeflow has no operator `{}`{}",
                    task.op,
                    task.kind
                        .as_ref()
                        .map(|k| format!(" of kind `{k}`"))
                        .unwrap_or_default()
                ),
                Some("the driver and the workers must run the same judgeflow".into()),
            )
        })?;
    let params = params_from_json(&task.params).ok_or_else(|| {
        Error::usage(
            format!(
                "the parameters of `{}` in its task file are malformed",
                task.node
            ),
            None,
        )
    })?;
    let declared = op.inputs(&params);
    let mut inputs = BTreeMap::new();
    for (port, input) in &task.inputs {
        let kind = declared
            .iter()
            .find(|p| p.name == port)
            .map(|p| p.kind)
            .ok_or_else(|| {
                Error::usage(
                    format!("operator `{}` has no input `{port}`", task.op),
                    None,
                )
            })?;
        inputs.insert(
            port.clone(),
            BoundInput {
                kind,
                path: input.path.clone(),
                hash: input
                    .hash
                    .clone()
                    .filter(|_| matches!(kind, PortKind::Frame(_))),
                rows: None,
            },
        );
    }
    let unit = crate::exec::Unit {
        node: &task.node,
        op: op.as_ref(),
        params: &params,
        seed: task.seed,
        iteration: task.iteration,
        outputs: op.outputs(&params),
        shards: task.shards,
    };
    let gpus = worker_gpus(
        &task.gpus,
        std::env::var_os("SLURM_JOB_ID").is_some(),
        std::env::var("CUDA_VISIBLE_DEVICES").ok().as_deref(),
    );
    let (_, ran) = crate::shard::build_node(
        cache,
        &unit,
        task.ingredients.clone(),
        task.key.clone(),
        inputs,
        gpus,
        &ProgressHub::new(true),
    )?;
    Ok(ran)
}

/// The GPU ordinals a worker's operator uses. The driver's reservation, except inside a Slurm
/// job that was given GPUs: Slurm sets `CUDA_VISIBLE_DEVICES` to the devices it allotted, and
/// the process sees those (and only those) as ordinals 0, 1, ….
pub fn worker_gpus(
    reserved: &[usize],
    under_slurm: bool,
    cuda_visible: Option<&str>,
) -> Vec<usize> {
    match cuda_visible {
        Some(list) if under_slurm && !reserved.is_empty() => {
            let visible = list.split(',').filter(|s| !s.trim().is_empty()).count();
            (0..reserved.len().min(visible)).collect()
        }
        _ => reserved.to_vec(),
    }
}

/// Parameters back from their canonical JSON ([`Params::to_json`]).
fn params_from_json(json: &serde_json::Value) -> Option<Params> {
    fn value(v: &serde_json::Value) -> Option<Value> {
        Some(match v {
            serde_json::Value::Bool(b) => Value::Bool(*b),
            serde_json::Value::Number(n) => Value::Int(n.as_i64()?),
            serde_json::Value::String(s) => Value::Str(s.clone()),
            serde_json::Value::Array(items) => {
                Value::List(items.iter().map(value).collect::<Option<_>>()?)
            }
            serde_json::Value::Object(m) if m.len() == 1 => {
                Value::Float(m.get("f64")?.as_str()?.parse().ok()?)
            }
            _ => return None,
        })
    }
    let serde_json::Value::Object(map) = json else {
        return None;
    };
    map.iter()
        .map(|(k, v)| Some((k.clone(), value(v)?)))
        .collect::<Option<BTreeMap<_, _>>>()
        .map(Params)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_survive_the_task_file() {
        let mut m = BTreeMap::new();
        m.insert("n".to_string(), Value::Int(-3));
        m.insert("t".to_string(), Value::Float(1.0));
        m.insert("x".to_string(), Value::Float(0.1 + 0.2));
        m.insert("s".to_string(), Value::Str("a".into()));
        m.insert(
            "l".to_string(),
            Value::List(vec![Value::Str("p".into()), Value::Str("q".into())]),
        );
        m.insert("b".to_string(), Value::Bool(true));
        let p = Params(m);
        assert_eq!(params_from_json(&p.to_json()), Some(p));
    }

    #[test]
    fn a_slurm_job_uses_the_devices_slurm_made_visible() {
        // Outside Slurm the driver's ordinals stand.
        assert_eq!(worker_gpus(&[2, 3], false, Some("0,1,2,3")), [2, 3]);
        // Inside a job given GPUs 5 and 7, they are the process's devices 0 and 1.
        assert_eq!(worker_gpus(&[0, 1], true, Some("5,7")), [0, 1]);
        assert_eq!(worker_gpus(&[0], true, Some("5")), [0]);
        // A CPU node has none, whatever is visible.
        assert!(worker_gpus(&[], true, Some("5")).is_empty());
    }
}
