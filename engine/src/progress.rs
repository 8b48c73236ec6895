//! Progress for long nodes: one bar per running node (count, rate, ETA, and the operator's
//! message, e.g. the current loss) on stderr when stderr is a terminal. When it is not (a log
//! file, a GPU machine's batch job), the same figures go to the log instead: one `info` line
//! each time a node passes another tenth of its work, so logs stay short and still say how fast
//! a long node goes and when it will end.

use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Least time between two progress lines of one node in the log.
pub const LOG_EVERY: Duration = Duration::from_secs(5);

/// Owns the terminal area the bars of concurrently running nodes share.
pub struct ProgressHub {
    multi: Option<MultiProgress>,
    /// Log lines instead of bars (enabled, but stderr is no terminal).
    log: bool,
}

impl ProgressHub {
    /// Bars are drawn when `enabled` and stderr is a terminal.
    pub fn new(enabled: bool) -> Self {
        let terminal = std::io::stderr().is_terminal();
        let multi = (enabled && terminal)
            .then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr()));
        ProgressHub {
            multi,
            log: enabled && !terminal,
        }
    }

    /// A hub that never draws nor logs.
    pub fn hidden() -> Self {
        ProgressHub {
            multi: None,
            log: false,
        }
    }

    /// A bar of `total` units for `node`.
    pub fn bar(&self, node: &str, total: u64, unit: &'static str) -> NodeProgress {
        let bar = self.multi.as_ref().map(|m| {
            let bar = m.add(ProgressBar::new(total));
            let template = format!(
                "{{prefix:>16}} [{{bar:30}}] {{pos}}/{{len}} {unit} ({{per_sec}}, eta {{eta}}) {{msg}}"
            );
            bar.set_style(
                ProgressStyle::with_template(&template)
                    .expect("static template")
                    .progress_chars("=> "),
            );
            bar.set_prefix(node.to_string());
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        let log = (self.log && bar.is_none()).then(|| {
            Mutex::new(LogState {
                node: node.to_string(),
                unit,
                total,
                done: 0,
                tenths: 0,
                message: String::new(),
                started: Instant::now(),
                logged: Instant::now(),
            })
        });
        NodeProgress { bar, log }
    }
}

/// One node's bar; a no-op when progress is hidden.
pub struct NodeProgress {
    bar: Option<ProgressBar>,
    log: Option<Mutex<LogState>>,
}

/// Progress as log lines (see the module docs).
struct LogState {
    node: String,
    unit: &'static str,
    total: u64,
    done: u64,
    /// Tenths of the total already logged.
    tenths: u64,
    message: String,
    started: Instant,
    /// When the last line was logged (the start, before any).
    logged: Instant,
}

impl LogState {
    fn advance(&mut self, n: u64) {
        self.done += n;
        if self.total == 0 {
            return;
        }
        let tenths = (self.done.min(self.total) * 10) / self.total;
        if tenths <= self.tenths || self.logged.elapsed() < LOG_EVERY {
            return;
        }
        self.tenths = tenths;
        self.logged = Instant::now();
        let secs = self.started.elapsed().as_secs_f64();
        let rate = self.done as f64 / secs.max(1e-9);
        let left = self.total.saturating_sub(self.done) as f64 / rate.max(1e-9);
        tracing::info!(
            node = %self.node,
            "{}/{} {} ({:.1}/s, eta {}) {}",
            self.done,
            self.total,
            self.unit,
            rate,
            human(left),
            self.message
        );
    }
}

/// `95s`, `12m05s`, `2h03m`: an ETA as a person reads it.
fn human(secs: f64) -> String {
    let s = secs.round() as u64;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
    }
}

impl NodeProgress {
    /// Advance by `n` units.
    pub fn inc(&self, n: u64) {
        if let Some(bar) = &self.bar {
            bar.inc(n);
        }
        if let Some(log) = &self.log {
            log.lock().expect("progress log").advance(n);
        }
    }

    /// Sets the total once it is known (after the operator has counted its work).
    pub fn set_length(&self, total: u64) {
        if let Some(bar) = &self.bar {
            bar.set_length(total);
        }
        if let Some(log) = &self.log {
            log.lock().expect("progress log").total = total;
        }
    }

    /// Show a short status message next to the bar (e.g. the current loss).
    pub fn message(&self, msg: impl Into<String>) {
        let msg = msg.into();
        if let Some(log) = &self.log {
            log.lock().expect("progress log").message.clone_from(&msg);
        }
        if let Some(bar) = &self.bar {
            bar.set_message(msg);
        }
    }
}

impl Drop for NodeProgress {
    fn drop(&mut self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
