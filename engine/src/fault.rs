//! Fault injection for the crash-safety tests, off unless its environment variables are set.
//!
//! The engine calls [`point`] at each step where a crash leaves the cache in a different state
//! (a build directory made, an output written, a manifest written, an entry renamed into place,
//! a run record written, a corrupt entry moved away). With `JUDGEFLOW_FAULT_KILL_AT=N` the
//! process kills itself with SIGKILL at the Nth point it passes (counting from 1) — no
//! destructor, no unwinding, exactly like `kill -9` from outside, but at a chosen step instead
//! of a chosen time. With `JUDGEFLOW_FAULT_TRACE=FILE` each point passed is appended to FILE, so
//! a test can count the points of an uninterrupted run and pick kill points among them.

use std::io::Write;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

static PASSED: AtomicU64 = AtomicU64::new(0);

struct Settings {
    kill_at: Option<u64>,
    trace: Option<std::path::PathBuf>,
}

fn settings() -> &'static Settings {
    static S: OnceLock<Settings> = OnceLock::new();
    S.get_or_init(|| Settings {
        kill_at: std::env::var("JUDGEFLOW_FAULT_KILL_AT")
            .ok()
            .and_then(|v| v.parse().ok()),
        trace: std::env::var_os("JUDGEFLOW_FAULT_TRACE").map(Into::into),
    })
}

/// One step where a crash matters; `what` names it in the trace.
pub fn point(what: &str) {
    let s = settings();
    if s.kill_at.is_none() && s.trace.is_none() {
        return;
    }
    let n = PASSED.fetch_add(1, Ordering::SeqCst) + 1;
    if let Some(path) = &s.trace
        && let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
    {
        let _ = writeln!(f, "{n} {what}");
    }
    if s.kill_at == Some(n) {
        let pid = std::process::id().to_string();
        let _ = std::process::Command::new("kill")
            .args(["-KILL", &pid])
            .status();
        // SIGKILL is delivered before `kill` returns; never carry on past the point.
        loop {
            std::thread::park();
        }
    }
}
