//! Progress for long nodes: one bar per running node (count, rate, ETA) on stderr, drawn only
//! when stderr is a terminal so logs and tests stay clean.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Owns the terminal area the bars of concurrently running nodes share.
pub struct ProgressHub {
    multi: Option<MultiProgress>,
}

impl ProgressHub {
    /// Bars are drawn when `enabled` and stderr is a terminal.
    pub fn new(enabled: bool) -> Self {
        let multi = (enabled && std::io::stderr().is_terminal())
            .then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr()));
        ProgressHub { multi }
    }

    /// A hub that never draws.
    pub fn hidden() -> Self {
        ProgressHub { multi: None }
    }

    /// A bar of `total` units for `node`.
    pub fn bar(&self, node: &str, total: u64, unit: &'static str) -> NodeProgress {
        let bar = self.multi.as_ref().map(|m| {
            let bar = m.add(ProgressBar::new(total));
            let template = format!(
                "{{prefix:>16}} [{{bar:30}}] {{pos}}/{{len}} {unit} ({{per_sec}}, eta {{eta}})"
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
        NodeProgress { bar }
    }
}

/// One node's bar; a no-op when progress is hidden.
pub struct NodeProgress {
    bar: Option<ProgressBar>,
}

impl NodeProgress {
    /// Advance by `n` units.
    pub fn inc(&self, n: u64) {
        if let Some(bar) = &self.bar {
            bar.inc(n);
        }
    }

    /// Sets the total once it is known (after the operator has counted its work).
    pub fn set_length(&self, total: u64) {
        if let Some(bar) = &self.bar {
            bar.set_length(total);
        }
    }

    /// Show a short status message next to the bar (e.g. the current loss).
    pub fn message(&self, msg: impl Into<String>) {
        if let Some(bar) = &self.bar {
            bar.set_message(msg.into());
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
