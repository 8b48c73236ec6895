//! Where a run's time went: one trace file per `judgeflow run`, one JSON line per node (the
//! fields of Nextflow's trace), written into the cache.
//!
//! # Where and when
//! `CACHE/traces/PIPELINE/YYYYMMDDTHHMMSSZ-PID-NNNN.jsonl`: the UTC start time, then the process
//! id and the number of the run within the process, so that two runs never share a file; names
//! sort by start time. It is
//! rewritten each time a node ends, so that a run killed midway (say by a time limit) leaves the
//! lines of the nodes that finished, and a last time when the run ends — also when it fails, so
//! the failed node and what was skipped are on record. Each write goes through `CACHE/tmp/` and
//! one rename, so a reader never sees half a trace. Lines are in plan order. `judgeflow report`
//! draws the newest trace as `timeline.png`.
//!
//! # What each field means
//! Times are seconds since the run started: `submit_s` when the node's inputs were all ready,
//! `start_s`/`end_s` when its operator started and returned (for a cache hit: when the entry was
//! found, so `wall_s` is ~0), `queue_s = start_s - submit_s` (waiting for a job slot or a GPU).
//! `cpu_s`, `peak_rss_bytes` and `peak_gpu_bytes` are measured on the *process*, because nodes
//! are threads of one process: they are the node's own when it ran alone, and include whatever
//! ran beside it otherwise. CPU time is user + system time over the node's run. Host memory is
//! the resident set, sampled every 50 ms while the node runs and at its start and end (so a
//! shorter spike can be missed). GPU memory, for nodes that hold a GPU, is sampled every second
//! with `nvidia-smi`: this process's use where `nvidia-smi` can see it, else (in a container
//! that hides process ids) the devices' used memory minus what was used when the run started;
//! `null` where there is no `nvidia-smi`, for nodes without a GPU, and for cache hits. `rows_in`
//! and `rows_out` count the rows of the frames a node reads and writes (artifacts count none;
//! `null` when it has no frame on that side). `status` is `ran`, `cached`, `failed` or
//! `skipped` (not started because another node failed); `cache` is `hit` or `miss`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use petgraph::graph::NodeIndex;
use serde::{Deserialize, Serialize};

use crate::cache::Cache;
use crate::error::{Error, Result};

/// One node of one run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TraceLine {
    /// The run: the trace file's name without `.jsonl`.
    pub run: String,
    /// `[pipeline] name`.
    pub pipeline: String,
    /// Display name (`judge@2[vote.method=oracle]`).
    pub node: String,
    /// The `[nodes.NAME]` table it comes from.
    pub template: String,
    /// Repetition inside its `[iterate.*]` group.
    pub iteration: Option<u32>,
    /// Operator name.
    pub op: String,
    /// Operator kind, for families.
    pub kind: Option<String>,
    /// `ran`, `cached`, `failed` or `skipped`.
    pub status: String,
    /// `hit` or `miss`; `null` when skipped.
    pub cache: Option<String>,
    /// The entry's key, when known.
    pub key: Option<String>,
    /// GPUs the node reserves.
    pub gpus: u32,
    /// When its inputs were ready (seconds since the run started).
    pub submit_s: Option<f64>,
    /// When its operator started (or its entry was found).
    pub start_s: Option<f64>,
    /// When it finished.
    pub end_s: Option<f64>,
    /// `start_s - submit_s`.
    pub queue_s: Option<f64>,
    /// `end_s - start_s`.
    pub wall_s: Option<f64>,
    /// Process CPU seconds (user + system) while it ran.
    pub cpu_s: Option<f64>,
    /// Peak resident memory of the process while it ran.
    pub peak_rss_bytes: Option<u64>,
    /// Peak GPU memory while it ran, where known.
    pub peak_gpu_bytes: Option<u64>,
    /// Rows of the frames it read.
    pub rows_in: Option<u64>,
    /// Rows of the frames it wrote.
    pub rows_out: Option<u64>,
}

/// `CACHE/traces/PIPELINE`.
pub fn dir(cache: &Cache, pipeline: &str) -> PathBuf {
    cache.root().join("traces").join(pipeline)
}

/// The newest trace of `pipeline`, read back, with its path; `None` when it has none.
pub fn latest(cache: &Cache, pipeline: &str) -> Result<Option<(PathBuf, Vec<TraceLine>)>> {
    let dir = dir(cache, pipeline);
    let Ok(list) = std::fs::read_dir(&dir) else {
        return Ok(None);
    };
    let Some(path) = list
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
        .max()
    else {
        return Ok(None);
    };
    Ok(Some((path.clone(), read(&path)?)))
}

/// Reads a trace file.
pub fn read(path: &Path) -> Result<Vec<TraceLine>> {
    let text =
        std::fs::read_to_string(path).map_err(|e| Error::io("cannot read trace", path, e))?;
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            serde_json::from_str(l).map_err(|e| {
                Error::io(
                    "cannot parse trace",
                    path,
                    std::io::Error::new(std::io::ErrorKind::InvalidData, e),
                )
            })
        })
        .collect()
}

/// Writes `lines` as the trace `run` of `pipeline` (through `tmp/` and a rename).
pub fn write(cache: &Cache, pipeline: &str, run: &str, lines: &[TraceLine]) -> Result<PathBuf> {
    let dir = dir(cache, pipeline);
    std::fs::create_dir_all(&dir).map_err(|e| Error::io("cannot create", &dir, e))?;
    let mut text = String::new();
    for l in lines {
        text.push_str(&serde_json::to_string(l).expect("trace lines serialise"));
        text.push('\n');
    }
    let tmp = cache.root().join("tmp").join(format!("trace-{run}.jsonl"));
    std::fs::write(&tmp, text).map_err(|e| Error::io("cannot write", &tmp, e))?;
    let path = dir.join(format!("{run}.jsonl"));
    std::fs::rename(&tmp, &path).map_err(|e| Error::io("cannot write trace", &path, e))?;
    Ok(path)
}

/// Runs started by this process so far (runs of one process sort by it).
static RUNS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

/// The run's name: its UTC start time, this process's id and the run's number in the process.
pub fn run_id(started: SystemTime) -> String {
    let secs = started
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days as i64);
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z-{}-{:04}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        std::process::id(),
        RUNS.fetch_add(1, Ordering::Relaxed) + 1
    )
}

/// Days since 1970-01-01 to a Gregorian date (Howard Hinnant's algorithm), so the file name
/// needs no date library.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// User + system CPU seconds of this process so far.
pub fn process_cpu_seconds() -> Option<f64> {
    #[cfg(unix)]
    {
        // SAFETY: getrusage only writes into the struct it is given.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } != 0 {
            return None;
        }
        let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 * 1e-6;
        Some(tv(usage.ru_utime) + tv(usage.ru_stime))
    }
    #[cfg(not(unix))]
    {
        None
    }
}

/// Resident memory of this process now (Linux: `/proc/self/statm`).
pub fn resident_bytes() -> Option<u64> {
    #[cfg(target_os = "linux")]
    {
        let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
        let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
        // SAFETY: sysconf reads a constant.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        Some(pages * u64::try_from(page).ok()?)
    }
    #[cfg(not(target_os = "linux"))]
    {
        None
    }
}

/// Peaks seen while one node ran.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Peaks {
    pub rss: Option<u64>,
    pub gpu: Option<u64>,
    uses_gpu: bool,
}

/// GPU memory probe through `nvidia-smi`; switched off for the run at its first failure.
struct GpuProbe {
    enabled: bool,
    /// Device memory in use when the run started (for the device-wide fallback).
    baseline: Option<u64>,
    last: Option<Instant>,
}

const MIB: u64 = 1 << 20;

impl GpuProbe {
    fn new(wanted: bool) -> Self {
        let mut probe = GpuProbe {
            enabled: wanted,
            baseline: None,
            last: None,
        };
        if wanted {
            probe.baseline = probe.device_used();
        }
        probe
    }

    fn smi(&mut self, query: &str) -> Option<String> {
        if !self.enabled {
            return None;
        }
        let out = Command::new("nvidia-smi")
            .args([query, "--format=csv,noheader,nounits"])
            .output();
        match out {
            Ok(o) if o.status.success() => Some(String::from_utf8_lossy(&o.stdout).into_owned()),
            _ => {
                self.enabled = false;
                None
            }
        }
    }

    fn device_used(&mut self) -> Option<u64> {
        let text = self.smi("--query-gpu=memory.used")?;
        let mib: u64 = text
            .lines()
            .filter_map(|l| l.trim().parse::<u64>().ok())
            .sum();
        Some(mib * MIB)
    }

    /// This process's GPU memory, or the devices' growth since the run started.
    fn used(&mut self) -> Option<u64> {
        let pid = std::process::id().to_string();
        let apps = self.smi("--query-compute-apps=pid,used_memory")?;
        let mine: Vec<u64> = apps
            .lines()
            .filter_map(|l| l.split_once(','))
            .filter(|(p, _)| p.trim() == pid)
            .filter_map(|(_, m)| m.trim().parse().ok())
            .collect();
        if !mine.is_empty() {
            return Some(mine.iter().sum::<u64>() * MIB);
        }
        let now = self.device_used()?;
        Some(now.saturating_sub(self.baseline.unwrap_or(0)))
    }
}

/// Samples memory for the nodes running now (see the module docs).
pub(crate) struct Meter {
    running: Mutex<HashMap<NodeIndex, Peaks>>,
    gpu: Mutex<GpuProbe>,
    stop: AtomicBool,
}

/// How often host memory is sampled.
const HOST_EVERY: Duration = Duration::from_millis(50);
/// How often GPU memory is sampled (each sample starts a process).
const GPU_EVERY: Duration = Duration::from_secs(1);

impl Meter {
    /// A meter; `gpu_nodes` says whether the plan has nodes holding a GPU worth probing for.
    pub fn new(gpu_nodes: bool) -> Self {
        Meter {
            running: Mutex::new(HashMap::new()),
            gpu: Mutex::new(GpuProbe::new(gpu_nodes)),
            stop: AtomicBool::new(false),
        }
    }

    /// A node starts: sampled now and from now on.
    pub fn start(&self, idx: NodeIndex, uses_gpu: bool) {
        let mut peaks = Peaks {
            uses_gpu,
            ..Peaks::default()
        };
        peaks.rss = resident_bytes();
        if uses_gpu {
            peaks.gpu = self.gpu.lock().expect("gpu probe").used();
        }
        self.running.lock().expect("meter").insert(idx, peaks);
    }

    /// A node ended: its peaks, including one last sample.
    pub fn finish(&self, idx: NodeIndex) -> Peaks {
        let rss = resident_bytes();
        let mut peaks = self
            .running
            .lock()
            .expect("meter")
            .remove(&idx)
            .unwrap_or_default();
        peaks.rss = max(peaks.rss, rss);
        peaks
    }

    /// Samples until [`Meter::stop`]; run on a thread of its own.
    pub fn sample_until_stopped(&self) {
        while !self.stop.load(Ordering::Acquire) {
            let rss = resident_bytes();
            let want_gpu = self
                .running
                .lock()
                .expect("meter")
                .values()
                .any(|p| p.uses_gpu);
            let gpu = if want_gpu {
                let mut probe = self.gpu.lock().expect("gpu probe");
                if probe.last.is_none_or(|t| t.elapsed() >= GPU_EVERY) {
                    probe.last = Some(Instant::now());
                    probe.used()
                } else {
                    None
                }
            } else {
                None
            };
            for p in self.running.lock().expect("meter").values_mut() {
                p.rss = max(p.rss, rss);
                if p.uses_gpu {
                    p.gpu = max(p.gpu, gpu);
                }
            }
            std::thread::park_timeout(HOST_EVERY);
        }
    }

    /// Ends [`Meter::sample_until_stopped`] (the caller unparks its thread).
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Release);
    }
}

fn max(a: Option<u64>, b: Option<u64>) -> Option<u64> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.max(y)),
        (x, None) => x,
        (None, y) => y,
    }
}

/// Rows of a parquet file, from its footer (the data is not read).
pub fn parquet_rows(path: &Path) -> Option<u64> {
    use polars::prelude::{ParquetReader, SerReader};
    let file = std::fs::File::open(path).ok()?;
    ParquetReader::new(file).num_rows().ok().map(|n| n as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_ids_are_utc_start_times() {
        let t = UNIX_EPOCH + Duration::from_secs(1_795_951_800); // 2026-11-29 11:30:00 UTC
        let id = run_id(t);
        assert!(id.starts_with("20261129T113000Z-"), "{id}");
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
    }
}
